"""Load: store and retrieve 20,000 instances in one run against Orthanc; memory flat, progress steady.

Each transfer runs in a child process (``python -c`` calling the same core
functions as the CLI: scan, tree, order, store / retrieve) with a sink that
timestamps every progress event; the child reports its peak RSS
(``ru_maxrss`` of itself and of its scan workers) and the longest silence
between two progress events. 2,000 and 20,000 instances run the same way and
the peaks are compared: the difference must stay under 60 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dicomtools.core.phantom import write_ct_series
from tests.net import peers
from tests.net.conftest import OUR_AE

pytestmark = [pytest.mark.net, pytest.mark.slow]

SMALL, LARGE = 2_000, 20_000
MAX_RSS_GROWTH_MB = 60
MAX_SILENCE_S = 5.0

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
a = json.loads(sys.argv[1])
from dicomtools.core.config import NodeConfig
from dicomtools.core.progress import ProgressEvent

stamps = []
counts = {"advanced": 0}
def sink(event: ProgressEvent) -> None:
    stamps.append(time.monotonic())
    counts[event.kind] = counts.get(event.kind, 0) + 1

node = NodeConfig(host="127.0.0.1", port=a["port"], called_ae=a["aet"], calling_ae=a["calling"],
                  dimse_timeout=120.0, network_timeout=120.0)
t0 = time.monotonic()
stamps.append(t0)
if a["op"] == "store":
    from dicomtools.core.net.store import order_for_store, store
    from dicomtools.core.archive.scan import scan
    from dicomtools.core.tree import build_forest
    scanned = scan(a["path"], sink=sink)
    plan = order_for_store(build_forest(scanned.instances))
    res = store(node, plan, sink=sink)
    ok, done = res.ok, res.stored
else:
    from dicomtools.core.net.retrieve import RetrieveOptions, retrieve
    res = retrieve(node, RetrieveOptions(a["pid"], a["path"], scp_port=a["scp_port"]), sink=sink)
    ok, done = res.ok, len(res.saved)
end = time.monotonic()
stamps.append(end)
gaps = [b - a_ for a_, b in zip(stamps, stamps[1:])]
print(json.dumps({"ok": ok, "done": done, "seconds": end - t0, "max_silence": max(gaps),
                  "events": counts, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "problems": list(getattr(res, "problems", []))[:5]}))
"""


def run_child(**args: Any) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True,
                          timeout=900, env=peers.peer_env(), cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def load_orthanc(tmp_path_factory: pytest.TempPathFactory, scp_port: int) -> Iterator[peers.Orthanc]:
    work = tmp_path_factory.mktemp("load-orthanc")
    peer = peers.Orthanc.start(work, modalities={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        yield peer
    finally:
        peer.stop()


def patient_count(peer: peers.Orthanc, pid: str) -> int:
    found = peer.rest("POST", "/tools/find", {"Level": "Instance", "Query": {"PatientID": pid}})
    return len(found)


def test_store_and_retrieve_20000_instances(load_orthanc: peers.Orthanc, tmp_path_factory: pytest.TempPathFactory,
                                            scp_port: int) -> None:
    results: dict[int, dict[str, dict[str, Any]]] = {}
    for count in (SMALL, LARGE):
        pid = f"LOAD-{count}"
        src = tmp_path_factory.mktemp(f"load-src-{count}")
        write_ct_series(src, count, patient_id=pid)
        common = {"port": load_orthanc.port, "aet": load_orthanc.aet, "calling": OUR_AE}
        stored = run_child(op="store", path=str(src), **common)
        assert stored["ok"] and stored["done"] == count, stored
        assert patient_count(load_orthanc, pid) == count  # all arrived
        out = tmp_path_factory.mktemp(f"load-out-{count}") / "out"
        fetched = run_child(op="retrieve", path=str(out), pid=pid, scp_port=scp_port, **common)
        assert fetched["ok"] and fetched["done"] == count, fetched
        assert sum(1 for _ in out.iterdir()) == count
        results[count] = {"store": stored, "retrieve": fetched}
        for what, r in results[count].items():
            print(f"{what} {count}: {r['seconds']:.1f} s, peak RSS {r['rss_mb']:.0f} MB "
                  f"(scan workers {r['children_rss_mb']:.0f} MB), longest silence {r['max_silence']:.2f} s, "
                  f"{r['events'].get('advanced', 0)} progress events")
    for what in ("store", "retrieve"):
        small, large = results[SMALL][what], results[LARGE][what]
        growth = large["rss_mb"] - small["rss_mb"]
        assert growth < MAX_RSS_GROWTH_MB, (what, small["rss_mb"], large["rss_mb"])
        assert large["children_rss_mb"] - small["children_rss_mb"] < MAX_RSS_GROWTH_MB, what
        assert large["max_silence"] < MAX_SILENCE_S, (what, large["max_silence"])
        assert large["events"].get("advanced", 0) >= LARGE  # at least one per instance
