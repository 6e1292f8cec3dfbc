"""Patient lists: text, CSV and the seed's hand-off JSON, and safe folder names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomtools.core.patientlist import (
    ListFormat,
    PatientEntry,
    PatientListError,
    load_patient_list,
    parse_patient_list,
)
from dicomtools.core.safename import numbered, safe_name


def test_text_comments_blank_lines_spaces_and_repeats() -> None:
    text = "# exported 2024-01-01\n\nPAT-1\n  PAT 2 with spaces  \r\n#PAT-3\nPAT-1\n"
    got = parse_patient_list(text, "list.txt")
    assert got.format is ListFormat.TEXT
    assert got.entries == (PatientEntry("PAT-1"), PatientEntry("PAT 2 with spaces"))


def test_csv_several_rows_per_patient_are_plans_and_an_empty_plan_is_the_whole_patient() -> None:
    text = "PatientId;PlanId;Comment\nP1;PLAN_A;x\nP1;PLAN_B;\nP2;;whole\nP3;PLAN_C\n\nP3;;\n"
    got = parse_patient_list(text, "list.csv")
    assert got.format is ListFormat.CSV
    assert got.entries == (PatientEntry("P1", ("PLAN_A", "PLAN_B")), PatientEntry("P2"), PatientEntry("P3"))


def test_csv_header_spelling_and_quotes() -> None:
    got = parse_patient_list('"Patient ID","plan_id"\n"A, B",P\n', "x.csv")
    assert got.entries == (PatientEntry("A, B", ("P",)),)
    assert parse_patient_list("PatientID\nX\n").entries == (PatientEntry("X"),)


def handoff(tmp_path: Path) -> Path:
    """The shape ARIA's patient-browser script writes (keys we ignore included)."""
    data = {"Patients": [
        {"PatientId": "P1", "IsSelected": True, "HasObjectives": False, "ObjectiveFiles": [],
         "Plans": [{"PlanId": "PLAN_A", "CourseId": "C1", "IsSelected": True},
                   {"PlanId": "PLAN_B", "CourseId": "C1", "IsSelected": False}]},
        {"PatientId": "P2", "IsSelected": False, "Plans": [{"PlanId": "X", "CourseId": "C", "IsSelected": True}]},
        {"PatientId": "P3", "IsSelected": True, "Plans": [{"PlanId": "Q", "CourseId": "C", "IsSelected": False}]},
        {"PatientId": "P4", "IsSelected": True, "Plans": []},
    ]}
    path = tmp_path / "handoff.json"
    path.write_text("\ufeff" + json.dumps(data, indent=2), encoding="utf-8")
    return path


def test_handoff_json_selected_patients_and_plans(tmp_path: Path) -> None:
    got = load_patient_list(handoff(tmp_path))
    assert got.format is ListFormat.JSON
    assert got.entries == (PatientEntry("P1", ("PLAN_A",)), PatientEntry("P3"), PatientEntry("P4"))


@pytest.mark.parametrize("text, message", [
    ("", "no Patient ID in the list"),
    ("# only a comment\n", "no Patient ID in the list"),
    ('{"Patients": [{"PatientId": "A", "IsSelected": false}]}', "no selected patient"),
    ('{"Patients": {"A": 1}}', 'expected {"Patients": [...]}'),
    ('{"Patients": [', "invalid JSON"),
    ('{"Patients": [{"IsSelected": true}]}', "Patients[0]: PatientId missing"),
    ("A\x1b[2J\n", "control character"),
    ("A\\B\n", "backslash"),
    ("X" * 65 + "\n", "longer than 64"),
    ("PatientId,PlanId\n,P\n", "list:2: row has no PatientId"),
])
def test_bad_lists_are_one_line(text: str, message: str) -> None:
    with pytest.raises(PatientListError) as err:
        parse_patient_list(text, "list")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PatientListError, match="cannot read"):
        load_patient_list(tmp_path / "missing.txt")
    (tmp_path / "bin").write_bytes(b"\0\1\2")
    with pytest.raises(PatientListError, match="not a text file"):
        load_patient_list(tmp_path / "bin")


def test_safe_name_keeps_plain_ids_and_separates_changed_ones() -> None:
    assert safe_name("PHANTOM-001") == "PHANTOM-001"
    assert safe_name("A_B") == "A_B"
    changed = {safe_name(t) for t in ("A B", "A/B", "A\\B", "A_B", "../A_B", "A\x00B")}
    assert len(changed) == 6
    for t in ("..", ".", "", " ", "/etc/passwd", ".hidden", "x" * 300, "a\nb"):
        name = safe_name(t)
        assert "/" not in name and name not in (".", "..") and not name.startswith(".")
        assert len(name) <= 80 and name.isprintable()


def test_numbering() -> None:
    assert [numbered("A", i, 3, "-") for i in (1, 2)] == ["A-01", "A-02"]
    assert numbered("B", 7, 150, "^") == "B^007"
