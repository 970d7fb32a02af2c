"""THE keyword table: every libreswan 4.x/5.x ipsec.conf keyword, and what fipsike does with it.

Each row is one of:
- implemented: typed and range-checked (see `type`), and used (by the engine's Connection or the
  config-side ConnSpec / SetupSpec that the daemon consumes);
- noop: typed and checked, but it has no effect in fipsike; every use gives a warning saying why;
- refused: "libreswan keyword 'X' is not supported by fipsike: <why>". `accept_only` lists values
  that ask for exactly what fipsike does anyway (`mobike=no`), which are accepted quietly;
- obsolete: libreswan itself ignores it (with a warning); so do we;
- alias: another spelling of `alias_of`.

Keywords not in this table reject the whole file, as libreswan rejects them. The names come from
libreswan's keyword tables (lib/libipsecconf/keywords.c in v4.x/v5.0, lib/libswan/ipsecconf/conn.c and
setup.c in v5.x); the decisions and reasons are fipsike's. docs/config-keywords.md is rendered from this
table (fipsike.config.docs; a test checks the page is current).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

IMPLEMENTED, NOOP, REFUSED, OBSOLETE, ALIAS = "implemented", "noop", "refused", "obsolete", "alias"
CONN, SETUP = "conn", "setup"


@dataclass(frozen=True)
class Keyword:
    name: str
    section: str  # "conn" or "setup"
    status: str
    type: str = "string"  # value type (fipsike.config.values.TYPES); for refused: how accept_only is read
    leftright: bool = False  # spelled left<name>= / right<name>= ("" is left= / right=)
    choices: tuple[str, ...] = ()  # for type "choice"
    low: int | None = None  # range for integers / seconds
    high: int | None = None
    accept_only: tuple[str, ...] = ()
    alias_of: str = ""
    note: str = ""  # refused/noop/obsolete: why; implemented: what it sets

    def spelled(self, side: str = "left") -> str:
        return f"{side}{self.name}" if self.leftright else self.name


# Reasons, spelled once.
IKEV1 = "IKEv1 only; fipsike speaks IKEv2 only (RFC 7296)"
XAUTH = "XAUTH and IKEv1 mode config are IKEv1; fipsike speaks IKEv2 only"
CP = "the IKEv2 configuration payload and address pools (RFC 7296 3.15) are not implemented"
VTI = "route-based interfaces (VTI, XFRMi) are not implemented; fipsike installs policy-based SAs"
ROUTES = "fipsike installs no routes or addresses; the kernel's routing table decides"
RAWKEY = "raw public keys are not supported; authenticate with certificates (leftcert=) or a PSK"
REDIRECT = "IKEv2 redirect (RFC 5685) is not implemented"
TCP = "IKE and ESP over TCP (RFC 9329) are not implemented"
IPTFS = "IP-TFS (RFC 9347) is not implemented"
INTEROP = "a vendor interoperability workaround fipsike does not implement"
LABEL = "labeled IPsec (SELinux security contexts) is not implemented"
OCSP = "OCSP is not implemented; revocation is checked with CRLs (crl-strict=)"
LOG = "carried to the daemon's logging set-up"
DNSSEC = "DNSSEC and IPSECKEY lookups are not implemented"
NOEFFECT_V1 = "affects IKEv1 only, and fipsike speaks IKEv2 only"


def _c(name: str, status: str, type_: str = "string", **kw: object) -> Keyword:
    return Keyword(name, CONN, status, type_, **kw)  # type: ignore[arg-type]


def _lr(name: str, status: str, type_: str = "string", **kw: object) -> Keyword:
    return Keyword(name, CONN, status, type_, leftright=True, **kw)  # type: ignore[arg-type]


def _s(name: str, status: str, type_: str = "string", **kw: object) -> Keyword:
    return Keyword(name, SETUP, status, type_, **kw)  # type: ignore[arg-type]


NO = ("no",)
YES_NO = ("yes", "no")
DAY = 86400

CONN_KEYWORDS: Final[tuple[Keyword, ...]] = (
    # --- per side: left<kw>= / right<kw>= -----------------------------------------------------------
    _lr("", IMPLEMENTED, "host", note="the side's IKE address: IPv4/IPv6 literal, a name (/etc/hosts, DNS), "
        "%defaultroute, %any, %opportunisticgroup, %group"),
    _lr("subnet", IMPLEMENTED, "subnets", note="traffic selector(s) of this side (CIDR list)"),
    _lr("subnets", IMPLEMENTED, "subnets", note="several subnets: one Child SA per pair, as libreswan"),
    _lr("protoport", IMPLEMENTED, "protoport", note="PROTOCOL[/PORT] narrowing the traffic selector"),
    _lr("id", IMPLEMENTED, "id", note="%fromcert, %null, %any, @fqdn, @#hex, user@fqdn, IP, DN"),
    _lr("cert", IMPLEMENTED, "string", note="certificate nickname in the store, or a PKCS#11 URI (RFC 7512)"),
    _lr("ca", IMPLEMENTED, "string", note="trust anchor name for the peer's chain; %same: this side's issuer"),
    _lr("sendcert", IMPLEMENTED, "choice", choices=("always", "alwayssend", "yes", "ifasked", "sendifasked",
                                                    "never", "no"), note="when to send our certificate"),
    _lr("auth", IMPLEMENTED, "choice", choices=("rsasig", "rsa", "ecdsa", "secret", "null", "eaponly"),
        note="this side's authentication method (overrides authby=)"),
    _lr("ikeport", IMPLEMENTED, "uint", low=1, high=65535, note="the side's IKE UDP port"),
    _lr("nexthop", NOOP, "string", note=ROUTES),
    _lr("sourceip", REFUSED, note=ROUTES),
    _lr("interface-ip", REFUSED, note=VTI),
    _lr("vti", REFUSED, note=VTI),
    _lr("updown", REFUSED, accept_only=("%disabled", ""), note="fipsike runs no updown scripts"),
    _lr("updown-config", REFUSED, note="fipsike runs no updown scripts"),
    _lr("rsasigkey", REFUSED, accept_only=("%cert", ""), note=RAWKEY),
    _lr("ecdsakey", REFUSED, accept_only=("%cert", ""), note=RAWKEY),
    _lr("eddsakey", REFUSED, accept_only=("%cert", ""), note=RAWKEY),
    _lr("pubkey", REFUSED, accept_only=("%cert", ""), note=RAWKEY),
    _lr("ckaid", REFUSED, note="name the private key through leftcert= (a nickname or a PKCS#11 URI)"),
    _lr("xauthserver", REFUSED, accept_only=NO, note=XAUTH),
    _lr("xauthclient", REFUSED, accept_only=NO, note=XAUTH),
    _lr("username", REFUSED, note=XAUTH),
    _lr("xauthusername", ALIAS, alias_of="username"),
    _lr("modecfgserver", REFUSED, accept_only=NO, note=CP),
    _lr("modecfgclient", REFUSED, accept_only=NO, note=CP),
    _lr("addresspool", REFUSED, note=CP),
    _lr("cat", REFUSED, accept_only=NO, note="client address translation needs the configuration payload: " + CP),
    _lr("autheap", REFUSED, accept_only=("none",), note="EAP authentication is not implemented"),
    _lr("groundhog", REFUSED, accept_only=NO, note="a libreswan test hook"),
    # --- per connection ----------------------------------------------------------------------------
    _c("also", IMPLEMENTED, "string", note="include the named conn's settings (resolved before %default)"),
    _c("alsoflip", REFUSED, note="removed in libreswan 5; write the included conn with left and right swapped"),
    _c("connalias", IMPLEMENTED, "string", note="other names for the conn (blank-separated)"),
    _c("auto", IMPLEMENTED, "choice", choices=("ignore", "add", "ondemand", "route", "start", "up", "keep"),
       note="what the daemon does at load: nothing, add, install trap policies, or initiate"),
    _c("type", IMPLEMENTED, "choice", choices=("tunnel", "transport", "passthrough", "pass", "drop", "reject"),
       note="tunnel/transport mode, or a shunt conn (passthrough/drop/reject)"),
    _c("authby", IMPLEMENTED, "authby", note="secret, rsasig, rsa-sha2(_256/384/512), ecdsa(-sha2...), null, "
       "never; the list form (rsasig,ecdsa) as libreswan"),
    _c("keyexchange", IMPLEMENTED, "choice", choices=("ikev2", "ike", "ikev1"),
       note="ikev2 only (libreswan 5's spelling); ike and ikev1 are refused"),
    _c("ikev2", IMPLEMENTED, "choice", choices=("insist", "propose", "yes", "always", "permit", "no", "never"),
       note="libreswan 5 takes insist/propose/yes/always as IKEv2; no/never/permit (IKEv1) are refused"),
    _c("hostaddrfamily", IMPLEMENTED, "choice", choices=("ipv4", "ipv6", "v4", "v6", "inet", "inet6"),
       note="checks the family of left= and right="),
    _c("ike", IMPLEMENTED, "proposals", note="IKE proposals, libreswan grammar (compliance.proposals)"),
    _c("esp", IMPLEMENTED, "proposals", note="ESP proposals, libreswan grammar (compliance.proposals)"),
    _c("phase2alg", ALIAS, alias_of="esp"),
    _c("phase2", IMPLEMENTED, "choice", choices=("esp",), note="esp only (AH is refused)"),
    _c("ah", REFUSED, note="AH is not supported: fipsike negotiates IKE and ESP SAs only (RFC 8221 prefers ESP)"),
    _c("pfs", IMPLEMENTED, "yesno", note="a KE transform in CREATE_CHILD_SA (the IKE SA's groups)"),
    _c("ikelifetime", IMPLEMENTED, "seconds", low=1, high=30 * DAY, note="IKE SA lifetime (default 8 h)"),
    _c("ipsec-lifetime", IMPLEMENTED, "seconds", low=1, high=30 * DAY, note="Child SA lifetime (default 8 h)"),
    _c("salifetime", ALIAS, alias_of="ipsec-lifetime"),
    _c("keylife", ALIAS, alias_of="ipsec-lifetime"),
    _c("lifetime", ALIAS, alias_of="ipsec-lifetime"),
    _c("rekey", IMPLEMENTED, "yesno", note="rekey before expiry (no: let the SA expire)"),
    _c("rekeymargin", IMPLEMENTED, "seconds", low=0, high=30 * DAY, note="rekey this long before expiry"),
    _c("rekeyfuzz", IMPLEMENTED, "percent", low=0, high=1000, note="random extra margin, percent"),
    _c("reauth", REFUSED, accept_only=NO, note="IKEv2 reauthentication (RFC 7296 2.8.3) is not implemented; "
       "the IKE SA is rekeyed"),
    _c("replay-window", IMPLEMENTED, "uint", low=0, high=4096, note="ESP anti-replay window, packets"),
    _c("esn", IMPLEMENTED, "choice", choices=("no",), note="no only: the engine offers NO_ESN (RFC 4303)"),
    _c("dpddelay", IMPLEMENTED, "seconds", low=0, high=DAY, note="liveness check interval (0: off)"),
    _c("dpdtimeout", IMPLEMENTED, "seconds", low=0, high=DAY, note="give up on the peer after this"),
    _c("ikev1-dpdtimeout", ALIAS, alias_of="dpdtimeout"),
    _c("retransmit-timeout", IMPLEMENTED, "seconds", low=1, high=DAY, note="give up retransmitting after"),
    _c("retransmit-interval", IMPLEMENTED, "milliseconds", low=10, high=60_000,
       note="first retransmission after (milliseconds), doubling"),
    _c("fragmentation", IMPLEMENTED, "choice", choices=("yes", "no", "force"),
       note="RFC 7383 IKE fragmentation (force is refused)"),
    _c("encapsulation", IMPLEMENTED, "choice", choices=("yes", "no", "auto"),
       note="UDP encapsulation (RFC 3948): yes forces it, auto on NAT"),
    _c("forceencaps", REFUSED, note="removed in libreswan 5; write encapsulation=yes"),
    _c("nat-keepalive", IMPLEMENTED, "yesno", note="NAT keepalives (RFC 3948 4)"),
    _c("initial-contact", IMPLEMENTED, "yesno", note="send INITIAL_CONTACT (RFC 7296 2.4)"),
    _c("narrowing", IMPLEMENTED, "yesno", note="accept narrowed traffic selectors (RFC 7296 2.9)"),
    _c("mark", IMPLEMENTED, "mark", note="XFRM mark VALUE[/MASK] in and out"),
    _c("mark-in", IMPLEMENTED, "mark", note="XFRM mark on inbound SAs"),
    _c("mark-out", IMPLEMENTED, "mark", note="XFRM mark on outbound SAs"),
    _c("failureshunt", IMPLEMENTED, "choice", choices=("none", "passthrough", "drop", "hold", "reject"),
       note="kernel policy after a failed negotiation"),
    _c("negotiationshunt", IMPLEMENTED, "choice", choices=("passthrough", "drop", "hold"),
       note="kernel policy while negotiating"),
    _c("ipsec-max-bytes", IMPLEMENTED, "bignum", low=1, note="Child SA byte limit: can only lower the "
       "cipher's usage limit (providers.limits)"),
    _c("ipsec-max-packets", IMPLEMENTED, "bignum", low=1, note="Child SA packet limit: can only lower the "
       "cipher's usage limit (providers.limits)"),
    _c("reqid", IMPLEMENTED, "uint", low=1, high=2**32 - 1, note="XFRM reqid (default: allocated)"),
    _c("priority", IMPLEMENTED, "uint", low=0, high=2**32 - 1, note="XFRM policy priority"),
    _c("sendca", IMPLEMENTED, "choice", choices=("none", "issuer", "all"), note="which CA certificates to send"),
    _c("require-id-on-certificate", IMPLEMENTED, "choice", choices=("yes",),
       note="yes only: the peer's ID must be in its certificate"),
    _c("ppk", REFUSED, accept_only=("no", "never"), note="postquantum preshared keys (RFC 8784) are not implemented"),
    _c("ppk-ids", REFUSED, note="postquantum preshared keys (RFC 8784) are not implemented"),
    _c("intermediate", IMPLEMENTED, "yesno", note="announce IKE_INTERMEDIATE (RFC 9242); implied by "
       "`;addkeN=` in ike= (RFC 9370)"),
    _c("decap-dscp", REFUSED, accept_only=NO, note="DSCP copying is not configured by fipsike"),
    _c("encap-dscp", REFUSED, accept_only=NO, note="DSCP copying is not configured by fipsike"),
    _c("nopmtudisc", REFUSED, accept_only=NO, note="PMTU discovery settings are not configured by fipsike"),
    _c("mobike", REFUSED, accept_only=NO, note="MOBIKE (RFC 4555) is not implemented"),
    _c("pam-authorize", REFUSED, accept_only=NO, note="PAM authorization is an XAUTH feature"),
    _c("send-redirect", REFUSED, accept_only=NO, note=REDIRECT),
    _c("redirect-to", REFUSED, note=REDIRECT),
    _c("accept-redirect", REFUSED, accept_only=NO, note=REDIRECT),
    _c("accept-redirect-to", REFUSED, note=REDIRECT),
    _c("session-resumption", REFUSED, accept_only=NO, note="session resumption (RFC 5723) is not implemented"),
    _c("send-supported-auth-methods", REFUSED, accept_only=NO, note="RFC 9593 is not implemented"),
    _c("send-esp-tfc-padding-not-supported", REFUSED, accept_only=NO, note="TFC padding is not configured"),
    _c("send-no-esp-tfc", ALIAS, alias_of="send-esp-tfc-padding-not-supported"),
    _c("tfc", REFUSED, note="TFC padding is not configured"),
    _c("reject-simultaneous-ike-auth", REFUSED, note="the engine's collision handling is fixed (RFC 7296 2.8.1)"),
    _c("iptfs", REFUSED, accept_only=NO, note=IPTFS),
    _c("iptfs-fragmentation", REFUSED, note=IPTFS),
    _c("iptfs-packet-size", REFUSED, note=IPTFS),
    _c("iptfs-max-queue-size", REFUSED, note=IPTFS),
    _c("iptfs-reorder-window", REFUSED, note=IPTFS),
    _c("iptfs-init-delay", REFUSED, note=IPTFS),
    _c("iptfs-drop-time", REFUSED, note=IPTFS),
    _c("fake-strongswan", REFUSED, accept_only=NO, note=INTEROP),
    _c("send-vendorid", REFUSED, accept_only=NO, note="fipsike sends no vendor ID"),
    _c("sha2-truncbug", REFUSED, accept_only=NO, note=INTEROP + " (truncated SHA-2 integrity is not approved)"),
    _c("share-lease", REFUSED, note=CP),
    _c("ms-dh-downgrade", REFUSED, accept_only=NO, note=INTEROP + " (a DH downgrade)"),
    _c("pfs-rekey-workaround", REFUSED, accept_only=NO, note=INTEROP),
    _c("dns-match-id", REFUSED, accept_only=NO, note=DNSSEC),
    _c("ikepad", NOOP, "choice", choices=("yes", "no", "auto"), note=NOEFFECT_V1),
    _c("nat-ikev1-method", NOOP, "choice", choices=("drafts", "rfc", "both", "none"), note=NOEFFECT_V1),
    _c("sec-label", REFUSED, note=LABEL),
    _c("policy-label", ALIAS, alias_of="sec-label"),
    _c("remote-peer-type", REFUSED, accept_only=("ietf",), note=INTEROP),
    _c("remote_peer_type", ALIAS, alias_of="remote-peer-type"),
    _c("nm-configured", REFUSED, accept_only=NO, note="NetworkManager integration is not implemented"),
    _c("cisco-unity", REFUSED, accept_only=NO, note=INTEROP),
    _c("cisco-split", REFUSED, accept_only=NO, note=INTEROP),
    _c("xauthby", REFUSED, note=XAUTH),
    _c("xauthfail", REFUSED, note=XAUTH),
    _c("modecfgpull", REFUSED, accept_only=NO, note=CP),
    _c("modecfgdns", REFUSED, note=CP),
    _c("modecfgdomains", REFUSED, note=CP),
    _c("modecfgbanner", REFUSED, note=CP),
    _c("ignore-peer-dns", REFUSED, accept_only=NO, note=CP),
    _c("vti-interface", REFUSED, note=VTI),
    _c("vti-routing", REFUSED, accept_only=NO, note=VTI),
    _c("vti-shared", REFUSED, accept_only=NO, note=VTI),
    _c("ipsec-interface", REFUSED, accept_only=NO, note=VTI),
    _c("clones", REFUSED, note="per-CPU SAs (RFC 9611) are not implemented"),
    _c("nic-offload", REFUSED, accept_only=NO, note="NIC offload is not configured by fipsike"),
    _c("overlapip", REFUSED, accept_only=NO, note="overlapping address handling is not implemented"),
    _c("enable-tcp", REFUSED, accept_only=NO, note=TCP),
    _c("tcp-remoteport", REFUSED, note=TCP),
    _c("compress", REFUSED, accept_only=NO, note="IPComp (RFC 3173) is not implemented"),
    _c("metric", REFUSED, note=ROUTES),
    _c("mtu", REFUSED, note=ROUTES),
    _c("nflog-group", REFUSED, note="NFLOG groups are not configured by fipsike"),
    _c("nflog", ALIAS, alias_of="nflog-group"),
    _c("aggressive", REFUSED, accept_only=NO, note=IKEV1),
    _c("aggrmode", ALIAS, alias_of="aggressive"),
    _c("debug", NOOP, "string", note="per-conn debugging; use fipsike's -v"),
    _c("dpdaction", OBSOLETE, note="libreswan 5: obsolete, ignored"),
    _c("clientaddrfamily", OBSOLETE, note="libreswan 5: obsolete, ignored"),
    _c("keyingtries", OBSOLETE, note="libreswan 5: obsolete, ignored (retries are the engine's)"),
)

SETUP_KEYWORDS: Final[tuple[Keyword, ...]] = (
    _s("ikev1-policy", IMPLEMENTED, "choice", choices=("drop", "reject"),
       note="what to do with IKEv1 packets (accept is refused: IKEv2 only)"),
    _s("curl-iface", REFUSED, note="fipsike fetches no CRLs over the network; CRLs are loaded from files"),
    _s("crl-timeout", REFUSED, note="fipsike fetches no CRLs over the network"),
    _s("curl-timeout", ALIAS, alias_of="crl-timeout"),
    _s("myvendorid", REFUSED, note="fipsike sends no vendor ID"),
    _s("plutodebug", IMPLEMENTED, "string", note=LOG),
    _s("logfile", IMPLEMENTED, "string", note=LOG),
    _s("loglimit", IMPLEMENTED, "yesno", note=LOG),
    _s("logtime", IMPLEMENTED, "yesno", note=LOG),
    _s("logappend", IMPLEMENTED, "yesno", note=LOG),
    _s("logip", IMPLEMENTED, "yesno", note=LOG),
    _s("audit-log", IMPLEMENTED, "yesno", note=LOG),
    _s("dnssec-enable", REFUSED, accept_only=NO, note=DNSSEC),
    _s("dnssec-rootkey-file", REFUSED, note=DNSSEC),
    _s("dnssec-anchors", REFUSED, note=DNSSEC),
    _s("dns-resolver", REFUSED, note=DNSSEC),
    _s("dumpdir", NOOP, "string", note="fipsike writes no core dumps of its own"),
    _s("ipsecdir", IMPLEMENTED, "string", note="directory of policies/ and included files"),
    _s("nssdir", REFUSED, note="fipsike has no NSS database: certificates are in its store (fipsike import)"),
    _s("exampledir", REFUSED, note="a libreswan command-line option only"),
    _s("rundir", REFUSED, note="a libreswan command-line option only"),
    _s("logstderr", REFUSED, note="a libreswan command-line option only"),
    _s("secretsfile", IMPLEMENTED, "string", note="path of ipsec.secrets"),
    _s("statsbin", REFUSED, note="fipsike runs no external programs"),
    _s("uniqueids", IMPLEMENTED, "yesno", note="replace an old IKE SA with the same IDs (INITIAL_CONTACT)"),
    _s("shuntlifetime", IMPLEMENTED, "seconds", low=1, high=30 * DAY, note="how long a failure shunt lives"),
    _s("global-redirect", REFUSED, accept_only=NO, note=REDIRECT),
    _s("global-redirect-to", REFUSED, note=REDIRECT),
    _s("crl-strict", IMPLEMENTED, "yesno", note="refuse a peer whose CA's CRL is missing or stale"),
    _s("crlcheckinterval", IMPLEMENTED, "seconds", low=0, high=30 * DAY, note="reload CRL files this often"),
    _s("ocsp-strict", REFUSED, accept_only=NO, note=OCSP),
    _s("ocsp-enable", REFUSED, accept_only=NO, note=OCSP),
    _s("ocsp-uri", REFUSED, note=OCSP),
    _s("ocsp-timeout", REFUSED, note=OCSP),
    _s("ocsp-trustname", REFUSED, note=OCSP),
    _s("ocsp-cache-size", REFUSED, note=OCSP),
    _s("ocsp-cache-min-age", REFUSED, note=OCSP),
    _s("ocsp-cache-max-age", REFUSED, note=OCSP),
    _s("ocsp-method", REFUSED, note=OCSP),
    _s("seccomp", REFUSED, accept_only=("disabled",), note="seccomp filtering is not implemented"),
    _s("ddos-mode", IMPLEMENTED, "choice", choices=("auto", "busy", "unlimited"),
       note="when to demand cookies (RFC 7296 2.6)"),
    _s("ddos-ike-threshold", IMPLEMENTED, "uint", low=1, high=10**6, note="half-open SAs before cookies"),
    _s("max-halfopen-ike", IMPLEMENTED, "uint", low=1, high=10**7, note="half-open SAs before dropping"),
    _s("ike-socket-bufsize", IMPLEMENTED, "uint", low=1024, high=2**31 - 1, note="socket buffer, bytes"),
    _s("ike-socket-errqueue", IMPLEMENTED, "yesno", note="socket error queue"),
    _s("expire-lifetime", REFUSED, note="the kernel's larval SA lifetime is not configured by fipsike"),
    _s("xfrmlifetime", ALIAS, alias_of="expire-lifetime"),
    _s("virtual-private", NOOP, "string", note="virtual IPs (vhost:/vnet: subnets) are not implemented"),
    _s("seeddev", REFUSED, note="randomness comes from the cryptographic provider (providers/)"),
    _s("seedbits", REFUSED, note="randomness comes from the cryptographic provider (providers/)"),
    _s("keep-alive", IMPLEMENTED, "seconds", low=1, high=DAY, note="NAT keepalive interval"),
    _s("listen-tcp", REFUSED, accept_only=NO, note=TCP),
    _s("listen-udp", IMPLEMENTED, "choice", choices=("yes",), note="yes only: IKE runs over UDP"),
    _s("listen", IMPLEMENTED, "string", note="address to listen on (default: all)"),
    _s("protostack", IMPLEMENTED, "choice", choices=("xfrm", "netkey", "native", "auto"),
       note="the Linux XFRM stack (the only one)"),
    _s("nhelpers", NOOP, "uint", low=-1, high=1024, note="crypto helper threads: fipsike has none"),
    _s("drop-oppo-null", IMPLEMENTED, "yesno", note="refuse opportunistic NULL-authenticated peers"),
    _s("expire-shunt-interval", IMPLEMENTED, "seconds", low=1, high=DAY, note="check shunts this often"),
    _s("ipsec-interface-managed", REFUSED, accept_only=NO, note=VTI),
    _s("nflog-all", REFUSED, note="NFLOG groups are not configured by fipsike"),
    _s("syslog", OBSOLETE, note="libreswan 5: obsolete, ignored"),
    _s("plutostderrlog", OBSOLETE, note="libreswan 5: obsolete, ignored"),
    _s("virtual_private", OBSOLETE, note="libreswan 5: obsolete, ignored"),
    _s("interfaces", OBSOLETE, note="libreswan 5: obsolete, ignored"),
    _s("ikev1-secctx-attr-type", OBSOLETE, note="libreswan 5: obsolete, ignored"),
    _s("secctx-attr-type", OBSOLETE, note="libreswan 5: obsolete, ignored"),
)

_BY_SECTION: Final[dict[str, dict[str, Keyword]]] = {
    CONN: {k.name: k for k in CONN_KEYWORDS},
    SETUP: {k.name: k for k in SETUP_KEYWORDS},
}


@dataclass(frozen=True)
class Lookup:
    keyword: Keyword  # after following an alias
    side: str  # "left", "right" or "" for a per-connection keyword
    spelled: str  # as written in the file


def lookup(section: str, spelled: str) -> Lookup | None:
    """The keyword `spelled` names in a `section` ("conn" or "setup"), aliases followed; None if unknown."""
    table = _BY_SECTION[section]
    key = spelled.lower()
    side = ""
    kw = table.get(key)
    if kw is not None and kw.leftright:
        kw = None  # "subnet=" without a side: libreswan requires the prefix
    if kw is None and section == CONN:
        for s in ("left", "right"):
            if key.startswith(s):
                cand = table.get(key[len(s):])
                if cand is not None and cand.leftright:
                    kw, side = cand, s
                    break
    if kw is None:
        return None
    if kw.status == ALIAS:
        kw = table[kw.alias_of]
    return Lookup(kw, side, spelled)


def needs_side(section: str, spelled: str) -> bool:
    """A per-side keyword written without its left/right prefix (libreswan refuses it)."""
    kw = _BY_SECTION[section].get(spelled.lower())
    return kw is not None and kw.leftright


def all_keywords() -> tuple[Keyword, ...]:
    return CONN_KEYWORDS + SETUP_KEYWORDS


def refusal(spelled: str, kw: Keyword) -> str:
    return f"libreswan keyword '{spelled}' is not supported by fipsike: {kw.note}"
