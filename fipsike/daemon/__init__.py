"""fipsike.daemon: the composition root, and the only asyncio code in fipsike.

    config_seam   DaemonConfig (connections + their auto= action + paths) and the loader slot
    udp           the IKE sockets: UDP 500/4500, IPv4/IPv6, PKTINFO, NAT-T, IPsec policy bypass
    installer     engine actions -> Kernel calls (SAs both directions, policies, traps, counters)
    control       the control socket (JSON Lines, SO_PEERCRED) and its requests
    client        the synchronous client the CLI verbs use
    runtime       the Daemon: start-up order, the asyncio loop, signals, reload, shutdown
    sdnotify      systemd's notify protocol (READY, STATUS, WATCHDOG), written by hand
    eventlog      one stderr line per event, stable names, no secrets

Nothing below this package learns about asyncio: the engine is sans-I/O and the kernel backend
is blocking netlink, called from the loop thread (each call is a local round trip).
"""
