"""Real strongSwan messages: stored captures (and a fresh one made live) parsed, decrypted and
compared field by field with tshark's IKEv2 dissector given the same keys."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fipsike.ike.decode import KeyTable, datagrams
from fipsike.ike.message import Message
from fipsike.ike.payloads import EncryptedFragment
from fipsike.ike.registry import AuthMethod, ExchangeType, PayloadType
from providers.router import Router
from tests import strongswan_harness as harness
from tests.ike.codec.tshark_compare import compare, our_frames, tshark_frames

DATA = Path(__file__).resolve().parents[2] / "data" / "strongswan"
ROOT = Path(__file__).resolve().parents[3]
CAPTURES = sorted(p.stem for p in DATA.glob("*.pcap"))


def test_stored_captures_present() -> None:
    assert set(CAPTURES) >= {"ecdsa", "rsa"}
    for name in CAPTURES:
        assert (DATA / f"{name}.keys.csv").exists()


def _expected_flow(frames: list[Message], live: bool = False) -> None:
    if live:
        # a fresh capture on a loaded machine may hold retransmissions (same SPIs, message ID and direction)
        # and charon's liveness checks (extra INFORMATIONAL exchanges): count each exchange message once
        seen = {(m.spi_i, m.spi_r if m.exchange != ExchangeType.IKE_SA_INIT else b"", int(m.exchange),
                 m.message_id, m.response): m for m in frames}
        frames = list(seen.values())
    exchanges = Counter(int(m.exchange) for m in frames)
    assert exchanges[ExchangeType.IKE_SA_INIT] == 2
    assert exchanges[ExchangeType.IKE_AUTH] >= 2
    assert exchanges[ExchangeType.CREATE_CHILD_SA] == 4  # Child SA rekey and IKE SA rekey, request + response
    informational = exchanges[ExchangeType.INFORMATIONAL]
    # delete old Child SA, old IKE SA, final IKE SA (request + response each)
    assert informational >= 6 and informational % 2 == 0 if live else informational == 6


@pytest.mark.parametrize("name", CAPTURES)
def test_every_packet_parses_and_decrypts(name: str, default_router: Router) -> None:
    pcap, keys = DATA / f"{name}.pcap", DATA / f"{name}.keys.csv"
    msgs = [Message.parse(d.data) for d in datagrams(pcap.read_bytes())]
    _expected_flow(msgs)
    frames = our_frames(pcap, keys, default_router)  # decrypts every SK / SKF, asserts byte-exact re-serialising
    auth_methods = [n for f in frames for p in f.payloads for n in p.children if n.type == PayloadType.AUTH]
    assert len(auth_methods) == 2
    assert all(n.fields["isakmp.auth.method"] == [AuthMethod.DIGITAL_SIGNATURE] for n in auth_methods)
    if name == "rsa":
        assert any(isinstance(m.encrypted, EncryptedFragment) for m in msgs), "RSA IKE_AUTH should be fragmented"


@pytest.mark.parametrize("name", CAPTURES)
def test_matches_tshark_field_by_field(name: str, default_router: Router) -> None:
    pcap, keys = DATA / f"{name}.pcap", DATA / f"{name}.keys.csv"
    compared = compare(our_frames(pcap, keys, default_router), tshark_frames(pcap, keys))
    assert compared > 300


@pytest.mark.parametrize("name", CAPTURES)
def test_decode_command_on_capture(name: str) -> None:
    pcap, keys = DATA / f"{name}.pcap", DATA / f"{name}.keys.csv"
    res = subprocess.run([sys.executable, "-m", "fipsike", "decode", "--keys", str(keys), str(pcap)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert objs[0]["exchange"] == "IKE_SA_INIT" and objs[0]["initiator"] and not objs[0]["response"]
    assert objs[0]["spi_r"] == "0000000000000000"
    assert {"SA", "KE", "Nonce", "N"} <= {p["type"] for p in objs[0]["payloads"]}
    assert "IKEV2_FRAGMENTATION_SUPPORTED" in {p.get("notify") for p in objs[0]["payloads"]}
    auth_req = next(o for o in objs if o["exchange"] == "IKE_AUTH" and "payloads" in o["payloads"][-1])
    inner = [p["type"] for p in auth_req["payloads"][-1]["payloads"]]
    assert inner[:2] == ["IDi", "CERT"] and {"AUTH", "SA", "TSi", "TSr"} <= set(inner)
    deletes = [p for o in objs for sk in o["payloads"] for p in sk.get("payloads", []) if p["type"] == "D"]
    assert {d["protocol"] for d in deletes} == {"ESP", "IKE"}
    # without keys the SK payloads stay opaque
    res2 = subprocess.run([sys.executable, "-m", "fipsike", "decode", str(pcap)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert res2.returncode == 0
    assert all("payloads" not in o["payloads"][-1] for o in map(json.loads, res2.stdout.splitlines())
               if o["payloads"] and o["payloads"][-1]["type"] in ("SK", "SKF"))


def test_pcapng_reads_the_same(tmp_path: Path) -> None:
    editcap = shutil.which("editcap")
    assert editcap is not None, "editcap comes with tshark"
    src = DATA / "ecdsa.pcap"
    ng = tmp_path / "ecdsa.pcapng"
    subprocess.run([editcap, "-F", "pcapng", str(src), str(ng)], check=True, capture_output=True)
    assert ng.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    a = [d.data for d in datagrams(src.read_bytes())]
    b = [d.data for d in datagrams(ng.read_bytes())]
    assert a == b and len(a) == 14


def test_key_table_names_match_wireshark(default_router: Router) -> None:
    table = KeyTable.parse((DATA / "rsa.keys.csv").read_text(), default_router)
    assert len(table) == 2


@pytest.mark.strongswan
@pytest.mark.netns
def test_fresh_capture_from_live_charon(tmp_path: Path, default_router: Router) -> None:
    """Regenerates both scenarios with real charons now, then runs the same checks."""
    why = harness.available()
    assert why is None, why
    for name in harness.SCENARIOS:
        work = tmp_path / name
        work.mkdir()
        pcap, keys = harness.capture_scenario(name, tmp_path, work)
        msgs = [Message.parse(d.data) for d in datagrams(pcap.read_bytes())]
        _expected_flow(msgs, live=True)
        ours = our_frames(pcap, keys, default_router)
        assert compare(ours, tshark_frames(pcap, keys)) > 300
        auths = [n for f in ours for p in f.payloads for n in p.children if n.type == PayloadType.AUTH]
        assert len(auths) == 2


def test_charon_key_log_parser() -> None:
    log = "\n".join([
        "16:11:06 09[IKE] shared Diffie Hellman secret => 32 bytes @ 0x7f4f440045c0",
        "16:11:06 09[IKE]    0: 2B 27 23 01 23 C4 B3 96 2B 14 06 D0 73 6D 78 22  +'#.#...+...smx\"",
        "16:11:06 09[IKE] Sk_d secret => 20 bytes @ 0x7f4f4400bef0",
        "16:11:06 09[IKE]    0: 02 76 45 85 16 8C C7 5D C6 7B BD 24 7B D8 B5 7E  .vE....].{.${..~",
        "16:11:06 09[IKE]   16: 34 19 42 C8                                      4.B.",
        *[f"16:11:06 09[IKE] Sk_{n} secret => 4 bytes @ 0x1\n16:11:06 09[IKE]    0: AB CD EF {i:02X}  AB CD"
          for i, n in enumerate(("ai", "ar", "ei", "er", "pi", "pr"))],
    ])
    [keys] = harness.parse_charon_keys(log)
    assert keys.keys["SK_d"] == "02764585168cc75dc67bbd247bd8b57e341942c8"
    assert keys.keys["SK_ei"] == "abcdef02" and keys.keys["SK_pr"] == "abcdef05"
    assert "shared" not in str(keys.keys)
