"""The FINN build as a list of named steps ``(model, cfg) -> model``.

FINN's own step functions (``finn.builder.build_dataflow_steps``) with ours inserted where
the VAE's decoder layers need them (docs/HARDWARE.md: LeakyRelu, ConvTranspose and Resize do not map
in the default flow). The loop is FINN's ``build_dataflow_cfg`` loop made strict: every
step's model is saved to ``<out>/intermediate_models/NN_<step>.onnx`` and a failure stops the
build with one line naming the step and, when there is one, the layer.

Two step lists: :func:`estimate_steps` (no Vivado: ends at FINN's estimate reports) and
:func:`bitstream_steps` (the same, then FINN's hardware generation, stitching, synthesis and
driver). :func:`estimate` and :func:`build_bitstream` are the entry points ``hw/cli.py``
calls for ``make estimate`` / ``make bitstream``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from snapseal.daemon.errors import SnapsealError
from snapseal.hw.boards import BoardProfile
from snapseal.hw.finn_env import boot_finn

StepFn = Callable[[Any, Any], Any]  # (ModelWrapper, DataflowBuildConfig) -> ModelWrapper
HW_DOMAIN = "finn.custom_op.fpgadataflow"


class FlowError(SnapsealError):
    """A build step failed; the message names the step and the layer."""


@dataclass(frozen=True)
class FlowStep:
    name: str
    run: StepFn


# --------------------------------------------------------------------------- our steps
def step_fold_leaky_relu(model, cfg):
    """LeakyRelu -> next MultiThreshold (hw/transforms/leaky_relu.py)."""
    from snapseal.hw.transforms.leaky_relu import FoldLeakyReluIntoMultiThreshold

    return model.transform(FoldLeakyReluIntoMultiThreshold())


def step_streamline_vae(model, cfg):
    """FINN's step_streamline plus the ConvTranspose and Resize lowerings in the right places.

    Scales must be collapsed into thresholds before the deconv is lowered (its scalar Mul moves
    past it), and the Resize must sit in NHWC between the lowered convs' layout Transposes.
    """
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    from snapseal.hw.transforms.conv_transpose import LowerConvTranspose
    from snapseal.hw.transforms.dense_layout import AbsorbTransposeFlattenIntoDense
    from snapseal.hw.transforms.forks import CloneForkedLinearPerConsumer
    from snapseal.hw.transforms.resize import MakeResizeNHWC

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(Streamline())
    # Scales at forks (mu_z: output + decoder input; features: two dense heads).
    model = model.transform(CloneForkedLinearPerConsumer())
    model = model.transform(Streamline())
    model = model.transform(LowerConvTranspose())
    model = model.transform(Streamline())
    model = model.transform(LowerConvsToMatMul())
    model = model.transform(MakeMaxPoolNHWC())
    model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
    model = model.transform(MakeResizeNHWC())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())
    model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
    model = model.transform(AbsorbTransposeFlattenIntoDense())
    model = model.transform(CloneForkedLinearPerConsumer(("Flatten", "Reshape")))
    model = model.transform(Streamline())
    model = model.transform(InferDataLayouts())
    model = model.transform(RemoveUnusedTensors())
    return model


REFERENCE_FILE = "reference_qonnx.onnx"
EXACT_THRESHOLDS_FILE = "exact_thresholds.json"


def step_annotate_uint8_input(model, cfg):
    """The crops are raw uint8 pixels (hw/transforms/host_tail.py).

    The untouched QONNX graph is kept as ``<out>/reference_qonnx.onnx``: step_exact_thresholds
    derives the hardware thresholds from it.
    """
    from snapseal.hw.transforms.host_tail import annotate_uint8_input

    model.save(str(Path(cfg.output_dir) / REFERENCE_FILE))
    return annotate_uint8_input(model)


def step_exact_thresholds(model, cfg):
    """Every MultiThreshold -> the exact integer thresholds of the quantizer it replaces
    (hw/transforms/exact_thresholds.py: round-half-even ties and float32 rounding as Brevitas).
    What changed goes to ``<out>/exact_thresholds.json``."""
    from dataclasses import asdict

    from qonnx.core.modelwrapper import ModelWrapper

    from snapseal.hw.transforms.exact_thresholds import MakeThresholdsExact

    exact = MakeThresholdsExact(ModelWrapper(str(Path(cfg.output_dir) / REFERENCE_FILE)))
    model = model.transform(exact)
    report = {"fixes": [asdict(fix) for fix in exact.fixes], "kept_finn_thresholds": exact.kept,
              "skipped_references": exact.skipped}
    (Path(cfg.output_dir) / EXACT_THRESHOLDS_FILE).write_text(json.dumps(report, indent=1) + "\n")
    return model


HOST_TAILS_FILE = "host_tails.json"


def step_split_host_tails(model, cfg):
    """Float output scaling -> host; the accelerator's outputs become integer tensors.

    The tails are written to ``<out>/host_tails.json`` (the driver settings carry them).
    """
    from snapseal.hw.transforms.host_tail import split_host_tails

    model, tails = split_host_tails(model)
    out = Path(cfg.output_dir) / HOST_TAILS_FILE
    out.write_text(json.dumps([tail.to_json() for tail in tails], indent=1))
    return model


def load_host_tails(cfg) -> list[dict]:
    return json.loads((Path(cfg.output_dir) / HOST_TAILS_FILE).read_text())


def step_name_hw_outputs(model, cfg):
    """Name every accelerator output ``<output>_int`` (by position, fixed before partitioning
    reorders them): the driver settings and the verification match streams by these names."""
    tails = load_host_tails(cfg)
    if len(model.graph.output) != len(tails):
        raise FlowError(f"graph has {len(model.graph.output)} outputs but {len(tails)} host tails")
    for output, tail in zip(list(model.graph.output), tails):
        wanted = f"{tail['output_name']}_int"
        if output.name != wanted:
            model.rename_tensor(output.name, wanted)
        tail["stream_name"] = wanted
    (Path(cfg.output_dir) / HOST_TAILS_FILE).write_text(json.dumps(tails, indent=1))
    return model


def step_resize_to_upsample(model, cfg):
    """Resize (NHWC, integer) -> UpsampleNearestNeighbour (hw/transforms/resize.py)."""
    from snapseal.hw.transforms.resize import InferUpsampleFromResize

    return model.transform(InferUpsampleFromResize())


def unmapped_inner_nodes(model) -> list:
    """Non-hardware nodes with hardware on both sides: these would split the accelerator."""
    hw_names = {n.name for n in model.graph.node if n.domain.startswith(HW_DOMAIN)}
    if not hw_names:
        return list(model.graph.node)

    def reaches_hw(node, forward: bool) -> bool:
        seen, stack = set(), [node]
        while stack:
            current = stack.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            if forward:
                nxt = [c for o in current.output for c in (model.find_consumers(o) or [])]
            else:
                nxt = [p for i in current.input if (p := model.find_producer(i)) is not None]
            for other in nxt:
                if other.name in hw_names:
                    return True
                stack.append(other)
        return False

    return [
        n
        for n in model.graph.node
        if n.name not in hw_names and reaches_hw(n, True) and reaches_hw(n, False)
    ]


def step_remove_hw_flatten(model, cfg):
    """Flatten between hardware layers (encoder features -> both dense heads) is a no-op."""
    from snapseal.hw.transforms.dense_layout import RemoveFlattenBetweenHwLayers

    return model.transform(RemoveFlattenBetweenHwLayers())


def step_check_all_mapped(model, cfg):
    """Stop naming the first layer no hardware layer was inferred for (before partitioning)."""
    inner = unmapped_inner_nodes(model)
    if inner:
        node = inner[0]
        raise FlowError(
            f"layer {node.name} ({node.op_type}) has no FINN hardware mapping after "
            f"step_convert_to_hw; unmapped: {', '.join(n.name for n in inner)}"
        )
    return model


def _finn_step(name: str) -> FlowStep:
    def run(model, cfg):
        from finn.builder.build_dataflow_steps import build_dataflow_step_lookup

        return build_dataflow_step_lookup[name](model, cfg)

    return FlowStep(name, run)


def estimate_steps() -> list[FlowStep]:
    """FINN's estimate_only_dataflow_steps with our lowerings inserted."""
    return [
        FlowStep("step_annotate_uint8_input", step_annotate_uint8_input),
        _finn_step("step_qonnx_to_finn"),
        _finn_step("step_tidy_up"),
        FlowStep("step_fold_leaky_relu", step_fold_leaky_relu),
        FlowStep("step_streamline_vae", step_streamline_vae),
        FlowStep("step_exact_thresholds", step_exact_thresholds),
        FlowStep("step_split_host_tails", step_split_host_tails),
        FlowStep("step_resize_to_upsample", step_resize_to_upsample),
        _finn_step("step_convert_to_hw"),
        FlowStep("step_remove_hw_flatten", step_remove_hw_flatten),
        FlowStep("step_name_hw_outputs", step_name_hw_outputs),
        FlowStep("step_check_all_mapped", step_check_all_mapped),
        _finn_step("step_minimize_bit_width_initial"),
        _finn_step("step_create_dataflow_partition"),
        _finn_step("step_specialize_layers"),
        _finn_step("step_target_fps_parallelization"),
        _finn_step("step_apply_folding_config"),
        _finn_step("step_minimize_bit_width"),
        _finn_step("step_generate_estimate_reports"),
    ]


def bitstream_steps() -> list[FlowStep]:
    """The estimate steps, then FINN's default hardware steps to a bitfile and driver."""
    hardware = [
        "step_transpose_decomposition",
        "step_assign_ddr_weight_offsets",
        "step_generate_hardware",
        "step_create_stitched_ip",
        "step_out_of_context_synthesis",
        "step_prepare_synthesis",
        "step_synthesize_bitfile",
        "step_make_driver",
        "step_deployment_package",
    ]
    return estimate_steps() + [_finn_step(name) for name in hardware]


# --------------------------------------------------------------------------- config + runner
def make_build_config(board: BoardProfile, out_dir: Path, *, bitstream: bool = False):
    from finn.builder.build_dataflow_config import (
        DataflowBuildConfig,
        DataflowOutputType,
        ShellFlowType,
    )

    outputs = [DataflowOutputType.ESTIMATE_REPORTS]
    if bitstream:
        outputs += [
            DataflowOutputType.STITCHED_IP,
            DataflowOutputType.BITFILE,
            DataflowOutputType.PYNQ_DRIVER,
            DataflowOutputType.DEPLOYMENT_PACKAGE,
        ]
    return DataflowBuildConfig(
        output_dir=str(out_dir),
        synth_clk_period_ns=board.clock_period_ns,
        board=board.finn_board,
        fpga_part=board.part,
        shell_flow_type=ShellFlowType.VIVADO_ZYNQ,
        target_fps=board.folding_target_fps,
        mvau_wwidth_max=board.mvau_wwidth_max,
        generate_outputs=outputs,
        save_intermediate_models=True,
    )


def run_steps(model_path: Path, steps: list[FlowStep], cfg, out_dir: Path, progress=None):
    """Run ``steps`` in order, saving each step's model; failures name step and layer."""
    from qonnx.core.modelwrapper import ModelWrapper

    boot_finn(Path(out_dir) / "finn_tmp")
    model = ModelWrapper(str(model_path))
    saved_dir = Path(out_dir) / "intermediate_models"
    saved_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    for index, step in enumerate(steps, start=1):
        if progress is not None:
            progress(f"[{index}/{len(steps)}] {step.name}")
        started = time.perf_counter()
        try:
            model = step.run(model, cfg)
        except FlowError as error:
            raise FlowError(f"build stopped at {step.name}: {error}") from error
        except Exception as error:  # FINN raises many types; the user needs step + message
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise FlowError(
                f"build stopped at {step.name}: {type(error).__name__}: {first_line}"
            ) from error
        timings[step.name] = round(time.perf_counter() - started, 3)
        model.save(str(saved_dir / f"{index:02d}_{step.name}.onnx"))
    (Path(out_dir) / "step_times.json").write_text(json.dumps(timings, indent=2))
    return model


# --------------------------------------------------------------------------- estimate
RESOURCE_KEYS = ("LUT", "BRAM_18K", "DSP")


def summarize_estimate(board: BoardProfile, report_dir: Path) -> dict:
    """FINN's report JSONs -> our estimate.json dict (totals, budget, %, crops/s, layers)."""
    resources = json.loads((report_dir / "estimate_layer_resources.json").read_text())
    cycles = json.loads((report_dir / "estimate_layer_cycles.json").read_text())
    performance = json.loads((report_dir / "estimate_network_performance.json").read_text())
    totals_raw = resources.pop("total")
    totals = {key: int(round(float(totals_raw.get(key, 0)))) for key in RESOURCE_KEYS}
    budget = board.budget.as_dict()
    utilization = {key: round(totals[key] / budget[key], 4) for key in RESOURCE_KEYS}
    layers = [
        {
            "layer": name,
            **{key: int(round(float(values.get(key, 0)))) for key in RESOURCE_KEYS},
            "cycles": int(cycles.get(name, 0)),
        }
        for name, values in resources.items()
    ]
    crops_per_s = float(performance["estimated_throughput_fps"])
    return {
        "board": board.name,
        "part": board.part,
        "clock_mhz": board.clock_mhz,
        "totals": totals,
        "budget": budget,
        "utilization": utilization,
        "limits": {"LUT": board.max_lut_fraction, "BRAM_18K": board.max_bram_fraction},
        "crops_per_s": round(crops_per_s, 1),
        "target_crops_per_s": board.target_crops_per_s,
        "latency_ms": round(float(performance["estimated_latency_ns"]) / 1e6, 3),
        "meets": {
            "throughput": crops_per_s >= board.target_crops_per_s,
            "LUT": utilization["LUT"] <= board.max_lut_fraction,
            "BRAM_18K": utilization["BRAM_18K"] <= board.max_bram_fraction,
        },
        "bottleneck_layer": max(layers, key=lambda layer: layer["cycles"])["layer"] if layers else None,
        "layers": layers,
        "note": "FINN analytical estimates of the dataflow partition only (no IODMA/shell/FIFOs)",
    }


def estimate_markdown(summary: dict) -> str:
    lines = [
        f"# FINN estimate: {summary['board']} ({summary['part']}, {summary['clock_mhz']:g} MHz)",
        "",
        f"crops/s: **{summary['crops_per_s']:.0f}** (target {summary['target_crops_per_s']:.0f}), "
        f"latency {summary['latency_ms']:.2f} ms, bottleneck {summary['bottleneck_layer']}",
        "",
        "| layer | LUT | BRAM_18K | DSP | cycles |",
        "|---|---:|---:|---:|---:|",
    ]
    for layer in summary["layers"]:
        lines.append(
            f"| {layer['layer']} | {layer['LUT']} | {layer['BRAM_18K']} | {layer['DSP']} | {layer['cycles']} |"
        )
    totals, budget, use = summary["totals"], summary["budget"], summary["utilization"]
    lines.append(
        f"| **total** | {totals['LUT']} ({use['LUT']:.1%}) | {totals['BRAM_18K']} ({use['BRAM_18K']:.1%}) "
        f"| {totals['DSP']} ({use['DSP']:.1%}) | |"
    )
    lines.append(f"| budget | {budget['LUT']} | {budget['BRAM_18K']} | {budget['DSP']} | |")
    return "\n".join(lines) + "\n"


def estimate(model_path: Path, board: BoardProfile, out_dir: Path, progress=None) -> dict:
    """Run the estimate steps; write estimate.json and estimate.md into ``out_dir``."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir / "intermediate_models", ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = make_build_config(board, out_dir)
    run_steps(Path(model_path), estimate_steps(), cfg, out_dir, progress=progress)
    summary = summarize_estimate(board, out_dir / "report")
    summary["model"] = str(model_path)
    (out_dir / "estimate.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "estimate.md").write_text(estimate_markdown(summary))
    return summary


# --------------------------------------------------------------------------- bitstream
def missing_hardware_tools() -> list[str]:
    """What a bitstream build needs and this machine lacks (empty = all there)."""
    missing = []
    if not os.environ.get("XILINX_VIVADO"):
        missing.append("XILINX_VIVADO is not set")
    for tool in ("vitis_hls", "vivado"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} not found on PATH")
    return missing
