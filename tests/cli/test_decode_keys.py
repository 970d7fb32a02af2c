"""`fipsike decode --keys`: a BOM is fine, errors name file, line and column, never a cell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fipsike.ike.decode import KeyTable
from providers import open_router
from tests.cli.conftest import assert_no_canary, assert_one_line_error, base_env

DATA = Path(__file__).resolve().parents[1] / "data" / "strongswan"
CANARY = "c0ffee5ca1ab1edeadc0de0123456789"


def decode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fipsike.cli", "decode", *args], capture_output=True, text=True,
                          timeout=120, env=base_env())


def test_bom_key_table_decrypts_like_the_plain_one(tmp_path: Path) -> None:
    plain = decode(str(DATA / "rsa.pcap"), "--keys", str(DATA / "rsa.keys.csv"))
    assert plain.returncode == 0, plain.stderr
    assert '{"type":"IDi","id_type":"ID_FQDN"' in plain.stdout  # decrypted: the inner payloads show
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (DATA / "rsa.keys.csv").read_bytes().replace(b"\n", b"\r\n"))
    r = decode(str(DATA / "rsa.pcap"), "--keys", str(bom))
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain.stdout


@pytest.mark.parametrize(("row", "words"), [
    (f'0101010101010101,0202020202020202,{CANARY},{CANARY},"{CANARY}",,,"NONE [RFC4306]"',
     ("column 5 (encryption)",)),
    (f'0101010101010101,0202020202020202,{CANARY},{CANARY},"AES-CBC-128 [RFC3602]",{CANARY},{CANARY},"{CANARY}"',
     ("column 8 (integrity)",)),
    (f'0101010101010101,0202020202020202,{CANARY},{CANARY}x,"AES-CBC-128 [RFC3602]",,,"NONE [RFC4306]"',
     ("column 4 (SK_er) is not hexadecimal",)),
    (f'{CANARY},0202020202020202,{CANARY},{CANARY},"AES-CBC-128 [RFC3602]",,,"NONE [RFC4306]"',
     ("SPIs must be 8 octets",)),
    (f"{CANARY}", ("not a key table", "found 1")),
    (f'"{CANARY}', ("not a key table",)),
])
def test_bad_rows_name_the_column_not_the_value(tmp_path: Path, row: str, words: tuple[str, ...]) -> None:
    keys = tmp_path / "keys.csv"
    keys.write_text("# SPIi,SPIr,...\n\n" + row + "\n")
    r = decode(str(DATA / "rsa.pcap"), "--keys", str(keys))
    assert_one_line_error(r, f"{keys}:3:", *words)
    assert r.returncode == 2
    assert_no_canary(r.stdout + r.stderr, [CANARY])


@pytest.mark.parametrize("blob", [
    bytes.fromhex(CANARY) * 8,
    b"\x00\x01" + CANARY.encode() + b"\x00",
    b"# ok\n" + CANARY.encode() + b",\xe9\xe9," + CANARY.encode(),
])
def test_binary_key_file_is_not_a_key_table(tmp_path: Path, blob: bytes) -> None:
    keys = tmp_path / "keys.bin"
    keys.write_bytes(blob)
    r = decode(str(DATA / "rsa.pcap"), "--keys", str(keys))
    line = assert_one_line_error(r, f"{keys}:", "not a key table")
    assert "codec" not in line and "position" not in line and "0x" not in line
    assert_no_canary(r.stdout + r.stderr, [CANARY])


def test_parse_bytes_line_numbers() -> None:
    router = open_router("default")
    with pytest.raises(ValueError, match=r"^t\.csv:3: not a key table \(not UTF-8 text\)$"):
        KeyTable.parse_bytes(b"# a\n# b\n\xff\n", router, source="t.csv")
    table = KeyTable.parse_bytes(b"\xef\xbb\xbf" + (DATA / "rsa.keys.csv").read_bytes(), router, source="t.csv")
    assert len(table) >= 1
