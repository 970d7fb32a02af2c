"""Our NEWSA / UPDPOLICY / DELSA / ALLOCSPI bytes against what `ip xfrm` sends for the same thing.

strace sees ip's request even where this host's kernel refuses it (no ESP here), so
the SA encoding is checked on the host too.
"""

from __future__ import annotations

import ipaddress

import pytest

from fipsike.kernel import xfrm_messages as xm
from fipsike.kernel.netlink import NLM_F_ACK, NLM_F_REQUEST
from fipsike.kernel.types import (
    Direction,
    Lifetime,
    Mode,
    Ownership,
    PolicyAction,
    PolicySpec,
    SaSpec,
    Template,
    TrafficSelector,
    UdpEncap,
)
from fipsike.kernel.xfrm import build_policy_id_message, build_policy_message, build_sa_id_message, build_sa_message
from providers import Encryption, Integrity, open_router
from tests.kernel.iproute_trace import trace_ip
from tests.kernel.netns import netns

pytestmark = pytest.mark.netns

OWN = Ownership()
MARK = ["mark", "0", "mask", hex(OWN.mark_mask)]
A1, A2 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
B1, B2 = ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::2")


def _ours(msg, msg_type: int, flags: int = NLM_F_REQUEST | NLM_F_ACK) -> tuple[int, int, int, bytes]:  # type: ignore[no-untyped-def]
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = flags
    msg.encode()
    data = bytes(msg.data)
    return int.from_bytes(data[0:4], "little"), msg_type, flags, data[16:]


def _theirs(ns: str, *args: str, msg_type: int) -> tuple[int, int, int, bytes]:
    sent, result = trace_ip("-n", ns, *args)
    matching = [s for s in sent if s.type == msg_type]
    assert matching, f"ip sent no message of type {msg_type:#x}: {result.stderr[-500:]}"
    s = matching[0]
    return s.length, s.type, s.flags, s.body


@pytest.fixture(scope="module")
def ns() -> object:
    with netns("enc") as name:
        yield name


@pytest.fixture(scope="module")
def router():  # type: ignore[no-untyped-def]
    return open_router("default")


def _sa(router, enc, enc_key, integ=Integrity.NONE, integ_key=None, **kw) -> SaSpec:  # type: ignore[no-untyped-def]
    src, dst = kw.pop("src", A1), kw.pop("dst", A2)
    return SaSpec(src, dst, kw.pop("spi", 0x1001), OWN.reqid_min, kw.pop("mode", Mode.TUNNEL), enc,
                  router.import_secret(enc_key, "ESP_ei"), integ,
                  router.import_secret(integ_key, "ESP_ai") if integ_key else None, **kw)


def test_newsa_aes_gcm_tunnel(ns: str, router) -> None:  # type: ignore[no-untyped-def]
    key = bytes(range(1, 21))
    spec = _sa(router, Encryption.ENCR_AES_GCM_16, key)
    ours = _ours(build_sa_message(spec, key, None, OWN), xm.XFRM_MSG_NEWSA)
    theirs = _theirs(ns, "xfrm", "state", "add", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp",
                     "spi", "0x1001", "reqid", str(OWN.reqid_min), "mode", "tunnel", "replay-window", "32", *MARK,
                     "aead", "rfc4106(gcm(aes))", "0x" + key.hex(), "128", msg_type=xm.XFRM_MSG_NEWSA)
    assert ours == theirs


def test_newsa_cbc_hmac_transport_esn_encap_lifetimes(ns: str, router) -> None:  # type: ignore[no-untyped-def]
    ek, ik = bytes([0x22]) * 32, bytes([0x11]) * 32
    sel = TrafficSelector.parse("192.0.2.1/32", "192.0.2.2/32", proto=17, src_port=4500, dst_port=4500)
    spec = _sa(router, Encryption.ENCR_AES_CBC, ek, Integrity.AUTH_HMAC_SHA2_256_128, ik, mode=Mode.TRANSPORT,
               esn=True, replay_window=128, encap=UdpEncap(), selector=sel,
               lifetime=Lifetime(soft_bytes=900, hard_bytes=1000, soft_packets=9, hard_packets=10,
                                 soft_seconds=60, hard_seconds=120))
    ours = _ours(build_sa_message(spec, ek, ik, OWN), xm.XFRM_MSG_NEWSA)
    theirs = _theirs(ns, "xfrm", "state", "add", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp",
                     "spi", "0x1001", "reqid", str(OWN.reqid_min), "mode", "transport", "replay-window", "128",
                     "flag", "esn", *MARK, "auth-trunc", "hmac(sha256)", "0x" + ik.hex(), "128",
                     "enc", "cbc(aes)", "0x" + ek.hex(), "encap", "espinudp", "4500", "4500", "0.0.0.0",
                     "sel", "src", "192.0.2.1/32", "dst", "192.0.2.2/32", "proto", "udp", "sport", "4500",
                     "dport", "4500",
                     "limit", "byte-soft", "900", "limit", "byte-hard", "1000", "limit", "packet-soft", "9",
                     "limit", "packet-hard", "10", "limit", "time-soft", "60", "limit", "time-hard", "120",
                     msg_type=xm.XFRM_MSG_NEWSA)
    assert ours == theirs


def test_newsa_ipv6_gcm(ns: str, router) -> None:  # type: ignore[no-untyped-def]
    key = bytes(range(40, 76))  # AES-256 + salt
    spec = _sa(router, Encryption.ENCR_AES_GCM_16, key, src=B1, dst=B2, spi=0xC0FFEE)
    ours = _ours(build_sa_message(spec, key, None, OWN), xm.XFRM_MSG_NEWSA)
    theirs = _theirs(ns, "xfrm", "state", "add", "src", str(B1), "dst", str(B2), "proto", "esp",
                     "spi", "0xc0ffee", "reqid", str(OWN.reqid_min), "mode", "tunnel", "replay-window", "32", *MARK,
                     "aead", "rfc4106(gcm(aes))", "0x" + key.hex(), "128", msg_type=xm.XFRM_MSG_NEWSA)
    assert ours == theirs


@pytest.mark.parametrize("v6", [False, True])
def test_updpolicy_ipsec_tunnel(ns: str, v6: bool) -> None:
    if v6:
        sel = TrafficSelector.parse("2001:db8:1::/48", "2001:db8:2::/48")
        tmpl = Template(B1, B2, OWN.reqid_min)
    else:
        sel = TrafficSelector.parse("10.1.0.0/16", "10.2.0.0/16")
        tmpl = Template(A1, A2, OWN.reqid_min)
    spec = PolicySpec(sel, Direction.OUT, PolicyAction.IPSEC, tmpl, priority=100)
    ours = _ours(build_policy_message(spec, OWN), xm.XFRM_MSG_UPDPOLICY)
    theirs = _theirs(ns, "xfrm", "policy", "update", "src", str(sel.src), "dst", str(sel.dst), "dir", "out",
                     "priority", "100", *MARK, "tmpl", "src", str(tmpl.src), "dst", str(tmpl.dst), "proto", "esp",
                     "reqid", str(OWN.reqid_min), "mode", "tunnel", msg_type=xm.XFRM_MSG_UPDPOLICY)
    assert ours == theirs


def test_updpolicy_block_with_ports(ns: str) -> None:
    sel = TrafficSelector.parse("10.9.0.1/32", "10.9.0.2/32", proto=6, dst_port=443)
    spec = PolicySpec(sel, Direction.IN, PolicyAction.DROP, priority=7)
    ours = _ours(build_policy_message(spec, OWN), xm.XFRM_MSG_UPDPOLICY)
    theirs = _theirs(ns, "xfrm", "policy", "update", "src", "10.9.0.1/32", "dst", "10.9.0.2/32", "proto", "tcp",
                     "dport", "443", "dir", "in", "priority", "7", "action", "block", *MARK,
                     msg_type=xm.XFRM_MSG_UPDPOLICY)
    assert ours == theirs


def test_delpolicy_and_delsa(ns: str) -> None:
    sel = TrafficSelector.parse("10.1.0.0/16", "10.2.0.0/16")
    ours = _ours(build_policy_id_message(sel, Direction.OUT, OWN), xm.XFRM_MSG_DELPOLICY)
    theirs = _theirs(ns, "xfrm", "policy", "delete", "src", "10.1.0.0/16", "dst", "10.2.0.0/16", "dir", "out",
                     *MARK, msg_type=xm.XFRM_MSG_DELPOLICY)
    # the same xfrm_userpolicy_id; ip leaves out XFRMA_MARK on delete, we name our mark (policies match it exactly)
    assert ours[1:3] == theirs[1:3]
    assert ours[3][:64] == theirs[3] and len(theirs[3]) == 64
    ours = _ours(build_sa_id_message(A2, 0x1001, 50, OWN), xm.XFRM_MSG_DELSA)
    theirs = _theirs(ns, "xfrm", "state", "delete", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp",
                     "spi", "0x1001", *MARK, msg_type=xm.XFRM_MSG_DELSA)
    # ip adds XFRMA_SRCADDR; the kernel does not need it to find an ESP SA (dst, spi, proto)
    assert ours[1:3] == theirs[1:3]
    assert theirs[3].startswith(ours[3][:24])
