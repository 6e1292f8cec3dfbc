"""The UID map: stable new UIDs, patients, date shifts, and the CSV file a second batch continues."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dicomtools.core.anonymize.uidmap import UidMap, UidMapError


def test_new_uids_are_stable_valid_and_salted() -> None:
    m = UidMap()
    new = m.map("1.2.3.4")
    assert new == m.map("1.2.3.4") and new != m.map("1.2.3.5")
    assert new.startswith("2.25.") and len(new) <= 64
    assert all(part.isdigit() and (part == "0" or not part.startswith("0")) for part in new.split("."))
    assert UidMap().map("1.2.3.4") != new  # another run, another salt


def test_save_and_load_continue_the_mapping(tmp_path: Path) -> None:
    m = UidMap()
    uid = m.map("1.2.3.4")
    m.patient("PAT1", "ANON", "ANON^A")
    shift = m.date_shift("PAT1")
    path = tmp_path / "map.csv"
    m.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it links back to patients
    assert not [p for p in tmp_path.iterdir() if p.name != "map.csv"]  # no temp file left
    again = UidMap.load(path)
    assert again.map("1.2.3.4") == uid
    assert again.map("9.9.9") == m.map("9.9.9")  # same salt: UIDs first seen later still agree
    assert again.patient("PAT1", "OTHER", "OTHER^B").new_id == "ANON"
    assert again.date_shift("PAT1") == shift


def test_names_with_commas_survive_the_csv() -> None:
    m = UidMap()
    m.patient('DOE, "JR"', "ANON", "ANON^A,B")
    again = UidMap.from_csv(m.to_csv())
    assert again.patients['DOE, "JR"'].new_name == "ANON^A,B"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n", r"map\.csv:1: not a dicomtools UID map"),
        ("kind,original,new\nmeta,salt,zz\n", r"map\.csv:2: bad salt"),
        ("kind,original,new\nmeta,salt,00\nfoo,1,2\n", r"map\.csv:3: unknown row kind 'foo'"),
        ("kind,original,new\nmeta,salt,00\nuid,1\n", r"map\.csv:3: expected 3 columns"),
        ("kind,original,new\nuid,1,2\n", "no salt row"),
        ("kind,original,new\nmeta,format,other/9\n", r"map\.csv:2: map format 'other/9' not supported"),
    ],
)
def test_bad_map_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(UidMapError, match=message):
        UidMap.from_csv(text, "map.csv")
