"""The runtimes that execute the detector's networks, behind one small interface.

A runtime loads one network and runs a batch in the ONNX graph's own layout (for MTCNN:
N x W x H x 3 float32 in, the graph's named outputs out), so the cascade in ``mtcnn.py`` is the
same code whichever runtime runs it:

- ``onnxruntime`` -- the ONNX graphs as packaged; x86_64 and aarch64 wheels.
- ``opencv``      -- the same graphs on ``cv2.dnn``; wherever OpenCV is (the distro's
  python3-opencv on a PYNQ-Z2 image).
- ``ncnn``        -- the graphs converted at build time (``make detector-ncnn``, our converter
  ``hw/detector/ncnn_convert.py``) to ncnn's format; NEON kernels, and the only one of the
  three with armv7l wheels on the package index.

A runtime that is not installed, or ncnn weights that were not built, is one error line that
says what to do.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from snapseal.daemon.errors import SnapsealError

RUNTIMES = ("onnxruntime", "opencv", "ncnn")
# pip install line per runtime (the pins live in requirements/daemon.txt)
INSTALL_HINT = {
    "onnxruntime": "pip install onnxruntime (pinned in requirements/daemon.txt; no armv7l wheels exist)",
    "opencv": "pip install opencv-python-headless, or the distro's python3-opencv",
    "ncnn": "pip install ncnn (pinned in requirements/daemon.txt)",
}
IMPORT_NAME = {"onnxruntime": "onnxruntime", "opencv": "cv2", "ncnn": "ncnn"}

# ncnn's converted MTCNN: input blob, output blobs per network, the converter's manifest.
NCNN_INPUT = "in0"
NCNN_OUTPUTS = {
    "pnet": ("conv2d_4", "softmax"),
    "rnet": ("dense_2", "softmax_1"),
    "onet": ("dense_5", "dense_6", "softmax_2"),
}
NCNN_MANIFEST = "manifest.json"
NCNN_WEIGHTS_ENV = "SNAPSEAL_NCNN_WEIGHTS"
NCNN_MAKE_TARGET = "make detector-ncnn"
# Where `make detector-ncnn` writes them in a checkout (an installed daemon names its own
# directory in the config: [detector] ncnn_weights_dir).
NCNN_BUILD_DIR = Path(__file__).resolve().parents[2] / "build" / "detector" / "mtcnn-ncnn"


class NetRunner(Protocol):
    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """One batch in the ONNX graph's input layout -> its outputs in the ONNX layout."""
        ...


def require_runtime(runtime: str, key: str = "[detector] runtime") -> None:
    """The runtime's Python package imports, or one line naming the key, the runtime and the install."""
    if runtime not in RUNTIMES:
        raise SnapsealError(f"{key} = {runtime!r} is not a detector runtime; choose one of {', '.join(RUNTIMES)}")
    try:
        importlib.import_module(IMPORT_NAME[runtime])
    except ImportError:
        raise SnapsealError(f"{key} = {runtime!r} but the Python package '{IMPORT_NAME[runtime]}' is not installed: "
                            f"{INSTALL_HINT[runtime]}") from None


def available_runtimes() -> list[str]:
    """The runtimes whose package imports here (ncnn weights not checked)."""
    found = []
    for runtime in RUNTIMES:
        try:
            importlib.import_module(IMPORT_NAME[runtime])
        except ImportError:
            continue
        found.append(runtime)
    return found


def find_ncnn_weights(weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory with pnet/rnet/onet .param + .bin: the argument, else $SNAPSEAL_NCNN_WEIGHTS,
    else the checkout's build directory; missing files -> one line naming the make target."""
    if weights_dir is None:
        weights_dir = os.environ.get(NCNN_WEIGHTS_ENV) or NCNN_BUILD_DIR
    directory = Path(weights_dir)
    for net in NCNN_OUTPUTS:
        for suffix in (".param", ".bin"):
            if not (directory / f"{net}{suffix}").is_file():
                raise SnapsealError(f"ncnn MTCNN weights missing: {directory / (net + suffix)} -- build them with "
                                    f"`{NCNN_MAKE_TARGET}` (or set [detector] ncnn_weights_dir)")
    return directory


class OnnxRuntimeNet:
    """One network on onnxruntime: NHWC float32 batch in, named outputs out."""

    def __init__(self, path: Path, output_names: Sequence[str], num_threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise SnapsealError(f"cannot load MTCNN network {path}: {error}") from error
        self._input_name = self._session.get_inputs()[0].name
        self._output_names = list(output_names)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run(self._output_names, {self._input_name: batch})


class OpenCvNet:
    """One network on cv2.dnn. Threads are OpenCV's process-wide setting (cv2.setNumThreads)."""

    def __init__(self, path: Path, output_names: Sequence[str], num_threads: int | None) -> None:
        import cv2

        if num_threads is not None:
            cv2.setNumThreads(int(num_threads))
        try:
            self._net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as error:
            raise SnapsealError(f"cannot load MTCNN network {path}: {error}") from error
        self._output_names = list(output_names)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        self._net.setInput(batch)
        return list(self._net.forward(self._output_names))


class NcnnNet:
    """One converted network on ncnn (float32 throughout, so it computes what the ONNX graph does).

    ncnn has no batch axis: each sample runs alone. Input: the ONNX layout N x A x B x 3 becomes
    per sample the 3 x A x B tensor the graph's first Conv sees; outputs come back channels-first
    and are put back into the ONNX layout (N x A' x B' x C, or N x C)."""

    def __init__(self, param: Path, model: Path, output_names: Sequence[str], num_threads: int | None) -> None:
        import ncnn

        self._ncnn = ncnn
        self._net = ncnn.Net()
        options = self._net.opt
        options.num_threads = int(num_threads) if num_threads else 1
        # No spinning between layers: the scoring worker shares the cores (ncnn's default spins 20 ms).
        options.openmp_blocktime = 0
        options.use_fp16_packed = options.use_fp16_storage = options.use_fp16_arithmetic = False
        options.use_bf16_storage = False
        options.use_vulkan_compute = False
        if self._net.load_param(str(param)) != 0 or self._net.load_model(str(model)) != 0:
            raise SnapsealError(f"cannot load ncnn network {param} / {model}: rebuild with `{NCNN_MAKE_TARGET}`")
        self._output_names = list(output_names)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        per_output: list[list[np.ndarray]] = [[] for _ in self._output_names]
        for sample in batch:
            chw = np.ascontiguousarray(sample.transpose(2, 0, 1), dtype=np.float32)
            with self._net.create_extractor() as extractor:
                extractor.input(NCNN_INPUT, self._ncnn.Mat(chw))
                for index, name in enumerate(self._output_names):
                    status, out = extractor.extract(name)
                    if status != 0:
                        raise SnapsealError(f"ncnn failed on output {name} (status {status})")
                    array = np.array(out)  # copies out of ncnn's buffer
                    per_output[index].append(array.transpose(1, 2, 0) if array.ndim == 3 else array.reshape(-1))
        if not len(batch):
            return [np.zeros((0,), np.float32) for _ in self._output_names]
        return [np.stack(arrays) for arrays in per_output]


def make_net(runtime: str, net: str, onnx_dir: Path | None, ncnn_dir: Path | None, output_names: Sequence[str],
             num_threads: int | None) -> NetRunner:
    """The runner of one MTCNN network (``net`` in pnet/rnet/onet) on ``runtime``."""
    if runtime == "onnxruntime":
        return OnnxRuntimeNet(onnx_dir / f"{net}.onnx", output_names, num_threads)
    if runtime == "opencv":
        return OpenCvNet(onnx_dir / f"{net}.onnx", output_names, num_threads)
    if runtime == "ncnn":
        return NcnnNet(ncnn_dir / f"{net}.param", ncnn_dir / f"{net}.bin", output_names, num_threads)
    raise SnapsealError(f"unknown detector runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
