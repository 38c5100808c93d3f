"""Stand-in for pynq's PL server package: install.sh checks that it exists."""
