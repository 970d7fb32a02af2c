"""The auditor's HTML report, opened in headless Chromium (Debian's `chromium` package): the DOM
has the table rows, and the screenshot shows them rendered (pixel check, stdlib PNG decoding)."""

from __future__ import annotations

import copy
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import jsonschema
import pytest

from compliance import kats, report
from compliance.module import StartupError, startup

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASS_GREEN = (0xBF, 0xE8, 0xBF)
FAIL_RED = (0xF2, 0xA0, 0xA0)


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    assert CHROMIUM, "chromium is not installed (apt-get install chromium; CI installs it)"
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          timeout=120, check=False)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows, bytes per pixel) of an 8-bit non-interlaced RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if ctype == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6)
            bpp = 3 if color == 2 else 4
        elif ctype == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def _bands(rows: list[bytes], bpp: int, color: tuple[int, int, int]) -> tuple[int, int]:
    """(pixels of `color`, vertical bands of rows holding it): one band per rendered table cell."""
    needle = bytes(color)
    count = bands = 0
    inside = False
    for line in rows:
        hits = sum(1 for x in range(0, len(line), bpp) if line[x:x + 3] == needle)
        count += hits
        if hits > 10 and not inside:
            bands += 1
        inside = hits > 10
    return count, bands


@pytest.fixture(scope="module")
def passing_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rep = startup("policy", env={}).report
    path = tmp_path_factory.mktemp("report") / "selftest.html"
    path.write_text(report.to_html(rep), encoding="utf-8")
    return path


def test_html_is_self_contained(passing_html: Path) -> None:
    text = passing_html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<script" not in text and "@import" not in text and "url(" not in text


def test_dom_in_chromium_has_every_row(passing_html: Path, tmp_path: Path) -> None:
    r = _chromium(tmp_path, "--dump-dom", passing_html.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout.decode()
    rep = startup("policy", env={}).report
    selftests = dom[dom.index('<table id="selftests">'):]
    selftests = selftests[:selftests.index("</table>")]
    assert selftests.count("<tr class=") == len(rep.results)
    for res in rep.results:
        assert f"<td>{res.name}</td>" in selftests
    allow = dom[dom.index('<table id="allowlist">'):]
    for name in ("ENCR_AES_GCM_16", "ENCR_3DES", "CURVE25519", "PRF_HMAC_SHA1", "ML_KEM_768"):
        assert f"<td>{name}</td>" in allow
    for table_id in ("providers", "observed", "limits", "invariants"):
        assert f'<table id="{table_id}">' in dom
    assert 'id="fips-mode">policy<' in dom and "claims no FIPS 140-3 validated" in dom


def test_screenshot_shows_the_rendered_table(passing_html: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    r = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,2000", passing_html.as_uri())
    assert r.returncode == 0 and png.is_file(), r.stderr[-2000:]
    width, height, rows, bpp = _png_pixels(png.read_bytes())
    assert (width, height) == (1280, 2000)
    colors = {line[x:x + 3] for line in rows[::40] for x in range(0, len(line), bpp * 7)}
    assert len(colors) > 20, "blank screenshot"
    green, bands = _bands(rows, bpp, PASS_GREEN)
    assert green > 20_000, green  # the banner and the result cells
    assert bands >= 10, bands  # one band per passing row within the first 2000 pixels
    red, _ = _bands(rows, bpp, FAIL_RED)
    assert red == 0


def test_screenshot_of_a_failing_run_shows_red(tmp_path: Path) -> None:
    vectors = copy.deepcopy(kats.load_vectors())
    vectors["sha2"]["sha256"] = "00" * 32
    with pytest.raises(StartupError) as info:
        startup("policy", env={}, vectors=vectors)
    assert info.value.report is not None
    html_path = tmp_path / "failed.html"
    html_path.write_text(report.to_html(info.value.report), encoding="utf-8")
    png = tmp_path / "failed.png"
    r = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,2000", html_path.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    _, _, rows, bpp = _png_pixels(png.read_bytes())
    red, bands = _bands(rows, bpp, FAIL_RED)
    assert red > 1000 and bands >= 2  # the banner and the kat-sha2-256 row


def test_json_report_validates(passing_html: Path) -> None:
    rep = startup("policy", env={}).report
    doc = report.to_json(rep)
    jsonschema.Draft202012Validator(report.load_schema()).validate(doc)
    names = [t["name"] for t in doc["tests"]]
    assert len(names) == len(set(names))
