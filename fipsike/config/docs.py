"""Render the keyword table (fipsike.config.keywords) as docs/config-keywords.md.

`python -m fipsike.config.docs > docs/config-keywords.md` rewrites the page; a test checks it is current.
"""

from __future__ import annotations

from fipsike.config import keywords as K

HEADER = """# ipsec.conf keywords: what fipsike does with each

Generated from `fipsike/config/keywords.py` by `python -m fipsike.config.docs`; do not edit by hand
(tests/config/test_docs.py fails when this page is stale).

Every libreswan 4.x/5.x keyword is listed. *implemented*: typed, range-checked and used. *noop*: checked,
no effect in fipsike, a warning on every use. *refused*: the file is refused with
"libreswan keyword 'X' is not supported by fipsike: why" (values under "accepted values" ask for what
fipsike does anyway and pass). *obsolete*: ignored with a warning, as libreswan 5 does. Keywords not
listed (and not `x-`/`X_` comments) reject the whole file, as libreswan rejects them.
"""


def _row(k: K.Keyword) -> str:
    name = f"left{k.name} / right{k.name}" if k.leftright else k.name
    if k.leftright and not k.name:
        name = "left / right"
    values = ""
    if k.status == K.ALIAS:
        detail = f"alias of `{k.alias_of}`"
    else:
        detail = k.note
        if k.choices:
            values = ", ".join(k.choices)
        elif k.accept_only:
            values = ", ".join(v or '""' for v in k.accept_only)
        elif k.low is not None or k.high is not None:
            values = f"{k.type} {k.low if k.low is not None else ''}..{k.high if k.high is not None else ''}"
        elif k.status in (K.IMPLEMENTED, K.NOOP):
            values = k.type
    return f"| `{name}` | {k.status} | {values.replace('|', '/')} | {detail.replace('|', '/')} |"


def render() -> str:
    out = [HEADER]
    for title, rows in (("conn sections", K.CONN_KEYWORDS), ("config setup", K.SETUP_KEYWORDS)):
        out.append(f"## {title}\n")
        out.append("| keyword | status | values | what / why |")
        out.append("|---|---|---|---|")
        out += [_row(k) for k in rows]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
