"""`fipsike daemon` with `authby=secret` (RFC 7296 2.15 SHARED_KEY_MIC) against strongSwan's charon
(`auth = psk`) in two network namespaces: each side initiates; a wrong PSK fails with
AUTHENTICATION_FAILED on both sides, whoever initiates; and the canary sweep: the planted PSK never
shows in fipsike's log, control replies, status JSON or CLI output (success and failure alike)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import strongswan_harness as ssh
from tests.daemon.conftest import Spawn, moon_conn
from tests.daemon.harness import DaemonProc
from tests.kernel.canary import assert_no_canary

pytestmark = [pytest.mark.strongswan, pytest.mark.netns]

# distinctive, long enough for PRF-HMAC-SHA2-384 in FIPS mode (24 octets), and varied
PSK = "CANARY-psk-5e1f0c93-fipsike-vs-charon-Zq7"
WRONG = "not-the-same-secret-4b8d2a61-fipsike-Wx3"

CHARON_PSK_CONF = """connections {{
  gw {{
    version = 2
    local_addrs = {sun}
    remote_addrs = {moon}
    proposals = aes256gcm16-prfsha384-ecp256
    dpd_delay = 0
    local {{
      auth = psk
      id = sun.test
    }}
    remote {{
      auth = psk
      id = moon.test
    }}
    children {{
      gw {{
        local_ts = {sun_inner}/32
        remote_ts = {moon_inner}/32
        esp_proposals = aes256gcm16
        start_action = none
      }}
    }}
  }}
}}
secrets {{
  ike-gw {{
    id-moon = moon.test
    id-sun = sun.test
    secret = "{secret}"
  }}
}}
"""

CharonFactory = Callable[[str], ssh.Charon]


@pytest.fixture
def charon_psk(hosts: ssh.TwoHosts, tmp_path: Path) -> Iterator[CharonFactory]:
    why = ssh.available()
    if why:
        pytest.fail(why)
    started: list[ssh.Charon] = []

    def make(secret: str) -> ssh.Charon:
        conf = CHARON_PSK_CONF.format(sun=hosts.right.address, moon=hosts.left.address,
                                      sun_inner=hosts.right.inner, moon_inner=hosts.left.inner, secret=secret)
        c = ssh.Charon(tmp_path / f"charon{len(started)}", hosts.right.netns, conf)
        c.start()
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


def _psk_conn(hosts: ssh.TwoHosts, pki: ssh.Pki, **extra: Any) -> dict[str, Any]:
    return moon_conn(hosts, pki, authby="secret", leftcert=None, leftkey=None, rightca=None, **extra)


def _secrets(secret: str) -> str:
    return f'@moon.test @sun.test : PSK "{secret}"\n'


def _wait(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _established(moon: DaemonProc) -> list[dict[str, Any]]:
    return [s for s in moon.call("status")["ike_sas"] if s["state"] == "established"]


def test_psk_both_directions_against_charon(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn,
                                            charon_psk: CharonFactory) -> None:
    charon = charon_psk(PSK)
    moon = spawn(hosts.left.netns, [_psk_conn(hosts, pki)], secrets=_secrets(PSK))
    r = moon.cli("up", "gw")
    assert r.returncode == 0, (r.stdout, r.stderr, moon.log_text()[-2000:])
    (sa,) = _established(moon)
    assert sa["initiator"] and sa["remote_id"] == "@sun.test" and sa["children"]
    assert [sa["spi_i"] for sa in ssh.ike_sas(charon)] == [sa["name"].split("/")[0]]
    charon.wait_for_log(r"authentication of 'moon\.test' with pre-shared key successful")
    assert moon.cli("down", "gw").returncode == 0
    _wait(lambda: not ssh.ike_sas(charon), what="charon deletes on our DELETE")

    charon.swanctl("--initiate", "--child", "gw", timeout=30)
    _wait(lambda: bool(_established(moon)) and bool(_established(moon)[0]["children"]),
          what="charon's PSK IKE SA in fipsike's status")
    sa = _established(moon)[0]
    assert not sa["initiator"] and sa["remote_id"] == "@sun.test"
    assert "pre-shared key" in moon.log_text()
    assert moon.stop() == 0


def test_wrong_psk_fails_on_both_sides_and_the_psk_never_shows(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn,
                                                               charon_psk: CharonFactory) -> None:
    outputs: list[str] = []
    # the right PSK first: a handshake, status and trafficstatus with the canary loaded
    charon = charon_psk(PSK)
    moon = spawn(hosts.left.netns, [_psk_conn(hosts, pki)], secrets=_secrets(PSK))
    r = moon.cli("up", "gw")
    assert r.returncode == 0, (r.stdout, r.stderr)
    outputs += [r.stdout, r.stderr, json.dumps(moon.call("status")), json.dumps(moon.call("trafficstatus")),
                moon.cli("status", "--json").stdout, moon.cli("status").stdout]
    assert moon.stop() == 0
    charon.stop()

    # charon holds another PSK. fipsike initiates: charon refuses our AUTH and says so
    charon = charon_psk(WRONG)
    moon = spawn(hosts.left.netns, [_psk_conn(hosts, pki)], secrets=_secrets(PSK), tag="b")
    r = moon.cli("up", "gw")
    assert r.returncode != 0
    outputs += [r.stdout, r.stderr]
    charon.wait_for_log(r"tried \d+ shared key for 'sun\.test' - 'moon\.test', but MAC mismatched")
    moon.wait_log("AUTHENTICATION_FAILED")
    assert not _established(moon)
    _wait(lambda: not ssh.ike_sas(charon), what="charon drops the failed IKE SA")
    # charon initiates: fipsike refuses charon's AUTH (AUTHENTICATION_FAILED, RFC 7296 2.21.2) and charon
    # reports the notify
    res = charon.swanctl("--initiate", "--child", "gw", timeout=30, check=False)
    assert res.returncode != 0
    charon.wait_for_log(r"received AUTHENTICATION_FAILED notify error")
    moon.wait_log("AUTHENTICATION_FAILED", count=2)
    outputs += [json.dumps(moon.call("status")), moon.cli("status", "--json").stdout]
    assert not _established(moon)
    assert moon.stop() == 0

    log = "\n".join(p.read_text(errors="replace") for p in hosts_logs(moon))
    text = log + "\n".join(outputs)
    assert "AUTHENTICATION_FAILED" in text
    assert "CANARY-psk" not in text and "CANARY" not in text
    assert_no_canary(text, [PSK.encode(), WRONG.encode()], "fipsike's log, control replies, status and CLI output")


def hosts_logs(moon: DaemonProc) -> list[Path]:
    """Every daemon log of this test (the first daemon's workdir is a sibling of the second's)."""
    return sorted(moon.dir.parent.glob("*/daemon.log"))
