"""The paper's VAE (Baert et al.), built with Brevitas for quantization-aware training.

Layout (docs/ARCHITECTURE.md; the FINN mapping rules in docs/HARDWARE.md):

    raw pixels 0..255 (float tensor N x 1 x 64 x 64)
    -> input quantizer: unsigned 8 bit, scale fixed to 1.0, so the graph's integers ARE the pixels
    -> encoder: 5 x (Conv k4 s2, BatchNorm, LeakyReLU(1/8), signed QuantIdentity)  64 -> 2
    -> two fully connected heads -> mu_z, log_sigma_z (each N x D x 1 x 1, signed 8 bit)
    decoder: z (N x D x 1 x 1) -> signed 8-bit input quantizer (explicit, so a host-sampled z
    can be fed) -> fully connected to 128 x 2 x 2 -> 5 x (ConvTranspose k4 s2 (group 1) or
    nearest-upsample + conv, BatchNorm, LeakyReLU(1/8), QuantIdentity) 2 -> 64
    -> Conv k3 -> 2 channels: mu_x logits and log_sigma_x raw (signed 8 bit).

The fully connected layers are written as convolutions whose kernel covers the whole feature map
(2 x 2 -> 1 x 1 in the encoder, a 2 x 2 transposed conv from 1 x 1 in the decoder): the same
maths as a Linear layer, with no Flatten/Reshape in the graph, which FINN cannot stream in the
decoder. sigmoid, exp, sampling z and the likelihood run on the host
(``snapseal.daemon.scoring.likelihood``), never in the graph.

Every quantizer uses power-of-two scales (weights per output channel, activations per tensor).
With power-of-two scales every conv accumulator is an exactly representable float32, so the
Brevitas model, the QONNX graph and FINN's integer hardware agree bit for bit; batch norm is
computed as ``x * a + b`` (two roundings, the same in torch and onnx) for the same reason.

``VAEConfig.quantized=False`` builds the float twin: the same layers with plain torch modules;
its state dict loads into the quantized model (QAT fine-tuning starts from float weights).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from snapseal.daemon.errors import SnapsealError

CROP_SIZE = 64
LEAKY_SLOPE = 0.125  # a power of two: FINN folds LeakyReLU+quantizer into exact thresholds
ACT_STATS_STEPS = 30  # training steps an activation quantizer observes before learning its scale


@dataclass(frozen=True)
class VAEConfig:
    """Architecture and bit widths. Frozen: variants are tried by building new ones."""

    widths: tuple[int, ...] = (16, 32, 64, 64, 128)  # encoder channels; the decoder mirrors them
    latent_dim: int = 64
    weight_bits: int = 4  # all conv/fc weights, per-output-channel power-of-two scale
    act_bits: int = 6  # hidden activations after each LeakyReLU
    latent_bits: int = 8  # mu_z, log_sigma_z and the decoder's input quantizer
    output_bits: int = 8  # the decoder's 2-channel output (mu_x logits, log_sigma_x)
    decoder_upsampling: str = "deconv"  # "deconv" (ConvTranspose k4 s2) or "nearest" (upsample + conv k3)
    quantized: bool = True  # False = the float twin

    def __post_init__(self) -> None:
        if len(self.widths) != 5 or any(w <= 0 for w in self.widths):
            raise SnapsealError(f"VAEConfig: widths must be 5 positive ints, got {self.widths}")
        if self.latent_dim <= 0:
            raise SnapsealError(f"VAEConfig: latent_dim must be positive, got {self.latent_dim}")
        for name in ("weight_bits", "act_bits", "latent_bits", "output_bits"):
            bits = getattr(self, name)
            if not 2 <= bits <= 8:
                raise SnapsealError(f"VAEConfig: {name} must be in 2..8, got {bits}")
        if self.decoder_upsampling not in ("deconv", "nearest"):
            raise SnapsealError(
                f"VAEConfig: decoder_upsampling must be 'deconv' or 'nearest', got {self.decoder_upsampling!r}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        d = dict(d)
        if "widths" in d:
            d["widths"] = tuple(int(w) for w in d["widths"])
        return cls(**d)

    def float_twin(self) -> "VAEConfig":
        return VAEConfig(**{**self.to_dict(), "widths": self.widths, "quantized": False})


# ---------------------------------------------------------------------------------------------
# Quantizers (power-of-two scales everywhere, see the module docstring)


def _quantizers():
    """Brevitas quantizer classes, built lazily so importing this module stays cheap."""
    from brevitas.inject.enum import ScalingImplType
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
    )

    class PixelQuant(Uint8ActPerTensorFixedPoint):
        # Unsigned 8 bit with a constant scale of exactly 1.0 (256 / 2^8): pixel p -> integer p.
        scaling_impl_type = ScalingImplType.CONST
        scaling_init = 256.0

    class WeightQuant(Int8WeightPerTensorFixedPoint):
        scaling_per_output_channel = True

    class ActQuant(Int8ActPerTensorFixedPoint):
        # Brevitas' default collects range statistics for 300 steps with a non-power-of-two
        # scale before learning the power-of-two one; that is most of a 10-epoch run here.
        collect_stats_steps = ACT_STATS_STEPS

    return PixelQuant, WeightQuant, ActQuant


class AffineBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that in eval mode computes ``x * a + b`` with float32 a, b.

    Torch's fused eval kernel and onnxruntime's BatchNormalization round differently; a Mul then
    an Add round the same everywhere, which keeps the quantizer after it bit-exact. Traced
    export constant-folds a and b into one Mul and one Add (FINN's streamlining absorbs both).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        a = self.weight / torch.sqrt(self.running_var + self.eps)
        b = self.bias - self.running_mean * a
        return x * a.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


class _Layers:
    """Factory for quantized or float layers with the same names, so state dicts line up."""

    def __init__(self, cfg: VAEConfig) -> None:
        self.cfg = cfg
        if cfg.quantized:
            import brevitas.nn as qnn

            self.qnn = qnn
            self.pixel_quant, self.weight_quant, self.act_quant = _quantizers()

    def conv(self, cin: int, cout: int, k: int, s: int, p: int, bias: bool) -> nn.Module:
        if not self.cfg.quantized:
            return nn.Conv2d(cin, cout, k, s, p, bias=bias)
        return self.qnn.QuantConv2d(
            cin, cout, k, s, p, bias=bias, weight_quant=self.weight_quant, weight_bit_width=self.cfg.weight_bits
        )

    def deconv(self, cin: int, cout: int, k: int, s: int, p: int) -> nn.Module:
        if not self.cfg.quantized:
            return nn.ConvTranspose2d(cin, cout, k, s, p, bias=False)
        return self.qnn.QuantConvTranspose2d(
            cin, cout, k, s, p, bias=False, weight_quant=self.weight_quant, weight_bit_width=self.cfg.weight_bits
        )

    def act(self, bits: int) -> nn.Module:
        """Signed activation quantizer (identity in the float twin)."""
        if not self.cfg.quantized:
            return nn.Identity()
        return self.qnn.QuantIdentity(act_quant=self.act_quant, bit_width=bits, return_quant_tensor=False)

    def pixels(self) -> nn.Module:
        if not self.cfg.quantized:
            return nn.Identity()
        return self.qnn.QuantIdentity(act_quant=self.pixel_quant, return_quant_tensor=False)


class Block(nn.Module):
    """conv-like layer (no bias: batch norm follows), batch norm, LeakyReLU(1/8), quantizer."""

    def __init__(self, layer: nn.Module, channels: int, quant: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.norm = AffineBatchNorm2d(channels)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.quant = quant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant(self.act(self.norm(self.layer(x))))


class Upsample(nn.Module):
    """Nearest x2 upsampling then conv k3 (the alternative to ConvTranspose for FINN)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2, mode="nearest"))


class Encoder(nn.Module):
    """N x 1 x 64 x 64 raw pixels (0..255) -> (mu_z, log_sigma_z), each N x D x 1 x 1."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        make = _Layers(cfg)
        self.input_quant = make.pixels()
        blocks, cin = [], 1
        for w in cfg.widths:
            blocks.append(Block(make.conv(cin, w, 4, 2, 1, bias=False), w, make.act(cfg.act_bits)))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        # fully connected heads: a 2x2 kernel over the 2x2 feature map
        self.mu_head = make.conv(cin, cfg.latent_dim, 2, 1, 0, bias=True)
        self.mu_quant = make.act(cfg.latent_bits)
        self.log_sigma_head = make.conv(cin, cfg.latent_dim, 2, 1, 0, bias=True)
        self.log_sigma_quant = make.act(cfg.latent_bits)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(self.input_quant(pixels))
        return self.mu_quant(self.mu_head(h)), self.log_sigma_quant(self.log_sigma_head(h))


class Decoder(nn.Module):
    """z N x D x 1 x 1 -> N x 2 x 64 x 64: channel 0 = mu_x logits, channel 1 = log_sigma_x."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        make = _Layers(cfg)
        self.input_quant = make.act(cfg.latent_bits)  # explicit: host-sampled z enters here
        top = cfg.widths[-1]
        # fully connected D -> top x 2 x 2, as a 2x2 transposed conv of a 1x1 map
        self.stem = Block(make.deconv(cfg.latent_dim, top, 2, 1, 0), top, make.act(cfg.act_bits))
        outs = list(reversed(cfg.widths[:-1])) + [cfg.widths[0]]  # 64, 64, 32, 16, 16
        blocks, cin = [], top
        for w in outs:
            if cfg.decoder_upsampling == "deconv":
                layer = make.deconv(cin, w, 4, 2, 1)
            else:
                layer = Upsample(make.conv(cin, w, 3, 1, 1, bias=False))
            blocks.append(Block(layer, w, make.act(cfg.act_bits)))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.head = make.conv(cin, 2, 3, 1, 1, bias=True)
        self.output_quant = make.act(cfg.output_bits)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.output_quant(self.head(self.blocks(self.stem(self.input_quant(z)))))


class VAE(nn.Module):
    def __init__(self, cfg: VAEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or VAEConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)

    def forward_at_mean(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass, decoding at z = mu_z: (mu_z, log_sigma_z, decoder output N x 2 x 64 x 64)."""
        mu_z, log_sigma_z = self.encoder(pixels)
        return mu_z, log_sigma_z, self.decoder(mu_z)

    def forward(
        self, pixels: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: z = mu + sigma * eps (reparameterised); eps None -> fresh normal noise."""
        mu_z, log_sigma_z = self.encoder(pixels)
        if eps is None:
            eps = torch.randn_like(mu_z)
        z = mu_z + torch.exp(log_sigma_z) * eps
        return mu_z, log_sigma_z, self.decoder(z)


class ForwardAtMean(nn.Module):
    """Wrapper whose forward() is forward_at_mean, for export."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, pixels: torch.Tensor):
        return self.vae.forward_at_mean(pixels)


def build_vae(cfg: VAEConfig | None = None) -> VAE:
    return VAE(cfg or VAEConfig())


# ---------------------------------------------------------------------------------------------
# Sizes for the hardware budget


@dataclass(frozen=True)
class LayerSize:
    name: str
    kind: str
    shape: tuple[int, ...]
    params: int
    weight_bits: int

    @property
    def weight_bytes(self) -> float:
        return self.params * self.weight_bits / 8


@dataclass(frozen=True)
class ModelSize:
    layers: list[LayerSize] = field(default_factory=list)
    bias_and_norm_params: int = 0
    threshold_channels: dict[int, int] = field(default_factory=dict)  # act bits -> channels

    @property
    def weight_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def weight_kib(self) -> float:
        return sum(layer.weight_bytes for layer in self.layers) / 1024

    def threshold_kib(self, threshold_bits: int = 24) -> float:
        """Rough FINN threshold memory: channels x (2^bits - 1) thresholds x threshold_bits."""
        total = sum(ch * (2**b - 1) * threshold_bits for b, ch in self.threshold_channels.items())
        return total / 8 / 1024


def model_size(cfg: VAEConfig) -> ModelSize:
    """Count conv/fc weights (what FINN stores on chip) per layer, at cfg.weight_bits."""
    vae = VAE(VAEConfig(**{**cfg.to_dict(), "widths": cfg.widths, "quantized": False}))
    layers, other = [], 0
    for name, module in vae.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            n = module.weight.numel()
            layers.append(LayerSize(name, type(module).__name__, tuple(module.weight.shape), n, cfg.weight_bits))
            if module.bias is not None:
                other += module.bias.numel()
        elif isinstance(module, nn.BatchNorm2d):
            other += 2 * module.num_features
    thresholds: dict[int, int] = {}
    hidden = sum(cfg.widths) + cfg.widths[-1] + sum(reversed(cfg.widths[:-1])) + cfg.widths[0]
    thresholds[cfg.act_bits] = thresholds.get(cfg.act_bits, 0) + hidden
    latent = 3 * cfg.latent_dim  # mu_z, log_sigma_z, decoder input
    thresholds[cfg.latent_bits] = thresholds.get(cfg.latent_bits, 0) + latent
    thresholds[cfg.output_bits] = thresholds.get(cfg.output_bits, 0) + 2
    return ModelSize(layers, other, thresholds)


def format_size_table(cfg: VAEConfig) -> str:
    size = model_size(cfg)
    lines = ["| layer | kind | weight shape | params | bits | weight KiB |", "|---|---|---|---|---|---|"]
    for layer in size.layers:
        lines.append(
            f"| {layer.name} | {layer.kind} | {'x'.join(map(str, layer.shape))} | {layer.params:,} "
            f"| {layer.weight_bits} | {layer.weight_bytes / 1024:.1f} |"
        )
    lines.append(
        f"| **total** | | | **{size.weight_params:,}** | {cfg.weight_bits} | **{size.weight_kib:.1f}** |"
    )
    lines.append("")
    lines.append(
        f"bias + batch-norm parameters (folded into thresholds by FINN): {size.bias_and_norm_params:,}; "
        f"threshold memory estimate (24-bit thresholds): {size.threshold_kib():.1f} KiB; "
        f"Z-7020 BRAM: 140 x 36 Kib = 630 KiB"
    )
    return "\n".join(lines)


def quantizer_state(model: nn.Module) -> dict[str, dict[str, torch.Tensor | int]]:
    """Brevitas' range-statistics progress, which its state_dict does not carry (loading a state
    dict ends statistics collection): saved in checkpoints so --resume continues exactly."""
    state = {}
    for name, module in model.named_modules():
        if hasattr(module, "collect_stats_steps") and isinstance(getattr(module, "counter", None), int):
            entry: dict[str, torch.Tensor | int] = {"counter": int(module.counter)}
            if isinstance(getattr(module, "buffer", None), torch.Tensor):
                entry["buffer"] = module.buffer.detach().clone()
            state[name] = entry
    return state


def restore_quantizer_state(model: nn.Module, state: dict[str, dict[str, torch.Tensor | int]]) -> None:
    modules = dict(model.named_modules())
    for name, entry in state.items():
        module = modules.get(name)
        if module is None:
            continue
        counter = int(entry["counter"])
        if counter <= module.collect_stats_steps:  # still collecting: undo what loading did
            module.counter = counter
            if "buffer" in entry:
                module.buffer.data.copy_(entry["buffer"])
            if isinstance(getattr(module, "value", None), torch.nn.Parameter):
                module.value.data.fill_(1.0)  # init_scale() multiplies the init value by the buffer


def log2_exact(scale: float) -> bool:
    """True when scale is a power of two (what every quantizer here must produce)."""
    return scale > 0 and math.log2(scale) == round(math.log2(scale))


if __name__ == "__main__":  # python -m snapseal.quantize.model: the architecture table
    print(format_size_table(VAEConfig()))
