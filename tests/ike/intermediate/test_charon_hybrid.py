"""The hybrid over real UDP between network namespaces.

- Against strongSwan 5.9.8's charon (no RFC 9242 / 9370): a connection that makes ML-KEM optional
  (`addke1=ml_kem_1024+none`) still gets an IKE SA, a Child SA and an IKE SA rekey, whichever side starts.
- Two fipsike engines with the hybrid required, captured with tcpdump: tshark's IKEv2 dissector reads
  the IKE_INTERMEDIATE exchange (RFC 9242, exchange type 43) as fipsike's codec does.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fipsike.ike.actions import IkeSaEstablished, IkeSaRekeyed, InstallChildSa
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.decode import datagrams
from fipsike.ike.engine import Engine
from fipsike.ike.message import Message
from fipsike.ike.proposals import Protocol, from_libreswan, parse_proposals
from fipsike.ike.registry import ExchangeType
from fipsike.ike.ts import ts_from_cidr
from providers import open_router
from providers.policy import Policy
from tests import strongswan_harness as ssh
from tests.interop.driver import UdpDriver, sockets_in_netns
from tests.interop.test_strongswan import CHARON_CONF, _charon_spis, _installed_spis, _one_ike

pytestmark = [pytest.mark.strongswan, pytest.mark.netns]

OPTIONAL = "aes_gcm256-sha384-ecp384;addke1=ml_kem_1024+none"
REQUIRED = "aes_gcm256-sha384-ecp384;addke1=ml_kem_1024"


@pytest.fixture(scope="module")
def hosts() -> Iterator[ssh.TwoHosts]:
    why = ssh.available()
    if why:
        pytest.fail(why)
    with ssh.TwoHosts("h") as h:
        yield h


def _conn(name: str, me: ssh.Host, peer: ssh.Host, pki: ssh.Pki, router: Any, ike: str) -> Connection:
    key_path, cert_path = pki.issue(f"{name}.test", "ecdsa", 256, sans=(f"{name}.test", me.address))
    key = router.import_private_key(load_pem_private_key(key_path.read_bytes(), None), label=name)
    other = "sun" if name == "moon" else "moon"
    return Connection(
        name="gw", local_addrs=(me.address,), remote_addrs=(peer.address,), local_id=f"{name}.test",
        remote_id=f"{other}.test", private_key=key, certificate=x509.load_pem_x509_certificate(cert_path.read_bytes()),
        trust_anchors=(x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()),),
        ike_proposals=from_libreswan(ike, Protocol.IKE, Policy("fips")), dpd_delay=0, rekey_time=0, life_time=0,
        children=(ChildConfig("net", (ts_from_cidr(f"{me.inner}/32"),), (ts_from_cidr(f"{peer.inner}/32"),),
                              parse_proposals(["aes256gcm16"], Protocol.ESP), rekey_time=3000, life_time=3300),))


@pytest.mark.parametrize("fipsike_initiates", [True, False], ids=["fipsike-initiates", "charon-initiates"])
def test_optional_hybrid_with_charon_without_rfc9370(tmp_path: Path, hosts: ssh.TwoHosts,
                                                      fipsike_initiates: bool) -> None:
    pki = ssh.Pki(tmp_path / "pki", "ecdsa", 256)
    key, cert = pki.issue("sun.test", "ecdsa", 256, sans=("sun.test", hosts.right.address))
    conf = CHARON_CONF.format(sun=hosts.right.address, moon=hosts.left.address, ike="aes256gcm16-prfsha384-ecp384",
                              esp="aes256gcm16")
    charon = ssh.Charon(tmp_path / "charon", hosts.right.netns, conf, x509={"sun.crt": cert},
                        x509ca={"ca.crt": pki.ca_cert}, private={"sun.key": key})
    router = open_router("fips")
    engine = Engine(router, [_conn("moon", hosts.left, hosts.right, pki, router, OPTIONAL)])
    drv = UdpDriver(engine, sockets_in_netns(hosts.left.netns, hosts.left.address), hosts.left.address)
    charon.start()
    try:
        if fipsike_initiates:
            drv.handle(engine.initiate("gw", drv.now()))
        else:
            charon.swanctl("--initiate", "--child", "net", "--timeout", "1", check=False)
        drv.run_until(lambda: len(drv.of(InstallChildSa)) == 1)
        assert len(drv.of(IkeSaEstablished)) == 1
        drv.run_until(lambda: _charon_spis(_one_ike(charon)) == _installed_spis(drv))
        sa = engine.ike_sas()[0]
        assert sa.suite is not None and sa.suite.ke.name == "ECP_384" and sa.intermediate is None
        assert not sa.peer_intermediate  # charon 5.9.8 announces no IKE_INTERMEDIATE
        ike = _one_ike(charon)
        assert ike["dh-group"] == "ECP_384" and ike["encr-alg"] == "AES_GCM_16"
        # an IKE SA rekey offers the hybrid proposal and its plain copy: charon takes the plain one
        old = sa.name
        drv.handle(engine.rekey_ike(old, drv.now()))
        drv.run_until(lambda: len(drv.of(IkeSaRekeyed)) == 1 and len(engine.ike_sas()) == 1)
        new = engine.ike_sas()[0]
        drv.run_until(lambda: _one_ike(charon)["initiator-spi"] == new.spi_i.hex())
        assert new.name != old and _charon_spis(_one_ike(charon)) == _installed_spis(drv)
    finally:
        drv.close()
        charon.stop()


def test_tshark_decodes_ike_intermediate(tmp_path: Path, hosts: ssh.TwoHosts) -> None:
    pki = ssh.Pki(tmp_path / "pki", "ecdsa", 256)
    ra, rb = open_router("fips"), open_router("fips")
    a = UdpDriver(Engine(ra, [_conn("moon", hosts.left, hosts.right, pki, ra, REQUIRED)]),
                  sockets_in_netns(hosts.left.netns, hosts.left.address), hosts.left.address)
    b = UdpDriver(Engine(rb, [_conn("sun", hosts.right, hosts.left, pki, rb, REQUIRED)]),
                  sockets_in_netns(hosts.right.netns, hosts.right.address), hosts.right.address)
    pcap = tmp_path / "hybrid.pcap"
    try:
        with ssh.Tcpdump(hosts.left.netns, hosts.left.ifname, pcap):
            a.handle(a.engine.initiate("gw", a.now()))

            def both_up() -> bool:
                b.poll(0.01)
                return len(a.of(InstallChildSa)) == 1 and len(b.of(InstallChildSa)) == 1

            a.run_until(both_up, 20)
    finally:
        a.close()
        b.close()
    ours = [Message.parse(d.data) for d in datagrams(pcap.read_bytes())]
    res = subprocess.run(["tshark", "-r", str(pcap), "-T", "json", "-e", "isakmp.exchangetype", "-e",
                          "isakmp.messageid", "-e", "isakmp.flag_r", "-e", "isakmp.frag.number", "-e",
                          "isakmp.frag.total"], capture_output=True, text=True, timeout=120, check=True)
    frames = [f["_source"]["layers"] for f in json.loads(res.stdout)]
    assert len(frames) == len(ours)
    inter = [(m, f) for m, f in zip(ours, frames, strict=True) if m.exchange == ExchangeType.IKE_INTERMEDIATE]
    # KEi(1) (ML-KEM-1024 encapsulation key) and KEr(1) (its ciphertext) each in two RFC 7383 fragments
    assert len(inter) == 4
    for m, f in inter:
        assert f["isakmp.exchangetype"] == ["43"]
        assert int(f["isakmp.messageid"][0], 0) == m.message_id == 1
        assert f["isakmp.flag_r"] == ["1" if m.response else "0"]
        assert f["isakmp.frag.total"] == ["2"]
    assert sorted(f["isakmp.frag.number"][0] for _, f in inter) == ["1", "1", "2", "2"]
    # tshark 4.0 dissects the messages (header, SKF payload) but has no name yet for type 43 (IANA's
    # IKE_INTERMEDIATE, RFC 9242): Wireshark names it from 4.2 on
    text = subprocess.run(["tshark", "-r", str(pcap), "-V", "-Y", "isakmp.exchangetype == 43"],
                          capture_output=True, text=True, timeout=120, check=True).stdout
    assert text.count("Exchange type: ") == 4 and "(43)" in text
    assert text.count("Payload: Encrypted and Authenticated Fragment (53)") == 4
    order = [int(m.exchange) for m in ours if not m.response]
    assert order.index(ExchangeType.IKE_INTERMEDIATE) < order.index(ExchangeType.IKE_AUTH)
