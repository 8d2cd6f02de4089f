"""How long ``voxd plan`` takes on a book whose manifest carries a large lexicon.

A lexicon is applied to every chunk of the book; with one pattern tried entry by entry
at every character, 100,000 entries made a plan take minutes. This builds a manifest of
``--chars`` characters of prose (some of its words in the lexicon) with ``--entries``
entries (half of them capitalised, matched as written; half lower case, matched in any
case), then times ``voxd plan --json`` on it as a person runs it, in a process of its
own: with the lexicon, and without it (the same book) for comparison. ``--checkout DIR``
times another checkout's voxd on the same manifest (``git archive COMMIT voxd | tar -x -C DIR``).

    python bench/lexicon.py --out bench/results/lexicon.json
    python bench/lexicon.py --checkout /tmp/voxd-before --out /tmp/lexicon-before.json
    python bench/lexicon.py --smoke --out /tmp/lexicon.json    # 1,000 entries, a short book: seconds
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the", "river", "ran", "past", "old", "mill", "and", "over", "stones", "where", "children", "played",
         "in", "summer", "light", "while", "their", "mother", "watched", "from", "a", "window")


def lexicon(entries: int, rng: random.Random) -> dict[str, str]:
    out: dict[str, str] = {}
    while len(out) < entries:
        word = "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(rng.randint(2, 5)))
        if len(out) % 2:
            word = word.capitalize()
        out[word] = f"{word[:3]}-{word[3:]}"
    return out


def manifest(path: Path, *, entries: int, chars: int, with_lexicon: bool = True, seed: int = 7) -> Path:
    """A manifest of ``chars`` characters in chapters of about 8,000, one word in 12 from the
    lexicon; without it, the same book."""
    rng = random.Random(seed)
    table = lexicon(entries, rng)
    names = list(table)
    chapters, paragraphs, size, sentence = [], [], 0, []
    while size < chars:
        sentence.append(rng.choice(names) if names and rng.random() < 1 / 12 else rng.choice(WORDS))
        if len(sentence) >= 14:
            text = " ".join(sentence).capitalize() + "."
            paragraphs.append(text)
            size += len(text)
            sentence = []
            if sum(map(len, paragraphs)) >= 8000:
                chapters.append({"title": f"Chapter {len(chapters) + 1}", "paragraphs": paragraphs})
                paragraphs = []
    if paragraphs:
        chapters.append({"title": f"Chapter {len(chapters) + 1}", "paragraphs": paragraphs})
    doc = {"voxd_manifest": 1, "title": "Lexicon bench", "language": "en", "chapters": chapters}
    if with_lexicon:
        doc["lexicon"] = table
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def plan_seconds(checkout: Path, book: Path, workdir: Path) -> tuple[float, dict]:
    config = workdir / "voxd.toml"
    config.write_text(f'state_dir = "{workdir / "state"}"\nengine = "espeak"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
    env.update(PYTHONPATH=str(checkout), VOXD_CONFIG=str(config))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "voxd", "plan", "--json", str(book)], cwd=checkout, env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"voxd plan failed ({checkout}):\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--chars", type=int, default=100_000, help="characters of prose in the book")
    parser.add_argument("--checkout", type=Path, default=REPO, help="root of the voxd checkout to time")
    parser.add_argument("--smoke", action="store_true", help="1,000 entries and 10,000 characters")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "lexicon.json")
    args = parser.parse_args(argv)
    entries, chars = (1_000, 10_000) if args.smoke else (args.entries, args.chars)
    with tempfile.TemporaryDirectory(prefix="voxd-lexicon-") as tmp:
        work = Path(tmp)
        rows = []
        for name, n in (("without lexicon", 0), ("with lexicon", entries)):
            book = manifest(work / f"book-{n}.voxd.json", entries=entries, chars=chars, with_lexicon=n > 0)
            seconds, plan = plan_seconds(args.checkout.resolve(), book, work)
            text = sum(len(c["text"]) for ch in plan["chapters"] for c in ch["chunks"])
            rows.append({"case": name, "entries": n, "book_chars": chars, "plan_seconds": round(seconds, 3),
                         "chunks": plan["chunk_count"], "lexicon_entries": plan["lexicon_entries"],
                         "spoken_chars": text, "us_per_char": round(seconds / chars * 1e6, 1)})
            print(f"{name:<16} {n:>7} entries  {chars:>8} chars  {seconds:8.2f} s  {plan['chunk_count']:>6} chunks")
    doc = {"smoke": args.smoke, "checkout": str(args.checkout), "python": sys.version.split()[0], "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
