"""ipsec.secrets (PSKs, the token PIN, include, permissions) with a planted canary that must never show,
and the opportunistic policy-group files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compliance.modes import FipsMode
from fipsike.config import ConfigError, load
from fipsike.config.policies import load_groups
from fipsike.config.secrets import parse_secrets, read_pin_file
from tests.config.conftest import RESOLVER, WEST, empty_secrets, write_secret

CANARY_PSK = "CANARY-psk-7f3a9c1e-DO-NOT-PRINT-5b2d8e4f6a0c1b3d"
CANARY_PIN = "CANARY-pin-31337"


def test_entries_ids_and_include(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_secret(tmp_path / "sub" / "more.secrets", f'@west @east : PSK "{CANARY_PSK}"\n')
    s = write_secret(tmp_path / "ipsec.secrets",
                     f'# comment\n: PSK "{CANARY_PSK[:40]}"\n'
                     f'192.1.2.45 %any : PSK 0x{CANARY_PSK.encode().hex()}\n'
                     f': PIN "{CANARY_PIN}"\ninclude sub/*.secrets\n')
    sec = parse_secrets(s)
    kinds = [(e.kind, e.ids, e.location.line) for e in sec.entries]
    assert kinds == [("PSK", (), 2), ("PSK", ("192.1.2.45",), 3), ("PIN", (), 4), ("PSK", ("@west", "@east"), 1)]
    assert sec.entries[1].secret.reveal() == CANARY_PSK.encode()
    assert sec.psk_for("@west", "@east") is sec.entries[3]
    # libreswan: a line naming %any is a wildcard (even with an ID that matches neither end), which
    # beats a line without IDs
    assert sec.psk_for("@x", "@y") is sec.entries[1]
    pin = sec.pin()
    assert pin is not None and pin.secret.reveal() == CANARY_PIN.encode()
    for text in (repr(sec), str(sec.entries), repr(pin), str(pin.secret)):
        assert "CANARY" not in text and CANARY_PSK.encode().hex() not in text


def test_psk_selection_follows_libreswan(tmp_path: Path) -> None:
    lines = [': PSK "default-line-0123456789"',            # 1: no IDs: the default
             '@west : PSK "west-alone-0123456789"',        # 2: our ID alone: for any peer
             '@west @east : PSK "both-ids-0123456789"',     # 3: explicit pair
             '%any @north : PSK "north-any-0123456789"',    # 4: the peer's ID with %any
             '@west @south @nobody : PSK "local-only-012"',  # 5: our ID among others: no match
             '@nobody @east : PSK "remote-only-0123"']      # 6: the peer's ID alone: no match
    sec = parse_secrets(write_secret(tmp_path / "ipsec.secrets", "\n".join(lines) + "\n"))
    line = {e.location.line: e for e in sec.entries}

    def pick(local: str, remote: str) -> int | None:
        e = sec.psk_for(local, remote)
        return e.location.line if e is not None else None

    assert pick("@west", "@east") == 3 and pick("@east", "@west") == 3  # either order
    assert pick("@west", "@elsewhere") == 2
    assert pick("@x", "@north") == 4
    assert pick("@west", "@north") == 2  # our ID (with the default) outranks the peer's with %any
    assert pick("@x", "@y") == 4  # a line naming %any is a wildcard for every pair: it beats line 1
    assert parse_secrets(write_secret(tmp_path / "one.secrets", lines[0] + "\n" + lines[1] + "\n")) \
        .psk_for("@x", "@y") is not None
    assert pick("@west", "@south") == 5  # both ends named on line 5: explicit, whatever else it names
    assert not line[5].matches("@west", "@q")
    assert not line[6].matches("@x", "@east")
    assert pick("@WEST", "@east") == 3  # FQDN IDs compare case-insensitively (RFC 4945 3.1.2 names)
    only = parse_secrets(write_secret(tmp_path / "two.secrets", '@nobody @east : PSK "remote-only-0123"\n'))
    assert only.psk_for("@west", "@east") is None


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o602])
def test_group_or_world_accessible_secrets_refused(tmp_path: Path, mode: int) -> None:
    s = tmp_path / "ipsec.secrets"
    s.write_text(f': PSK "{CANARY_PSK}"\n')
    s.chmod(mode)
    with pytest.raises(ConfigError) as info:
        parse_secrets(s)
    assert "too open" in str(info.value) and "CANARY" not in str(info.value)


@pytest.mark.parametrize(("line", "words"), [
    (f': PSK "{CANARY_PSK}', "no closing quote"),
    (f': PSK "{CANARY_PSK}" {CANARY_PSK}', "after the quoted secret"),
    (f': PSK {CANARY_PSK} {CANARY_PSK}', "one secret"),
    (f': PSK 0x{CANARY_PSK}', "hexadecimal"),
    (f': PSK 0s{CANARY_PSK}', "base64"),
    (f': RSA {{ {CANARY_PSK} }}', "not supported by fipsike"),
    (f': XAUTH "{CANARY_PSK}"', "IKEv2 only"),
    (f': WHATEVER "{CANARY_PSK}"', "unknown secret kind"),
    (f'{CANARY_PSK}', "expected"),
    (': PSK ""', "empty secret"),
])
def test_bad_entries_never_quote_the_secret(tmp_path: Path, line: str, words: str) -> None:
    s = write_secret(tmp_path / "ipsec.secrets", f"\n{line}\n")
    with pytest.raises(ConfigError) as info:
        parse_secrets(s)
    d = info.value.first
    assert d.location.line == 2 and words in d.message
    for text in (str(info.value), repr(info.value), repr(info.value.diagnostics), str(info.value.args)):
        assert "CANARY" not in text and "5b2d8e4f" not in text


def test_secrets_include_cycle(tmp_path: Path) -> None:
    s = write_secret(tmp_path / "ipsec.secrets", ': PSK "x"\ninclude *.secrets\n')
    with pytest.raises(ConfigError, match="recursive") as info:
        parse_secrets(s)
    assert info.value.first.location.line == 2


def test_pin_file(tmp_path: Path) -> None:
    p = write_secret(tmp_path / "pin", f"{CANARY_PIN}\n")
    pin = read_pin_file(p)
    assert pin.reveal() == CANARY_PIN.encode() and "CANARY" not in repr(pin)
    p.chmod(0o644)
    with pytest.raises(ConfigError, match="too open"):
        read_pin_file(p)


def test_check_config_never_prints_the_canary(tmp_path: Path) -> None:
    conf = tmp_path / "ipsec.conf"
    conf.write_text("conn psk\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tleftid=@west\n\trightid=@east\n"
                    "\tauthby=secret\n\tike=aes_gcm_16_256-sha2_256-dh19\n")
    (tmp_path / "d" / "policies").mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for secret_text, rc in ((f'@west @east : PSK "{CANARY_PSK}"\n: PIN "{CANARY_PIN}"\n', 0),
                            (': PSK "CANARY-short"\n', 1),  # too short in FIPS mode: an error naming no secret
                            (f'@west : PSK "{CANARY_PSK}\n', 1)):  # broken quote
        s = write_secret(tmp_path / "ipsec.secrets", secret_text)
        for extra in ([], ["--json"], ["-vv"]):
            out = subprocess.run([sys.executable, "-m", "fipsike", "check-config", "--config", str(conf),
                                  "--secrets", str(s), "--ipsecdir", str(tmp_path / "d"), "--local-address",
                                  "192.1.2.45", "--fips-mode", "policy", *extra],
                                 capture_output=True, text=True, env=env, check=False)
            assert out.returncode == rc, out.stderr
            assert "CANARY" not in out.stdout + out.stderr
            if extra == ["--json"]:
                assert json.loads(out.stdout)["exit_status"] == rc


@pytest.mark.parametrize(("cert", "words"), [
    (f"pkcs11:token=t;object=west?pin-value={CANARY_PIN}", "holds a pin-value"),
    (f"pkcs11:token=t;bogus%zz={CANARY_PIN}", "not a valid PKCS#11 URI"),
])
def test_pin_in_a_pkcs11_uri_is_refused_unquoted(tmp_path: Path, cert: str, words: str) -> None:
    conf = tmp_path / "ipsec.conf"
    conf.write_text(f"conn a\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tleftcert={cert}\n")
    (tmp_path / "d" / "policies").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        load(conf, secrets=empty_secrets(), ipsecdir=tmp_path / "d", host=WEST, resolver=RESOLVER)
    assert words in info.value.first.message and info.value.first.location.line == 4
    assert "CANARY" not in str(info.value) + repr(info.value.diagnostics)


def test_pkcs11_uri_cert_accepted(tmp_path: Path) -> None:
    conf = tmp_path / "ipsec.conf"
    conf.write_text("conn a\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tleftcert=pkcs11:token=fipsike;object=west\n")
    (tmp_path / "d" / "policies").mkdir(parents=True)
    spec = load(conf, secrets=empty_secrets(), ipsecdir=tmp_path / "d", host=WEST, resolver=RESOLVER).conn("a")
    assert spec.left.cert == "pkcs11:token=fipsike;object=west"


def test_short_psk_refused_in_fips_warned_otherwise(tmp_path: Path) -> None:
    conf = tmp_path / "ipsec.conf"
    conf.write_text("conn psk\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tauthby=secret\n")
    (tmp_path / "d" / "policies").mkdir(parents=True)
    s = write_secret(tmp_path / "ipsec.secrets", ': PSK "0123456789abcdef0123456789abcde"\n')  # 31 bytes
    kw = {"secrets": s, "ipsecdir": tmp_path / "d", "host": WEST, "resolver": RESOLVER}
    with pytest.raises(ConfigError) as info:
        load(conf, fips_mode=FipsMode.POLICY, **kw)  # type: ignore[arg-type]
    d = info.value.first
    assert (d.location.line, d.keyword) == (4, "authby")
    assert "31 bytes; 32 are required" in d.message and "FIPS 198-1" in d.message and "0123" not in d.message
    loaded = load(conf, fips_mode=FipsMode.OFF, **kw)  # type: ignore[arg-type]
    assert any("refused in FIPS mode" in w.message for w in loaded.warnings)
    # a SHA2-256-only proposal needs 16 bytes (half its 32-byte key size)
    conf.write_text("conn psk\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tauthby=secret\n\tike=aes-sha2_256-dh19\n")
    assert load(conf, fips_mode=FipsMode.POLICY, **kw).conn("psk")  # type: ignore[arg-type]


def test_repetitive_psk_refused_in_fips_warned_otherwise(tmp_path: Path) -> None:
    """Long enough but only a few distinct characters ("abab..."): refused at load in FIPS mode with
    the conn's FILE:LINE, a warning otherwise; the message quotes nothing of the secret."""
    conf = tmp_path / "ipsec.conf"
    conf.write_text("conn psk\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tauthby=secret\n")
    (tmp_path / "d" / "policies").mkdir(parents=True)
    s = write_secret(tmp_path / "ipsec.secrets", ': PSK "' + "xyzw" * 12 + '"\n')
    kw = {"secrets": s, "ipsecdir": tmp_path / "d", "host": WEST, "resolver": RESOLVER}
    with pytest.raises(ConfigError) as info:
        load(conf, fips_mode=FipsMode.POLICY, **kw)  # type: ignore[arg-type]
    d = info.value.first
    assert (str(d.location.file), d.location.line, d.keyword) == (str(conf), 4, "authby")
    assert "distinct characters" in d.message and "xyzw" not in str(info.value)
    loaded = load(conf, fips_mode=FipsMode.OFF, **kw)  # type: ignore[arg-type]
    assert any("distinct characters" in w.message and "refused in FIPS mode" in w.message for w in loaded.warnings)


def test_policy_groups(tmp_path: Path) -> None:
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "private").write_text("# mandated\n10.0.0.0/8\n192.168.0.0/16 # lab\n\n2001:db8::/32\n")
    (pol / "block").write_text("198.51.100.0/24\n")
    g = load_groups(pol)
    assert g.members("private") == ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]
    assert g.members("block") == ["198.51.100.0/24"] and g.members("clear") == []


@pytest.mark.parametrize(("content", "line", "words"), [
    ("10.0.0.0/8\n10.0.0.1/8\n", 2, "not a CIDR"),
    ("10.0.0.0/33\n", 1, "not a CIDR"),
    ("# x\nexample.com\n", 2, "not a CIDR"),
])
def test_bad_cidr_file_line(tmp_path: Path, content: str, line: int, words: str) -> None:
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "private-or-clear").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_groups(pol)
    d = info.value.first
    assert (d.location.file, d.location.line) == (str(pol / "private-or-clear"), line) and words in d.message


def test_same_cidr_in_two_groups_reported(tmp_path: Path) -> None:
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "private").write_text("10.0.0.0/8\n")
    (pol / "clear").write_text("# x\n10.0.0.0/8\n")
    with pytest.raises(ConfigError) as info:
        load_groups(pol)
    d = info.value.first
    assert d.location == d.location.__class__(str(pol / "clear"), 2)
    assert "also in group private" in d.message and f"{pol / 'private'}:1" in d.message
