"""IKEv2 message fragmentation (RFC 7383): the fragment size for a path, and reassembly.

Sending is SkCrypto.seal_fragments(message, fragment_datagram_limit(...)). Receiving: each SKF
datagram is verified and decrypted on its own (SkCrypto.open_fragment) and then handed to a
Reassembler, which holds the plaintexts under hard bounds until the message is complete.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from fipsike.ike.encrypted import OpenedFragment, inner_message
from fipsike.ike.errors import FragmentError, MessageTooLarge
from fipsike.ike.header import MAX_MESSAGE_SIZE
from fipsike.ike.message import Message

# RFC 7383 2.5.1: fragments should fit 1280 octets on IPv6 paths and 576 on IPv4 paths.
DEFAULT_IPV6_MTU = 1280
DEFAULT_IPV4_MTU = 576
MIN_MTU = 576  # the IPv4 minimum datagram every host must accept (RFC 791); nothing smaller works
IPV4_HEADER = 20
IPV6_HEADER = 40
UDP_HEADER = 8
NON_ESP_MARKER_SIZE = 4  # RFC 3948 2.2, on port 4500

DEFAULT_MAX_FRAGMENTS = 64  # 64 x ~1200 octets covers any sane IKE_AUTH with certificate chains
DEFAULT_MAX_PENDING = 4  # messages under reassembly at once per IKE SA (the window is usually 1)


def fragment_datagram_limit(mtu: int | None = None, *, ipv6: bool = False, nat_t: bool = False) -> int:
    """Largest IKE message (header onwards) one fragment may be on a path of `mtu` octets
    (default 1280 for IPv6, 576 for IPv4), after IP and UDP headers and the non-ESP marker."""
    if mtu is None:
        mtu = DEFAULT_IPV6_MTU if ipv6 else DEFAULT_IPV4_MTU
    if mtu < MIN_MTU:
        raise ValueError(f"MTU {mtu} is below the {MIN_MTU}-octet floor")
    return mtu - (IPV6_HEADER if ipv6 else IPV4_HEADER) - UDP_HEADER - (NON_ESP_MARKER_SIZE if nat_t else 0)


@dataclass
class _Pending:
    total: int
    size: int = 0
    parts: dict[int, OpenedFragment] = field(default_factory=dict)


class Reassembler:
    """Collects verified fragments of one IKE SA's messages (RFC 7383 2.6).

    Rules: a fragment with a larger Total Fragments than the ones held restarts the message
    (the sender lowered its fragment size, RFC 7383 2.5.3); a smaller total is refused; a repeated
    number is refused (a duplicate is harmless, different content an overlap attempt) and never
    replaces what is held; counts and sizes are bounded.
    """

    def __init__(self, max_fragments: int = DEFAULT_MAX_FRAGMENTS, max_size: int = MAX_MESSAGE_SIZE,
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.max_fragments = max_fragments
        self.max_size = max_size
        self.max_pending = max_pending
        self._pending: OrderedDict[tuple[bool, bool, int], _Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def discard(self, message_id: int) -> None:
        for key in [k for k in self._pending if k[2] == message_id]:
            del self._pending[key]

    def add(self, frag: OpenedFragment) -> Message | None:
        """Hold `frag`; return the reassembled inner Message when the last one arrives, else None.
        Raises FragmentError (drop the datagram; what is held stays) or MessageTooLarge."""
        ordered = self.add_fragment(frag)
        return None if ordered is None else inner_message(ordered)

    def add_fragment(self, frag: OpenedFragment) -> list[OpenedFragment] | None:
        """add(), giving the complete fragments in order (RFC 9242 3.3.2 authenticates them as one)."""
        if frag.total_fragments > self.max_fragments:
            raise FragmentError(f"{frag.total_fragments} fragments announced, the limit is {self.max_fragments}")
        if not 1 <= frag.fragment_number <= frag.total_fragments:
            raise FragmentError(f"fragment {frag.fragment_number} outside 1..{frag.total_fragments}")
        key = (frag.initiator, frag.response, frag.message_id)
        pending = self._pending.get(key)
        if pending is None or frag.total_fragments > pending.total:
            pending = _Pending(frag.total_fragments)
            self._pending[key] = pending
            self._pending.move_to_end(key)
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
        elif frag.total_fragments < pending.total:
            raise FragmentError(f"fragment says {frag.total_fragments} fragments, earlier ones said {pending.total}")
        held = next(iter(pending.parts.values()), None)
        if held is not None and (held.exchange, held.spi_i, held.spi_r) != (frag.exchange, frag.spi_i, frag.spi_r):
            raise FragmentError("fragment's exchange or SPIs differ from the others of its message")
        if frag.fragment_number in pending.parts:
            same = pending.parts[frag.fragment_number].plaintext == frag.plaintext
            raise FragmentError(f"fragment {frag.fragment_number} {'repeated' if same else 'overlaps a held one'}")
        if pending.size + len(frag.plaintext) > self.max_size:
            del self._pending[key]
            raise MessageTooLarge(f"reassembled message would exceed {self.max_size} octets")
        pending.parts[frag.fragment_number] = frag
        pending.size += len(frag.plaintext)
        if len(pending.parts) < pending.total:
            return None
        del self._pending[key]
        ordered = [pending.parts[n] for n in range(1, pending.total + 1)]
        if ordered[0].first_payload == 0:
            raise FragmentError("first fragment has no Next Payload")
        return ordered
