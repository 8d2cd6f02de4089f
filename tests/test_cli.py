"""The voxd command as a person types it: a real subprocess, real files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voxd.cli import build_parser
from voxd.samples import build_sample

from .support import long_book

REPO = Path(__file__).resolve().parents[1]


def voxd(tmp_path, *args, check=True):
    cfg = tmp_path / "voxd.toml"
    if not cfg.exists():
        cfg.write_text('inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n')
    out = subprocess.run([sys.executable, "-m", "voxd", *args, "--config", str(cfg)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_startup_paths_do_not_import_torch():
    code = (
        "import sys, voxd.cli, voxd.service.daemon, voxd.service.worker, voxd.tts.registry; voxd.cli.build_parser();"
        "heavy = [m for m in ('torch', 'qwen_tts', 'transformers', 'pymupdf') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_command_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"voxd {name}" in readme, f"README does not mention `voxd {name}`"


def test_the_common_options_count_before_the_command_as_after_it(tmp_path):
    # `voxd --help` lists them before COMMAND, so that is where people put them.
    (tmp_path / "voxd.toml").write_text('inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n')
    home = tmp_path / "home"  # where the defaults would have put the inbox and the state
    env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"), "XDG_CONFIG_HOME": str(home / "c")}
    book = build_sample(tmp_path / "alice.epub")
    added = subprocess.run([sys.executable, "-m", "voxd", "--config", str(tmp_path / "voxd.toml"), "add", str(book)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert added.returncode == 0 and "queued as job 1" in added.stdout, added.stderr
    assert (tmp_path / "inbox" / "alice.epub").is_file() and (tmp_path / "state" / "voxd.sqlite3").is_file()
    assert not home.exists()
    args = build_parser().parse_args(["-v", "--engine", "remote", "--config", "a.toml", "jobs"])
    assert (args.config, args.engine, args.verbose) == ("a.toml", "remote", True)
    args = build_parser().parse_args(["--config", "a.toml", "jobs", "--config", "b.toml"])
    assert args.config == "b.toml"  # the later one, as anywhere else on a command line


@pytest.mark.parametrize("args", [("plan", "BOOK"), ("plan", "BOOK", "--json"), ("jobs",), ("voices",)])
def test_output_into_a_closed_pipe_ends_quietly(tmp_path, args):
    # `voxd plan book.epub | head -3`: the reader has gone before voxd is done writing.
    (tmp_path / "voxd.toml").write_text('inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n')
    book = str(build_sample(tmp_path / "alice.epub"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as in a shell
    proc = subprocess.Popen([sys.executable, "-m", "voxd", *[book if a == "BOOK" else a for a in args],
                             "--config", str(tmp_path / "voxd.toml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    proc.stdout.close()  # before it has written a line
    err = proc.stderr.read()
    assert proc.wait(60) == 141, err
    assert "Traceback" not in err and "Error" not in err, err


@pytest.mark.slow
def test_render_writes_m4b(tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    out = voxd(tmp_path, "render", str(book), "-o", str(tmp_path / "alice.m4b"), "--engine", "espeak")
    assert out.stdout.strip().endswith(str(tmp_path / "alice.m4b"))
    assert "3 chapters" in out.stdout
    assert (tmp_path / "alice.m4b").stat().st_size > 10_000
    cached = [line for line in voxd(tmp_path, "jobs").stdout.splitlines() if line.startswith("cache ")]
    assert len(cached) == 1 and " chunks, cap 10 GB" in cached[0] and "float32" not in cached[0]


@pytest.mark.slow
def test_log_lines_go_above_the_progress_bar_not_into_it(tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    out = voxd(tmp_path, "render", str(book), "-o", str(tmp_path / "a.m4b"), "-v")
    pieces = re.split(r"[\r\n]", out.stderr)  # the bar redraws itself with \r
    assert any("chunk" in p and "%|" in p for p in pieces), out.stderr  # there was a bar
    logged = [p for p in pieces if re.search(r" (DEBUG|INFO|WARNING) voxd", p)]
    assert logged and all(re.match(r"\d{4}-\d\d-\d\d ", p) for p in logged), logged  # each at a line's start


def test_render_bad_file_names_it(tmp_path):
    bad = tmp_path / "bad.epub"
    bad.write_bytes(b"nope")
    out = voxd(tmp_path, "render", str(bad), "-o", str(tmp_path / "x.m4b"), check=False)
    assert out.returncode == 1 and "bad.epub" in out.stderr
    assert not (tmp_path / "x.m4b").exists()


def test_config_error_exit_code(tmp_path):
    (tmp_path / "voxd.toml").write_text("bitrate = 'high'\n")
    out = voxd(tmp_path, "jobs", check=False)
    assert out.returncode == 2 and "bitrate" in out.stderr


def test_voices_lists_engine_voices(tmp_path):
    out = voxd(tmp_path, "voices", "--engine", "espeak")
    assert "en-us" in out.stdout.split()


@pytest.mark.slow
def test_voices_lists_and_previews_piper_voices(tmp_path):
    import soundfile

    listing = voxd(tmp_path, "voices", "--engine", "piper").stdout.splitlines()
    [line] = [line for line in listing if line.startswith("en_US-joe-medium ")]
    assert line.split()[1] == "piper" and "en-US (default)" in line and line.endswith("en_US-joe-medium.onnx")
    voxd(tmp_path, "voices", "preview", "en_US-joe-medium", "A natural voice.", "-o", str(tmp_path / "p.wav"),
         "--engine", "piper")
    wave, rate = soundfile.read(tmp_path / "p.wav")
    assert rate == 22050 and 0.5 < len(wave) / rate < 3
    unknown = voxd(tmp_path, "voices", "preview", "nobody", "Hi.", "--engine", "piper", check=False)
    assert unknown.returncode == 1 and "Piper has no voice 'nobody'; installed: en_US-joe-medium" in unknown.stderr


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["--version"]])
def test_help_works(argv):
    out = subprocess.run([sys.executable, "-m", "voxd", *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "voxd" in out.stdout


@pytest.mark.slow
def test_doctor_reports_each_part(tmp_path):
    out = voxd(tmp_path, "doctor")
    for label in ("config", "inbox", "outbox", "state", "cache", "disk", "espeak", "notify"):
        assert f" {label} " in out.stdout
    assert "ok  cache    empty, cap 10 GB" in out.stdout
    assert out.stdout.strip().endswith("all good")


@pytest.mark.slow
def test_doctor_checks_each_speech_server(tmp_path, serve_espeak):
    from tests.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    (tmp_path / "voxd.toml").write_text(
        f'state_dir = "state"\nengine = "remote"\n[remote]\nurls = ["{serve_espeak.url}", "{dead}"]\n'
        f'api_key = "{serve_espeak.key}"\n'
    )
    out = voxd(tmp_path, "doctor", check=False)
    assert f"ok  server   {serve_espeak.url}: serves voxd-espeak" in out.stdout
    assert f"NO  server   {dead}: refused the connection" in out.stdout
    assert out.returncode == 1


def test_doctor_flags_bad_config(tmp_path):
    (tmp_path / "voxd.toml").write_text("engine = 'nope'\n")
    out = voxd(tmp_path, "doctor", check=False)
    assert out.returncode == 1 and "NO  config" in out.stdout


def test_output_names_are_safe():
    from voxd.audio.publish import safe_name

    assert safe_name("../../../escape", "X") == "escape"
    assert safe_name(" .hidden. ", "X") == "hidden"
    assert safe_name("...", "Untitled") == "Untitled"
    assert safe_name('a/b\\c:d*e?"f<g>h|i', "X") == "a b c d e f g h i"


@pytest.mark.slow
def test_voices_add_design_list_preview_remove(tmp_path):
    import numpy as np
    import soundfile

    from voxd.tts.base import Utterance
    from voxd.tts.espeak import EspeakEngine

    out = EspeakEngine().synthesize([Utterance(
        "This is a recording of a person reading aloud, slowly and clearly, for long enough to clone.", "en-us")])
    wav = tmp_path / "Reader.wav"
    soundfile.write(wav, np.concatenate([out.waveforms[0]] * 2), out.sample_rate)
    assert "cloned voice 'Reader'" in voxd(tmp_path, "voices", "add", str(wav)).stdout
    assert "designed voice 'Calm'" in voxd(tmp_path, "voices", "design", "Calm", "a calm voice").stdout
    listing = voxd(tmp_path, "voices").stdout.splitlines()
    assert any(line.split()[:2] == ["Reader", "cloned"] for line in listing)
    assert any(line.split()[:2] == ["Calm", "designed"] for line in listing)
    assert any(line.split()[:2] == ["en-us", "preset"] for line in listing)
    preview = voxd(tmp_path, "voices", "preview", "de", "Guten Tag.", "-o", str(tmp_path / "p.wav"))
    assert (tmp_path / "p.wav").stat().st_size > 1000 and "p.wav" in preview.stdout
    assert "removed" in voxd(tmp_path, "voices", "remove", "Calm").stdout
    missing = voxd(tmp_path, "voices", "remove", "Calm", check=False)
    assert missing.returncode == 1 and "no voice 'Calm'" in missing.stderr


def test_extract_then_manifest_gives_the_same_chunks(tmp_path):
    from voxd.ingest import read_book
    from voxd.narration.text import plan_chunks

    book = build_sample(tmp_path / "alice.epub")
    out = voxd(tmp_path, "extract", str(book))
    manifest = tmp_path / "alice.voxd.json"
    assert out.stdout.strip().endswith(str(manifest)) and "3 chapters" in out.stdout
    original, edited = read_book(book), read_book(manifest)
    assert plan_chunks(original, voice="v", language="en") == plan_chunks(edited, voice="v", language="en")


@pytest.mark.parametrize(("how", "status"), [("SIGTERM", 143), ("SIGINT to the group", 130)])
def test_a_render_stopped_by_a_signal_leaves_nothing_behind(tmp_path, how, status):
    """``kill``/``timeout`` (SIGTERM to voxd) and Ctrl-C (SIGINT to the terminal's whole group,
    the assembler child too) both end the render cleanly: no temp file, no half-made folders,
    no traceback from any process, and no multiprocessing resource left to the tracker.
    (Before ``voxd render`` took SIGTERM, it died of it with the temp file and three semaphores
    left; the Ctrl-C case passed before too, and guards it.)"""
    (tmp_path / "voxd.toml").write_text(
        'inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n'
        "chunk_target_chars = 60\nchunk_max_chars = 120\n[espeak]\nbatch_size = 1\n"
    )
    book = long_book(tmp_path / "long.epub")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxd", "render", str(book), "--quiet", "--config", str(tmp_path / "voxd.toml")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    outbox = tmp_path / "outbox"
    deadline = time.monotonic() + 120
    while not list(outbox.rglob(".*.tmp")):  # the assembler is writing the book
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the render did not get under way"
        time.sleep(0.02)
    if how == "SIGTERM":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "Traceback" not in err and "leaked" not in err, err
    assert not outbox.exists() or not list(outbox.rglob("*")), list(outbox.rglob("*"))


SIGNAL_IN_CALLBACK = """
import os, signal, sys
from voxd import cli
from voxd.tts.espeak import _Library

real, calls = _Library._collect, [0]


def collect(self, wav, count, events):
    # The signal arrives while eSpeak is inside its C code and calls back into Python: the
    # handler runs here, in the callback, where ctypes would swallow an exception it raised.
    calls[0] += 1
    if calls[0] == 40:
        os.kill(os.getpid(), signal.{name})
    return real(self, wav, count, events)


_Library._collect = collect
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("name", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_during_espeaks_callback_still_stops_the_render(tmp_path, name, status):
    (tmp_path / "voxd.toml").write_text(
        'inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n'
        "chunk_target_chars = 60\nchunk_max_chars = 120\n[espeak]\nbatch_size = 1\n"
    )
    book = long_book(tmp_path / "long.epub")
    out = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_CALLBACK.replace("{name}", name), "render", str(book), "--quiet",
         "--config", str(tmp_path / "voxd.toml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == status, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr[-2000:]
    outbox = tmp_path / "outbox"
    assert not outbox.exists() or not list(outbox.rglob("*")), list(outbox.rglob("*"))
