"""Small, escaped HTML building blocks (pure): the page shell, tables and an inline SVG bar chart.

Every value reaches the page through :func:`esc` (text and attributes alike), so data from the
ledger — customer names, model names, metadata — can never inject markup. No JavaScript, no CDN:
the chart is SVG rendered here on the server.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

__all__ = ["bar_chart", "esc", "href", "page", "table"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
header{background:#1d2430;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b9c2d0;font-size:13px}main{padding:8px 28px 40px;max-width:1100px}
section{background:#fff;border:1px solid #e2e6ec;border-radius:8px;padding:14px 18px;margin-top:16px}
h2{font-size:16px;margin:0 0 10px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f3}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}tr.total td{font-weight:600;border-top:2px solid #1d2430}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#e8ecf2}
.paid{background:#d7f5e1;color:#0b6b2e}.finalized{background:#fff1cc;color:#7a5600}
.void{background:#eee;color:#666}.draft{background:#e3ecff;color:#1d4fb8}.neg{color:#b42318}
.note{color:#5b6472;font-size:12px}a{color:#1d4fb8}svg text{font-size:10px;fill:#5b6472}
"""


def esc(value: Any) -> str:
    """``value`` as HTML-escaped text (quotes included, so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def href(path: str, **params: Any) -> str:
    """An escaped ``href`` value: ``path`` with the non-``None`` ``params`` as a query string."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return esc(f"{path}?{query}" if query else path)


def page(title: str, subtitle: str, body: str) -> str:
    """A complete document; ``body`` must already be escaped HTML."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<meta name=robots content="noindex"><meta name=referrer content="no-referrer">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><main>{body}</main></body></html>"
    )


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Sequence[int] = (),
    total: Sequence[Any] | None = None,
    test_id: str | None = None,
    raw: Sequence[int] = (),
) -> str:
    """A table; cells are escaped unless their column index is in ``raw`` (pre-built escaped HTML)."""

    def cells(values: Sequence[Any], tag: str) -> str:
        parts = []
        for index, value in enumerate(values):
            css = ' class="num"' if index in numeric else ""
            content = str(value) if index in raw else esc(value)
            parts.append(f"<{tag}{css}>{content}</{tag}>")
        return "".join(parts)

    attribute = f' data-testid="{esc(test_id)}"' if test_id else ""
    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    foot = f'<tr class="total">{cells(total, "td")}</tr>' if total is not None else ""
    return (
        f"<table{attribute}><thead><tr>{cells(headers, 'th')}</tr></thead><tbody>{body}{foot}</tbody></table>"
    )


def bar_chart(
    points: Sequence[tuple[str, Decimal]], *, label: str, width: int = 720, height: int = 180
) -> str:
    """A bar per ``(x label, value)``; negative values hang below the axis. Empty: a short note."""
    if not points:
        return '<p class="note">No usage in this period yet.</p>'
    values = [value for _, value in points]
    top = max([*values, Decimal(0)])
    bottom = min([*values, Decimal(0)])
    span = (top - bottom) or Decimal(1)
    left, right, upper, lower = 56, 8, 10, 22
    plot_width, plot_height = width - left - right, height - upper - lower
    step = Decimal(plot_width) / len(points)
    bar = max(Decimal(1), step * Decimal("0.8"))

    def y(value: Decimal) -> Decimal:
        return upper + (top - value) / span * plot_height

    zero = y(Decimal(0))
    shapes = [
        f'<line x1="{left}" y1="{zero:.1f}" x2="{width - right}" y2="{zero:.1f}" stroke="#c5ccd6"/>',
        f'<text x="{left - 4}" y="{upper + 8}" text-anchor="end">{esc(_short(top))}</text>',
        f'<text x="{left - 4}" y="{zero:.1f}" text-anchor="end">0</text>',
    ]
    if bottom < 0:
        shapes.append(
            f'<text x="{left - 4}" y="{height - lower:.1f}" text-anchor="end">{esc(_short(bottom))}</text>'
        )
    label_every = max(1, len(points) // 8)
    for index, (x_label, value) in enumerate(points):
        x = left + step * index + (step - bar) / 2
        y0, y1 = sorted((y(value), zero))
        color = "#d92d20" if value < 0 else "#3867d6"
        shapes.append(
            f'<rect x="{x:.1f}" y="{y0:.1f}" width="{bar:.1f}" height="{max(y1 - y0, Decimal(0)):.1f}" '
            f'fill="{color}"><title>{esc(x_label)}: {esc(value)}</title></rect>'
        )
        if index % label_every == 0:
            shapes.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 6}" text-anchor="middle">{esc(x_label[5:])}</text>'
            )
    return (
        f'<svg role="img" aria-label="{esc(label)}" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(shapes)}</svg>'
    )


def _short(value: Decimal) -> str:
    magnitude = abs(value)
    for limit, suffix in ((Decimal(10**9), "G"), (Decimal(10**6), "M"), (Decimal(10**3), "k")):
        if magnitude >= limit:
            return f"{(value / limit).quantize(Decimal('0.1'))}{suffix}"
    return format(value.normalize(), "f") if value == value.to_integral_value() else f"{value:.2f}"
