"""Sending what a node cannot take, and our SCP's choice among offered syntaxes.

dcmtk ``storescp`` without ``+xa`` accepts only uncompressed syntaxes: every
compressed file is decompressed (pylibjpeg plugins) and sent uncompressed,
pixel for pixel; a lossy one says so in one line.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pynetdicom import AE, build_context

from dicomtools.core.cli.main import main
from dicomtools.core.net.files import split_meta
from dicomtools.core.net.storescp import StorageSCP
from dicomtools.core.net.transcode import LOSSY
from dicomtools.core.phantom import write_ct_series
from tests.net import peers
from tests.net.compressed import make_study
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def store(port: int, aet: str, path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(["store", "--path", str(path), "--noCache", "--includeAll", "--hostName", peers.HOST,
               "--hostPort", str(port), "--calledAet", aet, "--callingAet", OUR_AE, *extra])
    cap = capsys.readouterr()
    return rc, cap.err + cap.out


def test_compressed_files_to_a_node_that_takes_only_uncompressed(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    study = make_study(tmp_path / "src", "TRANSCODE-1")
    scp = peers.StoreSCP.start(tmp_path / "scp", accept_all=False)
    try:
        rc, text = store(scp.port, scp.aet, tmp_path / "src" / "held", capsys)
    finally:
        scp.stop()
    assert rc == 0, text
    assert "Traceback" not in text and "plugin" not in text
    originals = {str(dcmread(p).SOPInstanceUID): dcmread(p) for p in study.files}
    received = [dcmread(p) for p in scp.out_dir.iterdir()]
    assert sorted(str(ds.SOPInstanceUID) for ds in received) == sorted(originals), text
    for ds in received:
        assert str(ds.file_meta.TransferSyntaxUID) in UNCOMPRESSED
        orig = originals[str(ds.SOPInstanceUID)]
        if "PixelData" in orig:
            assert np.array_equal(ds.pixel_array, orig.pixel_array), orig.file_meta.TransferSyntaxUID
    lossy = [u for u, ts in study.syntax.items() if ts in LOSSY]
    assert len(lossy) == 4
    assert text.count("the image stays as lossy as it was stored") == len(lossy)


def _odd_deflated(path: Path) -> Path:
    """A deflated file whose deflated stream has an odd length (as some writers leave it)."""
    for n in range(40):
        src = write_ct_series(path.parent.parent / f"raw{n}", 1, patient_id="DEFLATE-1", seed=n)[0]
        ds = dcmread(src)
        ds.StudyDescription = "x" * (n + 1)
        ds.save_as(path, implicit_vr=False, little_endian=True)
        ds = dcmread(path)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(path)
        raw = path.read_bytes()
        meta = split_meta(raw)
        assert meta is not None
        body = zlib.decompress(raw[meta.offset:], -15)
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        stream = comp.compress(body) + comp.flush()
        if len(stream) % 2:
            path.write_bytes(raw[:meta.offset] + stream)
            return path
    raise AssertionError("no odd-length deflated stream in 40 tries")


def test_odd_length_deflated_stream_is_padded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    f = _odd_deflated(folder / "dfl.dcm")
    scp = peers.StoreSCP.start(tmp_path / "scp")
    try:
        rc, text = store(scp.port, scp.aet, folder, capsys)
    finally:
        scp.stop()
    assert rc == 0, text
    got = list(scp.out_dir.iterdir())
    assert len(got) == 1
    assert str(dcmread(got[0]).SOPInstanceUID) == str(dcmread(f).SOPInstanceUID)
    assert np.array_equal(dcmread(got[0]).pixel_array, dcmread(f).pixel_array)


@pytest.mark.parametrize(("offered", "chosen"), [
    (["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.1"], "1.2.840.10008.1.2.1"),
    (["1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90"], "1.2.840.10008.1.2.4.90"),
    (["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"], "1.2.840.10008.1.2.4.50"),
])
def test_our_scp_prefers_lossless(tmp_path: Path, offered: list[str], chosen: str) -> None:
    with StorageSCP("OURSCP", tmp_path / "in") as scp:
        ae = AE(ae_title="SENDER")
        assoc = ae.associate(peers.HOST, scp.port, [build_context("1.2.840.10008.5.1.4.1.1.2", offered)],
                             ae_title="OURSCP")
        try:
            assert assoc.is_established
            assert [str(cx.transfer_syntax[0]) for cx in assoc.accepted_contexts] == [chosen]
        finally:
            assoc.release()
