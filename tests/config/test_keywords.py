"""The keyword table: every libreswan 4.x/5.x keyword is implemented, a no-op with a warning, refused by
name, obsolete (a warning) or an alias; unknown keywords reject the whole file; the docs page is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.modes import FipsMode
from fipsike.config import ConfigError, load
from fipsike.config import keywords as K
from fipsike.config.docs import render
from tests.config.conftest import RESOLVER, WEST

# The keyword names of libreswan's config tables: lib/libipsecconf/keywords.c (v4.15, v5.0) and
# lib/libswan/ipsecconf/setup.c / conn.c (v5.x main). Facts, listed here to check our table against.
LIBRESWAN_SETUP = """
ikev1-policy curl-iface curl-timeout myvendorid syslog plutodebug logfile plutostderrlog loglimit logtime logappend
logip audit-log dnssec-enable dnssec-rootkey-file dnssec-anchors dumpdir ipsecdir nssdir exampledir rundir logstderr
secretsfile statsbin uniqueids shuntlifetime global-redirect global-redirect-to crl-strict crlcheckinterval
crl-timeout ocsp-strict ocsp-enable ocsp-uri ocsp-timeout ocsp-trustname ocsp-cache-size ocsp-cache-min-age
ocsp-cache-max-age ocsp-method ddos-mode seccomp ddos-ike-threshold max-halfopen-ike ike-socket-bufsize
ike-socket-errqueue nflog-all expire-lifetime xfrmlifetime virtual-private virtual_private seeddev seedbits
keep-alive listen-tcp listen-udp listen protostack nhelpers drop-oppo-null expire-shunt-interval dns-resolver
ipsec-interface-managed ikev1-secctx-attr-type secctx-attr-type interfaces
""".split()
LIBRESWAN_CONN_SIDE = """
subnet subnets sourceip ikeport interface-ip vti nexthop updown updown-config id rsasigkey ecdsakey eddsakey pubkey
cert ckaid sendcert ca xauthserver xauthclient modecfgserver modecfgclient username xauthusername addresspool auth
cat protoport autheap groundhog
""".split()
LIBRESWAN_CONN = """
also alsoflip connalias auto hostaddrfamily clientaddrfamily type authby keyexchange ikev2 ppk ppk-ids intermediate
esn decap-dscp encap-dscp nopmtudisc fragmentation mobike narrowing pam-authorize send-redirect redirect-to
accept-redirect accept-redirect-to pfs session-resumption send-supported-auth-methods nat-keepalive initial-contact
send-esp-tfc-padding-not-supported send-no-esp-tfc reject-simultaneous-ike-auth iptfs iptfs-fragmentation
iptfs-packet-size iptfs-max-queue-size iptfs-reorder-window iptfs-init-delay iptfs-drop-time fake-strongswan
send-vendorid sha2-truncbug share-lease ms-dh-downgrade pfs-rekey-workaround require-id-on-certificate dns-match-id
ipsec-max-bytes ipsec-max-packets ipsec-lifetime keylife lifetime salifetime retransmit-timeout retransmit-interval
ikepad nat-ikev1-method sec-label policy-label remote-peer-type remote_peer_type nm-configured cisco-unity
cisco-split xauthby xauthfail modecfgpull modecfgdns modecfgdomains modecfgbanner ignore-peer-dns mark mark-in
mark-out vti-interface vti-routing vti-shared ipsec-interface clones nic-offload encapsulation forceencaps overlapip
reauth rekey rekeymargin rekeyfuzz keyingtries replay-window ikelifetime failureshunt negotiationshunt enable-tcp
tcp-remoteport ike esp ah phase2 phase2alg compress metric dpddelay dpdtimeout ikev1-dpdtimeout dpdaction sendca mtu
priority tfc reqid nflog nflog-group aggressive aggrmode debug
""".split()


def test_every_libreswan_keyword_has_a_row() -> None:
    for name in LIBRESWAN_SETUP:
        assert K.lookup(K.SETUP, name) is not None, name
    for name in LIBRESWAN_CONN:
        assert K.lookup(K.CONN, name) is not None, name
    for name in LIBRESWAN_CONN_SIDE:
        for side in ("left", "right"):
            found = K.lookup(K.CONN, side + name)
            assert found is not None and found.side == side, side + name
    for side in ("left", "right"):
        assert K.lookup(K.CONN, side) is not None


def test_rows_are_well_formed() -> None:
    names = [(k.section, k.name) for k in K.all_keywords()]
    assert len(names) == len(set(names))
    for k in K.all_keywords():
        assert k.status in (K.IMPLEMENTED, K.NOOP, K.REFUSED, K.OBSOLETE, K.ALIAS)
        if k.status == K.ALIAS:
            target = K.lookup(k.section, ("left" if k.leftright else "") + k.alias_of)
            assert target is not None and target.keyword.status != K.ALIAS
        else:
            assert k.note, k.name  # every decision says what or why
        if k.type == "choice" and k.status in (K.IMPLEMENTED, K.NOOP):
            assert k.choices


def _load(tmp_path: Path, text: str, mode: FipsMode = FipsMode.OFF):  # type: ignore[no-untyped-def]
    conf = tmp_path / "ipsec.conf"
    conf.write_text(text)
    (tmp_path / "d" / "policies").mkdir(parents=True, exist_ok=True)
    secrets = tmp_path / "ipsec.secrets"
    secrets.write_text(': PSK "' + "k" * 64 + '"\n')
    secrets.chmod(0o600)
    return load(conf, secrets=secrets, ipsecdir=tmp_path / "d", fips_mode=mode, host=WEST, resolver=RESOLVER)


BASE = "conn a\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tleftcert=west\n"


@pytest.mark.parametrize(("line", "keyword"), [
    ("\tleftsourceip=192.0.1.254\n", "leftsourceip"),
    ("\tmobike=yes\n", "mobike"),
    ("\tah=sha2\n", "ah"),
    ("\tleftxauthserver=yes\n", "leftxauthserver"),
    ("\tvti-interface=vti0\n", "vti-interface"),
    ("\tleftrsasigkey=0sAQO\n", "leftrsasigkey"),
    ("\tcompress=yes\n", "compress"),
    ("\tenable-tcp=yes\n", "enable-tcp"),
])
def test_refused_keyword_named(tmp_path: Path, line: str, keyword: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, BASE + line)
    (d,) = info.value.diagnostics
    assert d.message.startswith(f"libreswan keyword '{keyword}' is not supported by fipsike: ")
    assert (d.location.line, d.conn, d.keyword) == (5, "a", keyword)


@pytest.mark.parametrize("line", ["\tmobike=no\n", "\tleftrsasigkey=%cert\n", "\tcompress=no\n",
                                  "\tleftupdown=%disabled\n"])
def test_refused_keyword_asking_for_what_fipsike_does_passes(tmp_path: Path, line: str) -> None:
    assert _load(tmp_path, BASE + line).conn("a")


def test_unknown_keyword_rejects_whole_file(tmp_path: Path) -> None:
    text = BASE + "conn b\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tfrobnicate=yes\n"
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert [str(d).split(": ", 1)[1] for d in info.value.diagnostics] == [
        "conn b: frobnicate: unrecognized 'conn' keyword 'frobnicate'"]


@pytest.mark.parametrize("line", ["\tdpdaction=restart\n", "\tkeyingtries=%forever\n", "\tclientaddrfamily=ipv4\n",
                                  "\tx-my-note=anything at all\n", "\tX_other\n"])
def test_obsolete_and_x_keywords_warn(tmp_path: Path, line: str) -> None:
    loaded = _load(tmp_path, BASE + line)
    assert [w.location.line for w in loaded.warnings] == [5]


def test_obsolete_setup_keyword_warns(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "config setup\n\tinterfaces=%defaultroute\n\tplutostderrlog=/x\n" + BASE)
    assert [(w.keyword, w.location.line) for w in loaded.warnings] == [("interfaces", 2), ("plutostderrlog", 3)]


@pytest.mark.parametrize("value", ["insist", "propose", "yes", "always"])
def test_ikev2_spellings_are_ikev2(tmp_path: Path, value: str) -> None:
    assert _load(tmp_path, BASE + f"\tikev2={value}\n").conn("a")


@pytest.mark.parametrize("line", ["\tikev2=no\n", "\tikev2=never\n", "\tikev2=permit\n", "\tkeyexchange=ike\n",
                                  "\tkeyexchange=ikev1\n"])
def test_ikev1_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match="IKEv2 only"):
        _load(tmp_path, BASE + line)


def test_keyexchange_ikev2_and_phase2alg_alias(tmp_path: Path) -> None:
    spec = _load(tmp_path, BASE + "\tkeyexchange=ikev2\n\tphase2alg=aes_gcm_16_128\n").conn("a")
    assert spec.esp == "aes_gcm_16_128" and not spec.esp_default
    assert [str(c) for c in spec.esp_parsed[0].ciphers] == ["ENCR_AES_GCM_16/128"]


def test_alias_and_name_together_is_a_duplicate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate"):
        _load(tmp_path, BASE + "\tesp=aes_gcm_16_128\n\tphase2alg=aes_gcm_16_256\n")


@pytest.mark.parametrize(("authby", "local_auth"), [
    ("rsasig", "rsasig"), ("rsa-sha2", "rsasig"), ("rsa-sha2_384", "rsasig"), ("ecdsa", "ecdsa"),
    ("ecdsa-sha2_256", "ecdsa"), ("secret", "secret"), ("rsasig,ecdsa", "rsasig")])
def test_authby_spellings(tmp_path: Path, authby: str, local_auth: str) -> None:
    text = BASE + f"\tauthby={authby}\n"
    if authby == "secret":
        text = "conn a\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tauthby=secret\n"
    spec = _load(tmp_path, text).conn("a")
    assert spec.authby == local_auth and spec.local_side.auth == local_auth


def test_leftauth_rightauth_override_authby(tmp_path: Path) -> None:
    spec = _load(tmp_path, BASE + "\tauthby=rsasig\n\trightauth=null\n").conn("a")
    assert (spec.left.auth, spec.right.auth) == ("rsasig", "null")
    assert (spec.connection.local_auth, spec.connection.remote_auth) == ("pubkey", "null")


@pytest.mark.parametrize(("line", "words"), [
    ("\tikelifetime=0\n", "below the minimum"), ("\tikelifetime=31d\n", "above the maximum"),
    ("\tleftikeport=70000\n", "above"), ("\tleftikeport=0\n", "below"), ("\treplay-window=-1\n", "below"),
    ("\tauto=sometimes\n", "expected one of"), ("\tpfs=maybe\n", "yes or no"),
    ("\tleftsubnet=10.0.0.1/8\n", "host bits"),
    ("\tleftsubnet=10.0.0.0/33\n", "not a subnet"), ("\tleftprotoport=tcp/99999\n", "bad port"),
    ("\tleftprotoport=icmp/80\n", "tcp, udp or sctp"), ("\tmark=0x1/0x100000000\n", "32-bit"),
    ("\tleftid=%bogus\n", "unknown identity"), ("\tleftsubnet=%priv\n", "virtual-private"),
    ("\tike=aes-nosuchhash\n", "unknown hash"),
    ("\tesp=aes_gcm-sha2\n", "AEAD"), ("\tipsec-max-bytes=lots\n", "2^N"),
])
def test_values_typed_and_range_checked(tmp_path: Path, line: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, BASE + line)
    d = info.value.first
    assert words in d.message and d.location.line == 5 and d.conn == "a"


@pytest.mark.parametrize(("right", "words"), [("%nonsense", "unsupported host"),
                                             ("no.such.host.invalid", "cannot resolve")])
def test_bad_hosts(tmp_path: Path, right: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"conn a\n\tleft=192.1.2.45\n\tright={right}\n")
    assert words in info.value.first.message and info.value.first.location.line == 3


def test_names_from_hosts_file_and_defaultroute(tmp_path: Path) -> None:
    spec = _load(tmp_path, "conn a\n\tleft=%defaultroute\n\tright=east\n\tleftcert=west\n").conn("a")
    assert spec.connection.local_addrs == ("192.1.2.45",) and spec.connection.remote_addrs == ("192.1.2.23",)


def test_docs_page_is_current() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "config-keywords.md"
    assert page.read_text() == render(), "run: python -m fipsike.config.docs > docs/config-keywords.md"


def test_setup_keyword_twice_later_wins_with_warning(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "config setup\n\tplutodebug=all\n\tplutodebug=none\n" + BASE)
    assert loaded.setup_value("plutodebug") == "none"
    assert [(w.keyword, w.location.line) for w in loaded.warnings] == [("plutodebug", 3)]
