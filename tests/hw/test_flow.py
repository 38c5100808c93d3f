"""The FINN flow on a tiny VAE (same layer types and rules as the real one): estimate report,
bit-exact verification chain, unmappable layers and unknown boards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snapseal.daemon.errors import SnapsealError


def test_unknown_board_lists_known():
    from snapseal.hw.boards import BOARDS, get_board

    with pytest.raises(SnapsealError) as error:
        get_board("zcu104")
    for name in BOARDS:
        assert name in str(error.value)


def test_board_profiles_hold_issue_limits():
    from snapseal.hw.boards import get_board

    pynq, ultra = get_board("pynq-z2"), get_board("ultra96-v2")
    assert pynq.part == "xc7z020clg400-1" and ultra.part == "xczu3eg-sbva484-1-i"
    assert ultra.clock_mhz >= 150 and ultra.target_crops_per_s > pynq.target_crops_per_s >= 300
    assert pynq.max_lut_fraction == ultra.max_lut_fraction == 0.70


def test_bitstream_without_tools_fails_fast_and_writes_nothing(tmp_path, monkeypatch):
    from snapseal.hw import cli

    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    code = cli.main(["bitstream", "--board", "pynq-z2", "--out", str(tmp_path / "hw")])
    assert code == 2 and not (tmp_path / "hw").exists()


@pytest.fixture(scope="module")
def tiny_flow(tmp_path_factory):
    import torch

    from snapseal.hw import tiny
    from snapseal.hw.boards import get_board
    from snapseal.hw.flow import estimate

    torch.set_num_threads(1)
    torch.manual_seed(0)
    work = tmp_path_factory.mktemp("tinyvae")
    model = tiny.calibrate(tiny.TinyVAEAtMean())
    onnx_path = tiny.export(model, work / "tvae.onnx")
    summary = estimate(onnx_path, get_board("pynq-z2"), work / "flow")
    return model, onnx_path, work / "flow", summary


@pytest.mark.build
@pytest.mark.slow
def test_estimate_report(tiny_flow):
    _, _, flow_dir, summary = tiny_flow
    saved = json.loads((flow_dir / "estimate.json").read_text())
    for key in ("board", "part", "clock_mhz", "totals", "budget", "crops_per_s"):
        assert key in saved
    assert set(saved["totals"]) == {"LUT", "BRAM_18K", "DSP"} and saved["totals"]["LUT"] > 0
    assert saved["crops_per_s"] > 0 and saved["layers"]
    table = (flow_dir / "estimate.md").read_text()
    assert "| layer | LUT | BRAM_18K | DSP | cycles |" in table
    names = [p.name for p in sorted((flow_dir / "intermediate_models").glob("*.onnx"))]
    assert any("step_fold_leaky_relu" in n for n in names) and any("step_streamline_vae" in n for n in names)


@pytest.mark.build
@pytest.mark.slow
def test_verification_chain_identical(tiny_flow):
    from snapseal.hw.verify import golden_crops, verify_chain

    model, onnx_path, flow_dir, _ = tiny_flow
    crops = golden_crops(12)[:, :16, :16].copy()
    report = verify_chain(onnx_path, flow_dir, crops, torch_model=model, progress=False)
    assert [s.name for s in report.stages] == ["brevitas", "qonnx", "finn_streamlined", "finn_integer", "finn_hw_unfolded", "finn_hw_layers"]
    assert report.ok, report.mismatches
    # the comparison can fail: a changed integer is reported
    report.stages[-1].outputs[next(iter(report.stages[-1].outputs))][0, ...] += 1
    from snapseal.hw.verify import compare_stages

    report.mismatches.clear()
    compare_stages(report)
    assert not report.ok


@pytest.mark.build
@pytest.mark.slow
def test_unmappable_layer_names_layer_and_step(tmp_path):
    import torch
    from torch import nn

    from snapseal.hw import tiny
    from snapseal.hw.boards import get_board
    from snapseal.hw.flow import FlowError, estimate

    class BadSlope(tiny.TinyDecoderPath):
        def __init__(self):
            super().__init__()
            self.act1[0] = nn.LeakyReLU(0.1)  # not a power of two: cannot fold exactly

    torch.manual_seed(0)
    path = tiny.export(tiny.calibrate(BadSlope()), tmp_path / "bad.onnx")
    with pytest.raises(FlowError, match=r"step_fold_leaky_relu.*LeakyRelu"):
        estimate(path, get_board("pynq-z2"), tmp_path / "flow")


@pytest.mark.build
@pytest.mark.slow
def test_predicted_driver_settings_fit_the_fpga_backend(tiny_flow):
    from qonnx.core.modelwrapper import ModelWrapper

    from snapseal.daemon.accel.fpga import DriverSettings, pack_finn, unpack_finn
    from snapseal.hw.driver_settings import predict_driver_settings

    _, _, flow_dir, _ = tiny_flow
    tails = json.loads((flow_dir / "host_tails.json").read_text())
    folded = ModelWrapper(str(sorted((flow_dir / "intermediate_models").glob("*step_generate_estimate_reports.onnx"))[-1]))
    settings = predict_driver_settings(folded, tails, max_batch=4)
    parsed = DriverSettings(settings, flow_dir)  # the daemon accepts what the build writes
    assert parsed.input_dtype == "UINT8" and parsed.input_shape_normal[1:] == (16, 16, 1)
    assert parsed.output_names == [t["output_name"] for t in tails]
    for dtype, normal, folded_shape, packed in zip(parsed.output_dtypes, parsed.output_shapes_normal,
                                                   parsed.output_shapes_folded, parsed.output_shapes_packed):
        assert int(np.prod(normal)) == int(np.prod(folded_shape))
        values = np.zeros(folded_shape, np.int64)
        assert pack_finn(values, dtype).shape == tuple(packed)
        assert unpack_finn(pack_finn(values, dtype), dtype, folded_shape).shape == tuple(folded_shape)
    with pytest.raises(ValueError, match="host tails"):
        predict_driver_settings(folded, tails[:-1])
