"""Every verb with bad input, canaries planted: one line, non-zero, no traceback, no canary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import (
    CANARY_PASSWORD,
    CANARY_PIN,
    TOKEN,
    WRONG_PIN_CANARY,
    World,
    assert_no_canary,
    assert_one_line_error,
)

KEY_CANARY = "c0ffee5ca1ab1edeadc0de0123456789"  # a key-table cell
NAME_CANARY = "C0FFEECANARY-ALG-4711"  # an algorithm cell that is not a name


def _files(w: World) -> dict[str, Path]:
    d = w.dir / "bad"
    d.mkdir(exist_ok=True)
    f = {
        "garbage": d / "garbage.bin",
        "notcert": d / "notcert.pem",
        "wrongpin": d / "wrong.pin",
        "latin1pin": d / "latin1.pin",
        "latin1pw": d / "latin1.pw",
        "storefile": d / "storefile",
        "keys-name": d / "keys-name.csv",
        "keys-hex": d / "keys-hex.csv",
        "keys-bin": d / "keys-bin.csv",
        "keys-nul": d / "keys-nul.csv",
        "keys-cols": d / "keys-cols.csv",
    }
    f["garbage"].write_bytes(bytes(range(256)) * 3)
    f["notcert"].write_text("not a cert\n")
    f["wrongpin"].write_text(WRONG_PIN_CANARY + "\n")
    f["latin1pin"].write_bytes(b"Kq7Canary\xe9Pin4242\n")
    f["latin1pw"].write_bytes(b"Zx9Canary\xe9Pass\n")
    f["storefile"].write_text("a file, not a directory\n")
    spis = "0101010101010101,0202020202020202"
    f["keys-name"].write_text(f'{spis},{KEY_CANARY},{KEY_CANARY},"{NAME_CANARY}",,,"NONE [RFC4306]"\n')
    f["keys-hex"].write_text(f'{spis},{KEY_CANARY}zz,{KEY_CANARY},"AES-CBC-128 [RFC3602]",{KEY_CANARY},'
                             f'{KEY_CANARY},"HMAC_SHA2_256_128 [RFC4868]"\n')
    f["keys-bin"].write_bytes(b"# keys\n" + bytes.fromhex(KEY_CANARY) + b"\xe9\xff" + KEY_CANARY.encode() + b"\n")
    f["keys-nul"].write_bytes(f"{spis},{KEY_CANARY}\x00,".encode() + b"x,y,z,w,v\n")
    f["keys-cols"].write_text(f"{KEY_CANARY},{KEY_CANARY}\n")
    return f


CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("import-garbage", ["import", "{garbage}", "--token", TOKEN, "--store", "{store}"], ("not a PKCS#12",)),
    ("import-wrong-pin", ["import", "{p12}", "--token", TOKEN, "--pin-file", "{wrongpin}", "--store", "{store}"],
     ("PIN incorrect",)),
    ("import-latin1-pin", ["import", "{p12}", "--token", TOKEN, "--pin-file", "{latin1pin}", "--store", "{store}"],
     ("is not UTF-8",)),
    ("import-latin1-password", ["import", "{p12}", "--token", TOKEN, "--password-file", "{latin1pw}",
                                "--store", "{store}"], ("password file", "is not UTF-8")),
    ("import-store-is-a-file", ["import", "{p12}", "--token", TOKEN, "--store", "{storefile}"],
     ("not a directory",)),
    ("import-no-module", ["import", "{p12}", "--token", TOKEN, "--module", "/nonexistent/lib.so"],
     ("cannot load PKCS#11 module /nonexistent/lib.so",)),
    ("import-module-not-elf", ["import", "{p12}", "--token", TOKEN, "--module", "{notcert}"],
     ("cannot load PKCS#11 module", "not a shared library")),
    ("import-module-not-pkcs11", ["import", "{p12}", "--token", TOKEN, "--module", "/bin/true"],
     ("cannot load PKCS#11 module /bin/true",)),
    ("verify-notcert", ["cert", "verify", "{notcert}", "--ca", "{root}"], ("not a PEM or DER certificate",)),
    ("verify-garbage-ca", ["cert", "verify", "{ee}", "--ca", "{garbage}"], ("not a PEM or DER certificate",)),
    ("verify-garbage-crl", ["cert", "verify", "{ee}", "--ca", "{root}", "--crl", "{garbage}"],
     ("not a PEM or DER CRL",)),
    ("list-missing-store", ["cert", "list", "--store", "{dir}/no-such-store"], ("no such directory",)),
    ("list-wrong-pin", ["cert", "list", "--store", "{liststore}", "--token", TOKEN, "--pin-file", "{wrongpin}"],
     ("PIN incorrect",)),
    ("list-latin1-pin", ["cert", "list", "--store", "{liststore}", "--token", TOKEN, "--pin-file", "{latin1pin}"],
     ("is not UTF-8",)),
    ("decode-garbage", ["decode", "{garbage}"], ("not a pcap",)),
    ("decode-keys-name", ["decode", "{capture}", "--keys", "{keys-name}"], ("keys-name.csv:1:", "column 5")),
    ("decode-keys-hex", ["decode", "{capture}", "--keys", "{keys-hex}"], ("keys-hex.csv:1:", "column 3 (SK_ei)")),
    ("decode-keys-binary", ["decode", "{capture}", "--keys", "{keys-bin}"],
     ("keys-bin.csv:2: not a key table",)),
    ("decode-keys-nul", ["decode", "{capture}", "--keys", "{keys-nul}"], ("keys-nul.csv:1: not a key table",)),
    ("decode-keys-columns", ["decode", "{capture}", "--keys", "{keys-cols}"],
     ("keys-cols.csv:1: not a key table",)),
    ("xfrm-bad-netns", ["xfrm", "--netns", "fipsike-no-such-ns"], ("ENOENT",)),
    ("xfrm-reveal", ["xfrm", "--reveal-keys"], ("refused",)),
    ("selftest-missing-manifest", ["selftest", "--manifest", "{dir}/missing.json"], ("software-integrity",)),
    ("selftest-unwritable-manifest", ["selftest", "--write-manifest", "--manifest", "/proc/nonexistent/m.json"],
     ("cannot write the integrity manifest",)),
]


@pytest.mark.softhsm
@pytest.mark.parametrize(("name", "argv", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clean_line(world: World, name: str, argv: list[str], words: tuple[str, ...]) -> None:
    f = _files(world)
    subst = {**{k: str(v) for k, v in f.items()}, "p12": str(world.p12), "store": str(world.dir / f"s-{name}"),
             "liststore": str(world.store), "root": str(world.root_pem), "ee": str(world.ee_pem), "dir": str(world.dir),
             "capture": str(Path(__file__).resolve().parents[1] / "data" / "strongswan" / "rsa.pcap")}
    args = [a.format(**subst) for a in argv]
    if args[0] == "import" and "--password-file" not in args:
        args += ["--password-file", str(world.password_file)]
    r = world.run(*args)
    line = assert_one_line_error(r, *words)
    assert "ParseError" not in line and "codec" not in line and "0xe9" not in line and "\\xe9" not in line
    assert_no_canary(r.stdout + r.stderr, [CANARY_PIN, CANARY_PASSWORD, WRONG_PIN_CANARY, KEY_CANARY, NAME_CANARY,
                                           b"Kq7Canary\xe9Pin4242", b"Zx9Canary\xe9Pass"])


@pytest.mark.softhsm
def test_non_utf8_pin_in_the_environment(world: World) -> None:
    env = world.env(FIPSIKE_PIN=b"Kq7Canary\xe9Pin4242")
    r = world.run("cert", "list", "--store", str(world.store), "--token", TOKEN, env=env)
    assert_one_line_error(r, "environment variable FIPSIKE_PIN is not UTF-8")
    assert_no_canary(r.stdout + r.stderr, [b"Kq7Canary\xe9Pin4242", "Kq7Canary", "Pin4242"])
    env = world.env(FIPSIKE_P12_PASSWORD=b"Zx9Canary\xe9Pass")
    r = world.run("import", str(world.p12), "--token", TOKEN, "--store", str(world.dir / "s-envpw"), env=env)
    assert_one_line_error(r, "environment variable FIPSIKE_P12_PASSWORD is not UTF-8")
    assert_no_canary(r.stdout + r.stderr, [b"Zx9Canary\xe9Pass", "Zx9Canary"])
