"""Small Brevitas models (power-of-two scales, as quantize/model.py) that follow the VAE's quantization rules, for tests and smoke runs.

Same rules as ``quantize/model.py``: unsigned 8-bit input quantizer on raw pixels, conv + BN +
LeakyReLU(1/8) + signed QuantIdentity blocks, QuantConvTranspose2d (group=1),
QuantUpsamplingNearest2d, QuantLinear. Sizes are tiny so FINN runs take seconds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from torch import nn

LEAKY_SLOPE = 0.125


def _act(bits: int) -> nn.Module:
    return nn.Sequential(nn.LeakyReLU(LEAKY_SLOPE), qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=bits, return_quant_tensor=True))


class TinyDecoderPath(nn.Module):
    """input quant -> conv block -> deconv block -> upsample -> conv: every custom lowering."""

    def __init__(self, channels: int = 4, bits: int = 4, size: int = 16) -> None:
        super().__init__()
        self.input_shape = (1, 1, size, size)
        self.inq = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, channels, 3, stride=2, padding=1, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = _act(bits)
        self.deconv = qnn.QuantConvTranspose2d(channels, channels, 4, stride=2, padding=1, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act2 = _act(bits)
        self.up = qnn.QuantUpsamplingNearest2d(scale_factor=2, return_quant_tensor=True)
        self.head = qnn.QuantConv2d(channels, 2, 3, padding=1, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=True)

    def forward(self, x):
        x = self.inq(x)
        x = self.act1(self.bn1(self.conv(x)))
        x = self.act2(self.bn2(self.deconv(x)))
        return self.head(self.up(x))


class TinyVAEAtMean(nn.Module):
    """Encoder (2 stride-2 convs, linear mu/log_sigma) -> decoder at z = mu, one graph.

    Outputs (mu_z, log_sigma_z, pixel_stats): three graph outputs, so the dataflow partition
    must stream more than one output (a fork at mu_z feeds the decoder and an output).
    """

    def __init__(self, channels: int = 4, latent: int = 4, bits: int = 4, size: int = 16) -> None:
        super().__init__()
        self.input_shape = (1, 1, size, size)
        self.size, self.channels = size, channels
        self.inq = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, channels, 3, stride=2, padding=1, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=False)
        self.b1, self.a1 = nn.BatchNorm2d(channels), _act(bits)
        self.c2 = qnn.QuantConv2d(channels, channels, 3, stride=2, padding=1, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=False)
        self.b2, self.a2 = nn.BatchNorm2d(channels), _act(bits)
        feat = channels * (size // 4) ** 2
        self.enc_mu = qnn.QuantLinear(feat, latent, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=True)
        self.enc_log_sigma = qnn.QuantLinear(feat, latent, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=True)
        self.zq = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8, return_quant_tensor=True)
        self.log_sigma_q = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8)
        self.out_q = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8)
        self.latent = latent
        self.dec = qnn.QuantLinear(latent, feat, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=False)
        self.b3, self.a3 = nn.BatchNorm1d(feat), _act(bits)
        self.d1 = qnn.QuantConvTranspose2d(channels, channels, 4, stride=2, padding=1, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=False)
        self.b4, self.a4 = nn.BatchNorm2d(channels), _act(bits)
        self.up = qnn.QuantUpsamplingNearest2d(scale_factor=2, return_quant_tensor=True)
        self.head = qnn.QuantConv2d(channels, 2, 3, padding=1, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=True)

    def forward(self, x):
        x = self.inq(x)
        x = self.a1(self.b1(self.c1(x)))
        x = self.a2(self.b2(self.c2(x)))
        flat = x.flatten(1)
        mu = self.zq(self.enc_mu(flat))
        log_sigma = self.log_sigma_q(self.enc_log_sigma(flat))
        h = self.a3(self.b3(self.dec(mu)))
        h = h.reshape(-1, self.channels, self.size // 4, self.size // 4)
        h = self.a4(self.b4(self.d1(h)))
        pixels = self.out_q(self.head(self.up(h)))
        return mu.value, log_sigma, pixels


def calibrate(model: nn.Module, seed: int = 0, steps: int = 4) -> nn.Module:
    """A few train-mode passes so BN statistics and activation scales are non-trivial."""
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.rand((8, *model.input_shape[1:]), generator=generator) * 255)
    return model.eval()


def export(model: nn.Module, path: Path) -> Path:
    from brevitas.export import export_qonnx

    export_qonnx(model, torch.zeros(model.input_shape), str(path), dynamo=False)
    return Path(path)
