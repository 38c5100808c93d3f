"""The accelerator bundle: the one contract between build (quantize/, hw/) and run (daemon/).

A directory::

    manifest.json          format_version, model_id, input, latent_dim, graphs, outputs,
                           epsilon, pixel_transform, default_scorer, scorers, hardware, files
    encoder.onnx           QONNX graphs (batch 1), bit-exact to the hardware
    decoder.onnx
    forward_at_mean.onnx
    epsilon.npy            the fixed L x D standard-normal table of the paper's score
    golden/                the acceptance vectors of ``snapseal selftest`` (manifest "golden"):
                           golden.json, crops.npy, expected_<output>.npy, driver_settings.json,
                           written by ``make golden``
    hw/<board>/accel.bit   an FPGA bundle's bitstream, its .hwh beside it (pynq finds it by
    hw/<board>/accel.hwh   name); board, part, clock and FINN driver settings in manifest
                           "hardware" (:class:`HardwareSection`, the one definition of it)

``manifest["files"]`` maps every other file's relative path to its sha256. ``load_bundle``
checks all of them and the format version; any mismatch, missing file or bad JSON raises
SnapsealError naming the file. Writers (``snapseal.quantize.bundle_writer``, hw/) call
``write_manifest`` after adding files, which re-hashes the directory.

This module imports no numpy at import time, so the installer can read a bundle's hardware
section with a bare Python and the wheel on ``PYTHONPATH``::

    python3 -m snapseal.daemon.bundle hardware BUNDLE_DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snapseal.daemon.errors import SnapsealError

if TYPE_CHECKING:  # numpy is imported where a bundle is loaded, not at import time
    import numpy as np

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPH_NAMES = ("encoder", "decoder", "forward_at_mean")
GOLDEN_DIR = "golden"  # the bundle's selftest vectors, relative to the bundle
GOLDEN_META = f"{GOLDEN_DIR}/golden.json"
# The default bundle ships inside the package as data (``snapseal/bundles/default`` in a wheel;
# the repository's ``bundles/default`` in an editable install), found through the import system.
DEFAULT_BUNDLE_PACKAGE = "snapseal.bundles"
DEFAULT_BUNDLE_NAME = "default"


def default_bundle_dir() -> Path:
    """Where the default bundle is, found through the import system (works from a wheel)."""
    from importlib.util import find_spec

    try:
        spec = find_spec(DEFAULT_BUNDLE_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / DEFAULT_BUNDLE_NAME
        if (candidate / MANIFEST).is_file():
            return candidate
    raise SnapsealError(f"the default bundle ({DEFAULT_BUNDLE_PACKAGE.replace('.', '/')}/{DEFAULT_BUNDLE_NAME}) "
                        "is not installed with this snapseal: pass a bundle directory")


class _DefaultBundleDir(os.PathLike):
    """``DEFAULT_BUNDLE_DIR`` for callers that pass it around as a path: resolved on use."""

    def __fspath__(self) -> str:
        return str(default_bundle_dir())

    def __truediv__(self, other: str) -> Path:
        return default_bundle_dir() / other

    def __repr__(self) -> str:
        return "DEFAULT_BUNDLE_DIR"


DEFAULT_BUNDLE_DIR = _DefaultBundleDir()


@dataclass(frozen=True)
class HardwareSection:
    """The manifest's ``hardware`` section of an FPGA bundle: where the bitstream and its .hwh
    lie inside the bundle, which board and part it was built for, the PL clock and FINN's
    driver settings. Written by ``snapseal.hw.bitstream``; read by the loader, the fpga
    backend, ``deploy/install.sh`` and the tests through this one class."""

    board: str  # a board profile name: pynq-z2, ultra96-v2
    bitfile: str  # relative to the bundle
    hwh: str
    driver: dict[str, Any]
    part: str = ""
    clock_mhz: float | None = None
    estimate: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def file_paths(board: str) -> tuple[str, str]:
        """(bitfile, hwh) inside the bundle for a board: the .hwh beside the .bit, same stem."""
        return f"hw/{board}/accel.bit", f"hw/{board}/accel.hwh"

    @classmethod
    def for_board(cls, board: str, driver: dict[str, Any], part: str = "", clock_mhz: float | None = None,
                  estimate: dict[str, Any] | None = None) -> "HardwareSection":
        bitfile, hwh = cls.file_paths(board)
        return cls(board=board, bitfile=bitfile, hwh=hwh, driver=dict(driver), part=part,
                   clock_mhz=clock_mhz, estimate=dict(estimate or {}))

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], where: Path) -> "HardwareSection | None":
        """None for an emulation-only bundle (a bundle is an FPGA bundle when its section names
        a ``bitfile``); a SnapsealError naming the manifest when such a section is incomplete or
        names files the manifest does not hash."""
        section = manifest.get("hardware")
        if section is not None and not isinstance(section, dict):
            raise SnapsealError(f"{where}: 'hardware' must be an object")
        if not section or not section.get("bitfile"):
            return None
        missing = [key for key in ("board", "hwh", "driver") if not section.get(key)]
        if missing:
            raise SnapsealError(f"{where}: hardware section lacks {', '.join(missing)} "
                                "(build the bundle with `make bitstream`)")
        if not isinstance(section["driver"], dict):
            raise SnapsealError(f"{where}: hardware.driver must be an object")
        files = manifest.get("files") or {}
        for key in ("bitfile", "hwh"):
            if section[key] not in files:
                raise SnapsealError(f"{where}: hardware.{key} {section[key]!r} is not covered by the sha256 list")
        if Path(section["bitfile"]).stem != Path(section["hwh"]).stem or Path(section["bitfile"]).parent != Path(section["hwh"]).parent:
            raise SnapsealError(f"{where}: the .hwh must lie beside the .bit with the same name (pynq finds it so)")
        try:
            clock = float(section["clock_mhz"]) if section.get("clock_mhz") is not None else None
        except (TypeError, ValueError):
            raise SnapsealError(f"{where}: hardware.clock_mhz must be a number") from None
        return cls(board=str(section["board"]), bitfile=str(section["bitfile"]), hwh=str(section["hwh"]),
                   driver=dict(section["driver"]), part=str(section.get("part", "")), clock_mhz=clock,
                   estimate=dict(section.get("estimate") or {}))

    def to_json(self) -> dict[str, Any]:
        return {"board": self.board, "part": self.part, "clock_mhz": self.clock_mhz, "bitfile": self.bitfile,
                "hwh": self.hwh, "driver": self.driver, "estimate": self.estimate}


def read_hardware(path: str | Path) -> HardwareSection | None:
    """The hardware section of the bundle at ``path`` (manifest only; files not hashed here)."""
    path = Path(path)
    return HardwareSection.from_manifest(_read_manifest(path), path / MANIFEST)


@dataclass(frozen=True)
class TensorSpec:
    """A graph output (or the decoder input) and how its integers map to floats: value = int * scale."""

    name: str
    shape: tuple[int, ...]
    scale: float
    bits: int
    signed: bool

    @classmethod
    def from_json(cls, key: str, d: dict[str, Any], where: Path) -> "TensorSpec":
        try:
            return cls(
                name=str(d.get("name", key)),
                shape=tuple(int(s) for s in d["shape"]),
                scale=float(d["scale"]),
                bits=int(d["bits"]),
                signed=bool(d["signed"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapsealError(f"{where}: bad tensor spec for {key!r} ({exc})") from None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "scale": self.scale, "bits": self.bits, "signed": self.signed}


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]
    model_id: str
    latent_dim: int
    graphs: dict[str, Path]  # name -> absolute path of the QONNX graph
    outputs: dict[str, TensorSpec]  # mu_z, log_sigma_z, decoder_out
    decoder_input: TensorSpec
    epsilon: np.ndarray  # L x D float32
    log_sigma_floor: float
    default_scorer: str
    scorers: dict[str, Any] = field(default_factory=dict)  # free-form, per scorer name
    hardware: dict[str, Any] = field(default_factory=dict)  # filled by hw/ (board, clock, bitstream...)
    hardware_section: HardwareSection | None = None  # the same, validated; None = no FPGA part

    @property
    def epsilon_samples(self) -> int:
        return int(self.epsilon.shape[0])

    @property
    def golden_dir(self) -> Path | None:
        """The bundle's selftest vectors (written by ``make golden``), None when it has none."""
        return self.path / GOLDEN_DIR if GOLDEN_META in self.manifest.get("files", {}) else None

    def file(self, relative: str) -> Path:
        """A file of the bundle listed (and thus verified) in the manifest."""
        if relative not in self.manifest.get("files", {}):
            raise SnapsealError(f"{self.path / MANIFEST}: bundle has no file {relative!r}")
        return self.path / relative


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise SnapsealError(f"{path}: bundle directory not found")
    if not manifest_path.is_file():
        raise SnapsealError(f"{manifest_path}: bundle manifest not found")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapsealError(f"{manifest_path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise SnapsealError(f"{manifest_path}: manifest must be a JSON object")
    return manifest


def verify_files(path: Path, manifest: dict[str, Any]) -> None:
    """Every file in manifest['files'] exists, stays inside the bundle and matches its sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise SnapsealError(f"{path / MANIFEST}: manifest lists no files")
    root = path.resolve()
    for relative, expected in files.items():
        file_path = (path / relative).resolve()
        if root not in file_path.parents:
            raise SnapsealError(f"{path / MANIFEST}: file {relative!r} lies outside the bundle")
        if not file_path.is_file():
            raise SnapsealError(f"{path / relative}: bundle file missing")
        if sha256_file(file_path) != expected:
            raise SnapsealError(f"{path / relative}: sha256 does not match the bundle manifest (modified or corrupt)")


def load_bundle(path: str | Path | None = None) -> Bundle:
    """Load and verify a bundle directory (None = the default bundle shipped with the package)."""
    import numpy as np

    path = Path(path) if path is not None else default_bundle_dir()
    manifest = _read_manifest(path)
    where = path / MANIFEST
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise SnapsealError(f"{where}: bundle format version {version!r}, this snapseal reads {FORMAT_VERSION}")
    verify_files(path, manifest)
    try:
        graphs = {name: path / manifest["graphs"][name] for name in GRAPH_NAMES}
        for name in graphs:
            if manifest["graphs"][name] not in manifest["files"]:
                raise SnapsealError(f"{where}: graph {name!r} is not covered by the sha256 list")
        outputs = {k: TensorSpec.from_json(k, v, where) for k, v in manifest["outputs"].items()}
        for required in ("mu_z", "log_sigma_z", "decoder_out"):
            if required not in outputs:
                raise SnapsealError(f"{where}: outputs lack {required!r}")
        decoder_input = TensorSpec.from_json("z", manifest["decoder_input"], where)
        latent_dim = int(manifest["latent_dim"])
        eps_info = manifest["epsilon"]
        eps_file = str(eps_info["file"])
        if eps_file not in manifest["files"]:
            raise SnapsealError(f"{where}: epsilon table is not covered by the sha256 list")
        model_id = str(manifest["model_id"])
        log_sigma_floor = float(manifest["pixel_transform"]["log_sigma_floor"])
        default_scorer = str(manifest.get("default_scorer", "complexity"))
        if default_scorer not in ("complexity", "paper"):
            raise SnapsealError(f"{where}: default_scorer {default_scorer!r} is not a known scorer (complexity, paper)")
        scorers = dict(manifest.get("scorers", {}))
        hardware = dict(manifest.get("hardware") or {})
        hardware_section = HardwareSection.from_manifest(manifest, where)
        input_spec = manifest["input"]
        if list(input_spec["shape"]) != [1, 1, 64, 64] or input_spec["dtype"] != "uint8":
            raise SnapsealError(f"{where}: input must be 1x1x64x64 uint8, manifest says {input_spec}")
    except SnapsealError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapsealError(f"{where}: malformed manifest ({exc.__class__.__name__}: {exc})") from None
    try:
        epsilon = np.load(path / eps_file, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise SnapsealError(f"{path / eps_file}: cannot read epsilon table ({exc})") from None
    if epsilon.ndim != 2 or epsilon.shape[1] != latent_dim or epsilon.shape[0] != int(eps_info.get("samples", epsilon.shape[0])):
        raise SnapsealError(f"{path / eps_file}: epsilon table has shape {epsilon.shape}, expected L x {latent_dim}")
    return Bundle(
        path=path,
        manifest=manifest,
        model_id=model_id,
        latent_dim=latent_dim,
        graphs=graphs,
        outputs=outputs,
        decoder_input=decoder_input,
        epsilon=epsilon.astype(np.float32),
        log_sigma_floor=log_sigma_floor,
        default_scorer=default_scorer,
        scorers=scorers,
        hardware=hardware,
        hardware_section=hardware_section,
    )


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Hash every file in the bundle directory (except the manifest) into manifest['files'] and
    write manifest.json atomically. Returns the written manifest. Used by every bundle writer."""
    path = Path(path)
    files = {}
    for file_path in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file_path.relative_to(path).as_posix()
        if relative == MANIFEST or relative.endswith(".tmp"):
            continue
        files[relative] = sha256_file(file_path)
    manifest = {**manifest, "format_version": manifest.get("format_version", FORMAT_VERSION), "files": files}
    fd, tmp = tempfile.mkstemp(dir=path, suffix=".tmp")
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path / MANIFEST)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m snapseal.daemon.bundle hardware DIR``: the hardware section as shell words
    (``board=…``, ``bitfile=…`` relative to DIR, ``hwh=…``), nothing for an emulation bundle;
    one ``error: …`` line and exit 2 for a bad bundle. Used by deploy/install.sh."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "hardware":
        print("usage: python -m snapseal.daemon.bundle hardware BUNDLE_DIR", file=sys.stderr)
        return 2
    try:
        section = read_hardware(args[1])
    except SnapsealError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if section is not None:
        for key in ("board", "bitfile", "hwh"):
            value = getattr(section, key)
            if any(c in value for c in "\n\r\0"):
                print(f"error: {args[1]}/{MANIFEST}: hardware.{key} holds a control character", file=sys.stderr)
                return 2
            print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
