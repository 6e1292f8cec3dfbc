"""The VRs expr answers without pydicom are pydicom's own, and a warm search needs no pydicom."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydicom.datadict import dictionary_VR as pydicom_vr

from dicomtools.core.dicom.common_vrs import COMMON_VRS
from dicomtools.core.phantom import generate
from dicomtools.core.search.expr import dictionary_VR


def test_every_common_vr_is_pydicoms() -> None:
    for tag, vr in COMMON_VRS.items():
        assert pydicom_vr(tag) == vr, hex(tag)
    assert dictionary_VR(0x7FE00010) == pydicom_vr(0x7FE00010)  # others still asked of pydicom


def test_warm_search_of_a_common_tag_imports_no_pydicom(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    generate(root, patients=1, seed=3)
    cache = tmp_path / "cache"
    code = (
        "import sys\n"
        "from dicomtools.core.archive.cache import IndexCache\n"
        "from dicomtools.core.search.folder import search\n"
        f"r = search({str(root)!r}, ['(0010,0020)=?'], cache=IndexCache({str(cache)!r}), workers=1)\n"
        "print(r.matched, 'pydicom' in sys.modules)\n"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(first[0]) > 0 and first[0] == second[0]
    assert second[1] == "False"
