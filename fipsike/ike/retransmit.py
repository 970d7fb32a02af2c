"""Retransmission of requests (RFC 7296 2.1, 2.4).

Only the initiator of an exchange retransmits; a responder answers a repeated
request from its cached response. The schedule is exponential backoff like
strongSwan's default: timeout(n) = base * factor**n for try n = 0..tries-1, each
capped at `cap`; after the last try's timeout runs out the peer is declared dead.
With the defaults (4 s, 1.8, 5 tries) the gaps are 4, 7.2, 13, 23.3, 42 s and the
exchange gives up 89.5 s after the first send.
"""

from __future__ import annotations

from dataclasses import dataclass

from fipsike.ike.tasks import TaskKind


@dataclass(frozen=True)
class RetransmitPolicy:
    base: float = 4.0
    factor: float = 1.8
    tries: int = 5  # transmissions in all, the first included
    cap: float = 60.0  # no single wait longer than this

    def timeout(self, n: int) -> float:
        """Seconds to wait after transmission number n (0-based) before the next one."""
        return min(self.base * self.factor ** n, self.cap)

    def total(self) -> float:
        return sum(self.timeout(n) for n in range(self.tries))


@dataclass(slots=True)
class PendingRequest:
    """The one outstanding request of an IKE SA (window size 1, RFC 7296 2.3)."""

    message_id: int
    packets: list[bytes]  # the datagram(s) (several when fragmented, RFC 7383)
    exchange: TaskKind  # what the response completes, for dispatch
    sent_at: float
    tries: int = 1
    deadline: float = 0.0

    def arm(self, policy: RetransmitPolicy, now: float) -> float:
        self.deadline = now + policy.timeout(self.tries - 1)
        return self.deadline

    def due(self, now: float) -> bool:
        return now >= self.deadline

    def exhausted(self, policy: RetransmitPolicy) -> bool:
        return self.tries >= policy.tries
