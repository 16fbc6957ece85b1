"""Self-contained HTML evaluation reports, with the same figures as JSON next to them.

A report must survive being e-mailed, printed or filed with a court bundle: one HTML file with its
plots inline (PNG, base64), no scripts, no external links; the JSON beside it carries every number
for anyone who wants to check or re-plot them.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #bbb; padding: 0.25rem 0.55rem; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.warn { color: #8a4b00; } .meta { color: #555; font-size: 0.9rem; } img { max-width: 100%; }
.box { background: #f6f8fa; border-left: 4px solid #4a6fa5; padding: 0.6rem 1rem; margin: 1rem 0; }
"""


def new_figure(width: float = 6.4, height: float = 4.6) -> Figure:
    """A figure not tied to pyplot's global state (safe in threads and servers)."""
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def image(fig: Figure, alt: str) -> str:
    """The figure as an inline PNG ``<img>``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def paragraph(text: str, css: str | None = None) -> str:
    cls = f' class="{css}"' if css else ""
    return f"<p{cls}>{html.escape(text)}</p>"


def bullets(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def heading(text: str) -> str:
    return f"<h2>{html.escape(text)}</h2>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    return "—" if value is None else str(value)


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write(
    out_dir: Path,
    stem: str,
    title: str,
    summary: Sequence[str],
    body: Sequence[str],
    how_to_read: Sequence[str],
    data: dict,
) -> tuple[Path, Path]:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``out_dir`` and return their paths.

    ``summary`` is a few plain sentences shown first, ``body`` the report's HTML blocks (built with the
    helpers above), ``how_to_read`` plain-English notes for a reader who is not a specialist.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    data = {"report": stem, "title": title, "created": created, **data}
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(jsonable(data), indent=1, default=str) + "\n")
    html_path = out_dir / f"{stem}.html"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">Generated {created} by OpenLFR; every figure is also in {html.escape(json_path.name)}.</p>',
        '<div class="box">' + "".join(paragraph(s) for s in summary) + "</div>",
        *body,
        heading("How to read this report"),
        bullets(how_to_read),
        "</body></html>",
    ]
    html_path.write_text("\n".join(parts) + "\n")
    return html_path, json_path
