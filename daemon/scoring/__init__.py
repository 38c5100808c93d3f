"""Quality scores computed on the host from the accelerator's outputs (numpy only)."""
