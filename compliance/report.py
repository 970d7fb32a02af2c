"""The self-test report: JSON for machines (report.schema.json), HTML for an auditor.

The HTML is one self-contained file: inline CSS, no script, no external resource, so it opens
offline and prints as evidence. Nothing in either form carries key material: test details name
steps and files, never values.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from compliance.module import DISABLED, FAIL, NOT_RUN, PASS, SelfTestReport, module_identity
from providers import limits as _limits
from providers import policy as _policy

SCHEMA_FILE = "report.schema.json"
SCHEMA_ID = "https://fipsike.invalid/schemas/selftest-report-1.json"


def load_schema() -> dict[str, Any]:
    text = resources.files("compliance").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def to_json(report: SelfTestReport) -> dict[str, Any]:
    counts = {k: sum(1 for r in report.results if r.result == k) for k in (PASS, FAIL, NOT_RUN, DISABLED)}
    return {
        "schema": SCHEMA_ID,
        "module": module_identity(),
        "fips_mode": {"mode": report.mode.mode.value, "source": report.mode.source, "profile": report.profile,
                      "statement": report.statement},
        "fips_provider": report.fips_provider.as_dict() if report.fips_provider else None,
        "providers": report.providers,
        "started": report.started,
        "finished": report.finished,
        "state": report.state,
        "state_reason": report.state_reason,
        "passed": report.passed,
        "summary": counts,
        "tests": [r.as_dict() for r in report.results],
        "disabled": dict(report.disabled),
        "algorithm_table": [{"kind": r.kind, "name": r.name, "expected": r.expected, "observed": r.observed,
                             "ok": r.ok} for r in report.table_rows],
        "invariants": [{"name": i.name, "ok": i.ok, "detail": i.detail, "source": i.source}
                       for i in report.invariant_results],
    }


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#111}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:2px solid #333}
table{border-collapse:collapse;width:100%;font-size:.85em;margin-top:.5em}
th,td{border:1px solid #999;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#dde3ea}tr.pass td.r{background:#bfe8bf}tr.fail td.r{background:#f2a0a0}
tr.not-run td.r,tr.disabled td.r{background:#f5e3a3}
.verdict{font-size:1.2em;font-weight:bold;padding:.4em;display:inline-block}
.ok{background:#bfe8bf}.bad{background:#f2a0a0}.note{background:#fff6d5;border:1px solid #d9c36a;padding:.5em}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _table(headers: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
           table_id: str = "") -> str:
    out = [f'<table id="{_e(table_id)}">' if table_id else "<table>", "<thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = f' class="{_e(row_classes[i])}"' if row_classes else ""
        out.append(f"<tr{cls}>" + "".join(row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def to_html(report: SelfTestReport) -> str:
    data = to_json(report)
    ident = data["module"]
    verdict = ('<span class="verdict ok">ALL SELF-TESTS PASSED - module operational</span>' if report.passed
               else '<span class="verdict bad">SELF-TEST FAILURE - module in error state</span>')
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>fipsike self-test report {_e(report.finished)}</title><style>{_CSS}</style></head><body>",
        "<h1>fipsike cryptographic self-test report</h1>",
        verdict,
        "<h2>Module identity</h2><dl>",
        *(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in ident.items()),
        f"<dt>report generated</dt><dd>{_e(datetime.now(UTC).isoformat(timespec='seconds'))}</dd>",
        f"<dt>self-tests started</dt><dd>{_e(report.started)}</dd>",
        f"<dt>self-tests finished</dt><dd>{_e(report.finished)}</dd>",
        f"<dt>module state</dt><dd id=\"module-state\">{_e(report.state)} ({_e(report.state_reason)})</dd></dl>",
        "<h2>FIPS mode</h2><dl>",
        f"<dt>mode</dt><dd id=\"fips-mode\">{_e(report.mode.mode.value)}</dd>",
        f"<dt>chosen by</dt><dd>{_e(report.mode.source)}</dd>",
        f"<dt>policy profile</dt><dd>{_e(report.profile)}</dd></dl>",
        f'<p class="note">{_e(report.statement)}</p>',
    ]
    if report.fips_provider is not None:
        fp = report.fips_provider
        parts += ["<dl>", f"<dt>OpenSSL FIPS provider active</dt><dd>{_e(fp.active)}</dd>",
                  f"<dt>OPENSSL_CONF</dt><dd>{_e(fp.openssl_conf or '(unset)')}</dd>",
                  f"<dt>OPENSSL_MODULES</dt><dd>{_e(fp.openssl_modules or '(unset)')}</dd></dl>"]
    parts.append("<h2>Providers</h2>")
    prow = [[f"<td>{_e(p.get('name'))}</td>", f"<td>{_e(p.get('version'))}</td>",
             f"<td>{_e(p.get('fips'))}</td>",
             f"<td>{_e(', '.join(f'{k}={v}' for k, v in dict(p.get('detail') or {}).items()))}</td>"]
            for p in report.providers]
    parts.append(_table(["provider", "version", "FIPS provider active", "detail"], prow, table_id="providers"))
    s = data["summary"]
    parts.append(f"<h2>Self-tests ({s['pass']} passed, {s['fail']} failed, {s['not-run']} not run, "
                 f"{s['disabled']} disabled)</h2>")
    if report.disabled:
        parts.append('<p class="note">Disabled in this process (degraded operation, FIPS 140-3 section 7.11): '
                     + "; ".join(f"{_e(n)}: {_e(w)}" for n, w in report.disabled.items()) + "</p>")
    trows = [[f"<td>{_e(r.name)}</td>", f"<td>{_e(r.kind)}</td>", f"<td>{_e(r.algorithm)}</td>",
              f"<td>{_e(r.provider)} {_e(r.provider_version)}</td>", f'<td class="r">{_e(r.result)}</td>',
              f"<td>{r.duration_ms:.2f}</td>", f"<td>{_e(r.source)}</td>", f"<td>{_e(r.detail)}</td>"]
             for r in report.results]
    parts.append(_table(["test", "kind", "algorithm", "provider", "result", "ms", "vector source", "detail"],
                        trows, [r.result for r in report.results], table_id="selftests"))
    parts.append("<h2>Approved-algorithm table (providers.policy)</h2>")
    arows = []
    for e in _policy.table():
        allowed = e["allowed"]
        arows.append([f"<td>{_e(e['kind'])}</td>", f"<td>{_e(e['name'])}</td>",
                      f"<td>{'allowed' if allowed['fips'] else 'refused'}</td>",
                      f"<td>{'allowed' if allowed['default'] else 'refused'}</td>",
                      f"<td>{_e(', '.join(map(str, e['key_bits'])))}</td>",
                      f"<td>{_e(e['reference'])}</td>", f"<td>{_e(e['note'])}</td>"])
    parts.append(_table(["kind", "algorithm", "fips", "default", "key bits", "reference", "note"], arows,
                        table_id="allowlist"))
    if report.table_rows:
        parts.append(f"<h2>Algorithm-table self-test ({_e(report.profile)} profile, observed through the "
                     "Router)</h2>")
        rrows = [[f"<td>{_e(r.kind)}</td>", f"<td>{_e(r.name)}</td>", f"<td>{_e(r.expected)}</td>",
                  f'<td class="r">{_e(r.observed)}</td>'] for r in report.table_rows]
        parts.append(_table(["kind", "transform", "policy says", "router did"], rrows,
                            ["pass" if r.ok else "fail" for r in report.table_rows], table_id="observed"))
    parts.append("<h2>Usage limits (providers.limits)</h2>")
    lrows = [[f"<td>{_e(x['family'])}</td>", f"<td>{_e(x['counter'])}</td>", f"<td>{_e(x['hard'])}</td>",
              f"<td>{_e(x['soft'])}</td>", f"<td>{_e(x['source'])}</td>"] for x in _limits.table()]
    parts.append(_table(["cipher", "counter", "hard limit", "rekey at", "source"], lrows, table_id="limits"))
    parts.append("<h2>Policy invariants of FIPS mode</h2>")
    irows = [[f"<td>{_e(i.name)}</td>", f'<td class="r">{"holds" if i.ok else "VIOLATED"}</td>',
              f"<td>{_e(i.detail)}</td>", f"<td>{_e(i.source)}</td>"] for i in report.invariant_results]
    parts.append(_table(["invariant", "status", "detail", "source"], irows,
                        ["pass" if i.ok else "fail" for i in report.invariant_results], table_id="invariants"))
    parts.append("</body></html>\n")
    return "".join(parts)


def summary_text(report: SelfTestReport) -> str:
    lines = [f"fipsike self-test: FIPS mode {report.mode.explain()}, profile {report.profile}",
             f"  {report.statement}"]
    if report.fips_provider is not None and report.mode.mode.value == "required":
        lines.append(f"  OpenSSL FIPS provider active: {report.fips_provider.active}")
    width = max((len(r.name) for r in report.results), default=10)
    for r in report.results:
        mark = {PASS: "PASS", FAIL: "FAIL", NOT_RUN: "----", DISABLED: "OFF "}[r.result]
        extra = f"  {r.detail}" if r.result != PASS and r.detail else ""
        lines.append(f"  {mark}  {r.name:<{width}}  {r.provider} {r.duration_ms:7.2f} ms{extra}")
    counts = {k: sum(1 for r in report.results if r.result == k) for k in (PASS, FAIL, NOT_RUN, DISABLED)}
    if report.disabled:
        lines.append("  disabled in this process: " + ", ".join(report.disabled))
    lines.append(f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[NOT_RUN]} not run, "
                 f"{counts[DISABLED]} disabled; module state: {report.state}")
    return "\n".join(lines)
