"""FINN flow to FPGA bitstreams: board profiles, custom lowerings, estimates, verification."""
