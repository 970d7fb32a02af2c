"""RFC 7383: sizing fragments to the path, protecting each one, and bounded reassembly."""

from __future__ import annotations

import dataclasses
import random

import pytest

from fipsike.ike.encrypted import OpenedFragment, SkCrypto
from fipsike.ike.errors import CodecError, FragmentError, IntegrityCheckFailed, InvalidSyntax, MessageTooLarge
from fipsike.ike.fragmentation import Reassembler, fragment_datagram_limit
from fipsike.ike.message import Message
from fipsike.ike.payloads import Certificate, EncryptedFragment, IdentificationInitiator, Notify
from fipsike.ike.registry import ExchangeType, PayloadType
from providers.algorithms import Encryption, Integrity
from providers.router import Router
from tests.ike.codec.sk_helpers import SUITE_IDS, SUITES, make_keys

BIG = Message(b"I" * 8, b"R" * 8, ExchangeType.IKE_AUTH, 1, True, False,
              (IdentificationInitiator(2, b"moon.test"), Certificate(4, bytes(range(256)) * 12),
               Certificate(4, b"\x55" * 1500), Notify.initial_contact()))


def pair(router: Router, suite: tuple[Encryption, int, Integrity] = SUITES[0]) -> tuple[SkCrypto, SkCrypto]:
    keys = make_keys(router, *suite)
    return SkCrypto(router, keys, initiator=True), SkCrypto(router, keys, initiator=False)


def opened(router: Router, limit: int = 576 - 28) -> tuple[list[OpenedFragment], SkCrypto, list[bytes]]:
    i, r = pair(router)
    datagrams = i.seal_fragments(BIG, limit)
    return [r.open_fragment(d) for d in datagrams], r, datagrams


def test_datagram_limits() -> None:
    assert fragment_datagram_limit() == 576 - 20 - 8
    assert fragment_datagram_limit(ipv6=True) == 1280 - 40 - 8
    assert fragment_datagram_limit(ipv6=True, nat_t=True) == 1280 - 40 - 8 - 4
    assert fragment_datagram_limit(1500, nat_t=True) == 1500 - 20 - 8 - 4
    with pytest.raises(ValueError):
        fragment_datagram_limit(575)


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@pytest.mark.parametrize(("mtu", "ipv6", "nat_t"), [(None, False, False), (None, True, True), (1500, False, True)])
def test_fragments_fit_and_reassemble(default_router: Router, suite: tuple[Encryption, int, Integrity],
                                      mtu: int | None, ipv6: bool, nat_t: bool) -> None:
    i, r = pair(default_router, suite)
    limit = fragment_datagram_limit(mtu, ipv6=ipv6, nat_t=nat_t)
    datagrams = i.seal_fragments(BIG, limit)
    assert len(datagrams) > 1
    assert all(len(d) <= limit for d in datagrams)
    # no fragment wastes room: all but the last come within one cipher block + pad octet of the limit
    assert all(len(d) > limit - 17 for d in datagrams[:-1])
    parsed = [Message.parse(d) for d in datagrams]
    frags = [p.payloads[0] for p in parsed if len(p.payloads) == 1 and isinstance(p.payloads[0], EncryptedFragment)]
    assert len(frags) == len(parsed)
    assert [f.fragment_number for f in frags] == list(range(1, len(frags) + 1))
    assert {f.total_fragments for f in frags} == {len(frags)}
    assert frags[0].first_payload == PayloadType.IDi
    assert all(f.first_payload == 0 for f in frags[1:])
    assert {(p.message_id, p.exchange) for p in parsed} == {(1, ExchangeType.IKE_AUTH)}
    reassembler = Reassembler()
    results = [reassembler.add(r.open_fragment(d)) for d in datagrams]
    assert results[:-1] == [None] * (len(datagrams) - 1)
    assert results[-1] == BIG
    assert len(reassembler) == 0


def test_small_message_is_not_fragmented(default_router: Router) -> None:
    i, r = pair(default_router)
    small = dataclasses.replace(BIG, payloads=(Notify.initial_contact(),))
    [d] = i.seal_fragments(small, 548)
    assert r.open(d) == small


def test_out_of_order(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    order = list(range(len(frags)))
    random.Random(7).shuffle(order)
    reassembler = Reassembler()
    results = [reassembler.add(frags[n]) for n in order]
    assert results[-1] == BIG and all(x is None for x in results[:-1])


def test_duplicate_is_refused_and_does_not_disturb(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    reassembler = Reassembler()
    assert reassembler.add(frags[0]) is None
    with pytest.raises(FragmentError, match="repeated"):
        reassembler.add(frags[0])
    for f in frags[1:-1]:
        assert reassembler.add(f) is None
    assert reassembler.add(frags[-1]) == BIG


def test_overlap_with_different_content_is_refused(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    reassembler = Reassembler()
    reassembler.add(frags[1])
    forged = dataclasses.replace(frags[1], plaintext=b"\x00" * len(frags[1].plaintext))
    with pytest.raises(FragmentError, match="overlaps"):
        reassembler.add(forged)
    for f in [frags[0], *frags[2:]]:
        result = reassembler.add(f)
    assert result == BIG  # the held fragment was kept, not replaced


def test_missing_fragment_never_completes(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    reassembler = Reassembler()
    assert all(reassembler.add(f) is None for f in frags[:-2] + frags[-1:])
    assert len(reassembler) == 1


def test_mismatched_totals(default_router: Router) -> None:
    """RFC 7383 2.5.3: a smaller total is refused; a larger one restarts (the sender shrank its fragments)."""
    frags, _, _ = opened(default_router)
    total = frags[0].total_fragments
    reassembler = Reassembler()
    reassembler.add(frags[0])
    with pytest.raises(FragmentError, match="earlier ones said"):
        reassembler.add(dataclasses.replace(frags[1], total_fragments=total - 1))
    # a retransmission with more, smaller fragments replaces the partial message
    i, r = pair(default_router)
    smaller = [r.open_fragment(d) for d in i.seal_fragments(BIG, 400)]
    assert smaller[0].total_fragments > total
    reassembler2 = Reassembler()
    reassembler2.add(frags[0])
    reassembler2.add(frags[1])
    results = [reassembler2.add(f) for f in smaller]
    assert results[-1] == BIG


def test_fragment_count_bound(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    reassembler = Reassembler(max_fragments=3)
    with pytest.raises(FragmentError, match="limit"):
        reassembler.add(frags[0])


def test_oversize_total_is_refused_and_dropped(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    reassembler = Reassembler(max_size=1500)
    with pytest.raises(MessageTooLarge):
        for f in frags:
            reassembler.add(f)
    assert len(reassembler) == 0


def test_pending_messages_bounded(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    reassembler = Reassembler(max_pending=2)
    for mid in range(5):
        reassembler.add(dataclasses.replace(frags[0], message_id=mid))
    assert len(reassembler) == 2
    reassembler.discard(4)
    assert len(reassembler) == 1


def test_each_fragment_is_integrity_protected(default_router: Router) -> None:
    _, r, datagrams = opened(default_router)
    for d in datagrams:
        for pos in (20, 30, 33, 40, len(d) - 1):  # msg id, SKF header, fragment number, IV/ciphertext, ICV
            bad = bytearray(d)
            bad[pos] ^= 0x80
            with pytest.raises(CodecError):
                r.open_fragment(bytes(bad))
    bad = bytearray(datagrams[1])
    bad[-5] ^= 1
    with pytest.raises(IntegrityCheckFailed):
        r.open_fragment(bytes(bad))


def test_fragment_must_be_alone(default_router: Router) -> None:
    _, r = pair(default_router)
    m = Message(b"I" * 8, b"R" * 8, 35, 1, True, False, (Notify.initial_contact(),))
    with pytest.raises(InvalidSyntax):
        r.open_fragment(m.serialize())


def test_first_fragment_without_next_payload(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    reassembler = Reassembler()
    with pytest.raises(FragmentError):
        for f in [dataclasses.replace(frags[0], first_payload=0), *frags[1:]]:
            reassembler.add(f)


def test_fragment_size_too_small(default_router: Router) -> None:
    i, _ = pair(default_router)
    with pytest.raises(ValueError):
        i.seal_fragments(BIG, 60)


def test_fragments_of_another_exchange_are_refused(default_router: Router) -> None:
    frags, _, _ = opened(default_router)
    reassembler = Reassembler()
    reassembler.add(frags[0])
    with pytest.raises(FragmentError, match="exchange"):
        reassembler.add(dataclasses.replace(frags[1], exchange=ExchangeType.INFORMATIONAL))
