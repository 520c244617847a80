"""Build the sample corpus PDFs from their Markdown sources.

Each ``tools/sample_src/<name>.md`` becomes ``<out>/<name>.pdf``. A source starts
with a front-matter block between ``---`` lines (``title``, ``short_title``,
``subject``, ``keywords``, ``labels``) followed by a small Markdown subset:

* ``# Title`` - the document title, set large on the first page;
* ``## 1 Section`` / ``### 1.1 Subsection`` - numbered headings, also bookmarks;
* paragraphs, ``- `` bullet items and ``| a | b |`` tables (first row = header);
* ``<!-- newpage -->`` - start a new page;
* ``<!-- contents -->`` - a contents page listing headings with page labels;
* ``<!-- body -->`` - start a new page and restart labels at arabic 1.

``labels: roman-front`` numbers the pages before ``<!-- body -->`` i, ii, iii...;
``labels: arabic`` numbers every page 1, 2, 3... Labels are written as PDF
/PageLabels and printed in the running footer. The output is deterministic:
metadata and creation date are fixed, so the same sources give the same bytes.

Usage: ``python tools/build_sample_corpus.py [--out DIR] [--src DIR]``
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.outline import OutlineSection

ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = ROOT / "tools" / "sample_src"
OUT_DIR = ROOT / "corpus"

#: Fixed creation date so that builds are byte-for-byte reproducible.
BUILD_DATE = datetime(2024, 1, 1, tzinfo=UTC)
AUTHOR = "evidence-qa sample briefing"
CREATOR = "evidence-qa sample corpus builder"
FOOTER = "Sample briefing - page {label}"
FONT = "Helvetica"

_ASCII_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " ",
}


@dataclass
class Block:
    """One unit of a source: a heading, a paragraph, a list, a table or a directive."""

    kind: str  # title, h1, h2, para, bullets, table, newpage, contents, body
    text: str = ""
    items: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Source:
    """A parsed Markdown source: its metadata and its blocks."""

    name: str
    meta: dict[str, str]
    blocks: list[Block]

    @property
    def title(self) -> str:
        return self.meta["title"]

    @property
    def short_title(self) -> str:
        return self.meta.get("short_title", self.title)

    @property
    def roman_front(self) -> bool:
        return self.meta.get("labels", "arabic") == "roman-front"


def clean_text(text: str, where: str = "") -> str:
    """Map typographic characters to ASCII and check the rest fits latin-1 (core fonts)."""
    out = "".join(_ASCII_MAP.get(ch, ch) for ch in text)
    try:
        out.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{where}: character {out[exc.start]!r} cannot be set in {FONT}") from exc
    return out


def parse_source(path: Path) -> Source:
    """Read a Markdown source into metadata and blocks."""
    text = clean_text(path.read_text(encoding="utf-8"), str(path.name))
    lines = text.splitlines()
    meta: dict[str, str] = {}
    if not lines or lines[0].strip() != "---":
        raise ValueError(f"{path.name}: missing front-matter block")
    end = lines.index("---", 1)
    for line in lines[1:end]:
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip()
    for key in ("title", "subject"):
        if not meta.get(key):
            raise ValueError(f"{path.name}: front matter needs '{key}'")

    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Block("para", " ".join(para)))
            para.clear()

    for raw in lines[end + 1 :]:
        line = raw.strip()
        directive = re.fullmatch(r"<!--\s*(newpage|contents|body)\s*-->", line)
        if not line:
            flush()
        elif directive:
            flush()
            blocks.append(Block(directive.group(1)))
        elif line.startswith("#"):
            flush()
            hashes, _, heading = line.partition(" ")
            kind = {"#": "title", "##": "h1", "###": "h2"}.get(hashes)
            if kind is None:
                raise ValueError(f"{path.name}: unsupported heading {line!r}")
            blocks.append(Block(kind, heading.strip()))
        elif line.startswith("- "):
            flush()
            if not blocks or blocks[-1].kind != "bullets":
                blocks.append(Block("bullets"))
            blocks[-1].items.append(line[2:].strip())
        elif line.startswith("|"):
            flush()
            if not blocks or blocks[-1].kind != "table":
                blocks.append(Block("table"))
            blocks[-1].rows.append([c.strip() for c in line.strip("|").split("|")])
        else:
            para.append(line)
    flush()
    return Source(path.stem, meta, blocks)


class BriefingPDF(FPDF):
    """FPDF with the running header (short title) and footer (page label)."""

    def __init__(self, short_title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.short_title = short_title
        self.set_margins(22, 20, 22)
        self.set_auto_page_break(True, margin=22)

    def header(self) -> None:
        self.set_font(FONT, "", 8)
        self.set_text_color(90, 90, 90)
        self.set_y(10)
        self.cell(0, 4, self.short_title, align="L")
        self.set_draw_color(160, 160, 160)
        self.line(self.l_margin, 15, self.w - self.r_margin, 15)
        self.set_text_color(0, 0, 0)
        self.set_y(22)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FONT, "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 4, FOOTER.format(label=self.get_page_label()), align="C")
        self.set_text_color(0, 0, 0)


def _render_contents(pdf: FPDF, outline: list[OutlineSection]) -> None:
    """Write the contents page: one line per heading with its printed page label."""
    for section in outline:
        if section.name == "Contents":
            continue
        label = pdf.pages[section.page_number].get_label()
        indent = 6 * section.level
        pdf.set_font(FONT, "B" if section.level == 0 else "", 10.5)
        pdf.set_x(pdf.l_margin + indent)
        pdf.cell(pdf.epw - indent - 15, 6.5, section.name)
        pdf.cell(15, 6.5, label, align="R", new_x="LMARGIN", new_y="NEXT")


def _heading(pdf: BriefingPDF, text: str, level: int) -> None:
    """Write a numbered heading on its own line and register it as a bookmark."""
    needed = 40 if level == 0 else 28  # keep a heading with its first lines
    if pdf.get_y() > pdf.page_break_trigger - needed:
        pdf.add_page()
    pdf.ln(4 if level == 0 else 2)
    pdf.start_section(text, level=level)
    pdf.set_font(FONT, "B", 14 if level == 0 else 11.5)
    pdf.multi_cell(0, 7 if level == 0 else 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1.5)


def _table(pdf: BriefingPDF, rows: list[list[str]]) -> None:
    """Write a simple grid table whose first row is the header."""
    widths = len(rows[0])
    # Column widths follow the longest cell of each column, within limits.
    longest = [max(len(row[i]) for row in rows if i < len(row)) for i in range(widths)]
    pdf.set_font(FONT, "", 9.5)
    with pdf.table(
        col_widths=tuple(min(max(n, 10), 40) for n in longest),
        text_align="LEFT",
        line_height=5,
        first_row_as_headings=True,
    ) as table:
        for row in rows:
            if len(row) != widths:
                raise ValueError(f"table row has {len(row)} cells, expected {widths}: {row}")
            cells = table.row()
            for value in row:
                cells.cell(value)
    pdf.ln(3)


def render(source: Source) -> BriefingPDF:
    """Lay out one parsed source as a PDF document (not yet written)."""
    pdf = BriefingPDF(source.short_title)
    pdf.set_title(source.title)
    pdf.set_author(AUTHOR)
    pdf.set_subject(source.meta["subject"])
    pdf.set_keywords(source.meta.get("keywords", ""))
    pdf.set_creator(CREATOR)
    pdf.set_producer(CREATOR)
    pdf.set_lang("en-GB")
    pdf.set_creation_date(BUILD_DATE)
    pdf.add_page(label_style="r" if source.roman_front else "D", label_start=1)

    for block in source.blocks:
        if block.kind == "title":
            pdf.set_font(FONT, "B", 20)
            pdf.ln(20 if source.roman_front else 2)
            pdf.multi_cell(0, 9, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(6)
        elif block.kind == "newpage":
            pdf.add_page()
        elif block.kind == "body":
            pdf.add_page(label_style="D", label_start=1)
        elif block.kind == "contents":
            pdf.add_page()
            pdf.start_section("Contents", level=0)
            pdf.set_font(FONT, "B", 14)
            pdf.cell(0, 8, "Contents", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
            pdf.insert_toc_placeholder(_render_contents, pages=1)
        elif block.kind == "h1":
            _heading(pdf, block.text, 0)
        elif block.kind == "h2":
            _heading(pdf, block.text, 1)
        elif block.kind == "para":
            pdf.set_font(FONT, "", 10.5)
            pdf.multi_cell(0, 5.5, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)
        elif block.kind == "bullets":
            pdf.set_font(FONT, "", 10.5)
            for item in block.items:
                pdf.set_x(pdf.l_margin + 4)
                pdf.cell(5, 5.5, "-")
                pdf.multi_cell(0, 5.5, item, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            pdf.ln(1.5)
        elif block.kind == "table":
            _table(pdf, block.rows)
        else:  # pragma: no cover - parse_source only makes the kinds above
            raise ValueError(f"unknown block kind {block.kind}")
    return pdf


def build_one(src: Path, out_dir: Path) -> Path:
    """Build ``src`` into ``out_dir/<stem>.pdf`` and return the output path."""
    out = out_dir / f"{src.stem}.pdf"
    render(parse_source(src)).output(str(out))
    return out


def build_all(src_dir: Path = SRC_DIR, out_dir: Path = OUT_DIR) -> list[Path]:
    """Build every ``*.md`` in ``src_dir``, in name order; return the PDFs written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(src_dir.glob("*.md"))
    if not sources:
        raise FileNotFoundError(f"no Markdown sources in {src_dir}")
    return [build_one(src, out_dir) for src in sources]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: corpus/)")
    parser.add_argument("--src", type=Path, default=SRC_DIR, help="source folder (default: tools/sample_src/)")
    args = parser.parse_args(argv)
    for path in build_all(args.src, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
