"""``dicomtools show`` and ``demo`` as users run them: formats, options, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtools.core.cli.main import main
from dicomtools.core.phantom.manifest import PhantomManifest


def run_cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dicomtools.core", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_tree_format(phantom: PhantomManifest, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--path", phantom.root]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Patient: PHANTOM-001 (PHANTOM^ALPHA)")
    assert any(line.startswith("├── RT-Plan: PLAN_A, Intent: CURATIVE, Approval: APPROVED") for line in lines)
    assert any("RT-Dose: " in line and "Summation type: PLAN" in line for line in lines)
    assert any("Image CT: 12 images" in line for line in lines)
    assert "└── Not connected to any plan" in out
    assert "Registrations" in out and "RT-Ion-Plan: PROTON_1" in out
    assert lines[-1].startswith("2 patients, 8 plans,") and "5 unreadable" in lines[-1]


def test_ascii_and_default_machines_both_spellings(phantom: PhantomManifest, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--path", phantom.root, "--ascii", "--defaultMachines", "RDS=HALCYON"]) == 0
    camel = capsys.readouterr().out
    assert "├" not in camel and "`-- " in camel
    assert "Machine: HALCYON (default)" in camel
    assert main(["show", "--path", phantom.root, "--ascii", "--default-machines", "RDS=HALCYON"]) == 0
    assert capsys.readouterr().out == camel


def test_flat_format_is_greppable(phantom: PhantomManifest, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--path", phantom.root, "--format", "flat"]) == 0
    lines = capsys.readouterr().out.splitlines()
    drr = [line for line in lines if "RT-Image: DRR1" in line]
    assert len(drr) == 2  # one per patient
    assert drr[0].startswith("Patient: PHANTOM-001 (PHANTOM^ALPHA) / RT-Plan: PLAN_A")
    assert " / Beam: " in drr[0]
    assert any(line.startswith("Patient: PHANTOM-002") and "/ Not connected to any plan / RT-Dose" in line for line in lines)


def test_json_contract(phantom: PhantomManifest, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--path", phantom.root, "--format", "json", "--defaultMachines", "RDS=HALCYON"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"patients", "unreadable", "stats"}
    assert [p["patient_id"] for p in doc["patients"]] == sorted(phantom.patients)
    p1 = doc["patients"][0]
    assert set(p1) >= {"patient_id", "patient_name", "plans", "unconnected"}
    plans = {p["plan_label"]: p for p in p1["plans"]}
    assert set(plans) == {"PLAN_A", "PLAN_B", "QA_A", "PROTON_1"}
    assert plans["PLAN_B"]["machines"] == ["HALCYON", "HALCYON"]
    assert plans["PLAN_A"]["approval_status"] == "APPROVED"
    assert plans["PROTON_1"]["kind"] == "RT-Ion-Plan"
    for node in plans.values():
        assert set(node) >= {"kind", "label", "instances", "children"}
        for inst in node["instances"]:
            assert set(inst) >= {"sop_instance_uid", "sop_class_uid", "path"}
            assert inst["path"].startswith(phantom.root)
    ss = [c for c in plans["PLAN_A"]["children"] if c["kind"] == "RT-Struct"][0]
    series = ss["children"][0]
    assert series["kind"] == "Image" and series["modality"] == "CT" and series["series_instance_uid"]
    related = [c for c in plans["QA_A"]["children"] if c["kind"] == "RT-Plan"]
    assert related and related[0]["plan_label"] == "PLAN_A"
    assert {u["path"] for u in doc["unreadable"]} == {os.path.join(phantom.root, r) for r in phantom.broken_files}
    assert doc["stats"]["patients"] == 2 and doc["stats"]["plans"] == 8


def test_relative_path_is_kept_in_json(phantom: PhantomManifest) -> None:
    parent, name = os.path.split(phantom.root)
    r = run_cli("show", "--path", name, "--format", "json", "--search-pattern", "RP*", cwd=parent)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    paths = [i["path"] for p in doc["patients"] for n in p["plans"] for i in n["instances"]]
    assert paths and all(p.startswith(name + os.sep) for p in paths)


def test_exit_codes() -> None:
    missing = run_cli("show", "--path", "/definitely/not/here")
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "no such file or folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    usage = run_cli("show", "--path", ".", "--format", "xml")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    bad_pair = run_cli("show", "--path", ".", "--defaultMachines", "RDS")
    assert bad_pair.returncode == 2 and "NAME=VALUE" in bad_pair.stderr
    assert run_cli("--version").stdout.startswith("dicomtools ")
    assert run_cli("show", "-h").returncode == 0


def test_empty_folder_is_not_an_error(tmp_path: Path) -> None:
    r = run_cli("show", "--path", str(tmp_path))
    assert r.returncode == 0
    assert "No DICOM files found" in r.stdout


def test_demo_writes_archive_and_prints_tree(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    r = run_cli("demo", str(target), "--patients", "1", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Patient: PHANTOM-001")
    assert "1 patient, 4 plans" in r.stdout
    again = run_cli("demo", str(target), "--patients", "1", "--seed", "3")  # re-run into its own folder
    assert again.returncode == 0 and again.stdout == r.stdout
    other = tmp_path / "occupied"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    refused = run_cli("demo", str(other))
    assert refused.returncode == 1 and (other / "keep.txt").read_text() == "mine"


def test_a_real_process_writes_everything_before_its_quick_exit(phantom: PhantomManifest, tmp_path: Path) -> None:
    """show ends its process without interpreter tear-down: the output must be whole, the cache closed."""
    cache = tmp_path / "cache"
    cold = run_cli("show", "--path", phantom.root, "--format", "json", "--cache", str(cache))
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr == ""
    first = json.loads(cold.stdout)
    warm = run_cli("show", "--path", phantom.root, "--format", "json", "--cache", str(cache))
    assert warm.returncode == 0 and warm.stderr == ""
    second = json.loads(warm.stdout)
    assert second["patients"] == first["patients"] and second["unreadable"] == first["unreadable"]
    assert not (cache / "index.sqlite-wal").exists()  # closed: the log was checkpointed into the index


def test_a_warning_logged_mid_run_reaches_stderr_in_the_cli_format(phantom: PhantomManifest, tmp_path: Path) -> None:
    """Logging is imported and set up only when something logs (core.lazylog): the line must look as before."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "index.sqlite").write_bytes(b"not a database\x1b[2J" * 200)
    r = run_cli("show", "--path", phantom.root, "--format", "json", "--cache", str(cache))
    assert r.returncode == 0, r.stderr
    [line] = [x for x in r.stderr.splitlines() if x.strip()]
    assert line.startswith(f"WARNING dicomtools.core.archive.cache: index cache {cache / 'index.sqlite'} is unusable")
    assert json.loads(r.stdout)["stats"]["instances"] > 0
