"""ESP through our XFRM code on a kernel that has ESP (the UML guest; scripts/guest-run.sh).

Two namespaces joined by a veth pair; each gets the SA pair and policies from
XfrmKernel, then pings go through the tunnel and the SA counters are read back.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fipsike import cli
from fipsike.kernel import xfrm_messages
from fipsike.kernel.lifetimes import sa_lifetime
from fipsike.kernel.report import render_json, render_text
from fipsike.kernel.types import (
    Direction,
    Expire,
    IPAddress,
    KernelError,
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
from fipsike.kernel.xfrm import XfrmKernel
from providers import Encryption, Integrity, UsageLimits, open_router
from tests.kernel.canary import assert_no_canary, canary
from tests.kernel.netns import netns_pair, ping, sh

pytestmark = pytest.mark.guest

ROOT = Path(__file__).resolve().parents[3]
OWN = Ownership()
ROUTER = open_router("default")


@dataclass
class Tunnel:
    left: str
    right: str
    kl: XfrmKernel
    kr: XfrmKernel
    outer: tuple[IPAddress, IPAddress]
    inner: tuple[str, str]
    spi_lr: int
    spi_rl: int
    keys: list[bytes]


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    with netns_pair() as names:
        yield names


def _spec(src: IPAddress, dst: IPAddress, spi: int, enc: Encryption, ek: bytes, integ: Integrity,
          ik: bytes | None, **kw: object) -> SaSpec:
    return SaSpec(src, dst, spi, OWN.reqid_min + 1, Mode.TUNNEL, enc, ROUTER.import_secret(ek, "ESP_ei"), integ,
                  ROUTER.import_secret(ik, "ESP_ai") if ik else None, **kw)  # type: ignore[arg-type]


def build_tunnel(left: str, right: str, enc: Encryption, integ: Integrity = Integrity.NONE,
                 outer: tuple[str, str] = ("192.0.2.1", "192.0.2.2"), inner: tuple[str, str] = ("10.1.0.1", "10.2.0.1"),
                 lifetime_lr: Lifetime | None = None, **kw: object) -> Tunnel:
    a, b = ipaddress.ip_address(outer[0]), ipaddress.ip_address(outer[1])
    kl = XfrmKernel(ROUTER, netns=left)
    kr = XfrmKernel(ROUTER, netns=right)
    enc_len = {Encryption.ENCR_AES_GCM_16: 20, Encryption.ENCR_AES_CBC: 16}[enc]
    keys = [canary(enc_len), canary(enc_len)]
    ikeys: list[bytes | None] = [None, None]
    if integ is not Integrity.NONE:
        ikeys = [canary(32), canary(32)]
    # the inbound SPI of each side comes from that side's ALLOCSPI (completed with UPDSA)
    spi_lr = kr.alloc_spi(a, b, OWN.reqid_min + 1)
    spi_rl = kl.alloc_spi(b, a, OWN.reqid_min + 1)
    lr = _spec(a, b, spi_lr, enc, keys[0], integ, ikeys[0], lifetime=lifetime_lr or Lifetime(), **kw)
    rl = _spec(b, a, spi_rl, enc, keys[1], integ, ikeys[1], **kw)
    for k in (kl, kr):
        k.install_sa(lr)
        k.install_sa(rl)
    host = 128 if a.version == 6 else 32
    sel = TrafficSelector.parse(f"{inner[0]}/{host}", f"{inner[1]}/{host}")
    for k, s, x, y in ((kl, sel, a, b), (kr, sel.reversed(), b, a)):
        k.install_policy(PolicySpec(s, Direction.OUT, PolicyAction.IPSEC, Template(x, y, OWN.reqid_min + 1)))
        k.install_policy(PolicySpec(s.reversed(), Direction.IN, PolicyAction.IPSEC, Template(y, x, OWN.reqid_min + 1)))
    return Tunnel(left, right, kl, kr, (a, b), inner, spi_lr, spi_rl,
                  keys + [k for k in ikeys if k is not None])


def close(t: Tunnel) -> None:
    for k in (t.kl, t.kr):
        report = k.flush_owned()
        assert report.errors == ()
        assert k.list_sas() == [] and k.list_policies() == []
        k.close()


@pytest.mark.parametrize("enc,integ,name", [
    (Encryption.ENCR_AES_GCM_16, Integrity.NONE, "rfc4106(gcm(aes))"),
    (Encryption.ENCR_AES_CBC, Integrity.AUTH_HMAC_SHA2_256_128, "cbc(aes)"),
])
def test_ping_through_the_tunnel_and_count(pair: tuple[str, str], enc: Encryption, integ: Integrity,
                                          name: str) -> None:
    t = build_tunnel(*pair, enc=enc, integ=integ)
    try:
        assert ping(t.left, *t.inner, count=3) == 3
        out = t.kl.get_sa(t.outer[1], t.spi_lr)
        back = t.kr.get_sa(t.outer[0], t.spi_rl)
        assert (out.packets, back.packets) == (3, 3)
        assert out.bytes == 3 * 84 and back.bytes == 3 * 84  # 3 ICMP echo packets of 84 octets each
        assert t.kr.get_sa(t.outer[1], t.spi_lr).packets == 3  # the receiver counted them too
        assert any(a.name == name for a in out.algorithms) and not out.larval
        assert f"spi {t.spi_lr:#010x}" in sh("ip", "-n", t.left, "xfrm", "state").stdout
    finally:
        close(t)


def test_transport_mode_host_to_host(pair: tuple[str, str]) -> None:
    left, right = pair
    a, b = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
    kl, kr = XfrmKernel(ROUTER, netns=left), XfrmKernel(ROUTER, netns=right)
    sel = TrafficSelector.host_to_host(a, b)
    keys = [canary(20), canary(20)]
    lr = SaSpec(a, b, 0x5001, OWN.reqid_min + 2, Mode.TRANSPORT, Encryption.ENCR_AES_GCM_16,
                ROUTER.import_secret(keys[0], "ESP_ei"), selector=sel)
    rl = SaSpec(b, a, 0x5002, OWN.reqid_min + 2, Mode.TRANSPORT, Encryption.ENCR_AES_GCM_16,
                ROUTER.import_secret(keys[1], "ESP_er"), selector=sel.reversed())
    try:
        for k, s in ((kl, sel), (kr, sel.reversed())):
            k.install_sa(lr)
            k.install_sa(rl)
            k.install_policy(PolicySpec(s, Direction.OUT, PolicyAction.IPSEC,
                                        Template(s.src.network_address, s.dst.network_address, OWN.reqid_min + 2,
                                                 Mode.TRANSPORT)))
            k.install_policy(PolicySpec(s.reversed(), Direction.IN, PolicyAction.IPSEC,
                                        Template(s.dst.network_address, s.src.network_address, OWN.reqid_min + 2,
                                                 Mode.TRANSPORT)))
        assert ping(left, "192.0.2.1", "192.0.2.2", count=3) == 3
        sa = kl.get_sa(b, 0x5001)
        assert sa.mode is Mode.TRANSPORT and sa.selector == sel and sa.packets == 3
        assert kr.get_sa(a, 0x5002).packets == 3
    finally:
        for k in (kl, kr):
            assert k.flush_owned().errors == ()
            k.close()


def _wait_expires(k: XfrmKernel, n: int, timeout: float = 5.0) -> list[Expire]:
    found: list[Expire] = []
    deadline = time.monotonic() + timeout
    while len(found) < n and time.monotonic() < deadline:
        found += [e for e in k.read_events(0.2) if isinstance(e, Expire)]
    return found


def test_hard_byte_limit_expires_the_sa_and_stops_traffic(pair: tuple[str, str]) -> None:
    t = build_tunnel(*pair, enc=Encryption.ENCR_AES_GCM_16,
                     lifetime_lr=Lifetime(soft_bytes=150, hard_bytes=300))
    try:
        t.kl.read_events(0)  # drop policy events
        replies = ping(t.left, *t.inner, count=6)
        assert replies == 4  # 84-octet packets: the 5th finds 336 >= 300 octets and is dropped
        events = [e for e in _wait_expires(t.kl, 2) if e.spi == t.spi_lr]
        assert [e.hard for e in events] == [False, True]
        assert events[1].bytes >= 300 and events[1].reqid == OWN.reqid_min + 1
        assert t.spi_lr not in {s.spi for s in t.kl.list_sas()}  # the kernel removed it
        assert ping(t.left, *t.inner, count=2) == 0
    finally:
        close(t)


def test_soft_packet_limit_raises_soft_expire_and_traffic_goes_on(pair: tuple[str, str]) -> None:
    t = build_tunnel(*pair, enc=Encryption.ENCR_AES_CBC, integ=Integrity.AUTH_HMAC_SHA2_256_128,
                     lifetime_lr=Lifetime(soft_packets=2, hard_packets=1000))
    try:
        assert ping(t.left, *t.inner, count=4) == 4
        (soft,) = [e for e in _wait_expires(t.kl, 1) if e.spi == t.spi_lr]
        assert not soft.hard and soft.packets >= 2
        assert t.kl.get_sa(t.outer[1], t.spi_lr).packets == 4
    finally:
        close(t)


def test_packet_limit_from_the_providers_usage_table(pair: tuple[str, str]) -> None:
    """The same table that meters IKE keys sets the ESP SA's packet lifetime (here shrunk to 5 for AES-GCM)."""
    limits = UsageLimits().with_limit("aes-gcm", 5)
    lifetime = sa_lifetime(limits, Encryption.ENCR_AES_GCM_16)
    assert (lifetime.soft_packets, lifetime.hard_packets) == (4, 5)
    t = build_tunnel(*pair, enc=Encryption.ENCR_AES_GCM_16, lifetime_lr=lifetime)
    try:
        t.kl.read_events(0)
        assert ping(t.left, *t.inner, count=7) == 5
        events = [e for e in _wait_expires(t.kl, 2) if e.spi == t.spi_lr]
        assert [(e.hard, e.packets) for e in events] == [(False, 4), (True, 5)]
    finally:
        close(t)


def test_ipv6_tunnel_with_esn_and_a_wide_replay_window(pair: tuple[str, str]) -> None:
    with netns_pair("2001:db8::1", "2001:db8::2", "2001:db8:1::1", "2001:db8:2::1") as (left, right):
        t = build_tunnel(left, right, Encryption.ENCR_AES_GCM_16, outer=("2001:db8::1", "2001:db8::2"),
                         inner=("2001:db8:1::1", "2001:db8:2::1"), esn=True, replay_window=128)
        try:
            assert ping(t.left, *t.inner, count=3) == 3
            sa = t.kl.get_sa(t.outer[1], t.spi_lr)
            assert sa.esn and sa.replay_window == 128 and sa.packets == 3
        finally:
            close(t)


def _espinudp_socket(ns: str) -> socket.socket:
    from pyroute2 import netns as pyroute2_netns

    s = pyroute2_netns.create_socket(ns, socket.AF_INET, socket.SOCK_DGRAM, 0, flags=0)
    s.bind(("0.0.0.0", 4500))  # noqa: S104 - a NAT-T port inside a test namespace
    s.setsockopt(socket.IPPROTO_UDP, 100, 2)  # UDP_ENCAP = UDP_ENCAP_ESPINUDP (linux/udp.h)
    return s


def test_udp_encapsulation_nat_t(pair: tuple[str, str]) -> None:
    socks = [_espinudp_socket(ns) for ns in pair]
    t = build_tunnel(*pair, enc=Encryption.ENCR_AES_GCM_16, encap=UdpEncap())
    try:
        cap = subprocess.Popen(["ip", "netns", "exec", t.right, "tcpdump", "-n", "-c", "2", "-i", "any",
                                "udp", "port", "4500"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.5)
        assert ping(t.left, *t.inner, count=3) == 3
        try:
            out, _ = cap.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            cap.kill()
            out, _ = cap.communicate()
        assert ".4500 > " in out and ("UDP-encap" in out or "ESP" in out), out
        sa = t.kl.get_sa(t.outer[1], t.spi_lr)
        assert sa.encap == UdpEncap() and sa.packets == 3
    finally:
        close(t)
        for s in socks:
            s.close()


def test_no_report_form_leaks_a_key(pair: tuple[str, str], caplog: pytest.LogCaptureFixture,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    t = build_tunnel(*pair, enc=Encryption.ENCR_AES_CBC, integ=Integrity.AUTH_HMAC_SHA2_256_128)
    try:
        raw = sh("ip", "-n", t.left, "xfrm", "state").stdout
        assert t.keys[0].hex() in raw  # the canaries really are in the kernel (ip prints them)
        sas = t.kl.list_sas()
        pols = t.kl.list_policies()
        assert len(sas) == 2
        for s in sas:
            assert {a.key.octets for a in s.algorithms} == {16, 32}
            for a in s.algorithms:
                assert a.key.fingerprint is not None and len(a.key.fingerprint) == 16
        fps = {a.key.fingerprint for s in sas for a in s.algorithms}
        assert ROUTER.keyed_fingerprint(t.keys[0]) in fps
        outputs = [repr(sas), render_text(sas, pols), json.dumps(render_json(sas, pols, t.left, True))]
        # errors: a duplicate NEWSA (EEXIST) and a GETSA of a missing SPI
        spec = _spec(t.outer[0], t.outer[1], t.spi_lr, Encryption.ENCR_AES_CBC, t.keys[0],
                     Integrity.AUTH_HMAC_SHA2_256_128, t.keys[2])
        with pytest.raises(KernelError) as info:
            t.kl.install_sa(spec)
        assert info.value.errno_name == "EEXIST"
        outputs += [str(info.value), repr(info.value)]
        # the real command once in its own process (DEBUG logs on stderr), the other forms in-process
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        r = subprocess.run([sys.executable, "-m", "fipsike", "-vv", "xfrm", "--netns", t.left, "--json"],
                           capture_output=True, timeout=60, env=env, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert {a["key"]["octets"] for s in report["sas"] for a in s["algorithms"]} == {16, 32}
        outputs += [r.stdout, r.stderr]
        for args in ([], ["--all"], ["--json", "--all"], ["--reveal-keys"]):
            capsys.readouterr()
            rc = cli.main(["-vv", "xfrm", "--netns", t.left, *args])
            assert rc == (2 if "--reveal-keys" in args else 0)
            captured = capsys.readouterr()
            outputs += [captured.out, captured.err]
        assert "<redacted 16 octets fp " in outputs[-8]
        outputs.append(caplog.text)
        for out in outputs:
            assert_no_canary(out, t.keys, "a report form")
        # the loud non-FIPS reveal does show them, with its warning
        rc = cli.main(["xfrm", "--netns", t.left, "--profile", "default", "--reveal-keys"])
        captured = capsys.readouterr()
        assert rc == 0 and "WARNING" in captured.err and t.keys[0].hex() in captured.out
        with xfrm_messages.reveal_keys():
            assert any(s.revealed for s in t.kl.list_sas())
        assert not any(s.revealed for s in t.kl.list_sas())
    finally:
        close(t)
