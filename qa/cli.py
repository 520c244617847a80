"""The ``qa`` command: ingest, ask, info, fetch, eval, train.

The library raises domain errors; this module turns them into one-line
messages (exit 2) so a user never sees a traceback for a problem they can fix.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sqlite3
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, NoReturn

from . import __version__
from .errors import QAError
from .records import CONTROL_CHARACTERS
from .settings import Settings

if TYPE_CHECKING:
    from .embed import Embedder
    from .engine import Engine
    from .records import Answer, EvidenceTable

log = logging.getLogger("qa")

EPILOG = """\
examples:
  qa ingest                      build or update index/ from corpus/
  qa ask "which practices reduced the number of children in care?"
  qa ask --json "how much did round 1 invest?"
  echo "what did the evaluation recommend?" | qa ask --json -
  qa ask --by-report "what did the reports find about caseloads?"   one row per report that answers
  qa info

environment: QA_CORPUS_DIR (default corpus/), QA_INDEX_DIR (default index/), QA_MODEL (the
model ingest builds with; default: the bundled all-MiniLM-L6-v2), QA_GOVUK_API (qa fetch's
Content API). A command-line option wins over its variable.
"""


_TEXT_CONTROLS = re.compile(CONTROL_CHARACTERS.pattern.replace("\\x00-\\x1f", "\\x00-\\x08\\x0b-\\x1f"))


_JSON_RAW = re.compile(CONTROL_CHARACTERS.pattern.replace("\\x00-\\x1f", ""))  # json.dumps escapes C0 itself


def safe(text: str) -> str:
    """Text fit for a terminal: every control character but newline and tab shown as '?'.

    Titles, authors, file names and error messages come from documents anyone
    may have written; an escape sequence in them must not reach the terminal.
    """
    return _TEXT_CONTROLS.sub("?", text)


def safe_json(text: str) -> str:
    """JSON with the control characters ``json.dumps`` leaves raw (DEL, C1, bidi) escaped as \\uXXXX."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def say(text: str = "", *, err: bool = False, flush: bool = False) -> None:
    """Print ``text`` with control characters removed; the CLI prints only through this."""
    print(safe(text), file=sys.stderr if err else sys.stdout, flush=flush)


class _SafeFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return safe(super().format(record))


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (the command, what is wrong, where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, safe(f"{self.prog}: {message}; see `{self.prog} --help`\n"))


def _whole_number(what: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number from ``low`` to ``high``; anything else is a usage error.

    Checked here, so a year of twenty digits never reaches SQLite (which cannot
    hold it) and a count of passages below one is not silently taken.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give {what} from {low} to {high}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {what} from {low} to {high}")
        return value

    return parse


_YEAR = _whole_number("a year", 1000, 9999)
MAX_TOP_K = 100


def _add_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", metavar="DIR", help="index folder (default: $QA_INDEX_DIR or index/)")


@dataclass(frozen=True)
class Command:
    """One ``qa`` subcommand: its help, the options it adds, and what it runs with the shared settings."""

    name: str
    help: str
    description: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Settings], int]


def _configure_ingest(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", nargs="?", metavar="CORPUS_DIR", help="documents folder (default: $QA_CORPUS_DIR or corpus/)")
    _add_index(p)
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch (needed after a model or chunking change)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any file was skipped")
    p.add_argument("--model", help="sentence-transformers model name or local folder (default: $QA_MODEL or the bundled "
                   "all-MiniLM-L6-v2; all-MiniLM-L6-v2-int8 is the same model with int8 weights, embedding about twice as fast)")
    p.add_argument("--workers", type=int, default=None,
                   help="PDF parsing processes (default: automatic; 0 parses in this process)")
    p.add_argument("--max-pages", type=int, default=None, help="pages read per document at most (default 5000)")
    p.add_argument("--max-chars", type=int, default=None, help="characters read per document at most (default 20,000,000)")
    p.add_argument("--max-chunks", type=_whole_number("a number of chunks", 1, 10**9), default=None, metavar="N",
                   help="chunks indexed per document at most (default 10,000); the rest of a longer document is left "
                   "out and named in the summary")
    p.add_argument("--follow-symlinks", action="store_true", help="follow symbolic links, also out of the corpus folder")
    p.add_argument("--parse-timeout", type=float, default=None, metavar="SECONDS",
                   help="seconds one file may take to read before it is skipped (default 300; 0: no limit)")
    p.add_argument("--worker-memory-mb", type=int, default=None, metavar="MB",
                   help="memory cap of one parsing process (default 4096; 0: no cap)")
    p.add_argument("--max-file-mb", type=int, default=None, metavar="MB",
                   help="larger files are skipped unread (default 1024)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _configure_ask(p: argparse.ArgumentParser) -> None:
    p.add_argument("question", metavar="QUESTION", help="the question, or - to read questions from standard input")
    _add_index(p)
    p.add_argument("--top-k", type=_whole_number("a number of passages", 1, MAX_TOP_K), default=5, metavar="N",
                   help=f"passages to return, 1 to {MAX_TOP_K} (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON (JSON Lines with QUESTION -)")
    p.add_argument("--doc", action="append", metavar="DOC",
                   help="only this document (path relative to the corpus folder); repeat for several")
    p.add_argument("--year-from", type=_YEAR, metavar="YEAR", help="only documents from this year on")
    p.add_argument("--year-to", type=_YEAR, metavar="YEAR", help="only documents up to this year")
    p.add_argument("--model", help="model to embed the question with (default: the one the index was built with)")
    p.add_argument("--by-report", action="store_true",
                   help="answer report by report: one row per document that answers (its best quoted unit, page and "
                        "citation); documents that do not answer get no row; --top-k does not apply")
    p.add_argument("--sort", choices=("score", "year"), default="score",
                   help="with --by-report: rows best first (score, the default) or oldest first (year)")


def _configure_info(p: argparse.ArgumentParser) -> None:
    _add_index(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def _configure_fetch(p: argparse.ArgumentParser) -> None:
    from . import fetch

    fetch.configure_parser(p)


def _run_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from . import fetch

    return fetch.run(args, settings)


def _configure_eval(p: argparse.ArgumentParser) -> None:
    from . import evaluate

    evaluate.configure_parser(p)


def _run_eval(args: argparse.Namespace, settings: Settings) -> int:
    from . import evaluate

    return evaluate.run(args, settings)


def _configure_train(p: argparse.ArgumentParser) -> None:
    from . import train

    train.configure_parser(p)


def _run_train(args: argparse.Namespace, settings: Settings) -> int:
    from . import train

    return train.run(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qa",
        description="Cited answers from a corpus of evaluation reports: every answer sentence is quoted "
        "from a passage cited to document, page and section.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        command.configure(sub.add_parser(command.name, help=command.help, description=command.description))
    return parser


def _wrap(text: str, indent: str = "    ") -> str:
    return textwrap.fill(" ".join(text.split()), width=100, initial_indent=indent, subsequent_indent=indent)


def answer_to_json(answer: Answer) -> dict[str, object]:
    """The JSON object of one answer, as documented in the README."""
    return {
        "question": answer.question,
        "query": answer.query,
        "merged": answer.merged,
        "found": answer.found,
        "answer": [{"text": s.text, "passages": list(s.passages)} for s in answer.sentences],
        "passages": [
            {
                "rank": p.rank,
                "doc": p.chunk.doc_id,
                "title": p.document.title,
                "year": p.document.year,
                "page": p.chunk.page,
                "page_label": p.chunk.page_label,
                "section": p.chunk.section,
                "text": p.chunk.text,
                "score": p.score,
                "citation": p.citation.short,
                "reference": p.citation.reference,
            }
            for p in answer.passages
        ],
    }


def format_answer(answer: Answer) -> str:
    """Readable terminal output: the answer sentences, then the cited passages."""
    lines: list[str] = []
    if answer.query != answer.question:
        lines.append(f"(searched: {answer.query})")
    if answer.found:
        lines.append("Answer (quoted from the passages below):")
        for s in answer.sentences:
            marks = "".join(f"[{r}]" for r in s.passages)
            lines.append(textwrap.fill(f"{s.text} {marks}", width=100, initial_indent="  - ", subsequent_indent="    "))
    else:
        lines.append("The corpus does not cover this question. The closest passages are weak matches:")
    lines.append("")
    for p in answer.passages:
        section = f" | {p.chunk.section}" if p.chunk.section else ""
        lines.append(f"[{p.rank}] {p.citation.short}{section}  (score {p.score:.2f})")
        lines.append(_wrap(p.chunk.text))
        lines.append(f"    {p.chunk.doc_id}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from .embed import load_embedder
    from .ingest import IngestSettings, ingest
    from .ui import STATIC_DIR

    corpus, index = settings.corpus, settings.index
    embedder = args.embedder or load_embedder(settings.model)
    ingest_settings = IngestSettings(
        workers=args.workers,
        follow_symlinks=args.follow_symlinks,
        progress=not args.no_progress and sys.stderr.isatty(),
        static_dir=STATIC_DIR,  # the app's copies of documents this ingest drops or replaces stop being served
        **{k: v for k, v in (("max_pages", args.max_pages), ("max_chars", args.max_chars), ("max_chunks", args.max_chunks),
                             ("parse_timeout", args.parse_timeout), ("worker_memory_mb", args.worker_memory_mb),
                             ("max_file_mb", args.max_file_mb)) if v is not None},
    )
    report = ingest(corpus, index, embedder, settings=ingest_settings, rebuild=args.rebuild)
    say(f"index {index}: {report.documents} documents, {report.pages} pages, {report.chunks} chunks "
          f"({report.embedded_chunks} embedded now) in {report.seconds:.1f} s")
    if report.new_or_changed:
        say(f"  new or changed: {len(report.new_or_changed)}")
    if report.removed:
        say(f"  removed: {', '.join(report.removed)}")
    if not report.new_or_changed and not report.removed and not report.embedded_chunks:
        say("  already up to date")
    for note in report.notes:
        say(f"  note: {note}")
    if report.skipped:
        say(f"  skipped {len(report.skipped)} file(s):")
        for s in report.skipped:
            say(f"    {s.path}: {s.reason}")
        if args.strict:
            return 1
    return 0


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from .embed import load_embedder, set_threads
    from .engine import Engine

    # The index's own model embeds the question unless --model names another (QA_MODEL is what ingest builds with).
    engine = Engine(settings.index, embedder=args.embedder or (load_embedder(args.model) if args.model else None))
    set_threads(1)  # one thread answers a short query fastest on a small machine
    filters = {"top_k": args.top_k, "docs": args.doc, "year_from": args.year_from, "year_to": args.year_to}
    if args.by_report:
        return _ask_by_report(engine, args)
    if args.question == "-":
        for line in sys.stdin:
            question = line.strip()
            if not question:
                continue
            answer = engine.ask(question, **filters)
            if args.json:
                say(safe_json(json.dumps(answer_to_json(answer), ensure_ascii=False)), flush=True)
            else:
                say(f"Q: {question}\n{format_answer(answer)}\n", flush=True)
        return 0
    answer = engine.ask(args.question, **filters)
    say(safe_json(json.dumps(answer_to_json(answer), ensure_ascii=False, indent=2)) if args.json else format_answer(answer))
    return 0


def _ask_by_report(engine: Engine, args: argparse.Namespace) -> int:
    """``qa ask --by-report``: the evidence table, as text or JSON (JSON Lines with QUESTION -)."""
    from .reports import format_table, table_to_json

    def table(question: str) -> EvidenceTable:
        return engine.ask_by_report(question, sort=args.sort, docs=args.doc, year_from=args.year_from,
                                    year_to=args.year_to)

    if args.question == "-":
        for line in sys.stdin:
            if line.strip():
                found = table(line.strip())
                say(safe_json(json.dumps(table_to_json(found), ensure_ascii=False)) if args.json
                    else f"Q: {line.strip()}\n{format_table(found)}\n", flush=True)
        return 0
    found = table(args.question)
    say(safe_json(json.dumps(table_to_json(found), ensure_ascii=False, indent=2)) if args.json else format_table(found))
    return 0


def _cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    from .store import IndexStore

    store = IndexStore(settings.index)
    m = store.manifest
    info = {
        "index_dir": str(store.index_dir), "generation": store.generation, "built_at": m.built_at,
        "corpus_dir": m.corpus_dir, "model": m.model, "model_sha256": m.model_hash, "dimension": m.dimension,
        "chunking": m.chunking, "documents": len(store.documents), "pages": store.count("pages"),
        "chunks": store.count("chunks"), "skipped_files": {k: v[1] for k, v in m.skipped.items()},
    }
    if args.json:
        info["document_list"] = [
            {"doc": d.doc_id, **asdict(d.meta), "pages": d.n_pages} for d in store.documents.values()
        ]
        say(safe_json(json.dumps(info, indent=2, ensure_ascii=False)))
        return 0
    say(f"index:      {info['index_dir']} ({info['generation']})")
    say(f"built:      {m.built_at} from {m.corpus_dir}")
    say(f"model:      {m.model} ({m.dimension} dimensions, sha256 {m.model_hash[:12]}...)")
    say(f"chunking:   {', '.join(f'{k}={v}' for k, v in m.chunking.items())}")
    say(f"contents:   {info['documents']} documents, {info['pages']} pages, {info['chunks']} chunks")
    for d in store.documents.values():
        say(f"  {d.doc_id}  [{d.year or 'n.d.'}] {d.title} ({d.n_pages} p.)")
    for path, (_key, reason, *_passing) in m.skipped.items():
        say(f"  skipped {path}: {reason}")
    return 0


COMMANDS = {c.name: c for c in (
    Command("ingest", "build or update the index from a folder of documents",
            "Read PDF, .txt, .md and .html files under CORPUS_DIR (recursively), and bring the index in step: new and "
            "changed files are embedded, deleted ones removed, unchanged ones kept. Unreadable files are skipped and "
            "named with the reason.", _configure_ingest, _cmd_ingest),
    Command("ask", "answer a question with cited passages",
            "Answer a plain-language question from the index: the best passages, each with a citation, and the "
            "sentences from them that answer it. With QUESTION '-', read one question per line from standard input.",
            _configure_ask, _cmd_ask),
    Command("info", "what the index holds and how it was built", "", _configure_info, _cmd_info),
    Command("fetch", "download the official evaluation reports from GOV.UK",
            "Download the PDF attachments of the GOV.UK collection 'Children's social care innovation programme: "
            "insights and evaluation' into corpus/official/ with a sources.csv; then run `qa ingest` to index them.",
            _configure_fetch, _run_fetch),
    Command("eval", "measure retrieval and answers on a question or conversation file",
            'Recall@k, MRR@10, answer@ and how well unanswerable questions are flagged, on a JSON Lines question '
            'file: {"id", "question", "gold": [{"doc", "pages", "contains"}], "answer": [phrases]}, or on a '
            "conversation file.", _configure_eval, _run_eval),
    Command("train", "fit the answer scorer on the development questions",
            "Fit the answer scorer (a logistic regression over each candidate unit's features) on the feature table "
            "in tests/data/ with cross-validation grouped by question, print its answer@ beside the hand-set rules', "
            "and write qa/data/scorer.json. With --extract, first ask every development question through the "
            "indexes given and write that table.", _configure_train, _run_train),
)}


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command line's on top: the only place the CLI reads either."""
    return Settings.from_env().override(
        corpus=getattr(args, "corpus", None), index=getattr(args, "index", None),
        model=getattr(args, "model", None) if getattr(args, "command", None) == "ingest" else None,
        govuk_api=getattr(args, "api_base", None),
    )


def main(argv: Sequence[str] | None = None, *, embedder: Embedder | None = None) -> int:
    """Run ``qa ARGV``; its exit status. ``embedder`` stands in for the model (tests pass a small fake one)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.embedder = embedder
    handler = logging.StreamHandler()
    handler.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    if not args.verbose:
        for noisy in ("sentence_transformers", "transformers", "httpx", "huggingface_hub"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return COMMANDS[args.command].run(args, settings_from(args))
    except QAError as exc:
        say(f"qa {args.command}: {exc}", err=True)
        return 2
    except sqlite3.DatabaseError as exc:  # a chunk store damaged after its checksum was checked
        say(f"qa {args.command}: the index database cannot be read ({exc}); rebuild with `qa ingest --rebuild`", err=True)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file or folder the user can fix: one line, never a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        say(f"qa {args.command}: {where}{exc.strerror or exc}; check the file or folder and its permissions", err=True)
        return 2
    except KeyboardInterrupt:
        say("interrupted; the index is unchanged unless the ingest had finished", err=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
