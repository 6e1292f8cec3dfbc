"""Issue 13, "One path for CLI and TUI": where both faces do the same job they use the same
code and show the same facts (default machines, machine check, NAME=VALUE parsing, jobs)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from dicomtools.core import config as core_config
from dicomtools.core.cli.main import main as cli_main
from dicomtools.core.config import Config, NodeConfig, save_config
from dicomtools.tui.jobs import JobOutcome, JobState
from dicomtools.tui.screens import settings as settings_screen
from dicomtools.tui.screens import store as store_screen
from dicomtools.tui.widgets.progress_pane import ProgressPane
from tests.net.peers import free_port
from tests.tui.helpers import make_app, screen_text, settle, wait_for
from tests.tui.test_browse import goto_label

pytestmark = pytest.mark.anyio


def plan_labels(tree_json: dict) -> dict[str, str]:
    """Plan name -> the plan's line (it names the machine) of a ``show --format json`` tree."""
    return {plan["label"].split(",")[0]: plan["label"] for p in tree_json["patients"] for plan in p["plans"]}


async def test_show_and_browse_draw_one_tree_with_the_presets_default_machines(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = Config()
    cfg.machines.defaults = {"RDS": "HALCYON"}
    preset = tmp_path / "site.toml"
    save_config(cfg, preset)
    folder = phantom_root / "PHANTOM-001"
    assert cli_main(["show", "--path", str(folder), "--config", str(preset), "--format", "json", "--noCache"]) == 0
    shown = plan_labels(json.loads(capsys.readouterr().out))
    assert "Machine: HALCYON" in shown["PLAN_B"]  # filled from the preset, as Browse does
    app = make_app(folder, cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        browse = {n.label.split(",")[0]: n.label for p in app.browse.forest for n in p.plans}
    assert browse == shown


async def test_store_screen_flags_exactly_what_the_store_command_refuses(
    phantom_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = phantom_root / "PHANTOM-001"
    code = cli_main(["store", "--path", str(folder), "--hostName", "127.0.0.1", "--hostPort", str(free_port()),
                     "--calledAet", "NOBODY", "--machineMapping", "TrueBeam1=TB1", "--noCache"])
    err = capsys.readouterr().err
    assert code == 1 and "nothing sent" in err
    cli_lines = [line for line in err.splitlines() if line.startswith("plan ")]
    cfg = Config()
    cfg.nodes["x"] = NodeConfig(host="127.0.0.1", port=free_port(), called_ae="NOBODY")
    cfg.machines.mapping = {"TrueBeam1": "TB1"}
    app = make_app(folder, cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await goto_label(pilot, "PHANTOM-001")
        await pilot.press("space", "t")
        await settle(pilot)
        flagged = [c for c in app.screen.checks if c.state != "ok"]
    assert flagged
    for c in flagged:  # every beam the screen blocks is one the command names, with the same fix
        line = next(line for line in cli_lines if f"plan {c.plan} " in line and c.beam in line)
        assert f"--defaultMachines {c.model}=MACHINE" in line and f"{c.model}=MACHINE" in c.label()
    assert len({c.plan_uid for c in flagged}) == len(cli_lines)


def test_name_value_pairs_have_one_parser(capsys: pytest.CaptureFixture[str], phantom_root: Path) -> None:
    assert store_screen.parse_pairs is core_config.parse_pairs
    assert settings_screen.parse_pairs is core_config.parse_pairs
    assert core_config.parse_pairs("A=B C=D") == {"A": "B", "C": "D"}
    assert core_config.parse_pairs(["A=B", "C=D E=F"]) == {"A": "B", "C": "D", "E": "F"}
    with pytest.raises(ValueError, match="'TrueBeam1': expected NAME=VALUE"):
        core_config.parse_pairs("TrueBeam1")
    # the CLI says the same, naming its option
    code = cli_main(["show", "--path", str(phantom_root), "--defaultMachines", "TrueBeam1"])
    assert code == 2
    assert "--defaultMachines 'TrueBeam1': expected NAME=VALUE" in capsys.readouterr().err


async def test_the_job_runner_cancels_and_reports_a_typed_outcome(phantom_root: Path) -> None:
    app = make_app(None)
    outcomes: list[JobOutcome[int]] = []
    started = threading.Event()

    def slow(sink, job) -> int:
        started.set()
        for _ in range(500):
            if job.cancel.cancelled:
                return -1
            threading.Event().wait(0.01)
        return 1

    def done(outcome: JobOutcome[int]) -> str:
        outcomes.append(outcome)
        return "stopped" if outcome.cancelled else "ran"

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.browse.query_one(ProgressPane)
        app.runner.run(pane, "browse", "slow job", slow, done, label="slow")
        await wait_for(pilot, started.is_set)
        assert [j.title for j in app.jobs.running()] == ["slow job"]
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: bool(outcomes))
        await settle(pilot)
        assert outcomes[0].state is JobState.CANCELLED and outcomes[0].result == -1
        assert "slow [cancelled] stopped" in screen_text(app) and not app.jobs.running()
