"""The XFRM structs against the kernel's C headers, and decoding that drops key bytes."""

from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from fipsike.kernel import xfrm_messages as xm
from fipsike.kernel.types import Lifetime, Mode, Ownership, SaSpec, UdpEncap
from fipsike.kernel.xfrm import build_sa_message, sa_state_of
from providers import Encryption, Integrity, open_router
from tests.kernel.canary import assert_no_canary, canary

SIZES = {  # x86_64, linux/xfrm.h
    "xfrm_usersa_info": (xm.USERSA_INFO, 224),
    "xfrm_userspi_info": ((*xm.USERSA_INFO, ("min", "I"), ("max", "I")), 232),
    "xfrm_userpolicy_info": (xm.USERPOLICY_INFO, 168),
    "xfrm_user_acquire": (xm.USER_ACQUIRE, 280),
    "xfrm_user_expire": (xm.user_expire_msg.fields, 232),
    "xfrm_user_polexpire": (xm.user_polexpire_msg.fields, 176),
    "xfrm_usersa_id": (xm.USERSA_ID, 24),
    "xfrm_userpolicy_id": (xm.USERPOLICY_ID, 64),
    "xfrm_user_tmpl": (xm.USER_TMPL, 64),
    "xfrm_encap_tmpl": (xm.ENCAP_TMPL, 24),
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_struct_sizes(name: str) -> None:
    fields, size = SIZES[name]
    assert xm.struct_size(fields) == size


def test_struct_sizes_match_the_installed_kernel_headers(tmp_path: Path) -> None:
    """Compile sizeof() of every struct against /usr/include/linux/xfrm.h (gcc is part of CI)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc is not None, "a C compiler is needed to check the struct sizes"
    src = tmp_path / "sizes.c"
    body = "".join(f'printf("{n} %zu\\n", sizeof(struct {n}));' for n in SIZES)
    src.write_text("#include <stdio.h>\n#include <linux/xfrm.h>\nint main(void){" + body + "return 0;}\n")
    subprocess.run([cc, str(src), "-o", str(tmp_path / "sizes")], check=True)
    out = subprocess.run([str(tmp_path / "sizes")], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        name, size = line.split()
        assert xm.struct_size(SIZES[name][0]) == int(size), name


def _spec(router, enc_key, integ_key=None, **kw):  # type: ignore[no-untyped-def]
    enc = kw.pop("encryption", Encryption.ENCR_AES_GCM_16)
    return SaSpec(ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2"), 0x1234, Ownership().reqid_min,
                  Mode.TUNNEL, enc, router.import_secret(enc_key, "ESP_ei"),
                  kw.pop("integrity", Integrity.NONE),
                  router.import_secret(integ_key, "ESP_ai") if integ_key else None, **kw)


def _roundtrip(msg, fingerprint=None):  # type: ignore[no-untyped-def]
    msg["header"]["type"] = xm.XFRM_MSG_NEWSA
    msg.encode()
    data = bytearray(msg.data)
    decoded = xm.usersa_info_msg(data)
    with xm.key_fingerprints(fingerprint):  # nested attributes decode when first read
        decoded.decode()
        return data, sa_state_of(decoded)


def test_sa_roundtrip_keeps_only_length_and_fingerprint(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    router = open_router("default")
    enc_key, integ_key = canary(32), canary(32)
    spec = _spec(router, enc_key, integ_key, encryption=Encryption.ENCR_AES_CBC,
                 integrity=Integrity.AUTH_HMAC_SHA2_256_128, esn=True, replay_window=128,
                 encap=UdpEncap(), lifetime=Lifetime(900, 1000, 90, 100))
    msg = build_sa_message(spec, enc_key, integ_key, Ownership())
    assert_no_canary(repr(msg), [enc_key, integ_key], "the message object before encoding")
    data, state = _roundtrip(msg, router.keyed_fingerprint)
    assert enc_key in data and integ_key in data  # the wire message really carries them
    assert [(a.kind, a.name, a.key.octets, a.bits) for a in state.algorithms] == [
        ("enc", "cbc(aes)", 32, 0), ("auth-trunc", "hmac(sha256)", 32, 128)]
    assert state.algorithms[0].key.fingerprint == router.keyed_fingerprint(enc_key)
    assert state.algorithms[1].key.fingerprint != state.algorithms[0].key.fingerprint
    assert state.esn and state.replay_window == 128 and state.encap == UdpEncap()
    assert (state.lifetime.soft_bytes, state.lifetime.hard_bytes) == (900, 1000)
    assert state.mark == (0, Ownership().mark_mask) and state.reqid == Ownership().reqid_min
    assert_no_canary(repr(state), [enc_key, integ_key], "the decoded SA")
    assert_no_canary(caplog.text, [enc_key, integ_key], "DEBUG logs")


def test_aead_key_includes_salt_and_icv_bits() -> None:
    router = open_router("default")
    key = canary(20)  # 16-octet AES key + 4-octet salt (RFC 4106 8.1)
    data, state = _roundtrip(build_sa_message(_spec(router, key), key, None, Ownership()))
    (alg,) = state.algorithms
    assert (alg.kind, alg.name, alg.key.octets, alg.bits) == ("aead", "rfc4106(gcm(aes))", 20, 128)


def test_reveal_is_opt_in_per_context() -> None:
    router = open_router("default")
    key = canary(20)
    msg = build_sa_message(_spec(router, key), key, None, Ownership())
    msg["header"]["type"] = xm.XFRM_MSG_NEWSA
    msg.encode()
    data = bytearray(msg.data)
    with xm.reveal_keys():
        m = xm.usersa_info_msg(data)
        m.decode()
        revealed = sa_state_of(m)
    m = xm.usersa_info_msg(data)
    m.decode()
    assert revealed.revealed == (("rfc4106(gcm(aes))", key.hex()),)
    assert sa_state_of(m).revealed == ()


def test_truncated_key_attribute_never_reads_past_the_attribute() -> None:
    router = open_router("default")
    key = canary(20)
    msg = build_sa_message(_spec(router, key), key, None, Ownership())
    msg["header"]["type"] = xm.XFRM_MSG_NEWSA
    msg.encode()
    data = bytearray(msg.data)
    # claim a 4096-bit key in a 20-octet attribute
    pos = data.index(b"rfc4106") + 64
    data[pos:pos + 4] = (4096).to_bytes(4, "little")
    m = xm.usersa_info_msg(data)
    m.decode()
    (alg,) = sa_state_of(m).algorithms
    assert alg.key.octets <= 20


def test_keys_blanked_by_a_locked_down_kernel_are_not_fingerprinted() -> None:
    """lockdown=confidentiality: the kernel sends zeros instead of keys (xfrm_redact)."""
    router = open_router("default")
    zero = bytes(20)
    _, state = _roundtrip(build_sa_message(_spec(router, zero), zero, None, Ownership()), router.keyed_fingerprint)
    (alg,) = state.algorithms
    assert alg.key.blanked_by_kernel and alg.key.fingerprint is None and alg.key.octets == 20
    from fipsike.kernel.report import render_text

    assert "blanked by the kernel" in render_text([state], [])
