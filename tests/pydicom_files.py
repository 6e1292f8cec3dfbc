"""The files pydicom ships for its own tests: a corpus nobody here wrote."""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file


def pydicom_corpus() -> list[str]:
    """Every file of pydicom's ``test_files`` and ``charset_files`` (DICOM or not), sorted."""
    base = Path(get_testdata_file("CT_small.dcm")).parent
    files = [p for p in base.rglob("*") if p.is_file()]
    files += [p for p in (base.parent / "charset_files").rglob("*") if p.is_file()]
    return sorted(str(p) for p in files)
