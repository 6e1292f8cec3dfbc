"""The retrieve's private temporary folder: made like ``tempfile.mkdtemp``, removed whole."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dicomtools.core.net.retrieve_save import TEMP_PREFIX, make_temp_folder, remove_temp_folder


def test_made_private_under_a_new_name_each_time(tmp_path: Path) -> None:
    made = [make_temp_folder(tmp_path) for _ in range(50)]
    assert len({p.name for p in made}) == 50
    for p in made:
        assert p.parent == tmp_path and p.name.startswith(TEMP_PREFIX) and p.is_dir()
        assert stat.S_IMODE(p.stat().st_mode) == 0o700  # only ours to read, as mkdtemp makes it


def test_removed_with_what_it_holds_flat_or_not(tmp_path: Path) -> None:
    flat = make_temp_folder(tmp_path)
    (flat / ".lock").write_bytes(b"")
    for i in range(20):
        (flat / f"{i}.dcm").write_bytes(b"x" * i)
    os.symlink(tmp_path / "elsewhere", flat / "link")  # a link is removed, never followed
    nested = make_temp_folder(tmp_path)
    (nested / "sub" / "deeper").mkdir(parents=True)
    (nested / "sub" / "deeper" / "f").write_bytes(b"y")
    keep = tmp_path / "elsewhere"
    keep.mkdir()
    (keep / "mine").write_text("kept")
    remove_temp_folder(flat)
    remove_temp_folder(nested)
    remove_temp_folder(tmp_path / "never-made")  # gone already: no error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]
    assert (keep / "mine").read_text() == "kept"
