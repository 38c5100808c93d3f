"""Full FINN build to a bitstream, then a COPY of the bundle with the hardware part added.

Needs Vivado + Vitis HLS (``hw.flow.missing_hardware_tools`` is checked first by the CLI).
The new bundle is assembled in ``<out>/bundle.partial`` and renamed to ``<out>/bundle`` only
when complete, so a failed build never leaves a half-written bundle behind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from snapseal.daemon.errors import SnapsealError
from snapseal.hw.boards import BoardProfile


def build_bitstream_bundle(bundle_dir: Path | None, board: BoardProfile, out_dir: Path, progress=None) -> Path:
    from qonnx.core.modelwrapper import ModelWrapper

    from snapseal.daemon.bundle import load_bundle
    from snapseal.hw.driver_settings import merge_finn_settings, predict_driver_settings
    from snapseal.hw.flow import HOST_TAILS_FILE, bitstream_steps, make_build_config, run_steps

    bundle = load_bundle(bundle_dir)
    out_dir = Path(out_dir)
    flow_dir = out_dir / "flow"
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = make_build_config(board, flow_dir, bitstream=True)
    run_steps(bundle.graphs["forward_at_mean"], bitstream_steps(), cfg, flow_dir, progress=progress)
    tails = json.loads((flow_dir / HOST_TAILS_FILE).read_text())
    bitfiles = sorted(flow_dir.rglob("*.bit"))
    hwhs = sorted(flow_dir.rglob("*.hwh"))
    finn_settings = sorted(flow_dir.rglob("driver/settings.json")) or sorted(flow_dir.rglob("settings.json"))
    if not bitfiles or not hwhs:
        raise SnapsealError(f"{flow_dir}: the FINN build finished without a .bit/.hwh (see its build log)")
    folded = ModelWrapper(str(sorted((flow_dir / "intermediate_models").glob("*step_generate_estimate_reports.onnx"))[-1]))
    driver = predict_driver_settings(folded, tails)
    if finn_settings:
        driver = merge_finn_settings(driver, json.loads(finn_settings[0].read_text()))

    estimate = json.loads((flow_dir / "estimate.json").read_text()) if (flow_dir / "estimate.json").is_file() else {}
    return assemble_bitstream_bundle(bundle.path, board, bitfiles[0], hwhs[0], driver, estimate, out_dir)


def assemble_bitstream_bundle(bundle_dir: Path, board: BoardProfile, bitfile: Path, hwh: Path, driver: dict,
                              estimate: dict, out_dir: Path) -> Path:
    """``<out>/bundle``: a copy of the bundle with the bitstream, its .hwh and the hardware
    section (``snapseal.daemon.bundle.HardwareSection``, the one definition the loader, the
    fpga backend and deploy/install.sh read). Assembled in ``bundle.partial``, verified, then
    renamed, so a failure never leaves a half-written bundle."""
    from snapseal.daemon.bundle import HardwareSection, load_bundle, write_manifest

    bundle = load_bundle(bundle_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    section = HardwareSection.for_board(
        board.name, driver, part=board.part, clock_mhz=board.clock_mhz,
        estimate={k: estimate[k] for k in ("totals", "crops_per_s") if k in estimate},
    )
    partial = out_dir / "bundle.partial"
    final = out_dir / "bundle"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(bundle.path, partial)
    shutil.rmtree(partial / "hw", ignore_errors=True)  # one board's bitstream per bundle
    (partial / section.bitfile).parent.mkdir(parents=True)
    shutil.copy2(bitfile, partial / section.bitfile)
    shutil.copy2(hwh, partial / section.hwh)  # pynq finds the .hwh next to the .bit by name
    manifest = dict(bundle.manifest)
    manifest["hardware"] = section.to_json()
    write_manifest(partial, manifest)
    load_bundle(partial)  # re-verify before publishing
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return final
