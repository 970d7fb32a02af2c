"""Fuzz targets shared by the bounded hypothesis tests and scripts/fuzz-codec.py.

Each target takes octets and may raise only the codec's typed errors (CodecError, or
CaptureError for the capture reader). Anything else escaping is a bug.
"""

from __future__ import annotations

import struct
from pathlib import Path

from fipsike.ike.decode import CaptureError, KeyTable, datagrams
from fipsike.ike.encrypted import SkCrypto
from fipsike.ike.errors import CodecError
from fipsike.ike.fragmentation import Reassembler
from fipsike.ike.message import Message
from fipsike.ike.registry import PayloadType
from providers.api import Provider

DATA = Path(__file__).resolve().parents[2] / "data" / "strongswan"


def seeds() -> list[bytes]:
    """Every IKE message of the stored strongSwan captures."""
    return [d.data for p in sorted(DATA.glob("*.pcap")) for d in datagrams(p.read_bytes())]


class Targets:
    def __init__(self, router: Provider) -> None:
        self.router = router
        self.tables = [KeyTable.parse((DATA / f"{p.stem}.keys.csv").read_text(), router)
                       for p in sorted(DATA.glob("*.pcap"))]
        self.cryptos: dict[tuple[bytes, bytes], SkCrypto] = {}
        for t in self.tables:
            for key, keys in t._keys.items():
                self.cryptos[key] = SkCrypto(router, keys, initiator=None)
        self.any_crypto = list(self.cryptos.values())
        self.reassembler = Reassembler(max_fragments=8, max_size=8192)

    def parse(self, data: bytes) -> None:
        try:
            m = Message.parse(data)
        except CodecError:
            return
        assert Message.parse(m.serialize()) == m  # whatever parses must round-trip

    def decrypt(self, data: bytes) -> None:
        """SK / SKF opening with the capture's real keys (mutated ciphertext, headers, lengths)."""
        spis = (data[:8], data[8:16])
        crypto = self.cryptos.get(spis) or self.any_crypto[len(data) % len(self.any_crypto)]
        try:
            if len(data) > 16 and data[16] == PayloadType.SKF:
                frag = crypto.open_fragment(data)
                self.reassembler.add(frag)
            else:
                crypto.open(data)
        except CodecError:
            pass

    def inner(self, plaintext: bytes, which: int = 0) -> None:
        """Authentic SK / SKF carrying arbitrary plaintext: drives the post-decryption parser and reassembly."""
        crypto = self.any_crypto[which % len(self.any_crypto)]
        first = plaintext[0] if plaintext else 0
        body = plaintext[1:]
        enc_key, int_key = crypto._keys_for(True)
        if which % 2:
            number, total = (body[0] % 4 + 1, body[1] % 4 + 1) if len(body) > 1 else (1, 1)
            total = max(total, number)
            length = crypto._sealed_length(36, len(body))
            prefix = struct.pack(">8s8sBBBBII", b"F" * 8, b"Z" * 8, PayloadType.SKF, 0x20, 35, 0x08, 1, length) \
                + struct.pack(">BBHHH", first if number == 1 else 0, 0, length - 28, number, total)
            data = crypto._protect(prefix, body, enc_key, int_key)
            try:
                self.reassembler.add(crypto.open_fragment(data))
            except CodecError:
                pass
        else:
            length = crypto._sealed_length(32, len(body))
            prefix = struct.pack(">8s8sBBBBII", b"F" * 8, b"Z" * 8, PayloadType.SK, 0x20, 35, 0x08, 1, length) \
                + struct.pack(">BBH", first, 0, length - 28)
            data = crypto._protect(prefix, body, enc_key, int_key)
            try:
                crypto.open(data)
            except CodecError:
                pass

    def capture(self, blob: bytes) -> None:
        try:
            for d in datagrams(blob):
                self.parse(d.data)
        except CaptureError:
            pass
