"""The daemon speaking through ``voxd serve`` processes: a server killed mid-book, every server gone.

Real processes on loopback: the daemon, and each server with eSpeak NG behind it.
The servers wait up to ``batch_wait_ms`` for company before speaking, which paces
them enough that a book takes several seconds and can be interrupted halfway.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import mutagen.mp4
import pytest

from tests.support import ServeProcess
from voxd.samples import build_epub, build_sample

pytestmark = pytest.mark.e2e

PACED = "[serve]\nbatch_wait_ms = 400\n"


def book(path):
    chapters = []
    for c in range(3):
        sentences = [f"Sentence {n} of part {c + 1}, spoken by servers on other machines, or so they believe."
                     for n in range(36)]
        chapters.append((f"Part {c + 1}", [" ".join(sentences[i:i + 3]) for i in range(0, 36, 3)]))
    return build_epub(path, title="A Remote Book", authors=("Test Author",), chapters=chapters)


def remote_config(*servers: ServeProcess, extra: str = "") -> str:
    urls = ", ".join(f'"{s.url}"' for s in servers)
    return (f'engine = "remote"\nchunk_target_chars = 60\nchunk_max_chars = 120\n{extra}'
            f'[remote]\nurls = [{urls}]\napi_key = "{servers[0].key}"\nmax_in_flight = 2\n')


def configure(d, text: str) -> None:
    """The daemon's test config, speaking through the remote engine instead of eSpeak NG."""
    d.config.write_text(d.config.read_text().replace('engine = "espeak"\n', "") + text)


def chapters_and_duration(path) -> tuple[list[str], float]:
    audio = mutagen.mp4.MP4(path)
    return [c.title for c in audio.chapters], audio.info.length


def in_process(tmp_path, source) -> tuple[list[str], float]:
    """The same book rendered by ``voxd render`` with the engine in this process."""
    config = tmp_path / "local.toml"
    config.write_text('state_dir = "local-state"\nengine = "espeak"\nchunk_target_chars = 60\nchunk_max_chars = 120\n')
    out = tmp_path / "local.m4b"
    subprocess.run([sys.executable, "-m", "voxd", "render", str(source), "-o", str(out), "-q", "--config",
                    str(config)], check=True, timeout=300, cwd=tmp_path)
    return chapters_and_duration(out)


@pytest.mark.slow
def test_a_server_killed_mid_book_costs_nothing_already_rendered(daemon_factory, tmp_path):
    source = book(tmp_path / "remote.epub")
    with ServeProcess(tmp_path / "a", extra_config=PACED) as a, ServeProcess(tmp_path / "b", extra_config=PACED) as b:
        d = daemon_factory()
        configure(d, remote_config(a, b))
        d.start()
        shutil.copy(source, d.inbox / "remote.epub")

        def under_way():
            jobs = d.store().jobs()
            return jobs and jobs[0].chunks_total and 12 <= jobs[0].chunks_done < jobs[0].chunks_total // 2

        d.wait_for(under_way, 120, "the render under way on both servers")
        assert a.answered() and b.answered()
        a.kill()
        cached = {p: p.stat().st_ino for p in (d.state / "cache").rglob("*.vxa")}
        d.wait_for(d.outputs, 180, "the .m4b")
        d.wait_for(lambda: d.store().jobs()[0].status.value == "done", 30, "the job marked done")

        [job] = d.store().jobs()
        assert job.attempts == 1  # the other server took over within the job: no retry was needed
        after = {p: p.stat().st_ino for p in (d.state / "cache").rglob("*.vxa")}
        assert all(after[p] == ino for p, ino in cached.items()), "a chunk in the cache was rendered again"
        asked_b = b.requested()
        assert len(asked_b) == len(set(asked_b)), "the surviving server was asked for a text twice"
        assert len(set(a.requested()) | set(asked_b)) == job.chunks_total
        assert "refused the connection" in d.log() or "connection failed" in d.log()

        assert chapters_and_duration(d.outputs()[0])[0] == ["Part 1", "Part 2", "Part 3"]
        local_titles, local_seconds = in_process(tmp_path, source)
        titles, seconds = chapters_and_duration(d.outputs()[0])
        assert titles == local_titles
        assert abs(seconds - local_seconds) < 0.02 * local_seconds  # eSpeak varies by a few ms per call
        assert d.stop() == 0


@pytest.mark.slow
def test_with_every_server_gone_the_job_waits_then_resumes(daemon_factory, tmp_path):
    source = book(tmp_path / "remote.epub")
    a = ServeProcess(tmp_path / "a", extra_config=PACED).start()
    try:
        d = daemon_factory()
        configure(d, "retry_delay_seconds = 0.5\n" + remote_config(a).replace(
            "max_in_flight = 2\n", "max_in_flight = 2\npause_after_seconds = 1.0\n"))
        d.start()
        shutil.copy(source, d.inbox / "remote.epub")
        d.wait_for(lambda: (jobs := d.store().jobs()) and jobs[0].chunks_done >= 8, 120, "the render under way")
        a.kill()
        d.wait_for(lambda: any("no speech server has answered" in (e.message or "")
                               for e in d.store().events(1)), 60, "the job paused")
        [row] = d.jobs()
        assert row["status"] in ("queued", "running")  # waiting for the servers, not failed
        assert d.store().jobs()[0].attempts <= 1
        a = ServeProcess(tmp_path / "a2", extra_config=PACED, port=a.port).start()  # back, at the same address
        d.wait_for(d.outputs, 180, "the .m4b once the server is back")
        d.wait_for(lambda: d.store().jobs()[0].status.value == "done", 30, "the job marked done")
        assert d.store().jobs()[0].attempts == 1
        assert d.stop() == 0
    finally:
        a.stop()


@pytest.mark.slow
def test_a_key_the_servers_refuse_holds_the_queue_until_a_reload_fixes_it(daemon_factory, tmp_path):
    """A refusal of voxd itself is not the book's fault: the job waits (the book stays in the
    inbox, no attempt is used, `voxd jobs` says why and which setting), and a reload with the
    right key lets it through, without a restart."""
    a = ServeProcess(tmp_path / "a").start()
    try:
        d = daemon_factory()
        right = remote_config(a)
        configure(d, "retry_delay_seconds = 3\n" + right.replace(f'api_key = "{a.key}"', 'api_key = "not-the-key"'))
        d.start()
        shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
        [row] = d.wait_for(lambda: [j for j in d.jobs() if j["status"] == "queued" and j["error"]], 60,
                           "the job waiting, with its reason")
        assert row["error"].startswith("the speech servers refuse voxd (check [remote] api_key): ")
        assert "(401)" in row["error"]
        [line] = [x for x in d.cli("jobs").stdout.splitlines() if "alice.epub" in x]
        assert "queued" in line and "the speech servers refuse voxd (check [remote] api_key" in line
        assert (d.inbox / "alice.epub").is_file() and not (d.inbox / "failed").exists()
        assert d.store().jobs()[0].attempts == 0
        assert a.key not in d.log() and "not-the-key" not in d.log()

        d.config.write_text(d.config.read_text().replace('api_key = "not-the-key"', f'api_key = "{a.key}"'))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(d.outputs, 120, "the .m4b once the key is right")
        d.wait_for(lambda: d.store().jobs()[0].status.value == "done", 30, "the job marked done")
        assert d.store().jobs()[0].error is None
        assert d.stop() == 0
    finally:
        a.stop()
