"""The read-back proved end to end: the daemon renders a book through a speech server that lies
about one chunk (answers with another sentence, with HTTP 200); the lie is heard, retaken, kept
flagged, and listed by ``voxd report``; once the server is fixed, ``voxd retry --flagged`` speaks
that chunk again, and nothing else, and publishes the book again with none flagged; a chunk spoken
again on request is counted once."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.servers import OddSpeechServer
from voxd.config import Settings
from voxd.samples import build_epub
from voxd.tts.registry import load_engine

pytestmark = pytest.mark.e2e

LIE = "Fresh bread and strong coffee were waiting on the kitchen table for everyone in the house."
TARGET = "Nobody in the village remembered a winter as long as that one had been."
CHAPTERS = [
    ("The Lighthouse", ["The old keeper climbed the narrow stairs each evening and counted every step.",
                        "She watched the grey sea turn to silver under a quiet moon."]),
    ("The Harbour", [TARGET, "The boats stayed in the harbour until the ice had gone from the bay."]),
]


def test_a_lying_server_s_chunk_is_flagged_reported_and_fixed_by_retry_flagged(daemon_factory, tmp_path):
    piper = load_engine(Settings(engine="piper", state_dir=tmp_path / "piper",
                                 piper={"noise_scale": 0.0, "noise_w": 0.0}))
    lying = {"on": True}
    with OddSpeechServer(engine=piper, say=lambda text, n: LIE if lying["on"] and TARGET in text else None) as server:
        d = daemon_factory(VOXD_ENGINE="remote", VOXD_REMOTE__URLS=json.dumps([server.url]),
                           VOXD_REMOTE__MODEL="odd-tts", VOXD_VERIFY__MODE="all", VOXD_VERIFY__RETAKES="1")
        d.start()
        book = build_epub(tmp_path / "winter.epub", title="A Long Winter", authors=("Test Author",),
                          chapters=CHAPTERS)
        shutil.copy(book, d.inbox / "winter.epub")
        d.wait_for(lambda: [j for j in d.jobs() if j["status"] == "done"], 180, "the book done")
        [job] = d.jobs()
        # the chapter titles are under three words: too short to judge by ear, counted as not checked
        assert job["chunks_flagged"] == 1 and job["chunks_unchecked"] == len(CHAPTERS)
        assert job["chunks_checked"] == job["chunks_total"] - 1 - len(CHAPTERS)
        out = d.cli("report", "1", "--json")
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        [flag] = report["flagged"]
        assert flag["text"] == TARGET and flag["chapter"] == 2 and flag["takes"] >= 1
        assert "coffee" in flag["heard"].lower() and flag["start"].startswith("0:00:")
        text = d.cli("report", "1").stdout
        assert "chunk " in text and TARGET in text and "voxd retry 1 --flagged" in text
        assert "1 flagged" in d.cli("jobs").stdout

        lying["on"] = False  # the server is fixed
        before = len(server.asked)
        retried = d.cli("retry", "1", "--flagged")
        assert retried.returncode == 0, retried.stderr
        d.wait_for(lambda: [j for j in d.jobs() if j["status"] == "done"], 180, "the book published again")
        assert [t for t in server.asked[before:] if not t.startswith("Chapter")] == [TARGET]  # that chunk only
        again = json.loads(d.cli("report", "1", "--json").stdout)
        assert again["flagged"] == [] and d.jobs()[0]["chunks_flagged"] == 0
        [job] = d.jobs()
        assert job["chunks_checked"] == job["chunks_total"] - len(CHAPTERS)

        # a chunk heard right before, spoken again on request: heard right again, counted once
        retried = d.cli("retry", "1", "--chunks", "2")
        assert retried.returncode == 0, retried.stderr
        d.wait_for(lambda: [j for j in d.jobs() if j["status"] == "done"], 180, "the book published a third time")
        [job] = d.jobs()
        assert job["chunks_checked"] == job["chunks_total"] - len(CHAPTERS)
        assert job["chunks_checked"] + job["chunks_unchecked"] + job["chunks_flagged"] == job["chunks_total"]
        assert d.stop() == 0
    piper.close()
