"""What a book will sound like, before any GPU hour is spent on it: ``voxd plan``.

The chunks shown are those the render asks the engine to say: :func:`speech_chunks` is
the one place that turns a read book into chunks (cleanup, section breaks, the lexicon,
text that is not language left out), and :func:`voxd.convert.convert` calls it too.
Lengths come from the text (:func:`voxd.tts.base.speech_seconds` plus the pauses);
the render time from the speed of the jobs the store has finished, where it has any.
Chunks a person should look at are flagged. Nothing here loads a model or imports torch.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxd.book import Book, Chunk
from voxd.config import Settings
from voxd.errors import VoiceError
from voxd.ingest.matter import matter_kind
from voxd.narration.lexicon import Lexicon, load_lexicon_file
from voxd.narration.prose import foreign_share, nonsense
from voxd.narration.text import Dropped, plan_chunks
from voxd.terminal import shown
from voxd.tts.base import speech_seconds
from voxd.tts.languages import ISO_LANGUAGES, language_name

#: What each flag means, for people.
FLAGS = {
    "symbols": "mostly digits or symbols",
    "long-sentence": "part of a sentence longer than chunk_max_chars, cut where the author put no stop",
    "script": "written in another script than the language",
    "caps": "a run of capitals, which engines may spell out",
    "markup": "leftover markup, code or a web address",
    "language": "a language the engine does not speak",
}
_WORD = re.compile(r"[^\W\d_]+")
_CAPS_GAP = re.compile(r"[\s,;:-]+")
_MARKUP = re.compile(
    r"</?[A-Za-z][^<>]{0,80}>|&#?\w+;|\\[A-Za-z]+\{|\{\{|\}\}|\$\{|https?:|\bwww\.|\b\w+\.(?:com|org|net|html?|php)\b"
    r"|\[\d+\]|[{}<>|\\]{3,}"
)
# Engines that speak only the languages of Qwen3-TTS. eSpeak speaks a hundred, and speech
# servers may serve any model (Kokoro, another Qwen3-TTS): they decide, as the render lets them.
_QWEN_ENGINES = ("qwen",)


@dataclass(frozen=True, slots=True)
class Speech:
    """A book as the engine will be asked to say it."""

    chunks: list[Chunk]
    dropped: list[Dropped]
    lexicon_entries: int  # the number, not the Lexicon: a Speech comes back from the reader's process
    body: int  # chunks that are not a chapter's title


def book_lexicon(book: Book, settings: Settings) -> Lexicon:
    """The global lexicon (``lexicon_file``) with the book's own entries over it."""
    path = settings.lexicon_path
    global_pairs = load_lexicon_file(path) if path is not None else ()
    return Lexicon.of(global_pairs, book.lexicon)


def speech_chunks(book: Book, settings: Settings) -> Speech:
    """Every chunk of ``book`` as the render will speak it, with what was left out."""
    lexicon = book_lexicon(book, settings)
    dropped: list[Dropped] = []
    chunks = plan_chunks(
        book,
        voice=settings.voice or "default",
        language=settings.language or book.metadata.language,
        target_chars=settings.chunk_target_chars,
        max_chars=settings.chunk_max_chars,
        speak_titles=settings.speak_chapter_titles,
        section_breaks=settings.section_breaks,
        lexicon=lexicon if len(lexicon) else None,
        dropped=dropped,
    )
    titles = sum(1 for c in chunks if c.index == 0) if settings.speak_chapter_titles else 0
    return Speech(chunks=chunks, dropped=dropped, lexicon_entries=len(lexicon), body=len(chunks) - titles)


def read_speech(source: Path, settings: Settings, *,
                checkpoint: Callable[[], None] | None = None) -> tuple[Book, Speech]:
    """Read ``source`` and cut it into chunks (:func:`speech_chunks`) in the reader's child
    process, under its memory and time limits: a book's lexicon is applied there too."""
    from functools import partial

    from voxd.ingest.isolated import read_isolated

    book, speech = read_isolated(
        source,
        partial(speech_chunks, settings=settings),
        timeout=settings.ingest_timeout_seconds,
        memory_mb=settings.ingest_memory_mb,
        checkpoint=checkpoint,
        toc_depth=settings.toc_depth,
        skip_front_back_matter=settings.skip_front_back_matter,
        figure_mention=settings.figure_mention,
        code_listings=settings.code_listings,
    )
    assert speech is not None
    return book, speech


# -- languages -------------------------------------------------------------------------


def supported_languages() -> list[str]:
    """Qwen3-TTS's languages, as "English (en)"."""
    return [f"{name.capitalize()} ({code})" for code, name in ISO_LANGUAGES.items() if len(code) == 2]


@dataclass(frozen=True)
class Spoken:
    """The languages an engine that cannot speak every one speaks, as a test and in words."""

    engine: str  # as a person calls it: "Qwen3-TTS", "Piper"
    speaks: Callable[[str], bool]
    offered: str  # "it speaks ...", for a message


def spoken_languages(engine: str, settings: Settings | None = None) -> Spoken | None:
    """What ``engine`` speaks, or None where it speaks any language: eSpeak speaks a hundred
    and falls back to its default voice, and speech servers may serve any model (Kokoro,
    another Qwen3-TTS), which decide for themselves as the render lets them. Piper speaks
    the languages of the voices installed (``settings`` says where they are)."""
    if engine in _QWEN_ENGINES:
        return Spoken("Qwen3-TTS", lambda tag: language_name(tag) is not None,
                      f"it speaks {', '.join(supported_languages())}")
    if engine == "piper":
        from voxd.tts.piper_voices import Catalogue

        p = (settings or Settings()).piper
        catalogue = Catalogue.build(p.voice, p.voices, (settings or Settings()).state_path / "voices" / "piper")
        return Spoken("Piper", lambda tag: catalogue.for_language(tag) is not None,
                      f"the Piper voices installed are {catalogue.describe()}; install a voice for it "
                      "(or map it in [piper] voices)")
    return None


def unspoken_languages(chunks: list[Chunk], engine: str | Spoken | None, settings: Settings | None = None) -> list[str]:
    """The chunks' language tags that ``engine`` cannot speak (see :func:`spoken_languages`)."""
    spoken = spoken_languages(engine, settings) if isinstance(engine, str) else engine
    if spoken is None:
        return []
    tags = {c.language for c in chunks if c.language}
    return sorted(tag for tag in tags if not spoken.speaks(tag))


def check_languages(chunks: list[Chunk], engine: str, source: str, settings: Settings | None = None) -> None:
    """Fail a book now, not after its first batch, when its engine cannot speak its language.

    The message names the language, what the engine speaks, and the way out.
    """
    spoken = spoken_languages(engine, settings)
    missing = unspoken_languages(chunks, spoken)
    if spoken is not None and missing:
        chapters = sorted({c.chapter + 1 for c in chunks if c.language in missing})
        shown = ", ".join(str(n) for n in chapters[:10]) + (" ..." if len(chapters) > 10 else "")
        raise VoiceError(
            f"{source}: {spoken.engine} does not speak {', '.join(repr(m) for m in missing)} (chapters {shown}); "
            f"{spoken.offered}. If the text is in another language than its tag says, say so: "
            f'`voxd extract {source}` writes a manifest where each chapter\'s "language" can be set '
            "(or set language in the config for every book)"
        )


# -- flags -----------------------------------------------------------------------------


def chunk_flags(chunk: Chunk, engine: str | Spoken | None) -> list[str]:
    """What a person should look at in this chunk (keys of :data:`FLAGS`); ``engine`` is its
    name or what it speaks (:func:`spoken_languages`, worked out once for a whole book)."""
    text = chunk.text
    flags = []
    visible = [ch for ch in text if not ch.isspace()]
    letters = sum(ch.isalpha() for ch in visible)
    if len(visible) >= 4 and letters * 2 < len(visible):
        flags.append("symbols")
    if chunk.cut:
        flags.append("long-sentence")
    if letters >= 3 and foreign_share(text, chunk.language) > 0.3:
        flags.append("script")
    if shouted(text):
        flags.append("caps")
    if _MARKUP.search(text):
        flags.append("markup")
    if unspoken_languages([chunk], engine):
        flags.append("language")
    return flags


def _capitals(word: str) -> bool:
    """Every letter a capital: a letter without case (Arabic, Chinese, Japanese kana) is none."""
    return all(ch.isupper() for ch in word)


def shouted(text: str) -> bool:
    """A run of three words of capitals, or one of twelve capitals: what engines may spell out.

    Only scripts with case can shout, so the test is the letters' own case (``str.isupper``),
    not "anything but a-z", which took Arabic, lowercase Cyrillic and CJK runs for capitals.
    """
    run = 0
    end = -1
    for match in _WORD.finditer(text):
        word = match.group()
        if len(word) >= 2 and _capitals(word):
            if len(word) >= 12:
                return True
            joined = run > 0 and _CAPS_GAP.fullmatch(text, end, match.start()) is not None
            run = run + 1 if joined else 1
            if run >= 3:
                return True
        else:
            run = 0
        end = match.end()
    return False


# -- render time -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Speed:
    """Audio seconds per render second over the finished jobs the store has."""

    factor: float
    jobs: int


def past_speed(settings: Settings) -> Speed | None:
    """The speed of the finished jobs (all of them: the store does not record which engine
    rendered each), or None where there are none. A missing database is not created."""
    if not settings.db_path.is_file():
        return None
    from voxd.service.records import Status
    from voxd.service.store import Store

    store = Store(settings.db_path)
    try:
        jobs = [j for j in store.jobs(Status.DONE) if j.speed]
    finally:
        store.close()
    if not jobs:
        return None
    return Speed(sum(j.rendered_audio_seconds for j in jobs) / sum(j.render_seconds for j in jobs), len(jobs))


# -- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Skipped:
    title: str
    reason: str


@dataclass(slots=True)
class ChapterPlan:
    title: str
    language: str | None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(slots=True)
class Plan:
    source: str
    title: str
    author: str
    language: str | None
    engine: str
    chapters: list[ChapterPlan]
    seconds: float
    unspoken: list[str]
    skipped: list[Skipped]
    lexicon_entries: int
    speed: Speed | None
    max_book_hours: float = 0.0  # the ceiling the daemon holds the book to (0: none)
    spoken_offered: str = ""  # what the engine speaks, in words, where it does not speak every language

    @property
    def too_long(self) -> bool:
        return self.max_book_hours > 0 and self.seconds > self.max_book_hours * 3600

    @property
    def render_seconds(self) -> float | None:
        return self.seconds / self.speed.factor if self.speed else None

    @property
    def flagged(self) -> Counter[str]:
        return Counter(flag for ch in self.chapters for c in ch.chunks for flag in c["flags"])

    @property
    def flagged_chunks(self) -> int:
        return sum(1 for ch in self.chapters for c in ch.chunks if c["flags"])

    @property
    def left_out(self) -> int:
        return sum(len(ch.left_out) for ch in self.chapters)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "title": self.title,
            "author": self.author,
            "language": self.language,
            "engine": self.engine,
            "unsupported_languages": self.unspoken,
            "supported_languages": supported_languages() if self.engine in _QWEN_ENGINES else None,
            "seconds": round(self.seconds, 1),
            "render_seconds": round(self.render_seconds, 1) if self.render_seconds is not None else None,
            "speed": round(self.speed.factor, 2) if self.speed else None,
            "speed_jobs": self.speed.jobs if self.speed else 0,
            "chunk_count": sum(len(ch.chunks) for ch in self.chapters),
            "flagged_chunks": self.flagged_chunks,
            "flags": dict(self.flagged),
            "left_out": self.left_out,
            "lexicon_entries": self.lexicon_entries,
            "max_book_hours": self.max_book_hours,
            "too_long": self.too_long,
            "skipped": [{"title": s.title, "reason": s.reason} for s in self.skipped],
            "chapters": [
                {
                    "title": ch.title,
                    "language": ch.language,
                    "seconds": round(ch.seconds, 1),
                    "chunks": ch.chunks,
                    "left_out": ch.left_out,
                }
                for ch in self.chapters
            ],
        }


def plan_book(book: Book, settings: Settings, *, source: str, unskipped: Book | None = None,
              speech: Speech | None = None) -> Plan:
    """The plan of a book already read (and cut into chunks, where ``speech`` is given);
    ``unskipped`` (the same book read with front and back matter kept) names what was left
    out as matter."""
    speech = speech if speech is not None else speech_chunks(book, settings)
    spoken = spoken_languages(settings.engine, settings)
    language = settings.language or book.metadata.language
    chapters = [
        ChapterPlan(title=ch.title, language=ch.language or language) for ch in book.chapters
    ]
    for c in speech.chunks:
        seconds = speech_seconds(c.text) + settings.pause_seconds(c.pause)
        plan = chapters[c.chapter]
        plan.seconds += seconds
        plan.chunks.append(
            {"text": c.text, "seconds": round(seconds, 2), "pause": c.pause.value,
             "flags": chunk_flags(c, spoken)}
        )  # fmt: skip
    for d in speech.dropped:
        chapters[d.chapter].left_out.append(
            {"text": d.text if len(d.text) <= 200 else d.text[:200] + "...", "chars": len(d.text),
             "reason": nonsense(d.text) or "not language"}
        )  # fmt: skip
    return Plan(
        source=source,
        title=book.metadata.title,
        author=book.metadata.author,
        language=language,
        engine=settings.engine,
        chapters=chapters,
        seconds=sum(ch.seconds for ch in chapters),
        unspoken=unspoken_languages(speech.chunks, spoken),
        spoken_offered=spoken.offered if spoken else "",
        skipped=skipped_sections(book, unskipped) if unskipped is not None else [],
        lexicon_entries=speech.lexicon_entries,
        speed=past_speed(settings),
        max_book_hours=settings.max_book_hours,
    )


def skipped_sections(book: Book, unskipped: Book) -> list[Skipped]:
    """Chapters of ``unskipped`` that ``book`` does not have, each with why it is matter."""
    kept = Counter((ch.title, ch.paragraphs[:1]) for ch in book.chapters)
    said = dict(book.skipped)  # what the reader saw that the text no longer shows (links)
    out = []
    for ch in unskipped.chapters:
        key = (ch.title, ch.paragraphs[:1])
        if kept[key]:
            kept[key] -= 1
            continue
        out.append(Skipped(ch.title, matter_kind(ch.title, ch.paragraphs) or said.get(ch.title)
                           or "front or back matter"))
    return out


def read_plan(source: Path, settings: Settings) -> Plan:
    """Read ``source`` as the daemon would (in a child process, with its limits) and plan it."""
    from voxd.ingest.isolated import read_book_isolated

    book, speech = read_speech(source, settings)
    unskipped = None
    if settings.skip_front_back_matter and source.suffix.lower() != ".json":
        unskipped = read_book_isolated(
            source,
            timeout=settings.ingest_timeout_seconds,
            memory_mb=settings.ingest_memory_mb,
            toc_depth=settings.toc_depth,
            skip_front_back_matter=False,
            figure_mention=settings.figure_mention,
            code_listings=settings.code_listings,
        )
    return plan_book(book, settings, source=source.name, unskipped=unskipped, speech=speech)


# -- for people ------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """1 h 02 min, 12 min 30 s, 45 s."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def describe(plan: Plan, *, flagged_only: bool = False) -> str:
    """The plan as text for a terminal: a summary, then each chapter and its chunks (``!``
    before a flagged one, ``~`` after a section break). A book's own text and titles are
    shown with their control characters escaped (:func:`voxd.terminal.shown`)."""
    lines = [shown(f"{plan.title} by {plan.author} ({plan.source})")]
    language = plan.language or "not declared"
    spoken = language_name(plan.language) if plan.engine in _QWEN_ENGINES else None
    lines.append(f"language: {language}" + (f" ({spoken})" if spoken and spoken != "Auto" else "")
                 + f"; engine: {plan.engine}")  # fmt: skip
    if plan.unspoken:
        lines.append(
            f"NOT SPOKEN: {plan.engine} does not speak {', '.join(plan.unspoken)}; {plan.spoken_offered}. "
            "Set each chapter's \"language\" in a manifest (voxd extract) if the text is in another "
            "language than its tag says."
        )
    chunks = sum(len(ch.chunks) for ch in plan.chapters)
    estimate = (
        f"rendering about {duration(plan.render_seconds)} at {plan.speed.factor:.1f}x real time "
        f"(the speed of {plan.speed.jobs} finished job{'s' if plan.speed.jobs != 1 else ''})"
        if plan.speed and plan.render_seconds is not None
        else "render time unknown until a job has finished"
    )
    lines.append(f"{len(plan.chapters)} chapters, {chunks} chunks, about {duration(plan.seconds)} of audio; {estimate}")
    if plan.too_long:
        lines.append(
            f"TOO LONG: more than max_book_hours ({plan.max_book_hours:g}); the daemon refuses it unless "
            "the setting is raised or the job retried with --max-hours"
        )
    if plan.lexicon_entries:
        lines.append(f"lexicon: {plan.lexicon_entries} entries")
    if plan.skipped:
        skipped = "; ".join(f"{shown(s.title)} ({s.reason})" for s in plan.skipped)
        lines.append(f"skipped as front or back matter: {skipped}")
    if plan.left_out:
        chars = sum(d["chars"] for ch in plan.chapters for d in ch.left_out)
        lines.append(f"left out as not language: {plan.left_out} pieces, {chars} characters")
    if plan.flagged_chunks:
        counts = ", ".join(f"{flag} {n}" for flag, n in plan.flagged.most_common())
        lines.append(f"flagged: {plan.flagged_chunks} chunks ({counts})")
    for n, ch in enumerate(plan.chapters, 1):
        lines.append("")
        lines.append(f"{n}. {shown(ch.title)} [{len(ch.chunks)} chunks, {duration(ch.seconds)}]")
        for c in ch.chunks:
            if flagged_only and not c["flags"]:
                continue
            mark = "!" if c["flags"] else " "
            note = f"  [{', '.join(c['flags'])}]" if c["flags"] else ""
            lines.append(f"  {mark} {shown(c['text'])}{note}")
            if c["pause"] == "section" and not flagged_only:
                lines.append("    ~")
        for d in ch.left_out:
            lines.append(f"  - left out ({d['reason']}, {d['chars']} characters): {shown(d['text'][:60])}")
    return "\n".join(lines)


__all__ = [
    "FLAGS",
    "Plan",
    "Speech",
    "book_lexicon",
    "check_languages",
    "chunk_flags",
    "describe",
    "plan_book",
    "read_plan",
    "speech_chunks",
]
