"""Who may send to ``receive``: ``AE[@HOST]`` rules from options and preset nodes.

Pure except for resolving host names once at start (a name that does not
resolve is an error then, not a silent refusal of every caller later).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dicomtools.core.errors import DicomToolsError, ExitStatus


class AllowError(DicomToolsError, ValueError):
    """A rule that cannot be used; one line."""

    exit_status = ExitStatus.USAGE


@dataclass(frozen=True)
class AllowRule:
    ae_title: str
    host: str | None = None  # as written; None = any host
    addresses: frozenset[str] = frozenset()  # resolved ``host``

    def matches_ae(self, calling: str) -> bool:
        return calling.strip() == self.ae_title

    def matches(self, calling: str, peer_ip: str) -> bool:
        return self.matches_ae(calling) and (self.host is None or peer_ip in self.addresses)

    def __str__(self) -> str:
        return self.ae_title + (f"@{self.host}" if self.host else "")


def resolve(host: str) -> frozenset[str]:
    try:
        return frozenset(str(info[4][0]) for info in socket.getaddrinfo(host, None))
    except OSError as exc:
        raise AllowError(f"host {host!r} does not resolve: {exc.strerror or exc}") from None


def check_ae(ae: str, what: str) -> str:
    ae = ae.strip()
    if not ae or len(ae) > 16 or "\\" in ae or not ae.isascii() or not ae.isprintable():
        raise AllowError(f"{what} {ae!r}: an AE title is 1-16 printable ASCII characters")
    return ae


def parse_rule(text: str, resolver: Callable[[str], frozenset[str]] = resolve) -> AllowRule:
    """``AE`` or ``AE@HOST``; the host is resolved to its addresses now."""
    ae, sep, host = text.partition("@")
    ae = check_ae(ae, f"--allow {text!r}:")
    if not sep:
        return AllowRule(ae)
    host = host.strip()
    if not host:
        raise AllowError(f"--allow {text!r}: empty host after '@'")
    return AllowRule(ae, host, resolver(host))


@dataclass(frozen=True)
class AllowList:
    """Empty means: anyone may send (``receive`` says so at start)."""

    rules: tuple[AllowRule, ...] = ()

    @classmethod
    def build(cls, rules: Iterable[AllowRule]) -> AllowList:
        seen: dict[str, AllowRule] = {}
        for r in rules:
            seen.setdefault(str(r), r)
        return cls(tuple(seen.values()))

    @property
    def open(self) -> bool:
        return not self.rules

    def refusal(self, calling: str, peer_ip: str) -> tuple[int, str] | None:
        """None when the caller may send, else (A-ASSOCIATE-RJ diagnostic, why)."""
        if self.open or any(r.matches(calling, peer_ip) for r in self.rules):
            return None
        if any(r.matches_ae(calling) for r in self.rules):
            hosts = ", ".join(sorted({r.host or "" for r in self.rules if r.matches_ae(calling)}))
            return 1, f"calling AE title {calling!r} is allowed only from {hosts}, not from {peer_ip}"
        return 3, f"calling AE title {calling!r} is not in the allow-list"

    def __str__(self) -> str:
        return ", ".join(str(r) for r in self.rules) or "anyone"
