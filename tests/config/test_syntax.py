"""ipsec.conf syntax as libreswan delimits it: sections, indentation, quotes, comments, include, also=,
%default; and, for any text at all, only the typed error, always with a file and a line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.modes import FipsMode
from fipsike.config import ConfigError, ConfigUnreadable, load
from fipsike.config.syntax import parse_config, parse_string
from tests.config.conftest import RESOLVER, WEST, empty_secrets


def _load(path: Path, mode: FipsMode = FipsMode.OFF):  # type: ignore[no-untyped-def]
    (path.parent / "d" / "policies").mkdir(parents=True, exist_ok=True)
    return load(path, secrets=empty_secrets(), ipsecdir=path.parent / "d", fips_mode=mode, host=WEST, resolver=RESOLVER)


def test_sections_values_quotes_comments() -> None:
    parsed = parse_string(
        'version 2\n'
        '# a comment\n'
        'config setup\n'
        '   plutodebug="all crypt"   # trailing comment\n'
        '\n'
        'conn "a=b,c"\n'
        '\tleftid = "C=CA, O=Example, CN=west"\n'
        '\tleftsubnet={10.0.0.0/8 10.1.0.0/16}\n'
        '\tright=%any#not-a-comment\n'
        '\tempty=\n'
        '  # indented comment\n'
        'conn b\n', "t.conf")
    setup, a, b = parsed.sections
    assert setup.kind == "setup" and [(s.key, s.value) for s in setup.settings] == [("plutodebug", "all crypt")]
    assert a.name == "a=b,c" and b.name == "b" and b.settings == []
    assert [(s.key, s.value, s.location.line) for s in a.settings] == [
        ("leftid", "C=CA, O=Example, CN=west", 7), ("leftsubnet", "10.0.0.0/8 10.1.0.0/16", 8),
        ("right", "%any#not-a-comment", 9), ("empty", "", 10)]


@pytest.mark.parametrize(("text", "line", "words"), [
    ("left=1.2.3.4\n", 1, "expected 'config setup'"),  # a parameter must be indented
    ("\tleft=1.2.3.4\n", 1, "outside"),
    ("conn a\n\tleft 1.2.3.4\n", 2, "without '='"),
    ("conn a\n\tleft=1.2.3.4 extra\n", 2, "one value"),
    ('conn a\n\tleftid="unterminated\n', 2, "one value"),
    ("conn\n", 1, "one connection name"),
    ("conn a b\n", 1, "one connection name"),
    ("config nonsense\n", 1, "config setup"),
    ("conn a\nversion 2\n", 2, "version 2"),
    ("version 3\n", 1, "version 2"),
    ("include\n", 1, "include"),
])
def test_syntax_errors_have_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_string(text, "f.conf")
    d = info.value.first
    assert (d.location.file, d.location.line) == ("f.conf", line) and words in d.message


def test_every_syntax_error_is_reported() -> None:
    with pytest.raises(ConfigError) as info:
        parse_string("conn a\n\tbad line\nconn b\n\talso bad\n", "f.conf")
    assert [d.location.line for d in info.value.diagnostics] == [2, 4]


def test_include_glob_relative_to_including_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("conn b\n\tleft=192.1.2.45\n\tright=192.1.2.23\n")
    (tmp_path / "conf.d" / "a.conf").write_text("conn a\n\tleft=192.1.2.45\n\tright=192.1.2.24\n")
    (tmp_path / "conf.d" / "skip.txt").write_text("garbage\n")
    main = tmp_path / "ipsec.conf"
    main.write_text("config setup\n\tplutodebug=none\ninclude conf.d/*.conf\n")
    parsed = parse_config(main)
    assert [s.name for s in parsed.conns()] == ["a", "b"]
    assert parsed.conns()[0].settings[0].location.file == str(tmp_path / "conf.d" / "a.conf")
    assert {c.name for c in _load(main).conns} == {"a", "b"}


def test_include_without_match_warns_and_missing_file_is_unreadable(tmp_path: Path) -> None:
    main = tmp_path / "ipsec.conf"
    main.write_text("include nothing/*.conf\n")
    assert "matches no file" in parse_config(main).warnings[0].message
    main.write_text("include missing.conf\n")
    with pytest.raises(ConfigUnreadable) as info:
        parse_config(main)
    assert info.value.first.location.line == 1 and "missing.conf" in info.value.first.message


def test_include_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("\ninclude a.conf\n")
    with pytest.raises(ConfigError) as info:
        parse_config(tmp_path / "a.conf")
    d = info.value.first
    assert d.location == d.location.__class__(str(tmp_path / "b.conf"), 2) and "recursive" in d.message


def test_also_and_default_precedence(tmp_path: Path) -> None:
    conf = tmp_path / "ipsec.conf"
    conf.write_text(
        "conn %default\n\tikelifetime=2h\n\tipsec-lifetime=1h\n\tleftcert=west\n"
        "conn base\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tikelifetime=3h\n\talso=hosts\n"
        "conn hosts\n\tleftsubnet=10.1.0.0/16\n\tikelifetime=5h\n"
        "conn top\n\talso=base\n\tleftsubnet=10.0.0.0/16\n")
    loaded = _load(conf)
    top = loaded.conn("top")
    assert top.ikelifetime == 3 * 3600  # also=base beats also=base->hosts and %default
    assert top.ipsec_lifetime == 3600  # from %default
    assert top.left.subnets == ("10.0.0.0/16",)  # the conn's own setting wins
    assert loaded.conn("base").left.subnets == ("10.1.0.0/16",)
    assert loaded.templates == ["hosts"]  # an also= target without hosts is not a connection


@pytest.mark.parametrize(("text", "words"), [
    ("conn a\n\talso=b\nconn b\n\talso=a\n", "cycle"),
    ("conn a\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\talso=nosuch\n", "no conn of that name"),
    ("conn a\n\tleft=192.1.2.45\n\tright=192.1.2.23\nconn a\n\tleft=192.1.2.45\n", "defined twice"),
])
def test_also_errors(tmp_path: Path, text: str, words: str) -> None:
    conf = tmp_path / "ipsec.conf"
    conf.write_text(text)
    with pytest.raises(ConfigError) as info:
        _load(conf)
    assert any(words in d.message and d.location.line > 0 for d in info.value.diagnostics)


def test_left_and_right_both_local(tmp_path: Path) -> None:
    conf = tmp_path / "ipsec.conf"
    conf.write_text("conn a\n\tleft=192.1.2.45\n\tright=%defaultroute\n")
    with pytest.raises(ConfigError, match="both this host"):
        _load(conf)


_LINE = st.one_of(
    st.sampled_from(["config setup", "conn a", "conn %default", "include x*.conf", "version 2", "", "# c",
                     "\tleft=192.1.2.45", "\tright=%any", "\talso=a", "\tike=aes-sha2", "\tauthby=null",
                     "\tleftsubnet=10.0.0.0/8", "\tauto=start", '\tleftid="a b', "\t=x", "\tx-y", "conn b"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, max_size=12))
def test_fuzz_only_typed_errors_with_file_and_line(tmp_path_factory: pytest.TempPathFactory,
                                                   lines: list[str]) -> None:
    d = tmp_path_factory.mktemp("fuzz")
    conf = d / "ipsec.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        _load(conf)
    except ConfigUnreadable:
        pass
    except ConfigError as exc:
        for diag in exc.diagnostics:
            assert diag.location.file and diag.location.line >= 1, str(diag)
            assert str(diag).startswith(f"{diag.location.file}:{diag.location.line}: ")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    conf = tmp_path_factory.mktemp("fuzzb") / "ipsec.conf"
    conf.write_bytes(data)
    try:
        _load(conf)
    except ConfigError as exc:
        assert all(x.location.line >= 1 for x in exc.diagnostics)
