"""Compare our parse of a capture with tshark's IKEv2 dissector, field by field.

Both sides become the same normalised tree: per frame a header dict and a list of payload
nodes {type, fields: {tshark field name: [values]}, children: [...]}, where children are SA
proposals / transforms and the decrypted (reassembled) inner payloads of SK / SKF.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipsike.ike.decode import KeyTable, datagrams
from fipsike.ike.encrypted import SkCrypto
from fipsike.ike.fragmentation import Reassembler
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Authentication,
    Certificate,
    CertificateRequest,
    Delete,
    Encrypted,
    EncryptedFragment,
    Identification,
    KeyExchangePayload,
    Nonce,
    Notify,
    Payload,
    Proposal,
    SecurityAssociation,
    TrafficSelector,
    TrafficSelectors,
    Transform,
)
from providers.api import Provider

# tshark fields compared, and how tshark renders them
INT_FIELDS = {
    "isakmp.exchangetype", "isakmp.flag_i", "isakmp.flag_r", "isakmp.length", "isakmp.nextpayload",
    "isakmp.criticalpayload", "isakmp.payloadlength", "isakmp.prop.number", "isakmp.prop.protoid",
    "isakmp.spisize", "isakmp.prop.transforms", "isakmp.tf.type", "isakmp.tf.id.encr", "isakmp.tf.id.prf",
    "isakmp.tf.id.integ", "isakmp.tf.id.dh", "isakmp.tf.id.esn", "isakmp.ike2.attr.key_length",
    "isakmp.key_exchange.dh_group", "isakmp.notify.protoid", "isakmp.notify.msgtype", "isakmp.certreq.type",
    "isakmp.cert.encoding", "isakmp.id.type", "isakmp.auth.method", "isakmp.ts.number", "isakmp.ts.type",
    "isakmp.ts.protoid", "isakmp.ts.selector_length", "isakmp.ts.start_port", "isakmp.ts.end_port",
    "isakmp.delete.protoid", "isakmp.spinum", "isakmp.frag.number", "isakmp.frag.total",
}
HEX_FIELDS = {
    "isakmp.ispi", "isakmp.rspi", "isakmp.spi", "isakmp.key_exchange.data", "isakmp.nonce", "isakmp.notify.data",
    "isakmp.ike.certreq.authority", "isakmp.auth.data", "isakmp.delete.spi", "isakmp.enc.iv", "isakmp.enc.icd",
}
STR_FIELDS = {"isakmp.ts.start_ipv4", "isakmp.ts.end_ipv4", "isakmp.ts.start_ipv6", "isakmp.ts.end_ipv6"}
HEADER_FIELDS = ("isakmp.ispi", "isakmp.rspi", "isakmp.nextpayload", "isakmp.exchangetype", "isakmp.flag_i",
                 "isakmp.flag_r", "isakmp.messageid", "isakmp.length")
COMPARED = INT_FIELDS | HEX_FIELDS | STR_FIELDS


@dataclass
class Node:
    type: int
    fields: dict[str, list[Any]] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def put(self, key: str, value: Any) -> None:
        self.fields.setdefault(key, []).append(value)


@dataclass
class Frame:
    header: dict[str, Any]
    payloads: list[Node]


# --- tshark side -----------------------------------------------------------------
def _norm(key: str, value: str) -> Any:
    if key == "isakmp.messageid":
        return int(value, 16)
    if key in INT_FIELDS:
        return int(value, 0)
    if key in HEX_FIELDS:
        return value.replace(":", "").lower()
    return value


def _walk(pairs: list[tuple[str, Any]], node: Node | None, out: list[Node]) -> None:
    """Collect payload nodes: 'isakmp.typepayload' = type, then its '_tree'."""
    ptype: int | None = None
    for key, value in pairs:
        if key == "isakmp.typepayload":
            ptype = int(value)
        elif key == "isakmp.typepayload_tree":
            child = Node(ptype if ptype is not None else -1)
            _walk(value[1], child, child.children)
            out.append(child)
        elif isinstance(value, tuple):  # a subtree of this payload (not a certificate's ASN.1)
            if not key.startswith(("isakmp.cert.data", "isakmp.id.data")):
                _walk(value[1], node, out)
        elif node is not None and key in COMPARED:
            node.put(key, _norm(key, value))


def tshark_frames(pcap: Path, keys_csv: Path) -> list[Frame]:
    opts: list[str] = []
    for line in keys_csv.read_text().splitlines():
        if line.strip():
            opts += ["-o", f"uat:ikev2_decryption_table:{line}"]
    res = subprocess.run(["tshark", "-r", str(pcap), "-T", "json", *opts], capture_output=True, text=True,
                         timeout=120, check=True)
    frames = json.loads(res.stdout, object_pairs_hook=lambda p: ("OBJ", p))
    out = []
    for fr in frames:
        layers = dict(dict(dict(fr[1])["_source"][1])["layers"][1])
        isakmp = layers["isakmp"][1]
        header: dict[str, Any] = {}
        for key, value in isakmp:
            if key in HEADER_FIELDS and key not in header:
                header[key] = _norm(key, value)
            elif key == "isakmp.flags_tree":
                for k2, v2 in value[1]:
                    if k2 in HEADER_FIELDS:
                        header[k2] = _norm(k2, v2)
        payloads: list[Node] = []
        _walk(isakmp, None, payloads)
        out.append(Frame(header, payloads))
    return out


# --- our side --------------------------------------------------------------------
def _transform_node(t: Transform, last: bool) -> Node:
    n = Node(3)
    n.put("isakmp.nextpayload", 0 if last else 3)
    n.put("isakmp.payloadlength", len(t.serialize(last)))
    n.put("isakmp.tf.type", t.type)
    key = {1: "isakmp.tf.id.encr", 2: "isakmp.tf.id.prf", 3: "isakmp.tf.id.integ", 4: "isakmp.tf.id.dh",
           5: "isakmp.tf.id.esn"}.get(t.type)
    if key:
        n.put(key, t.id)
    if t.key_length is not None:
        n.put("isakmp.ike2.attr.key_length", t.key_length)
    return n


def _proposal_node(p: Proposal, last: bool) -> Node:
    n = Node(2)
    n.put("isakmp.nextpayload", 0 if last else 2)
    n.put("isakmp.payloadlength", len(p.serialize(last)))
    n.put("isakmp.prop.number", p.number)
    n.put("isakmp.prop.protoid", p.protocol)
    n.put("isakmp.spisize", len(p.spi))
    n.put("isakmp.prop.transforms", len(p.transforms))
    if p.spi:
        n.put("isakmp.spi", p.spi.hex())
    n.children = [_transform_node(t, i == len(p.transforms) - 1) for i, t in enumerate(p.transforms)]
    return n


def _selector_fields(n: Node, s: TrafficSelector) -> None:
    v = "ipv4" if s.start_address.version == 4 else "ipv6"
    n.put("isakmp.ts.type", int(s.ts_type))
    n.put("isakmp.ts.protoid", s.ip_protocol)
    n.put("isakmp.ts.selector_length", 16 if v == "ipv4" else 40)
    n.put("isakmp.ts.start_port", s.start_port)
    n.put("isakmp.ts.end_port", s.end_port)
    n.put(f"isakmp.ts.start_{v}", str(s.start_address))
    n.put(f"isakmp.ts.end_{v}", str(s.end_address))


def payload_nodes(payloads: tuple[Payload, ...] | list[Payload], iv_icv: tuple[int, int] | None,
                  inner: list[Node] | None = None) -> list[Node]:
    out = []
    for i, p in enumerate(payloads):
        n = Node(p.payload_type)
        nxt = payloads[i + 1].payload_type if i + 1 < len(payloads) else 0
        if isinstance(p, Encrypted | EncryptedFragment):
            nxt = p.first_payload
        n.put("isakmp.nextpayload", nxt)
        n.put("isakmp.criticalpayload", 0)
        n.put("isakmp.payloadlength", 4 + len(p.body()))
        if isinstance(p, SecurityAssociation):
            n.children = [_proposal_node(pr, j == len(p.proposals) - 1) for j, pr in enumerate(p.proposals)]
        elif isinstance(p, KeyExchangePayload):
            n.put("isakmp.key_exchange.dh_group", p.group)
            n.put("isakmp.key_exchange.data", p.data.hex())
        elif isinstance(p, Nonce):
            n.put("isakmp.nonce", p.data.hex())
        elif isinstance(p, Notify):
            n.put("isakmp.notify.protoid", p.protocol)
            n.put("isakmp.spisize", len(p.spi))
            n.put("isakmp.notify.msgtype", p.notify_type)
            n.put("isakmp.notify.data", p.data.hex())
            if p.spi:
                n.put("isakmp.spi", p.spi.hex())
        elif isinstance(p, CertificateRequest):
            n.put("isakmp.certreq.type", p.encoding)
            for a in p.authorities:
                n.put("isakmp.ike.certreq.authority", a.hex())
        elif isinstance(p, Certificate):
            n.put("isakmp.cert.encoding", p.encoding)
        elif isinstance(p, Identification):
            n.put("isakmp.id.type", p.id_type)
        elif isinstance(p, Authentication):
            n.put("isakmp.auth.method", p.method)
            n.put("isakmp.auth.data", p.data.hex())
        elif isinstance(p, TrafficSelectors):
            n.put("isakmp.ts.number", len(p.selectors))
            for s in p.selectors:
                assert isinstance(s, TrafficSelector)
                _selector_fields(n, s)
        elif isinstance(p, Delete):
            n.put("isakmp.delete.protoid", p.protocol)
            n.put("isakmp.spisize", len(p.spis[0]) if p.spis else 0)
            n.put("isakmp.spinum", len(p.spis))
            for spi in p.spis:
                n.put("isakmp.delete.spi", spi.hex())
        elif isinstance(p, Encrypted | EncryptedFragment):
            if isinstance(p, EncryptedFragment):
                n.put("isakmp.frag.number", p.fragment_number)
                n.put("isakmp.frag.total", p.total_fragments)
            if iv_icv is not None:
                n.put("isakmp.enc.iv", p.data[:iv_icv[0]].hex())
                n.put("isakmp.enc.icd", p.data[-iv_icv[1]:].hex())
            n.children = inner or []
        out.append(n)
    return out


def our_frames(pcap: Path, keys_csv: Path, router: Provider) -> list[Frame]:
    table = KeyTable.parse(keys_csv.read_text(), router, str(keys_csv))
    reassemblers: dict[tuple[bytes, bytes], Reassembler] = {}
    out = []
    for d in datagrams(pcap.read_bytes()):
        m = Message.parse(d.data)
        assert m.serialize() == d.data, "re-serialising a captured message changed its octets"
        header = {"isakmp.ispi": m.spi_i.hex(), "isakmp.rspi": m.spi_r.hex(),
                  "isakmp.nextpayload": m.payloads[0].payload_type if m.payloads else 0,
                  "isakmp.exchangetype": int(m.exchange), "isakmp.flag_i": int(m.initiator),
                  "isakmp.flag_r": int(m.response), "isakmp.messageid": m.message_id, "isakmp.length": len(d.data)}
        keys = table.get(m.spi_i, m.spi_r)
        inner_nodes: list[Node] | None = None
        iv_icv = None
        enc = m.encrypted
        if enc is not None:
            assert keys is not None, f"no keys for IKE SA {m.spi_i.hex()}_{m.spi_r.hex()}"
            iv_icv = (keys.iv_size, keys.icv_size)
            crypto = SkCrypto(router, keys, initiator=None)
            if isinstance(enc, Encrypted):
                opened = crypto.open(d.data)
                inner_nodes = payload_nodes(opened.payloads[len(m.payloads) - 1:], None)
            else:
                whole = reassemblers.setdefault((m.spi_i, m.spi_r), Reassembler()).add(crypto.open_fragment(d.data))
                inner_nodes = payload_nodes(whole.payloads, None) if whole is not None else []
        out.append(Frame(header, payload_nodes(m.payloads, iv_icv, inner_nodes)))
    return out


def compare(ours: list[Frame], theirs: list[Frame]) -> int:
    """Assert the trees agree on every field tshark shows that we map; returns the number of values compared."""
    assert len(ours) == len(theirs), f"{len(ours)} IKE messages here, {len(theirs)} in tshark"
    count = 0

    def nodes(a: list[Node], b: list[Node], where: str) -> None:
        nonlocal count
        assert [n.type for n in a] == [n.type for n in b], f"{where}: payload types {[n.type for n in a]} " \
                                                           f"vs tshark {[n.type for n in b]}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            here = f"{where}/{i}:{x.type}"
            for key, values in y.fields.items():
                if key == "isakmp.notify.data" and values == [""]:
                    values = [""]
                assert key in x.fields, f"{here}: tshark shows {key}={values}, we have no such field"
                assert x.fields[key] == values, f"{here}: {key} ours {x.fields[key]} vs tshark {values}"
                count += len(values)
            nodes(x.children, y.children, here)

    for n, (o, t) in enumerate(zip(ours, theirs, strict=True), 1):
        for key, value in t.header.items():
            assert o.header[key] == value, f"frame {n}: {key} ours {o.header[key]} vs tshark {value}"
            count += 1
        nodes(o.payloads, t.payloads, f"frame {n}")
    return count
