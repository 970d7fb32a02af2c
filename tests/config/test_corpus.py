"""libreswan's own test configurations (tests/config/corpus, see its README): each resolves to the
connections libreswan's addconn makes of it, or is refused with the keyword named. The expected
values were written by reading each file (and, for the refusals, the test's console output), not by
running fipsike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compliance.modes import FipsMode
from fipsike.config import ConfigError, load
from fipsike.config.hosts import StaticHost
from tests.config.conftest import CORPUS, EAST, NOWHERE, RESOLVER, WEST

HOSTS = {"west": WEST, "east": EAST, "nowhere": NOWHERE}
WN, EN = "192.0.1.0-192.0.1.255", "192.0.2.0-192.0.2.255"  # westnet, eastnet
W, E = "192.1.2.45", "192.1.2.23"
X509 = {"auth": ("pubkey", "pubkey"), "ids": ("%fromcert", "%fromcert")}
PSK = {"authby": "secret", "ids": ("@west", "@east")}


def conn(local: str, addrs: tuple[str, str], children: dict[str, tuple[list[str], list[str]]] | None = None,
         **more: Any) -> dict[str, Any]:
    return {"local": local, "addrs": addrs, "children": children, **more}


def net2net(local: str = "left", name: str = "", **more: Any) -> dict[str, Any]:
    a, b = (W, E) if local == "left" else (E, W)
    ln, rn = (WN, EN) if local == "left" else (EN, WN)
    return conn(local, (a, b), {name: ([ln], [rn])} if name else None, **more)


# file, which libreswan test host reads it, {conn name: what addconn makes of it}
RESOLVES: list[tuple[str, str, dict[str, dict[str, Any]]]] = [
    ("ikev2-04-basic-x509__west.conf", "west", {
        "westnet-eastnet-ikev2": net2net("left", "westnet-eastnet-ikev2", certs=("west", "east"), **X509),
        "west-east-x509": conn("left", (W, E), {"west-east-x509": ([f"{W}-{W}"], [f"{E}-{E}"])}, **X509)}),
    ("ikev2-04-basic-x509__west.conf", "east", {  # the same file read on east: east is the right side
        "westnet-eastnet-ikev2": net2net("right", "westnet-eastnet-ikev2", certs=("east", "west"), **X509)}),
    ("ikev2-05-basic-psk__west.conf", "west", {
        "westnet-eastnet-ipv4-psk-ikev2": net2net("left", "westnet-eastnet-ipv4-psk-ikev2", **PSK)}),
    ("ikev2-11-simple-psk__west.conf", "east", {
        "westnet-eastnet-ipv4-psk-ikev2": net2net("right", "westnet-eastnet-ipv4-psk-ikev2", authby="secret",
                                                  ids=("@east", "@west"))}),
    ("ikev2-39-psk-64bytes__west.conf", "west", {"westnet-eastnet-ipv4-psk-ikev2": net2net("left", **PSK)}),
    ("ikev2-asymmetric-12-rsacert-null__west.conf", "west", {
        "westnet-eastnet-ikev2": net2net("left", "westnet-eastnet-ikev2", auth=("pubkey", "null"),
                                         ids=("%fromcert", "%null"), side_auth=("rsasig", "null"),
                                         retransmit=(2.0, 60.0))}),
    ("ikev2-asymmetric-16-auth-mismatch__east.conf", "east", {
        "westnet-eastnet-ikev2": net2net("right", auth=("null", "null"), ids=("@east", "%null"))}),
    ("ikev2-x509-12-san-dn-fromcert__west.conf", "west", {
        "san": conn("left", (W, E), ca=("%any", "%any"), **X509)}),
    ("ikev2-x509-10-san-ipv6-match__west.conf", "west", {
        "san": conn("left", ("2001:db8:1:2::45", "2001:db8:1:2::23"),
                    {"san": (["2001:db8:1:2::45-2001:db8:1:2::45"], ["2001:db8:1:2::23-2001:db8:1:2::23"])},
                    ids=("2001:db8:1:2::45", "2001:db8:1:2::23"))}),
    ("ikev2-x509-10-san-ipv6-match__west.conf", "east", {
        "san": conn("right", ("2001:db8:1:2::23", "2001:db8:1:2::45"))}),
    ("ikev2-nss-cert-pkcs11-uri-01__west.conf", "west", {
        "westnet-eastnet-ikev2": net2net("left", certs=("west", ""), **X509)}),
    ("fips-10-ikev2-psk__west.conf", "west", {
        "ikev2-defaults": net2net("left", **PSK),
        # a conn name with '=' in it; ike=aes128-sha2 gives AES-CBC-128 with SHA2-256 as PRF and integrity
        "ikev2-ike=aes128-sha2": net2net("left", ike=("ENCR_AES_CBC/128", "PRF_HMAC_SHA2_256",
                                                      "AUTH_HMAC_SHA2_256_128"), **PSK)}),
    ("ikev2-36-transport-protoport-01__west.conf", "west", {
        "ipv4-psk-ikev2-transport": conn("left", (W, E), mode="transport", protoport=((17, 1701), (17, 1702)),
                                         **PSK)}),
    ("ikev2-algo-04-aes-gcm256__west.conf", "west", {
        "westnet-eastnet-ipv4-psk-ikev2-gcm-c": net2net("left", esp=("ENCR_AES_GCM_16/256", "NONE"), **PSK)}),
    ("ikev2-algo-08-aes_gcm-sha2_512__west.conf", "west", {
        # aes_gcm without a length: 256 then 128 bits; AEAD, so sha2_512 is the PRF only
        "westnet-eastnet-ipv4-psk-ikev2-gcm-c": net2net("left", ike=(
            "ENCR_AES_GCM_16/256+ENCR_AES_GCM_16/128", "PRF_HMAC_SHA2_512", ""), **PSK)}),
    ("ikev2-algo-17-chacha20_poly1305-ike-esp__west.conf", "west", {
        "westnet-eastnet-chacha": net2net("left", esp=("ENCR_CHACHA20_POLY1305/256", "NONE"), **PSK)}),
    ("ikev2-invalid-ke-09-preference-ecp__west.conf", "west", {
        "westnet-eastnet-ipv4-psk-ikev2": net2net("left", ike_groups=(("ECP_256",), ("MODP_3072",)), **PSK)}),
    ("ikev2-rw-multiple-subnets__east.conf", "east", {
        # right=east is local; left=%any; rightsubnets= gives one Child SA per pair, named NAME/LxR
        "east": conn("right", (E, "%any"), {
            "east/1x1": (["192.0.2.0-192.0.2.255"], ["198.18.66.0-198.18.66.255"]),
            "east/1x2": (["192.0.20.0-192.0.20.255"], ["198.18.66.0-198.18.66.255"])}, auto="add")}),
    ("ikev2-selectors-46in6-rw-alias__east.conf", "east", {
        # both sides list an IPv4 and an IPv6 subnet: pairs only within a family
        "east": conn("right", ("2001:db8:1:2::23", "%any"), {
            "east/1x1": (["192.0.2.0-192.0.2.255"], ["198.18.66.0-198.18.66.255"]),
            "east/2x2": (["2001:db8:0:20::-2001:db8:0:20:ffff:ffff:ffff:ffff"],
                         ["2001:db8:0:30::-2001:db8:0:30:ffff:ffff:ffff:ffff"])},
            authby="secret", ids=("@east", "@road"))}),
    ("certoe-16-rhbz1724200-halfopen-shunt__east.conf", "east", {
        "clear": conn("left", (E, "%any"), type="passthrough", authby="never", group="clear", auto="ondemand"),
        "private": conn("left", (E, "%any"), group="private", auto="ondemand", ids=("%fromcert", "%fromcert"),
                        certs=("east", ""), shunts=("hold", "drop"))}),
    ("github-1188-lost-policy__east.conf", "east", {
        "private": conn("left", (E, "%any"), group="private", authby="secret", ids=("@id", "@id"),
                        auto="route", shunts=("drop", "drop"))}),
    ("ikev2-x509-ecdsa-03-legacy-initiator__west.conf", "west", {
        "westnet-eastnet-ikev2": net2net("left", authby="ecdsa")}),
    ("ikev2-x509-ecdsa-05-rsa-asym__west.conf", "west", {
        "westnet-eastnet-ikev2": net2net("left", side_auth=("rsasig", "ecdsa"), ids=("%fromcert", "%any"))}),
    ("ikev2-x509-16-multicert__west.conf", "west", {
        "main": conn("left", (W, E), ids=("@west.testing.libreswan.org", "@east.testing.libreswan.org"),
                     certs=("west", "")),
        "other": conn("left", (W, E), ids=("@otherwest.other.libreswan.org", "@othereast.other.libreswan.org"),
                      certs=("otherwest", ""))}),
    ("ikev2-frag-04-nofrag-east__east.conf", "east", {
        "westnet-eastnet-ikev2": net2net("right", fragmentation=False)}),
    ("ikev2-liveness-01-east-active-clear__east.conf", "east", {
        "westnet-eastnet-ipv4-psk-ikev2": net2net("right", dpd_delay=5.0, retransmit=(0.5, 15.0))}),

    # libreswan: "added unoriented IKEv2 connection (neither left=... nor right=... match an interface)"
    ("excerpt__addconn-12-family__4in4-good.conf", "west", {
        "4in4-good": conn("left", ("10.11.12.13", "20.21.22.23"),
                          {"4in4-good": (["1.2.3.0-1.2.3.255"], ["0.0.0.0-255.255.255.255"])}, oriented=False)}),
    ("addconn-45-unknown-parameter__obsolete-config-setup-key.conf", "west", {}),
]


def _load(name: str, host: str, secrets: Path, ipsecdir: Path, mode: FipsMode = FipsMode.OFF) -> Any:
    h: StaticHost = HOSTS[host]
    return load(CORPUS / name, secrets=secrets, ipsecdir=ipsecdir, fips_mode=mode, host=h, resolver=RESOLVER)


def _props(parsed: Any) -> list[tuple[str, str, str]]:
    return [("+".join(str(c) for c in p.ciphers), "+".join(x.name for x in p.prfs),
             "+".join(x.name for x in p.integrity)) for p in parsed]


@pytest.mark.parametrize(("name", "host", "expected"), RESOLVES, ids=[f"{r[0]}@{r[1]}" for r in RESOLVES])
def test_resolves_like_addconn(name: str, host: str, expected: dict[str, dict[str, Any]], secrets: Path,
                               ipsecdir: Path) -> None:
    loaded = _load(name, host, secrets, ipsecdir)
    for cname, exp in expected.items():
        spec = loaded.conn(cname)
        c = spec.connection
        assert spec.local == exp["local"], cname
        assert (c.local_addrs[0], c.remote_addrs[0]) == exp["addrs"]
        assert spec.oriented == exp.get("oriented", True)
        if exp["children"] is not None:
            got = {ch.name: ([f"{t.start}-{t.end}" for t in ch.local_ts], [f"{t.start}-{t.end}" for t in ch.remote_ts])
                   for ch in c.children}
            assert got == exp["children"]
        if "ids" in exp:
            assert (c.local_id, c.remote_id) == exp["ids"]
        if "auth" in exp:
            assert (c.local_auth, c.remote_auth) == exp["auth"]
        if "side_auth" in exp:
            assert (spec.local_side.auth, spec.remote_side.auth) == exp["side_auth"]
        if "authby" in exp:
            assert spec.authby == exp["authby"]
        if "certs" in exp:
            assert (spec.local_side.cert, spec.remote_side.cert) == exp["certs"]
        if "ca" in exp:
            assert (spec.local_side.ca, spec.remote_side.ca) == exp["ca"]
        if "mode" in exp:
            assert {ch.mode for ch in c.children} == {exp["mode"]}
        if "protoport" in exp:
            (lp, lport), (rp, rport) = exp["protoport"]
            ch = c.children[0]
            assert (ch.local_ts[0].protocol, ch.local_ts[0].start_port, ch.local_ts[0].end_port) == (lp, lport, lport)
            assert (ch.remote_ts[0].protocol, ch.remote_ts[0].start_port) == (rp, rport)
        if "ike" in exp:
            assert _props(spec.ike_parsed)[0] == exp["ike"]
        if "ike_groups" in exp:
            assert tuple(tuple(k.name for k in p.ke) for p in spec.ike_parsed) == exp["ike_groups"]
        if "esp" in exp:
            got_esp = _props(spec.esp_parsed)[0]
            assert (got_esp[0], got_esp[2]) == exp["esp"]
        if "type" in exp:
            assert spec.type == exp["type"]
        if "group" in exp:
            assert spec.opportunistic and spec.policy_group == exp["group"]
        if "auto" in exp:
            assert spec.auto == exp["auto"]
        if "shunts" in exp:
            assert (spec.negotiationshunt, spec.failureshunt) == exp["shunts"]
        if "fragmentation" in exp:
            assert c.fragmentation is exp["fragmentation"]
        if "dpd_delay" in exp:
            assert c.dpd_delay == exp["dpd_delay"]
        if "retransmit" in exp:  # (first wait, give up after at least)
            first, total = exp["retransmit"]
            assert c.retransmit.timeout(0) == first and c.retransmit.total() >= total
            assert c.retransmit.total() - c.retransmit.timeout(c.retransmit.tries - 1) < total
    if expected:
        assert {c.name for c in loaded.conns} >= set(expected)


# file, host, [(line, conn, keyword, words in the message)], does libreswan refuse it too?
REFUSES: list[tuple[str, str, list[tuple[int, str, str, str]], bool]] = [
    ("addconn-45-unknown-parameter__bad-conn-key.conf", "west",
     [(9, "bad-conn-key", "unknown", "unrecognized 'conn' keyword 'unknown'")], True),
    ("addconn-45-unknown-parameter__bad-config-setup-key.conf", "west",
     [(7, "config setup", "unknown", "unrecognized 'config setup' keyword 'unknown'")], True),
    ("addconn-01-left-is-right__missing-prefix.conf", "west",
     [(5, "missing-prefix", "subnet", "requires a 'left' or 'right' prefix")], True),
    ("addconn-01-left-is-right__implied-prefix.conf", "west",
     [(5, "implied-prefix", "updown", "requires a 'left' or 'right' prefix")], True),
    ("addconn-22-authby-hash-algo__west-errors.conf", "west",
     [(7, "ecdsa-sha1-should-fail", "authby", "ecdsa-sha1"),
      (12, "ikev1-rsa2-should-fail", "keyexchange", "IKEv2 only"),
      (18, "ikev1-ecdsa-should-fail", "keyexchange", "IKEv2 only")], True),
    ("addconn-16-empty-config-option__west.conf", "west", [(15, "first", "rightsubnet", "empty value")], True),
    ("addconn-43-x-comment__west.conf", "west", [(7, "ignore", "left", "left= is not set")], True),
    ("excerpt__addconn-12-family__4in4-bad.conf", "west",
     [(7, "4in4-bad", "leftsubnet", "address family")], True),
    ("excerpt__addconn-12-family__4in6-base.conf", "west",
     [(7, "4in6-base", "leftsubnet", "address family")], True),
    ("excerpt__addconn-17-config-time-suffix__time-wip-hex.conf", "west",
     [(10, "time-wip-hex", "rekeymargin", "expected a duration")], True),
    ("excerpt__addconn-18-config-percentage-suffix__percentage-wip.conf", "west",
     [(4, "percentage-wip", "rekeyfuzz", "expected a percentage")], True),
    ("excerpt__addconn-14-addresspool__comma-4.conf", "west",
     [(8, "comma-4", "leftaddresspool", "libreswan keyword 'leftaddresspool' is not supported by fipsike")], True),
    ("excerpt__addconn-19-include-recursive__west.conf", "west", [(17, "", "include", "recursive")], True),
    # libreswan adds these; fipsike refuses by name what it does not implement (or would run differently)
    ("addconn-01-left-is-right__redundant-prefix.conf", "west",
     [(5, "redundant-prefix", "leftupdown", "libreswan keyword 'leftupdown' is not supported by fipsike")], False),
    ("addconn-10-duplicate-key__west.conf", "west", [(18, "westnet-eastnet-ikev2", "left", "duplicate")], False),
    ("addconn-20-conn-default__west.conf", "west", [(11, "second", "ike", "ENCR_3DES")], False),
    # a raw RSA key in conn %default (libreswan adds test1 and test2 with it)
    ("addconn-24-conn-default-rsasigkey__west.conf", "west",
     [(11, "%default", "rightrsasigkey", "libreswan keyword 'rightrsasigkey' is not supported by fipsike")], False),
    ("addconn-45-unknown-parameter__obsolete-conn-key.conf", "west",
     [(8, "obsolete-conn-key", "left", "left= is not set")], False),
]


@pytest.mark.parametrize(("name", "host", "expected", "libreswan_refuses"), REFUSES, ids=[r[0] for r in REFUSES])
def test_refused_with_file_line_and_keyword(name: str, host: str, expected: list[tuple[int, str, str, str]],
                                            libreswan_refuses: bool, secrets: Path, ipsecdir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(name, host, secrets, ipsecdir)
    diags = info.value.diagnostics
    for line, cname, keyword, words in expected:
        match = [d for d in diags if d.location.line == line and d.conn == cname and d.keyword == keyword
                 and words in d.message]
        assert match, f"no {line}/{cname}/{keyword}/{words!r} in {[str(d) for d in diags]}"
        assert str(match[0]).startswith(f"{CORPUS / name}:{line}: ")


def test_corpus_size_and_coverage() -> None:
    files = {p.name for p in CORPUS.glob("*.conf")}
    used = {r[0] for r in RESOLVES} | {r[0] for r in REFUSES}
    assert used <= files and len(used) >= 40
    assert sum(1 for r in REFUSES if r[3]) >= 10  # configurations libreswan itself rejects
    text = "".join((CORPUS / f).read_text() for f in used)
    for feature in ("leftcert=", "authby=secret", "authby=null", "%opportunisticgroup", "also=", "conn %default",
                    "include ", "2001:db8:"):
        assert feature in text, feature


def test_obsolete_and_x_comments_are_warnings(secrets: Path, ipsecdir: Path) -> None:
    loaded = _load("addconn-45-unknown-parameter__obsolete-config-setup-key.conf", "west", secrets, ipsecdir)
    assert any(w.keyword == "virtual_private" and "obsolete" in w.message and w.location.line == 7
               for w in loaded.warnings)
    with pytest.raises(ConfigError) as info:
        _load("addconn-43-x-comment__west.conf", "west", secrets, ipsecdir)
    # only the missing hosts (libreswan: "left= is not set"), nothing about the x- lines
    assert {(d.conn, d.keyword) for d in info.value.diagnostics} == {("ignore", "left"), ("ignore", "right")}


IKE_LINE = 24  # ike=chacha20_poly1305-sha2_256 in ikev2-algo-17-chacha20_poly1305-ike-esp/west.conf


def test_fips_mode_refuses_chacha(secrets: Path, ipsecdir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load("ikev2-algo-17-chacha20_poly1305-ike-esp__west.conf", "west", secrets, ipsecdir, FipsMode.POLICY)
    kws = {(d.keyword, d.location.line) for d in info.value.diagnostics if "CHACHA20" in d.message}
    assert kws == {("ike", IKE_LINE), ("esp", IKE_LINE + 1)}
