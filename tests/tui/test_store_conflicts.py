"""The Store screen holds back two different files with one SOP Instance UID, as ``store`` does.

Both faces call ``core.net.store_order.plan_store``; the peer is dcmtk's storescp on
loopback, so "neither sent" is what an independent receiver got, not what we counted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom import dcmread
from textual.widgets import Input

from dicomtools.core.phantom import write_ct_series
from dicomtools.tui.screens.store import StoreScreen
from tests.net import peers
from tests.tui.helpers import make_app, screen_text, settle, wait_for
from tests.tui.test_net_screens import config_for

pytestmark = [pytest.mark.anyio, pytest.mark.net]


def received_uids(scp: peers.StoreSCP) -> list[str]:
    return [str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in scp.out_dir.iterdir()]


async def test_store_screen_names_a_uid_clash_and_sends_neither_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = write_ct_series(src / "a", 4, patient_id="DUP-TUI")
    twin = src / "b" / "changed.dcm"
    twin.parent.mkdir(parents=True)
    ds = dcmread(files[0])
    ds.SliceLocation = 999.0  # same UID, different content
    ds.save_as(twin)
    shutil.copy(files[1], src / "b" / "identical.dcm")  # same UID, same bytes: one instance, sent once
    uid0 = str(ds.SOPInstanceUID)
    scp = peers.StoreSCP.start(tmp_path / "scp")
    try:
        app = make_app(None, config_for(scp.port, scp.aet, peers.free_port()))
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.press("f4")
            await settle(pilot)
            store = app.screen
            assert isinstance(store, StoreScreen)
            store.query_one("#s-folder", Input).value = str(src)
            await pilot.press("ctrl+t")  # read the folder, check, list what is left out
            await wait_for(pilot, lambda: store.instances is not None, timeout=30)
            await settle(pilot)
            # before anything is sent, both files are named with the reason
            held = {inst.path: why for inst, why in store.skipped}
            assert set(held) == {str(files[0]), str(twin)}
            assert held[str(twin)] == (f"not sent: SOP Instance UID {uid0} is also in {files[0]} "
                                      "with different content")
            text = screen_text(app)
            # one line per file, each naming the other file (the path in the reason)
            assert f"left out 1: not sent: SOP Instance UID … is also in {twin} with different content" in text
            assert f"left out 1: not sent: SOP Instance UID … is also in {files[0]} with different content" in text
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: store.last_result is not None, timeout=60)
            result = store.last_result
            assert result.ok, result.summary()
            assert result.stored == 3  # the three slices nobody else claims
            assert {inst.path for inst, _ in result.skipped} >= {str(files[0]), str(twin)}
            assert "Store done: 3 stored" in screen_text(app)
    finally:
        scp.stop()
    got = received_uids(scp)
    assert uid0 not in got
    assert sorted(got) == sorted(str(dcmread(f).SOPInstanceUID) for f in files[1:])
