"""When each IKE SA next needs the timer, and a heap of those deadlines, so a packet or a timer
call costs O(log n) in the number of SAs, not O(n)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

from fipsike.ike.sa import ChildState, IkeSa, IkeState


def sa_deadline(sa: IkeSa) -> float | None:
    """When this IKE SA next needs the timer: retransmission, half-open expiry, rekey, lifetimes,
    liveness check."""
    # the earliest positive time among the candidates (0 means "not set")
    times: list[float] = []
    if sa.pending is not None:
        times.append(sa.pending.deadline)
    state = sa.state
    if state is IkeState.INIT_DONE or state is IkeState.REKEYED:
        times.append(sa.half_open_deadline)
    elif state is IkeState.ESTABLISHED:
        times.append(sa.rekey_at)
        times.append(sa.expire_at)
        times.extend(when for when, _ in sa.deferred)
        if sa.conn.dpd_delay > 0 and sa.pending is None:
            times.append(sa.last_heard + sa.conn.dpd_delay)
        for c in sa.children.values():
            if c.state == ChildState.INSTALLED:
                times.append(c.rekey_at)
            times.append(c.expire_at)
    best = min((t for t in times if t > 0), default=0.0)
    return best or None


class Deadlines:
    """A heap of (deadline, seq, IKE SA). An SA touched during an engine call has its deadline
    recomputed once, when the call returns (rearm); stale entries are skipped when popped."""

    def __init__(self, live: Callable[[IkeSa], bool]) -> None:
        self._live = live  # is this SA still in the table?
        self._heap: list[tuple[float, int, IkeSa]] = []
        self._seq = 0
        self.touched: dict[int, IkeSa] = {}  # the SAs changed in this call, by id

    def touch(self, sa: IkeSa) -> None:
        """`sa` changed in this call: its next deadline is recomputed before the call returns."""
        self.touched[id(sa)] = sa

    def rearm(self, all_sas: Iterable[IkeSa], count: int) -> float | None:
        """Push the touched SAs' new deadlines; the earliest deadline of all (None: nothing due ever)."""
        heap = self._heap
        for sa in self.touched.values():
            if not self._live(sa):
                continue
            d = sa_deadline(sa)
            if d is not None and d != sa.armed:
                self._seq += 1
                heapq.heappush(heap, (d, self._seq, sa))
            sa.armed = d or 0.0
        self.touched.clear()
        if len(heap) > 4 * count + 64:
            # stale entries (deadlines that moved) pile up between pops: rebuild now and then
            heap[:] = [(d, i, sa) for i, (d, sa) in enumerate(
                (sa_deadline(sa), sa) for sa in all_sas) if d is not None]
            heapq.heapify(heap)
            self._seq = len(heap)
        while heap and not self._live(heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: float) -> list[IkeSa]:
        """Pop the IKE SAs whose deadline has come (each once)."""
        out: dict[int, IkeSa] = {}
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, sa = heapq.heappop(heap)
            if self._live(sa):
                sa.armed = 0.0
                out[id(sa)] = sa
        return list(out.values())
