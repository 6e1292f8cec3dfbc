"""Real DICOM peers for tests and benchmarks: Orthanc, dcmtk storescp and dcmqrscp.

Every peer listens on 127.0.0.1 (Orthanc has no bind option and listens on all
interfaces; we only ever talk to it on loopback), on a free port, runs with
``TCP_NODELAY=1`` in its environment (dcmtk and Orthanc honour it) and is
stopped by its PID. Missing binaries raise ``PeerMissing``: tests fail loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


class PeerMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def peer_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env


def find_binary(name: str) -> str:
    """The first *native* executable called ``name`` on PATH (or /usr/bin, /usr/sbin).

    pynetdicom ships Python apps with the same names as dcmtk's (storescp,
    storescu, ...) and a pyenv shim may come first on PATH: skip scripts.
    """
    dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
    for d in dirs:
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            with open(cand, "rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    return cand
    raise PeerMissing(f"{name}: native binary not found (install dcmtk / orthanc)")


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"peer exited early with code {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout} s")


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class Peer:
    aet: str
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        stop_process(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        stop_process(self.proc)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def _spawn(self, argv: list[str], cwd: Path | None = None) -> None:
        self.log_path = self.workdir / f"{self.aet}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=peer_env(), cwd=cwd or self.workdir
        )
        log.close()


@dataclass
class Orthanc(Peer):
    http_port: int = 0
    modalities: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def start(cls, workdir: Path, aet: str = "ORTHANC", modalities: dict[str, tuple[str, str, int]] | None = None) -> Orthanc:
        binary = find_binary("Orthanc")
        workdir.mkdir(parents=True, exist_ok=True)
        peer = cls(aet=aet, port=free_port(), workdir=workdir, http_port=free_port())
        peer.modalities = {k: list(v) for k, v in (modalities or {}).items()}
        config = {
            "Name": "dicomtools-test",
            "DicomAet": aet,
            "DicomPort": peer.port,
            "HttpPort": peer.http_port,
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "index"),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "StorageAccessOnFind": "Always",
            "DicomModalities": peer.modalities,
            "DicomModalitiesInDatabase": False,
            "StorageCompression": False,
            "Plugins": [],
            "HttpServerEnabled": True,
            "DicomScpTimeout": 30,
            "SaveJobs": False,
            "ConcurrentJobs": 2,
        }
        cfg_path = workdir / "orthanc.json"
        cfg_path.write_text(json.dumps(config, indent=2))
        peer._spawn([binary, str(cfg_path)])
        end = time.monotonic() + 20
        while True:
            try:
                peer.rest("GET", "/system")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if peer.proc is not None and peer.proc.poll() is not None:
                    raise RuntimeError(f"Orthanc exited: {peer.log_text()[-2000:]}") from None
                if time.monotonic() > end:
                    raise RuntimeError("Orthanc did not answer on its HTTP port") from None
                time.sleep(0.05)
        wait_port(peer.port, proc=peer.proc)
        return peer

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(f"http://{HOST}:{self.http_port}{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=30) as rsp:
            raw = rsp.read()
        return json.loads(raw) if raw else None

    def add_modality(self, name: str, aet: str, host: str, port: int) -> None:
        self.rest("PUT", f"/modalities/{name}", {"AET": aet, "Host": host, "Port": port})

    def instance_uids(self) -> set[str]:
        uids: set[str] = set()
        for oid in self.rest("GET", "/instances"):
            tags = self.rest("GET", f"/instances/{oid}/simplified-tags")
            uids.add(tags["SOPInstanceUID"])
        return uids

    def instance_count(self) -> int:
        return int(self.rest("GET", "/statistics")["CountInstances"])

    def clear(self) -> None:
        for pid in self.rest("GET", "/patients"):
            self.rest("DELETE", f"/patients/{pid}")

    def upload(self, paths: list[Path]) -> None:
        for p in paths:
            self.rest("POST", "/instances", p.read_bytes())


@dataclass
class StoreSCP(Peer):
    """dcmtk ``storescp`` in bit-preserving mode: files on disk are what we sent."""

    out_dir: Path = Path()

    @classmethod
    def start(cls, workdir: Path, aet: str = "STORESCP", port: int | None = None, unique: bool = True, extra: list[str] | None = None,
              accept_all: bool = True) -> StoreSCP:
        binary = find_binary("storescp")
        out = workdir / "received"
        out.mkdir(parents=True, exist_ok=True)
        peer = cls(aet=aet, port=port or free_port(), workdir=workdir, out_dir=out)
        # accept_all=False: only the uncompressed syntaxes (storescp's default), as many nodes do
        argv = [binary, "-aet", aet, "-od", str(out), *(["+xa"] if accept_all else []), "-pm", "+B", "-v"]
        if unique:
            argv.append("+uf")
        argv += list(extra or [])
        argv.append(str(peer.port))
        peer._spawn(argv)
        wait_port(peer.port, proc=peer.proc)
        return peer


@dataclass
class Dcmqrscp(Peer):
    """dcmtk ``dcmqrscp``: a Q/R SCP that knows no RT keys in C-FIND."""

    storage: Path = Path()

    @classmethod
    def start(cls, workdir: Path, aet: str = "DCMQRSCP", hosts: dict[str, tuple[str, str, int]] | None = None) -> Dcmqrscp:
        binary = find_binary("dcmqrscp")
        workdir.mkdir(parents=True, exist_ok=True)
        storage = workdir / "db"
        storage.mkdir(exist_ok=True)
        peer = cls(aet=aet, port=free_port(), workdir=workdir, storage=storage)
        host_lines = "\n".join(f"{name} = ({a}, {h}, {p})" for name, (a, h, p) in (hosts or {}).items())
        cfg = (
            f"NetworkTCPPort = {peer.port}\nMaxPDUSize = 65536\nMaxAssociations = 16\n"
            f"HostTable BEGIN\n{host_lines}\nHostTable END\n"
            "VendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\n{aet} {storage} RW (2000, 1024mb) ANY\nAETable END\n"
        )
        cfg_path = workdir / "dcmqrscp.cfg"
        cfg_path.write_text(cfg)
        peer._spawn([binary, "-c", str(cfg_path), "-v", str(peer.port)])
        wait_port(peer.port, proc=peer.proc)
        return peer


def storescu(port: int, aet: str, files: list[Path], calling: str = "STORESCU", extra: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    binary = find_binary("storescu")
    argv = [binary, "-aet", calling, "-aec", aet, "-nh", *(extra or []), HOST, str(port), *map(str, files)]
    return subprocess.run(argv, env=peer_env(), capture_output=True, timeout=600)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
