"""What the listener would hear, book by book: sections skipped as front or back matter,
chunks worth a look (voxd.narration.plan's flags), text left out as not language, paragraphs that
are fragments rather than sentences (figure labels read as "0 10 20 x"), chunks with a hole where a
web address was taken out ("is at ."), and code listings said as "A code example.".

Compare two versions of voxd on the same books: ``--before DIR`` is another checkout's
root (``git archive COMMIT voxd | tar -x -C DIR``); its books are read and chunked by its own
code, and every chunk is flagged by this checkout's rules, so the flags mean the same on
both sides. Without books named, it reads the shared corpus, public PDFs and HTML manuals
found on the system (each HTML manual made into an EPUB, as web-to-EPUB tools do). Prints
a table and writes JSON (``--out``).

    python bench/speech.py --before /tmp/voxd-before BOOK...
    python bench/speech.py --smoke --out /tmp/speech.json    # an EPUB and a PDF built here: seconds

``--smoke`` reads two small books built on the spot (the same three short chapters as
an EPUB and a PDF, one of them with a run of capitals and a figure's labels)
instead of the corpus and the system's manuals, and writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"

# Runs inside the checkout being measured: only APIs that every version has.
_DUMP = r"""
import json, re, sys
from pathlib import Path
from voxd.ingest import read_book
try:
    from voxd.narration.text import plan_chunks, split_sentences, clean_for_speech, _split_long
except ImportError:  # a checkout from before voxd/narration/ (voxd/text.py)
    from voxd.text import plan_chunks, split_sentences, clean_for_speech, _split_long

FRAGMENT_WORD = re.compile(r"[^\W\d_]{4,}")

def fragment(text):
    letters = sum(ch.isalpha() for ch in text)
    if text == "* * *":  # a section break, as readers mark one
        return False
    return len(text) <= 30 and (not FRAGMENT_WORD.search(text) or letters * 2 < len(text.replace(" ", "")))

out = {}
for name in sys.argv[1:]:
    path = Path(name)
    try:
        kept = read_book(path)
        everything = read_book(path, skip_front_back_matter=False)
    except Exception as exc:
        out[path.name] = {"error": f"{type(exc).__name__}: {exc}"}
        continue
    dropped = []
    try:
        chunks = plan_chunks(kept, voice="v", language=kept.metadata.language, dropped=dropped)
    except TypeError:
        chunks = plan_chunks(kept, voice="v", language=kept.metadata.language)
    pieces = set()
    for chapter in kept.chapters:
        for p in chapter.paragraphs:
            for s in split_sentences(clean_for_speech(p)):
                if len(s) > 500:
                    pieces.update(_split_long(s, 500))
    paragraphs = [p for c in kept.chapters for p in c.paragraphs]
    out[path.name] = {
        "kept": [c.title for c in kept.chapters],
        "all": [c.title for c in everything.chapters],
        "paragraphs": len(paragraphs),
        "fragments": sum(1 for p in paragraphs if fragment(p)),
        "left_out": [len(getattr(d, "text", d)) for d in dropped],
        "chunks": [
            {"text": c.text, "language": c.language, "cut": bool(getattr(c, "cut", False))
             or any(piece in c.text for piece in pieces)}
            for c in chunks
        ],
    }
print(json.dumps(out))
"""


def dump(root: Path, books: list[Path]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", _DUMP, *map(str, books)], capture_output=True, text=True, env=env, check=False,
        cwd=root,  # "-c" puts the working directory first on the path
    )
    if done.returncode:
        raise SystemExit(f"reading with {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def measure(data: dict) -> dict:
    from collections import Counter

    from voxd.book import Chunk, Pause
    from voxd.narration.plan import chunk_flags

    if "error" in data:
        return {"error": data["error"]}
    kept = Counter(data["kept"])
    skipped = []
    for title in data["all"]:
        if kept[title]:
            kept[title] -= 1
        else:
            skipped.append(title)
    flags: Counter[str] = Counter()
    flagged = 0
    holes = sum(1 for c in data["chunks"] if HOLE.search(c["text"]))
    for c in data["chunks"]:
        chunk = Chunk(0, 0, c["text"], Pause.SENTENCE, "v", language=c["language"], cut=c["cut"])
        found = chunk_flags(chunk, "qwen")
        flagged += bool(found)
        flags.update(found)
    return {
        "chapters": len(data["kept"]),
        "skipped_sections": len(skipped),
        "skipped": skipped,
        "chunks": len(data["chunks"]),
        "flagged_chunks": flagged,
        "flags": dict(flags),
        "holes": holes,
        "code_mentions": sum(1 for c in data["chunks"] if c["text"] in CODE_MENTIONS),
        "left_out_pieces": len(data["left_out"]),
        "left_out_chars": sum(data["left_out"]),
        "paragraphs": data["paragraphs"],
        "fragment_paragraphs": data["fragments"],
    }


# What a removed web address leaves: "is at .", "see , or", "( )".
HOLE = re.compile(r"\b(?:at|see|visit|from|on|to|via|under)\s+[.,;:!?)](?=\s|$)|\(\s*\)")
CODE_MENTIONS = frozenset({"A code example.", "Ein Codebeispiel.", "Un exemple de code.", "Un ejemplo de código."})
# A chapter for --smoke with something to find: a run of capitals (a flag) beside a web address, and
# a figure's axis labels (a fragment, flagged as mostly digits).
SMOKE_NOTES = ("Notes", ["The chart is at www.example.com with THE OLD HARBOUR MAP beside it.", "0 10 20 x"])
PUBLIC_PDFS = ("/usr/share/doc/libtasn1-doc/libtasn1.pdf", "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")
# HTML manuals that many Linux systems carry: web pages with navigation in them.
WEB_MANUALS = ("/usr/share/doc/libffi8/html", "/usr/share/doc/valgrind/html", "/usr/share/doc/nodejs/api")
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)
_SCRIPT = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.DOTALL | re.IGNORECASE)


def web_epub(folder: Path, out: Path, limit: int = 40) -> Path:
    """An EPUB made from a folder of HTML pages, one chapter a page, as web-to-EPUB tools make them."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier(f"urn:voxd-bench:{folder.name}")
    book.set_title(f"{folder.parent.name} manual")
    book.set_language("en")
    items = []
    for n, page in enumerate(sorted(folder.glob("*.html"))[:limit]):
        found = _BODY.search(page.read_text(encoding="utf-8", errors="replace"))
        body = _SCRIPT.sub("", found.group(1) if found else "")
        item = epub.EpubHtml(title=page.stem, file_name=f"p{n}.xhtml", lang="en")
        item.content = f"<html><head><title>{page.stem}</title></head><body>{body}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = [epub.Link(item.file_name, item.title, f"t{n}") for n, item in enumerate(items)]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(out), book)
    return out


def default_books() -> list[Path]:
    books = sorted(p for p in CORPUS.glob("*") if p.suffix in (".epub", ".pdf") and "password" not in p.name)
    # Public PDFs that many Linux systems carry, where present.
    for extra in PUBLIC_PDFS:
        if Path(extra).is_file():
            books.append(Path(extra))
    return books


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("books", nargs="*", type=Path, help="EPUBs and PDFs (default: the shared corpus)")
    parser.add_argument("--before", type=Path, help="root of another voxd checkout to compare with")
    parser.add_argument("--smoke", action="store_true", help="an EPUB and a PDF of three short chapters, built here")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "speech-corpus.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="voxd-speech-") as tmp:
        return _run(args, Path(tmp))


def _run(args, built: Path) -> int:
    if args.smoke and not args.books:
        from report import SMOKE_CHAPTERS, smoke_book, smoke_pdf  # bench/report.py: sys.path[0] is bench/

        chapters = [*SMOKE_CHAPTERS, SMOKE_NOTES]
        books = [smoke_book(built / "smoke.epub", chapters), smoke_pdf(built / "smoke.pdf", chapters)]
    else:
        books = args.books or default_books()
        if not args.books:
            manuals = [Path(d) for d in WEB_MANUALS if Path(d).is_dir()]
            books += [web_epub(d, built / f"{d.parent.name}-html.epub") for d in manuals]
    if not books:
        raise SystemExit(f"no books: none named, none in {CORPUS} (--smoke builds its own)")
    sides = {"after": dump(REPO, books)}
    if args.before:
        sides["before"] = dump(args.before, books)
    results: dict[str, dict] = {}
    keys = ("skipped_sections", "flagged_chunks", "left_out_pieces", "fragment_paragraphs", "holes", "code_mentions",
            "chunks")
    print(f"{'book':<44} {'side':<6} " + " ".join(f"{k:>19}" for k in keys))
    for book in books:
        row = results.setdefault(book.name, {})
        for side in ("before", "after"):
            if side not in sides:
                continue
            row[side] = measure(sides[side][book.name])
            cells = " ".join(f"{row[side].get(k, '-')!s:>19}" for k in keys)
            print(f"{book.name[:44]:<44} {side:<6} {cells}")
    totals = {
        side: {k: sum(r[side].get(k, 0) for r in results.values() if side in r) for k in keys}
        for side in sides
    }
    for side, total in totals.items():
        print(f"{'total':<44} {side:<6} " + " ".join(f"{total[k]!s:>19}" for k in keys))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"totals": totals, "books": results}, ensure_ascii=False, indent=2) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
