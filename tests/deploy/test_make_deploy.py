"""`make deploy`: the usage line, and the exact rsync/ssh commands (SSH=echo RSYNC=echo)."""

from __future__ import annotations

import subprocess

from tests.deploy.conftest import REPO_ROOT

USAGE = "usage: make deploy BOARD=pynq-z2|ultra96-v2 HOST=[user@]host RECIPIENT=investigator.pub"


def fake_ncnn_weights(tmp_path) -> str:
    weights = tmp_path / "mtcnn-ncnn"
    weights.mkdir()
    (weights / "pnet.param").write_text("7767517\n")
    return str(weights)


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO_ROOT), *args],
                          capture_output=True, text=True, timeout=120)


def test_without_host_prints_the_usage_line():
    result = make("deploy")
    assert result.returncode != 0
    assert result.stderr.splitlines()[0].startswith(USAGE)


def test_unknown_board_prints_the_usage_line(tmp_path):
    result = make("deploy", "BOARD=zcu104", "HOST=xilinx@board.invalid", f"RECIPIENT={tmp_path}")
    assert result.returncode != 0 and result.stderr.startswith(USAGE)


def test_commands_are_built_for_the_board(tmp_path, emulate_bundle, recipient):
    wheel = tmp_path / "snapseal-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    ncnn = fake_ncnn_weights(tmp_path)
    result = make("deploy", "BOARD=ultra96-v2", "HOST=xilinx@board.invalid", f"RECIPIENT={recipient}",
                  f"BUNDLE={emulate_bundle}", f"WHEEL={wheel}", "SSH=echo", "RSYNC=echo", f"NCNN_WEIGHTS={ncnn}",
                  "SOURCE=/dev/video0", "CAMERA_ID=door-2", "DRY_RUN=1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"-rt --delete --chmod=D0755,F0644 deploy/install.sh deploy/systemd {wheel} requirements/board-arm64.txt "
        "requirements/weights.txt "
        "xilinx@board.invalid:snapseal-deploy/",
        f"-rt --delete --chmod=D0755,F0644 {emulate_bundle}/ xilinx@board.invalid:snapseal-deploy/bundle/",
        f"-t --chmod=F0644 {recipient} xilinx@board.invalid:snapseal-deploy/investigator.pub",
        f"-rt --delete --chmod=D0755,F0644 {ncnn}/ xilinx@board.invalid:snapseal-deploy/mtcnn-ncnn/",
        "-t xilinx@board.invalid sudo bash snapseal-deploy/install.sh --board ultra96-v2 "
        "--bundle snapseal-deploy/bundle --recipient snapseal-deploy/investigator.pub "
        "--requirements snapseal-deploy/board-arm64.txt --weights snapseal-deploy/weights.txt "
        "--ncnn-weights snapseal-deploy/mtcnn-ncnn --source '/dev/video0' --camera-id 'door-2' --dry-run",
    ]


def test_the_pynq_z2_gets_the_armhf_requirements(tmp_path, emulate_bundle, recipient):
    wheel = tmp_path / "snapseal-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    result = make("deploy", "BOARD=pynq-z2", "HOST=xilinx@board.invalid", f"RECIPIENT={recipient}",
                  f"BUNDLE={emulate_bundle}", f"WHEEL={wheel}", "SSH=echo", "RSYNC=echo",
                  f"NCNN_WEIGHTS={fake_ncnn_weights(tmp_path)}")
    assert result.returncode == 0, result.stderr
    first, *_, last = result.stdout.splitlines()
    assert " requirements/board-armhf.txt requirements/weights.txt " in first
    assert "--requirements snapseal-deploy/board-armhf.txt --weights snapseal-deploy/weights.txt" in last


def test_missing_recipient_file_is_one_line(tmp_path, emulate_bundle):
    result = make("deploy", "BOARD=pynq-z2", "HOST=xilinx@board.invalid", f"RECIPIENT={tmp_path}/nope.pub",
                  f"BUNDLE={emulate_bundle}", "SSH=echo", "RSYNC=echo")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines()[0] == f"make deploy: RECIPIENT {tmp_path}/nope.pub: no such file"
