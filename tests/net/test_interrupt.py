"""Ctrl-C (SIGINT to a real process) ends every command with exit 130, one line, no traceback.

The peers are the ones that used to keep the process alive: a listener that
accepts TCP and never answers the association request (pynetdicom's
connection thread is not a daemon) and a node that accepts the association
and never answers the request. The bound on ``wait`` is a hang detector, not
a timing assertion.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.net import peers
from tests.net.hostile import HangingSCP, MuteListener, write_node_config

DICOMTOOLS = str(Path(sys.executable).parent / "dicomtools")


def node_args(tmp: Path, port: int, aet: str = "PEER", **extra: object) -> list[str]:
    """A preset with long timeouts: only Ctrl-C can end these runs quickly."""
    cfg = write_node_config(tmp / "node.toml", port, aet, peers.free_port(), timeout=60.0, **extra)
    return ["--config", str(cfg), "--node", "peer"]


def spawn(argv: list[str], home: Path) -> subprocess.Popen[str]:
    env = peers.peer_env() | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "cfg"),
                              "XDG_CACHE_HOME": str(home / "cache")}
    return subprocess.Popen([DICOMTOOLS, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_until(cond, proc: subprocess.Popen[str], what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"ended before {what}: {proc.communicate()}")
        time.sleep(0.01)
    raise AssertionError(f"never {what}")


def interrupt(proc: subprocess.Popen[str], times: int = 1) -> tuple[int, str]:
    for _ in range(times):
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("still running 5 s after Ctrl-C") from None
    return proc.returncode, err


def assert_clean(rc: int, err: str) -> None:
    assert rc == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("command", ["retrieve", "retrieve-get", "store", "echo"])
def test_ctrl_c_while_the_association_request_is_pending(tmp_path: Path, command: str, times: int) -> None:
    out = tmp_path / "out"
    with MuteListener() as mute:
        argv = node_args(tmp_path, mute.port)
        if command.startswith("retrieve"):
            argv = ["retrieve", "--patientId", "P1", "--path", str(out), *argv]
            if command == "retrieve-get":
                argv.append("--useGet")
        elif command == "store":
            src = tmp_path / "src"
            src.mkdir()
            from pydicom.data import get_testdata_file

            (src / "ct.dcm").write_bytes(Path(str(get_testdata_file("CT_small.dcm"))).read_bytes())
            argv = ["store", "--path", str(src), "--noCache", *argv]
        else:
            argv = ["echo", *argv]
        proc = spawn(argv, tmp_path)
        wait_until(lambda: bool(mute.accepted), proc, "connected")
        time.sleep(0.2)  # the A-ASSOCIATE-RQ is out; no answer will come
        rc, err = interrupt(proc, times)
    assert_clean(rc, err)
    assert not out.exists() or not list(out.glob(".dicomtools-retrieve-*"))


def test_ctrl_c_while_a_query_is_pending(tmp_path: Path) -> None:
    """Association accepted, C-FIND never answered (a frozen node)."""
    out = tmp_path / "out"
    with HangingSCP() as hang:
        proc = spawn(["retrieve", "--patientId", "P1", "--path", str(out), *node_args(tmp_path, hang.port, hang.aet)], tmp_path)
        wait_until(lambda: hang.requests > 0, proc, "queried")
        rc, err = interrupt(proc)
    assert_clean(rc, err)
    assert not out.exists() or not list(out.glob(".dicomtools-retrieve-*"))


@pytest.mark.parametrize(("marker", "delay"), [
    ("dicomtools.core.cli.common", 0.0),  # the CLI half imported (entry.main's own guard)
    ("dicomtools.core.cli.main", 0.0),  # the CLI imported, the command's modules not yet
    ("dicomtools.core.cli.main", 0.05),  # while pydicom / pynetdicom import
    ("pynetdicom", 0.0),
])
def test_ctrl_c_during_start_up(tmp_path: Path, marker: str, delay: float) -> None:
    """SIGINT while the CLI imports: still 130 and one line, no traceback.

    ``-X importtime`` (PYTHONPROFILEIMPORTTIME) tells when a module finished
    importing, so the signal lands at a known stage however loaded the machine
    is. Not covered: the interpreter's own ``site`` start-up and pip's script
    wrapper before ``main()`` runs; Python prints its own traceback there.
    """
    with MuteListener() as mute:
        env_home = tmp_path
        argv = ["echo", *node_args(tmp_path, mute.port)]
        env = peers.peer_env() | {"HOME": str(env_home), "PYTHONPROFILEIMPORTTIME": "1"}
        proc = subprocess.Popen([DICOMTOOLS, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == marker:
                break
        else:
            raise AssertionError(f"{marker} never imported")
        time.sleep(delay)
        rc, err = interrupt(proc)
    err = "\n".join(line for line in err.splitlines() if not line.startswith("import time:"))
    assert rc == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted" in err


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dicomtools.core.phantom import write_ct_series

    folder = tmp_path_factory.mktemp("many")
    write_ct_series(folder / "ct", 4000, patient_id="MANY-1", rows=64)
    return folder


def reading(pid: int, folder: Path) -> bool:
    """True once the process holds a file of ``folder`` open: it is in the middle of its work."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(str(folder) in os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir))
    except OSError:
        return False


@pytest.mark.parametrize("command", [
    ["show", "--noCache", "--workers", "1"],
    ["search", "--noCache", "--workers", "1", "--tag", "PatientID"],
    ["anonymize", "--newPatientId", "A-1", "--newPatientName", "A^ONE"],
])
def test_ctrl_c_in_local_commands(tmp_path: Path, many_files: Path, command: list[str]) -> None:
    """Not only the network commands: reading and writing files stops at Ctrl-C too."""
    argv = [command[0], "--path", str(many_files), *command[1:]]
    if command[0] == "anonymize":
        argv += ["--out", str(tmp_path / "anon")]
    proc = spawn(argv, tmp_path)
    wait_until(lambda: reading(proc.pid, many_files), proc, "reading")
    rc, err = interrupt(proc)
    assert_clean(rc, err)
