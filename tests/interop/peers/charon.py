"""strongSwan's charon (charon-systemd, 5.9.8) as a matrix peer, in a network namespace.

Its own STRONGSWAN_CONF, VICI socket and log under `workdir` (tmpfs /run inside the guest: the
guest's root is read-only), the swanctl config generated from a PeerSpec, and every action over
swanctl / VICI. With kernel-netlink it installs real ESP SAs (guest); on the host kernel, which
has no ESP, only IKE works (Child SA installs fail), as the recipe says.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from tests.interop.peers.common import PeerError, in_netns, kill9, run, stop_group, wait_for
from tests.interop.peers.spec import PeerSpec

CHARON = "/usr/sbin/charon-systemd"

STRONGSWAN_CONF = """charon {{
  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints revocation kdf kernel-netlink socket-default vici
  port = 500
  port_nat_t = 4500
  install_routes = no
  retransmit_tries = 3
  retransmit_timeout = 2.0
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
      ike = 2
      cfg = 2
      flush_line = yes
      append = no
    }}
  }}
}}
swanctl {{
  load = pem pkcs1 pkcs8 x509 openssl
}}
"""


def swanctl_conf(spec: PeerSpec) -> str:
    ike, esp = spec.strongswan()
    secrets = ""
    if spec.auth == "null":
        local_auth = "      auth = null\n"
        remote_auth = "      auth = null\n"
    elif spec.auth == "psk":
        local_auth = f"      auth = psk\n      id = {spec.local_id}\n"
        remote_auth = f"      auth = psk\n      id = {spec.remote_id}\n"
        secrets = (f"secrets {{\n  ike-gw {{\n    id-local = {spec.local_id}\n    id-remote = {spec.remote_id}\n"
                   f"    secret = \"{spec.psk}\"\n  }}\n}}\n")
    else:
        local_auth = f"      auth = pubkey\n      certs = own.pem\n      id = {spec.local_id}\n"
        remote_auth = f"      auth = pubkey\n      id = {spec.remote_id}\n"
    return (
        "connections {\n  gw {\n    version = 2\n"
        f"    local_addrs = {spec.local_addr}\n    remote_addrs = {spec.remote_addr}\n"
        f"    proposals = {ike}\n    send_cert = always\n    rekey_time = 0\n    reauth_time = 0\n"
        f"    dpd_delay = {spec.dpd_delay}\n    fragmentation = yes\n"
        f"    local {{\n{local_auth}    }}\n    remote {{\n{remote_auth}    }}\n"
        "    children {\n      net {\n"
        f"        local_ts = {spec.local_ts}\n        remote_ts = {spec.remote_ts}\n"
        f"        esp_proposals = {esp}\n        rekey_time = 0\n        start_action = none\n"
        "        dpd_action = clear\n      }\n    }\n  }\n}\n" + secrets)


class CharonPeer:
    name = "charon"

    def __init__(self, workdir: Path, netns: str, spec: PeerSpec) -> None:
        self.dir = workdir
        self.netns = netns
        self.spec = spec
        self.vici = workdir / "charon.vici"
        self.log = workdir / "charon.log"
        self.conf = workdir / "strongswan.conf"
        self.swanctl_dir = workdir / "swanctl"
        self.proc: subprocess.Popen[bytes] | None = None

    # --- life cycle ---------------------------------------------------------------------------
    def _write(self) -> None:
        for sub in ("x509", "x509ca", "private"):
            (self.swanctl_dir / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(STRONGSWAN_CONF.format(vici=self.vici, log=self.log))
        (self.swanctl_dir / "swanctl.conf").write_text(swanctl_conf(self.spec))
        if self.spec.cert is not None:
            shutil.copy(self.spec.cert.cert, self.swanctl_dir / "x509" / "own.pem")
            shutil.copy(self.spec.cert.key, self.swanctl_dir / "private" / "own.key")
            for i, p in enumerate(self.spec.cert.chain):
                shutil.copy(p, self.swanctl_dir / "x509ca" / f"inter{i}.pem")
        for i, root in enumerate(self.spec.trust):
            shutil.copy(root, self.swanctl_dir / "x509ca" / f"root{i}.pem")

    def _env(self) -> dict[str, str]:
        return {**os.environ, "STRONGSWAN_CONF": str(self.conf), "SWANCTL_DIR": str(self.swanctl_dir)}

    def start(self, timeout: float = 15.0) -> float:
        """Start charon and load the config; seconds until it answered."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write()
        self.vici.unlink(missing_ok=True)
        self.proc = subprocess.Popen(in_netns(self.netns, CHARON), env=self._env(), stdout=subprocess.DEVNULL,
                                     stderr=(self.dir / "charon.stderr").open("wb"), start_new_session=True)

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise PeerError(f"charon exited {self.proc.returncode} at start-up (see {self.log})")
            return self.vici.exists() and self.swanctl("--stats", check=False).returncode == 0

        took = wait_for(up, timeout, "charon's VICI socket")
        self.swanctl("--load-all", "--file", str(self.swanctl_dir / "swanctl.conf"))
        return took

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGTERM)
            self.proc = None

    def kill9(self) -> None:
        if self.proc is not None:
            kill9(self.proc)
            self.proc = None

    # --- actions --------------------------------------------------------------------------------
    def swanctl(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["swanctl", *args, "--uri", f"unix://{self.vici}"], timeout=timeout, check=check, env=self._env())

    def initiate(self, timeout: int = 15) -> tuple[bool, str]:
        """(ok, swanctl's last lines): blocks until the Child SA is up or the attempt failed."""
        res = self.swanctl("--initiate", "--child", "net", "--timeout", str(timeout), timeout=timeout + 10,
                           check=False)
        lines = (res.stdout + res.stderr).strip().splitlines()
        return res.returncode == 0, " | ".join(lines[-3:])

    def rekey_child(self) -> None:
        self.swanctl("--rekey", "--child", "net")

    def rekey_ike(self) -> None:
        self.swanctl("--rekey", "--ike", "gw")

    def terminate(self) -> None:
        self.swanctl("--terminate", "--ike", "gw", "--timeout", "10", timeout=20, check=False)

    def ike_sas(self) -> list[dict[str, Any]]:
        """Each IKE SA: state, spi_i, spi_r, and its Child SAs (state, spi_in, spi_out as ints), from VICI."""
        import vici  # strongSwan's own client (pip install vici)

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(str(self.vici))
            sas = list(vici.Session(s).list_sas())
        except OSError as e:
            raise PeerError(f"charon VICI list-sas: {e.strerror or e}") from e
        finally:
            s.close()
        out: list[dict[str, Any]] = []
        for entry in sas:
            for _name, ike in entry.items():
                children = [{"state": _s(c.get("state")), "spi_in": int(_s(c.get("spi-in")), 16),
                             "spi_out": int(_s(c.get("spi-out")), 16)}
                            for c in dict(ike.get("child-sas", {})).values()]
                out.append({"state": _s(ike.get("state")), "spi_i": _s(ike.get("initiator-spi")),
                            "spi_r": _s(ike.get("responder-spi")), "children": children,
                            "nat": _s(ike.get("nat-any")) == "yes"})
        return out

    def child_spis(self) -> set[tuple[int, int]]:
        """(spi_in, spi_out) of the installed Child SAs, from charon's point of view."""
        return {(c["spi_in"], c["spi_out"]) for sa in self.ike_sas() if sa["state"] == "ESTABLISHED"
                for c in sa["children"] if c["state"] == "INSTALLED"}

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _s(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return "" if v is None else str(v)
