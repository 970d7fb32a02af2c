"""A reusable harness for strongSwan's charon as the real peer, in network namespaces.

Pieces (each usable alone; all clean up after themselves):
- `TwoHosts`: two network namespaces joined by a veth pair (plus a /32 "inner" address on each
  loopback), with names unique to this process so parallel tests never collide.
- `Pki`: a test CA and end-entity certificates (ECDSA or RSA) made with strongSwan's `pki`.
- `Charon`: one charon-systemd in a named netns with its own strongswan.conf, swanctl.conf,
  VICI socket and log file; `start()` waits until the VICI socket answers and loads the config;
  `swanctl(...)` runs swanctl against it; `wait_for_log(regex)`; `ike_keys()` reads the SK_* keys
  charon logs at `ike = 4`; `stop()`.
- `Tcpdump`: a capture in a netns to a pcap file, started and stopped cleanly.

The engine tests reuse it to run fipsike against charon: make a TwoHosts, start a Charon in one
namespace, run fipsike in the other.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

CHARON = "/usr/sbin/charon-systemd"
_COUNTER = itertools.count()


def available() -> str | None:
    """None when charon, swanctl, pki, tcpdump and root are all here, else why not."""
    for tool in (CHARON, "swanctl", "pki", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    return None


def _run(cmd: Sequence[str], timeout: float = 30, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=check, **kw)  # type: ignore[call-overload,no-any-return]


def stop_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal a process group, then SIGKILL it if it has not exited within 5 s."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# --- network ------------------------------------------------------------------
@dataclass
class Host:
    netns: str
    address: str  # on the veth
    inner: str  # /32 on lo, for traffic selectors
    ifname: str


class TwoHosts:
    """Two namespaces, `left` and `right`, linked by veth; addresses 10.99.0.1 / 10.99.0.2 by default."""

    def __init__(self, tag: str = "", left_address: str = "10.99.0.1", right_address: str = "10.99.0.2",
                 left_inner: str = "10.1.0.1", right_inner: str = "10.2.0.1", prefix_len: int = 24) -> None:
        n = f"{os.getpid() % 100000}{next(_COUNTER)}{tag}"[:9]
        self.left = Host(f"fk{n}l", left_address, left_inner, f"v{n}l")
        self.right = Host(f"fk{n}r", right_address, right_inner, f"v{n}r")
        self.prefix_len = prefix_len
        self._up = False

    def __enter__(self) -> TwoHosts:
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def setup(self) -> None:
        left, right = self.left, self.right
        try:
            for h in (left, right):
                _run(["ip", "netns", "add", h.netns])
            self._up = True
            _run(["ip", "link", "add", left.ifname, "type", "veth", "peer", "name", right.ifname])
            for h in (left, right):
                _run(["ip", "link", "set", h.ifname, "netns", h.netns])
                _run(["ip", "-n", h.netns, "addr", "add", f"{h.address}/{self.prefix_len}", "dev", h.ifname])
                _run(["ip", "-n", h.netns, "addr", "add", f"{h.inner}/32", "dev", "lo"])
                _run(["ip", "-n", h.netns, "link", "set", "lo", "up"])
                _run(["ip", "-n", h.netns, "link", "set", h.ifname, "up"])
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        for h in (self.left, self.right):
            _run(["ip", "netns", "del", h.netns], check=False)  # takes the veth with it
        self._up = False

    def exec(self, host: Host, *cmd: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", host.netns, *cmd], timeout=timeout, check=check)


# --- certificates ---------------------------------------------------------------
class Pki:
    """A throwaway CA under `directory`, issuing certificates with strongSwan's pki."""

    def __init__(self, directory: Path, key_type: str = "ecdsa", size: int = 256) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = self.dir / "ca.key"
        self.ca_cert = self.dir / "ca.crt"
        self._gen(self.ca_key, key_type, size)
        self.ca_cert.write_bytes(_run_bytes(["pki", "--self", "--ca", "--lifetime", "3650", "--in", str(self.ca_key),
                                             "--type", key_type, "--dn", "O=fipsike test, CN=Test CA",
                                             "--outform", "pem"]))

    @staticmethod
    def _gen(path: Path, key_type: str, size: int) -> None:
        path.write_bytes(_run_bytes(["pki", "--gen", "--type", key_type, "--size", str(size), "--outform", "pem"]))

    def issue(self, name: str, key_type: str = "ecdsa", size: int = 256, sans: Sequence[str] = ()) -> tuple[Path, Path]:
        """(key path, cert path) for CN=name with SANs (name itself by default)."""
        key, cert = self.dir / f"{name}.key", self.dir / f"{name}.crt"
        self._gen(key, key_type, size)
        pub = _run_bytes(["pki", "--pub", "--in", str(key), "--type", key_type])
        san_args = [a for s in (sans or (name,)) for a in ("--san", s)]
        cert.write_bytes(_run_bytes(["pki", "--issue", "--lifetime", "365", "--cacert", str(self.ca_cert),
                                     "--cakey", str(self.ca_key), "--dn", f"O=fipsike test, CN={name}", *san_args,
                                     "--flag", "serverAuth", "--flag", "clientAuth", "--outform", "pem"], stdin=pub))
        return key, cert


def _run_bytes(cmd: Sequence[str], stdin: bytes | None = None) -> bytes:
    return subprocess.run(list(cmd), input=stdin, capture_output=True, timeout=60, check=True).stdout


# --- charon ------------------------------------------------------------------------
STRONGSWAN_CONF = """\
charon {{
  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints revocation kdf {kernel} socket-default vici
  port = 500
  port_nat_t = 4500
  install_routes = no
  retransmit_tries = 2
  {extra}
  plugins {{
    vici {{
      socket = unix://{vici}
    }}
  }}
  filelog {{
    charonlog {{
      path = {log}
      time_format = %T
      default = 1
      ike = {ike_level}
      flush_line = yes
      append = no
    }}
  }}
}}
swanctl {{
  load = pem pkcs1 pkcs8 x509 openssl
}}
"""


@dataclass
class IkeKeys:
    """One IKE SA's keys as charon logged them: "SK_d", "SK_ei", ... -> hex (no SK_ai/ar for AEAD)."""

    keys: dict[str, str] = field(default_factory=dict)


class Charon:
    """One charon in netns `netns`, configured from `swanctl_conf` (text) under `workdir`.

    Certificates / keys to load: pass `x509` (own certs), `x509ca` (CAs), `private` (keys)
    as {file name: Path}; they are copied into workdir/swanctl/... .
    """

    def __init__(self, workdir: Path, netns: str, swanctl_conf: str, *, ike_log_level: int = 2,
                 x509: dict[str, Path] | None = None, x509ca: dict[str, Path] | None = None,
                 private: dict[str, Path] | None = None, extra_charon: str = "",
                 kernel_plugins: str = "kernel-libipsec kernel-netlink") -> None:
        self.dir = workdir
        self.netns = netns
        self.vici = workdir / "charon.vici"
        self.log = workdir / "charon.log"
        self.conf = workdir / "strongswan.conf"
        self.swanctl_dir = workdir / "swanctl"
        self.proc: subprocess.Popen[bytes] | None = None
        for sub, files in (("x509", x509), ("x509ca", x509ca), ("private", private)):
            d = self.swanctl_dir / sub
            d.mkdir(parents=True, exist_ok=True)
            for name, src in (files or {}).items():
                shutil.copy(src, d / name)
        (self.swanctl_dir / "swanctl.conf").write_text(swanctl_conf)
        self.conf.write_text(STRONGSWAN_CONF.format(vici=self.vici, log=self.log, ike_level=ike_log_level,
                                                    extra=extra_charon, kernel=kernel_plugins))

    @property
    def uri(self) -> str:
        return f"unix://{self.vici}"

    def start(self, timeout: float = 10.0) -> None:
        env = dict(os.environ, STRONGSWAN_CONF=str(self.conf))
        with suppress(FileNotFoundError):
            self.vici.unlink()
        stderr = open(self.dir / "charon.stderr", "wb")  # noqa: SIM115 - lives as long as the daemon
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.netns, CHARON], env=env, stdout=stderr,
                                     stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"charon exited with {self.proc.returncode}: "
                                   f"{(self.dir / 'charon.stderr').read_text(errors='replace')[-2000:]}")
            if self.vici.exists() and self.swanctl("--stats", check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("charon's VICI socket did not come up")
            time.sleep(0.05)
        self.swanctl("--load-all", "--file", str(self.swanctl_dir / "swanctl.conf"))

    def swanctl(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, SWANCTL_DIR=str(self.swanctl_dir))
        res = subprocess.run(["swanctl", *args, "--uri", self.uri], env=env, capture_output=True, text=True,
                             timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise RuntimeError(f"swanctl {' '.join(args)} failed ({res.returncode}): {res.stdout[-2000:]} "
                               f"{res.stderr[-2000:]}")
        return res

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> str:
        """Wait until `pattern` (regex) matched `count` times in the log; returns the log."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if len(rx.findall(text)) >= count:
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"charon log never showed {pattern!r} x{count}")
            time.sleep(0.05)

    def ike_keys(self) -> list[IkeKeys]:
        """The IKE SA keys charon logged (needs ike_log_level >= 4), in derivation order."""
        return parse_charon_keys(self.log_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_group(self.proc, signal.SIGTERM)
        self.proc = None

    def __enter__(self) -> Charon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_charon_keys(log: str) -> list[IkeKeys]:
    """The SK_* secrets charon logs at `ike = 4` after each IKE key derivation, in derivation order.

    charon logs "Sk_ei secret => N bytes @ 0x..." followed by hexdump lines ("   0: 34 61 ...").
    It does not log the SPIs there: match key sets to IKE SAs in creation order (see `ike_sas`).
    """
    lines = log.splitlines()
    out: list[IkeKeys] = []
    current: dict[str, str] = {}
    name_rx = re.compile(r"\bSk_([a-z]{1,2}) secret => (\d+) bytes")
    hex_rx = re.compile(r"\b[0-9]{1,4}: ((?:[0-9A-F]{2} ){1,16})")
    i = 0
    while i < len(lines):
        m = name_rx.search(lines[i])
        i += 1
        if not m:
            continue
        name, length = "SK_" + m.group(1), int(m.group(2))
        digits = ""
        while i < len(lines) and len(digits) < 2 * length:
            hm = hex_rx.search(lines[i])
            if not hm:
                break
            digits += hm.group(1).replace(" ", "")
            i += 1
        current[name] = digits.lower()[: 2 * length]
        if name == "SK_pr":  # the last of the seven (RFC 7296 2.14 order)
            out.append(IkeKeys(dict(current)))
            current = {}
    return out


# --- capture -------------------------------------------------------------------
class Tcpdump:
    """tcpdump in `netns` on `ifname` writing `path` (IKE ports by default)."""

    def __init__(self, netns: str, ifname: str, path: Path, bpf: str = "udp port 500 or udp port 4500",
                 log_dir: Path | None = None) -> None:
        self.netns, self.ifname, self.path, self.bpf = netns, ifname, path, bpf
        self.proc: subprocess.Popen[bytes] | None = None
        self._err = (log_dir or path.parent) / (path.name + ".tcpdump.log")

    def start(self, timeout: float = 10.0) -> None:
        err = open(self._err, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.netns, "tcpdump", "-i", self.ifname, "-U",
                                      "--immediate-mode", "-n", "-s", "0", "-w", str(self.path), self.bpf],
                                     stdout=err, stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        while "listening on" not in self._err.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tcpdump did not start: {self._err.read_text(errors='replace')}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        time.sleep(0.2)  # let the last datagrams reach the file (-U flushes per packet)
        stop_group(self.proc, signal.SIGINT)
        self.proc = None

    def __enter__(self) -> Tcpdump:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def charon_pair(base: Path, left_conf: str, right_conf: str, *, ike_log_level: int = 2,
                left_files: dict[str, dict[str, Path]] | None = None,
                right_files: dict[str, dict[str, Path]] | None = None,
                hosts: TwoHosts | None = None) -> Iterator[tuple[TwoHosts, Charon, Charon]]:
    """Two hosts, a charon in each, both started; everything torn down on exit."""
    own = hosts is None
    net = hosts or TwoHosts()
    if own:
        net.setup()
    lf, rf = left_files or {}, right_files or {}
    left = Charon(base / "left", net.left.netns, left_conf, ike_log_level=ike_log_level, **lf)  # type: ignore[arg-type]
    right = Charon(base / "right", net.right.netns, right_conf, ike_log_level=ike_log_level, **rf)  # type: ignore[arg-type]
    try:
        left.start()
        right.start()
        yield net, left, right
    finally:
        left.stop()
        right.stop()
        if own:
            net.teardown()


# --- list-sas ---------------------------------------------------------------------
_SA_RX = re.compile(r"uniqueid=(\d+) version=2 .*?initiator-spi=([0-9a-f]{16}) responder-spi=([0-9a-f]{16})"
                    r"(.*?)(?:child-sas|$)")


def ike_sas(charon: Charon) -> list[dict[str, str]]:
    """The IKE SAs `swanctl --list-sas --raw` shows: uniqueid, spi_i, spi_r, encr-alg, encr-keysize, integ-alg."""
    out = []
    for line in charon.swanctl("--list-sas", "--raw").stdout.splitlines():
        if not line.startswith("list-sa event"):
            continue
        for m in _SA_RX.finditer(line):
            sa = {"uniqueid": m.group(1), "spi_i": m.group(2), "spi_r": m.group(3)}
            sa.update(re.findall(r"(encr-alg|encr-keysize|integ-alg|prf-alg|dh-group)=(\S+)", m.group(4)))
            out.append(sa)
    return out


# --- the capture scenarios (scripts/capture-strongswan.py and the live test) ---------
_CHARON_ENCR = {("AES_GCM_16", 128): "AES-GCM-128 with 16 octet ICV [RFC5282]",
                ("AES_GCM_16", 256): "AES-GCM-256 with 16 octet ICV [RFC5282]",
                ("AES_CBC", 128): "AES-CBC-128 [RFC3602]", ("AES_CBC", 256): "AES-CBC-256 [RFC3602]"}
_CHARON_INTEG = {None: "NONE [RFC4306]", "HMAC_SHA2_256_128": "HMAC_SHA2_256_128 [RFC4868]",
                 "HMAC_SHA2_384_192": "HMAC_SHA2_384_192 [RFC4868]", "HMAC_SHA2_512_256": "HMAC_SHA2_512_256 [RFC4868]"}

SCENARIOS = {
    # name: (key type, key size, IKE proposal, ESP proposal, fragmentation)
    "ecdsa": ("ecdsa", 256, "aes256gcm16-prfsha384-ecp256", "aes128gcm16-ecp256", "yes"),
    "rsa": ("rsa", 3072, "aes128-sha256-prfsha256-ecp384", "aes256-sha512-modp3072", "force"),
}


def connection_conf(local: Host, remote: Host, lid: str, rid: str, cert: str, ike: str, esp: str,
                    frag: str = "yes", *, name: str = "gw", child: str = "net", auth: str = "pubkey",
                    start_action: str = "none", extra: str = "") -> str:
    """A swanctl.conf with one certificate-authenticated connection `name` and Child SA `child`
    between the two hosts' veth addresses, protecting inner/32 <-> inner/32."""
    return f"""connections {{
  {name} {{
    version = 2
    local_addrs = {local.address}
    remote_addrs = {remote.address}
    proposals = {ike}
    fragmentation = {frag}
    send_cert = always
    {extra}
    local {{
      auth = {auth}
      certs = {cert}
      id = {lid}
    }}
    remote {{
      auth = {auth}
      id = {rid}
    }}
    children {{
      {child} {{
        local_ts = {local.inner}/32
        remote_ts = {remote.inner}/32
        esp_proposals = {esp}
        start_action = {start_action}
      }}
    }}
  }}
}}
"""


def capture_scenario(name: str, outdir: Path, workdir: Path) -> tuple[Path, Path]:
    """Run charon <-> charon for scenario `name`: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA (Child SA
    rekey, IKE SA rekey), INFORMATIONAL (deletes); capture on the initiator's side. Writes
    outdir/<name>.pcap and outdir/<name>.keys.csv (Wireshark ikev2_decryption_table rows)."""
    key_type, size, ike, esp, frag = SCENARIOS[name]
    pki = Pki(workdir / "pki", "ecdsa", 256)
    mk, mc = pki.issue("moon.test", key_type, size)
    sk, sc = pki.issue("sun.test", key_type, size)
    pcap = outdir / f"{name}.pcap"
    keys_csv = outdir / f"{name}.keys.csv"
    with TwoHosts(tag=name[0]) as net:
        lconf = connection_conf(net.left, net.right, "moon.test", "sun.test", "moon.crt", ike, esp, frag)
        rconf = connection_conf(net.right, net.left, "sun.test", "moon.test", "sun.crt", ike, esp, frag)
        files_l = {"x509": {"moon.crt": mc}, "x509ca": {"ca.crt": pki.ca_cert}, "private": {"moon.key": mk}}
        files_r = {"x509": {"sun.crt": sc}, "x509ca": {"ca.crt": pki.ca_cert}, "private": {"sun.key": sk}}
        with charon_pair(workdir, lconf, rconf, ike_log_level=4, hosts=net, left_files=files_l,
                         right_files=files_r) as (_, left, _right):
            seen: list[dict[str, str]] = []

            def note_new_sas() -> None:
                for sa in ike_sas(left):
                    if all(sa["uniqueid"] != s["uniqueid"] for s in seen):
                        seen.append(sa)

            with Tcpdump(net.left.netns, net.left.ifname, pcap, log_dir=workdir):
                left.swanctl("--initiate", "--child", "net")
                note_new_sas()
                left.swanctl("--rekey", "--child", "net")
                left.wait_for_log(r"received DELETE for ESP CHILD_SA|CHILD_SA closed")
                left.swanctl("--rekey", "--ike", "gw")
                left.wait_for_log(r"IKE_SA gw\[1\] state change: DELETING => DESTROYING")
                note_new_sas()
                left.swanctl("--terminate", "--ike", "gw")
                left.wait_for_log(r"IKE_SA gw\[2\] state change: DELETING => DESTROYING")
            keys = left.ike_keys()
    if len(keys) != len(seen):
        raise RuntimeError(f"charon logged {len(keys)} key sets for {len(seen)} IKE SAs")
    rows = []
    for sa, k in zip(seen, keys, strict=True):
        encr = _CHARON_ENCR[(sa["encr-alg"], int(sa["encr-keysize"]))]
        integ = _CHARON_INTEG[sa.get("integ-alg")]
        # Wireshark's UAT file form: hex fields bare, string fields quoted
        rows.append(",".join((sa["spi_i"], sa["spi_r"], k.keys["SK_ei"], k.keys["SK_er"], f'"{encr}"',
                              k.keys.get("SK_ai", ""), k.keys.get("SK_ar", ""), f'"{integ}"')))
    keys_csv.write_text("".join(r + "\n" for r in rows))
    return pcap, keys_csv
