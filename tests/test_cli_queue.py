"""voxd add, jobs, retry and cancel as a person types them: a real subprocess, a real SQLite file."""

from __future__ import annotations

import json

import pytest

from voxd.samples import build_sample

from .test_cli import voxd


@pytest.mark.slow
def test_jobs_empty_then_add(tmp_path):
    out = voxd(tmp_path, "jobs")
    assert "no jobs yet" in out.stdout
    assert "\ncache  empty, cap 10 GB\n" in out.stdout
    assert "\ndisk   state, cache, outbox: " in out.stdout and " free of " in out.stdout
    book = build_sample(tmp_path / "alice.epub")
    out = voxd(tmp_path, "add", str(book))
    assert "queued as job 1" in out.stdout
    assert (tmp_path / "inbox" / "alice.epub").read_bytes() == book.read_bytes()
    assert not [p for p in (tmp_path / "inbox").iterdir() if p.name.startswith(".")]
    again = voxd(tmp_path, "add", str(book))
    assert "already job 1 (queued)" in again.stdout
    [row] = json.loads(voxd(tmp_path, "jobs", "--json").stdout)
    assert row["status"] == "queued" and row["name"] == "alice.epub"
    table = voxd(tmp_path, "jobs").stdout
    assert "queued" in table and "alice.epub" in table


def test_add_missing_file_is_an_error(tmp_path):
    out = voxd(tmp_path, "add", str(tmp_path / "nope.epub"), check=False)
    assert out.returncode == 1 and "no such file" in out.stderr


def test_cancel_and_retry(tmp_path):
    voxd(tmp_path, "add", str(build_sample(tmp_path / "alice.epub")))
    out = voxd(tmp_path, "retry", "1", check=False)
    assert out.returncode == 1 and "only done, failed or cancelled" in out.stderr
    assert "cancelled" in voxd(tmp_path, "cancel", "1").stdout
    assert "queued again" in voxd(tmp_path, "retry", "1").stdout
    missing = voxd(tmp_path, "cancel", "99", check=False)
    assert missing.returncode == 1 and "no job 99" in missing.stderr


@pytest.mark.parametrize("command", ["cancel", "retry", "report"])
def test_an_id_beyond_sqlite_is_no_such_job(tmp_path, command):
    out = voxd(tmp_path, command, "99999999999999999999", check=False)
    assert out.returncode == 1
    assert "no job 99999999999999999999" in out.stderr
    assert "Traceback" not in out.stderr and "OverflowError" not in out.stderr


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_add_gives_the_inbox_copy_the_mode_cp_would(tmp_path, umask, mode):
    """Not the 0600 of a temp file: a daemon running as another user (the voxd service) must read it."""
    import os
    import subprocess
    import sys

    book = build_sample(tmp_path / "alice.epub")
    cfg = tmp_path / "voxd.toml"
    cfg.write_text('inbox = "inbox"\noutbox = "outbox"\nstate_dir = "state"\nengine = "espeak"\n')
    subprocess.run([sys.executable, "-m", "voxd", "add", str(book), "--config", str(cfg)], check=True, cwd=tmp_path,
                   capture_output=True, timeout=120, preexec_fn=lambda: os.umask(umask))
    assert (tmp_path / "inbox" / "alice.epub").stat().st_mode & 0o777 == mode


def test_the_reason_column_fits_the_terminal(tmp_path, monkeypatch):
    """Cut to the terminal's width (COLUMNS), not to a fixed 60; whole when the terminal is wide."""
    from voxd.service.joblist import width
    from voxd.service.store import Store

    reason = ("the speech server http://gpu-box:8091/v1 refused voxd (401): invalid API key; check [remote] api_key "
              "and run systemctl reload voxd")
    store = Store(tmp_path / "state" / "voxd.sqlite3")
    store.put("a" * 64, tmp_path / "inbox" / "emma.epub")
    store.claim(300)
    store.fail(1, reason)
    monkeypatch.setenv("COLUMNS", "250")
    wide = voxd(tmp_path, "jobs").stdout.split("\n\n")[0].splitlines()
    assert wide[1].endswith(reason), wide
    monkeypatch.setenv("COLUMNS", "100")
    narrow = voxd(tmp_path, "jobs").stdout.split("\n\n")[0].splitlines()
    assert all(width(line) <= 100 for line in narrow), narrow
    assert narrow[1].endswith("…") and width(narrow[1]) == 100
