"""The 4-bit MTCNN of hw/detector_estimate.py: its QONNX export becomes FINN hardware layers
end to end (every conv, pool and head), and bad input is one clear error."""

from __future__ import annotations

import json

import pytest

from snapseal.daemon.errors import SnapsealError


def test_unknown_network_is_one_error(tmp_path):
    from snapseal.hw.detector_estimate import estimate_detector

    with pytest.raises(SnapsealError, match="unknown network 'ynet'"):
        estimate_detector("pynq-z2", tmp_path, nets=("ynet",))
    assert not (tmp_path / "estimate.json").exists()


def test_frame_smaller_than_min_face_is_one_error(tmp_path):
    from snapseal.hw.detector_estimate import estimate_detector

    with pytest.raises(SnapsealError, match="no pyramid level"):
        estimate_detector("pynq-z2", tmp_path, frame=(30, 30), min_face_px=40)


@pytest.mark.build
@pytest.mark.parametrize("act", ["relu", "leaky"])
def test_pnet_maps_to_finn_hardware(tmp_path, act):
    import torch

    from snapseal.hw.boards import get_board
    from snapseal.hw.detector_estimate import run_estimate

    torch.set_num_threads(1)
    run = run_estimate("pnet", get_board("pynq-z2"), tmp_path / act, 100.0, height=20, width=28, act=act)
    final = sorted((tmp_path / act / "intermediate_models").glob("*_step_generate_estimate_reports.onnx"))
    assert final, "the estimate flow did not reach its last step"

    from snapseal.hw.detector_estimate import hw_layer_report

    report = hw_layer_report(final[-1])
    # Every node of the accelerator is a FINN hardware layer: 3 convs + 2 heads as MVAUs, the
    # max pool as a sliding window + Pool, the fork to the two heads as DuplicateStreams.
    assert report["other_nodes"] == [] and report["unmapped_inner"] == []
    assert report["hw_layers"].count("MVAU_hls") + report["hw_layers"].count("MVAU_rtl") == 5
    assert any(op.startswith("Pool") for op in report["hw_layers"])
    # Only the input layout Transpose stays on the host.
    parent = hw_layer_report(tmp_path / act / "intermediate_models" / "dataflow_parent.onnx")
    assert set(parent["other_nodes"]) <= {"Transpose", "StreamingDataflowPartition"}
    assert run["totals"]["LUT"] > 0 and run["fps"] > 0 and run["n_hw_layers"] == len(report["hw_layers"])
    written = json.loads((tmp_path / act / "estimate.json").read_text())
    assert written["totals"] == run["totals"]


@pytest.mark.build
def test_prelu_stops_the_flow_naming_the_layer(tmp_path):
    from snapseal.hw.boards import get_board
    from snapseal.hw.detector_estimate import run_estimate
    from snapseal.hw.flow import FlowError

    with pytest.raises(FlowError, match="PRelu"):
        run_estimate("pnet", get_board("pynq-z2"), tmp_path, 100.0, height=20, width=28, act="prelu")
