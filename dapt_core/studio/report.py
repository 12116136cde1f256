"""A one-page, self-contained HTML report of a run, for people who will never open the app.

Self-contained means one file that opens offline, by double-click, years later: plotly.js is
inlined (not fetched from a CDN), pictures are data URIs, styles are inline. Every piece of
text is escaped; the caller supplies all wording (in the user's language), so this module knows
nothing about translations or about Streamlit.

    html = render_report(ReportContent(title=..., headline=..., sections=[Section(...)]))
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# The inline plotly.js is ~4.6 MB; a report is still far smaller than the photos it describes.


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass
class Picture:
    data: bytes  # JPEG or PNG bytes
    caption: str
    mime: str = "image/jpeg"


@dataclass
class Section:
    heading: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)  # plotly figures (go.Figure or dict)
    pictures: list[Picture] = field(default_factory=list)
    columns: int = 1  # figures side by side


@dataclass
class ReportContent:
    title: str
    subtitle: str = ""
    headline: str = ""  # the one sentence a manager reads
    key_numbers: list[tuple[str, str]] = field(default_factory=list)  # (label, value)
    sections: list[Section] = field(default_factory=list)
    footer: str = ""
    lang: str = "en"
    # Plotly's config for every figure (merged over the report's own), e.g. a locale for the mode bar's words.
    plotly_config: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


# The look of every figure in a report. A figure takes the template that is plotly's default when
# it is made, and a library may have changed that default: Streamlit's (set on `import streamlit`)
# holds placeholder colours ("#000001"...) that only its web page replaces, and no automatic
# margins, so in a standalone file its lines are all black and axis labels are cut off.
REPORT_TEMPLATE = "plotly_white"


def _figure_html(figure, index: int, config: dict | None = None) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    fig = go.Figure(figure)  # a copy: the caller's figure keeps its look
    fig.layout.template = pio.templates[REPORT_TEMPLATE]
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"figure-{index}",
                       config={"displaylogo": False, "responsive": True, **(config or {})})


def _cell(value) -> str:
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape("" if value is None else str(value))


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in table.rows)
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _picture_html(picture: Picture) -> str:
    encoded = base64.b64encode(picture.data).decode("ascii")
    mime = picture.mime if picture.mime in ("image/jpeg", "image/png") else "image/jpeg"
    return (f'<figure class="pic"><img src="data:{mime};base64,{encoded}" alt="{html.escape(picture.caption)}">'
            f"<figcaption>{html.escape(picture.caption)}</figcaption></figure>")


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI","Hiragino Sans","Noto Sans CJK JP",Meiryo,sans-serif;
 margin:0 auto;max-width:1100px;padding:24px;color:#1f2430;line-height:1.45}
h1{margin:0 0 4px;font-size:1.7em}
h2{margin:28px 0 8px;font-size:1.25em;border-bottom:1px solid #dde;padding-bottom:4px}
.subtitle{color:#667;margin-bottom:16px}
.headline{font-size:1.15em;background:#f2f6ff;border-left:4px solid #3b6fe0;padding:12px 16px;margin:16px 0}
.numbers{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.number{border:1px solid #dde;border-radius:8px;padding:8px 14px;min-width:140px}
.number .label{color:#667;font-size:.85em} .number .value{font-size:1.4em;font-weight:600}
table{border-collapse:collapse;margin:8px 0 12px;font-size:.92em} caption{text-align:left;color:#667;padding:4px 0}
th,td{border:1px solid #dde;padding:4px 10px;text-align:left} th{background:#f6f7fa}
.grid{display:grid;gap:12px} .pics{display:flex;flex-wrap:wrap;gap:10px}
figure.pic{margin:0;width:132px;font-size:.78em;color:#445}
figure.pic img{width:128px;height:128px;object-fit:cover;border:1px solid #ccd}
footer{margin-top:32px;color:#889;font-size:.8em}
@media print{body{max-width:none;padding:0} h2{break-after:avoid} .grid,.pics,table{break-inside:avoid}}
"""


def render_report(content: ReportContent) -> str:
    """The report as one HTML document (a str)."""
    parts = [f'<!DOCTYPE html><html lang="{html.escape(content.lang)}"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(content.title)}</title><style>{_STYLE}</style>",
             f'<script type="text/javascript">{_plotly_js()}</script></head><body>',
             f"<h1>{html.escape(content.title)}</h1>"]
    if content.subtitle:
        parts.append(f'<div class="subtitle">{html.escape(content.subtitle)}</div>')
    if content.headline:
        parts.append(f'<div class="headline">{html.escape(content.headline)}</div>')
    if content.key_numbers:
        parts.append('<div class="numbers">' + "".join(
            f'<div class="number"><div class="label">{html.escape(label)}</div>'
            f'<div class="value">{html.escape(value)}</div></div>' for label, value in content.key_numbers) + "</div>")
    figure_index = 0
    for section in content.sections:
        parts.append(f"<section><h2>{html.escape(section.heading)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        for table in section.tables:
            parts.append(_table_html(table))
        if section.figures:
            columns = max(1, section.columns)
            parts.append(f'<div class="grid" style="grid-template-columns:repeat({columns},minmax(0,1fr))">')
            for figure in section.figures:
                parts.append(f"<div>{_figure_html(figure, figure_index, content.plotly_config)}</div>")
                figure_index += 1
            parts.append("</div>")
        if section.pictures:
            parts.append('<div class="pics">' + "".join(_picture_html(p) for p in section.pictures) + "</div>")
        parts.append("</section>")
    if content.footer:
        parts.append(f"<footer>{html.escape(content.footer)}</footer>")
    parts.append("</body></html>")
    return "".join(parts)
