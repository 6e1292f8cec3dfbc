"""The seed tool's profile files load as they are (``;``, no header, 12 columns, tag regexes).

The file below is written here in that shape (the seed's own files are not
committed): rows copied in spirit from AriaSecurityProfile.csv, including its
private-group regex that made ``--profile`` fail with
``unknown column '[0-9A-F]{3}[13579BDF]'``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from dicomtools.core.anonymize.engine import DUMMY_TEXT, Anonymizer
from dicomtools.core.anonymize.profile import ProfileError
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.anonymize.uidmap import UidMap
from tests.unit import anon_objects as o

#            tag regex                   ;B ;SafeP;UIDs;Dev;Inst;PatCh;Full;Modif;Desc;SC;Graph
SEED = """\
[0-9A-F]{3}[13579BDF],[0-9A-F]{4};X;C;;;;;;;;;
0010,0010;Z;;;;;;;;;;
0010,0020;Z;;;;;;;;;;
0010,00;X;;;;;;;;;;
0008,0018;U;;K;;;;;;;;
0020,000D;U;;K;;;;;;;;
0020,000E;U;;K;;;;;;;;
0020,0052;U;;K;;;;;;;;
0002,0003;U;;K;;;;;;;;
4000,001;X;;;;;;;;;;
0008,0020;Z;;;;;;Keep;Clean;;;
0008,0023;Z/D;;;;;;K;C;;;
300a,0002;D;;;;;;;;Keep;;
0008,1030;X;;;;;;;;C;;K
0008,0080;X/Z/D;;;;K;;;;;;
0008,0090;Z;;;;;;;;;;
0008,0050;Z;;;;;;;;;;
0040,A730;D;;;;;;;;;C;
60[0-9A-F]{2},3000;X;;;;;;;;;;C
"""


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "AriaSecurityProfile.csv"
    path.write_text(SEED, encoding="utf-8")
    return path


def test_loads_as_it_is(seed_file: Path) -> None:
    profile = load_profile(str(seed_file))
    assert profile.name == "AriaSecurityProfile" and len(profile.rules) == 19
    assert all(r.spec.kind == "regex" for r in profile.rules)
    compiled = profile.compile([])
    assert compiled.action_for(0x00100010) == "Z"
    assert compiled.action_for(0x00100030) == "X"  # '0010,00' is a prefix: first match after 0010,0010/0020
    assert compiled.action_for(0x40000010) == "X" and compiled.action_for(0x4000001F) == "X"
    assert compiled.action_for(0x40000020) is None
    assert compiled.action_for(0x300A0002) == "D"  # lower-case regex, case-insensitive
    assert compiled.action_for(0x00291010) == "X"
    assert compiled.action_for(0x00200013) is None


def test_options_last_enabled_column_wins_first_letter_counts(seed_file: Path) -> None:
    profile = load_profile(str(seed_file))
    assert profile.compile(["RetainLongFullDates"]).action_for(0x00080020) == "K"  # "Keep"
    assert profile.compile(["RetainLongModifDates"]).action_for(0x00080020) == "C"  # "Clean"
    assert profile.compile(["CleanDesc"]).action_for(0x00081030) == "C"
    assert profile.compile(["CleanDesc", "CleanGraph"]).action_for(0x00081030) == "K"  # last column wins
    assert profile.compile(["CleanDesc"]).action_for(0x300A0002) == "K"
    assert profile.compile(["RetainUIDs"]).action_for(0x00080018) == "K"


def test_engine_applies_a_seed_profile(seed_file: Path) -> None:
    ds = o.ct_with_overlay()
    ds.add_new(0x00291010, "LO", "PID4711X")
    ds.add_new(0x40000010, "LT", "Mueller")
    ds.RTPlanLabel = "PLAN1"
    uid_map = UidMap()
    compiled = load_profile(str(seed_file)).compile(["CleanDesc", "RetainLongModifDates"])
    Anonymizer(compiled, uid_map, "ANON1", "ANON^ONE").anonymize(ds)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    assert out.SOPInstanceUID == uid_map.map("1.2.3.4.100")
    assert 0x00291010 not in out and 0x40000010 not in out and "PatientBirthDate" not in out
    assert out.RTPlanLabel == "PLAN1"  # ARIA keeps its labels with CleanDesc
    assert out.StudyDate not in ("20240115", "") and out.ContentDate not in ("20240115", "")
    assert "InstitutionName" not in out  # X/Z/D, Type 3 in the CT image: our engine picks by the IOD
    assert not [e for e in out if e.tag.group == 0x6000]  # the overlay goes whole


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0010,0010;Q;;;;;;;;;;\n", r":1: unknown action 'Q'"),
        ("0010,0010;Z;;;;;;;;;;\n0010,(0010;Z;;;;;;;;;;\n", r":2: tag pattern .* is not a regular expression"),
        ("0010,0010;Z;;;;;;;;;;;;;X\n", r":1: 15 columns; the seed format has 12"),
        ("0010,0010;Z;;;Bogus;;;;;;;\n", r":1: unknown action 'Bogus' in the RetainDeviceIdent column"),
    ],
)
def test_bad_seed_file_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=message):
        load_profile(str(path))


def test_cli_profile_seed_csv_with_the_presets_options(tmp_path: Path, seed_file: Path) -> None:
    src, out, conf = tmp_path / "in", tmp_path / "out", tmp_path / "conf"
    src.mkdir()
    ds = o.ct_with_overlay()
    ds.RTPlanLabel, ds.StudyDescription = "PLAN1", "Mueller study"
    ds.save_as(src / "ct.dcm", enforce_file_format=True)
    (conf / "dicomtools").mkdir(parents=True)
    (conf / "dicomtools" / "config.toml").write_text('[anonymize]\nprofile = "aria"\noptions = ["CleanGraph", "CleanDesc"]\n')
    env = dict(os.environ, XDG_CONFIG_HOME=str(conf))
    proc = subprocess.run(
        [sys.executable, "-m", "dicomtools.tui.entry", "anonymize", "--path", str(src), "--out", str(out),
         "--newPatientId", "ANON1", "--newPatientName", "ANON^ONE", "--profile", str(seed_file)],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "options: CleanDesc CleanGraph" in proc.stdout
    files = list(out.rglob("*.dcm"))
    assert len(files) == 1
    result = pydicom.dcmread(files[0])
    assert result.StudyDescription == "Mueller study"  # CleanDesc C, then CleanGraph K: the last column wins
    assert result.RTPlanLabel == "PLAN1" and result[0x60003000].value  # CleanGraph keeps the overlay whole
    assert str(result.PatientName) == "ANON^ONE" and DUMMY_TEXT not in str(result.PatientName)
