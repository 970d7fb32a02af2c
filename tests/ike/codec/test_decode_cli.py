"""`fipsike decode`: inputs (hex lines, pcap link types, IPv6, NAT-T), JSON Lines, clear errors."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fipsike.ike.decode import CaptureError, Decoder, KeyTable, datagrams, wireshark_encryption_name
from fipsike.ike.encrypted import SkCrypto
from fipsike.ike.message import Message
from fipsike.ike.payloads import Nonce, Notify, VendorId
from fipsike.ike.registry import ExchangeType, NotifyType
from providers.algorithms import Encryption, Integrity
from providers.router import Router

ROOT = Path(__file__).resolve().parents[3]
INIT = Message(b"\x01" * 8, bytes(8), ExchangeType.IKE_SA_INIT, 0, True, False,
               (Nonce(b"n" * 32), Notify.fragmentation_supported()))


def run_decode(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fipsike", "decode", *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(seg: bytes) -> bytes:
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 0, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                       bytes([10, 0, 0, 2])) + seg


def ipv6(seg: bytes) -> bytes:
    return struct.pack(">IHBB16s16s", 0x60000000, len(seg), 17, 64, b"\x20\x01" + bytes(13) + b"\x01",
                       b"\x20\x01" + bytes(13) + b"\x02") + seg


def pcap(linktype: int, frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1000 + i, 0, len(f), len(f)) + f
    return out


def test_hex_lines(tmp_path: Path) -> None:
    f = tmp_path / "msgs.txt"
    f.write_text(f"# one per line\n{INIT.serialize().hex()}\n\n00000000{INIT.serialize().hex()}\n")
    res = run_decode(str(f))
    assert res.returncode == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(objs) == 2
    o = objs[0]
    assert (o["exchange"], o["message_id"], o["initiator"], o["response"]) == ("IKE_SA_INIT", 0, True, False)
    assert o["spi_i"] == "01" * 8 and o["spi_r"] == "00" * 8
    assert [p["type"] for p in o["payloads"]] == ["Nonce", "N"]
    assert o["payloads"][1]["notify"] == "IKEV2_FRAGMENTATION_SUPPORTED"


def test_stdin() -> None:
    res = run_decode("-", stdin=INIT.serialize().hex().encode() + b"\n")
    assert res.returncode == 0 and json.loads(res.stdout)["exchange"] == "IKE_SA_INIT"


@pytest.mark.parametrize(("linktype", "wrap"), [
    (1, lambda ip: b"\x00" * 12 + (b"\x86\xdd" if ip[0] >> 4 == 6 else b"\x08\x00") + ip),  # Ethernet
    (1, lambda ip: b"\x00" * 12 + b"\x81\x00\x00\x05" + (b"\x86\xdd" if ip[0] >> 4 == 6 else b"\x08\x00") + ip),
    (113, lambda ip: b"\x00" * 14 + (b"\x86\xdd" if ip[0] >> 4 == 6 else b"\x08\x00") + ip),  # Linux SLL
    (101, lambda ip: ip),  # raw IP
])
@pytest.mark.parametrize("ip", [ipv4, ipv6])
def test_pcap_link_types_and_nat_t(linktype: int, wrap: Callable[[bytes], bytes],
                                   ip: Callable[[bytes], bytes]) -> None:
    msg = INIT.serialize()
    frames = [
        wrap(ip(udp(500, 500, msg))),
        wrap(ip(udp(4500, 4500, b"\x00\x00\x00\x00" + msg))),
        wrap(ip(udp(4500, 4500, b"\xff"))),  # NAT keepalive
        wrap(ip(udp(4500, 4500, b"\x12\x34\x56\x78" + b"esp..."))),  # ESP in UDP
        wrap(ip(udp(53, 53, b"dns"))),
    ]
    found = list(datagrams(pcap(linktype, frames)))
    assert [(d.frame, d.sport, d.data) for d in found] == [(1, 500, msg), (2, 4500, msg)]
    assert found[0].src in ("10.0.0.1", "2001::1")


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\xfe\xff" * 10)
    res = run_decode(str(junk))
    assert res.returncode != 0 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    trunc = tmp_path / "t.pcap"
    trunc.write_bytes(pcap(1, [b"\x00" * 60])[:-10])
    res = run_decode(str(trunc))
    assert res.returncode == 1 and "past the end" in res.stderr
    res = run_decode(str(tmp_path / "missing.pcap"))
    assert res.returncode == 2 and "missing.pcap" in res.stderr


def test_bad_key_tables_name_file_and_line(tmp_path: Path) -> None:
    msgs = tmp_path / "m.txt"
    msgs.write_text(INIT.serialize().hex() + "\n")
    cases = {
        "short": "0101010101010101,0000000000000000\n",
        "name": '0101010101010101,0202020202020202,' + "00" * 36 + "," + "00" * 36
                + ',"AES-GCM-999",,,"NONE [RFC4306]"\n',
        "hex": '0101010101010101,0202020202020202,zz,zz,"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"\n',
        "len": '0101010101010101,0202020202020202,' + "c0ffee" * 4 + "," + "00" * 36
               + ',"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"\n',
    }
    for name, row in cases.items():
        keys = tmp_path / f"{name}.csv"
        keys.write_text("# comment\n" + row)
        res = run_decode("--keys", str(keys), str(msgs))
        assert res.returncode == 2, name
        assert f"{keys}:2:" in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert "c0ffee" not in res.stderr  # key material never echoed


def test_malformed_message_is_reported_not_fatal(tmp_path: Path) -> None:
    f = tmp_path / "m.txt"
    bad = bytearray(INIT.serialize())
    bad[-1] ^= 0  # keep length; corrupt the Nonce length instead
    bad[28 + 2:28 + 4] = b"\x00\x02"
    f.write_text(bytes(bad).hex() + "\n" + INIT.serialize().hex() + "\n")
    res = run_decode(str(f))
    assert res.returncode == 0
    first, second = (json.loads(x) for x in res.stdout.splitlines())
    assert first["error_notify"] == "INVALID_SYNTAX" and "error" in first
    assert second["exchange"] == "IKE_SA_INIT"


def test_decoder_decrypts_with_table(default_router: Router) -> None:
    ei, er = b"\x11" * 36, b"\x22" * 36
    table_text = (f'{"ab" * 8},{"cd" * 8},{ei.hex()},{er.hex()},'
                  f'"{wireshark_encryption_name(Encryption.ENCR_AES_GCM_16, 256)}",,,"NONE [RFC4306]"\n')
    table = KeyTable.parse(table_text, default_router)
    keys = table.get(b"\xab" * 8, b"\xcd" * 8)
    assert keys is not None and keys.integrity is Integrity.NONE
    sealer = SkCrypto(default_router, keys, initiator=True)
    m = Message(b"\xab" * 8, b"\xcd" * 8, ExchangeType.INFORMATIONAL, 4, True, False,
                (Notify.status(NotifyType.INITIAL_CONTACT), VendorId(b"x")))
    data = sealer.seal(m)
    from fipsike.ike.decode import Datagram
    out = Decoder(default_router, table).decode(Datagram(1, 0.0, "", "", 0, 0, data))
    assert [p["type"] for p in out["payloads"][-1]["payloads"]] == ["N", "V"]
    # wrong keys: the SK object carries the error, the message is still shown
    data2 = bytearray(data)
    data2[-1] ^= 1
    out2 = Decoder(default_router, table).decode(Datagram(2, 0.0, "", "", 0, 0, bytes(data2)))
    assert "error" in out2["payloads"][-1] and out2["exchange"] == "INFORMATIONAL"


def test_capture_error_type() -> None:
    with pytest.raises(CaptureError):
        list(datagrams(b"\xd4\xc3\xb2\xa1" + b"\x00" * 10))


def ipv4_fragments(seg: bytes, size: int, ident: int = 0x1234) -> list[bytes]:
    out = []
    for off in range(0, len(seg), size):
        chunk = seg[off:off + size]
        more = 0x2000 if off + size < len(seg) else 0
        out.append(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), ident, more | (off // 8), 64, 17, 0,
                               bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + chunk)
    return out


def ipv6_fragments(seg: bytes, size: int, ident: int = 77) -> list[bytes]:
    out = []
    for off in range(0, len(seg), size):
        chunk = seg[off:off + size]
        more = 1 if off + size < len(seg) else 0
        fh = struct.pack(">BBHI", 17, 0, (off // 8) << 3 | more, ident)
        out.append(struct.pack(">IHBB16s16s", 0x60000000, 8 + len(chunk), 44, 64, b"\x20\x01" + bytes(13) + b"\x01",
                               b"\x20\x01" + bytes(13) + b"\x02") + fh + chunk)
    return out


@pytest.mark.parametrize("fragmenter", [ipv4_fragments, ipv6_fragments])
def test_ip_fragments_are_reassembled(fragmenter: Callable[[bytes, int], list[bytes]]) -> None:
    big = Message(b"\x01" * 8, b"\x02" * 8, ExchangeType.IKE_AUTH, 1, True, False, (VendorId(b"v" * 3000),))
    frags = fragmenter(udp(500, 500, big.serialize()), 1208)
    assert len(frags) == 3
    frames = [frags[2], frags[0], frags[0], frags[1], ipv4(udp(500, 500, INIT.serialize()))]  # reordered, repeated
    found = list(datagrams(pcap(101, frames)))
    assert [d.data for d in found] == [big.serialize(), INIT.serialize()]
    assert [d.frame for d in found] == [4, 5]
    # a missing fragment yields nothing for that message
    assert [d.data for d in datagrams(pcap(101, frags[:2]))] == []


def test_pcap_nanosecond_big_endian_and_sll2() -> None:
    msg = INIT.serialize()
    frame = struct.pack(">HHIHBBB8s", 0x0800, 0, 2, 1, 0, 6, 0, bytes(8))[:20] + ipv4(udp(500, 500, msg))
    blob = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 276)
    blob += struct.pack(">IIII", 5, 500_000_000, len(frame), len(frame)) + frame
    [d] = list(datagrams(blob))
    assert d.data == msg and d.time == pytest.approx(5.5)


def test_pcapng_truncated_option_regression() -> None:
    """Found by scripts/fuzz-codec.py: an if_tsresol option header with no value octet."""
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = struct.pack("<IIHHIHHI", 1, 24, 1, 0, 65535, 9, 1, 24)
    assert list(datagrams(shb + idb)) == []
