"""The systemd unit: it verifies, its exposure stays low, and the daemon's stack runs under its
MemoryDenyWriteExecute=yes. The exposure score is printed (pytest -s) for the record."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.deploy.conftest import REPO_ROOT, base_args, copy_root, run_install, system_units_into

UNIT = REPO_ROOT / "deploy" / "systemd" / "snapseal.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# A policy bound, not a measurement: the base unit must stay "SAFE"/"OK" on systemd's scale.
MAX_EXPOSURE = 2.0


def require_systemd_analyze() -> str:
    return require_tool("systemd-analyze", "systemd")


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def verify(root: Path) -> subprocess.CompletedProcess:
    system_units_into(root)
    return subprocess.run([require_systemd_analyze(), "verify", f"--root={root}", "snapseal.service"],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_installed_unit_verifies_clean(installed, tmp_path):
    root = copy_root(installed[0], tmp_path / "root")
    result = verify(root)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@pytest.mark.slow
def test_unit_with_fpga_and_network_dropins_verifies_clean(fpga_bundle, recipient, wheel, pynq_venv, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    args = base_args(root, fpga_bundle, recipient, wheel, pynq_venv)
    assert run_install(*args, "--network").returncode == 0
    dropins = root / "etc/systemd/system/snapseal.service.d"
    assert sorted(p.name for p in dropins.iterdir()) == ["fpga.conf", "network.conf"]
    result = verify(root)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def exposure(unit_dir: Path) -> float:
    result = subprocess.run(
        [require_systemd_analyze(), "security", "--offline=true", "--no-pager", str(unit_dir / "snapseal.service")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if "Overall exposure level" in ln]
    return float(line.split(":")[1].split()[0])


def test_exposure_score_of_the_base_unit(tmp_path):
    shutil.copy(UNIT, tmp_path / "snapseal.service")
    score = exposure(tmp_path)
    print(f"systemd-analyze security --offline=true deploy/systemd/snapseal.service: {score}")
    assert score <= MAX_EXPOSURE


def test_hardening_directives():
    found = directives(UNIT.read_text())
    expected = {
        "Type": ["notify"], "Restart": ["on-failure"], "ProtectSystem": ["strict"], "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"], "NoNewPrivileges": ["yes"], "RestrictAddressFamilies": ["AF_UNIX"],
        "CapabilityBoundingSet": [""], "MemoryDenyWriteExecute": ["yes"], "UMask": ["0077"],
        "User": ["snapseal"], "StateDirectory": ["snapseal"], "DevicePolicy": ["closed"],
        "DeviceAllow": ["char-video4linux rw"], "LimitCORE": ["0"],
    }
    for key, values in expected.items():
        assert found.get(key) == values, key
    assert int(found["WatchdogSec"][0]) > 0
    assert "@system-service" in found["SystemCallFilter"]
    assert "StartLimitBurst" in found and "StartLimitIntervalSec" in found
    # Nothing but the state directory is writable: no ReadWritePaths in the base unit.
    assert "ReadWritePaths" not in found


def test_fpga_dropin_grants_only_what_pynq_needs():
    found = directives((REPO_ROOT / "deploy/systemd/fpga.conf.in").read_text())
    assert found["CapabilityBoundingSet"] == ["CAP_SYS_RAWIO"]
    assert found["DeviceAllow"] == ["/dev/mem rw", "char-drm rw"]
    assert found["ReadWritePaths"] == ["-/lib/firmware", "-@PYNQ_PL_SERVER@"]
    assert "AmbientCapabilities" not in found and "PrivateNetwork" not in found


def test_exposure_of_the_fpga_variant_is_reported(tmp_path):
    """The FPGA variant (root with CAP_SYS_RAWIO, /dev/mem) is worse by design; print it."""
    merged = UNIT.read_text().replace("[Install]", (REPO_ROOT / "deploy/systemd/fpga.conf.in").read_text()
                                      .replace("[Service]", "").replace("@PYNQ_PL_SERVER@", "/tmp") + "\n[Install]")
    (tmp_path / "snapseal.service").write_text(merged)
    score = exposure(tmp_path)
    print(f"exposure with fpga.conf merged in: {score}")
    assert score > exposure_of_base(tmp_path)


def exposure_of_base(tmp_path: Path) -> float:
    base = tmp_path / "base"
    base.mkdir()
    shutil.copy(UNIT, base / "snapseal.service")
    return exposure(base)


MDWE_PROBE = textwrap.dedent(
    """
    import ctypes, mmap, sys
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("NO-MDWE"); sys.exit(0)
    # Prove the restriction is in force: a writable+executable mapping must now be refused.
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        print("MDWE-NOT-ENFORCED"); sys.exit(1)
    except (PermissionError, OSError):
        pass
    import numpy as np, cv2, onnxruntime as ort, nacl.public, nacl.signing
    from onnx import TensorProto, helper
    a = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    assert np.allclose(a @ np.eye(64, dtype=np.float32), a)
    small = cv2.resize((a * 255).astype(np.uint8), (32, 32), interpolation=cv2.INTER_AREA)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.array([[-1, 0, 1, 2]], np.float32)})[0]
    assert out.tolist() == [[0, 0, 1, 2]]
    key = nacl.public.PrivateKey.generate()
    sealed = nacl.public.SealedBox(key.public_key).encrypt(small.tobytes())
    assert nacl.public.SealedBox(key).decrypt(sealed) == small.tobytes()
    nacl.signing.SigningKey.generate().sign(b"x")
    import snapseal.daemon.config, snapseal.daemon.records.seal, snapseal.daemon.records.store
    print("OK")
    """
)


@pytest.mark.parametrize("env", ["work", "board"])
def test_daemon_stack_runs_under_memory_deny_write_execute(env):
    """MemoryDenyWriteExecute=yes must not break numpy, OpenCV, onnxruntime or PyNaCl.

    The kernel's PR_SET_MDWE (Linux >= 6.3) applies the same rule systemd's seccomp filter does.
    """
    python = Path(sys.executable) if env == "work" else REPO_ROOT / ".venv/board/bin/python"
    assert python.exists(), f"{python} missing (make env-board)"
    result = subprocess.run([str(python), "-c", MDWE_PROBE], capture_output=True, text=True, timeout=300,
                            cwd=REPO_ROOT)
    if result.stdout.strip() == "NO-MDWE":
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stdout + result.stderr
