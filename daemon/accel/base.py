"""The one interface every accelerator backend implements.

The accelerator runs the convolutional work of the VAE; sampling z and the likelihood run on
the host in numpy (``snapseal.daemon.score``). Backends: ``emulate`` (the bundle's QONNX graph,
bit-exact to the hardware), ``fpga`` (pynq + FINN driver protocol), ``cpu`` (fast float).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Latent:
    """The encoder's posterior q(z|x) = N(mu, sigma^2) for a batch."""

    mu: np.ndarray  # N x D float32
    log_sigma: np.ndarray  # N x D float32


@dataclass(frozen=True)
class PixelDist:
    """The decoder's per-pixel Gaussian p(x|z) = N(mu, sigma^2), pixels scaled to [0, 1]."""

    mu: np.ndarray  # N x 64 x 64 float32
    log_sigma: np.ndarray  # N x 64 x 64 float32


@runtime_checkable
class Accelerator(Protocol):
    """What every backend offers. Inputs are raw crops: N x 64 x 64 uint8."""

    name: str

    def forward_at_mean(self, crops: np.ndarray) -> tuple[Latent, PixelDist]:
        """One pass: encode, decode at z = mu_z. This is what one FPGA bitstream computes."""
        ...

    def encode(self, crops: np.ndarray) -> Latent:
        """Encoder only (for the L-sample reference estimator)."""
        ...

    def decode(self, z: np.ndarray) -> PixelDist:
        """Decoder only, from host-sampled latents N x D float32."""
        ...
