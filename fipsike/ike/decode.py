"""Decoding captured IKE traffic for `fipsike decode`: capture files in, JSON-ready dicts out.

Sans-I/O like the rest of fipsike.ike: functions take the file's octets, not a path.
- `datagrams(blob)`: pcap (either byte order, micro- or nanosecond), pcapng, or text with one hex
  IKE message per line; link types Ethernet (with 802.1Q tags), Linux SLL / SLL2, raw IP, BSD
  loopback; IPv4 (unfragmented) and IPv6; UDP 500, and 4500 where the non-ESP marker is stripped
  and ESP / keepalives are skipped (RFC 3948 2.2, 2.3).
- `KeyTable`: Wireshark's ikev2_decryption_table (CSV: SPIi, SPIr, SK_ei, SK_er, encryption name,
  SK_ai, SK_ar, integrity name), keys imported as SecretKey handles through the router.
- `Decoder`: one JSON object per IKE message, decrypting SK and reassembling SKF when it has keys.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fipsike.ike.encrypted import OpenedFragment, SkCrypto, SkKeys
from fipsike.ike.errors import CodecError
from fipsike.ike.fragmentation import Reassembler
from fipsike.ike.header import HEADER, HEADER_SIZE
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Authentication,
    Certificate,
    CertificateRequest,
    Configuration,
    Delete,
    Eap,
    Encrypted,
    EncryptedFragment,
    Identification,
    KeyExchangePayload,
    Nonce,
    Notify,
    Payload,
    RawTrafficSelector,
    SecurityAssociation,
    TrafficSelectors,
    UnknownPayload,
    VendorId,
)
from fipsike.ike.registry import (
    AuthMethod,
    CertEncoding,
    CfgType,
    ConfigAttributeType,
    ExchangeType,
    IdType,
    NotifyType,
    ProtocolId,
    TransformAttributeType,
    TransformType,
    lookup,
    payload_notation,
    transform_id_name,
)
from providers.algorithms import Encryption, Integrity
from providers.api import IkeRouter, Provider


class CaptureError(Exception):
    """The capture file is not one we can read (message names the reason and position)."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """One IKE message found in a capture: frame number (1-based), time, UDP endpoints, octets."""

    frame: int
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    data: bytes


IKE_PORTS = (500, 4500)
NAT_T_PORT = 4500

# --- link and network layers ------------------------------------------------------
_LINKTYPE_NULL = 0
_LINKTYPE_ETHERNET = 1
_LINKTYPE_RAW = (101, 12, 14)
_LINKTYPE_SLL = 113
_LINKTYPE_SLL2 = 276
_ETH_IPV4, _ETH_IPV6, _ETH_VLAN, _ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
_IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options: skipped to reach UDP


def _ip_packet(linktype: int, frame: bytes) -> bytes | None:
    if linktype == _LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        off, etype = 14, int.from_bytes(frame[12:14], "big")
        while etype in (_ETH_VLAN, _ETH_QINQ) and len(frame) >= off + 4:
            etype = int.from_bytes(frame[off + 2:off + 4], "big")
            off += 4
        return frame[off:] if etype in (_ETH_IPV4, _ETH_IPV6) else None
    if linktype == _LINKTYPE_SLL:
        return frame[16:] if len(frame) >= 16 and int.from_bytes(frame[14:16], "big") in (_ETH_IPV4, _ETH_IPV6) \
            else None
    if linktype == _LINKTYPE_SLL2:
        return frame[20:] if len(frame) >= 20 and int.from_bytes(frame[0:2], "big") in (_ETH_IPV4, _ETH_IPV6) \
            else None
    if linktype in _LINKTYPE_RAW:
        return frame
    if linktype == _LINKTYPE_NULL:
        return frame[4:]
    return None


class _Defragmenter:
    """IP fragment reassembly for the capture reader (RFC 791 3.2, RFC 8200 4.5): large IKE messages
    sent without RFC 7383 fragmentation arrive as IP fragments. Bounded in size and count."""

    MAX_PENDING = 64

    def __init__(self) -> None:
        self._pending: OrderedDict[tuple[object, ...], tuple[dict[int, bytes], list[int]]] = OrderedDict()

    def add(self, key: tuple[object, ...], offset: int, more: bool, data: bytes) -> bytes | None:
        if offset + len(data) > 0xFFFF:
            self._pending.pop(key, None)
            return None
        parts, total = self._pending.setdefault(key, ({}, []))
        while len(self._pending) > self.MAX_PENDING:
            self._pending.popitem(last=False)
        parts.setdefault(offset, data)
        if not more:
            total[:] = [offset + len(data)]
        if not total:
            return None
        covered = 0
        for off in sorted(parts):
            if off > covered:
                return None
            covered = max(covered, off + len(parts[off]))
        if covered < total[0]:
            return None
        buf = bytearray(total[0])
        for off in sorted(parts):
            chunk = parts[off][:max(0, total[0] - off)]
            buf[off:off + len(chunk)] = chunk
        del self._pending[key]
        return bytes(buf)


def _udp_of_ip(pkt: bytes, defrag: _Defragmenter) -> tuple[str, str, bytes] | None:
    """(src, dst, UDP segment) of an IPv4/IPv6 packet carrying UDP (reassembled from fragments
    when it was fragmented), else None."""
    if not pkt:
        return None
    version = pkt[0] >> 4
    if version == 4:
        if len(pkt) < 20:
            return None
        ihl = (pkt[0] & 0x0F) * 4
        total = int.from_bytes(pkt[2:4], "big")
        frag = int.from_bytes(pkt[6:8], "big")
        if pkt[9] != 17 or ihl < 20:
            return None
        src, dst = str(ipaddress.IPv4Address(pkt[12:16])), str(ipaddress.IPv4Address(pkt[16:20]))
        body: bytes | None = pkt[ihl:min(total, len(pkt))]
        if frag & 0x3FFF:  # MF set or a non-zero offset: a fragment
            body = defrag.add((4, src, dst, pkt[4:6]), (frag & 0x1FFF) * 8, bool(frag & 0x2000), body or b"")
        return (src, dst, body) if body is not None else None
    if version == 6:
        if len(pkt) < 40:
            return None
        nxt, off = pkt[6], 40
        end = min(40 + int.from_bytes(pkt[4:6], "big"), len(pkt))
        src, dst = str(ipaddress.IPv6Address(pkt[8:24])), str(ipaddress.IPv6Address(pkt[24:40]))
        while nxt in _IPV6_EXT and end >= off + 8:
            nxt, off = pkt[off], off + (pkt[off + 1] + 1) * 8
        if nxt == 44 and end >= off + 8:  # Fragment header
            nxt = pkt[off]
            field = int.from_bytes(pkt[off + 2:off + 4], "big")
            whole = defrag.add((6, src, dst, pkt[off + 4:off + 8]), (field >> 3) * 8, bool(field & 1),
                               pkt[off + 8:end])
            if whole is None or nxt != 17:
                return None
            return src, dst, whole
        if nxt != 17:
            return None
        return src, dst, pkt[off:end]
    return None


def _ike_of_frame(linktype: int, frame: bytes, defrag: _Defragmenter) -> tuple[str, str, int, int, bytes] | None:
    pkt = _ip_packet(linktype, frame)
    udp = _udp_of_ip(pkt, defrag) if pkt is not None else None
    if udp is None or len(udp[2]) < 8:
        return None
    src, dst, seg = udp
    sport, dport, ulen = struct.unpack_from(">HHH", seg)
    if sport not in IKE_PORTS and dport not in IKE_PORTS:
        return None
    payload = seg[8:max(8, min(ulen, len(seg)))]
    if NAT_T_PORT in (sport, dport):
        if payload[:4] != b"\x00\x00\x00\x00":
            return None  # ESP in UDP, or a NAT keepalive (0xFF)
        payload = payload[4:]
    return src, dst, sport, dport, payload


# --- capture formats -----------------------------------------------------------
_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
_PCAPNG_SHB = 0x0A0D0D0A


def _pcap_frames(blob: bytes) -> Iterator[tuple[int, float, bytes]]:
    end, scale = _PCAP_MAGIC[blob[:4]]
    if len(blob) < 24:
        raise CaptureError("pcap global header truncated")
    linktype = struct.unpack_from(end + "I", blob, 20)[0] & 0x0FFFFFFF
    off = 24
    rec = struct.Struct(end + "IIII")
    while off < len(blob):
        if len(blob) - off < 16:
            raise CaptureError(f"pcap record header truncated at offset {off}")
        sec, frac, incl, _ = rec.unpack_from(blob, off)
        if incl > len(blob) - off - 16:
            raise CaptureError(f"pcap record at offset {off} runs past the end of the file")
        yield linktype, sec + frac * scale, blob[off + 16:off + 16 + incl]
        off += 16 + incl


def _pcapng_frames(blob: bytes) -> Iterator[tuple[int, float, bytes]]:
    off = 0
    end = "<"
    interfaces: list[tuple[int, float]] = []
    while off < len(blob):
        if len(blob) - off < 12:
            raise CaptureError(f"pcapng block truncated at offset {off}")
        if struct.unpack_from("<I", blob, off)[0] == _PCAPNG_SHB:
            bom = blob[off + 8:off + 12]
            end = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        btype, blen = struct.unpack_from(end + "II", blob, off)
        if blen < 12 or blen % 4 or blen > len(blob) - off:
            raise CaptureError(f"pcapng block length {blen} at offset {off} is invalid")
        body = blob[off + 8:off + blen - 4]
        if btype == 1 and len(body) >= 8:  # Interface Description Block
            linktype = struct.unpack_from(end + "H", body, 0)[0]
            scale = 1e-6
            o = 8
            while o + 4 <= len(body):  # options: if_tsresol (9)
                code, olen = struct.unpack_from(end + "HH", body, o)
                if code == 0:
                    break
                if code == 9 and olen >= 1 and o + 4 < len(body):
                    r = body[o + 4]
                    scale = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
                o += 4 + ((olen + 3) & ~3)
            interfaces.append((linktype, scale))
        elif btype == 6 and len(body) >= 20:  # Enhanced Packet Block
            iface, hi, lo, caplen, _ = struct.unpack_from(end + "IIIII", body, 0)
            if iface >= len(interfaces) or caplen > len(body) - 20:
                raise CaptureError(f"pcapng packet block at offset {off} is inconsistent")
            linktype, scale = interfaces[iface]
            yield linktype, ((hi << 32) | lo) * scale, body[20:20 + caplen]
        elif btype == 3 and len(body) >= 4 and interfaces:  # Simple Packet Block
            yield interfaces[0][0], 0.0, body[4:]
        off += blen


_HEX_LINE = re.compile(r"^[0-9A-Fa-f\s:]+$")


def _hex_datagrams(text: str) -> Iterator[Datagram]:
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _HEX_LINE.match(line):
            raise CaptureError(f"line {lineno}: not hexadecimal")
        digits = re.sub(r"[\s:]", "", line)
        if len(digits) % 2:
            raise CaptureError(f"line {lineno}: odd number of hex digits")
        data = bytes.fromhex(digits)
        if data[:4] == b"\x00\x00\x00\x00" and len(data) > 4:  # a non-ESP marker left in place
            data = data[4:]
        yield Datagram(lineno, 0.0, "", "", 0, 0, data)


def datagrams(blob: bytes) -> Iterator[Datagram]:
    """The IKE messages in a capture file's octets (pcap, pcapng, or hex lines)."""
    if blob[:4] in _PCAP_MAGIC:
        frames: Iterator[tuple[int, float, bytes]] = _pcap_frames(blob)
    elif len(blob) >= 4 and struct.unpack_from("<I", blob)[0] == _PCAPNG_SHB:
        frames = _pcapng_frames(blob)
    else:
        try:
            text = blob.decode("ascii")
        except UnicodeDecodeError:
            raise CaptureError("not a pcap, pcapng or hex text file") from None
        yield from _hex_datagrams(text)
        return
    defrag = _Defragmenter()
    for n, (linktype, ts, frame) in enumerate(frames, 1):
        found = _ike_of_frame(linktype, frame, defrag)
        if found is not None:
            src, dst, sport, dport, data = found
            yield Datagram(n, ts, src, dst, sport, dport, data)


# --- key table ------------------------------------------------------------------
# Wireshark's names (epan/dissectors/packet-isakmp.c, ikev2_encr_algs / ikev2_integ_algs).
_WS_ENCR: dict[str, tuple[Encryption, int]] = {
    f"AES-CBC-{b} [RFC3602]": (Encryption.ENCR_AES_CBC, b) for b in (128, 192, 256)
}
_WS_ENCR.update({
    f"AES-GCM-{b} with {icv} octet ICV [RFC5282]": (enc, b)
    for b in (128, 192, 256)
    for icv, enc in ((8, Encryption.ENCR_AES_GCM_8), (12, Encryption.ENCR_AES_GCM_12),
                     (16, Encryption.ENCR_AES_GCM_16))
})
_WS_INTEG: dict[str, Integrity] = {
    "NONE [RFC4306]": Integrity.NONE,
    "HMAC_SHA1_96 [RFC2404]": Integrity.AUTH_HMAC_SHA1_96,
    "HMAC_SHA2_256_128 [RFC4868]": Integrity.AUTH_HMAC_SHA2_256_128,
    "HMAC_SHA2_384_192 [RFC4868]": Integrity.AUTH_HMAC_SHA2_384_192,
    "HMAC_SHA2_512_256 [RFC4868]": Integrity.AUTH_HMAC_SHA2_512_256,
}


def wireshark_encryption_name(encryption: Encryption, key_bits: int) -> str:
    for name, (enc, bits) in _WS_ENCR.items():
        if enc is encryption and bits == key_bits:
            return name
    raise ValueError(f"Wireshark has no name for {encryption.name}-{key_bits}")


class KeyTable:
    """(SPIi, SPIr) -> SkKeys, read from Wireshark's ikev2_decryption_table format."""

    def __init__(self) -> None:
        self._keys: dict[tuple[bytes, bytes], SkKeys] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, spi_i: bytes, spi_r: bytes) -> SkKeys | None:
        return self._keys.get((spi_i, spi_r))

    def add(self, spi_i: bytes, spi_r: bytes, keys: SkKeys) -> None:
        self._keys[(spi_i, spi_r)] = keys

    @classmethod
    def parse_bytes(cls, data: bytes, router: Provider, source: str = "keys") -> KeyTable:
        """A key table file as read from disk: UTF-8 with or without a byte-order mark (Windows
        editors write one). Anything else is "FILE:LINE: not a key table", with no codec text
        (the codec's message would quote a byte of the file: a byte of a key, perhaps)."""
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            raise ValueError(f"{source}:{line}: not a key table (not UTF-8 text)") from None
        return cls.parse(text, router, source)

    @classmethod
    def parse(cls, text: str, router: Provider, source: str = "keys") -> KeyTable:
        """Rows: "SPIi","SPIr","SK_ei","SK_er","<encryption>","SK_ai","SK_ar","<integrity>" (hex);
        '#' comment lines and blank lines are skipped. Errors name the file, line and column,
        never a cell's value (a mistyped row may hold a key in any column)."""
        table = cls()
        for lineno, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{source}:{lineno}"
            if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in line):
                raise ValueError(f"{where}: not a key table (control characters or binary data)")
            try:
                row = next(csv.reader(io.StringIO(line), skipinitialspace=True))
            except (csv.Error, StopIteration):
                raise ValueError(f"{where}: not a key table (not a CSV row)") from None
            if len(row) != len(_KEY_TABLE_COLUMNS):
                raise ValueError(f"{where}: not a key table (expected {len(_KEY_TABLE_COLUMNS)} columns "
                                 f"{','.join(_KEY_TABLE_COLUMNS)}, found {len(row)})")
            cells = dict(zip(_KEY_TABLE_COLUMNS, (c.strip() for c in row), strict=True))
            raw: dict[str, bytes] = {}
            for n, col in enumerate(_KEY_TABLE_COLUMNS, 1):
                if col in ("encryption", "integrity"):
                    continue
                try:
                    raw[col] = bytes.fromhex(cells[col])
                except ValueError:
                    raise ValueError(f"{where}: column {n} ({col}) is not hexadecimal") from None
            if len(raw["SPIi"]) != 8 or len(raw["SPIr"]) != 8:
                raise ValueError(f"{where}: SPIs must be 8 octets")
            if cells["encryption"] not in _WS_ENCR:
                raise ValueError(f"{where}: column 5 (encryption) is not an encryption algorithm name "
                                 "Wireshark writes (e.g. \"AES-CBC-256 [RFC3602]\")")
            if cells["integrity"] not in _WS_INTEG:
                raise ValueError(f"{where}: column 8 (integrity) is not an integrity algorithm name "
                                 "Wireshark writes (e.g. \"HMAC_SHA2_256_128 [RFC4868]\")")
            encr_name, integ_name = cells["encryption"], cells["integrity"]  # known names, safe to show
            encr, bits = _WS_ENCR[encr_name]
            integ = _WS_INTEG[integ_name]
            mats = [raw["SK_ei"], raw["SK_er"], raw["SK_ai"], raw["SK_ar"]]
            want = bits // 8 + encr.salt_size
            if len(mats[0]) != want or len(mats[1]) != want:
                raise ValueError(f"{where}: {encr_name} keys must be {want} octets")
            if integ is not Integrity.NONE and (len(mats[2]) != integ.key_size or len(mats[3]) != integ.key_size):
                raise ValueError(f"{where}: {integ_name} keys must be {integ.key_size} octets")
            handles = [router.import_secret(m, kind) for m, kind in zip(mats, ("SK_ei", "SK_er", "SK_ai", "SK_ar"),
                                                                          strict=True)]
            aead = encr.is_aead
            try:
                keys = SkKeys(encr, bits, integ, handles[0], handles[1], None if aead else handles[2],
                              None if aead else handles[3])
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            table.add(raw["SPIi"], raw["SPIr"], keys)
        return table


# Wireshark's ikev2_decryption_table columns, in order
_KEY_TABLE_COLUMNS: tuple[str, ...] = ("SPIi", "SPIr", "SK_ei", "SK_er", "encryption", "SK_ai", "SK_ar",
                                       "integrity")


# --- JSON rendering ---------------------------------------------------------------
def _name(enum_value: Any) -> Any:
    return enum_value.name if hasattr(enum_value, "name") else enum_value


def payload_json(p: Payload) -> dict[str, Any]:
    """A JSON-ready description of one payload (public fields only; SK/SKF without plaintext)."""
    out: dict[str, Any] = {"type": payload_notation(p.payload_type)}
    if isinstance(p, SecurityAssociation):
        out["proposals"] = [{
            "number": pr.number, "protocol": _name(lookup(ProtocolId, pr.protocol)), "spi": pr.spi.hex(),
            "transforms": [{"type": _name(lookup(TransformType, t.type)), "id": transform_id_name(t.type, t.id),
                            **({"key_length": t.key_length} if t.key_length is not None else {}),
                            **({"attributes": [[a.type, a.value if isinstance(a.value, int) else a.value.hex()]
                                               for a in t.attributes
                                               if a.type != TransformAttributeType.KEY_LENGTH]}
                               if any(a.type != TransformAttributeType.KEY_LENGTH for a in t.attributes) else {})}
                           for t in pr.transforms],
        } for pr in p.proposals]
    elif isinstance(p, KeyExchangePayload):
        out.update(group=transform_id_name(TransformType.KE, p.group), length=len(p.data))
    elif isinstance(p, Identification):
        out.update(id_type=_name(lookup(IdType, p.id_type)), data=p.data.hex())
    elif isinstance(p, Certificate | CertificateRequest):
        out.update(encoding=_name(lookup(CertEncoding, p.encoding)), length=len(p.data))
    elif isinstance(p, Authentication):
        out.update(method=_name(lookup(AuthMethod, p.method)), length=len(p.data))
    elif isinstance(p, Nonce):
        out.update(length=len(p.data))
    elif isinstance(p, Notify):
        out.update(notify=_name(lookup(NotifyType, p.notify_type)), notify_type=p.notify_type)
        if p.protocol:
            out["protocol"] = _name(lookup(ProtocolId, p.protocol))
        if p.spi:
            out["spi"] = p.spi.hex()
        if p.data:
            out["data"] = p.data.hex()
    elif isinstance(p, Delete):
        out.update(protocol=_name(lookup(ProtocolId, p.protocol)), spis=[s.hex() for s in p.spis])
    elif isinstance(p, VendorId | Eap):
        out.update(data=p.data.hex())
    elif isinstance(p, TrafficSelectors):
        out["selectors"] = [
            {"ts_type": s.ts_type, "data": s.data.hex()} if isinstance(s, RawTrafficSelector) else
            {"ts_type": s.ts_type.name, "ip_protocol": s.ip_protocol, "start_port": s.start_port,
             "end_port": s.end_port, "start_address": str(s.start_address), "end_address": str(s.end_address)}
            for s in p.selectors]
    elif isinstance(p, Configuration):
        out.update(cfg_type=_name(lookup(CfgType, p.cfg_type)),
                   attributes=[{"type": _name(lookup(ConfigAttributeType, a.type)), "value": a.value.hex()}
                               for a in p.attributes])
    elif isinstance(p, Encrypted):
        out.update(next_payload=payload_notation(p.first_payload) if p.first_payload else None, length=len(p.data))
    elif isinstance(p, EncryptedFragment):
        out.update(fragment_number=p.fragment_number, total_fragments=p.total_fragments, length=len(p.data))
        if p.first_payload:
            out["next_payload"] = payload_notation(p.first_payload)
    elif isinstance(p, UnknownPayload):
        out.update(payload_type=p.payload_type, data=p.data.hex())
    return out


def message_json(m: Message) -> dict[str, Any]:
    return {
        "exchange": _name(lookup(ExchangeType, int(m.exchange))),
        "message_id": m.message_id,
        "initiator": m.initiator,
        "response": m.response,
        "spi_i": m.spi_i.hex(),
        "spi_r": m.spi_r.hex(),
        "payloads": [payload_json(p) for p in m.payloads],
    }


class Decoder:
    """Turns datagrams into JSON objects, decrypting what the key table covers."""

    def __init__(self, router: IkeRouter | None = None, keys: KeyTable | None = None) -> None:
        self.router = router
        self.keys = keys or KeyTable()
        self._crypto: dict[tuple[bytes, bytes], SkCrypto] = {}
        self._reassembly: dict[tuple[bytes, bytes], Reassembler] = {}

    def _crypto_for(self, spi_i: bytes, spi_r: bytes) -> SkCrypto | None:
        sk = self.keys.get(spi_i, spi_r)
        if sk is None or self.router is None:
            return None
        c = self._crypto.get((spi_i, spi_r))
        if c is None:
            c = self._crypto[(spi_i, spi_r)] = SkCrypto(self.router, sk, initiator=None)
        return c

    def decode(self, d: Datagram) -> dict[str, Any]:
        head: dict[str, Any] = {"frame": d.frame}
        if d.src:
            head.update(src=d.src, dst=d.dst, sport=d.sport, dport=d.dport)
        try:
            m = Message.parse(d.data)
        except CodecError as exc:
            notify = _name(exc.notify) if exc.notify is not None else None
            out_err: dict[str, Any] = {**head, "error": str(exc), "error_notify": notify, "length": len(d.data)}
            if len(d.data) >= HEADER_SIZE:  # what the header says, for orientation
                spi_i, spi_r, _, _, exch, flags, mid, _ = HEADER.unpack_from(d.data)
                out_err.update(exchange=_name(lookup(ExchangeType, exch)), message_id=mid,
                               initiator=bool(flags & 0x08), response=bool(flags & 0x20), spi_i=spi_i.hex(),
                               spi_r=spi_r.hex())
            return out_err
        out = {**head, **message_json(m)}
        enc = m.encrypted
        crypto = self._crypto_for(m.spi_i, m.spi_r) if enc is not None else None
        if enc is None or crypto is None:
            return out
        last = out["payloads"][-1]
        try:
            if isinstance(enc, Encrypted):
                inner = crypto.open(d.data)
                last["payloads"] = [payload_json(p) for p in inner.payloads[len(m.payloads) - 1:]]
            else:
                frag: OpenedFragment = crypto.open_fragment(d.data)
                r = self._reassembly.setdefault((m.spi_i, m.spi_r), Reassembler())
                whole = r.add(frag)
                if whole is not None:
                    last["payloads"] = [payload_json(p) for p in whole.payloads]
                    last["reassembled"] = True
        except CodecError as exc:
            last["error"] = str(exc)
        return out
