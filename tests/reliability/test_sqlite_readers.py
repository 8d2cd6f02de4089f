"""`voxd jobs` reading the database while the daemon writes to it never sees 'database is locked'."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.support import Daemon, long_book

READS = 25


@pytest.mark.slow
def test_cli_reads_while_daemon_renders(tmp_path):
    d = Daemon(tmp_path / "d", {"VOXD_ESPEAK__BATCH_SIZE": "1", "VOXD_CHUNK_TARGET_CHARS": "60",
                                "VOXD_CHUNK_MAX_CHARS": "120"})
    d.start()
    try:
        shutil.copy(long_book(tmp_path / "long.epub"), d.inbox / "long.epub")
        d.wait_for(lambda: (j := d.store().jobs()) and j[0].chunks_done > 0, 60, "render under way")
        procs = [
            subprocess.Popen([sys.executable, "-m", "voxd", "jobs", "--json", "--config", str(d.config)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=d.env)
            for _ in range(READS)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        codes = [p.returncode for p in procs]
        assert codes == [0] * READS, [err for _, err in results if err]
        assert not any("locked" in err for _, err in results)
        d.wait_for(lambda: d.store().jobs()[0].status.value == "done", 120, "the book to finish")
    finally:
        d.stop()
