"""Accelerator backends behind one Protocol (``base.Accelerator``): fpga, emulate, cpu."""
