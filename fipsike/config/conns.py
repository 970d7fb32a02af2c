"""From parsed sections to connections: also= and %default, typed values, orientation, Connection.

Order of precedence, as libreswan's addconn: a conn's own settings, then those of its also= conns
(depth first, in the order written), then `conn %default`. Which side is local: the side whose
address is one of this host's (or %defaultroute); both is an error, neither leaves the conn
unoriented (libreswan adds it but cannot bring it up), which is a warning here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from certs.identity import Identity, IdentityError
from compliance.proposals import Proposal, ProposalSyntaxError, parse_proposals
from fipsike.config import keywords as K
from fipsike.config.defaults import default_proposals
from fipsike.config.errors import Diagnostic, Location
from fipsike.config.hosts import HostAddresses, Resolver
from fipsike.config.syntax import ParsedConfig, Section
from fipsike.config.values import convert
from fipsike.ike.actions import TrafficSelectorSpec
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.proposals import Protocol, spec_from_proposal
from fipsike.ike.retransmit import RetransmitPolicy
from providers.pkcs11.uri import Pkcs11UriError, parse_uri
from providers.policy import Policy

OPPO_GROUP = ("%opportunisticgroup", "%oppogroup")
HOST_SPECIAL = ("%defaultroute", "%any", "%group") + OPPO_GROUP
SHUNT_TYPES = ("passthrough", "drop", "reject")
# libreswan defaults (ipsec.conf(5))
DEFAULT_IKE_LIFETIME = 8 * 3600.0
DEFAULT_IPSEC_LIFETIME = 8 * 3600.0
DEFAULT_REKEYMARGIN = 540.0
DEFAULT_REKEYFUZZ = 100
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132}


@dataclass(frozen=True)
class Value:
    """One typed setting and where it was written."""

    value: Any
    text: str
    location: Location
    spelled: str


@dataclass
class Side:
    host: str  # as written: an address, a name, or one of HOST_SPECIAL
    address: str | None  # resolved address (None for %any / groups)
    subnets: tuple[str, ...]
    plural: bool  # given as leftsubnets= (one Child SA per pair) rather than leftsubnet= (one Child SA)
    protoport: tuple[int, int, int]  # protocol, start port, end port (0, 0, 65535: any)
    id: str
    cert: str
    ca: str
    auth: str  # "rsasig", "ecdsa", "secret", "null"
    sendcert: str
    ikeport: int


@dataclass
class ConnSpec:
    """One resolved conn: the engine's Connection plus what the daemon needs beside it.

    Fields here that the engine's Connection lacks (shunts, narrowing, marks, auto, type, the
    policy group) are for the daemon, and are listed in the report as engine fields to add later.
    """

    name: str
    location: Location
    connection: Connection
    local: str  # "left" or "right"
    oriented: bool
    left: Side
    right: Side
    auto: str = "ignore"
    type: str = "tunnel"
    authby: str = "rsasig"
    failureshunt: str = "none"
    negotiationshunt: str = "hold"
    opportunistic: bool = False
    policy_group: str = ""  # for right=%opportunisticgroup: the group named like the conn
    ike: str = ""  # the proposal text in force (libreswan grammar)
    esp: str = ""
    ike_default: bool = True
    esp_default: bool = True
    ike_parsed: tuple[Proposal, ...] = ()
    esp_parsed: tuple[Proposal, ...] = ()
    pfs: bool = True
    ikelifetime: float = DEFAULT_IKE_LIFETIME
    ipsec_lifetime: float = DEFAULT_IPSEC_LIFETIME
    rekey: bool = True
    rekeymargin: float = DEFAULT_REKEYMARGIN
    rekeyfuzz: int = DEFAULT_REKEYFUZZ
    ipsec_max_bytes: int | None = None
    ipsec_max_packets: int | None = None
    narrowing: bool = False
    mark_in: tuple[int, int] | None = None
    mark_out: tuple[int, int] | None = None
    reqid: int = 0
    priority: int = 0
    replay_window: int | None = None
    encapsulation: str = "auto"
    nat_keepalive: bool = True
    aliases: tuple[str, ...] = ()
    settings: dict[str, Value] = field(default_factory=dict)  # every typed setting, after also/%default

    @property
    def local_side(self) -> Side:
        return self.left if self.local == "left" else self.right

    @property
    def remote_side(self) -> Side:
        return self.right if self.local == "left" else self.left

    def where(self, key: str) -> Location:
        v = self.settings.get(key)
        return v.location if v is not None else self.location


class _Collector:
    def __init__(self) -> None:
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []

    def err(self, loc: Location, msg: str, conn: str = "", kw: str = "") -> None:
        self.errors.append(Diagnostic(loc, msg, conn, kw))

    def warn(self, loc: Location, msg: str, conn: str = "", kw: str = "") -> None:
        self.warnings.append(Diagnostic(loc, msg, conn, kw))


def typed_settings(section: Section, out: _Collector) -> dict[str, Value]:
    """A section's settings, keyed "leftsubnet" / "auto" (canonical names), typed, each checked
    against the keyword table. also= values are joined under "also" (it may repeat)."""
    kind = K.CONN if section.kind == "conn" else K.SETUP
    conn = section.name
    result: dict[str, Value] = {}
    also: list[str] = []
    also_loc: Location | None = None
    for s in section.settings:
        found = K.lookup(kind, s.key)
        if found is None:
            where = "conn" if kind == K.CONN else "config setup"
            if K.needs_side(kind, s.key):
                out.err(s.location, f"keyword '{s.key}' requires a 'left' or 'right' prefix", conn, s.key)
            else:
                out.err(s.location, f"unrecognized '{where}' keyword '{s.key}'", conn, s.key)
            continue
        kw = found.keyword
        canon = kw.spelled(found.side) if kw.leftright else kw.name
        if kw.status == K.OBSOLETE:
            out.warn(s.location, f"obsolete keyword ignored ({kw.note})", conn, s.key)
            continue
        if kw.status == K.REFUSED:
            if s.value.lower() in kw.accept_only:
                continue  # asks for what fipsike does anyway
            out.err(s.location, K.refusal(s.key, kw), conn, s.key)
            continue
        if kw.name == "also":
            also += s.value.replace(",", " ").split()
            also_loc = also_loc or s.location
            continue
        if canon in result and kind == K.SETUP:
            # libreswan: "overriding earlier 'config setup' keyword with new value"
            out.warn(s.location, f"overrides the value at line {result[canon].location.line}", conn, s.key)
            del result[canon]
        if canon in result:
            out.err(s.location, f"duplicate keyword (first at line {result[canon].location.line}); "
                                "libreswan 4 refuses this and 5 keeps the first: fipsike refuses", conn, s.key)
            continue
        if s.value == "" and kw.type not in ("string", "proposals"):
            # libreswan: "rightsubnet= invalid, empty field"; only strings may be emptied (unset)
            out.err(s.location, "empty value", conn, s.key)
            continue
        try:
            value = convert(kw, s.value) if s.value != "" else None
        except ValueError as exc:
            out.err(s.location, str(exc), conn, s.key)
            continue
        if kw.status == K.NOOP:
            out.warn(s.location, f"no effect in fipsike: {kw.note}", conn, s.key)
        result[canon] = Value(value, s.value, s.location, s.key)
    if also and also_loc is not None:
        result["also"] = Value(tuple(also), " ".join(also), also_loc, "also")
    return result


def merge(parsed: ParsedConfig, out: _Collector) -> tuple[dict[str, Value], list[tuple[Section, dict[str, Value]]]]:
    """(setup settings, [(conn section, merged settings)]) with also= and %default applied."""
    setup: dict[str, Value] = {}
    for sec in parsed.setup():
        for k, v in typed_settings(sec, out).items():
            if k in setup:
                out.warn(v.location, f"overrides the earlier setting at line {setup[k].location.line}",
                         "config setup", v.spelled)
            setup[k] = v
    own: dict[str, tuple[Section, dict[str, Value]]] = {}
    default: dict[str, Value] = {}
    order: list[str] = []
    for sec in parsed.conns():
        values = typed_settings(sec, out)
        if sec.name == "%default":
            for k, v in values.items():
                default.setdefault(k, v)
            continue
        if sec.name in own:
            out.err(sec.location, f"conn {sec.name!r} is defined twice (first at "
                                  f"{own[sec.name][0].location})", sec.name)
            continue
        own[sec.name] = (sec, values)
        order.append(sec.name)

    def expand(name: str, trail: tuple[str, ...], where: Location, conn: str) -> dict[str, Value]:
        if name in trail:
            out.err(where, f"also={name} makes a cycle: {' -> '.join(trail + (name,))}", conn, "also")
            return {}
        if name == "%default":
            return {}
        if name not in own:
            out.err(where, f"also={name}: no conn of that name", conn, "also")
            return {}
        values = own[name][1]
        merged = {k: v for k, v in values.items() if k != "also"}
        also = values.get("also")
        for inc in (also.value if also is not None else ()):
            for k, v in expand(inc, trail + (name,), also.location if also else where, conn).items():
                merged.setdefault(k, v)
        return merged

    conns: list[tuple[Section, dict[str, Value]]] = []
    for name in order:
        sec, _ = own[name]
        merged = expand(name, (), sec.location, name)
        for k, v in default.items():
            if k != "also":
                merged.setdefault(k, v)
        merged = {k: v for k, v in merged.items() if v.value is not None}  # key= unsets
        conns.append((sec, merged))
    return setup, conns


def referenced_by_also(parsed: ParsedConfig) -> set[str]:
    names: set[str] = set()
    for sec in parsed.conns():
        for st in sec.settings:
            if st.key.lower() == "also":
                names.update(st.value.replace(",", " ").split())
    return names


# --- value checks for the structured types ------------------------------------------------------------
def _host(text: str, resolver: Resolver, host: HostAddresses, family: int | None) -> str | None:
    t = text.lower()
    if t in ("%any", "%group") + OPPO_GROUP:
        return None
    if t == "%defaultroute":
        for version in ((family,) if family else (4, 6)):
            addr = host.default_route_address(version)
            if addr:
                return addr
        raise ValueError("%defaultroute: this host has no default route")
    if t.startswith("%"):
        raise ValueError(f"unsupported host {text!r} (an address, a name, %defaultroute, %any, "
                         "%opportunisticgroup or %group)")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    found = resolver.resolve(text)
    if family:
        found = tuple(a for a in found if ipaddress.ip_address(a).version == family)
    if not found:
        raise ValueError(f"cannot resolve {text!r} (neither /etc/hosts nor DNS answers)")
    return found[0]


def _subnets(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for item in text.replace(",", " ").replace("{", " ").replace("}", " ").split():
        if item.startswith(("vhost:", "vnet:", "%priv", "%no")):
            raise ValueError(f"{item!r}: virtual-private subnets are not supported by fipsike")
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not a subnet (ADDRESS/PREFIX)") from None
        if str(net.network_address) != item.split("/")[0] and ipaddress.ip_address(item.split("/")[0]) != \
                net.network_address:
            raise ValueError(f"{item!r} has host bits set (did you mean {net}?)")
        out.append(str(net))
    if not out:
        raise ValueError("no subnet given")
    return tuple(out)


def _protoport(text: str) -> tuple[int, int, int]:
    proto_s, _, port_s = text.partition("/")
    p = proto_s.lower()
    if p in ("", "%any", "0"):
        proto = 0
    elif p in PROTOCOLS:
        proto = PROTOCOLS[p]
    elif p.isdigit() and 0 <= int(p) <= 255:
        proto = int(p)
    else:
        raise ValueError(f"unknown protocol {proto_s!r}")
    if port_s in ("", "%any", "0"):
        return proto, 0, 65535
    if not port_s.isdigit() or not 0 < int(port_s) <= 65535:
        raise ValueError(f"bad port {port_s!r} (1-65535 or %any)")
    if proto not in (6, 17, 132):
        raise ValueError("a port needs tcp, udp or sctp")
    return proto, int(port_s), int(port_s)


def _id(text: str) -> str:
    if text in ("%fromcert", "%any", "%none", "%null"):
        return text
    try:
        Identity.parse(text)
    except IdentityError as exc:
        raise ValueError(str(exc)) from None
    return text


def retransmit_policy(interval: float, timeout: float) -> RetransmitPolicy:
    """libreswan's retransmits: the first after `interval`, doubling, until `timeout` has passed in all."""
    policy = RetransmitPolicy(base=interval, factor=2.0, tries=1)
    while policy.total() < timeout and policy.tries < 64:
        policy = RetransmitPolicy(base=interval, factor=2.0, tries=policy.tries + 1)
    return policy


def _version(net: str) -> int:
    return ipaddress.ip_network(net).version


def _ts(subnet: str, pp: tuple[int, int, int]) -> TrafficSelectorSpec:
    net = ipaddress.ip_network(subnet)
    return TrafficSelectorSpec(str(net.network_address), str(net.broadcast_address), pp[0], pp[1], pp[2])


AUTHBY_LOCAL = {"rsasig": "rsasig", "rsa": "rsasig", "rsa-sha2": "rsasig", "rsa-sha2_256": "rsasig",
                "rsa-sha2_384": "rsasig", "rsa-sha2_512": "rsasig", "rsa-sha1": "rsasig",
                "ecdsa": "ecdsa", "ecdsa-sha2": "ecdsa", "ecdsa-sha2_256": "ecdsa", "ecdsa-sha2_384": "ecdsa",
                "ecdsa-sha2_512": "ecdsa", "secret": "secret", "psk": "secret", "null": "null", "never": "never",
                "eaponly": "eaponly"}
# a side's auth (after AUTHBY_LOCAL) as the engine's Connection.local_auth / remote_auth
ENGINE_AUTH = {"secret": "psk", "null": "null"}


class Resolve:
    def __init__(self, out: _Collector, host: HostAddresses, resolver: Resolver, policy: Policy,
                 templates: set[str] | None = None) -> None:
        self.out, self.host, self.resolver, self.policy = out, host, resolver, policy
        self.templates = templates or set()  # conns named by some also=

    def conn(self, sec: Section, s: dict[str, Value]) -> ConnSpec | None:
        name = sec.name
        nerr = len(self.out.errors)

        def get(key: str, default: Any = None) -> Any:
            v = s.get(key)
            return default if v is None else v.value

        def bad(key: str, msg: str) -> None:
            v = s.get(key)
            self.out.err(v.location if v else sec.location, msg, name, v.spelled if v else key)

        # IKE version and family
        if get("keyexchange") in ("ike", "ikev1"):
            bad("keyexchange", f"keyexchange={get('keyexchange')} is IKEv1 (or both); fipsike speaks IKEv2 only")
        if get("ikev2") in ("no", "never", "permit"):
            bad("ikev2", f"ikev2={get('ikev2')} allows or asks for IKEv1; fipsike speaks IKEv2 only")
        fam_s = get("hostaddrfamily")
        family = None if fam_s is None else (6 if fam_s in ("ipv6", "v6", "inet6") else 4)

        sides: dict[str, Side] = {}
        authby_v = str(get("authby", "rsasig")).lower()
        methods = [m.strip() for m in authby_v.split(",") if m.strip()]
        for m in methods:
            if m not in AUTHBY_LOCAL:
                bad("authby", f"unknown authby method {m!r}")
        authby = AUTHBY_LOCAL.get(methods[0], "rsasig") if methods else "rsasig"
        if authby == "eaponly":
            bad("authby", "EAP authentication is not implemented")
        for side in ("left", "right"):
            if f"{side}" not in s:
                if name in self.templates:
                    return None  # a template (an also= target) without its hosts: nothing to resolve
                self.out.err(sec.location, f"{side}= is not set", name, side)
                continue
            text = str(get(side))
            try:
                addr = _host(text, self.resolver, self.host, family)
            except ValueError as exc:
                bad(side, str(exc))
                addr = None
            if addr and family and ipaddress.ip_address(addr).version != family:
                bad(side, f"{addr} is not an IPv{family} address (hostaddrfamily)")
            subnet = get(f"{side}subnet")
            subnets = get(f"{side}subnets")
            if subnet is not None and subnets is not None:
                bad(f"{side}subnets", f"{side}subnet= and {side}subnets= together: use one")
            nets: tuple[str, ...] = ()
            for key in (f"{side}subnet", f"{side}subnets"):
                if get(key) is not None:
                    try:
                        nets = _subnets(str(get(key)))
                    except ValueError as exc:
                        bad(key, str(exc))
            pp: tuple[int, int, int] = (0, 0, 65535)
            if get(f"{side}protoport") is not None:
                try:
                    pp = _protoport(str(get(f"{side}protoport")))
                except ValueError as exc:
                    bad(f"{side}protoport", str(exc))
            ident = str(get(f"{side}id", ""))
            if ident:
                try:
                    ident = _id(ident)
                except ValueError as exc:
                    bad(f"{side}id", str(exc))
            cert = str(get(f"{side}cert", ""))
            if cert.lower().startswith("pkcs11:"):
                try:
                    uri = parse_uri(cert)
                except Pkcs11UriError:
                    # the URI is not quoted back: it may hold a pin-value
                    bad(f"{side}cert", "not a valid PKCS#11 URI (RFC 7512)")
                else:
                    if uri.pin_value is not None:
                        bad(f"{side}cert", "the PKCS#11 URI holds a pin-value: give the PIN as ': PIN' in "
                                           "ipsec.secrets or in a 0600 PIN file, never in ipsec.conf")
            auth = str(get(f"{side}auth", "") or authby)
            auth = AUTHBY_LOCAL.get(auth, auth)
            if auth == "eaponly":
                bad(f"{side}auth", "EAP authentication is not implemented")
            sides[side] = Side(text, addr, nets, subnets is not None and subnet is None, pp, ident,
                               cert, str(get(f"{side}ca", "")), auth,
                               str(get(f"{side}sendcert", "always")), int(get(f"{side}ikeport", 500)))
        if len(self.out.errors) > nerr or len(sides) != 2:
            return None
        left, right = sides["left"], sides["right"]
        for sd in (left, right):
            if sd.ca == "%same":
                other = right if sd is left else left
                sd.ca = other.ca or "%same"

        # orientation
        mine = self.host.local_addresses()
        is_local = {k: (sd.host.lower() == "%defaultroute" or (sd.address is not None and sd.address in mine))
                    for k, sd in sides.items()}
        oriented = True
        if is_local["left"] and is_local["right"]:
            self.out.err(s["left"].location, f"left={left.host} and right={right.host} are both this host",
                         name, "left")
            return None
        local = "right" if is_local["right"] else "left"
        if not (is_local["left"] or is_local["right"]):
            oriented = False
            self.out.warn(sec.location, "neither left nor right is one of this host's addresses: the conn "
                                        "is not oriented (libreswan adds it but cannot bring it up)", name)
        lside, rside = (left, right) if local == "left" else (right, left)
        if lside.address is None:
            bad(local, f"{local}={lside.host} cannot be the local side")
            return None

        ctype = str(get("type", "tunnel"))
        ctype = "passthrough" if ctype == "pass" else ctype
        opportunistic = rside.host.lower() in OPPO_GROUP or rside.host.lower() == "%group"
        if authby == "never" and ctype not in SHUNT_TYPES:
            bad("authby", "authby=never is for shunt conns (type=passthrough, drop or reject)")

        # proposals
        ike_text, ike_parsed, ike_default = self._proposals(s, "ike", name, sec)
        esp_text, esp_parsed, esp_default = self._proposals(s, "esp", name, sec)
        pfs = bool(get("pfs", True))
        ike_groups = list(dict.fromkeys(g for p in ike_parsed for g in p.ke))
        ike_specs, esp_specs = [], []
        for p in ike_parsed:
            try:
                ike_specs.append(spec_from_proposal(p, Protocol.IKE))
            except ProposalSyntaxError as exc:
                bad("ike", str(exc))
        for p in esp_parsed:
            try:
                esp_specs.append(spec_from_proposal(p, Protocol.ESP, ike_groups if pfs else ()))
            except ProposalSyntaxError as exc:
                bad("esp", str(exc))

        ikelife = float(get("ikelifetime", DEFAULT_IKE_LIFETIME))
        salife = float(get("ipsec-lifetime", DEFAULT_IPSEC_LIFETIME))
        margin = float(get("rekeymargin", DEFAULT_REKEYMARGIN))
        for key, life in (("ikelifetime", ikelife), ("ipsec-lifetime", salife)):
            if margin >= life:
                bad("rekeymargin", f"rekeymargin {margin:g} s is not below {key} {life:g} s")
        if len(self.out.errors) > nerr:
            return None

        # children: one per subnet pair (libreswan's NAME/1x1 ... for leftsubnets/rightsubnets)
        def nets_of(sd: Side) -> tuple[str, ...]:
            if sd.subnets:
                return sd.subnets
            if sd.address is None:
                return ()  # opportunistic/any: from the policy group or narrowed at negotiation
            return (str(ipaddress.ip_network(sd.address)),)

        lnets, rnets = nets_of(lside), nets_of(rside)
        mode = "transport" if ctype == "transport" else "tunnel"
        auto = str(get("auto", "ignore"))
        start = {"start": "start", "up": "start", "route": "trap", "ondemand": "trap"}.get(auto, "none")
        # a pair of selectors must be of one family (libreswan: "address family of ... conflicts")
        for sd, other in ((lside, rside), (rside, lside)):
            if sd.plural and len(other.subnets) > 1 and not other.plural:
                key = f"{'left' if other is left else 'right'}subnet"
                bad(key, f"multi-selector {key}={','.join(other.subnets)} combined with "
                         f"{'left' if sd is left else 'right'}subnets= (libreswan refuses this too)")
                return None
        pairs = [(a, b) for a in lnets for b in rnets if _version(a) == _version(b)] if rnets else \
            [(a, "") for a in lnets]
        if not pairs:
            key = next((k for k in (f"{local}subnet", f"{local}subnets") if k in s), local)
            bad(key, f"address family of {local}'s {','.join(lnets)} conflicts with the other side's "
                     f"{','.join(rnets)}")
            return None
        children: list[ChildConfig] = []

        def child(cname: str, lts: tuple[str, ...], rts: tuple[str, ...]) -> ChildConfig:
            return ChildConfig(
                name=cname, local_ts=tuple(_ts(a, lside.protoport) for a in lts),
                remote_ts=tuple(_ts(b, rside.protoport) for b in rts), esp_proposals=tuple(esp_specs), mode=mode,
                rekey_time=max(1.0, salife - margin), life_time=salife, start_action=start,
                reqid=int(get("reqid", 0)))

        if lside.plural or rside.plural:
            for a, b in pairs:
                li, ri = lnets.index(a) + 1, (rnets.index(b) + 1 if b else 1)
                # libreswan names them NAME/LxR in left/right terms
                cname = f"{name}/{li}x{ri}" if local == "left" else f"{name}/{ri}x{li}"
                children.append(child(cname, (a,), (b,) if b else ()))
        else:
            children.append(child(name, lnets, rnets))
        local_id = lside.id or ("%fromcert" if lside.cert else ("%null" if lside.auth == "null" else
                                                                   str(lside.address)))
        remote_id = rside.id or ("%null" if rside.auth == "null" else
                                 (str(rside.address) if rside.address and rside.auth == "secret" else "%any"))
        dpd_delay = float(get("dpddelay", 0))
        sendcert = {"alwayssend": "always", "yes": "always", "sendifasked": "ifasked", "no": "never"}.get(
            lside.sendcert, lside.sendcert)
        conn_kwargs: dict[str, Any] = dict(
            name=name, local_addrs=(str(lside.address),),
            remote_addrs=(str(rside.address),) if rside.address else ("%any",),
            local_id=local_id, remote_id=remote_id,
            local_auth=ENGINE_AUTH.get(lside.auth, "pubkey"),
            remote_auth=ENGINE_AUTH.get(rside.auth, "pubkey"),
            ike_proposals=tuple(ike_specs), children=tuple(children), send_cert=sendcert,
            rekey_time=max(1.0, ikelife - margin), life_time=ikelife,
            dpd_delay=dpd_delay, dpd_timeout=float(get("dpdtimeout", 150.0 if dpd_delay else 0.0)) or 150.0,
            fragmentation=get("fragmentation", "yes") != "no",
            initial_contact=bool(get("initial-contact", True)),
            encap=get("encapsulation", "auto") == "yes", port=rside.ikeport,
            intermediate=bool(get("intermediate", False)),
            allow_null=lside.auth == "null" or rside.auth == "null")
        if "retransmit-interval" in s or "retransmit-timeout" in s:
            conn_kwargs["retransmit"] = retransmit_policy(float(get("retransmit-interval", 0.5)),
                                                          float(get("retransmit-timeout", 60.0)))
        if get("fragmentation") == "force":
            bad("fragmentation", "fragmentation=force (fragmenting IKE_SA_INIT) is not implemented")
            return None
        connection = Connection(**conn_kwargs)
        mark = get("mark")
        spec = ConnSpec(
            name=name, location=sec.location, connection=connection, local=local, oriented=oriented,
            left=left, right=right, auto=auto, type=ctype, authby=authby,
            failureshunt=str(get("failureshunt", "none")), negotiationshunt=str(get("negotiationshunt", "hold")),
            opportunistic=opportunistic, policy_group=name if opportunistic else "",
            ike=ike_text, esp=esp_text, ike_default=ike_default, esp_default=esp_default,
            ike_parsed=tuple(ike_parsed), esp_parsed=tuple(esp_parsed), pfs=pfs,
            ikelifetime=ikelife, ipsec_lifetime=salife, rekey=bool(get("rekey", True)), rekeymargin=margin,
            rekeyfuzz=int(get("rekeyfuzz", DEFAULT_REKEYFUZZ)),
            ipsec_max_bytes=get("ipsec-max-bytes"), ipsec_max_packets=get("ipsec-max-packets"),
            narrowing=bool(get("narrowing", False)), mark_in=get("mark-in", mark), mark_out=get("mark-out", mark),
            reqid=int(get("reqid", 0)), priority=int(get("priority", 0)), replay_window=get("replay-window"),
            encapsulation=str(get("encapsulation", "auto")), nat_keepalive=bool(get("nat-keepalive", True)),
            aliases=tuple(str(get("connalias", "")).split()), settings=dict(s))
        return spec

    def _proposals(self, s: dict[str, Value], proto: str, name: str,
                   sec: Section) -> tuple[str, list[Proposal], bool]:
        v = s.get(proto)
        if v is None or not str(v.value).strip():
            text, parsed = default_proposals(proto, self.policy)
            return text, parsed, True
        try:
            return str(v.value), parse_proposals(str(v.value), proto), False
        except ProposalSyntaxError as exc:
            self.out.err(v.location, str(exc), name, v.spelled)
            return str(v.value), [], False


