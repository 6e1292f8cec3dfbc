"""C-ECHO: is the node there, does it accept us, how long does a round trip take."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from dicomtools.core.config import NodeConfig
from dicomtools.core.net.assoc import NetError, associate, make_ae, release
from dicomtools.core.net.status import describe_status

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EchoResult:
    status: int
    associate_ms: float  # TCP connect + association negotiation
    echo_ms: float  # the C-ECHO request/response alone

    @property
    def ok(self) -> bool:
        return self.status == 0x0000


def echo(node: NodeConfig, *, use_tls: bool | None = None) -> EchoResult:
    """One association, one C-ECHO, release. Raises :class:`NetError` with the reason."""
    ae = make_ae(node.calling_ae, node)
    ae.add_requested_context(Verification)
    t0 = time.perf_counter()
    assoc = associate(ae, node, use_tls=use_tls)
    t1 = time.perf_counter()
    try:
        rsp = assoc.send_c_echo()
        t2 = time.perf_counter()
        if "Status" not in rsp:
            raise NetError(
                f"no C-ECHO response from {node.called_ae}@{node.host}:{node.port} "
                f"within {node.dimse_timeout:g} s"
            )
        status = int(rsp.Status)
        if status != 0:
            log.info("C-ECHO status %s", describe_status(status))
        return EchoResult(status, (t1 - t0) * 1000, (t2 - t1) * 1000)
    finally:
        release(assoc)
