"""Custom FINN lowerings for the VAE's decoder-style layers, one module each.

FINN's default flow rejects LeakyRelu, ConvTranspose and Resize (docs/HARDWARE.md); these modules make
them map onto FINN's hardware layers without changing what the graph computes.
"""
