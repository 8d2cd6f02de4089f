"""The ``voxd`` command. Each subcommand parses its arguments and calls into the package.

Kept free of torch and model imports so ``voxd --help`` and ``voxd jobs`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .cli_queue import cmd_add, cmd_cancel, cmd_jobs, cmd_report, cmd_retry
from .cli_queue import settings_for as _settings
from .config import Settings, load_settings
from .errors import ConfigError, Interrupted, VoxdError
from .interrupts import StopSignals
from .progress import ProgressBar
from .terminal import json_shown, shown


def _setup_logging(level: str) -> None:
    # Under systemd the journal timestamps every line already.
    fmt = "%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") else (
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)
    for noisy in ("apscheduler", "watchdog", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- subcommands -----------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .service.daemon import run_daemon
    from .tts.auto import resolve

    settings = _settings(args, engine=False)
    _setup_logging("DEBUG" if args.verbose else settings.log_level)
    settings, choice = resolve(settings)  # after the logging, so that the choice and its reason are logged
    if choice is not None:
        logging.getLogger("voxd").info("%s", choice.describe())
    overrides = {"engine": args.engine} if args.engine else {}
    return run_daemon(settings, config_path=args.config, overrides=overrides)


def cmd_render(args: argparse.Namespace) -> int:
    from .audio.publish import outbox_path
    from .convert import convert
    from .errors import TooLong
    from .narration.length import enough_hours
    from .tts.registry import load_engine

    settings = _settings(args)
    if args.output:  # one file where the person asked for it: no cover.jpg/metadata.json beside it
        settings = settings.model_copy(update={"write_sidecars": False})
    if args.max_hours is not None:
        settings = settings.model_copy(update={"max_book_hours": args.max_hours})
    _setup_logging("DEBUG" if args.verbose else "WARNING")
    source = Path(args.input)
    if not source.is_file():
        raise VoxdError(f"{source}: no such file")
    from .verify.listener import listener_for

    engine = load_engine(settings)
    listener = listener_for(settings)
    bar = ProgressBar(enabled=not args.quiet)
    try:
        with StopSignals() as stop, bar.logs_above():
            outcome = convert(
                source,
                lambda book: Path(args.output) if args.output else outbox_path(settings.outbox_dir, book.metadata),
                settings,
                engine,
                on_book=lambda book, chunks: _start(settings, bar, book, chunks),
                on_progress=bar.update,
                on_assembly=bar.assembling,
                listener=listener,
                checkpoint=stop.check,
            )
    except TooLong as exc:
        raise TooLong(f"{exc}; or run again with --max-hours {enough_hours(exc.seconds)}",
                      seconds=exc.seconds, limit_hours=exc.limit_hours) from None
    finally:
        bar.close()
        engine.close()
        if listener is not None:
            listener.close()
    meta = outcome.book.metadata
    print(shown(f"{meta.title} by {meta.author}: {len(outcome.chapters)} chapters, "
                f"{outcome.duration / 60:.1f} min of audio"))
    from .cli_readback import read_back

    read_back(outcome.progress)
    print(outcome.output)
    return 0


def _start(settings: Settings, bar: ProgressBar, book, chunks) -> None:
    """Say now if the book may not fit on the disk (it is rendered anyway), then start the bar."""
    from .cache import ChunkCache
    from .narration.length import expected_seconds, hours
    from .render import count_chunks
    from .service.disk import needs, shortfall

    try:
        short = shortfall(settings, needs(chunks, ChunkCache(settings.cache_path), settings), book.metadata.title)
    except OSError as exc:  # a look at the disk is no reason to stop a render
        short = None
        print(f"voxd: warning: could not check the disk space: {exc}", file=sys.stderr)
    if short:
        print(f"voxd: warning: {short}: the render may fill the disk and stop there", file=sys.stderr)
    if bar.enabled:
        print(shown(f"{book.metadata.title}: about {hours(expected_seconds(chunks, settings))} of audio, "
                    f"{count_chunks(chunks)}"), file=sys.stderr)
    bar.start(shown(book.metadata.title[:40]), len({c.key for c in chunks}))


def cmd_plan(args: argparse.Namespace) -> int:
    """Show what a book will sound like and how long it will take, without loading a model."""
    from .narration.plan import describe, read_plan

    settings = _settings(args)
    source = Path(args.input)
    if not source.is_file():
        raise VoxdError(f"{source}: no such file")
    plan = read_plan(source, settings)
    if args.json:
        print(json_shown(json.dumps(plan.as_json(), ensure_ascii=False, indent=2)))
    else:
        print(describe(plan, flagged_only=args.flagged))
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    """Write what voxd read from a book as an editable manifest (and its cover beside it)."""
    from .audio.publish import fitting_name
    from .ingest.isolated import read_book_isolated
    from .ingest.manifest import write_manifest

    settings = _settings(args)
    source = Path(args.input)
    if not source.is_file():
        raise VoxdError(f"{source}: no such file")
    book = read_book_isolated(  # the daemon's limits: a hostile book costs this command, not the machine
        source, timeout=settings.ingest_timeout_seconds, memory_mb=settings.ingest_memory_mb,
        toc_depth=settings.toc_depth, skip_front_back_matter=settings.skip_front_back_matter,
        code_listings=settings.code_listings,
    )
    stem = source.name.split(".")[0] or "book"
    out = Path(args.output) if args.output else source.with_name(fitting_name(f"{stem}.voxd.json"))
    write_manifest(book, out, cover_name=f"{out.name.split('.')[0]}.cover.jpg")
    words = sum(len(p.split()) for c in book.chapters for p in c.paragraphs)
    print(shown(f"{book.metadata.title} by {book.metadata.author}: {len(book.chapters)} chapters, {words} words"))
    for n, chapter in enumerate(book.chapters, 1):
        print(f"  {n:3d}. {shown(chapter.title)}")
    print(out)
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    """List the engine's voices and the library's cloned and designed ones, or change the library."""
    from .voices import VoiceLibrary

    settings = _settings(args)
    library = VoiceLibrary(settings.state_path / "voices")
    action = args.action or "list"
    if action == "add":
        from .voices import import_recording

        path = Path(args.file)
        if not path.is_file():
            raise VoxdError(f"{path}: no such file")
        if args.transcript or args.name:
            transcript = args.transcript
            if transcript and Path(transcript).is_file():
                transcript = Path(transcript).read_text(encoding="utf-8").strip()
            info = library.add_recording(path, name=args.name, transcript=transcript)
        else:
            info = import_recording(library, path)
        print(f"cloned voice {info.name!r}: {info.seconds:.1f} s reference from {info.source}"
              + (" with transcript" if info.transcript else " (speaker embedding only)"))
        return 0
    if action == "design":
        info = library.add_design(args.name, args.description)
        print(f"designed voice {info.name!r}: {info.source}")
        if args.freeze:
            return _freeze(settings, library, info)
        return 0
    if action == "remove":
        if not library.remove(args.name):
            raise VoxdError(f"no voice {args.name!r} in {library.root}")
        print(f"removed voice {args.name!r}")
        return 0
    from .tts.registry import load_engine

    engine = load_engine(settings)
    try:
        if action == "preview":
            return _preview(engine, library, args)
        rows: list[tuple[str, str, str]] = _engine_voices(engine, settings.engine)
        rows += [(v.name, v.kind, v.source) for v in library.list()]
    finally:
        engine.close()
    width = max(len(r[0]) for r in rows) if rows else 4
    for name, kind, source in rows:
        print(f"{name:<{width}}  {kind:<8}  {source}")
    return 0


def _engine_voices(engine, name: str) -> list[tuple[str, str, str]]:
    """The engine's own voices as rows: name, kind, where from (a Piper voice: its language and
    file, "default" marking the one a book without a language is read with)."""
    catalogue = getattr(engine, "catalogue", None)
    if catalogue is None:
        return [(voice, "preset", name) for voice in engine.voices()]
    return [(v.name, "piper", f"{v.language}{' (default)' if v is catalogue.default else ''}, {v.model}")
            for v in catalogue.voices]


def _freeze(settings: Settings, library, info) -> int:
    """Render a reference sentence with the designed voice and keep it as a cloned voice, so the
    voice stays the same across a whole book and works with the Base checkpoint."""
    from .tts.base import Utterance
    from .tts.registry import load_engine
    from .voices import FREEZE_SENTENCE

    engine = load_engine(settings, "qwen")
    try:
        result = engine.synthesize([Utterance(text=FREEZE_SENTENCE, voice=info.name)])
    finally:
        engine.close()
    frozen = library.add_reference(info.name, result.waveforms[0], result.sample_rate, transcript=FREEZE_SENTENCE,
                                   source=f"frozen from the design: {info.source}")
    print(f"froze {frozen.name!r} into a cloned voice ({frozen.seconds:.1f} s reference)")
    return 0


def _preview(engine, library, args: argparse.Namespace) -> int:
    import soundfile

    from .tts.base import Utterance

    out = Path(args.output or f"{args.name}.preview.wav")
    result = engine.synthesize([Utterance(text=args.text, voice=args.name)])
    soundfile.write(out, result.waveforms[0], result.sample_rate)
    print(f"{out} ({len(result.waveforms[0]) / result.sample_rate:.1f} s)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import run_serve

    settings = load_settings(args.config)
    _setup_logging("DEBUG" if args.verbose else settings.log_level)
    s = settings.serve
    engine_name = args.engine or s.engine or settings.engine
    if engine_name == "auto":
        from .tts.auto import resolve

        if args.device:
            settings = settings.model_copy(update={"qwen": settings.qwen.model_copy(update={"device": args.device})})
        settings, choice = resolve(settings.model_copy(update={"engine": "auto"}))
        engine_name = settings.engine
        if choice is not None:
            logging.getLogger("voxd").info("%s", choice.describe())
    if args.device:
        if engine_name != "qwen":
            raise ConfigError(f"--device chooses the GPU for the qwen engine; {engine_name} does not use one")
        settings = settings.model_copy(update={"qwen": settings.qwen.model_copy(update={"device": args.device})})
    return run_serve(settings, engine_name=engine_name,
                     host=args.host or s.host, port=s.port if args.port is None else args.port)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check what voxd needs, and say plainly what is missing."""
    from .config import find_config
    from .service.notify import redact

    problems = 0

    def line(label: str, value: str, ok: bool | None = True) -> None:
        nonlocal problems
        problems += 1 if ok is False else 0
        print(f"{'   ' if ok is None else 'ok ' if ok else 'NO '} {label:<8} {value}", flush=True)

    print(f"voxd {__version__}, Python {sys.version.split()[0]}")
    try:
        path = find_config(args.config)
        from .tts.auto import resolve

        settings, choice = resolve(_settings(args, engine=False))
    except ConfigError as exc:
        line("config", str(exc), ok=False)
        return 1
    line("config", str(path) if path else "none found (defaults and VOXD_* environment)")
    from . import doctor

    # the configured engine first, and what it needs (for remote: the servers, models, voices)
    for label, said, verdict in doctor.choice_lines(settings, choice):
        line(label, said, verdict)
    if settings.engine == "remote":
        for label, said, verdict in doctor.remote_lines(settings):
            line(label, said, verdict)
    for label, folder in (("inbox", settings.inbox_dir), ("outbox", settings.outbox_dir),
                          ("state", settings.state_path), ("cache", settings.cache_path)):
        if folder.is_dir():
            writable = os.access(folder, os.W_OK)
            line(label, f"{folder}" + ("" if writable else " (not writable)"), ok=writable)
        else:
            parent = next((p for p in folder.parents if p.exists()), None)
            creatable = parent is not None and os.access(parent, os.W_OK)
            line(label, f"{folder} (missing; {'created on first run' if creatable else 'cannot be created'})",
                 ok=creatable)
    from .service.disk import report

    for label, text, ok in report(settings):
        line(label, text, ok=ok)
    for label, said, verdict in doctor.engine_lines(settings):
        line(label, said, verdict)
    # These report through line(), which counts the problems; `problems += f(...)` would read
    # the count before the call and write it back over what the call added.
    _doctor_gpu(settings, line, fetch=args.fetch)
    urls = [redact(u.get_secret_value()) for u in settings.notify_urls]
    line("notify", ", ".join(urls) if urls else "no notify_urls configured")
    web = settings.web
    line("web", f"the daemon's page at http://{web.listen}/ ("
         + ("password required)" if web.password.get_secret_value() else "no password: this machine only)")
         if web.listen else 'off ([web] listen = "")')
    print("all good" if not problems else f"{problems} problem(s) found")
    return 0 if not problems else 1


def _doctor_gpu(settings: Settings, line, *, fetch: bool = False) -> None:
    """torch, the driver, the cards, the configured device's memory; the models on disk, and
    with ``fetch`` the ones that are not, fetched now (voxd.doctor)."""
    from . import doctor

    for label, text, ok in doctor.gpu_lines(settings):
        line(label, text, ok)
    if fetch:
        for label, text, ok in doctor.fetch_models(settings):
            line(label, text, ok)
    if fetch or settings.engine == "qwen":
        for label, text, ok in doctor.model_lines(settings):
            line(label, text, ok)


# -- parser ----------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: a number from 1 to 65535")
    return port


def _common_options(*, defaults: bool, engines: tuple[str, ...] = ("auto", "qwen", "piper", "espeak", "remote")
                    ) -> argparse.ArgumentParser:
    """The options taken before the command and after it (``voxd --config X jobs`` and ``voxd
    jobs --config X``). After it they default to nothing at all: a subcommand's default would
    overwrite what was given before it. (A command that takes fewer engines gets a parser of
    its own: argparse's parents share their actions, so one cannot be changed for one command.)"""
    given: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="config file (default: $VOXD_CONFIG, "
                        "~/.config/voxd/voxd.toml, /etc/voxd/voxd.toml)", **given)
    common.add_argument("--engine", choices=engines, help="speech engine (overrides the config)", **given)
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging", **given)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(defaults=False)
    parser = argparse.ArgumentParser(
        prog="voxd", description="Turn EPUB and PDF books into chaptered .m4b audiobooks.",
        parents=[_common_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"voxd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="run the daemon in the foreground (logs to stderr)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("render", parents=[common], help="convert one book now, with a progress bar")
    p.add_argument("input", help="EPUB, PDF or voxd manifest (.voxd.json)")
    p.add_argument("-o", "--output", help="where to write the .m4b (default: the outbox layout)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--max-hours", type=float, metavar="H",
                   help="refuse a book longer than this many hours of audio (overrides max_book_hours; 0: no limit)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("plan", parents=[common],
                       help="show the chunks a book will be read as, its length and render time, and what to check")
    p.add_argument("input", help="EPUB, PDF or voxd manifest (.voxd.json)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--flagged", action="store_true", help="list only the chunks worth a look")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("extract", parents=[common],
                       help="write the chapters and text voxd reads from a book as an editable manifest")
    p.add_argument("input", help="EPUB, PDF or manifest")
    p.add_argument("-o", "--output", help="manifest path (default: INPUT's name with .voxd.json)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("add", parents=[common], help="copy books into the inbox and queue them")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("jobs", parents=[common], help="list jobs with progress and ETA")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("retry", parents=[common], help="queue a done, failed or cancelled job again")
    p.add_argument("id", type=int)
    p.add_argument("--max-hours", type=float, metavar="H",
                   help="this book's own max_book_hours: let a long book through (0: no limit)")
    p.add_argument("--flagged", action="store_true",
                   help="a finished book: speak its flagged chunks again (voxd report) and publish it again")
    p.add_argument("--chunks", metavar="N,N", help="a finished book: speak these chunks again (numbers as voxd "
                   "report shows them) and publish it again")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("report", parents=[common], help="what the read-back found in a job: its flagged chunks")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("cancel", parents=[common], help="cancel a queued or running job")
    p.add_argument("id", type=int)
    p.add_argument("--purge", action="store_true",
                   help="also remove its chunks from the cache (not those other books use); "
                        "works on cancelled and failed jobs too")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("voices", parents=[common], help="list, add, design, preview or remove voices")
    p.set_defaults(func=cmd_voices, action=None)
    vsub = p.add_subparsers(dest="action", metavar="ACTION")
    v = vsub.add_parser("list", parents=[common], help="preset, cloned and designed voices (the default)")
    v = vsub.add_parser("add", parents=[common], help="clone a voice from a recording (5-15 s of speech is best)")
    v.add_argument("file", help="wav, flac, mp3, m4a, ogg or opus")
    v.add_argument("--name", help="voice name (default: the file name)")
    v.add_argument("--transcript", help="what is said in the recording (text, or a .txt file)")
    v = vsub.add_parser("design", parents=[common], help="describe a voice for the VoiceDesign model")
    v.add_argument("name")
    v.add_argument("description", help='e.g. "a warm, low, unhurried male voice"')
    v.add_argument("--freeze", action="store_true",
                   help="render a reference with it and keep that as a cloned voice (same voice all book long)")
    v = vsub.add_parser("preview", parents=[common], help="speak a short text with a voice, to a .wav")
    v.add_argument("name")
    v.add_argument("text")
    v.add_argument("-o", "--output", help="where to write the .wav (default: NAME.preview.wav)")
    v = vsub.add_parser("remove", parents=[common], help="delete a cloned or designed voice")
    v.add_argument("name")

    p = sub.add_parser("serve", parents=[_common_options(defaults=False, engines=("auto", "qwen", "piper", "espeak"))],
                       help="serve an engine over OpenAI's /v1/audio/speech, for daemons elsewhere")
    p.add_argument("--host", help="address to bind (default: [serve] host, 127.0.0.1)")
    p.add_argument("--port", type=_port, help="port (default: [serve] port, 8880)")
    p.add_argument("--device", help="qwen: the GPU to use, e.g. cuda:1 (default: [qwen] device)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("doctor", parents=[common], help="check folders, engines, GPU, models and notifications")
    p.add_argument("--fetch", action="store_true",
                   help="download the configured Qwen3-TTS models now (resuming an earlier try), not at first use")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return status
    except Interrupted as exc:  # Ctrl-C (130) or SIGTERM (143), seen at a checkpoint
        return 128 + exc.signum
    except ConfigError as exc:
        print(shown(f"voxd: configuration error: {exc}", lines=True), file=sys.stderr)
        return 2
    except VoxdError as exc:
        print(shown(f"voxd: {exc}", lines=True), file=sys.stderr)  # a book's name may be in it
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `voxd plan book.epub | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error at exit's flush
        os.close(devnull)
        return 128 + 13  # as if killed by SIGPIPE, as other tools in a pipeline are


if __name__ == "__main__":
    sys.exit(main())
