"""The keyword/VR table search reads without pydicom is pydicom's own dictionary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydicom import datadict

from dicomtools.core.search import dictionary
from dicomtools.core.search import expr as expr_mod


def test_table_is_pydicoms_dictionary_byte_for_byte() -> None:
    assert Path(dictionary.TABLE_FILE).read_bytes() == dictionary.render(datadict.DicomDictionary).encode("ascii")


def test_every_entry_and_keyword_answers_as_pydicom() -> None:
    for tag in datadict.DicomDictionary:
        assert dictionary.entry(tag) == (datadict.dictionary_VR(tag), datadict.keyword_for_tag(tag)), hex(tag)
        assert expr_mod.dictionary_VR(tag) == datadict.dictionary_VR(tag), hex(tag)
        assert expr_mod.keyword_for_tag(tag) == datadict.keyword_for_tag(tag), hex(tag)
    for keyword, tag in datadict.keyword_dict.items():
        if keyword:
            assert dictionary.tag_for_keyword(keyword) == tag, keyword
            assert expr_mod.parse(keyword).top_level_tag == tag, keyword
    assert len(datadict.keyword_dict) > 5000


def test_what_the_table_lacks_is_still_asked_of_pydicom() -> None:
    overlay_data = 0x60023000  # a repeating group: (60xx,3000)
    assert dictionary.entry(overlay_data) is None
    assert expr_mod.dictionary_VR(overlay_data) == datadict.dictionary_VR(overlay_data)
    assert expr_mod.keyword_for_tag(overlay_data) == datadict.keyword_for_tag(overlay_data) == "OverlayData"
    assert expr_mod.keyword_for_tag(0x00091001) == datadict.keyword_for_tag(0x00091001) == ""
    assert expr_mod.parse("patientid").top_level_tag == 0x00100020  # case-insensitive: pydicom's list
    for bad in ("", "Patient ID", "PatientID\n", "CommandGroupLength\t", "UL", "00000000"):
        assert dictionary.tag_for_keyword(bad) is None, bad
    assert dictionary.entry(-1) is None and dictionary.entry(1 << 32) is None


def test_a_keyword_search_imports_no_pydicom(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from dicomtools.core.cli.main import main\n"
        f"rc = main(['search', '--path', {str(tmp_path)!r}, '--tag', 'BeamSequence/TreatmentMachineName=?',"
        " '--tag', 'PatientID=A*'])\n"
        "print(rc, 'pydicom' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "False"]
