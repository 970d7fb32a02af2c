"""Bad input on the wire during the run: the codec's fuzz seeds (every IKE message of the stored
strongSwan captures), mutated, fired at a daemon's UDP 500 and 4500 from the peer's namespace
while a legitimate tunnel is negotiated. The tunnel comes up, the daemon stays up, and its
memory stays bounded."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pytest

from tests import strongswan_harness as ssh
from tests.daemon.conftest import Spawn, moon_conn, sun_conn
from tests.daemon.test_udp import in_netns
from tests.ike.codec.fuzz_targets import seeds

pytestmark = [pytest.mark.netns]

NON_ESP_MARKER = b"\x00" * 4


def _mutate(rng: random.Random, pool: list[bytes]) -> bytes:
    data = bytearray(rng.choice(pool))
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(len(data) + 1)
        op = rng.randrange(4)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[pos:pos + rng.randint(1, 32)]
        elif op == 2:
            data[pos:pos] = rng.randbytes(rng.randint(1, 32))
        elif data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
    return bytes(data)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_fuzzed_datagrams_during_a_negotiation(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    moon = spawn(hosts.left.netns, [moon_conn(hosts, pki)])
    sun = spawn(hosts.right.netns, [sun_conn(hosts, pki)])
    assert moon.proc is not None
    pool = seeds()
    assert len(pool) >= 10
    rng = random.Random(20261202)  # deterministic: a failure replays
    attacker = in_netns(hosts.right.netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    stop = threading.Event()
    sent = [0]

    def fire() -> None:
        while not stop.is_set() and sent[0] < 20000:
            data = _mutate(rng, pool)
            port = 500 if rng.random() < 0.6 else 4500
            try:
                attacker.sendto(NON_ESP_MARKER + data if port == 4500 else data, (hosts.left.address, port))
            except OSError:
                pass
            sent[0] += 1
            if sent[0] % 200 == 0:
                time.sleep(0.01)

    warm = [attacker.sendto(_mutate(rng, pool), (hosts.left.address, 500)) for _ in range(300)]
    del warm
    time.sleep(1)
    rss_before = _rss_kib(moon.proc.pid)
    t = threading.Thread(target=fire)
    t.start()
    try:
        r = moon.cli("up", "gw")
        assert r.returncode == 0, (r.stdout, moon.log_text()[-3000:])
        time.sleep(3)
    finally:
        stop.set()
        t.join()
        attacker.close()
    assert sent[0] > 2000
    assert moon.proc.poll() is None
    st = moon.call("status")["ike_sas"]
    established = [sa for sa in st if sa["state"] == "established" and sa["children"]]
    assert len(established) == 1, st
    assert [sa["name"] for sa in sun.call("status")["ike_sas"]] == [established[0]["name"]]
    log = moon.log_text()
    assert "Traceback" not in log
    internal = [line for line in log.splitlines() if "internal-error" in line]
    assert internal == [], sorted(set(internal))[:5]
    growth = _rss_kib(moon.proc.pid) - rss_before
    print(f"{sent[0]} fuzzed datagrams; RSS growth {growth} KiB")
    assert growth < 32 * 1024, growth
