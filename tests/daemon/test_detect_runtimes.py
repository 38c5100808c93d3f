"""The detector's runtimes (onnxruntime, cv2.dnn, ncnn with our converted weights) compute the
same thing: network outputs within float32 rounding, and the same detections on real frames
within TOLERANCE_PX. Runs in both environments; the ncnn weights are converted here into a
temporary directory by the build-time converter (what `make detector-ncnn` runs)."""

from __future__ import annotations

import importlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import require_built

from snapseal.daemon.detect import detector_from_config, make_detector, runtimes
from snapseal.daemon.detect.base import BoxRefiner
from snapseal.daemon.detect.mtcnn import ONET_OUTPUTS, PNET_OUTPUTS, RNET_OUTPUTS, MtcnnDetector, find_weights_dir
from snapseal.daemon.errors import SnapsealError

ASSETS = Path(__file__).resolve().parents[2] / "build" / "assets"
TOLERANCE_PX = 0.5  # boxes and landmarks, pixels (measured differences are ~1e-5 px)
TOLERANCE_CONFIDENCE = 1e-4
TOLERANCE_OUTPUT = 1e-4  # raw network outputs (float32 sums in another order)
RUNTIMES = ("onnxruntime", "opencv", "ncnn")


def _asset(relative: str) -> np.ndarray:
    path = ASSETS / relative
    require_built(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture(scope="module")
def ncnn_dir(tmp_path_factory) -> Path:
    pytest.importorskip("onnx")  # the converter is a build-time tool
    from snapseal.hw.detector.ncnn_convert import convert

    out = tmp_path_factory.mktemp("mtcnn-ncnn")
    manifest = convert(None, out)
    assert set(manifest["files"]) == {f"{n}.{s}" for n in ("pnet", "rnet", "onet") for s in ("param", "bin")}
    return out


def _detector(runtime: str, ncnn_dir: Path, **kwargs) -> MtcnnDetector:
    return MtcnnDetector(backend=runtime, ncnn_weights_dir=ncnn_dir, **kwargs)


@pytest.mark.parametrize("net, outputs, shape", [
    ("pnet", PNET_OUTPUTS, (1, 53, 41, 3)), ("rnet", RNET_OUTPUTS, (5, 24, 24, 3)), ("onet", ONET_OUTPUTS, (4, 48, 48, 3))])
def test_network_outputs_agree(ncnn_dir, net, outputs, shape):
    batch = np.random.default_rng(7).uniform(-1, 1, shape).astype(np.float32)
    reference = runtimes.make_net("onnxruntime", net, find_weights_dir(), None, outputs, 1).run(batch)
    for runtime in ("opencv", "ncnn"):
        got = runtimes.make_net(runtime, net, find_weights_dir(), ncnn_dir, outputs, 1).run(batch)
        for name, want, have in zip(outputs, reference, got):
            assert have.shape == want.shape, (runtime, name)
            assert np.max(np.abs(have - want)) <= TOLERANCE_OUTPUT, (runtime, name)


def _frames() -> list[np.ndarray]:
    frames = [_asset("insightface/t1.jpg"), _asset("facedetect/grace_hopper_512x512.jpg")]
    group = frames[0]
    frames.append(cv2.resize(group, (640, 480)))  # other scale: other pyramid levels
    frames.append(cv2.GaussianBlur(group, (9, 9), 3))  # a blurred frame: borderline scores
    return frames


@pytest.mark.parametrize("interpolation", ["area", "linear"])
def test_same_detections_on_the_same_frames(ncnn_dir, interpolation):
    detectors = {r: _detector(r, ncnn_dir, pyramid_interpolation=interpolation) for r in RUNTIMES}
    total = 0
    for frame in _frames():
        results = {r: sorted(d.detect(frame), key=lambda x: (x.box.x1, x.box.y1)) for r, d in detectors.items()}
        reference = results["onnxruntime"]
        total += len(reference)
        for runtime in ("opencv", "ncnn"):
            assert len(results[runtime]) == len(reference), runtime
            for want, have in zip(reference, results[runtime]):
                assert np.allclose(have.box.as_list(), want.box.as_list(), atol=TOLERANCE_PX), runtime
                assert np.allclose(have.landmarks, want.landmarks, atol=TOLERANCE_PX), runtime
                assert abs(have.confidence - want.confidence) <= TOLERANCE_CONFIDENCE, runtime
    assert total >= 6 + 1 + 6  # the frames hold faces: the comparison is not vacuous


def test_bilinear_pyramid_finds_the_same_faces(ncnn_dir):
    image = _asset("insightface/t1.jpg")
    area = make_detector(pyramid_interpolation="area").detect(image)
    linear = make_detector(pyramid_interpolation="linear").detect(image)
    assert len(area) == len(linear) == 6


def test_detect_in_boxes_refinds_each_face(ncnn_dir):
    image = _asset("insightface/t1.jpg")
    for runtime in RUNTIMES:
        detector = _detector(runtime, ncnn_dir)
        assert isinstance(detector, BoxRefiner)
        faces = detector.detect(image)
        boxes = np.array([f.box.as_list() for f in faces])
        shifted = boxes + np.array([4.0, -3.0, 4.0, -3.0])  # a prediction a few pixels off
        again = detector.detect_in_boxes(image, shifted)
        assert len(again) == len(faces)
        for face in faces:
            best = max(_iou(face.box.as_list(), other.box.as_list()) for other in again)
            assert best > 0.7, runtime
        empty = np.array([[5.0, 5.0, 60.0, 60.0]])  # a corner of the photo without a face
        assert detector.detect_in_boxes(np.full_like(image, 128), empty) == []
        assert detector.detect_in_boxes(image, np.zeros((0, 4))) == []


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_runtime_not_installed_is_one_line_naming_key_runtime_and_install(monkeypatch):
    real_import = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name == "ncnn":
            raise ImportError("No module named 'ncnn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(runtimes.importlib, "import_module", fake_import)
    with pytest.raises(SnapsealError) as caught:
        MtcnnDetector(backend="ncnn")
    message = str(caught.value)
    assert "\n" not in message
    assert "[detector] runtime" in message and "'ncnn'" in message and "pip install ncnn" in message
    assert "ncnn" not in runtimes.available_runtimes()


def test_unknown_runtime_names_the_choices():
    with pytest.raises(SnapsealError, match="onnxruntime, opencv, ncnn"):
        runtimes.require_runtime("tflite")


def test_missing_ncnn_weights_name_the_make_target(tmp_path, monkeypatch):
    monkeypatch.delenv(runtimes.NCNN_WEIGHTS_ENV, raising=False)
    with pytest.raises(SnapsealError) as caught:
        MtcnnDetector(backend="ncnn", ncnn_weights_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "make detector-ncnn" in message and "pnet.param" in message


def test_corrupt_ncnn_weights_are_a_clean_error(tmp_path):
    for net in ("pnet", "rnet", "onet"):
        (tmp_path / f"{net}.param").write_text("not a param file\n")
        (tmp_path / f"{net}.bin").write_bytes(b"")
    with pytest.raises(SnapsealError, match="make detector-ncnn"):
        MtcnnDetector(backend="ncnn", ncnn_weights_dir=tmp_path)


def test_converter_refuses_an_operator_it_does_not_know(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from snapseal.hw.detector.ncnn_convert import ConversionError, convert_graph

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="odd")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ConversionError, match="Relu"):
        convert_graph(path, ("y",))


def test_detector_from_a_config_section(ncnn_dir):
    class Section:  # the keys of [detector]
        min_face_px, confidence, runtime, threads = 40, 0.9, "ncnn", 2
        ncnn_weights_dir, pyramid_interpolation = ncnn_dir, "linear"

    detector = detector_from_config(Section())
    assert detector.name == "mtcnn-ncnn" and detector.pyramid_interpolation == "linear"
    assert len(detector.detect(_asset("insightface/t1.jpg"))) == 6
