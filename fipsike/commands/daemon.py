"""`fipsike daemon`: run the IKE daemon in the foreground (systemd: Type=notify)."""

from __future__ import annotations

import argparse
import dataclasses
import grp
import socket
import sys
from pathlib import Path
from typing import Any

from compliance.modes import FipsMode, ModeError
from fipsike.commands.importp12 import CommandError, add_token_options, token_config
from fipsike.commands.selftest import add_fips_mode_option, decide_mode, start_module
from fipsike.config.secrets import SecretsFilePin
from fipsike.daemon.config_seam import (
    DEFAULT_CONFIG,
    DEFAULT_CTL,
    DEFAULT_IPSECDIR,
    DEFAULT_SECRETS,
    ConfigError,
    ConfigPaths,
    with_reqids,
)
from fipsike.daemon.ipsecconf import IpsecConfLoader

MEMORY_REFUSED = ("--kernel memory keeps SAs in this process only (for tests): refused in FIPS mode required, "
                  "where every SA must be the kernel's")


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "daemon", help="run the IKEv2 daemon in the foreground",
        description="Run the self-tests, load the configuration, remove fipsike's XFRM state left by a crash, "
                    "open UDP 500/4500 and the control socket, then carry out each connection's auto= action. "
                    "Logs one line per event on stderr. SIGTERM deletes every SA and exits 0; SIGHUP reloads.")
    p.add_argument("--config", metavar="FILE", default=str(DEFAULT_CONFIG),
                   help=f"libreswan's ipsec.conf (default {DEFAULT_CONFIG})")
    p.add_argument("--secrets", metavar="FILE", default=str(DEFAULT_SECRETS),
                   help=f"secrets file (default {DEFAULT_SECRETS})")
    p.add_argument("--ipsecdir", metavar="DIR", default=str(DEFAULT_IPSECDIR),
                   help=f"certs/, cacerts/, private/, crls/ and policies/ (default {DEFAULT_IPSECDIR})")
    p.add_argument("--ctl", metavar="PATH", default=str(DEFAULT_CTL),
                   help=f"control socket (default {DEFAULT_CTL})")
    p.add_argument("--ctl-group", metavar="GROUP", default=None,
                   help="a group whose members may use the control socket besides root")
    p.add_argument("--kernel", choices=("xfrm", "memory"), default="xfrm",
                   help="SA backend: xfrm (the kernel) or memory (tests only; refused in FIPS mode required)")
    add_fips_mode_option(p)
    add_token_options(p, required=False, daemon=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fipsike.daemon.eventlog import EventLog
    from fipsike.daemon.runtime import Daemon, Options, ReqidBook, serve
    from fipsike.daemon.udp import IkeSockets
    from fipsike.kernel.api import Kernel
    from fipsike.kernel.memory import MemoryKernel
    from fipsike.kernel.types import KernelError
    from fipsike.kernel.xfrm import XfrmKernel

    try:
        decision = decide_mode(args)
    except ModeError as exc:
        print(f"fipsike daemon: error: {exc}", file=sys.stderr)
        return 2
    if args.kernel == "memory" and decision.mode is FipsMode.REQUIRED:
        print(f"fipsike daemon: error: {MEMORY_REFUSED}", file=sys.stderr)
        return 2
    log = EventLog(level="debug" if args.verbose else "info")
    paths = ConfigPaths(Path(args.config), Path(args.secrets), Path(args.ipsecdir))
    loader = IpsecConfLoader(decision.mode)
    # 1. the configuration's text (no key touched yet), so the self-tests check its invariants
    try:
        ctl_group = None if args.ctl_group is None else grp.getgrnam(args.ctl_group).gr_gid
        loaded = loader.parse(paths)
    except KeyError:
        print(f"fipsike daemon: error: --ctl-group {args.ctl_group}: no such group", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"fipsike daemon: error: {exc}", file=sys.stderr)
        return 1
    # 2. self-tests: nothing below runs on a module that is not operational
    try:
        # libreswan gives the token PIN in ipsec.secrets (`: PIN "..."`): used unless --pin-file/--pin-env say
        pin_entry = loaded.secrets.pin()
        pin_source = SecretsFilePin(pin_entry.location.file) if pin_entry is not None else None
        pkcs11 = token_config(args, required=False, pin_source=pin_source)
    except CommandError as exc:
        print(f"fipsike daemon: error: {exc}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {"pkcs11": pkcs11} if pkcs11 is not None else {}
    options["config"] = loaded.invariant_config()
    module = start_module(args, "daemon", **options)
    if isinstance(module, int):
        return module
    log("info", "selftest-passed", None, f"module operational, FIPS mode {decision.mode.value}"
        + (f", token {pkcs11.token_label}" if pkcs11 is not None else "")
        + ", invariants checked over the loaded config")
    # certificates and keys: they need the operational module
    reqids = ReqidBook()
    try:
        config = dataclasses.replace(with_reqids(loader.build(loaded, paths, module.router), reqids),
                                     ctl_group=ctl_group)
    except ConfigError as exc:
        print(f"fipsike daemon: error: {exc}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        log("warning", "config-warning", None, warning)
    log("info", "config-loaded", None, f"{len(config.by_name())} connections from {paths.config}")
    # 3. the kernel, with what a crashed predecessor left behind removed
    kernel: Kernel
    try:
        kernel = XfrmKernel(module.router) if args.kernel == "xfrm" else MemoryKernel()
        report = kernel.flush_owned()
    except KernelError as exc:
        print(f"fipsike daemon: error: {exc}", file=sys.stderr)
        return 1
    log("info", "kernel-cleanup", None, f"removed {report.sas_removed} stale SAs and {report.policies_removed} "
                                        f"stale policies ({args.kernel})")
    # 4. sockets
    try:
        sockets = IkeSockets()
    except OSError as exc:
        kernel.close()
        print(f"fipsike daemon: error: IKE sockets: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for why in sockets.skipped:
        log("warning", "socket-skipped", None, why)
    log("info", "listening", None, ", ".join(
        f"udp{'6' if s.family == socket.AF_INET6 else '4'}/{s.port}" for s in sockets.sockets))
    # 5. the loop: auto= actions, control socket, signals
    try:  # the opportunistic groups are read here (fipsike.daemon.opportunistic)
        daemon = Daemon(module.router, kernel, sockets, config, Options(paths, Path(args.ctl), args.kernel), log,
                        reqids=reqids, loader=lambda p, r: dataclasses.replace(loader(p, r), ctl_group=ctl_group))
    except ConfigError as exc:
        print(f"fipsike daemon: error: {exc}", file=sys.stderr)
        sockets.close()
        kernel.close()
        return 1
    try:
        return serve(daemon)
    except OSError as exc:  # the control socket could not be opened
        print(f"fipsike daemon: error: {exc.strerror or exc}", file=sys.stderr)
        sockets.close()
        kernel.flush_owned()
        kernel.close()
        return 1
