"""DICOM TLS: echo, store and retrieve (C-MOVE and C-GET) against pynetdicom peers with test certificates.

The test makes its own PKI with ``cryptography``: a CA, a server certificate
for the peer, a client certificate for us (also the server certificate of
our Storage SCP, which the peer's C-MOVE sub-operations reach over TLS), and
a rogue CA with a server certificate nobody trusts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydicom import dcmread

from dicomtools.core.cli.main import main
from dicomtools.core.phantom import write_ct_series
from tests.net import hostile
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

PID = "TLS-1"
COUNT = 12


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
          ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                      key_encipherment=False, data_encipherment=False,
                                                      key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                      encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    ca: Path
    server: tuple[Path, Path]  # (certificate, key) of the peer
    client: tuple[Path, Path]  # ours
    rogue_ca: Path
    rogue_server: tuple[Path, Path]


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)

    def write_key(name: str, key: ec.EllipticCurvePrivateKey) -> Path:
        p = folder / f"{name}.key"
        p.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        return p

    def write_cert(name: str, cert: x509.Certificate) -> Path:
        p = folder / f"{name}.pem"
        p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return p

    def pair(name: str, ca_name: str, ca_key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        return write_cert(name, _cert(name, key, ca_name, ca_key, False)), write_key(name, key)

    ca_key, rogue_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = write_cert("ca", _cert("dicomtools test CA", ca_key, "dicomtools test CA", ca_key, True))
    rogue = write_cert("rogue-ca", _cert("rogue CA", rogue_key, "rogue CA", rogue_key, True))
    return Pki(ca, pair("peer", "dicomtools test CA", ca_key), pair("dicomtools", "dicomtools test CA", ca_key),
               rogue, pair("rogue-peer", "rogue CA", rogue_key))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_context(cert: tuple[Path, Path], ca: Path) -> ssl.SSLContext:
    """The peer's side: its certificate, and ours required, signed by the test CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def client_context(cert: tuple[Path, Path], ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[hostile.Dataset]]:
    folder = tmp_path_factory.mktemp("tls-src")
    files = write_ct_series(folder, COUNT, patient_id=PID)
    return folder, hostile.load(files)


def tls_config(path: Path, port: int, aet: str, pki: Pki, scp_port: int = 11112, *, cert: bool = True,
               timeout: float = 10.0) -> Path:
    tls: dict[str, object] = {"enabled": True, "ca": str(pki.ca)}
    if cert:
        tls |= {"cert": str(pki.client[0]), "key": str(pki.client[1])}
    return hostile.write_node_config(path, port, aet, scp_port, timeout=timeout, tls=tls)


def run(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main([*args, "--config", str(config), "--node", "peer"])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


@dataclass
class TlsQR:
    peer: hostile.QRPeer
    scp_port: int


@pytest.fixture
def tls_qr(pki: Pki, series: tuple[Path, list[hostile.Dataset]]) -> Iterator[TlsQR]:
    scp_port = hostile.free_port()
    peer = hostile.QRPeer(series[1], {OUR_AE: (hostile.HOST, scp_port)},
                          ssl_context=server_context(pki.server, pki.ca),
                          sub_tls=(client_context(pki.server, pki.ca), "127.0.0.1"))
    with peer:
        yield TlsQR(peer, scp_port)


def test_echo_over_tls(tls_qr: TlsQR, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tls_config(tmp_path / "c.toml", tls_qr.peer.port, tls_qr.peer.aet, pki)
    rc, text = run(cfg, "echo", capsys=capsys)
    assert rc == 0, text
    assert "success" in text


def test_plain_echo_to_a_tls_port_is_clear(tls_qr: TlsQR, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = hostile.write_node_config(tmp_path / "c.toml", tls_qr.peer.port, tls_qr.peer.aet, 11112, timeout=1.0)
    rc, text = run(cfg, "echo", capsys=capsys)
    assert rc == 1
    assert f"HOSTILE@127.0.0.1:{tls_qr.peer.port} closed the connection before answering the association request " \
        "(is it a DICOM port? TLS expected?" in text


def test_store_over_tls(pki: Pki, series: tuple[Path, list[hostile.Dataset]], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    folder, datasets = series
    with hostile.StoragePeer(ssl_context=server_context(pki.server, pki.ca)) as peer:
        cfg = tls_config(tmp_path / "c.toml", peer.port, peer.aet, pki)
        rc, text = run(cfg, "store", "--path", str(folder), "--noCache", capsys=capsys)
        assert rc == 0, text
        assert sorted(peer.stored) == sorted(str(d.SOPInstanceUID) for d in datasets)


@pytest.mark.parametrize("method", ["move", "get"])
def test_retrieve_over_tls(tls_qr: TlsQR, pki: Pki, series: tuple[Path, list[hostile.Dataset]], tmp_path: Path,
                           method: str, capsys: pytest.CaptureFixture[str]) -> None:
    """C-MOVE: the sub-operations reach our Storage SCP over TLS too (a plain one is refused, below)."""
    cfg = tls_config(tmp_path / "c.toml", tls_qr.peer.port, tls_qr.peer.aet, pki, tls_qr.scp_port)
    out = tmp_path / "out"
    extra = ["--useGet"] if method == "get" else []
    rc, text = run(cfg, "retrieve", "--patientId", PID, "--path", str(out), *extra, capsys=capsys)
    assert rc == 0, text
    got = {str(dcmread(p).SOPInstanceUID) for p in out.iterdir()}
    assert got == {str(d.SOPInstanceUID) for d in series[1]}
    assert "refused association" not in text


def test_our_scp_refuses_plain_sub_operations(pki: Pki, series: tuple[Path, list[hostile.Dataset]], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """TLS to the node means TLS back: a peer that moves in the clear is turned away."""
    scp_port = hostile.free_port()
    with hostile.QRPeer(series[1], {OUR_AE: (hostile.HOST, scp_port)},
                        ssl_context=server_context(pki.server, pki.ca)) as peer:
        cfg = tls_config(tmp_path / "c.toml", peer.port, peer.aet, pki, scp_port)
        out = tmp_path / "out"
        rc, text = run(cfg, "retrieve", "--patientId", PID, "--path", str(out), capsys=capsys)
    assert rc == 1
    assert "refused association: 127.0.0.1: TLS handshake failed" in text
    assert not out.exists()


@pytest.mark.parametrize("command", ["echo", "store", "retrieve"])
def test_untrusted_certificate_is_refused(pki: Pki, series: tuple[Path, list[hostile.Dataset]], tmp_path: Path,
                                          command: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder, datasets = series
    rogue = server_context(pki.rogue_server, pki.ca)
    peer: hostile.QRPeer | hostile.StoragePeer
    peer = hostile.StoragePeer(ssl_context=rogue) if command == "store" else \
        hostile.QRPeer(datasets, {}, ssl_context=rogue)
    with peer:
        cfg = tls_config(tmp_path / "c.toml", peer.port, peer.aet, pki)
        args = {"echo": ["echo"], "store": ["store", "--path", str(folder), "--noCache"],
                "retrieve": ["retrieve", "--patientId", PID, "--path", str(tmp_path / "out")]}[command]
        rc, text = run(cfg, *args, capsys=capsys)
        assert rc == 1
        assert f"TLS handshake with 127.0.0.1:{peer.port} failed: certificate verify failed" in text
        assert "Traceback" not in text
        if isinstance(peer, hostile.StoragePeer):
            assert peer.stored == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["echo", "store"])
def test_peer_refuses_us_without_a_client_certificate(tls_qr: TlsQR, pki: Pki, series: tuple[Path, list[hostile.Dataset]],
                                                      tmp_path: Path, command: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tls_config(tmp_path / "c.toml", tls_qr.peer.port, tls_qr.peer.aet, pki, cert=False, timeout=2.0)
    args = ["echo"] if command == "echo" else ["store", "--path", str(series[0]), "--noCache"]
    rc, text = run(cfg, *args, capsys=capsys)
    assert rc == 1
    assert "alert certificate required" in text  # TLS 1.3: the peer wants our certificate
    assert "Traceback" not in text
