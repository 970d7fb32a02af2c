"""The IKEv2 engine: datagrams, addresses and a clock in; actions out (sans-I/O).

    engine = Engine(router, [conn])
    actions = engine.initiate("gw", now)
    actions = engine.receive(datagram, src=(ip, port), dst=(ip, port), now=now, wall=utc_now)
    actions = engine.timer(now)

The driver carries out the returned actions in order (send, install, arm a
timer, log). The engine reads no clock, opens no socket and touches no kernel:
that keeps every test deterministic. Its parts:
- exchanges/: one ExchangeTask per exchange (fipsike.ike.tasks), registered in
  exchanges/registrations.py; exchanges/dispatch.py is the task manager (routing,
  message IDs, the per-SA task queue, the timer sweep). Exchanges see this engine
  only as an IkeContext (fipsike.ike.context).
- sa_table.py: every IKE and Child SA and all their indices; deadlines.py: the
  timer heap; peer_validator.py: the peer's chain, CRLs and the verdict cache.
- this module: the public API, sending, Child SA install/removal, the policy
  checks and the small caches.

The driver's side of the contract:
- `now` is any monotonic clock in seconds. Certificate validity needs the wall-clock time
  (timezone-aware UTC): the driver passes it to receive() as `wall`, like `now`; a driver that
  does not is served by the `wallclock` callable it gave the constructor, and only failing both
  does the engine fall back to the system clock (drivers written before `wall` existed).
- SendDatagram(data, src, dst): `data` is the IKE message. On port 4500 the
  driver adds the 4-octet non-ESP marker (RFC 3948 2.2) when sending and strips
  it when receiving (and passes ESP-in-UDP to the kernel, not here). `dst` of
  receive() is the local address and port the datagram arrived on.
- ArmTimer(at): call timer(now) once now >= at. Only the latest ArmTimer
  matters; an early or spurious timer() call is harmless.
- InstallChildSa / DeleteChildSa: the kernel layer installs both directions;
  key bytes leave the provider only through router.release_esp_key.
- Inbound Child SA SPIs: from the `spis` SpiAllocator the driver may inject
  (fipsike.ike.spis; the daemon's reserves them in the kernel with ALLOCSPI, and
  InstallChildSa's inbound SPI is then one it allocated); an SPI offered by an
  exchange that ends without a Child SA is given back through its release().
- Kernel events: expire(spi_in, hard, now) for XFRM EXPIRE; initiate() for
  an ACQUIRE (the connection and child that own the reqid).
- DeadPeer(action): "clear" = nothing more; "hold" = the daemon installs hold
  shunts; "restart" = the engine has already started a new IKE SA.
- status() gives plain data (no keys) for `fipsike status --json`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from certs.signature_hash import HashAlgorithmId, announced_hashes
from fipsike.ike import wire
from fipsike.ike.actions import (
    Action,
    Address,
    ArmTimer,
    DeadPeer,
    DeleteChildSa,
    IkeSaDeleted,
    IkeSaFailed,
    InstallChildSa,
    Log,
    SaDirection,
    SendDatagram,
)
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.cookies import CookieJar
from fipsike.ike.deadlines import Deadlines, sa_deadline
from fipsike.ike.errors import CodecError
from fipsike.ike.exchanges import dispatch, ike_sa_init
from fipsike.ike.exchanges.registrations import default_registry
from fipsike.ike.message import Message
from fipsike.ike.payloads import Notify, Payload
from fipsike.ike.peer_validator import CrlSource, PeerValidator
from fipsike.ike.proposals import (
    NoProposalChosen,
    Proposal,
    ProposalSpec,
    Protocol,
    Transform,
    TransformType,
    select,
)
from fipsike.ike.registry import ExchangeType, NotifyType
from fipsike.ike.retransmit import PendingRequest
from fipsike.ike.sa import ChildSa, ChildState, IkeSa, IkeState, Task
from fipsike.ike.sa_table import SaTable
from fipsike.ike.spis import SPI_MIN, RandomSpis, SpiAllocator, SpiRequest, SpiUnavailable
from fipsike.ike.tasks import PER_CHILD, SETUP, SINGLETONS, TaskKind
from providers.algorithms import Encryption, HashAlg, Integrity, KeyExchange, Prf
from providers.api import IkeRouter
from providers.errors import ProviderError

HALF_OPEN_TIMEOUT = 30.0  # seconds a responder keeps an IKE SA waiting for IKE_AUTH
REKEYED_SA_TIMEOUT = 30.0  # an old IKE SA kept after a rekey, waiting for the peer's DELETE
NONCE_SIZE = 32  # >= half the PRF key size and >= 16 octets (RFC 7296 2.10)
# reqids handed out start in the range fipsike.kernel's Ownership claims (0x4649xxxx, "FI")
REQID_BASE = 0x4649_0001
INVALID_SPI_PER_SECOND = 10
T = TypeVar("T")
HALF_OPEN_PER_SOURCE = 10


class Engine:
    def __init__(self, router: IkeRouter, connections: Iterable[Connection] = (), *, cookie_threshold: int = 100,
                 wallclock: Callable[[], datetime] | None = None, reqid_base: int = REQID_BASE,
                 verdict_cache_ttl: float = 300.0,
                 half_open_per_source: int = HALF_OPEN_PER_SOURCE, crl_source: CrlSource | None = None,
                 spis: SpiAllocator | None = None) -> None:
        self.router = router
        # inbound Child SA SPIs: the daemon's kernel reserves them (ALLOCSPI), else random (fipsike.ike.spis)
        self.spis: SpiAllocator = spis or RandomSpis(router)
        # SPIs allocated and offered but not yet in a Child SA: our SPI -> (its IKE SA, the request)
        self._unclaimed: dict[int, tuple[IkeSa, SpiRequest]] = {}
        self.policy = router.policy
        self.fips = bool(getattr(self.policy, "fips", False))
        # SIGNATURE_HASH_ALGORITHMS (RFC 7427 4): the SHA-2 hashes we verify signatures with under the
        # policy (SHA-1 is never announced, even where the default profile still verifies it)
        self.announced_hashes: tuple[int, ...] = tuple(
            int(h) for h in announced_hashes(self.policy) if h is not HashAlgorithmId.SHA1)
        self.connections: dict[str, Connection] = {}
        for c in connections:
            self.add_connection(c)
        self.sas = SaTable(on_add=self.touch)
        self.cookies = CookieJar(router, threshold=cookie_threshold)
        self.registry = default_registry()  # the ExchangeTasks, by task kind and by request
        # beside the cookie threshold (all sources together): half-open SAs one address may hold, so one
        # host that answers cookies cannot fill the table alone (strongSwan's block_threshold)
        self.half_open_per_source = half_open_per_source
        self._out: list[Action] = []
        self._reqids: dict[tuple[str, str], int] = {}
        self._next_reqid = reqid_base
        # certificate validity is judged against the real UTC time unless a test injects one
        self.wallclock: Callable[[], datetime] = wallclock or _system_wallclock
        self._wall: datetime | None = None  # the `wall` of the receive() call under way
        self.now = 0.0
        # the peer's chain against the trust anchors and the CRLs, with the verdict cache
        self.peers = PeerValidator(router, crl_source, verdict_cache_ttl)
        self._idents: dict[int, tuple[Any, int]] = {}
        self._ident_seq = 0
        self._memo: dict[Any, Any] = {}
        self.deadlines = Deadlines(self._live)
        self._touched = self.deadlines.touched
        self._invalid_spi_window = -1e18
        self._invalid_spi_count = 0
        self._allowed: dict[Transform, bool] = {}

    # --- configuration --------------------------------------------------------------
    def add_connection(self, conn: Connection) -> None:
        self.connections[conn.name] = conn.capped(self.fips)

    def remove_connection(self, name: str) -> None:
        self.connections.pop(name, None)

    # --- entry points ------------------------------------------------------------------
    def initiate(self, conn_name: str | Connection, now: float, child: str | None = None) -> list[Action]:
        """Start an IKE SA for a connection (by name, or a Connection, which is added) with its first
        Child SA, or `child`. When an IKE SA to the peer is already up and `child` is named, only the
        Child SA is created (CREATE_CHILD_SA)."""
        self.now = now
        if isinstance(conn_name, Connection):
            if conn_name.name not in self.connections:
                self.add_connection(conn_name)
            conn_name = conn_name.name
        conn = self.connections[conn_name]
        # only a named Child SA looks for an IKE SA to reuse: a scan of the table, which a plain
        # initiate (one per new IKE SA: a load generator's, an acquire's) must not pay
        existing = None if child is None else next(
            (sa for sa in self.sas.established() if sa.conn.name == conn_name), None)
        if existing is not None and child is not None:
            self.queue(existing, Task(TaskKind.CREATE_CHILD, child=child), now)
        else:
            cfg = conn.child(child) if child else (conn.children[0] if conn.children else None)
            ike_sa_init.create(self, conn, cfg, now)
        return self._flush()

    def receive(self, datagram: bytes, src: Address, dst: Address, now: float,
                wall: datetime | None = None) -> list[Action]:
        """A datagram arrived. `wall`: the wall-clock time (timezone-aware UTC) for certificate validity."""
        self.now = now
        self._wall = wall
        try:
            return self._receive(datagram, src, dst, now)
        finally:
            self._wall = None

    def wall(self) -> datetime:
        """The wall-clock time certificate validity is judged at in this call."""
        return self._wall if self._wall is not None else self.wallclock()

    def _receive(self, datagram: bytes, src: Address, dst: Address, now: float) -> list[Action]:
        try:
            msg = Message.parse(datagram)
        except CodecError as e:
            self.log("debug", "drop", f"unparsable message from {src[0]}:{src[1]}: {e}")
            self._answer_bad_init(datagram, e, src, dst)
            return self._flush()
        try:
            # an error inside one IKE SA's handling closes that SA (dispatch, close_on_error); what
            # reaches here happened outside any SA (an IKE_SA_INIT request before its SA exists)
            dispatch.receive(self, msg, datagram, src, dst, now)
        except Exception as e:  # noqa: BLE001 - one bad datagram must not stop the daemon
            # only the type: an unexpected exception's text is not vetted for secrets
            event = "provider-error" if isinstance(e, ProviderError) else "internal-error"
            self.log("error", event, f"message from {src[0]} dropped: {type(e).__name__}")
        return self._flush()

    def _answer_bad_init(self, datagram: bytes, err: CodecError, src: Address, dst: Address) -> None:
        """An IKE_SA_INIT request we cannot take gets its notify in a plain response (RFC 7296 2.21.1,
        3.10.1: UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_MAJOR_VERSION, INVALID_SYNTAX); anything else
        is dropped."""
        if err.notify is None or len(datagram) < 28:
            return
        spi_r, exchange, flags = datagram[8:16], datagram[18], datagram[19]
        if exchange != ExchangeType.IKE_SA_INIT or flags & 0x20 or spi_r != bytes(8):
            return
        body = Notify.error(err.notify, err.notify_data)
        msg = Message(datagram[0:8], bytes(8), int(ExchangeType.IKE_SA_INIT), 0, False, True, (body,))
        self.emit(SendDatagram(msg.serialize(), dst, src))

    def timer(self, now: float) -> list[Action]:
        self.now = now
        dispatch.timer(self, now)  # an error closes the IKE SA it happened in (close_on_error)
        return self._flush()

    def rekey_child(self, spi_in: int, now: float) -> list[Action]:
        self.now = now
        found = self.find_child(spi_in)
        if found:
            self.queue(found[0], Task(TaskKind.REKEY_CHILD, spi=spi_in), now)
        return self._flush()

    def rekey_ike(self, ike_sa: str, now: float) -> list[Action]:
        self.now = now
        sa = self.find_ike(ike_sa)
        if sa is not None:
            self.queue(sa, Task(TaskKind.REKEY_IKE), now)
        return self._flush()

    def delete_child(self, spi_in: int, now: float) -> list[Action]:
        self.now = now
        found = self.find_child(spi_in)
        if found:
            self.queue(found[0], Task(TaskKind.DELETE_CHILD, spi=spi_in), now)
        return self._flush()

    def delete_ike(self, ike_sa: str, now: float) -> list[Action]:
        self.now = now
        sa = self.find_ike(ike_sa)
        if sa is not None:
            if sa.state == IkeState.ESTABLISHED:
                self.queue(sa, Task(TaskKind.DELETE_IKE), now)
            else:
                self.drop_ike(sa, "deleted locally")
        return self._flush()

    def terminate(self, conn_name: str, now: float) -> list[Action]:
        self.now = now
        for sa in list(self.sas):
            if sa.conn.name == conn_name:
                if sa.state == IkeState.ESTABLISHED:
                    self.queue(sa, Task(TaskKind.DELETE_IKE), now)
                else:
                    self.drop_ike(sa, "terminated")
        return self._flush()

    def expire(self, spi_in: int, hard: bool, now: float) -> list[Action]:
        """The kernel's EXPIRE for an inbound SPI: soft -> rekey, hard -> the SA is gone, delete it."""
        self.now = now
        found = self.find_child(spi_in)
        if found:
            sa, child = found
            if hard:
                self.queue(sa, Task(TaskKind.DELETE_CHILD, spi=spi_in), now)
            elif child.state == ChildState.INSTALLED:
                self.queue(sa, Task(TaskKind.REKEY_CHILD, spi=spi_in), now)
        return self._flush()

    def liveness(self, ike_sa: str, now: float) -> list[Action]:
        """Send a liveness check (an empty INFORMATIONAL, RFC 7296 2.4) now."""
        self.now = now
        sa = self.find_ike(ike_sa)
        if sa is not None:
            self.queue(sa, Task(TaskKind.DPD), now)
        return self._flush()

    # --- lookups ----------------------------------------------------------------------
    def find_ike(self, name: str) -> IkeSa | None:
        return self.sas.by_name(name)

    def find_child(self, spi_in: int) -> tuple[IkeSa, ChildSa] | None:
        return self.sas.find_child(spi_in)

    def ike_sas(self) -> list[IkeSa]:
        return list(self.sas)

    def status(self, now: float | None = None) -> list[dict[str, Any]]:
        """Plain data for `fipsike status --json`: IKE SAs and their Child SAs, no key material."""
        t = self.now if now is None else now
        out: list[dict[str, Any]] = []
        for sa in self.sas:
            out.append({
                "name": sa.name, "connection": sa.conn.name, "state": sa.state.value,
                "initiator": sa.initiator, "local": f"{sa.local[0]}:{sa.local[1]}",
                "remote": f"{sa.remote[0]}:{sa.remote[1]}",
                "local_id": str(sa.local_id) if sa.local_id else None,
                "remote_id": str(sa.remote_id) if sa.remote_id else None,
                "suite": str(sa.suite) if sa.suite else None,
                "nat": {"local": sa.nat_local, "remote": sa.nat_remote},
                "established_for": round(t - sa.established_at, 1) if sa.established_at else None,
                "rekey_in": round(sa.rekey_at - t, 1) if sa.rekey_at else None,
                "children": [{
                    "name": c.name, "state": c.state.value, "reqid": c.reqid, "mode": c.mode,
                    "spi_in": f"{c.spi_in:08x}", "spi_out": f"{c.spi_out:08x}", "suite": str(c.suite),
                    "local_ts": [f"{x.start}-{x.end}" for x in c.local_ts],
                    "remote_ts": [f"{x.start}-{x.end}" for x in c.remote_ts],
                    "rekey_in": round(c.rekey_at - t, 1) if c.rekey_at else None,
                    "expire_in": round(c.expire_at - t, 1) if c.expire_at else None,
                } for c in sa.children.values()],
            })
        return out

    # --- output ------------------------------------------------------------------------
    def emit(self, action: Action) -> None:
        self._out.append(action)

    def log(self, level: str, event: str, message: str) -> None:
        self._out.append(Log(level, event, message))

    def _flush(self) -> list[Action]:
        if self._unclaimed:
            self._release_unclaimed()
        for sa in self._touched.values():
            # an established SA with no request of ours in flight is idle until the next exchange: its
            # SK_e/SK_a contexts (OpenSSL state, most of an idle SA's memory) are built again then
            if sa.state is IkeState.ESTABLISHED and sa.pending is None and sa.keys is not None:
                sa.keys.release_contexts()
        out = self._out
        self._out = []
        nxt = self._rearm()
        if nxt is not None:
            out.append(ArmTimer(nxt))
        return out

    # --- deadlines: a heap of (when, seq, IKE SA), so a packet or a timer costs O(log n), not O(n) ---
    def invalid_spi_allowed(self, now: float) -> bool:
        """At most INVALID_SPI_PER_SECOND INVALID_IKE_SPI answers per second (RFC 7296 2.21.4: rate-limited)."""
        if now - self._invalid_spi_window >= 1.0:
            self._invalid_spi_window, self._invalid_spi_count = now, 0
        self._invalid_spi_count += 1
        return self._invalid_spi_count <= INVALID_SPI_PER_SECOND

    def touch(self, sa: IkeSa) -> None:
        """`sa` changed in this call: its next deadline is recomputed before the call returns."""
        self._touched[id(sa)] = sa  # Deadlines.touch, inlined: called several times per message

    def _live(self, sa: IkeSa) -> bool:
        return self.sas.by_spi.get(sa.our_spi) is sa

    def _rearm(self) -> float | None:
        return self.deadlines.rearm(self.sas, len(self.sas.by_spi))

    def due_sas(self, now: float) -> list[IkeSa]:
        """Pop the IKE SAs whose deadline has come (each once)."""
        return self.deadlines.due(now)

    def next_deadline(self) -> float | None:
        """The earliest deadline over every IKE SA (a full scan; the heap gives the same answer)."""
        best: float | None = None
        for sa in self.sas:
            d = sa_deadline(sa)
            if d is not None and (best is None or d < best):
                best = d
        return best

    def ident(self, obj: object) -> int:
        """A token for this very object (never reused for another while the table lives, as the
        table holds the object): memo keys built from it skip hashing certificates by value."""
        hit = self._idents.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        if len(self._idents) >= 4096:
            self._idents.clear()  # tokens keep counting up: an old token never names a new object
        self._ident_seq += 1
        self._idents[id(obj)] = (obj, self._ident_seq)
        return self._ident_seq

    def text(self, obj: Any, render: Callable[[Any], str] = str) -> str:
        """render(obj) (str by default) for an immutable object that recurs (a negotiated suite, a
        configured identity, selectors), remembered by the object's identity for log lines."""
        got: str = self.memo(("text", self.ident(obj), render), lambda: render(obj))
        return got

    def memo(self, key: Any, build: Callable[[], T]) -> T:
        """A small per-engine cache for values derived from configuration, certificates or a peer's
        recurring offers. Keys compare by value; use ident(obj) in a key for a long-lived object
        (a connection, a certificate) rather than hashing it by value every time."""
        try:
            hit: T = self._memo[key]
            return hit
        except KeyError:
            pass
        if len(self._memo) >= 4096:
            self._memo.clear()
        value = self._memo[key] = build()
        return value

    def select(self, offered: Sequence[Proposal], local: Sequence[ProposalSpec], protocol: Protocol,
               additional: bool = False) -> Proposal:
        """proposals.select under this engine's policy, remembered per (offer, configuration): a peer
        sends the same proposals every time, only the SPIs differ. Raises NoProposalChosen."""
        key = ("select", tuple(Proposal(p.number, p.protocol, b"", p.transforms) for p in offered),
               tuple(local), protocol, additional)
        got = self._memo.get(key)
        if got is None:
            try:
                got = select(key[1], local, self.allowed, protocol, additional=additional)
            except NoProposalChosen as e:
                got = e
            if len(self._memo) >= 4096:
                self._memo.clear()
            self._memo[key] = got
        if isinstance(got, NoProposalChosen):
            raise NoProposalChosen(str(got))
        spi = next(p.spi for p in offered if p.number == got.number and p.protocol == got.protocol)
        return Proposal(got.number, got.protocol, spi, got.transforms)

    # --- policy -----------------------------------------------------------------------------
    def allowed(self, t: Transform) -> bool:
        """Is this transform approved by the active provider policy?"""
        got = self._allowed.get(t)
        if got is None:
            got = self._allowed[t] = self._check_allowed(t)
        return got

    def _check_allowed(self, t: Transform) -> bool:
        p = self.policy
        try:
            if t.type == TransformType.ENCR:
                e = Encryption(t.id)
                bits = t.key_bits or {Encryption.ENCR_CHACHA20_POLY1305: 256}.get(e, 0)
                return bool(p.allows_encryption(e, bits))
            if t.type == TransformType.PRF:
                return bool(p.allows_prf(Prf(t.id)))
            if t.type == TransformType.INTEG:
                return bool(p.allows_integrity(Integrity(t.id)))
            if t.type == TransformType.KE:
                return bool(p.allows_ke(KeyExchange(t.id)))
            if t.type == TransformType.ESN:
                return t.id in (0, 1)
        except ValueError:
            return False
        return False

    # --- randomness ---------------------------------------------------------------------------
    def new_ike_spi(self) -> bytes:
        while True:
            spi = bytes(self.router.random(8))
            if spi != bytes(8) and spi not in self.sas.by_spi:
                return spi

    def new_child_spi(self, sa: IkeSa, child: ChildConfig) -> int:
        """Our inbound SPI for a Child SA of `child` on `sa`, from the SpiAllocator. It stays reserved
        for the exchange that offers it: claimed by install_child, released by _release_unclaimed once
        nothing refers to it. Raises SpiUnavailable."""
        req = SpiRequest(sa.local[0], sa.remote[0], self.reqid(sa.conn.name, child.name, child.reqid),
                         child.mode == "transport")
        spare: list[int] = []
        try:
            for _ in range(8):
                spi = self.spis.allocate(req)
                # the engine names Child SAs by inbound SPI across all local addresses: one the kernel
                # gave for another address may collide
                if spi >= SPI_MIN and self.find_child(spi) is None and spi not in self._unclaimed:
                    self._unclaimed[spi] = (sa, req)
                    return spi
                spare.append(spi)
            raise SpiUnavailable("no inbound SPI free of the engine's Child SAs after 8 tries")
        finally:
            for spi in spare:
                if spi not in self._unclaimed:
                    self.spis.release(req, spi)

    def _release_unclaimed(self) -> None:
        """Release the SPIs of exchanges that ended without a Child SA (refused, failed, their IKE SA gone)."""
        for spi, (sa, req) in list(self._unclaimed.items()):
            if self._live(sa) and _offers(sa, spi):
                continue
            del self._unclaimed[spi]
            self.spis.release(req, spi)

    def nonce(self) -> bytes:
        return bytes(self.router.random(NONCE_SIZE))

    def reqid(self, conn: str, child: str, configured: int) -> int:
        if configured:
            return configured
        key = (conn, child)
        if key not in self._reqids:
            self._reqids[key] = self._next_reqid
            self._next_reqid += 1
        return self._reqids[key]

    # --- NAT detection (RFC 7296 2.23) ----------------------------------------------------------
    def nat_hash(self, spi_i: bytes, spi_r: bytes, addr: Address) -> bytes:
        ip = _packed(addr[0])
        return bytes(self.router.digest(HashAlg.SHA1, spi_i + spi_r + ip + addr[1].to_bytes(2, "big")))

    # --- sending -------------------------------------------------------------------------------
    def resend(self, sa: IkeSa, packets: Sequence[bytes]) -> None:
        """Datagrams already built for `sa` (a retransmission, a cached answer) go out again."""
        for p in packets:
            self.emit(SendDatagram(p, sa.local, sa.remote))

    def send_request(self, sa: IkeSa, exchange: ExchangeType, payloads: Sequence[Payload], kind: TaskKind,
                     now: float) -> Message:
        self.touch(sa)
        msg = Message(sa.spi_i, sa.spi_r, int(exchange), sa.next_request_id, sa.initiator, False,
                      tuple(payloads))
        if exchange == ExchangeType.IKE_SA_INIT:
            data = msg.serialize()
            packets = [data]
            sa.init_request = data
        else:
            packets = wire.protect(self.router, sa, msg)
        sa.pending = PendingRequest(msg.message_id, packets, kind, now)
        sa.pending.arm(sa.conn.retransmit, now)
        sa.next_request_id += 1
        self.resend(sa, packets)
        return msg

    def send_response(self, sa: IkeSa, request: Message, payloads: Sequence[Payload]) -> Message:
        self.touch(sa)
        msg = Message(sa.spi_i, sa.spi_r, int(request.exchange), request.message_id, sa.initiator, True,
                      tuple(payloads))
        if request.exchange == ExchangeType.IKE_SA_INIT:
            data = msg.serialize()
            packets = [data]
            sa.init_response = data
        else:
            packets = wire.protect(self.router, sa, msg)
        sa.last_response = (request.message_id, packets)
        sa.expected_request_id = request.message_id + 1
        self.resend(sa, packets)
        return msg

    def send_plain(self, request: Message, payloads: Sequence[Payload], src: Address, dst: Address,
                   spi_r: bytes = bytes(8)) -> None:
        """A response outside any IKE SA (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN)."""
        msg = Message(request.spi_i, spi_r, int(request.exchange), request.message_id, False, True,
                      tuple(payloads))
        self.emit(SendDatagram(msg.serialize(), dst, src))

    # --- the window of one (RFC 7296 2.3) ------------------------------------------------------
    def queue(self, sa: IkeSa, task: Task, now: float) -> None:
        if task.kind in SINGLETONS and any(t.kind == task.kind for t in sa.tasks):
            return
        if task.kind in PER_CHILD and any(
                t.kind == task.kind and t.spi == task.spi for t in sa.tasks):
            return
        sa.tasks.append(task)
        self.touch(sa)
        self.kick(sa, now)

    def kick(self, sa: IkeSa, now: float) -> None:
        """Start queued tasks while nothing is in flight (RFC 7296 2.3): the setup chain (IKE_SA_INIT,
        IKE_INTERMEDIATE, IKE_AUTH) as it comes, other work once the IKE SA is established."""
        while sa.tasks and sa.pending is None and self._live(sa):
            if sa.tasks[0].kind not in SETUP and sa.state not in (IkeState.ESTABLISHED, IkeState.REKEYED):
                return
            task = sa.tasks.pop(0)
            try:
                dispatch.start_task(self, sa, task, now)
            except Exception as e:  # noqa: BLE001 - one SA's failure must not stop the engine
                self.close_on_error(sa, e)
                return

    def close_on_error(self, sa: IkeSa, exc: Exception) -> None:
        """An unexpected error (a ProviderError from the module, or a bug) while handling `sa`: the SA
        is closed locally and its state freed, as aioquic closes a connection, so nothing is left
        half-done without a deadline. Only the exception's type is logged: its text is not vetted
        for secrets."""
        event = "provider-error" if isinstance(exc, ProviderError) else "internal-error"
        self.log("error", event, f"{sa.conn.name} {sa.name}: closed after {type(exc).__name__}")
        if sa.state is IkeState.DELETED:
            return
        try:
            self.drop_ike(sa, f"internal error ({type(exc).__name__})")
        except Exception as again:  # noqa: BLE001 - still forget it: no state may outlive the error
            self.log("error", "internal-error", f"{sa.name}: cleanup failed: {type(again).__name__}")
            self.sas.remove(sa)
            sa.state = IkeState.DELETED
            sa.pending = None
            sa.tasks.clear()
            sa.deferred.clear()

    # --- Child SA install / removal --------------------------------------------------------------
    def install_child(self, sa: IkeSa, child: ChildSa, rekey_of: int | None = None,
                      defer_outbound: bool = False) -> None:
        keys = child.keys
        assert keys is not None
        # the initiator of the exchange that made the SA sends with the i->r keys (RFC 7296 2.17)
        if child.initiator:
            out_e, out_a, in_e, in_a = keys.encr_i, keys.integ_i, keys.encr_r, keys.integ_r
        else:
            out_e, out_a, in_e, in_a = keys.encr_r, keys.integ_r, keys.encr_i, keys.integ_i
        s = child.suite
        inbound = SaDirection(child.spi_in, sa.remote[0], sa.local[0], s.encr, s.encr_key_bits, in_e, s.integ, in_a)
        outbound = SaDirection(child.spi_out, sa.local[0], sa.remote[0], s.encr, s.encr_key_bits, out_e, s.integ,
                               out_a)
        encap = (sa.local[1], sa.remote[1]) if (sa.nat_local or sa.nat_remote or sa.conn.encap) else None
        self._unclaimed.pop(child.spi_in, None)
        self.sas.add_child(sa, child)
        self.touch(sa)
        # before the install: the daemon logs the kernel's verdict (child-sa-up / child-sa-install-failed) after it
        self.log("info", "child-sa-negotiated",
                 f"{sa.conn.name}/{child.name} {child.mode} in {child.spi_in:08x} out {child.spi_out:08x} "
                 f"{self.text(s)} {self.text(child.local_ts, _ts_text)} === {self.text(child.remote_ts, _ts_text)}")
        self.emit(InstallChildSa(sa.name, sa.conn.name, child.name, child.reqid, child.mode, inbound, outbound,
                                 child.local_ts, child.remote_ts, child.rekey_at - child.installed_at,
                                 child.expire_at - child.installed_at, s.esn, encap, rekey_of,
                                 defer_outbound and rekey_of is not None))

    def remove_child(self, sa: IkeSa, child: ChildSa, reason: str, keep_policies: bool = False) -> None:
        if not self.sas.remove_child(sa, child):
            return
        self.touch(sa)
        child.state = ChildState.DELETED
        self.emit(DeleteChildSa(sa.name, sa.conn.name, child.name, child.reqid, child.spi_in, child.spi_out,
                                sa.local[0], sa.remote[0], reason, keep_policies))
        if child.keys is not None:
            child.keys.wipe()
            child.keys = None

    def drop_ike(self, sa: IkeSa, reason: str, failed: bool = False) -> None:
        """Forget an IKE SA and its Child SAs locally (no exchange)."""
        for child in list(sa.children.values()):
            self.remove_child(sa, child, reason)
        self.sas.remove(sa)
        was = sa.state
        sa.state = IkeState.DELETED
        sa.pending = None
        sa.tasks.clear()
        sa.deferred.clear()
        if sa.keys is not None:
            sa.keys.wipe()
        if sa.share is not None:
            sa.share.wipe()
        if sa.intermediate is not None:
            sa.intermediate.wipe()
            sa.intermediate = None
        # RFC 9370 2.2.4 state of either side: the secrets gathered so far
        if sa.followup is not None:
            sa.followup.exchanges.wipe()
            sa.followup = None
        if sa.exchange is not None and sa.exchange.followup is not None:
            sa.exchange.followup.wipe()
        if failed or was in (IkeState.INIT_SENT, IkeState.AUTH_SENT):
            self.emit(IkeSaFailed(sa.conn.name, reason))
        else:
            self.emit(IkeSaDeleted(sa.name, sa.conn.name, reason))

    def peer_dead(self, sa: IkeSa, now: float) -> None:
        self.log("warning", "dead-peer", f"{sa.conn.name} {sa.name}: no answer from {sa.remote[0]}")
        action = sa.conn.dpd_action
        self.emit(DeadPeer(sa.name, sa.conn.name, action))
        self.drop_ike(sa, "dead peer")
        if action == "restart":
            conn = self.connections.get(sa.conn.name, sa.conn)
            ike_sa_init.create(self, conn, conn.children[0] if conn.children else None, now)

    def notify_error(self, sa: IkeSa | None, name: str, detail: str) -> None:
        self.log("warning", name.lower().replace("_", "-"),
                 f"{sa.conn.name + ' ' if sa else ''}{name}: {detail}")


@functools.lru_cache(maxsize=4096)
def _packed(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def _system_wallclock() -> datetime:
    # only for drivers that pass neither `wall` nor a `wallclock` (see the module docstring)
    return datetime.now(UTC)


def _offers(sa: IkeSa, spi: int) -> bool:
    """Does an exchange of `sa` still under way hold `spi` as the inbound SPI of the Child SA it makes?"""
    return any(ex is not None and ex.spi_in == spi for ex in (sa.exchange, sa.auth_exchange)) or (
        sa.followup is not None and sa.followup.spi_in == spi)


def _ts_text(ts: Sequence[Any]) -> str:
    return ",".join(f"{t.start}-{t.end}" for t in ts)


__all__ = ["Engine", "NotifyType"]
