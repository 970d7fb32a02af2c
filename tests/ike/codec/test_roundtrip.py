"""parse(serialize(m)) == m for generated messages, and serialize(parse(b)) == b for canonical bytes."""

from __future__ import annotations

from hypothesis import given, settings

from fipsike.ike.message import Message
from tests.ike.codec import strategies as s


@settings(max_examples=400, deadline=None)
@given(s.message())
def test_message_round_trip(m: Message) -> None:
    data = m.serialize()
    again = Message.parse(data)
    assert again == m
    assert again.serialize() == data


@settings(max_examples=200, deadline=None)
@given(s.plain_payload)
def test_single_payload_round_trip(p: object) -> None:
    m = Message(b"i" * 8, b"r" * 8, 37, 1, True, False, (p,))  # type: ignore[arg-type]
    assert Message.parse(m.serialize()).payloads == (p,)
