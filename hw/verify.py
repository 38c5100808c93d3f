"""Bit-exact verification chain: every stage from Brevitas to the daemon's emulation must
produce identical INTEGER outputs on the same crops.

Stages (forward-at-mean graph: mu_z, log_sigma_z, decoder_out):

1. ``brevitas``   the torch model (when given);
2. ``qonnx``      the bundle's QONNX graph, qonnx's node-by-node executor;
3. ``finn_streamlined``  FINN's streamlined graph (after our lowerings), float outputs;
4. ``finn_integer``      the same with the host tails cut off: the integers the FPGA streams;
5. ``finn_hw_layers``    the folded hardware-layer dataflow graph (specialized nodes mapped
                         back to their generic op names so they run in Python) + host input
                         transpose;
6. ``emulate``    the daemon's emulation backend (``snapseal.daemon.accel.emulate``).

Float outputs are turned into integers by undoing their host tail (divide by the
power-of-two scale, invert the transpose); a non-integer quotient is itself a failure. Checks
are exact integer equality (FINN's own verify reports FAIL on zeros: relative error / 0).

``python -m snapseal.hw.verify`` (``make verify-hw``) runs the chain and, with
``--write-golden`` (``make golden``), stores the crops and expected integers in the bundle
itself (``<bundle>/golden/``, hashed in its manifest) for ``snapseal selftest`` on a board.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from snapseal.daemon.accel.host_tail import integers_of
from snapseal.daemon.errors import SnapsealError

OUTPUT_NAMES = ("mu_z", "log_sigma_z", "decoder_out")


@dataclass
class StageResult:
    name: str
    outputs: dict[str, np.ndarray]  # output name -> int64 N x integer_shape[1:]
    seconds: float


@dataclass
class ChainReport:
    crops: int
    stages: list[StageResult] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and len(self.stages) > 1

    def summary(self) -> dict[str, Any]:
        return {
            "crops": self.crops,
            "stages": [s.name for s in self.stages],
            "seconds": {s.name: round(s.seconds, 2) for s in self.stages},
            "identical": self.ok,
            "mismatches": self.mismatches,
        }


def compare_stages(report: ChainReport) -> None:
    reference = report.stages[0]
    for stage in report.stages[1:]:
        for name, expected in reference.outputs.items():
            got = stage.outputs.get(name)
            if got is None or got.shape != expected.shape:
                report.mismatches.append(f"{stage.name}/{name}: shape {None if got is None else got.shape} != {expected.shape}")
                continue
            differing = int(np.count_nonzero(got != expected))
            if differing:
                report.mismatches.append(
                    f"{stage.name}/{name}: {differing} of {expected.size} integers differ from {reference.name} "
                    f"(max |diff| {int(np.max(np.abs(got - expected)))})"
                )


# --------------------------------------------------------------------------- stage runners
def _per_crop(run_one: Callable[[np.ndarray], list[np.ndarray]], crops: np.ndarray, progress: bool, label: str) -> list[np.ndarray]:
    from tqdm import tqdm

    results: list[list[np.ndarray]] = []
    for crop in tqdm(crops, desc=label, disable=not progress, leave=False):
        results.append(run_one(crop))
    return [np.concatenate([r[i] for r in results]) for i in range(len(results[0]))]


def generic_hw_model(model):
    """Specialized FINN nodes (*_hls / *_rtl) -> generic op names, which execute in Python."""
    import copy

    model = copy.deepcopy(model)
    for node in model.graph.node:
        for suffix in ("_hls", "_rtl"):
            if node.op_type.endswith(suffix):
                node.op_type = node.op_type[: -len(suffix)]
                node.domain = "finn.custom_op.fpgadataflow"
    return model


def explicit_im2col_padding(model):
    """Python-executable copy: Im2Col on a 1-pixel-high/wide image with a 2-D kernel and padding
    (the decoder stem: 1x1 latent map, k2 deconv) -> ONNX Pad + the same Im2Col unpadded.

    qonnx's Python Im2Col refuses such inputs (it reserves size-1 dims for 1-D convolutions);
    zero-padding first and then windowing is the same computation (FINN's pad value is 0).
    """
    import copy

    from onnx import helper
    from qonnx.util.basic import get_by_name

    model = copy.deepcopy(model)
    for node in list(model.graph.node):
        if node.op_type != "Im2Col":
            continue
        pad = list(get_by_name(node.attribute, "pad_amount").ints)
        pad_value = get_by_name(node.attribute, "pad_value")
        if not any(pad) or (pad_value is not None and pad_value.i != 0):
            continue
        n, h, w, c = model.get_tensor_shape(node.input[0])
        if h != 1 and w != 1:
            continue
        top, left, bottom, right = pad
        padded = model.make_new_valueinfo_name()
        pads = model.make_new_valueinfo_name()
        model.set_initializer(pads, np.asarray([0, top, left, 0, 0, bottom, right, 0], dtype=np.int64))
        model.set_tensor_shape(padded, [n, h + top + bottom, w + left + right, c])
        model.set_tensor_datatype(padded, model.get_tensor_datatype(node.input[0]))
        index = list(model.graph.node).index(node)
        model.graph.node.insert(index, helper.make_node("Pad", [node.input[0], pads], [padded], mode="constant"))
        node.input[0] = padded
        get_by_name(node.attribute, "pad_amount").ints[:] = [0, 0, 0, 0]
        get_by_name(node.attribute, "input_shape").s = str((n, h + top + bottom, w + left + right, c)).replace(" ", "").encode()
    return model


def run_graph_stage(model, crops: np.ndarray, input_layout: str, progress: bool, label: str,
                    output_names: list[str] | None = None) -> list[np.ndarray]:
    """execute_onnx per crop (FINN graphs have batch 1); returns the named (default: all) outputs."""
    from finn.core.onnx_exec import execute_onnx

    input_name = model.graph.input[0].name
    output_names = output_names or [o.name for o in model.graph.output]

    def one(crop: np.ndarray) -> list[np.ndarray]:
        x = crop.astype(np.float32)[None, None] if input_layout == "NCHW" else crop.astype(np.float32)[None, :, :, None]
        out = execute_onnx(model, {input_name: x})
        return [np.asarray(out[name]) for name in output_names]

    return _per_crop(one, crops, progress, label)


def as_integer_outputs(tails: list[dict], values: list[np.ndarray], already_integer: bool) -> dict[str, np.ndarray]:
    out = {}
    for tail, value in zip(tails, values):
        if already_integer:
            rounded = np.round(value)
            if not np.array_equal(rounded, value):
                raise AssertionError(f"{tail['output_name']}: hardware output is not integral")
            out[tail["output_name"]] = rounded.astype(np.int64).reshape(len(value), *tail["integer_shape"][1:])
        else:
            out[tail["output_name"]] = integers_of(tail, value)
    return out


def verify_chain(
    qonnx_path: Path,
    flow_dir: Path,
    crops: np.ndarray,
    *,
    torch_model=None,
    bundle_dir: Path | None = None,
    progress: bool = True,
) -> ChainReport:
    """Run every stage on ``crops`` (N x 64 x 64 uint8). ``flow_dir`` holds an estimate run of
    ``hw.flow`` on ``qonnx_path`` (intermediate models + host_tails.json)."""
    from qonnx.core.modelwrapper import ModelWrapper

    tails = json.loads((flow_dir / "host_tails.json").read_text())
    report = ChainReport(crops=len(crops))
    saved = sorted((flow_dir / "intermediate_models").glob("*.onnx"))

    def saved_model(step: str):
        match = [p for p in saved if p.stem.endswith(step)]
        if not match:
            raise SnapsealError(f"{flow_dir}: no saved model for {step}; run the estimate flow first")
        return ModelWrapper(str(match[-1]))

    def add(name: str, fn: Callable[[], dict[str, np.ndarray]]) -> None:
        started = time.perf_counter()
        outputs = fn()
        report.stages.append(StageResult(name, outputs, time.perf_counter() - started))

    if torch_model is not None:
        def brevitas() -> dict[str, np.ndarray]:
            import torch

            with torch.no_grad():
                outs = torch_model(torch.from_numpy(crops.astype(np.float32)[:, None]))
            return as_integer_outputs(tails, [o.detach().numpy() for o in outs], False)

        add("brevitas", brevitas)

    def qonnx_stage() -> dict[str, np.ndarray]:
        from snapseal.daemon.accel.emulate import QonnxRunner

        runner = QonnxRunner(Path(qonnx_path), batch=len(crops))
        out = runner(crops.astype(np.float32)[:, None])
        return as_integer_outputs(tails, [out[name] for name in runner.output_names], False)

    add("qonnx", qonnx_stage)

    streamlined = explicit_im2col_padding(saved_model("step_exact_thresholds"))
    add("finn_streamlined", lambda: as_integer_outputs(
        tails, run_graph_stage(streamlined, crops, "NCHW", progress, "finn streamlined"), False))
    integer_model = explicit_im2col_padding(saved_model("step_split_host_tails"))
    add("finn_integer", lambda: as_integer_outputs(
        tails, run_graph_stage(integer_model, crops, "NCHW", progress, "finn integer"), True))
    unfolded = generic_hw_model(saved_model("step_name_hw_outputs"))
    add("finn_hw_unfolded", lambda: as_integer_outputs(
        tails, run_graph_stage(unfolded, crops, "NCHW", progress, "finn hw (unfolded)",
                               [t["stream_name"] for t in tails]), True))
    hw_model = generic_hw_model(saved_model("step_generate_estimate_reports"))
    add("finn_hw_layers", lambda: as_integer_outputs(
        tails, run_graph_stage(hw_model, crops, "NHWC", progress, "finn hw layers",
                               [t["stream_name"] for t in tails]), True))

    if bundle_dir is not None:
        def emulate() -> dict[str, np.ndarray]:
            from snapseal.daemon.accel.emulate import EmulateAccelerator
            from snapseal.daemon.bundle import load_bundle

            raw = EmulateAccelerator(load_bundle(bundle_dir)).run_forward_at_mean_raw(crops)
            return as_integer_outputs(tails, [raw[t["output_name"]] for t in tails], False)

        add("emulate", emulate)

    compare_stages(report)
    return report


# --------------------------------------------------------------------------- golden vectors
FULL_ROWS_LIMIT = 1024  # outputs with more integers per crop store full rows for the first crops only
HEAD_ROWS = 16


def write_golden(out_dir: Path, crops: np.ndarray, outputs: dict[str, np.ndarray], tails: list[dict], model_id: str) -> Path:
    """crops.npy (N x 64 x 64 uint8) + expected_<output>.npy (smallest int dtype) + golden.json.

    Small outputs (mu_z, log_sigma_z) are stored whole. Large ones (decoder_out: 8 KB a crop)
    are stored whole for the first ``HEAD_ROWS`` crops (to say how many integers differ) and as
    one sha256 per crop for all of them (the same bit-exact check, in ~70 bytes a crop), so the
    golden set stays a few hundred KB (see ``snapseal.daemon.cli.selftest.compare_output``).
    """
    from snapseal.daemon.cli.selftest import row_digests

    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "crops.npy", crops.astype(np.uint8))
    files, digests = {}, {}
    for name, values in outputs.items():
        dtype = np.int8 if values.min() >= -128 and values.max() <= 127 else np.int16 if values.min() >= -32768 and values.max() <= 32767 else np.int32
        typed = values.astype(dtype)
        if typed[0].size > FULL_ROWS_LIMIT:
            digests[name] = row_digests(typed)
            typed = typed[:HEAD_ROWS]
        np.save(out_dir / f"expected_{name}.npy", typed)
        files[name] = f"expected_{name}.npy"
    meta = {"model_id": model_id, "crops": int(len(crops)), "expected": files, "digests": digests, "output_tails": tails}
    (out_dir / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out_dir


def store_golden_in_bundle(bundle_dir: Path, crops: np.ndarray, outputs: dict[str, np.ndarray], tails: list[dict],
                           model_id: str, driver_settings: dict | None = None) -> Path:
    """Write the golden vectors into ``<bundle>/golden/`` (replaced as a whole) and re-hash the
    bundle's manifest, which then names them (``"golden": "golden/golden.json"``)."""
    import shutil

    from snapseal.daemon.bundle import GOLDEN_DIR, GOLDEN_META, MANIFEST, write_manifest

    bundle_dir = Path(bundle_dir)
    partial = bundle_dir / f"{GOLDEN_DIR}.partial"
    final = bundle_dir / GOLDEN_DIR
    shutil.rmtree(partial, ignore_errors=True)
    write_golden(partial, crops, outputs, tails, model_id)
    if driver_settings is not None:
        (partial / "driver_settings.json").write_text(json.dumps(driver_settings, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    write_manifest(bundle_dir, {**manifest, "golden": GOLDEN_META})
    return final


def golden_crops(count: int, seed: int = 0, real_faces: Path | None = None) -> np.ndarray:
    """Real crops when a crops file is given (first ``count``), padded with deterministic
    structured patterns (gradients, noise, flat, extremes 0/255) so every code path is hit."""
    rng = np.random.default_rng(seed)
    crops: list[np.ndarray] = []
    if real_faces is not None and real_faces.is_file():
        data = np.load(real_faces)
        arr = (data["crops"] if "crops" in data.files else data[data.files[0]]) if hasattr(data, "files") else data
        crops.extend(np.asarray(arr[: count // 2], dtype=np.uint8).reshape(-1, 64, 64))
    yy, xx = np.mgrid[0:64, 0:64]
    patterns = [np.zeros((64, 64)), np.full((64, 64), 255), (xx * 4) % 256, (yy * 4) % 256]
    crops.extend(np.asarray(p, np.uint8) for p in patterns)
    while len(crops) < count:
        kind = len(crops) % 3
        if kind == 0:
            crop = rng.integers(0, 256, (64, 64))
        elif kind == 1:
            crop = np.clip(128 + 60 * np.sin(xx / rng.uniform(2, 9)) * np.cos(yy / rng.uniform(2, 9)) + rng.normal(0, 10, (64, 64)), 0, 255)
        else:
            crop = np.clip(rng.uniform(40, 200) + (xx - 32) * rng.uniform(-3, 3) + (yy - 32) * rng.uniform(-3, 3), 0, 255)
        crops.append(np.asarray(crop, np.uint8))
    return np.stack(crops[:count]).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.hw.verify", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the committed default bundle)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="torch state dict of the bundle's model (adds the Brevitas stage)")
    parser.add_argument("--board", default="pynq-z2")
    parser.add_argument("--out", type=Path, default=Path("build/hw/verify"))
    parser.add_argument("--crops", type=int, default=100)
    parser.add_argument("--faces", type=Path, default=None, help="optional .npy/.npz of real 64x64 crops")
    parser.add_argument("--write-golden", action="store_true", help="store the golden vectors in the bundle (make golden)")
    args = parser.parse_args(argv)

    from snapseal.daemon.bundle import default_bundle_dir, load_bundle
    from snapseal.hw.boards import get_board
    from snapseal.hw.flow import estimate

    try:
        bundle_dir = args.bundle or default_bundle_dir()
        bundle = load_bundle(bundle_dir)
        qonnx_path = bundle.graphs["forward_at_mean"]
        flow_dir = args.out / "flow"
        estimate(qonnx_path, get_board(args.board), flow_dir, progress=lambda m: print(m, file=sys.stderr))
        torch_model = None
        checkpoint = args.checkpoint or bundle_checkpoint(bundle)
        if checkpoint is not None:
            print(f"Brevitas stage from {checkpoint}", file=sys.stderr)
            torch_model = load_torch_model(checkpoint, bundle)
        else:
            print("no checkpoint for the bundle: the Brevitas stage is skipped", file=sys.stderr)
        crops = golden_crops(args.crops, real_faces=args.faces)
        report = verify_chain(qonnx_path, flow_dir, crops, torch_model=torch_model, bundle_dir=bundle_dir)
    except SnapsealError as error:
        print(f"snapseal: error: {error}", file=sys.stderr)
        return 2
    summary = report.summary()
    (args.out / "verify.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if report.ok and args.write_golden:
        tails = json.loads((flow_dir / "host_tails.json").read_text())
        from qonnx.core.modelwrapper import ModelWrapper

        from snapseal.hw.driver_settings import predict_driver_settings

        folded = sorted((flow_dir / "intermediate_models").glob("*step_generate_estimate_reports.onnx"))[-1]
        settings = predict_driver_settings(ModelWrapper(str(folded)), tails, max_batch=8)
        written = store_golden_in_bundle(Path(bundle_dir), crops, report.stages[-1].outputs, tails, bundle.model_id, settings)
        print(f"golden vectors written to {written} (listed in {Path(bundle_dir) / 'manifest.json'})")
    return 0 if report.ok else 1


def bundle_checkpoint(bundle) -> Path | None:
    """The training checkpoint the bundle's manifest names, if it is on this machine and is
    the run the bundle was exported from."""
    from snapseal.quantize.bundle_writer import checkpoint_mismatch, training_checkpoint

    checkpoint = training_checkpoint(bundle.manifest)
    if checkpoint is None:
        return None
    why = checkpoint_mismatch(checkpoint, bundle.manifest)
    if why:
        print(f"{checkpoint} is not the bundle's checkpoint ({why}): the Brevitas stage is skipped "
              "(pass --checkpoint to force it)", file=sys.stderr)
        return None
    return checkpoint


def load_torch_model(checkpoint: Path, bundle):
    """The bundle's model in Brevitas from a checkpoint (state dict, or {'model': state, 'config': ...})."""
    import torch

    from snapseal.quantize.model import VAE, ForwardAtMean, VAEConfig

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = None
    if isinstance(state, dict) and "model" in state:
        config = state.get("config")
        state = state["model"]
    cfg = VAEConfig.from_dict(config) if isinstance(config, dict) else VAEConfig.from_dict(bundle.manifest.get("model_config", {})) if bundle.manifest.get("model_config") else VAEConfig()
    vae = VAE(cfg)
    vae.load_state_dict(state)
    return ForwardAtMean(vae.eval()).eval()


if __name__ == "__main__":
    sys.exit(main())
