"""Many tiny CT files, fast, and non-DICOM junk: inputs for the 20,000-file benchmarks.

Encoding a dataset with pydicom costs about a millisecond; the benchmarks need
tens of thousands of files, so one template is encoded once and only the
fixed-width bytes that differ (SOP Instance UID, Instance Number, slice z) are
patched per file. The result is byte-for-byte what pydicom would write.
"""

from __future__ import annotations

import io
import logging
import random
from pathlib import Path

from dicomtools.core.atomic import atomic_writer
from dicomtools.core.phantom.iod import (
    CT_IMAGE,
    Patient,
    Series,
    Study,
    base,
    image_slice,
    make_uid,
    pixels_disc,
)
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

log = logging.getLogger(__name__)

_UID_MARK = "9" * 64  # generated UIDs with our prefix are always 64 characters
_NUMBER_MARK = "2087654321"  # IS, 10 chars (< 2**31), padded with spaces when patched
_Z_MARK = "-8765432.012345"  # DS, 15 chars (+1 pad byte), padded with spaces when patched


def _template(patient_id: str, seed: int, rows: int) -> tuple[bytes, dict[str, list[int]]]:
    patient = Patient(patient_id, f"BULK^{patient_id.replace('-', '')}", "", "19700101", "O")
    study = Study(make_uid("bulk", seed, patient_id, "study"), "20240301", "120000", "B1",
                  "BULK", "BULK0001")
    series = Series(make_uid("bulk", seed, patient_id, "series"), 1, "CT", "BULK CT")
    ds = base(CT_IMAGE, _UID_MARK, patient, study, series, instance_number=1)
    ds.InstanceNumber = _NUMBER_MARK
    image_slice(ds, rows=rows, spacing=2.0, thickness=1.0, z=0.0,
                for_uid=make_uid("bulk", seed, patient_id, "for"),
                pixels=pixels_disc(rows, rows, 1024, 0, 1100, 0), ct=True)
    ds.ImagePositionPatient = [ds.ImagePositionPatient[0], ds.ImagePositionPatient[1], _Z_MARK]
    ds.SliceLocation = _Z_MARK
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    marks: dict[str, list[int]] = {}
    for mark in (_UID_MARK, _NUMBER_MARK, _Z_MARK):
        needle = mark.encode("ascii")
        spots, start = [], data.find(needle)
        while start >= 0:
            spots.append(start)
            start = data.find(needle, start + 1)
        marks[mark] = spots
    expected = {_UID_MARK: 2, _NUMBER_MARK: 1, _Z_MARK: 2}
    if {k: len(v) for k, v in marks.items()} != expected:  # pragma: no cover - guards the trick
        raise RuntimeError(f"template markers not unique: {marks}")
    return data, marks


def write_ct_series(
    out_dir: str | Path,
    count: int,
    patient_id: str = "BULK-001",
    seed: int = 0,
    rows: int = 8,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write ``count`` CT slices of one series as ``out_dir/CT.<n>.dcm``; return their paths.

    A cancel stops early; the returned list then holds only the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    template, marks = _template(patient_id, seed, rows)
    buf = bytearray(template)
    paths: list[Path] = []
    width = max(6, len(str(count)))
    report = Reporter("phantom-bulk", sink)
    report.started(count, str(out))
    for index in range(count):
        if index % 500 == 0 and index:
            if cancel is not None and cancel.cancelled:
                break
            report.advanced(index, count)
        uid = make_uid("bulk", seed, patient_id, "ct", index).encode("ascii")
        if len(uid) != len(_UID_MARK):  # pragma: no cover - see _UID_MARK
            raise RuntimeError(f"unexpected UID length {len(uid)}")
        number = str(index + 1).ljust(len(_NUMBER_MARK)).encode("ascii")
        z = f"{index * 1.0:.1f}".ljust(len(_Z_MARK)).encode("ascii")
        for spot in marks[_UID_MARK]:
            buf[spot : spot + 64] = uid
        for spot in marks[_NUMBER_MARK]:
            buf[spot : spot + len(number)] = number
        for spot in marks[_Z_MARK]:
            buf[spot : spot + len(z)] = z
        path = out / f"CT.{index + 1:0{width}d}.dcm"
        with atomic_writer(path) as fh:
            fh.write(buf)
        paths.append(path)
    report.finished(len(paths), count)
    log.debug("wrote %d bulk CT files to %s", count, out)
    return paths


_TEXT = b"This folder also holds notes that are not DICOM.\nPatient: none\n"
_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb"


def write_junk(out_dir: str | Path, count: int, seed: int = 0) -> list[Path]:
    """Write ``count`` non-DICOM files (text, JPEG-like, binary, empty) that a scan must skip."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths: list[Path] = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            name, data = f"junk.{index:05d}.txt", _TEXT + f"line {rng.randrange(10**6)}\n".encode()
        elif kind == 1:
            name, data = f"junk.{index:05d}.jpg", _JPEG + rng.randbytes(64)
        elif kind == 2:
            blob = bytearray(rng.randbytes(200))
            blob[128:132] = b"JUNK"  # a DICOM-like name but never a DICM prefix
            name, data = f"junk.{index:05d}.dcm", bytes(blob)
        else:
            name, data = f"junk.{index:05d}", b""
        path = out / name
        with atomic_writer(path) as fh:
            fh.write(data)
        paths.append(path)
    return paths
