"""deploy/install.sh against a temporary root: every file, idempotence, dry run, uninstall, bad input."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.deploy.conftest import FAKE_BITSTREAM, base_args, copy_root, run_install, snapshot

AS_ROOT = os.geteuid() == 0

# Each install is a real venv + pip install + keygen: several seconds apiece.
pytestmark = pytest.mark.slow


def read_passwd_ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "snapseal":
            assert fields[6] == "/usr/sbin/nologin"
            return int(fields[2]), int(fields[3])
    raise AssertionError("no snapseal entry in the staged /etc/passwd")


# path -> (kind, mode, owner, group); owner/group "svc" = the snapseal account.
EXPECTED = {
    "opt/snapseal": ("dir", 0o755, "root", "root"),
    "opt/snapseal/bundle": ("dir", 0o755, "root", "root"),
    "opt/snapseal/bundle/manifest.json": ("file", 0o644, "root", "root"),
    "opt/snapseal/bundle/graph.onnx": ("file", 0o644, "root", "root"),
    "opt/snapseal/bundle/sub": ("dir", 0o755, "root", "root"),
    "opt/snapseal/bundle/sub/eps.npy": ("file", 0o644, "root", "root"),
    "opt/snapseal/detector": ("dir", 0o755, "root", "root"),
    "opt/snapseal/detector/mtcnn-ncnn": ("dir", 0o755, "root", "root"),
    "opt/snapseal/detector/mtcnn-ncnn/pnet.param": ("file", 0o644, "root", "root"),
    "opt/snapseal/detector/mtcnn-ncnn/onet.bin": ("file", 0o644, "root", "root"),
    "etc/snapseal": ("dir", 0o750, "root", "svc"),
    "etc/snapseal/snapseal.toml": ("file", 0o640, "root", "svc"),
    "etc/snapseal/investigator.pub": ("file", 0o640, "root", "svc"),
    "var/lib/snapseal": ("dir", 0o700, "svc", "svc"),
    "var/lib/snapseal/records": ("dir", 0o700, "svc", "svc"),
    "var/lib/snapseal/device.key": ("file", 0o600, "svc", "svc"),
    "var/lib/snapseal/device.pub": ("file", 0o644, "svc", "svc"),
    "etc/systemd/system/snapseal.service": ("file", 0o644, "root", "root"),
    "etc/systemd/system/multi-user.target.wants": ("dir", 0o755, "root", "root"),
}


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_every_installed_path_has_its_mode_and_owner(installed, relative):
    root, _ = installed
    kind, mode, owner, group = EXPECTED[relative]
    path = root / relative
    info = path.lstat()
    assert (stat.S_ISDIR(info.st_mode) if kind == "dir" else stat.S_ISREG(info.st_mode)), relative
    assert stat.S_IMODE(info.st_mode) == mode, f"{relative}: {oct(stat.S_IMODE(info.st_mode))}"
    if AS_ROOT:  # owners can only be set (and so checked) as root, as in CI
        uid, gid = read_passwd_ids(root)
        assert info.st_uid == (uid if owner == "svc" else 0), relative
        assert info.st_gid == (gid if group == "svc" else 0), relative


def test_nothing_else_is_installed(installed):
    root, _ = installed
    top = {p.relative_to(root).parts[0] for p in root.iterdir()}
    assert top == {"etc", "opt", "var", ".snapseal-install.log"}
    assert sorted(p.name for p in (root / "etc" / "snapseal").iterdir()) == ["investigator.pub", "snapseal.toml"]
    assert not (root / "etc" / "systemd" / "system" / "snapseal.service.d").exists()  # emulate, local camera


def test_unit_is_the_repo_unit_and_enabled(installed, repo_root):
    root, _ = installed
    unit = root / "etc/systemd/system/snapseal.service"
    assert unit.read_bytes() == (repo_root / "deploy/systemd/snapseal.service").read_bytes()
    wants = root / "etc/systemd/system/multi-user.target.wants/snapseal.service"
    assert wants.is_symlink() and os.readlink(wants) == "/etc/systemd/system/snapseal.service"


def test_recipient_key_is_copied_and_no_private_key_is(installed, recipient):
    root, _ = installed
    assert (root / "etc/snapseal/investigator.pub").read_bytes() == recipient.read_bytes()
    assert not list(root.rglob("investigator.key"))


def test_device_key_was_made_on_the_box_by_snapseal_keygen(installed):
    root, _ = installed
    key = root / "var/lib/snapseal/device.key"
    assert key.stat().st_size > 0
    assert not list((root / "var/lib/snapseal").glob(".keygen.*"))  # its staging dir is gone
    from snapseal.daemon import keys

    # A real Ed25519 pair: the key loads and its public half is the device.pub beside it.
    signing = keys.load_device_signing(key)
    public = keys.load_device_public(root / "var/lib/snapseal/device.pub")
    assert signing.key_id == public.key_id


def test_config_is_valid_for_the_daemon(installed, wheel):
    root, _ = installed
    from snapseal.daemon.config import load_config

    # The paths in it are the board's (/opt/..., /etc/...), not the staging root's.
    config = load_config(root / "etc/snapseal/snapseal.toml", check_files=False)
    assert config.camera.source == "0"
    assert config.camera.camera_id == "cam-07"
    assert str(config.quality.bundle) == "/opt/snapseal/bundle"
    assert config.quality.backend == "emulate"
    assert str(config.keys.recipient) == "/etc/snapseal/investigator.pub"
    assert str(config.keys.device_key) == "/var/lib/snapseal/device.key"
    assert str(config.store.dir) == "/var/lib/snapseal/records"
    # ... and each of those board paths exists in the staged tree.
    for board_path in (config.quality.bundle, config.keys.recipient, config.keys.device_key, config.store.dir):
        assert (root / str(board_path).lstrip("/")).exists(), board_path


def test_example_config_is_valid_for_the_daemon(repo_root):
    from snapseal.daemon.config import load_config

    config = load_config(repo_root / "deploy/snapseal.example.toml", check_files=False)
    assert config.store.retention_days == 10


def test_venv_runs_the_installed_wheel_and_sees_the_pynq_venv(installed):
    root, _ = installed
    import subprocess

    python = root / "opt/snapseal/venv/bin/python"
    out = subprocess.run(
        [str(python), "-c", "import snapseal, numpy, pynq; print(snapseal.__file__); print(numpy.__version__)"],
        capture_output=True, text=True, check=True, cwd="/",  # the service's working directory
    ).stdout.split()
    assert out[0].startswith(str(root / "opt/snapseal/venv/lib"))  # the wheel, not the work tree
    assert out[1].startswith("1.")  # numpy 1.x from the PYNQ venv


def test_staged_system_commands_are_recorded_not_run(installed):
    root, result = installed
    log = (root / ".snapseal-install.log").read_text()
    for command in ("would run: useradd --system", "would run: systemctl enable snapseal.service",
                    "would run: systemctl daemon-reload", "would run: systemctl restart snapseal.service"):
        assert command in log
    assert "install.sh: done:" in result.stdout


def test_second_run_changes_nothing(installed, emulate_bundle, recipient, wheel, pynq_venv, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    before = snapshot(root)
    result = run_install(*base_args(root, emulate_bundle, recipient, wheel, pynq_venv))
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert snapshot(root) == before


def test_dry_run_on_an_empty_root_changes_nothing(emulate_bundle, recipient, wheel, pynq_venv, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    before = snapshot(root)
    result = run_install(*base_args(root, emulate_bundle, recipient, wheel, pynq_venv), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would generate the device signing key" in result.stdout
    assert "would create /etc/snapseal/snapseal.toml" in result.stdout
    assert snapshot(root) == before


def test_dry_run_of_a_change_lists_it_and_changes_nothing(installed, emulate_bundle, recipient, wheel,
                                                          pynq_venv, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    before = snapshot(root)
    args = base_args(root, emulate_bundle, recipient, wheel, pynq_venv)
    result = run_install(*args, "--source", "rtsp://camera.invalid/stream", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would create /etc/systemd/system/snapseal.service.d/network.conf" in result.stdout
    assert snapshot(root) == before


def test_network_camera_gets_the_network_dropin(emulate_bundle, recipient, wheel, pynq_venv, tmp_path,
                                                repo_root):
    root = tmp_path / "root"
    root.mkdir()
    args = base_args(root, emulate_bundle, recipient, wheel, pynq_venv)
    result = run_install(*args, "--source", 'rtsp://camera.invalid/s?a="b"')
    assert result.returncode == 0, result.stderr
    dropin = root / "etc/systemd/system/snapseal.service.d/network.conf"
    assert dropin.read_bytes() == (repo_root / "deploy/systemd/network.conf").read_bytes()
    from snapseal.daemon.config import load_config

    assert load_config(root / "etc/snapseal/snapseal.toml", check_files=False).camera.source == \
        'rtsp://camera.invalid/s?a="b"'


def test_fpga_bundle_installs_bitstream_and_fpga_dropin(fpga_bundle, recipient, wheel, pynq_venv, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    result = run_install(*base_args(root, fpga_bundle, recipient, wheel, pynq_venv))
    assert result.returncode == 0, result.stderr
    from snapseal.daemon.bundle import read_hardware

    section = read_hardware(fpga_bundle)
    assert (root / "opt/snapseal/bundle" / section.bitfile).read_bytes() == FAKE_BITSTREAM
    assert (root / "opt/snapseal/bundle" / section.hwh).exists()
    assert read_hardware(root / "opt/snapseal/bundle") == section
    from snapseal.daemon.config import load_config

    assert load_config(root / "etc/snapseal/snapseal.toml", check_files=False).quality.backend == "fpga"
    dropin = (root / "etc/systemd/system/snapseal.service.d/fpga.conf").read_text()
    assert "@PYNQ_PL_SERVER@" not in dropin
    assert "/pynq/pl_server" in dropin and str(pynq_venv) in dropin
    assert "CapabilityBoundingSet=CAP_SYS_RAWIO" in dropin
    if AS_ROOT:  # fpga.conf runs the service as root:snapseal; systemd re-owns the state dir to that
        uid, gid = read_passwd_ids(root)
        for relative in ("var/lib/snapseal", "var/lib/snapseal/records", "var/lib/snapseal/device.key"):
            info = (root / relative).stat()
            assert (info.st_uid, info.st_gid) == (0, gid), relative


def test_fpga_bundle_for_another_board_is_refused(fpga_bundle, recipient, wheel, pynq_venv, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = base_args(root, fpga_bundle, recipient, wheel, pynq_venv)
    args[args.index("pynq-z2")] = "ultra96-v2"
    result = run_install(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == f"install.sh: error: bundle {fpga_bundle}: built for board 'pynq-z2', not ultra96-v2"
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("store", ["keep", "wipe"])
def test_uninstall(installed, tmp_path, store):
    root = copy_root(installed[0], tmp_path / "root")
    result = run_install("--uninstall", f"--{store}-store", "--root", root)
    assert result.returncode == 0, result.stderr
    for gone in ("opt/snapseal", "etc/snapseal", "etc/systemd/system/snapseal.service",
                 "etc/systemd/system/multi-user.target.wants/snapseal.service"):
        assert not (root / gone).exists() and not (root / gone).is_symlink(), gone
    passwd = (root / "etc/passwd").read_text()
    if store == "keep":
        assert (root / "var/lib/snapseal/device.key").exists()
        assert (root / "var/lib/snapseal/records").is_dir()
        assert "snapseal:" in passwd  # the kept files stay owned by a known account
    else:
        assert not (root / "var/lib/snapseal").exists()
        assert "snapseal:" not in passwd
    assert "would run: systemctl disable --now snapseal.service" in (root / ".snapseal-install.log").read_text()
    again = run_install("--uninstall", f"--{store}-store", "--root", root)
    assert again.returncode == 0 and "nothing to uninstall" in again.stdout


def test_uninstall_dry_run_changes_nothing(installed, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    before = snapshot(root)
    result = run_install("--uninstall", "--wipe-store", "--root", root, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would remove /var/lib/snapseal" in result.stdout
    assert snapshot(root) == before


def bad_cases(tmp: Path, bundle: Path, recipient: Path) -> dict[str, tuple[list, str]]:
    no_manifest = tmp / "no-manifest"
    no_manifest.mkdir()
    private = tmp / "investigator.key"
    private.write_bytes(b"secret")
    a_file = tmp / "a-file"
    a_file.write_text("x")
    return {
        "unknown board": (["--board", "zcu104"], "install.sh: error: unknown board 'zcu104' (expected pynq-z2 or ultra96-v2)"),
        "missing bundle": (["--bundle", tmp / "nope"], f"install.sh: error: bundle {tmp / 'nope'}: not a directory"),
        "bundle without manifest": (["--bundle", no_manifest], f"install.sh: error: bundle {no_manifest}: no manifest.json"),
        "missing key": (["--recipient", tmp / "nope.pub"], f"install.sh: error: recipient key {tmp / 'nope.pub'}: no such file"),
        "private key": (["--recipient", private], f"install.sh: error: recipient key {private}: a .key is a private key; only the .pub goes to the camera"),
        "root is a file": (["--root", a_file], f"install.sh: error: root {a_file}: not a directory"),
        "unwritable root": (["--root", "/proc/1"], "install.sh: error: root /proc/1: not writable"),
        "fpga without bitstream": (["--backend", "fpga"], f"install.sh: error: bundle {bundle}: no bitstream in its manifest (hardware section); build one with make bitstream"),
    }


@pytest.mark.parametrize("case", ["unknown board", "missing bundle", "bundle without manifest", "missing key",
                                  "private key", "root is a file", "unwritable root", "fpga without bitstream"])
def test_bad_input_is_one_line_and_changes_nothing(case, emulate_bundle, recipient, wheel, pynq_venv, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    override, message = bad_cases(inputs, emulate_bundle, recipient)[case]
    args = base_args(root, emulate_bundle, recipient, wheel, pynq_venv)
    for flag, value in zip(override[::2], override[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    before = snapshot(root)
    result = run_install(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [message]
    assert result.stdout == ""
    assert snapshot(root) == before


def test_a_step_failing_midway_rolls_back(emulate_bundle, recipient, wheel, pynq_venv, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    # pip fails after the venv was made: a requirement that is a local file that is not there
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{tmp_path / 'missing-0.1-py3-none-any.whl'}\n")
    before = snapshot(root)
    result = run_install(*base_args(root, emulate_bundle, recipient, wheel, pynq_venv), "--requirements", requirements)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("install.sh: error: step at line")
    assert "rolled back" in result.stderr
    after = snapshot(root)
    assert after.pop(".")[:4] == before.pop(".")[:4]  # the root itself: only its mtime moved
    assert after == before == {}


def test_a_bitstream_bundle_installs_as_fpga_with_backend_auto(fpga_bundle, recipient, wheel, pynq_venv, tmp_path):
    """`make bitstream`'s bundle shape (hardware section, hw/<board>/accel.bit) is what the
    installer reads: with --backend auto it installs the fpga backend, not emulation."""
    root = tmp_path / "root"
    root.mkdir()
    result = run_install(*base_args(root, fpga_bundle, recipient, wheel, pynq_venv), "--backend", "auto")
    assert result.returncode == 0, result.stderr
    from snapseal.daemon.config import load_config

    assert load_config(root / "etc/snapseal/snapseal.toml", check_files=False).quality.backend == "fpga"
    assert (root / "etc/systemd/system/snapseal.service.d/fpga.conf").is_file()


def test_a_bundle_with_an_incomplete_hardware_section_is_refused(emulate_bundle, recipient, wheel, pynq_venv, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(emulate_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**manifest, "hardware": {"board": "pynq-z2", "bitfile": "hw/pynq-z2/accel.bit"}}))
    root = tmp_path / "root"
    root.mkdir()
    result = run_install(*base_args(root, bundle, recipient, wheel, pynq_venv))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"install.sh: error: bundle {bundle}: {bundle / 'manifest.json'}: hardware section lacks hwh, driver "
        "(build the bundle with `make bitstream`)"]
    assert list(root.iterdir()) == []


def test_config_holds_the_deployment_keys_and_the_board_profile(installed):
    """The deployment-specific keys, the board's runtime profile (daemon/board_profiles.py) and
    where its ncnn weights were put; every other key keeps the default declared once in
    daemon/config.py."""
    import tomllib

    from snapseal.daemon.board_profiles import runtime_profile
    from snapseal.daemon.config import settings

    root, _ = installed
    written = tomllib.loads((root / "etc/snapseal/snapseal.toml").read_text())
    keys = {(section, key) for section, table in written.items() for key in table}
    profile = runtime_profile("pynq-z2").config_overrides()
    assert keys == ({(section, key) for section, key, _, setting in settings() if setting.deploy}
                    | {tuple(key.split(".", 1)) for key in profile} | {("detector", "ncnn_weights_dir")})
    for key, value in profile.items():
        section, name = key.split(".", 1)
        assert written[section][name] == value, key
    weights = root / written["detector"]["ncnn_weights_dir"].lstrip("/")
    assert sorted(p.name for p in weights.iterdir()) == sorted(["pnet.param", "pnet.bin", "rnet.param", "rnet.bin",
                                                                "onet.param", "onet.bin"])


def test_an_ncnn_profile_without_its_weights_is_one_line(emulate_bundle, recipient, wheel, pynq_venv, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = base_args(root, emulate_bundle, recipient, wheel, pynq_venv)
    at = args.index("--ncnn-weights")
    del args[at:at + 2]
    result = run_install(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "install.sh: error: board pynq-z2 runs the ncnn detector: pass --ncnn-weights DIR "
        "(make detector-ncnn builds build/detector/mtcnn-ncnn)"]
    assert list(root.iterdir()) == []
