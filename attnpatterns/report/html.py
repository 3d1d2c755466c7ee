"""The report as a document: sections of paragraphs, tables and figures, rendered to one self-contained
HTML page (images embedded as ``data:`` URIs, no script, no network asset) and to a Markdown twin that
points at the PNG files beside it.

This module knows nothing of runs or models: :mod:`attnpatterns.report.build` fills the document.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Sequence, Union


@dataclass
class Paragraph:
    text: str
    kind: str = "text"  # text | note | missing


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str = ""
    align: Sequence[str] | None = None  # per column: "l" or "r"; default: first column left, others right


@dataclass
class Figure:
    stem: str  # path of the PNG/SVG pair relative to the page, without suffix
    caption: str
    png: bytes = b""


Block = Union[Paragraph, Table, Figure]


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what this section's inputs lack, said in the page

    def add(self, block: Block) -> Block:
        self.blocks.append(block)
        return block

    def note_missing(self, what: str) -> None:
        self.missing.append(what)


@dataclass
class Document:
    title: str
    meta: list[tuple[str, str]] = field(default_factory=list)  # (key, value) lines at the top
    sections: list[Section] = field(default_factory=list)


def _cell(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
    return str(v)


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #444;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.8em 0;font-size:.86em}
th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f0f0f0}
td.r,th.r{text-align:right}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1em 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.85em;color:#444}
.missing{background:#fff3cd;border-left:4px solid #e0a800;padding:.5em .8em}
.note{color:#555;font-size:.9em}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;font-size:.9em}
dl.meta dt{font-weight:600}
nav ol{columns:2;font-size:.9em}
"""


def render_html(doc: Document) -> str:
    """One self-contained page: every image a ``data:image/png;base64`` URI, the SVG linked beside it."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(doc.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(doc.title)}</h1>",
    ]
    if doc.meta:
        out.append('<dl class="meta">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in doc.meta) + "</dl>")
    out.append(
        "<nav><ol>" + "".join(f'<li><a href="#{e(s.id)}">{e(s.title)}</a></li>' for s in doc.sections) + "</ol></nav>"
    )
    for s in doc.sections:
        out.append(f'<section id="{e(s.id)}"><h2>{e(s.title)}</h2>')
        for m in s.missing:
            out.append(f'<p class="missing"><strong>Missing:</strong> {e(m)}</p>')
        for b in s.blocks:
            out.append(_block_html(b))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _block_html(b: Block) -> str:
    e = html.escape
    if isinstance(b, Paragraph):
        cls = {"note": ' class="note"', "missing": ' class="missing"'}.get(b.kind, "")
        return f"<p{cls}>{e(b.text)}</p>"
    if isinstance(b, Table):
        align = list(b.align) if b.align else ["l"] + ["r"] * (len(b.header) - 1)
        cell_cls = [' class="r"' if a == "r" else "" for a in align]
        rows = ["<table>"]
        if b.caption:
            rows.append(f"<caption>{e(b.caption)}</caption>")
        rows.append(
            "<tr>"
            + "".join(f"<th{cell_cls[i] if i < len(cell_cls) else ''}>{e(str(h))}</th>" for i, h in enumerate(b.header))
            + "</tr>"
        )
        for r in b.rows:
            rows.append(
                "<tr>"
                + "".join(f"<td{cell_cls[i] if i < len(cell_cls) else ''}>{e(_cell(v))}</td>" for i, v in enumerate(r))
                + "</tr>"
            )
        rows.append("</table>")
        return "\n".join(rows)
    if isinstance(b, Figure):
        data = base64.b64encode(b.png).decode("ascii")
        return (
            f'<figure><img alt="{e(b.caption)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{e(b.caption)} (<a href="{e(b.stem)}.svg">SVG</a>, <a href="{e(b.stem)}.png">PNG</a>)'
            "</figcaption></figure>"
        )
    raise TypeError(f"unknown block {type(b).__name__}")


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Document) -> str:
    """The Markdown twin: the same sections, tables as pipe tables, images as links to the PNG files."""
    out = [f"# {doc.title}", ""]
    for k, v in doc.meta:
        out.append(f"- **{k}**: {v}")
    if doc.meta:
        out.append("")
    for s in doc.sections:
        out += [f"## {s.title}", ""]
        for m in s.missing:
            out += [f"> **Missing:** {m}", ""]
        for b in s.blocks:
            if isinstance(b, Paragraph):
                out += [
                    f"> **Missing:** {b.text}"
                    if b.kind == "missing"
                    else (f"*{b.text}*" if b.kind == "note" else b.text),
                    "",
                ]
            elif isinstance(b, Table):
                align = list(b.align) if b.align else ["l"] + ["r"] * (len(b.header) - 1)
                if b.caption:
                    out += [f"**{b.caption}**", ""]
                out.append("| " + " | ".join(_md_escape(h) for h in b.header) + " |")
                out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
                for r in b.rows:
                    out.append("| " + " | ".join(_md_escape(_cell(v)) for v in r) + " |")
                out.append("")
            elif isinstance(b, Figure):
                out += [f"![{_md_escape(b.caption)}]({b.stem}.png)", "", f"{b.caption} ([SVG]({b.stem}.svg))", ""]
    return "\n".join(out).rstrip() + "\n"
