"""Log screen and log capture: every record lands in the app, nothing reaches stderr."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from dicomtools.tui.logbridge import BufferHandler, LogCapture
from dicomtools.tui.screens.log import LogScreen
from tests.tui.helpers import make_app, screen_text, settle

pytestmark = pytest.mark.anyio


async def test_log_screen_shows_core_and_library_records_and_filters(
    phantom_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # a stderr handler like the CLI's basicConfig installs: it must be silenced while the app runs
    noisy = logging.StreamHandler()
    logging.getLogger().addHandler(noisy)
    logging.getLogger("pynetdicom").addHandler(logging.StreamHandler())
    handler = BufferHandler()
    try:
        with LogCapture(handler, logging.DEBUG):
            app = make_app(phantom_root, log_handler=handler)
            async with app.run_test(size=(120, 30)) as pilot:
                await settle(pilot)
                logging.getLogger("dicomtools.core.net.store").warning("peer refused: 0xA700 out of resources")
                logging.getLogger("pynetdicom.assoc").info("Association Accepted")
                logging.getLogger("dicomtools.core.archive.scan").debug("a debug line")
                warnings.warn("Invalid value for VR UI: '1.2.x'", UserWarning, stacklevel=1)
                await pilot.press("f6")
                await pilot.pause()
                assert isinstance(app.screen, LogScreen)
                text = screen_text(app)
                assert "12:00:00 WARNING dicomtools.core.net.store: peer refused: 0xA700" in text
                # library chatter is kept at DEBUG: the INFO view shows our own work
                assert "Association Accepted" not in text
                assert "Invalid value for VR UI" in text
                assert "a debug line" not in text  # INFO and above by default
                await pilot.press("1")
                await pilot.pause()
                text = screen_text(app)
                assert "a debug line" in text and "DEBUG   pynetdicom.assoc: Association Accepted" in text
                await pilot.press("3")
                await pilot.pause()
                text = screen_text(app)
                assert "peer refused" in text and "a debug line" not in text and "Association Accepted" not in text
                # records arriving while the screen is shown are appended
                logging.getLogger("dicomtools.core.net.retrieve").error("C-MOVE failed: 0xA801")
                await pilot.pause()
                await pilot.pause()
                assert "C-MOVE failed: 0xA801" in screen_text(app)
                await pilot.press("4")
                await pilot.pause()
                assert "Showing ERROR and above: 1 lines" in screen_text(app)
        out, err = capfd.readouterr()
        assert "peer refused" not in err and "Association Accepted" not in err
        assert "Invalid value" not in err
        assert noisy in logging.getLogger().handlers  # restored after the app
    finally:
        logging.getLogger().removeHandler(noisy)
        for h in list(logging.getLogger("pynetdicom").handlers):
            if type(h) is logging.StreamHandler:
                logging.getLogger("pynetdicom").removeHandler(h)


async def test_log_opens_at_the_newest_line_wraps_long_lines_and_has_each_job_result(
    phantom_root: Path, tmp_path: Path
) -> None:
    handler = BufferHandler()
    with LogCapture(handler, logging.INFO):
        app = make_app(phantom_root, log_handler=handler)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            for i in range(300):  # what one store of 300 instances made pynetdicom say
                logging.getLogger("pynetdicom.events").info("Received Store Request %d", i)
            for i in range(60):
                logging.getLogger("dicomtools.core.archive.scan").info("line number %03d", i)
            long_tail = "the end of a long line that a narrow pane used to cut off"
            logging.getLogger("dicomtools.core.net.store").warning("peer refused %s %s", "x" * 70, long_tail)
            await pilot.press("f6")
            await settle(pilot)
            text = screen_text(app)
            # newest at the bottom, in view; the oldest scrolled away; no chatter at INFO
            assert "line number 059" in text and "line number 000" not in text
            assert "Received Store Request" not in text
            # the long warning is readable to its end
            assert long_tail in " ".join(text.split())
            await pilot.press("w")
            await settle(pilot)
            assert long_tail not in " ".join(screen_text(app).split())  # one line each: cut at the width
            assert "w: wrap long lines" in screen_text(app)
    # the scan job's own result was logged at INFO (the Log is where results can be found again)
    results = [line.message for line in handler.snapshot(logging.INFO) if line.message.startswith("job done: scan")]
    assert results and "103 DICOM" in results[0] and "5 unreadable" in results[0]
