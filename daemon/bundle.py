"""The accelerator bundle: the one contract between build (quantize/, hw/) and run (daemon/).

A directory::

    manifest.json          format_version, model_id, input, latent_dim, graphs, outputs,
                           epsilon, pixel_transform, default_scorer, scorers, hardware, files
    encoder.onnx           QONNX graphs (batch 1), bit-exact to the hardware
    decoder.onnx
    forward_at_mean.onnx
    epsilon.npy            the fixed L x D standard-normal table of the paper's score
    [hardware files]       .bit, .hwh, driver settings: added by hw/ (manifest "hardware")

``manifest["files"]`` maps every other file's relative path to its sha256. ``load_bundle``
checks all of them and the format version; any mismatch, missing file or bad JSON raises
SnapsealError naming the file. Writers (``snapseal.quantize.bundle_writer``, hw/) call
``write_manifest`` after adding files, which re-hashes the directory. numpy + json only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snapseal.daemon.errors import SnapsealError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPH_NAMES = ("encoder", "decoder", "forward_at_mean")
# The committed default bundle (repo checkout / editable install): <repo>/bundles/default
DEFAULT_BUNDLE_DIR = Path(__file__).resolve().parents[1] / "bundles" / "default"


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

    @property
    def epsilon_samples(self) -> int:
        return int(self.epsilon.shape[0])

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
    """Load and verify a bundle directory (None = the committed default bundle)."""
    path = Path(path) if path is not None else DEFAULT_BUNDLE_DIR
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
