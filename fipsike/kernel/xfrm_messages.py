"""XFRM netlink messages and attributes, as pyroute2 `nlmsg` / `nla` classes.

pyroute2 0.9 has no XFRM API; these classes follow `linux/xfrm.h`. pyroute2
packs each field on its own (no C alignment), so every padding byte is an
explicit `x` field. Sizes on x86_64, checked against the C structs with gcc
and asserted in tests/kernel/test_xfrm_messages.py:

  xfrm_selector 56, xfrm_id 24, xfrm_usersa_info 224, xfrm_usersa_id 24,
  xfrm_userspi_info 232, xfrm_userpolicy_info 168, xfrm_userpolicy_id 64,
  xfrm_user_acquire 280, xfrm_user_expire 232, xfrm_user_polexpire 176,
  xfrm_user_tmpl 64, xfrm_encap_tmpl 24.

Key hygiene: the attributes that carry keys (XFRMA_ALG_AEAD/CRYPT/AUTH/
AUTH_TRUNC) decode into the algorithm name, the key length and a keyed
fingerprint. The key bytes are never stored in the decoded message, so
nothing that formats, logs (pyroute2 logs messages at DEBUG) or reprs a
decoded message can see them. The only exception is the non-FIPS reveal,
switched on per call by `reveal_keys()`.
"""

from __future__ import annotations

import contextlib
import contextvars
import struct
from collections.abc import Callable, Iterator
from typing import Any

from pyroute2.netlink import (
    nla,
    nla_base,
    nlmsg,
    nlmsg_atoms,
    nlmsg_base,
    nlmsg_decoder_generic,
    nlmsg_encoder_generic,
)

NETLINK_XFRM = 6

# enum xfrm_msg_type (linux/xfrm.h)
XFRM_MSG_NEWSA = 0x10
XFRM_MSG_DELSA = 0x11
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_DELPOLICY = 0x14
XFRM_MSG_GETPOLICY = 0x15
XFRM_MSG_ALLOCSPI = 0x16
XFRM_MSG_ACQUIRE = 0x17
XFRM_MSG_EXPIRE = 0x18
XFRM_MSG_UPDPOLICY = 0x19
XFRM_MSG_UPDSA = 0x1A
XFRM_MSG_POLEXPIRE = 0x1B
XFRM_MSG_FLUSHSA = 0x1C
XFRM_MSG_FLUSHPOLICY = 0x1D

# enum xfrm_nlgroups
XFRMNLGRP_ACQUIRE = 1
XFRMNLGRP_EXPIRE = 2
XFRMNLGRP_SA = 3
XFRMNLGRP_POLICY = 4

# struct xfrm_usersa_info.flags
XFRM_STATE_NOECN = 1
XFRM_STATE_DECAP_DSCP = 2
XFRM_STATE_NOPMTUDISC = 4
XFRM_STATE_WILDRECV = 8
XFRM_STATE_ICMP = 16
XFRM_STATE_AF_UNSPEC = 32
XFRM_STATE_ALIGN4 = 64
XFRM_STATE_ESN = 128

XFRM_POLICY_ALLOW = 0
XFRM_POLICY_BLOCK = 1
XFRM_POLICY_MAX = 3  # linux/xfrm.h: a dumped per-socket policy has dir = XFRM_POLICY_MAX + its direction
XFRM_POLICY_TYPE_MAIN = 0
UDP_ENCAP_ESPINUDP = 2  # linux/udp.h: RFC 3948 ESP in UDP

# enum xfrm_attr_type_t
XFRMA_ALG_AUTH = 1
XFRMA_ALG_CRYPT = 2
XFRMA_ENCAP = 4
XFRMA_TMPL = 5
XFRMA_SA = 6
XFRMA_POLICY = 7
XFRMA_LTIME_VAL = 9
XFRMA_REPLAY_VAL = 10
XFRMA_SRCADDR = 13
XFRMA_POLICY_TYPE = 16
XFRMA_ALG_AEAD = 18
XFRMA_ALG_AUTH_TRUNC = 20
XFRMA_MARK = 21
XFRMA_REPLAY_ESN_VAL = 23
XFRMA_SA_EXTRA_FLAGS = 24
XFRMA_IF_ID = 31

# --- flattened C structs -----------------------------------------------------------------------

Fields = tuple[tuple[str, str], ...]


def _selector(p: str) -> Fields:
    """struct xfrm_selector (56 octets); ports big-endian."""
    return (
        (f"{p}daddr", "16s"), (f"{p}saddr", "16s"),
        (f"{p}dport", ">H"), (f"{p}dport_mask", ">H"),
        (f"{p}sport", ">H"), (f"{p}sport_mask", ">H"),
        (f"{p}family", "H"), (f"{p}prefixlen_d", "B"), (f"{p}prefixlen_s", "B"),
        (f"{p}proto", "B"), (f"_{p}pad", "3x"),
        (f"{p}ifindex", "i"), (f"{p}user", "I"),
    )


def _xfrm_id(p: str) -> Fields:
    """struct xfrm_id (24 octets)."""
    return ((f"{p}daddr", "16s"), (f"{p}spi", ">I"), (f"{p}proto", "B"), (f"_{p}pad", "3x"))


def _lifetime_cfg(p: str) -> Fields:
    """struct xfrm_lifetime_cfg (64 octets)."""
    names = ("soft_byte_limit", "hard_byte_limit", "soft_packet_limit", "hard_packet_limit",
             "soft_add_expires_seconds", "hard_add_expires_seconds",
             "soft_use_expires_seconds", "hard_use_expires_seconds")
    return tuple((f"{p}{n}", "Q") for n in names)


def _lifetime_cur(p: str) -> Fields:
    """struct xfrm_lifetime_cur (32 octets)."""
    return tuple((f"{p}{n}", "Q") for n in ("bytes", "packets", "add_time", "use_time"))


USERSA_INFO: Fields = (
    *_selector("sel_"),
    *_xfrm_id("id_"),
    ("saddr", "16s"),
    *_lifetime_cfg("lft_"),
    *_lifetime_cur("cur_"),
    ("stats_replay_window", "I"), ("stats_replay", "I"), ("stats_integrity_failed", "I"),
    ("seq", "I"), ("reqid", "I"), ("family", "H"), ("mode", "B"), ("replay_window", "B"),
    ("flags", "B"), ("_pad_tail", "7x"),
)

USERSA_ID: Fields = (("daddr", "16s"), ("spi", ">I"), ("family", "H"), ("proto", "B"), ("_pad", "x"))

USERPOLICY_INFO_NOPAD: Fields = (
    *_selector("sel_"),
    *_lifetime_cfg("lft_"),
    *_lifetime_cur("cur_"),
    ("priority", "I"), ("index", "I"), ("dir", "B"), ("action", "B"), ("flags", "B"), ("share", "B"),
)
USERPOLICY_INFO: Fields = (*USERPOLICY_INFO_NOPAD, ("_pad_tail", "4x"))

USERPOLICY_ID: Fields = (*_selector("sel_"), ("index", "I"), ("dir", "B"), ("_pad", "3x"))

USER_ACQUIRE: Fields = (
    *_xfrm_id("id_"),
    ("saddr", "16s"),
    *_selector("sel_"),
    *(("pol_" + n, f) for n, f in USERPOLICY_INFO),
    ("aalgos", "I"), ("ealgos", "I"), ("calgos", "I"), ("seq", "I"),
)

USER_TMPL: Fields = (
    *_xfrm_id("id_"),
    ("family", "H"), ("_pad1", "2x"), ("saddr", "16s"), ("reqid", "I"),
    ("mode", "B"), ("share", "B"), ("optional", "B"), ("_pad2", "x"),
    ("aalgos", "I"), ("ealgos", "I"), ("calgos", "I"),
)

ENCAP_TMPL: Fields = (("encap_type", "H"), ("encap_sport", ">H"), ("encap_dport", ">H"), ("_pad", "2x"),
                      ("encap_oa", "16s"))


def struct_size(fields: Fields) -> int:
    return sum(struct.calcsize(fmt) for _, fmt in fields)


def _defaults(fields: Fields) -> dict[str, Any]:
    """pyroute2 fills a missing field with 0, which `struct` refuses for an `s` field."""
    return {name: b"" for name, fmt in fields if fmt.endswith("s")}


# --- key redaction ---------------------------------------------------------------------------------

Fingerprinter = Callable[[bytes], str]
# Both are set per call (a context), never for the process: the fingerprinter belongs to the caller
# (XfrmKernel's router), so two kernels with two routers never mix their fingerprints.
_fingerprinter: contextvars.ContextVar[Fingerprinter | None] = contextvars.ContextVar(
    "fipsike_xfrm_fingerprinter", default=None)
_reveal: contextvars.ContextVar[bool] = contextvars.ContextVar("fipsike_xfrm_reveal", default=False)


@contextlib.contextmanager
def key_fingerprints(fn: Fingerprinter | None) -> Iterator[None]:
    """Fingerprint the keys of messages decoded in this context with `fn` (router.keyed_fingerprint)."""
    token = _fingerprinter.set(fn)
    try:
        yield
    finally:
        _fingerprinter.reset(token)


@contextlib.contextmanager
def reveal_keys() -> Iterator[None]:
    """Decode key bytes as hex for this context only. The caller must have refused this in FIPS mode."""
    token = _reveal.set(True)
    try:
        yield
    finally:
        _reveal.reset(token)


class _KeyedAlgorithm(nla):  # type: ignore[misc]
    """struct xfrm_algo / xfrm_algo_auth / xfrm_algo_aead: name, key length in bits, [bits], key."""

    head: Fields = (("alg_name", "64s"), ("alg_key_len", "I"))

    def encode(self) -> None:
        key = self["alg_key"]
        self.fields = (*self.head, ("alg_key", f"{len(key)}s"))
        try:
            nla.encode(self)
        finally:
            self["alg_key"] = None  # the message object keeps no reference to the key

    def decode(self) -> None:
        # Our own decode: the generic one would read the key into the dict.
        offset = self.offset
        length, _ = struct.unpack_from("HH", self.data, offset)
        self.length = length
        pos = offset + 4
        values = {}
        for name, fmt in self.head:
            (values[name],) = struct.unpack_from(fmt, self.data, pos)
            pos += struct.calcsize(fmt)
        name = values["alg_name"].split(b"\0", 1)[0].decode("ascii", "replace")
        key_octets = min(max(values["alg_key_len"] + 7, 0) // 8, max(offset + length - pos, 0))
        key_view = memoryview(self.data)[pos:pos + key_octets]
        self["alg_name"] = name
        self["alg_key_len"] = values["alg_key_len"]
        self["key_octets"] = key_octets
        for field_name in ("alg_trunc_len", "alg_icv_len"):
            if field_name in values:
                self[field_name] = values[field_name]
        # A kernel in lockdown=confidentiality blanks keys in dumps (xfrm_redact(), LOCKDOWN_XFRM_SECRET):
        # all-zero material is reported as such, not fingerprinted (every blank key would match).
        blank = key_octets > 0 and not any(key_view)
        self["key_blanked"] = blank
        fp = _fingerprinter.get()
        self["key_fingerprint"] = fp(bytes(key_view)) if fp is not None and key_octets and not blank else None
        if _reveal.get():
            self["key_hex"] = key_view.hex()
        key_view.release()
        self.decoded = True


class xfrm_algo(_KeyedAlgorithm):
    head = (("alg_name", "64s"), ("alg_key_len", "I"))


class xfrm_algo_auth(_KeyedAlgorithm):
    head = (("alg_name", "64s"), ("alg_key_len", "I"), ("alg_trunc_len", "I"))


class xfrm_algo_aead(_KeyedAlgorithm):
    head = (("alg_name", "64s"), ("alg_key_len", "I"), ("alg_icv_len", "I"))


class _Struct(nlmsg_base, nlmsg_encoder_generic, nlmsg_decoder_generic, nlmsg_atoms):  # type: ignore[misc]
    """A header-less C struct packed with pyroute2's field codec (one template in XFRMA_TMPL)."""

    header = ()
    align = 0

    @classmethod
    def pack(cls, values: dict[str, Any]) -> bytes:
        msg = cls()
        msg.update(values)
        msg.encode()
        return bytes(msg.data)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> dict[str, Any]:
        msg = cls(data=data, offset=offset)
        msg.decode()
        return {k: v for k, v in msg.items() if not k.startswith("_") and k not in ("attrs", "header")}


class user_tmpl(_Struct):
    fields = USER_TMPL
    defaults = _defaults(fields)


class xfrm_tmpl_list(nla_base):  # type: ignore[misc]
    """XFRMA_TMPL: an array of struct xfrm_user_tmpl, back to back (not nested NLAs)."""

    fields = (("value", "s"),)
    defaults = _defaults(fields)

    def encode(self) -> None:
        self["value"] = b"".join(user_tmpl.pack(t) for t in self["templates"])
        self.fields = (("value", f"{len(self['value'])}s"),)
        nla_base.encode(self)

    def decode(self) -> None:
        offset = self.offset
        length, _ = struct.unpack_from("HH", self.data, offset)
        self.length = length
        size = struct_size(USER_TMPL)
        count = (length - 4) // size
        self["templates"] = [user_tmpl.unpack(self.data, offset + 4 + i * size) for i in range(count)]
        self.decoded = True


class _XfrmAttrs:
    """The XFRMA_* attribute table shared by every XFRM message."""

    nla_map = (
        (XFRMA_ALG_AUTH, "XFRMA_ALG_AUTH", "xfrm_algo"),
        (XFRMA_ALG_CRYPT, "XFRMA_ALG_CRYPT", "xfrm_algo"),
        (XFRMA_ENCAP, "XFRMA_ENCAP", "xfrm_encap_tmpl"),
        (XFRMA_TMPL, "XFRMA_TMPL", "xfrm_tmpl_list"),
        (XFRMA_SA, "XFRMA_SA", "hex"),
        (XFRMA_POLICY, "XFRMA_POLICY", "xfrm_policy_attr"),
        (XFRMA_LTIME_VAL, "XFRMA_LTIME_VAL", "hex"),
        (XFRMA_REPLAY_VAL, "XFRMA_REPLAY_VAL", "xfrm_replay_state"),
        (XFRMA_SRCADDR, "XFRMA_SRCADDR", "xfrm_address"),
        (XFRMA_POLICY_TYPE, "XFRMA_POLICY_TYPE", "xfrm_userpolicy_type"),
        (XFRMA_ALG_AEAD, "XFRMA_ALG_AEAD", "xfrm_algo_aead"),
        (XFRMA_ALG_AUTH_TRUNC, "XFRMA_ALG_AUTH_TRUNC", "xfrm_algo_auth"),
        (XFRMA_MARK, "XFRMA_MARK", "xfrm_mark"),
        (XFRMA_REPLAY_ESN_VAL, "XFRMA_REPLAY_ESN_VAL", "xfrm_replay_state_esn"),
        (XFRMA_SA_EXTRA_FLAGS, "XFRMA_SA_EXTRA_FLAGS", "uint32"),
        (XFRMA_IF_ID, "XFRMA_IF_ID", "uint32"),
    )

    xfrm_algo = xfrm_algo
    xfrm_algo_auth = xfrm_algo_auth
    xfrm_algo_aead = xfrm_algo_aead
    xfrm_tmpl_list = xfrm_tmpl_list

    class xfrm_encap_tmpl(nla):  # type: ignore[misc]
        __slots__ = ()
        fields = ENCAP_TMPL
        defaults = _defaults(fields)

    class xfrm_mark(nla):  # type: ignore[misc]
        __slots__ = ()
        fields = (("v", "I"), ("m", "I"))  # not "value": pyroute2 unwraps a field of that name
        defaults = _defaults(fields)

    class xfrm_address(nla):  # type: ignore[misc]
        __slots__ = ()
        fields = (("addr", "16s"),)
        defaults = _defaults(fields)

    class xfrm_replay_state(nla):  # type: ignore[misc]
        __slots__ = ()
        fields = (("oseq", "I"), ("seq", "I"), ("bitmap", "I"))
        defaults = _defaults(fields)

    class xfrm_userpolicy_type(nla):  # type: ignore[misc]
        __slots__ = ()
        fields = (("type", "B"), ("_pad1", "x"), ("reserved1", "H"), ("reserved2", "B"), ("_pad2", "x"))
        defaults = _defaults(fields)

    class xfrm_replay_state_esn(nla):  # type: ignore[misc]
        """struct xfrm_replay_state_esn without its bitmap: the kernel accepts the bare header
        (xfrm_user.c verify_replay) and allocates bmp_len words itself, as `ip xfrm` relies on."""

        __slots__ = ()
        fields = (("bmp_len", "I"), ("oseq", "I"), ("seq", "I"), ("oseq_hi", "I"), ("seq_hi", "I"),
                  ("replay_window", "I"))

    class xfrm_policy_attr(nla):  # type: ignore[misc]
        """XFRMA_POLICY in a DELPOLICY notification: the full xfrm_userpolicy_info."""

        __slots__ = ()
        fields = USERPOLICY_INFO
        defaults = _defaults(fields)


class usersa_info_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    """NEWSA / UPDSA requests, GETSA replies, SA dumps."""

    __slots__ = ()
    fields = USERSA_INFO
    defaults = _defaults(fields)


class usersa_id_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    """DELSA / GETSA requests."""

    __slots__ = ()
    fields = USERSA_ID
    defaults = _defaults(fields)


class userspi_info_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    """ALLOCSPI request (the reply is a NEWSA message)."""

    __slots__ = ()
    fields = (*USERSA_INFO, ("min", "I"), ("max", "I"))
    defaults = _defaults(fields)


class userpolicy_info_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    """NEWPOLICY / UPDPOLICY requests, GETPOLICY replies, policy dumps."""

    __slots__ = ()
    fields = USERPOLICY_INFO
    defaults = _defaults(fields)


class userpolicy_id_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    """DELPOLICY / GETPOLICY requests; DELPOLICY notifications."""

    __slots__ = ()
    fields = USERPOLICY_ID
    defaults = _defaults(fields)


class user_acquire_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    __slots__ = ()
    fields = USER_ACQUIRE
    defaults = _defaults(fields)


class user_expire_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    __slots__ = ()
    fields = (*USERSA_INFO, ("hard", "B"), ("_pad_hard", "7x"))
    defaults = _defaults(fields)


class user_polexpire_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    __slots__ = ()
    fields = (*USERPOLICY_INFO, ("hard", "B"), ("_pad_hard", "7x"))
    defaults = _defaults(fields)


class usersa_flush_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    __slots__ = ()
    fields = (("proto", "B"),)  # sizeof(struct xfrm_usersa_flush) == 1
    defaults = _defaults(fields)


class empty_msg(_XfrmAttrs, nlmsg):  # type: ignore[misc]
    """FLUSHPOLICY notification: no struct, maybe XFRMA_POLICY_TYPE."""

    __slots__ = ()
    fields = ()
    defaults = _defaults(fields)


# Which class decodes a message the kernel sends us.
MSG_CLASSES: dict[int, type[nlmsg]] = {
    XFRM_MSG_NEWSA: usersa_info_msg,
    XFRM_MSG_UPDSA: usersa_info_msg,
    XFRM_MSG_DELSA: usersa_id_msg,
    XFRM_MSG_NEWPOLICY: userpolicy_info_msg,
    XFRM_MSG_UPDPOLICY: userpolicy_info_msg,
    XFRM_MSG_DELPOLICY: userpolicy_id_msg,
    XFRM_MSG_ACQUIRE: user_acquire_msg,
    XFRM_MSG_EXPIRE: user_expire_msg,
    XFRM_MSG_POLEXPIRE: user_polexpire_msg,
    XFRM_MSG_FLUSHSA: usersa_flush_msg,
    XFRM_MSG_FLUSHPOLICY: empty_msg,
}


def attrs(msg: nlmsg_base) -> dict[str, Any]:
    """The decoded attributes of a message by name (last one wins; XFRMA_TMPL is single)."""
    out: dict[str, Any] = {}
    for slot in msg.get("attrs", ()):
        name, value = slot[0], slot[1]
        out[name] = value
    return out
