"""The fast search path gives exactly what the pydicom path gives, on every file and text tag."""

from __future__ import annotations

import glob
import os

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomtools.core.archive.model import UnreadableFile
from dicomtools.core.archive.read import read_instance
from dicomtools.core.phantom.manifest import PhantomManifest
from dicomtools.core.search import expr as expr_mod
from dicomtools.core.search import fastpath
from dicomtools.core.search import folder as search_mod

TEXT = fastpath.TEXT_VRS


def _pydicom_outcome(path: str, exprs: list[expr_mod.Expression]) -> dict[str, list[str]] | None:
    ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    return expr_mod.matches_all(exprs, ds)


def _files(root: str) -> list[str]:
    return [p for p in glob.glob(os.path.join(root, "**", "*"), recursive=True) if os.path.isfile(p)]


def _flat_text_keywords(path: str) -> list[str]:
    ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    out = []
    for elem in ds:
        if elem.tag.is_private or elem.tag.group == 0x0002 or not elem.keyword:
            continue
        if elem.VR in TEXT:
            out.append(elem.keyword)
    return out


@pytest.mark.parametrize("op", ["=?", "=*A*", "!=", "="])
def test_fast_equals_pydicom_on_phantom(phantom: PhantomManifest, op: str) -> None:
    checked = 0
    for rel in phantom.files:
        path = os.path.join(phantom.root, rel)
        for kw in _flat_text_keywords(path):
            exprs = [expr_mod.parse(kw + op)]
            tags = expr_mod.needed_top_level_tags(exprs)
            fast = search_mod.search_file(path, exprs, tags)
            assert fast.dicom, (rel, fast.reason)
            assert fast.values == _pydicom_outcome(path, exprs), (rel, kw, op)
            checked += 1
    assert checked > 1000


def test_fast_equals_pydicom_on_bundled_files() -> None:
    root = os.path.dirname(get_testdata_file("CT_small.dcm"))
    checked = 0
    for path in _files(root):
        try:
            keywords = _flat_text_keywords(path)
        except Exception:
            continue
        for kw in keywords:
            exprs = [expr_mod.parse(kw + "=?")]
            tags = expr_mod.needed_top_level_tags(exprs)
            plan = fastpath.plan(exprs)
            if plan is None:
                continue
            found = read_instance(path, plan.flat, plan.sequences, tags=tags)
            if isinstance(found, UnreadableFile) or found.fast is None:
                continue  # left to pydicom, or a file the fast reader calls broken
            got = fastpath.evaluate(exprs, found)
            try:
                want = _pydicom_outcome(path, exprs)
            except Exception:
                continue
            assert search_mod.combine(exprs, got) == want, (os.path.basename(path), kw)
            checked += 1
    assert checked > 300


@pytest.mark.parametrize("expression", ["PatientID", "(300A,00B0)/(300A,00B2)", "(3253,1000)"])
def test_search_and_scan_agree_on_what_is_dicom(phantom: PhantomManifest, expression: str) -> None:
    from dicomtools.core.archive.scan import scan

    scanned = scan(phantom.root, workers=1)
    found = search_mod.search(phantom.root, [expression], workers=1)
    assert found.dicom_files == len(scanned.instances)
    assert sorted(u.path for u in found.unreadable) == sorted(u.path for u in scanned.unreadable)
