"""The TOML config: the documented shape loads; every mistake is one line naming key and file."""

from __future__ import annotations

from pathlib import Path

import dataclasses
import pytest

from snapseal.daemon.config import Config, load_config, require
from snapseal.daemon.errors import SnapsealError

EXAMPLE = """
[camera]
source = "0"
camera_id = "cam-01"
[detector]
min_face_px = 40
confidence = 0.9
[tracker]
kind = "iou"
max_age_frames = 15
min_length_frames = 5
[quality]
bundle = "{bundle}"
backend = "emulate"
scorer = "default"
top_k = 1
[keys]
recipient = "{recipient}"
device_key = "{device_key}"
[store]
dir = "{store}"
retention_days = 10
quota_mb = 512
[service]
log_format = "json"
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"bundle": tmp_path / "bundle", "recipient": tmp_path / "investigator.pub",
             "device_key": tmp_path / "device.key", "store": tmp_path / "records"}
    paths["bundle"].mkdir()
    paths["recipient"].write_text("{}")
    paths["device_key"].write_text("{}")
    return paths


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "snapseal.toml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path, files):
    config = load_config(write(tmp_path, EXAMPLE.format(**files)))
    assert config.camera.source == "0"
    assert config.tracker.kind == "iou" and config.tracker.min_length_frames == 5
    assert config.quality.bundle == files["bundle"] and config.quality.scorer_name is None
    assert config.keys.recipient == files["recipient"]
    assert config.store.retention_days == 10.0 and isinstance(config.store.retention_days, float)


def test_no_file_gives_the_defaults():
    assert load_config(None) == Config()


def test_command_line_overrides_the_file(tmp_path, files):
    config = load_config(write(tmp_path, EXAMPLE.format(**files)), {"camera.source": "clip.mp4", "quality.top_k": 3})
    assert config.camera.source == "clip.mp4" and config.quality.top_k == 3
    assert config.camera.camera_id == "cam-01"  # untouched keys keep the file's value


@pytest.mark.parametrize("edit, words", [
    (("[tracker]", "[tracker]\nmax_agee = 3"), ["unknown key 'max_agee'", "[tracker]"]),
    (("[service]", "[servce]"), ["unknown section [servce]"]),
    (("min_face_px = 40", 'min_face_px = "forty"'), ["min_face_px", "must be an integer"]),
    (("confidence = 0.9", "confidence = 1.5"), ["confidence", "[0, 1]"]),
    (('kind = "iou"', 'kind = "sort"'), ["kind", "iou, distance"]),
    (("top_k = 1", "top_k = 0"), ["top_k"]),
    (("retention_days = 10", "retention_days = true"), ["retention_days", "must be a number"]),
    (("[camera]", "[camera\n"), ["not valid TOML"]),
])
def test_mistakes_are_one_line_naming_key_and_file(tmp_path, files, edit, words):
    path = write(tmp_path, EXAMPLE.format(**files).replace(*edit))
    with pytest.raises(SnapsealError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message


def test_a_missing_key_file_names_key_and_file(tmp_path, files):
    files["recipient"].unlink()
    path = write(tmp_path, EXAMPLE.format(**files))
    with pytest.raises(SnapsealError, match=r"recipient.*does not exist") as raised:
        load_config(path)
    assert str(path) in str(raised.value) and str(files["recipient"]) in str(raised.value)


def test_an_override_error_names_the_option(tmp_path):
    with pytest.raises(SnapsealError, match="--top-k"):
        load_config(None, {"quality.top_k": -1}, {"quality.top_k": "--top-k"})
    with pytest.raises(SnapsealError, match="--recipient"):
        load_config(None, {"keys.recipient": str(tmp_path / "nope.pub")}, {"keys.recipient": "--recipient"})


def test_missing_config_file_and_required_values(tmp_path):
    with pytest.raises(SnapsealError, match="does not exist"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(SnapsealError, match=r"\[store\] dir.*--store"):
        require(load_config(None), "store.dir", "--store")


def test_config_is_frozen():
    config = load_config(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.camera.source = "1"  # type: ignore[misc]


def test_the_deploy_example_config_is_valid(repo_root):
    example = repo_root / "deploy" / "snapseal.example.toml"
    if not example.exists():
        pytest.skip("deploy/snapseal.example.toml not in this tree")
    config = load_config(example, check_files=False)  # its paths are the board's
    assert config.tracker.kind in ("iou", "distance") and config.keys.recipient is not None


# --- every key declared once: the example file, the messages and --help come from it ------------

REPO = Path(__file__).resolve().parents[2]


def test_example_file_is_what_config_defaults_prints():
    from snapseal.daemon.config import example_toml

    assert (REPO / "deploy" / "snapseal.example.toml").read_text(encoding="utf-8") == example_toml()


def test_example_file_gives_the_defaults_and_the_board_paths():
    from snapseal.daemon.config import settings

    config = load_config(REPO / "deploy" / "snapseal.example.toml", check_files=False)
    for section, key, default, spec in settings():
        want = default if default is not None or spec.alternative_to else Path(spec.example)
        assert getattr(getattr(config, section), key) == want, f"{section}.{key}"


def test_cli_prints_the_defaults(capsys):
    from snapseal.daemon.cli import main
    from snapseal.daemon.config import example_toml

    assert main(["config", "--defaults"]) == 0
    assert capsys.readouterr().out == example_toml()


def test_range_message_says_the_range_it_checks(tmp_path):
    with pytest.raises(SnapsealError) as caught:
        load_config(write(tmp_path, "[store]\nquota_mb = 2e7\n"))
    assert "quota_mb must be in (0, 10000000], got 20000000.0" in str(caught.value)
    with pytest.raises(SnapsealError, match=r"quota_mb must be in \(0, 10000000\], got 0"):
        load_config(write(tmp_path, "[store]\nquota_mb = 0\n"))


def test_every_key_has_a_description_and_a_rule_that_holds_for_its_default():
    from snapseal.daemon.config import settings

    for section, key, default, spec in settings():
        assert spec.help.strip(), f"{section}.{key} has no description"
        if default is not None:
            assert spec.accepts(default), f"{section}.{key}: default {default!r} breaks its own rule"


def test_run_help_shows_each_overridable_key(capsys):
    from snapseal.daemon.cli import main
    from snapseal.daemon.cli.run import OVERRIDES

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for key in OVERRIDES.values():
        assert f"[{key}]" in text
