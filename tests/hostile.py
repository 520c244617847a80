"""Hostile and broken input files, generated on the spot, with what ingest must make of each.

Shared by ``tests/test_hardening.py`` and ``tools/reliability.py`` (which turns the
same cases into the table in ``docs/reliability.md``). Nothing here is committed
as a binary: every file is built from a few bytes, by fpdf2, or by hand as raw
PDF objects with a correct cross-reference table.
"""

from __future__ import annotations

import importlib.util
import io
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conftest import make_pdf

if TYPE_CHECKING:
    from fpdf import FPDF

# Limits the hostile corpus is ingested with: small enough to show truncation.
MAX_PAGES = 100
MAX_CHARS = 2_000_000

GOOD_TEXT = "Family group conferences helped relatives agree a safety plan for the child."
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def raw_pdf(objects: dict[int, bytes], root: int = 1, prefix: bytes = b"") -> bytes:
    """A PDF from numbered object bodies, with a correct xref table and trailer."""
    out = bytearray(prefix + b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += (b"%010d 00000 n \n" % offsets[number]) if number in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def text_ops(text: str) -> bytes:
    return b"BT /F1 12 Tf 72 720 Td (" + text.encode("latin-1") + b") Tj ET"


def page_obj(parent: int, content: int, font: int, extra: bytes = b"") -> bytes:
    return (b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
            b"/Contents %d 0 R %s>>") % (parent, font, content, extra)


def simple_pdf(texts: list[str], *, catalog_extra: bytes = b"", extra_objects: dict[int, bytes] | None = None,
               contents: dict[int, bytes] | None = None) -> bytes:
    """Pages 1..n with one line of text each; ``contents`` replaces a page's content stream body."""
    objects: dict[int, bytes] = {1: b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>", 3: FONT}
    kids = []
    for i, text in enumerate(texts):
        page_no, content_no = 10 + 2 * i, 11 + 2 * i
        kids.append(b"%d 0 R" % page_no)
        objects[page_no] = page_obj(2, content_no, 3)
        objects[content_no] = stream((contents or {}).get(i, text_ops(text)))
    objects[2] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % len(texts)
    objects.update(extra_objects or {})
    return raw_pdf(objects)


def many_pages_pdf(n: int) -> bytes:
    """``n`` tiny pages, each with its own line of text: thousands of pages in about a megabyte."""
    objects: dict[int, bytes] = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 3: FONT}
    objects[2] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (10 + 2 * i) for i in range(n)) + b"] /Count %d >>" % n
    for i in range(n):
        objects[10 + 2 * i] = page_obj(2, 11 + 2 * i, 3)
        code = "".join("abcdefghij"[int(d)] for d in str(i + 1))  # letters, so no two pages repeat a line
        objects[11 + 2 * i] = stream(text_ops(f"Foster carers in group {code} were interviewed about placement stability."))
    return raw_pdf(objects)


def _fpdf_bytes(build: Callable[[FPDF], None]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    build(pdf)
    return bytes(pdf.output())


def image_only_pdf() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (300, 200), (180, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)

    def build(pdf: FPDF) -> None:
        for _ in range(2):
            pdf.add_page()
            pdf.image(buffer, x=20, y=20, w=150)
            buffer.seek(0)

    return _fpdf_bytes(build)


def whitespace_pdf() -> bytes:
    def build(pdf: FPDF) -> None:
        pdf.set_font("Helvetica", size=11)
        for _ in range(2):
            pdf.add_page()
            pdf.set_xy(20, 30)
            pdf.multi_cell(150, 6, "   \n      \n   ")

    return _fpdf_bytes(build)


def encrypted_pdf(good: Path, user_password: str, algorithm: str = "RC4-128") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(str(good)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def has_aes() -> bool:
    return importlib.util.find_spec("cryptography") is not None


@dataclass(frozen=True)
class Case:
    """One hostile input: the files it made, and what ingest must do with them.

    ``expect``: "skipped" (named in the report with a reason containing every word
    of ``reason``), "read" (indexed; ``text`` must be in its pages), "partial"
    (indexed, with ``missing_pages`` left empty) or "ignored" (neither indexed
    nor reported, like any file ingest does not read).
    """

    name: str
    path: str
    expect: str
    reason: tuple[str, ...] = ()
    text: str = ""
    pages: int | None = None
    missing_pages: tuple[int, ...] = ()
    outcome: str = ""  # how the docs table describes the result
    needs: str = ""  # why the case could not be built here, when it could not
    extra_paths: tuple[str, ...] = field(default=())


# The path of every case, in the order ``make_hostile_corpus`` returns them; tests are
# parametrised by these at collection time without writing any file.
CASE_PATHS = (
    "good-report.pdf", "empty.pdf", "truncated.pdf", "random-bytes.pdf", "error-page.pdf", "junk-before-header.pdf",
    "encrypted-password.pdf", "encrypted-no-password.pdf", "encrypted-aes-no-password.pdf", "image-only.pdf",
    "whitespace-only.pdf", "page-raises.pdf", "flate-bomb.pdf", "thousands-of-pages.pdf", "cyclic-page-tree.pdf",
    "cyclic-parent.pdf", "cyclic-outline.pdf", "self-drawing-form.pdf", "cyclic-page-labels.pdf", "deep-catalog.pdf",
    "reference-loop.pdf", "huge.txt", "utf16-bom.txt", "utf16-no-bom.txt", "latin1.txt", "invalid-utf8.txt",
    "binary.txt", "name with spaces.md", "ünïcödé-名前.md", "-leading-dash.md", "--help.md", "new?line.md",
    "?]0;owned?title?[2J.md",
    "bad-\ufffd-name.md", "link-outside.pdf", "linked-folder", "loop/again", "loop-a.pdf", "dangling.pdf",
    "inside-link.md", "pipe.txt",
)


def make_hostile_corpus(folder: Path) -> list[Case]:
    """Write every hostile case (and two good documents) into ``folder``; return the expectations."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    good = make_pdf(folder / "good-report.pdf", [GOOD_TEXT + " " + "Social workers kept caseloads low. " * 6,
                                                 "Evaluation findings on kinship care and placement stability. " * 5])
    (folder / "good-notes.md").write_text("# Good notes\n\nEdge of care teams worked with adolescents at risk of "
                                          "care.\n", encoding="utf-8")
    cases.append(Case("ordinary PDF (control)", "good-report.pdf", "read", text="Family group conferences", outcome="read"))

    def write(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    good_bytes = good.read_bytes()
    write("empty.pdf", b"")
    cases.append(Case("zero-byte file", "empty.pdf", "skipped", ("empty", "replace")))
    write("truncated.pdf", good_bytes[: len(good_bytes) // 2])
    cases.append(Case("PDF truncated half-way", "truncated.pdf", "skipped", ("damaged", "download")))
    write("random-bytes.pdf", bytes((i * 7919 + 13) % 251 for i in range(20_000)))
    cases.append(Case("random bytes named .pdf", "random-bytes.pdf", "skipped", ("not a pdf", "download")))
    write("error-page.pdf", b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><p>Not "
                            b"found</p></body></html>\n")
    cases.append(Case("HTML error page saved as .pdf", "error-page.pdf", "skipped", ("html", "download")))
    write("junk-before-header.pdf", b"\r\n\r\n" + good_bytes)
    cases.append(Case("bytes before the %PDF header", "junk-before-header.pdf", "read", text="Family group conferences"))

    write("encrypted-password.pdf", encrypted_pdf(good, "secret"))
    cases.append(Case("encrypted, user password set (RC4)", "encrypted-password.pdf", "skipped", ("password", "unprotected")))
    write("encrypted-no-password.pdf", encrypted_pdf(good, ""))
    cases.append(Case("encrypted, empty user password "
                      "(RC4)", "encrypted-no-password.pdf", "read", text="Family group conferences"))
    if has_aes():
        write("encrypted-aes-no-password.pdf", encrypted_pdf(good, "", "AES-256"))
        cases.append(Case("encrypted, empty user password "
                          "(AES-256)", "encrypted-aes-no-password.pdf", "read", text="Family group conferences"))
    else:
        cases.append(Case("encrypted, empty user password (AES-256)", "encrypted-aes-no-password.pdf", "read",
                          needs="the `cryptography` package (pypdf needs it to write or read AES)"))

    write("image-only.pdf", image_only_pdf())
    cases.append(Case("image-only PDF (no text layer)", "image-only.pdf", "skipped", ("ocr",)))
    write("whitespace-only.pdf", whitespace_pdf())
    cases.append(Case("PDF whose text is all whitespace", "whitespace-only.pdf", "skipped", ("ocr",)))

    deep_ops = b"[" * 50_000 + b"]" * 50_000 + b" Tj"
    write("page-raises.pdf", simple_pdf(["Kinship carers asked for more training and support.",
                                          "This page's content stream is nested too deeply to parse.",
                                          "Youth workers met young people at risk of exploitation."],
                                         contents={1: deep_ops}))
    cases.append(Case("one page raises inside pypdf (content nested 50,000 deep)", "page-raises.pdf", "partial",
                      text="Youth workers met young people", pages=3, missing_pages=(2,)))

    bomb = zlib.compress(b"\0" * 100_000_000, 9)
    write("flate-bomb.pdf", simple_pdf(["Edge of care services reduced entries to care.", "x"],
                                        extra_objects={99: b"<< /Length %d /Filter /FlateDecode "
                                                           b">>\nstream\n" % len(bomb) + bomb + b"\nendstream"},
                                        contents=None).replace(b"/Contents 13 0 R", b"/Contents 99 0 R"))
    cases.append(Case("page whose stream inflates to 100 MB (zip bomb)", "flate-bomb.pdf", "partial",
                      text="Edge of care services", pages=2, missing_pages=(2,)))

    write("thousands-of-pages.pdf", many_pages_pdf(3000))
    # The tests read it with a cap of MAX_PAGES; the reliability report, with a user's defaults, describes what it measured.
    cases.append(Case("3,000 pages", "thousands-of-pages.pdf", "read", text="Foster carers", pages=MAX_PAGES))

    # Object trees that loop or nest without end.
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 2: b"<< /Type /Pages /Kids [10 0 R 2 0 R] /Count 2 >>", 3: FONT,
               10: page_obj(2, 11, 3), 11: stream(text_ops("A cyclic page tree."))}
    write("cyclic-page-tree.pdf", raw_pdf(objects))
    cases.append(Case("page tree whose /Kids contain itself", "cyclic-page-tree.pdf", "skipped", ("damaged", "download")))
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 2: b"<< /Type /Pages /Kids [10 0 R] /Count 1 /Parent 2 0 R >>",
               10: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 11 0 R >>",
               11: stream(text_ops("Resources are inherited from a parent that is its own parent."))}
    write("cyclic-parent.pdf", raw_pdf(objects))
    cases.append(Case("/Parent chain that loops", "cyclic-parent.pdf", "skipped", ("damaged", "download")))
    outline = {5: b"<< /Type /Outlines /First 6 0 R /Last 6 0 R /Count 1 >>",
               6: b"<< /Title (Introduction) /Parent 5 0 R /Next 6 0 R /First 6 0 R /Dest [10 0 R /Fit] >>"}
    write("cyclic-outline.pdf", simple_pdf(["Social pedagogy shaped residential care "
                                            "practice."], catalog_extra=b"/Outlines 5 0 R ", extra_objects=outline))
    cases.append(Case("outline (bookmarks) that loops", "cyclic-outline.pdf", "read", text="Social pedagogy"))
    form = {20: stream(text_ops("Drawn by a form that draws itself.") + b" /X1 Do",
                       b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> /XObject << /X1 "
                       b"20 0 R >> >>")}
    data = simple_pdf(["Signs of Safety was used in assessments."], extra_objects=form,
                      contents={0: text_ops("Signs of Safety was used in assessments.") + b" /X1 Do"})
    data = data.replace(b"/Resources << /Font << /F1 3 0 R >> "
                        b">>", b"/Resources << /Font << /F1 3 0 R >> /XObject << /X1 20 0 R >> >>")
    write("self-drawing-form.pdf", _fix_xref(data))
    cases.append(Case("form XObject that draws itself", "self-drawing-form.pdf", "read", text="Signs of Safety"))
    labels = {5: b"<< /Kids [5 0 R] >>"}
    write("cyclic-page-labels.pdf", simple_pdf(["Mockingbird constellations supported foster "
                                                "carers."], catalog_extra=b"/PageLabels 5 0 R ", extra_objects=labels))
    cases.append(Case("/PageLabels number tree that "
                      "loops", "cyclic-page-labels.pdf", "read", text="Mockingbird", outcome="read; physical page numbers"))
    deep = b"<< /A " * 50_000 + b"1" + b" >>" * 50_000
    write("deep-catalog.pdf", simple_pdf(["Deep nesting sits beside ordinary text about "
                                          "practice."], catalog_extra=b"/Deep " + deep + b" "))
    cases.append(Case("dictionary nested 50,000 deep", "deep-catalog.pdf", "read", text="ordinary text"))
    write("reference-loop.pdf", simple_pdf(["unused"]).replace(b"/Contents 11 0 R", b"/Contents 30 0 R")
          .replace(b"xref", b"30 0 obj\n31 0 R\nendobj\n31 0 obj\n30 0 R\nendobj\nxref", 1))
    (folder / "reference-loop.pdf").write_bytes(_fix_xref((folder / "reference-loop.pdf").read_bytes()))
    cases.append(Case("/Contents is a reference loop", "reference-loop.pdf", "skipped", ("ocr",),
                      outcome="skipped: no text could be extracted"))

    # Text files.
    paragraph = "The evaluation followed families for eighteen months and recorded outcomes. " * 12 + "\n\n"
    with (folder / "huge.txt").open("w", encoding="utf-8") as handle:
        for _ in range(30_000_000 // len(paragraph)):
            handle.write(paragraph)
    cases.append(Case("30 MB text file", "huge.txt", "read", text="eighteen months"))  # cut at MAX_CHARS in the tests
    write("utf16-bom.txt", "\ufeffUTF-16 text: naïve café résumé about children’s homes.".encode("utf-16-le"))
    cases.append(Case("UTF-16 text with a byte-order mark", "utf16-bom.txt", "read", text="naïve café résumé"))
    write("utf16-no-bom.txt", "UTF-16 without a mark about children's homes.".encode("utf-16-le"))
    cases.append(Case("UTF-16 text without a byte-order mark", "utf16-no-bom.txt", "read", text="without a mark"))
    write("latin1.txt", "Latin-1 text: café, naïve, señor; the Ofsted rating improved.".encode("latin-1"))
    cases.append(Case("Latin-1 text", "latin1.txt", "read", text="café, naïve, señor"))
    write("invalid-utf8.txt", "Mostly UTF-8 “quoted” naïve text".encode() + b" \xff\xfe broken bytes " + "café".encode())
    cases.append(Case("UTF-8 with invalid bytes", "invalid-utf8.txt", "read", text="“quoted” naïve",
                      outcome="read; bad bytes become U+FFFD, the rest stays UTF-8"))
    write("binary.txt", b"\x00\x01\x02\x03binary\x00data" * 100)
    cases.append(Case("binary data named .txt", "binary.txt", "skipped", ("binary",)))

    # File names.
    for name in ("name with spaces.md", "ünïcödé-名前.md", "-leading-dash.md", "--help.md"):
        (folder / name).write_text(f"# Notes\n\nPractice notes stored under an awkward file name: {name!r}.\n", encoding="utf-8")
        cases.append(Case(f"file name {name!r}", name, "read", text="awkward file name"))
    # Control characters in a name would reach the terminal wherever the file is named.
    for name in ("new\nline.md", "\x1b]0;owned\x07title\x1b[2J.md"):
        (folder / name).write_text("# Notes\n\nA file whose name holds control characters.\n", encoding="utf-8")
        shown = "".join("?" if ord(c) < 32 else c for c in name)
        cases.append(Case(f"file name {name!r} (control characters)", shown, "skipped", ("control", "rename")))
    bad_name = os.fsencode(folder) + b"/bad-\xff-name.md"
    fd = os.open(bad_name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"# Notes\n\nA file whose name is not UTF-8.\n")
    os.close(fd)
    cases.append(Case("file name that is not valid UTF-8", "bad-\ufffd-name.md", "skipped", ("rename",)))

    # Links and special files.
    outside = folder.parent / f"{folder.name}-outside"
    outside.mkdir(exist_ok=True)
    make_pdf(outside / "secret.pdf", ["A document outside the corpus that must not be read."])
    (folder / "link-outside.pdf").symlink_to(outside / "secret.pdf")
    cases.append(Case("symbolic link to a file outside the "
                      "corpus", "link-outside.pdf", "skipped", ("outside", "follow-symlinks")))
    (folder / "linked-folder").symlink_to(outside, target_is_directory=True)
    cases.append(Case("symbolic link to a folder", "linked-folder", "skipped", ("symbolic link", "follow-symlinks")))
    sub = folder / "loop"
    sub.mkdir()
    (sub / "again").symlink_to("..", target_is_directory=True)
    cases.append(Case("symbolic link loop (folder links to its parent)", "loop/again", "skipped", ("symbolic link",)))
    (folder / "loop-a.pdf").symlink_to("loop-b.pdf")
    (folder / "loop-b.pdf").symlink_to("loop-a.pdf")
    cases.append(Case("two file links pointing at each other", "loop-a.pdf", "skipped", ("loop",), extra_paths=("loop-b.pdf",)))
    (folder / "dangling.pdf").symlink_to("does-not-exist.pdf")
    cases.append(Case("dangling symbolic link", "dangling.pdf", "skipped", ("broken symbolic link",)))
    (folder / "inside-link.md").symlink_to("good-notes.md")
    cases.append(Case("symbolic link to a file inside the corpus", "inside-link.md", "read", text="Edge of care"))
    os.mkfifo(folder / "pipe.txt")
    cases.append(Case("named pipe called .txt (reading would block)", "pipe.txt", "skipped", ("regular file",)))
    return cases


def _fix_xref(data: bytes) -> bytes:
    """Rebuild the xref table after objects were edited in place (offsets moved)."""
    import re

    body = data[: data.rindex(b"xref\n")]
    objects: dict[int, bytes] = {}
    for match in re.finditer(rb"(?ms)^(\d+) 0 obj\n(.*?)\nendobj\n", body):
        objects[int(match.group(1))] = match.group(2)
    return raw_pdf(objects)
