"""libreswan's pluto (4.10, Debian's package unpacked by scripts/libreswan-setup.sh) as a matrix peer.

pluto has /usr/libexec/ipsec/addconn compiled in and refuses to start without it, and the package is
unpacked, not installed: inside `ip netns exec` (a private mount namespace) a tmpfs goes over
/usr/libexec and the unpacked folder is bound onto /usr/libexec/ipsec, so nothing leaks to the host.
Its NSS db is made from the matrix PKI (CAs with certutil first, then the PKCS#12), its ipsec.conf
from a PeerSpec in libreswan's own names, and every action goes through whack. See
/work/shared/recipes/libreswan.md (two pluto bugs: a Child SA made in IKE_AUTH is rekeyed with the
IKE SA's group, so the matrix uses one group in ike= and esp=; a wrong-length KE is answered with
INVALID_SYNTAX instead of INVALID_KE_PAYLOAD).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.interop.peers.common import PeerError, in_netns, kill9, run, stop_group, wait_for
from tests.interop.peers.pki import P12_PASSWORD
from tests.interop.peers.spec import PeerSpec

CACHE = Path(os.environ.get("LIBRESWAN_WORK", "/var/cache/fipsike-libreswan"))
LIBEXEC = CACHE / "root/usr/libexec/ipsec"
NSS_BIN = CACHE / "root/usr/bin"
LIBS = CACHE / "root/usr/lib/x86_64-linux-gnu"


def available() -> str | None:
    if not (LIBEXEC / "pluto").exists():
        return f"pluto not unpacked in {CACHE}: run scripts/libreswan-setup.sh"
    return None


def ipsec_conf(spec: PeerSpec, nickname: str) -> str:
    ike, esp = spec.libreswan()
    if spec.auth == "null":
        auth = "\tauthby=null\n\tleftid=%null\n\trightid=%null\n"
    elif spec.auth == "psk":
        auth = f"\tauthby=secret\n\tleftid=@{spec.local_id}\n\trightid=@{spec.remote_id}\n"
    else:
        method = "rsa-sha2" if spec.cert is not None and spec.cert.kind == "rsa" else "ecdsa"
        auth = (f"\tauthby={method}\n\tleftid=@{spec.local_id}\n\tleftcert={nickname}\n\tleftsendcert=always\n"
                f"\tsendca=all\n\trightid=@{spec.remote_id}\n")
    # uniqueids=yes: libreswan's default (a new IKE SA for an identity replaces the old one). Seen in the
    # guest: pluto 4.10 still keeps a restarted peer's stale Child SA beside the new one (INITIAL_CONTACT
    # is a MAY, RFC 7296 2.4), with uniqueids=yes or no
    return ("config setup\n\tuniqueids=yes\n\tdnssec-enable=no\n\n"
            f"conn gw\n\tikev2=yes\n\tleft={spec.local_addr}\n\tleftsubnet={spec.local_ts}\n\tleftupdown=%disabled\n"
            f"\tright={spec.remote_addr}\n\trightsubnet={spec.remote_ts}\n{auth}"
            f"\tike={ike}\n\tesp={esp}\n\tpfs=yes\n\trekey=no\n\tfragmentation=yes\n"
            f"\tdpddelay={spec.dpd_delay}\n\tauto=add\n")


_STATE = re.compile(r'#(\d+): "gw"[^\n]*? (STATE_\w+)')
_SPIS = re.compile(r'#(\d+): "gw"[^\n]*? esp\.([0-9a-f]+)@(\S+) esp\.([0-9a-f]+)@(\S+)')


class PlutoPeer:
    name = "pluto"

    def __init__(self, workdir: Path, netns: str, spec: PeerSpec) -> None:
        self.dir = workdir
        self.netns = netns
        self.spec = spec
        self.rundir = workdir / "run"
        self.ctl = self.rundir / "pluto.ctl"
        self.log = workdir / "pluto.log"
        self.nss = workdir / "nss"
        self.conf = workdir / "ipsec.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        return {**os.environ, "LD_LIBRARY_PATH": str(LIBS)}

    def _nss(self) -> None:
        self.nss.mkdir(parents=True, exist_ok=True)
        env = self._env()
        run([str(NSS_BIN / "certutil"), "-N", "-d", f"sql:{self.nss}", "--empty-password"], env=env)
        # the CAs first: pk12util would name the chain's certificates "<CN> - <O>" (recipe pitfall 4)
        cas: list[tuple[str, str, str]] = [(f"root{i}", "CT,,", p) for i, p in enumerate(self.spec.trust)]
        if self.spec.cert is not None:
            cas += [(f"inter{i}", ",,", str(p)) for i, p in enumerate(self.spec.cert.chain)]
        for nick, trust, path in cas:
            run([str(NSS_BIN / "certutil"), "-A", "-d", f"sql:{self.nss}", "-n", nick, "-t", trust, "-a", "-i", path],
                env=env)
        if self.spec.cert is not None:
            run([str(NSS_BIN / "pk12util"), "-i", str(self.spec.cert.p12), "-d", f"sql:{self.nss}", "-W",
                 P12_PASSWORD, "-K", ""], env=env)

    def start(self, timeout: float = 20.0) -> float:
        """Start pluto (no --config: addconn loads the conn), seconds until its control socket answered."""
        why = available()
        if why:
            raise PeerError(why)
        self.rundir.mkdir(parents=True, exist_ok=True)
        (self.dir / "ipsec.d").mkdir(exist_ok=True)
        secrets = self.dir / "ipsec.secrets"
        secrets.write_text(f'@{self.spec.local_id} @{self.spec.remote_id} : PSK "{self.spec.psk}"\n'
                           if self.spec.auth == "psk" else "")
        secrets.chmod(0o600)
        if not self.nss.exists():
            self._nss()
        nickname = self.spec.cert.name if self.spec.cert is not None else ""
        self.conf.write_text(ipsec_conf(self.spec, nickname))
        self.ctl.unlink(missing_ok=True)
        script = (f"mount -t tmpfs -o mode=755 fipsike-libexec /usr/libexec && mkdir /usr/libexec/ipsec && "
                  f"mount --bind {LIBEXEC} /usr/libexec/ipsec && "
                  f"exec {LIBEXEC}/pluto --nofork --rundir {self.rundir} --nssdir {self.nss} "
                  f"--secretsfile {self.dir}/ipsec.secrets --ipsecdir {self.dir}/ipsec.d --logfile {self.log} "
                  f"--log-no-append --no-dnssec --dumpdir {self.rundir}")
        self.proc = subprocess.Popen(in_netns(self.netns, "/bin/sh", "-c", script), env=self._env(),
                                     stdout=subprocess.DEVNULL, stderr=(self.dir / "pluto.stderr").open("wb"),
                                     start_new_session=True)

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise PeerError(f"pluto exited {self.proc.returncode} at start-up (see {self.log})")
            return self.ctl.exists() and self.whack("--briefstatus", check=False).returncode == 0

        took = wait_for(up, timeout, "pluto's control socket")
        res = run([str(LIBEXEC / "addconn"), "--config", str(self.conf), "--ctlsocket", str(self.ctl), "gw"],
                  env=self._env(), check=False)
        if res.returncode != 0:
            failed = [ln for ln in self.log_text().splitlines() if "failed to add connection" in ln]
            reason = failed[-1].split(": ", 1)[-1] if failed else "(no reason in pluto's log)"
            raise PeerError(f"pluto addconn exit {res.returncode}: {reason}")
        return took

    def stop(self) -> None:
        if self.proc is not None:
            self.whack("--shutdown", check=False, timeout=10)
            stop_group(self.proc, signal.SIGTERM)
            self.proc = None

    def kill9(self) -> None:
        if self.proc is not None:
            kill9(self.proc)
            self.proc = None

    # --- actions --------------------------------------------------------------------------------
    def whack(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([str(LIBEXEC / "whack"), "--ctlsocket", str(self.ctl), *args], timeout=timeout, check=check,
                   env=self._env())

    def initiate(self, timeout: int = 20) -> tuple[bool, str]:
        """(ok, whack's last lines): whack waits and relays pluto's log until the attempt ends."""
        try:
            res = self.whack("--name", "gw", "--initiate", timeout=timeout, check=False)
        except PeerError as e:
            return False, str(e)
        lines = (res.stdout + res.stderr).strip().splitlines()
        ok = res.returncode == 0 and bool(self.child_spis())
        return ok, " | ".join(lines[-3:])

    def rekey_child(self) -> None:
        self.whack("--name", "gw", "--rekey-ipsec", "--asynchronous")

    def rekey_ike(self) -> None:
        self.whack("--name", "gw", "--rekey-ike", "--asynchronous")

    def terminate(self) -> None:
        self.whack("--name", "gw", "--terminate", check=False, timeout=20)

    def ike_sas(self) -> list[dict[str, Any]]:
        """Each IKE SA (pluto shows no IKE SPIs) with its Child SAs, from --showstates."""
        text = self.whack("--showstates").stdout
        states = {int(m.group(1)): m.group(2) for m in _STATE.finditer(text)}
        spis: dict[int, tuple[int, int]] = {}
        for m in _SPIS.finditer(text):
            a, b, b_at = int(m.group(2), 16), int(m.group(4), 16), m.group(5)
            # esp.X@ADDR: ADDR receives on X. The one at pluto's own address is pluto's inbound SPI.
            spis[int(m.group(1))] = (b, a) if b_at.split(":")[0] == self.spec.local_addr else (a, b)
        ikes = [n for n, s in states.items() if s.endswith("_IKE_SA") or "IKE_SA" in s and "CHILD" not in s]
        children = [{"state": s, "spi_in": spis.get(n, (0, 0))[0], "spi_out": spis.get(n, (0, 0))[1], "serial": n}
                    for n, s in states.items() if "CHILD_SA" in s]
        return [{"state": "ESTABLISHED" if any("ESTABLISHED_IKE" in states[n] for n in ikes) else "OTHER",
                 "serials": ikes, "children": children}] if ikes else []

    def child_spis(self) -> set[tuple[int, int]]:
        return {(c["spi_in"], c["spi_out"]) for sa in self.ike_sas() for c in sa["children"]
                if c["state"] == "STATE_V2_ESTABLISHED_CHILD_SA" and c["spi_in"]}

    def traffic(self) -> dict[int, tuple[int, int]]:
        """pluto's own byte counters per Child SA state: serial -> (inBytes, outBytes) (`--trafficstatus`)."""
        text = self.whack("--trafficstatus").stdout
        return {int(m.group(1)): (int(m.group(2)), int(m.group(3)))
                for m in re.finditer(r"#(\d+): .*?inBytes=(\d+), outBytes=(\d+)", text)}

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
