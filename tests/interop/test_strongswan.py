"""fipsike's engine against strongSwan's charon over real UDP, between two network namespaces.

fipsike (moon, 10.99.0.1) runs in this process with the in-memory kernel; charon (sun,
10.99.0.2) runs with kernel-libipsec (tests/strongswan_harness.py). Each scenario: IKE_SA_INIT +
IKE_AUTH + Child SA from one side, Child SA rekey from each side, IKE SA rekey from each side,
then a delete; after each step what charon negotiated is read back with `swanctl --list-sas --raw`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fipsike.ike.actions import IkeSaDeleted, IkeSaEstablished, IkeSaRekeyed, InstallChildSa
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.engine import Engine
from fipsike.ike.proposals import Protocol, parse_proposals
from fipsike.ike.ts import ts_from_cidr
from providers import open_router
from tests import strongswan_harness as ssh
from tests.interop.driver import UdpDriver, sockets_in_netns

pytestmark = [pytest.mark.strongswan, pytest.mark.netns]

SCENARIOS = {
    # name: (pki key type, size, IKE proposal, ESP proposal)
    "ecdsa-p256": ("ecdsa", 256, "aes256gcm16-prfsha384-ecp256", "aes128gcm16-ecp256"),
    "rsa-3072": ("rsa", 3072, "aes128-sha256-prfsha256-ecp384", "aes256-sha512-modp3072"),
}

CHARON_CONF = """connections {{
  gw {{
    version = 2
    local_addrs = {sun}
    remote_addrs = {moon}
    proposals = {ike}
    send_cert = always
    rekey_time = 0
    dpd_delay = 0
    local {{
      auth = pubkey
      certs = sun.crt
      id = sun.test
    }}
    remote {{
      auth = pubkey
      id = moon.test
    }}
    children {{
      net {{
        local_ts = 10.2.0.1/32
        remote_ts = 10.1.0.1/32
        esp_proposals = {esp}
        rekey_time = 0
        start_action = none
      }}
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def hosts() -> Iterator[ssh.TwoHosts]:
    why = ssh.available()
    if why:
        pytest.fail(why)
    with ssh.TwoHosts("i") as h:
        yield h


def _charon(tmp: Path, hosts: ssh.TwoHosts, pki: ssh.Pki, scenario: str) -> ssh.Charon:
    kt, size, ike, esp = SCENARIOS[scenario]
    key, cert = pki.issue("sun.test", kt, size, sans=("sun.test", hosts.right.address))
    conf = CHARON_CONF.format(sun=hosts.right.address, moon=hosts.left.address, ike=ike, esp=esp)
    return ssh.Charon(tmp / "charon", hosts.right.netns, conf, x509={"sun.crt": cert},
                      x509ca={"ca.crt": pki.ca_cert}, private={"sun.key": key})


def _fipsike(tmp: Path, hosts: ssh.TwoHosts, pki: ssh.Pki, scenario: str, router: Any,
             on_token: bool) -> UdpDriver:
    kt, size, ike, esp = SCENARIOS[scenario]
    key_path, cert_path = pki.issue("moon.test", kt, size, sans=("moon.test", hosts.left.address))
    key_obj = load_pem_private_key(key_path.read_bytes(), None)
    key = router.import_private_key(key_obj, label="moon-interop", key_id=b"\x4d\x01", to_token=on_token)
    conn = Connection(
        name="gw", local_addrs=(hosts.left.address,), remote_addrs=(hosts.right.address,),
        local_id="moon.test", remote_id="sun.test", private_key=key,
        certificate=x509.load_pem_x509_certificate(cert_path.read_bytes()),
        trust_anchors=(x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()),),
        # ECP-384 first: charon takes only its own group, so fipsike's first KE guess is answered with
        # INVALID_KE_PAYLOAD and retried (RFC 7296 1.2); the RSA scenario has no extra group
        ike_proposals=parse_proposals([_with_extra_group(ike)], Protocol.IKE), dpd_delay=0, rekey_time=0,
        life_time=0,
        children=(ChildConfig("net", (ts_from_cidr("10.1.0.1/32"),), (ts_from_cidr("10.2.0.1/32"),),
                              parse_proposals([esp], Protocol.ESP), rekey_time=3000, life_time=3300),))
    engine = Engine(router, [conn])
    return UdpDriver(engine, sockets_in_netns(hosts.left.netns, hosts.left.address), hosts.left.address)


def _with_extra_group(ike: str) -> str:
    return ike.replace("ecp256", "ecp384-ecp256") if ike.endswith("ecp256") else ike


_CHILD_RX = re.compile(r"child-sas \{(.*)\}")


def charon_state(charon: ssh.Charon) -> dict[str, Any]:
    """One IKE SA's fields and its Child SAs (name, state, spi-in, spi-out, algorithms)."""
    raw = charon.swanctl("--list-sas", "--raw").stdout
    ikes = []
    for line in raw.splitlines():
        if not line.startswith("list-sa event"):
            continue
        fields = dict(re.findall(r"\b(state|initiator-spi|responder-spi|encr-alg|encr-keysize|integ-alg|prf-alg|"
                                 r"dh-group|initiator)=(\S+?)(?=[ }])", line.split("child-sas")[0]))
        children = [dict(re.findall(r"\b(name|state|spi-in|spi-out|encr-alg|encr-keysize|integ-alg|dh-group|mode)"
                                    r"=(\S+?)(?=[ }])", c))
                    for c in re.findall(r"\b\S+-\d+ \{(name=[^{}]*)\}", line)]
        fields["children"] = children  # type: ignore[assignment]
        ikes.append(fields)
    return {"ike_sas": ikes}


def _one_ike(charon: ssh.Charon) -> dict[str, Any]:
    st = charon_state(charon)["ike_sas"]
    assert len(st) == 1, st
    assert st[0]["state"] == "ESTABLISHED"
    ike: dict[str, Any] = st[0]
    return ike


def _installed_spis(drv: UdpDriver) -> set[tuple[int, int]]:
    """(inbound, outbound) of the Child SAs fipsike currently has."""
    return {(c.spi_in, c.spi_out) for sa in drv.engine.ike_sas() for c in sa.children.values()
            if c.state.value in ("installed", "rekeying")}


def _charon_spis(ike: dict[str, Any]) -> set[tuple[int, int]]:
    return {(int(c["spi-out"], 16), int(c["spi-in"], 16)) for c in ike["children"] if c.get("state") == "INSTALLED"}


def _wait_charon(drv: UdpDriver, charon: ssh.Charon, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    last: list[Any] = [None]

    def ok() -> bool:
        try:
            last[0] = _one_ike(charon)
            return bool(check(last[0]))
        except (AssertionError, KeyError):
            return False

    drv.run_until(ok, timeout)
    result: dict[str, Any] = last[0]
    return result


def _scenario(tmp_path: Path, hosts: ssh.TwoHosts, scenario: str, fipsike_initiates: bool, router: Any,
              on_token: bool = False) -> None:
    kt, size, ike_prop, esp_prop = SCENARIOS[scenario]
    pki = ssh.Pki(tmp_path / "pki", kt, size)
    charon = _charon(tmp_path, hosts, pki, scenario)
    drv = _fipsike(tmp_path, hosts, pki, scenario, router, on_token)
    charon.start()
    try:
        # 1. IKE_SA_INIT + IKE_AUTH + Child SA
        if fipsike_initiates:
            drv.handle(drv.engine.initiate("gw", drv.now()))
        else:
            charon.swanctl("--initiate", "--child", "net", "--timeout", "1", check=False)
        drv.run_until(lambda: len(drv.of(InstallChildSa)) == 1)
        assert len(drv.of(IkeSaEstablished)) == 1
        ike = _wait_charon(drv, charon, lambda i: _charon_spis(i) == _installed_spis(drv))
        sa = drv.engine.ike_sas()[0]
        assert ike["initiator-spi"] == sa.spi_i.hex() and ike["responder-spi"] == sa.spi_r.hex()
        want_encr = "AES_GCM_16" if "gcm" in ike_prop else "AES_CBC"
        assert ike["encr-alg"] == want_encr
        assert ike["dh-group"] == str(sa.suite.ke.name)
        child = ike["children"][0]
        assert child["state"] == "INSTALLED" and child["mode"] == "TUNNEL"
        log = charon.log_text()
        if fipsike_initiates and kt == "ecdsa":
            assert any(lg.event == "invalid-ke-payload" for lg in drv.logs)
        if kt == "rsa":
            # RSA-3072 certificates do not fit 1280 octets: IKE_AUTH went in RFC 7383 fragments
            assert re.search(r"received fragment #\d+ of \d+", log), "no IKE fragments seen by charon"
        # a liveness check (RFC 7296 2.4) answered by charon
        heard = sa.last_heard
        drv.handle(drv.engine.liveness(sa.name, drv.now()))
        drv.run_until(lambda: sa.pending is None and sa.last_heard > heard)
        # 2. Child SA rekey started by fipsike (PFS with the ESP proposal's group)
        old = _installed_spis(drv)
        spi_in = next(iter(old))[0]
        drv.handle(drv.engine.rekey_child(spi_in, drv.now()))
        ike = _wait_charon(drv, charon, lambda i: len(_installed_spis(drv)) == 1 and _installed_spis(drv) != old
                           and _charon_spis(i) == _installed_spis(drv))
        live = [c for c in ike["children"] if c.get("state") == "INSTALLED"]
        assert live[0].get("dh-group") == ("ECP_256" if kt == "ecdsa" else "MODP_3072")
        # 3. Child SA rekey started by charon
        old = _installed_spis(drv)
        charon.swanctl("--rekey", "--child", "net")
        _wait_charon(drv, charon, lambda i: len(_installed_spis(drv)) == 1 and _installed_spis(drv) != old
                     and _charon_spis(i) == _installed_spis(drv))
        # 4. IKE SA rekey started by fipsike: the Child SA moves to the new IKE SA
        old_name = drv.engine.ike_sas()[0].name
        drv.handle(drv.engine.rekey_ike(old_name, drv.now()))
        ike = _wait_charon(drv, charon, lambda i: len(drv.engine.ike_sas()) == 1
                           and drv.engine.ike_sas()[0].name != old_name
                           and i["initiator-spi"] == drv.engine.ike_sas()[0].spi_i.hex())
        assert len(drv.of(IkeSaRekeyed)) == 1
        assert _charon_spis(ike) == _installed_spis(drv)
        # 5. IKE SA rekey started by charon
        old_name = drv.engine.ike_sas()[0].name
        charon.swanctl("--rekey", "--ike", "gw")
        ike = _wait_charon(drv, charon, lambda i: len(drv.engine.ike_sas()) == 1
                           and drv.engine.ike_sas()[0].name != old_name
                           and i["responder-spi"] == drv.engine.ike_sas()[0].spi_r.hex())
        assert len(drv.of(IkeSaRekeyed)) == 2
        assert _charon_spis(ike) == _installed_spis(drv)
        # 6. delete from fipsike: charon has nothing left
        drv.handle(drv.engine.delete_ike(drv.engine.ike_sas()[0].name, drv.now()))
        drv.run_until(lambda: not drv.engine.ike_sas())
        assert drv.of(IkeSaDeleted)
        assert not drv.kernel.list_sas()
        assert charon_state(charon)["ike_sas"] == []
    finally:
        drv.close()
        charon.stop()


@pytest.mark.parametrize("fipsike_initiates", [True, False], ids=["fipsike-initiates", "charon-initiates"])
def test_ecdsa_p256(tmp_path: Path, hosts: ssh.TwoHosts, fipsike_initiates: bool) -> None:
    _scenario(tmp_path, hosts, "ecdsa-p256", fipsike_initiates, open_router("fips"))


@pytest.mark.softhsm
@pytest.mark.parametrize("fipsike_initiates", [True, False], ids=["fipsike-initiates", "charon-initiates"])
def test_rsa_3072_on_softhsm(tmp_path: Path, hosts: ssh.TwoHosts, router_hsm: Any, fipsike_initiates: bool) -> None:
    _scenario(tmp_path, hosts, "rsa-3072", fipsike_initiates, router_hsm, on_token=True)
