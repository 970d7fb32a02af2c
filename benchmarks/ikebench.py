"""Shared pieces of the daemon-level benchmarks (benchmarks.daemon, benchmarks.churn): the suites,
a throwaway PKI on disk, engine Connections built from it, two network namespaces joined by a veth
pair, and /proc sampling of a process's CPU, RSS and open file descriptors.

The load generator (benchmarks.loadgen) and the engine responder (benchmarks.responder) run as
separate processes inside the namespaces (`ip netns exec`), so every figure of a responder is its
own process's, read from /proc.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INITIATOR_ADDR = "10.99.0.1"
RESPONDER_ADDR = "10.99.0.2"
INITIATOR_NET = "10.1.0.0/16"  # the initiators' protected side (TS); 10.1.0.1 sits on lo
RESPONDER_NET = "10.2.0.0/16"
INITIATOR_ID = "sun.test"
RESPONDER_ID = "moon.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Suite:
    name: str
    ike: str  # proposal, fipsike / strongSwan syntax (identical for these)
    esp: str
    key_type: str  # "ecdsa" | "rsa" (strongSwan pki --type)
    key_size: int
    charon: bool = True  # charon 5.9.8 can run it
    # the proposal in libreswan's ike= grammar where strongSwan's spelling cannot say it (RFC 9370
    # additional key exchanges: `;addke1=`); both the daemon's ipsec.conf and the generator take it
    libreswan_ike: str = ""

    def ike_proposals(self) -> Any:
        """The engine's IKE proposals for this suite."""
        from fipsike.ike.proposals import Protocol, from_libreswan, parse_proposals

        if self.libreswan_ike:
            return from_libreswan(self.libreswan_ike, Protocol.IKE)
        return parse_proposals([self.ike], Protocol.IKE)


SUITES = {
    "ecdsa": Suite("ecdsa", "aes256gcm16-prfsha384-ecp256", "aes256gcm16", "ecdsa", 256),
    "rsa": Suite("rsa", "aes256-sha256-modp3072", "aes256-sha256", "rsa", 3072),
    # ECP-384 in IKE_SA_INIT, then ML-KEM-1024 as ADDKE1 in one IKE_INTERMEDIATE exchange (RFC 9242,
    # RFC 9370), ECDSA P-256 certificates as benchmarks.handshake's hybrid case; charon 5.9.8 has neither
    "hybrid": Suite("hybrid", "aes256gcm16-prfsha384-ecp384-ke1_mlkem1024", "aes256gcm16", "ecdsa", 256,
                    charon=False, libreswan_ike="aes_gcm256-sha384-ecp384;addke1=ml_kem_1024"),
}


# --- PKI ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PkiPaths:
    ca: Path
    responder_key: Path
    responder_cert: Path
    initiator_key: Path
    initiator_cert: Path


def _pki(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["pki", *args], input=stdin, capture_output=True, timeout=120, check=True).stdout


def make_pki(directory: Path, suite: Suite) -> PkiPaths:
    """A CA, the responder's certificate (moon.test) and the initiators' one (sun.test), made with
    strongSwan's `pki` (keys as PEM files, which both charon and `load_pem_private_key` read)."""
    directory.mkdir(parents=True, exist_ok=True)
    t, s = suite.key_type, str(suite.key_size)

    def gen(path: Path) -> Path:
        path.touch(mode=0o600)
        path.write_bytes(_pki("--gen", "--type", t, "--size", s, "--outform", "pem"))
        return path

    ca_key = gen(directory / "ca.key")
    ca = directory / "ca.crt"
    ca.write_bytes(_pki("--self", "--ca", "--lifetime", "3650", "--in", str(ca_key), "--type", t,
                        "--dn", "O=fipsike bench, CN=Bench CA", "--outform", "pem"))
    out: dict[str, Path] = {}
    for role, name in (("responder", RESPONDER_ID), ("initiator", INITIATOR_ID)):
        key = gen(directory / f"{role}.key")
        pub = _pki("--pub", "--in", str(key), "--type", t)
        cert = directory / f"{role}.crt"
        cert.write_bytes(_pki("--issue", "--lifetime", "365", "--cacert", str(ca), "--cakey", str(ca_key),
                              "--dn", f"O=fipsike bench, CN={name}", "--san", name, "--flag", "serverAuth",
                              "--flag", "clientAuth", "--outform", "pem", stdin=pub))
        out[f"{role}_key"], out[f"{role}_cert"] = key, cert
    return PkiPaths(ca=ca, **out)


def engine_connection(router: Any, suite: Suite, *, initiator: bool, key: Path, cert: Path, ca: Path,
                      dpd_delay: float = 0.0, dpd_timeout: float = 150.0, ike_rekey: float | None = None,
                      child_rekey: float | None = None) -> Any:
    """The one Connection both the load generator (initiator) and the engine responder use."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from fipsike.ike.config import ChildConfig, Connection
    from fipsike.ike.proposals import Protocol, parse_proposals
    from fipsike.ike.ts import ts_from_cidr

    local, remote = (INITIATOR_ADDR, RESPONDER_ADDR) if initiator else (RESPONDER_ADDR, INITIATOR_ADDR)
    lid, rid = (INITIATOR_ID, RESPONDER_ID) if initiator else (RESPONDER_ID, INITIATOR_ID)
    lnet, rnet = (INITIATOR_NET, RESPONDER_NET) if initiator else (RESPONDER_NET, INITIATOR_NET)
    handle = router.import_private_key(load_pem_private_key(key.read_bytes(), None), label=f"bench-{lid}")
    child: dict[str, Any] = {}
    if child_rekey is not None:
        child = {"rekey_time": child_rekey, "life_time": child_rekey * 3}
    ike: dict[str, Any] = {}
    if ike_rekey is not None:
        ike = {"rekey_time": ike_rekey, "life_time": ike_rekey * 3}
    return Connection(
        "bench", (local,), (remote,) if initiator else ("%any",), local_id=lid, remote_id=rid,
        private_key=handle, certificate=x509.load_pem_x509_certificate(cert.read_bytes()),
        trust_anchors=(x509.load_pem_x509_certificate(ca.read_bytes()),), dpd_delay=dpd_delay,
        dpd_timeout=dpd_timeout, initial_contact=False, ike_proposals=suite.ike_proposals(),
        children=(ChildConfig("net", (ts_from_cidr(lnet),), (ts_from_cidr(rnet),),
                              parse_proposals([suite.esp], Protocol.ESP), **child),), **ike)


# --- namespaces -----------------------------------------------------------------------------
class TwoHosts:
    """Namespaces `<tag>i` (the initiators, 10.99.0.1) and `<tag>r` (the responder, 10.99.0.2)."""

    def __init__(self, tag: str | None = None) -> None:
        tag = tag or f"fb{os.getpid() % 100000}"
        self.initiator, self.responder = f"{tag}i", f"{tag}r"
        self._veth = (f"{tag}vi", f"{tag}vr")

    def __enter__(self) -> TwoHosts:
        try:
            for ns in (self.initiator, self.responder):
                _ip("netns", "add", ns)
            _ip("link", "add", self._veth[0], "type", "veth", "peer", "name", self._veth[1])
            for ns, dev, addr, inner in ((self.initiator, self._veth[0], INITIATOR_ADDR, "10.1.0.1"),
                                         (self.responder, self._veth[1], RESPONDER_ADDR, "10.2.0.1")):
                _ip("link", "set", dev, "netns", ns)
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                _ip("-n", ns, "addr", "add", f"{inner}/32", "dev", "lo")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.initiator, self.responder):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, check=True, timeout=30)


def netns_cmd(netns: str, argv: Sequence[str]) -> list[str]:
    """`ip netns exec` execs the command itself, so the Popen pid is the command's."""
    return ["ip", "netns", "exec", netns, *argv]


# --- /proc ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcSample:
    t: float  # time.monotonic()
    cpu_s: float  # utime + stime
    rss_kib: int
    fds: int


def sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of proc(5))
    rss = int(fields[21]) * PAGE // 1024  # field 24
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = -1
    return ProcSample(time.monotonic(), cpu, rss, fds)


def wait_for(cond: Any, timeout: float, what: str, step: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(step)
