"""No report form shows a key: the netlink reply path on the host, with canary keys in messages we build.

The guest repeats this against SAs the kernel really holds (tests/kernel/guest/test_esp.py).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import struct
from collections.abc import Iterator

import pytest

from fipsike.kernel import xfrm_messages as xm
from fipsike.kernel.netlink import NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST, XfrmSocket
from fipsike.kernel.report import render_json, render_text
from fipsike.kernel.types import KernelError, Lifetime, Mode, Ownership, SaSpec, UdpEncap
from fipsike.kernel.xfrm import build_sa_message, sa_state_of
from providers import Encryption, Integrity, open_router
from tests.kernel.canary import assert_no_canary, canary

OWN = Ownership()
ROUTER = open_router("default")


def _sa_reply(seq: int, port: int, enc_key: bytes, integ_key: bytes) -> bytes:
    spec = SaSpec(ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2"), 0xABCD, OWN.reqid_min,
                  Mode.TUNNEL, Encryption.ENCR_AES_CBC, ROUTER.import_secret(enc_key, "ESP_ei"),
                  Integrity.AUTH_HMAC_SHA2_256_128, ROUTER.import_secret(integ_key, "ESP_ai"),
                  encap=UdpEncap(), lifetime=Lifetime(1, 2, 3, 4))
    m = build_sa_message(spec, enc_key, integ_key, OWN)
    m["header"].update({"type": xm.XFRM_MSG_NEWSA, "flags": NLM_F_MULTI, "sequence_number": seq, "pid": port})
    m.encode()
    return bytes(m.data)


def _done(seq: int, port: int) -> bytes:
    return struct.pack("=IHHIIi", 20, 3, NLM_F_MULTI, seq, port, 0)


@pytest.fixture
def fake_kernel() -> Iterator[tuple[XfrmSocket, socket.socket]]:
    """An XfrmSocket whose 'kernel' end is a datagram socketpair we write replies into."""
    sock = XfrmSocket()
    sock._sock.close()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock._sock = ours
    yield sock, theirs
    sock.close()
    theirs.close()


def test_dump_reply_with_canary_keys_reaches_no_report_form(
        fake_kernel: tuple[XfrmSocket, socket.socket], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("pyroute2").setLevel(logging.DEBUG)
    sock, kernel_end = fake_kernel
    ek, ik = canary(32), canary(32)
    # the reply to our first request (seq 1), and a stale one for another sequence number
    kernel_end.send(_sa_reply(99, sock.port, ek, ik) + _sa_reply(1, sock.port, ek, ik))
    kernel_end.send(_done(1, sock.port))
    with xm.key_fingerprints(ROUTER.keyed_fingerprint):
        states = sock.request("dump SAs", xm.empty_msg(), xm.XFRM_MSG_GETSA, NLM_F_REQUEST | NLM_F_DUMP,
                              lambda t, m: sa_state_of(m))
    assert len(states) == 1
    (state,) = states
    assert [(a.kind, a.key.octets, a.key.fingerprint) for a in state.algorithms] == [
        ("enc", 32, ROUTER.keyed_fingerprint(ek)), ("auth-trunc", 32, ROUTER.keyed_fingerprint(ik))]
    forms = [repr(state), render_text([state], []), json.dumps(render_json([state], [], None, True)), caplog.text,
             bytes(sock._buf)]  # the receive buffer was zeroed after parsing
    for form in forms:
        assert_no_canary(form, [ek, ik], "a report form")
    assert "<redacted 32 octets fp " in forms[1]


def test_error_reply_carries_the_reason_not_the_request(fake_kernel: tuple[XfrmSocket, socket.socket]) -> None:
    sock, kernel_end = fake_kernel
    reason = b"Requested AEAD algorithm not found\0\0"
    tlv = struct.pack("=HH", 4 + len(reason), 1) + reason
    err = struct.pack("=i", -38) + struct.pack("=IHHII", 336, 0x10, 5, 1, sock.port) + tlv
    kernel_end.send(struct.pack("=IHHII", 16 + len(err), 2, 0x100 | 0x200, 1, sock.port) + err)
    with pytest.raises(KernelError) as info:
        sock.request("NEWSA", xm.empty_msg(), xm.XFRM_MSG_NEWSA, NLM_F_REQUEST, lambda t, m: None)
    assert info.value.errno_name == "ENOSYS"
    assert info.value.detail == "Requested AEAD algorithm not found"


def test_malformed_reply_is_a_typed_error(fake_kernel: tuple[XfrmSocket, socket.socket]) -> None:
    sock, kernel_end = fake_kernel
    kernel_end.send(struct.pack("=IHHII", 40, xm.XFRM_MSG_NEWSA, NLM_F_MULTI, 1, sock.port) + bytes(24))
    kernel_end.send(_done(1, sock.port))
    with pytest.raises(KernelError) as info:
        sock.request("dump SAs", xm.empty_msg(), xm.XFRM_MSG_GETSA, NLM_F_REQUEST | NLM_F_DUMP,
                     lambda t, m: sa_state_of(m))
    assert info.value.errno_name == "EPROTO"


def test_no_answer_is_a_timeout_not_a_hang(fake_kernel: tuple[XfrmSocket, socket.socket]) -> None:
    sock, _ = fake_kernel
    sock.timeout = 0.2
    with pytest.raises(KernelError) as info:
        sock.request("GETSA", xm.empty_msg(), xm.XFRM_MSG_GETSA, NLM_F_REQUEST, lambda t, m: None)
    assert info.value.errno_name == "ETIMEDOUT"
