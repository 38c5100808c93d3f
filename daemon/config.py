"""The daemon's one configuration object, loaded from TOML and validated at start.

The file's shape (deploy/ writes files like this; unknown keys are errors)::

    [camera]   source, camera_id, reconnect_max_s, realtime
    [detector] min_face_px, confidence
    [tracker]  kind ("iou" | "distance"), max_age_frames, min_length_frames
    [quality]  bundle, backend ("emulate" | "fpga" | "cpu"), scorer, top_k, clip_frames, batch_size
    [keys]     recipient, device_key
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
from typing import Any, Callable, Mapping

from snapseal.daemon.errors import SnapsealError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (the board)
    import tomli as tomllib  # type: ignore[no-redef]

TRACKER_KINDS = ("iou", "distance")
BACKENDS = ("emulate", "fpga", "cpu")
LOG_FORMATS = ("json", "text")


def _spec(kind: str, check: Callable[[Any], bool] | None = None, rule: str = "", must_exist: bool = False):
    """Field metadata: the TOML kind expected, an optional range check and its wording."""
    return {"kind": kind, "check": check, "rule": rule, "must_exist": must_exist}


@dataclass(frozen=True)
class CameraConfig:
    source: str = field(default="0", metadata=_spec("str", lambda v: v.strip() != "", "must not be empty"))
    camera_id: str = field(default="cam-01", metadata=_spec("str", lambda v: v.strip() != "", "must not be empty"))
    # Longest wait between reopen attempts of a live camera that went away (backoff doubles up to it).
    reconnect_max_s: float = field(default=30.0, metadata=_spec("float", lambda v: 0 < v <= 3600, "must be in (0, 3600]"))
    # A video file is read as fast as the pipeline goes; true replays it at its own frame rate,
    # like a camera (demos, soak tests).
    realtime: bool = field(default=False, metadata=_spec("bool"))


@dataclass(frozen=True)
class DetectorConfig:
    min_face_px: int = field(default=40, metadata=_spec("int", lambda v: 8 <= v <= 4096, "must be in [8, 4096]"))
    confidence: float = field(default=0.9, metadata=_spec("float", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"))


@dataclass(frozen=True)
class TrackerConfig:
    kind: str = field(default="iou", metadata=_spec("str", lambda v: v in TRACKER_KINDS, f"must be one of {', '.join(TRACKER_KINDS)}"))
    max_age_frames: int = field(default=15, metadata=_spec("int", lambda v: 0 <= v <= 10_000, "must be in [0, 10000]"))
    min_length_frames: int = field(default=5, metadata=_spec("int", lambda v: 1 <= v <= 10_000, "must be in [1, 10000]"))


@dataclass(frozen=True)
class QualityConfig:
    bundle: Path | None = field(default=None, metadata=_spec("path", must_exist=True))  # None = bundled default
    backend: str = field(default="emulate", metadata=_spec("str", lambda v: v in BACKENDS, f"must be one of {', '.join(BACKENDS)}"))
    scorer: str = field(default="default", metadata=_spec("str", lambda v: v.strip() != "", "must not be empty"))
    top_k: int = field(default=1, metadata=_spec("int", lambda v: 1 <= v <= 100, "must be in [1, 100]"))
    # Crops on each side of the best one sealed with it as a short clip (0 = no clip).
    clip_frames: int = field(default=0, metadata=_spec("int", lambda v: 0 <= v <= 50, "must be in [0, 50]"))
    batch_size: int = field(default=16, metadata=_spec("int", lambda v: 1 <= v <= 1024, "must be in [1, 1024]"))

    @property
    def scorer_name(self) -> str | None:
        """What ``load_scorer`` takes: None means the bundle's default scorer."""
        return None if self.scorer == "default" else self.scorer


@dataclass(frozen=True)
class KeysConfig:
    recipient: Path | None = field(default=None, metadata=_spec("path", must_exist=True))
    device_key: Path | None = field(default=None, metadata=_spec("path", must_exist=True))


@dataclass(frozen=True)
class StoreConfig:
    dir: Path | None = field(default=None, metadata=_spec("path"))
    retention_days: float = field(default=10.0, metadata=_spec("float", lambda v: 0 < v <= 3650, "must be in (0, 3650]"))
    quota_mb: float = field(default=512.0, metadata=_spec("float", lambda v: 0 < v <= 10_000_000, "must be > 0"))
    # How often the running daemon deletes expired records.
    purge_interval_min: float = field(default=10.0, metadata=_spec("float", lambda v: 0 < v <= 1440, "must be in (0, 1440]"))


@dataclass(frozen=True)
class ServiceConfig:
    log_format: str = field(default="json", metadata=_spec("str", lambda v: v in LOG_FORMATS, f"must be one of {', '.join(LOG_FORMATS)}"))


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = CameraConfig()
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    quality: QualityConfig = QualityConfig()
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
            meta = fld.metadata
            try:
                value = _convert(table[name], meta["kind"])
            except TypeError as expected:
                raise SnapsealError(f"{where}: [{section}] {name} must be {expected}, got {_describe(table[name])}") from None
            if meta["check"] is not None and not meta["check"](value):
                raise SnapsealError(f"{where}: [{section}] {name} {meta['rule']}, got {_describe(table[name])}")
            if check_files and meta["must_exist"] and not value.exists():
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
