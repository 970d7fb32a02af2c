"""The interop matrix's parts: real peers, the network between them, and fipsike's side.

- `topology`: network namespaces joined directly or through a NAT (masquerading middle namespace),
  pings, a tcpdump check that only ESP (or ESP in UDP 4500) carries the inner traffic, and the
  kernel's per-SA counters read through fipsike's own XFRM code (keys never read, never logged).
- `pki`: the certificates of one matrix run (ECDSA P-256 / P-384, RSA-3072, a 2-intermediate
  chain, and the bad ones of the negative cells).
- `charon`: strongSwan's charon-systemd driven over swanctl.  `pluto`: libreswan's unpacked pluto
  driven with whack.  Both write only under their own folder (tmpfs /run inside the guest).
- `daemon_side`: fipsike's side of a cell as the real daemon (a `fipsike daemon` process, its config
  written by one function, driven through `fipsike up` and the control socket; kill -9 and restart).
- `fipsike_side`: the `FipsikeSide` interface and the in-process engine + XfrmKernel implementation.
- `cells` and `runner`: the matrix's cells and the checks run on each (scripts/interop-matrix).

Shipped under tests/ (not scripts/): every part drives test-only certificates, throwaway
namespaces and daemons started with test configs; nothing here is for a deployment.
"""
