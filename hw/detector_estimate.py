"""What MTCNN's networks would cost on the FPGA beside the VAE: FINN estimates, no training.

``python -m snapseal.hw.detector_estimate --board pynq-z2`` builds 4-bit Brevitas versions of
MTCNN's P-Net (and R-Net, O-Net), exports each to QONNX and runs this project's FINN estimate
flow on it (``hw/flow.py``: the same steps and lowerings as the VAE's ``make estimate``). The
weights are random: resources and cycles depend on the layer shapes and bit widths only, not on
the weight values. Writes ``build/hw/detector/<board>/estimate.json`` (one FINN run per
network under ``<board>/<net>/``).

Quantization follows the VAE's rules (``hw/tiny.py``): an unsigned 8-bit input quantizer on
raw pixels, 4-bit weights, 4-bit activations. MTCNN's PReLU (a learned slope per channel) has
no FINN mapping; it is replaced by ReLU (``--act relu``, FINN's default mapping) or LeakyReLU
with slope 1/8 before a signed 4-bit quantizer (``--act leaky``: this flow folds it into the
next threshold, ``hw/transforms/leaky_relu.py``); ``--act prelu`` keeps MTCNN's PReLU and shows
the flow stopping at it. Pooling rounds up (ceil mode) as MTCNN's Caffe
original does, so R-Net's and O-Net's dense layers have their original sizes.

P-Net is fully convolutional but a FINN accelerator has a fixed input size, so the engine is
built for the pyramid's first (largest) level; the cost of the whole pyramid per frame is given
two ways from FINN's cycle estimate for that level: every level padded to the first level's size
(one pass a level: what the fixed-size engine does without tiling) and the sum of the levels'
areas over the first level's (the bound a mosaic or tiling of the smaller levels could approach).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from snapseal.daemon.errors import SnapsealError

PNET_WINDOW = 12


# --------------------------------------------------------------------------- models
def _models():
    """The Brevitas modules (imported lazily: torch/brevitas only where a model is built)."""
    from brevitas import nn as qnn
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
    from torch import nn

    def conv(cin, cout, k, bits):
        return qnn.QuantConv2d(cin, cout, k, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=False)

    def linear(cin, cout, bits):
        return qnn.QuantLinear(cin, cout, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=False)

    def act(bits, kind, channels):
        if kind == "relu":
            return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits, return_quant_tensor=True)
        return nn.Sequential(nn.PReLU(channels) if kind == "prelu" else nn.LeakyReLU(0.125),
                             qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=bits, return_quant_tensor=True))

    def head(cin, cout, bits, k=1, dense=False):
        layer = (qnn.QuantLinear(cin, cout, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=True)
                 if dense else
                 qnn.QuantConv2d(cin, cout, k, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias=True))
        return nn.Sequential(layer, qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8))

    def block(cin, cout, k, bits, kind):
        return [conv(cin, cout, k, bits), nn.BatchNorm2d(cout), act(bits, kind, cout)]

    def pool(k, s):
        return nn.MaxPool2d(k, s, ceil_mode=True)  # as MTCNN's Caffe original; QuantTensor in and out

    class _Net(nn.Module):
        def __init__(self, height, width, features, heads, dense_from=None):
            super().__init__()
            self.input_shape = (1, 3, height, width)
            self.inq = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
            self.features = nn.Sequential(*features)
            self.heads = nn.ModuleList(heads)
            self.dense = dense_from

        def forward(self, x):
            x = self.features(self.inq(x))
            if self.dense is not None:
                x = self.dense(x.flatten(1) if hasattr(x, "flatten") else x)
            return tuple(h(x) for h in self.heads)

    def pnet(height, width, bits=4, kind="relu"):
        """conv3x3 10 -> act -> maxpool 2 -> conv3x3 16 -> act -> conv3x3 32 -> act -> 1x1 heads 2 + 4."""
        features = [*block(3, 10, 3, bits, kind), pool(2, 2), *block(10, 16, 3, bits, kind), *block(16, 32, 3, bits, kind)]
        return _Net(height, width, features, [head(32, 2, bits), head(32, 4, bits)])

    def rnet(bits=4, kind="relu"):
        """24x24: conv3 28 -> pool 3/2 -> conv3 48 -> pool 3/2 -> conv2 64 -> fc 128 -> heads 2 + 4."""
        features = [*block(3, 28, 3, bits, kind), pool(3, 2), *block(28, 48, 3, bits, kind), pool(3, 2),
                    *block(48, 64, 2, bits, kind)]
        dense = nn.Sequential(linear(64 * 3 * 3, 128, bits), nn.BatchNorm1d(128), act(bits, kind, 128))
        return _Net(24, 24, features, [head(128, 2, bits, dense=True), head(128, 4, bits, dense=True)], dense)

    def onet(bits=4, kind="relu"):
        """48x48: conv3 32 -> pool 3/2 -> conv3 64 -> pool 3/2 -> conv3 64 -> pool 2 -> conv2 128 ->
        fc 256 -> heads 2 + 4 + 10."""
        features = [*block(3, 32, 3, bits, kind), pool(3, 2), *block(32, 64, 3, bits, kind), pool(3, 2),
                    *block(64, 64, 3, bits, kind), pool(2, 2), *block(64, 128, 2, bits, kind)]
        dense = nn.Sequential(linear(128 * 3 * 3, 256, bits), nn.BatchNorm1d(256), act(bits, kind, 256))
        return _Net(48, 48, features, [head(256, 2, bits, dense=True), head(256, 4, bits, dense=True),
                                       head(256, 10, bits, dense=True)], dense)

    return pnet, rnet, onet


def build_model(net: str, height: int = 24, width: int = 24, bits: int = 4, act: str = "relu", seed: int = 0):
    """A calibrated (BN statistics and activation scales from random pixels) Brevitas network."""
    import torch

    from snapseal.hw.tiny import calibrate

    if act not in ("relu", "leaky", "prelu"):
        raise SnapsealError(f"--act must be relu, leaky or prelu, got {act!r}")
    pnet, rnet, onet = _models()
    torch.manual_seed(seed)
    if net == "pnet":
        if min(height, width) < PNET_WINDOW:
            raise SnapsealError(f"P-Net needs at least {PNET_WINDOW}x{PNET_WINDOW} pixels, got {width}x{height}")
        model = pnet(height, width, bits, act)
    elif net == "rnet":
        model = rnet(bits, act)
    elif net == "onet":
        model = onet(bits, act)
    else:
        raise SnapsealError(f"unknown network {net!r}; known: pnet, rnet, onet")
    return calibrate(model, seed=seed, steps=2)


def export_model(model, path: Path) -> Path:
    from snapseal.hw.tiny import export

    path.parent.mkdir(parents=True, exist_ok=True)
    return export(model, path)


def mac_count(model) -> int:
    """Multiply-accumulates of one forward pass (conv and linear layers), from the layer shapes."""
    import torch
    from torch import nn

    total = [0]

    def hook(module, inputs, output):
        out = output.value if hasattr(output, "value") else output
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total[0] += int(out.numel() // out.shape[0]) * k
        elif isinstance(module, nn.Linear):
            total[0] += module.in_features * module.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(model.input_shape))
    for h in hooks:
        h.remove()
    return total[0]


# --------------------------------------------------------------------------- checks
def hw_layer_report(model_path: Path) -> dict:
    """Which nodes of a FINN-flow model are hardware layers (finn.custom_op.fpgadataflow)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from snapseal.hw.flow import HW_DOMAIN, unmapped_inner_nodes

    model = ModelWrapper(str(model_path))
    nodes = list(model.graph.node)
    hw = [n.op_type for n in nodes if n.domain.startswith(HW_DOMAIN)]
    return {"hw_layers": hw, "other_nodes": [n.op_type for n in nodes if not n.domain.startswith(HW_DOMAIN)],
            "unmapped_inner": [n.name for n in unmapped_inner_nodes(model)]}


# --------------------------------------------------------------------------- pyramid
def pyramid_levels(height: int, width: int, min_face_px: float, scale_factor: float) -> list[tuple[int, int]]:
    """(height, width) of each P-Net level as the daemon resizes them (daemon/detect/mtcnn.py)."""
    from snapseal.daemon.detect.mtcnn import pyramid_scales

    return [(int(math.ceil(height * s)), int(math.ceil(width * s)))
            for s in pyramid_scales(height, width, min_face_px, scale_factor)]


# --------------------------------------------------------------------------- the ARM side
def arm_frames_per_s(board_name: str, result_file: Path) -> dict:
    """The ARM harness's frame model (eval/board/harness.py) on one measured configuration, with
    the networks' instruction buckets removed one by one: what is left when they run on the FPGA.
    The host side of the FPGA calls the detector would add is not in the counts."""
    from snapseal.eval.board import harness

    if board_name not in harness.BOARDS:
        raise SnapsealError(f"the ARM harness has no board {board_name!r}")
    if not result_file.is_file():
        raise SnapsealError(f"{result_file}: no ARM harness result (run `make board-estimate`)")
    board = harness.BOARDS[board_name]
    result = json.loads(result_file.read_text())
    keys = ("fps_1_face", "fps_2_faces", "fps_1_face_one_core", "fps_2_faces_one_core")

    def frame_model(counts: dict) -> dict:
        estimate = harness.to_estimate(board, {**result, "instructions": counts})
        return {**{k: estimate[k] for k in keys}, "detector_ms": estimate["detector"]["ms_per_frame"]}

    rows = {"measured": frame_model(dict(result["instructions"]))}
    moved: list[str] = []
    for bucket in harness.NET_BUCKETS:
        moved.append(bucket)
        rows["+".join(moved) + " on the FPGA"] = frame_model({**result["instructions"], **{b: 0 for b in moved}})
    return {"result_file": str(result_file), "rows": rows}


# --------------------------------------------------------------------------- FINN runs
def run_vae_estimate(board, out_dir: Path, target_crops_per_s: float, bundle: Path | None = None, progress=None) -> dict:
    """The VAE's graph (the bundle's ``forward_at_mean``, as ``make estimate``) folded for another target."""
    from snapseal.daemon.bundle import load_bundle
    from snapseal.hw.flow import estimate

    graph = load_bundle(bundle).graphs["forward_at_mean"]
    profile = dataclasses.replace(board, target_crops_per_s=float(target_crops_per_s))
    summary = estimate(graph, profile, out_dir, progress=progress)
    return {"target_crops_per_s": target_crops_per_s, "folding_target_fps": profile.folding_target_fps,
            "totals": summary["totals"], "utilization": summary["utilization"], "crops_per_s": summary["crops_per_s"],
            "latency_ms": summary["latency_ms"], "estimate_dir": str(out_dir)}



def run_estimate(net: str, board, out_dir: Path, target_fps: float, *, height=24, width=24, bits=4, act="relu",
                 progress=None) -> dict:
    """Build, export and FINN-estimate one network folded for ``target_fps`` inferences/s."""
    from snapseal.hw.flow import estimate

    model = build_model(net, height, width, bits, act)
    onnx_path = export_model(model, out_dir / f"{net}_qonnx.onnx")
    profile = dataclasses.replace(board, target_crops_per_s=float(target_fps))
    summary = estimate(onnx_path, profile, out_dir, progress=progress)
    steps = sorted((out_dir / "intermediate_models").glob("*_step_generate_estimate_reports.onnx"))
    mapped = hw_layer_report(steps[-1]) if steps else {}
    fmax = max(layer["cycles"] for layer in summary["layers"])
    return {
        "net": net, "input_hw": list(model.input_shape[2:]), "bits": bits, "act": act, "macs": mac_count(model),
        "target_fps": target_fps, "folding_target_fps": profile.folding_target_fps,
        "totals": summary["totals"], "utilization": summary["utilization"],
        "fps": summary["crops_per_s"], "latency_ms": summary["latency_ms"], "bottleneck_cycles": fmax,
        "bottleneck_layer": summary["bottleneck_layer"], "n_hw_layers": len(mapped.get("hw_layers", [])),
        "unmapped_inner": mapped.get("unmapped_inner", []), "layers": summary["layers"],
        "estimate_dir": str(out_dir),
    }


def estimate_detector(board_name: str, out: Path, *, frame=(480, 640), min_face_px=40.0, scale_factor=0.709,
                      frames_per_s=15.0, r_candidates=16, o_candidates=4, nets=("pnet", "rnet", "onet"),
                      bits=4, act="relu", vae_targets=(), bundle=None, progress=None) -> dict:
    from snapseal.hw.boards import get_board

    board = get_board(board_name)
    log = progress or (lambda message: None)
    levels = pyramid_levels(frame[0], frame[1], min_face_px, scale_factor)
    if not levels:
        raise SnapsealError(f"no pyramid level: frame {frame[1]}x{frame[0]} is smaller than min face {min_face_px:g}")
    first_h, first_w = levels[0]
    area_ratio = sum(h * w for h, w in levels) / float(first_h * first_w)
    passes = {"pnet": len(levels), "rnet": r_candidates, "onet": o_candidates}
    unknown = [net for net in nets if net not in passes]
    if unknown:
        raise SnapsealError(f"unknown network {unknown[0]!r}; known: {', '.join(passes)}")
    result = {"board": board.name, "part": board.part, "clock_mhz": board.clock_mhz, "budget": board.budget.as_dict(),
              "frame_hw": list(frame), "min_face_px": min_face_px, "scale_factor": scale_factor,
              "pyramid_levels_hw": [list(level) for level in levels], "pyramid_area_over_first_level": round(area_ratio, 3),
              "frames_per_s_folded_for": frames_per_s, "r_candidates": r_candidates, "o_candidates": o_candidates,
              "nets": {}}
    for net in nets:
        target = frames_per_s * passes[net]
        log(f"== {net}: folding for {target:g} inferences/s ({frames_per_s:g} frames/s x {passes[net]})")
        shape = {"height": first_h, "width": first_w} if net == "pnet" else {}
        run = run_estimate(net, board, out / net, target, bits=bits, act=act, progress=log, **shape)
        if net == "pnet":
            run["frames_per_s_padded_levels"] = round(run["fps"] / len(levels), 2)
            run["frames_per_s_area_bound"] = round(run["fps"] / area_ratio, 2)
        else:
            run["frames_per_s_at_candidates"] = round(run["fps"] / passes[net], 2)
        log(f"   {net}: LUT {run['totals']['LUT']}, BRAM18 {run['totals']['BRAM_18K']}, DSP {run['totals']['DSP']}, "
            f"{run['fps']:g} inferences/s, {run['n_hw_layers']} hw layers")
        result["nets"][net] = run
    total = {key: sum(r["totals"][key] for r in result["nets"].values()) for key in ("LUT", "BRAM_18K", "DSP")}
    result["detector_totals"] = total
    result["detector_utilization"] = {k: round(v / board.budget.as_dict()[k], 4) for k, v in total.items()}
    result["vae"] = {}
    for target in vae_targets:
        log(f"== VAE (forward_at_mean): folding for {target:g} crops/s")
        vae = run_vae_estimate(board, out / f"vae-{target:g}", target, bundle, progress=log)
        log(f"   VAE: LUT {vae['totals']['LUT']}, BRAM18 {vae['totals']['BRAM_18K']}, DSP {vae['totals']['DSP']}, "
            f"{vae['crops_per_s']:g} crops/s")
        result["vae"][f"{target:g}"] = vae
    out.mkdir(parents=True, exist_ok=True)
    (out / "estimate.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.hw.detector_estimate",
                                     description="FINN estimates of a 4-bit MTCNN on a board (no Vivado, no training)")
    parser.add_argument("--board", default="pynq-z2")
    parser.add_argument("--out", type=Path, default=Path("build/hw/detector"))
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--min-face", type=float, default=40.0)
    parser.add_argument("--scale-factor", type=float, default=0.709)
    parser.add_argument("--fps", type=float, default=15.0, help="frames/s every network is folded for")
    parser.add_argument("--r-candidates", type=int, default=16, help="R-Net inferences a frame")
    parser.add_argument("--o-candidates", type=int, default=4, help="O-Net inferences a frame")
    parser.add_argument("--nets", default="pnet,rnet,onet")
    parser.add_argument("--act", default="relu", help="relu, leaky, or prelu (MTCNN's own; FINN does not map it: the flow stops naming the layer)")
    parser.add_argument("--vae-targets", default="", help="also estimate the VAE folded for these crops/s (comma list)")
    parser.add_argument("--bundle", type=Path, default=None, help="bundle holding the VAE graph (default: the committed one)")
    parser.add_argument("--arm-result", type=Path, default=None,
                        help="an ARM harness result.json (build/board/<board>/estimate/<variant>/): its frames/s "
                             "with the networks' instructions removed")
    args = parser.parse_args(argv)

    def run(_args):
        nets = tuple(n for n in args.nets.split(",") if n)
        try:
            vae_targets = tuple(float(t) for t in args.vae_targets.split(",") if t)
        except ValueError:
            raise SnapsealError(f"--vae-targets must be numbers separated by commas, got {args.vae_targets!r}") from None
        out = args.out / args.board
        result = estimate_detector(args.board, out, frame=(args.height, args.width), min_face_px=args.min_face,
                                   scale_factor=args.scale_factor, frames_per_s=args.fps, r_candidates=args.r_candidates,
                                   o_candidates=args.o_candidates, nets=nets, act=args.act,
                                   vae_targets=vae_targets, bundle=args.bundle,
                                   progress=lambda m: print(m, file=sys.stderr, flush=True))
        if args.arm_result is not None:
            result["arm"] = arm_frames_per_s(args.board, args.arm_result)
            (out / "estimate.json").write_text(json.dumps(result, indent=1) + "\n")
        brief = {k: result[k] for k in ("board", "pyramid_levels_hw", "detector_totals", "detector_utilization")}
        brief["nets"] = {n: {k: r[k] for k in ("input_hw", "totals", "fps", "latency_ms") if k in r}
                         for n, r in result["nets"].items()}
        if "arm" in result:
            brief["arm"] = result["arm"]["rows"]
        brief["vae"] = {t: {k: v[k] for k in ("totals", "crops_per_s")} for t, v in result["vae"].items()}
        print(json.dumps(brief, indent=1))
        print(f"wrote {out / 'estimate.json'}", file=sys.stderr)
        return 0

    from snapseal.cli import run_command

    args.func = run
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
