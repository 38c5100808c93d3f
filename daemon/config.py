"""The daemon's one configuration object, loaded from TOML and validated at start.

The file's shape (deploy/ writes files like this; unknown keys are errors)::

    [camera]   source, camera_id, reconnect_max_s, realtime
    [detector] min_face_px, confidence, runtime, threads, pyramid_interpolation, full_every, ncnn_weights_dir
    [tracker]  kind ("iou" | "distance"), max_age_frames, min_length_frames
    [quality]  bundle, backend ("emulate" | "fpga" | "cpu"), scorer, top_k, clip_frames, batch_size, skip_near_duplicates
    [keys]     recipient, device_key, keyring, keyring_authority
    [store]    dir, retention_days, quota_mb, purge_interval_min
    [service]  log_format ("json" | "text")

Every problem (unknown key, wrong type, out of range, missing file) is one ``SnapsealError``
line naming the key and where it came from (the file, or the command-line option).
Command-line options override the file (``load_config(path, overrides)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.chooser import CHOOSERS
from snapseal.daemon.types import CROP_SIZE

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (the board)
    import tomli as tomllib  # type: ignore[no-redef]

TRACKER_KINDS = ("iou", "distance")
DETECTOR_RUNTIMES = ("onnxruntime", "opencv", "ncnn")  # daemon/detect/runtimes.py
PYRAMID_INTERPOLATIONS = ("area", "linear")
BACKENDS = ("emulate", "fpga", "cpu")
LOG_FORMATS = ("json", "text")


@dataclass(frozen=True)
class Setting:
    """One config key, declared once: its TOML kind, allowed values, description and example.

    The validation message, ``snapseal run --help``, ``snapseal config --defaults`` and
    deploy/snapseal.example.toml are all made from this, so they cannot drift apart."""

    kind: str  # "str" | "int" | "float" | "bool" | "path"
    help: str  # one line, for the example file and --help
    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False  # (minimum, ...] instead of [minimum, ...]
    choices: tuple[str, ...] = ()
    non_empty: bool = False
    must_exist: bool = False
    example: Any = None  # value shown in the example file when the default is None (unset)
    deploy: bool = False  # install.sh writes this key with the board's value
    alternative_to: str = ""  # another key this one replaces: shown commented out in the example file

    @property
    def rule(self) -> str:
        if self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.minimum is not None and self.maximum is not None:
            low = "(" if self.minimum_open else "["
            return f"must be in {low}{_number(self.minimum)}, {_number(self.maximum)}]"
        if self.minimum is not None:
            return f"must be {'>' if self.minimum_open else '>='} {_number(self.minimum)}"
        if self.non_empty:
            return "must not be empty"
        return ""

    def accepts(self, value: Any) -> bool:
        if self.choices and value not in self.choices:
            return False
        if self.non_empty and isinstance(value, str) and value.strip() == "":
            return False
        if self.minimum is not None and (value <= self.minimum if self.minimum_open else value < self.minimum):
            return False
        if self.maximum is not None and value > self.maximum:
            return False
        return True


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"


def setting(default: Any, kind: str, help: str, **rules: Any) -> Any:
    """A dataclass field carrying its ``Setting`` (see ``Setting``)."""
    return field(default=default, metadata={"setting": Setting(kind, help, **rules)})


@dataclass(frozen=True)
class CameraConfig:
    source: str = setting("0", "str", "V4L2 index, /dev/videoN, rtsp://... URL or a video file", non_empty=True,
                          deploy=True)
    camera_id: str = setting("cam-01", "str", "goes into every sealed record", non_empty=True, deploy=True)
    reconnect_max_s: float = setting(30.0, "float", "longest wait between reopen attempts of a camera that went away "
                                     "(the backoff doubles up to it)", minimum=0, maximum=3600, minimum_open=True)
    realtime: bool = setting(False, "bool", "replay a video file at its own frame rate, like a camera (demos, soak tests)")


@dataclass(frozen=True)
class DetectorConfig:
    min_face_px: int = setting(40, "int", "smaller faces are ignored", minimum=8, maximum=4096)
    confidence: float = setting(0.9, "float", "the detector's minimum face confidence", minimum=0.0, maximum=1.0)
    runtime: str = setting("onnxruntime", "str", "what runs the detector's networks: onnxruntime (x86_64, aarch64), "
                           "opencv (cv2.dnn, anywhere) or ncnn (NEON; armv7l too; weights: make detector-ncnn)",
                           choices=DETECTOR_RUNTIMES)
    threads: int = setting(1, "int", "threads the detector's runtime may use (0 = the runtime's default)",
                           minimum=0, maximum=64)
    pyramid_interpolation: str = setting("area", "str", 'resize of the detector\'s image pyramid: "area" or "linear" '
                                         "(bilinear, ~20x cheaper on an ARM core)", choices=PYRAMID_INTERPOLATIONS)
    full_every: int = setting(1, "int", "a full detection every k-th frame; in between O-Net alone on the tracker's "
                              "predicted boxes (1 = full detection on every frame)", minimum=1, maximum=1000)
    ncnn_weights_dir: Path | None = setting(None, "path", "ncnn weights made by make detector-ncnn (runtime = ncnn); "
                                            "unset = build/detector/mtcnn-ncnn of the checkout",
                                            example="/opt/snapseal/detector/mtcnn-ncnn")


@dataclass(frozen=True)
class TrackerConfig:
    kind: str = setting("iou", "str", '"iou" (motion model) or "distance" (the paper\'s)', choices=TRACKER_KINDS)
    max_age_frames: int = setting(15, "int", "a track is lost after this many frames without its face (it ends after "
                                  "max_lost_frames)", minimum=0, maximum=10_000)
    max_lost_frames: int = setting(100, "int", "the same person re-appearing on a lost track's motion path within this "
                                   "many frames keeps the track (a person behind a pillar); iou tracker",
                                   minimum=0, maximum=10_000)
    min_length_frames: int = setting(5, "int", "shorter tracks are listed in the run summary, never sealed",
                                     minimum=1, maximum=10_000)


@dataclass(frozen=True)
class QualityConfig:
    bundle: Path | None = setting(None, "path", "accelerator bundle directory; unset = the bundled default",
                                  must_exist=True, example="/opt/snapseal/bundle", deploy=True)
    backend: str = setting("emulate", "str", "where the quality model runs; install.sh picks fpga when the bundle "
                           "has a bitstream", choices=BACKENDS, deploy=True)
    scorer: str = setting("default", "str", '"default" (measured best) or "paper" (the VAE reconstruction probability)',
                          non_empty=True)
    top_k: int = setting(1, "int", "best crops sealed per person", minimum=1, maximum=100)
    clip_frames: int = setting(0, "int", "crops on each side of the best one sealed with it as a short clip (0 = none)",
                               minimum=0, maximum=50)
    batch_size: int = setting(16, "int", "crops scored per accelerator call", minimum=1, maximum=1024)
    chooser: str = setting("default", "str", "which crop of a track is kept: \"default\" (measured best, "
                           "docs/MODEL_CARD.md), \"score\" (the scorer alone), \"frontal\" (score, pose and size) or "
                           "\"frontal-calibrated\" (the same with the score on the track's own scale)",
                           choices=CHOOSERS)
    skip_near_duplicates: float = setting(0.0, "float", "a crop within this mean grey-level difference of its track's "
                                          "last scored crop is not scored (0 = score every crop)",
                                          minimum=0.0, maximum=255.0)

    @property
    def scorer_name(self) -> str | None:
        """What ``load_scorer`` takes: None means the bundle's default scorer."""
        return None if self.scorer == "default" else self.scorer


@dataclass(frozen=True)
class EvidenceConfig:
    """The colour images sealed for the investigator beside the model crop (daemon/crop.py)."""

    max_side: int = setting(320, "int", "cap on the longer side of the sealed colour face image, in pixels; "
                            "never upscaled", minimum=CROP_SIZE, maximum=4096)
    context: float = setting(2.0, "float", "the evidence box is the face box times this (hair, ears, the head's "
                             "outline)", minimum=1.0, maximum=8.0)
    person_region: bool = setting(False, "bool", "also seal the tracked person's region of the frame (bigger records)")
    person_max_side: int = setting(640, "int", "cap on the person image's longer side, in pixels",
                                   minimum=CROP_SIZE, maximum=8192)


@dataclass(frozen=True)
class KeysConfig:
    recipient: Path | None = setting(None, "path", "the investigator public key: the only key that can open a record",
                                     must_exist=True, example="/etc/snapseal/investigator.pub", deploy=True)
    device_key: Path | None = setting(None, "path", "the camera's signing key, made on the camera; never leaves it",
                                      must_exist=True, example="/var/lib/snapseal/device.key", deploy=True)
    keyring: Path | None = setting(None, "path", "signed period public keys from 'snapseal keyring issue' (instead of "
                                   "recipient): each record is sealed to its period's key",
                                   must_exist=True, example="/etc/snapseal/keyring.json", alternative_to="recipient")
    keyring_authority: Path | None = setting(None, "path", "authority.pub that must have signed the keyring",
                                             must_exist=True, example="/etc/snapseal/authority.pub",
                                             alternative_to="recipient")


@dataclass(frozen=True)
class StoreConfig:
    dir: Path | None = setting(None, "path", "sealed records; the only writable path besides the device key",
                               example="/var/lib/snapseal/records", deploy=True)
    retention_days: float = setting(10.0, "float", "records are deleted after this (GDPR art. 17)",
                                    minimum=0, maximum=3650, minimum_open=True)
    quota_mb: float = setting(512.0, "float", "the store refuses new records beyond this size",
                              minimum=0, maximum=10_000_000, minimum_open=True)
    purge_interval_min: float = setting(10.0, "float", "how often the running daemon deletes expired records",
                                        minimum=0, maximum=1440, minimum_open=True)
    provisional_interval_s: float = setting(5.0, "float", "a track in view keeps a sealed provisional record; "
                                            "it is rewritten with a better crop at most this often (seconds)",
                                            minimum=0, maximum=3600)
    pending_max_records: int = setting(256, "int", "sealed records kept in memory while the store refuses writes "
                                       "(then the oldest is lost, and counted)", minimum=1, maximum=100_000)
    header_resolution_s: int = setting(3600, "int", "granularity of the plaintext created/expires times of a record "
                                       "(seconds; the exact time is sealed inside)", minimum=1, maximum=86400)


@dataclass(frozen=True)
class ServiceConfig:
    log_format: str = setting("json", "str", 'log lines on stderr: "json" or "text" (journalctl -u snapseal)',
                              choices=LOG_FORMATS)


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = CameraConfig()
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    quality: QualityConfig = QualityConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    keys: KeysConfig = KeysConfig()
    store: StoreConfig = StoreConfig()
    service: ServiceConfig = ServiceConfig()


SECTIONS: dict[str, type] = {f.name: f.default.__class__ for f in dataclasses.fields(Config)}  # type: ignore[union-attr]


def _convert(value: Any, kind: str) -> Any:
    """TOML value -> field value, or raise TypeError with the expected kind's name."""
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("a number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError("true or false")
        return value
    if kind == "path":
        if not isinstance(value, (str, Path)) or str(value).strip() == "":
            raise TypeError("a path (non-empty string)")
        return Path(value).expanduser()
    raise AssertionError(kind)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_config(path: Path | str | None = None, overrides: Mapping[str, Any] | None = None,
                override_origin: Mapping[str, str] | None = None, check_files: bool = True) -> Config:
    """Read the TOML file (if any), apply ``overrides`` ({"section.key": value}), validate.

    ``override_origin`` names where an override came from ("--source") for error messages.
    ``check_files`` = False skips the existence checks (for tools that only print a config).
    """
    raw: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    file_label = str(path) if path is not None else "defaults"
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SnapsealError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise SnapsealError(f"config file {path} cannot be read: {error}") from None
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SnapsealError(f"config file {path} is not valid TOML: {error}") from None
        for section, table in parsed.items():
            if section not in SECTIONS:
                raise SnapsealError(f"{path}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
            if not isinstance(table, dict):
                raise SnapsealError(f"{path}: [{section}] must be a table")
            raw[section] = dict(table)
            for key in table:
                origin[f"{section}.{key}"] = str(path)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        raw.setdefault(section, {})[key] = value
        origin[dotted] = (override_origin or {}).get(dotted, f"command line ({dotted})")

    sections: dict[str, Any] = {}
    for section, section_cls in SECTIONS.items():
        table = raw.get(section, {})
        fields = {f.name: f for f in dataclasses.fields(section_cls)}
        for key in table:
            if key not in fields:
                where = origin.get(f"{section}.{key}", file_label)
                raise SnapsealError(f"{where}: unknown key '{key}' in [{section}] (known: {', '.join(fields)})")
        values: dict[str, Any] = {}
        for name, fld in fields.items():
            if name not in table:
                continue
            where = origin.get(f"{section}.{name}", file_label)
            spec: Setting = fld.metadata["setting"]
            try:
                value = _convert(table[name], spec.kind)
            except TypeError as expected:
                raise SnapsealError(f"{where}: [{section}] {name} must be {expected}, got {_describe(table[name])}") from None
            if not spec.accepts(value):
                raise SnapsealError(f"{where}: [{section}] {name} {spec.rule}, got {_describe(table[name])}")
            if check_files and spec.must_exist and not value.exists():
                raise SnapsealError(f"{where}: [{section}] {name}: file {value} does not exist")
            values[name] = value
        sections[section] = section_cls(**values)
    return Config(**sections)


def require(config: Config, dotted: str, option: str) -> Any:
    """A value the daemon cannot run without: error naming the config key and the option."""
    section, key = dotted.split(".", 1)
    value = getattr(getattr(config, section), key)
    if value is None:
        raise SnapsealError(f"missing [{section}] {key}: set it in the config file or pass {option}")
    return value


def settings() -> Iterator[tuple[str, str, Any, Setting]]:
    """(section, key, default, Setting) of every config key, in file order."""
    for section, section_cls in SECTIONS.items():
        for fld in dataclasses.fields(section_cls):
            yield section, fld.name, fld.default, fld.metadata["setting"]


def setting_of(dotted: str) -> Setting:
    section, key = dotted.split(".", 1)
    for fld in dataclasses.fields(SECTIONS[section]):
        if fld.name == key:
            return fld.metadata["setting"]
    raise KeyError(dotted)


def toml_value(value: Any) -> str:
    """A value as TOML source (strings JSON-quoted: a valid TOML basic string)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def example_toml() -> str:
    """The documented config file: every key with its default (or an example for unset paths),
    its rule and its description. deploy/snapseal.example.toml is exactly this text."""
    lines = ["# The daemon's one config file (/etc/snapseal/snapseal.toml, root:snapseal 0640).",
             "# Every key with its default; the paths, which have none, as a board install sets them.",
             "# `snapseal config --defaults` prints this file.",
             "# deploy/install.sh writes only the keys marked [deploy] with the board's values;",
             "# `snapseal run --config FILE` validates it at start and names the file and key of any error."]
    current = None
    for section, key, default, spec in settings():
        if section != current:
            lines += ["", f"[{section}]"]
            current = section
        rule = f" ({spec.rule})" if spec.rule else ""
        tag = " [deploy]" if spec.deploy else ""
        lines.append(f"# {spec.help}{rule}{tag}")
        if default is None and spec.alternative_to:  # one of two ways: the other is the example's
            lines.append(f"# {key} = {toml_value(spec.example)}   # instead of {spec.alternative_to}")
        elif default is None:  # no default: the value a board install writes
            lines.append(f"{key} = {toml_value(spec.example)}")
        else:
            lines.append(f"{key} = {toml_value(default)}")
    return "\n".join(lines) + "\n"
