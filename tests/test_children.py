"""Child processes started with the terminal's and the service manager's signals held."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from voxd import children


def _report_mask_then_work(conn, seconds: float) -> None:
    conn.send(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    time.sleep(seconds)  # a SIGINT meant for the whole group arrives meanwhile
    conn.send("done")


def _started(start) -> tuple[multiprocessing.process.BaseProcess, object, list[int]]:
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_report_mask_then_work, args=(send, 1.0), daemon=True)
    start(proc)
    send.close()
    assert receive.poll(60), "the child did not start"
    return proc, receive, receive.recv()


def test_a_child_holds_the_group_signals_from_its_start_and_the_parent_keeps_its_own():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    proc, receive, mask = _started(children.start)
    assert {int(s) for s in children.HELD} <= set(mask)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    os.kill(proc.pid, signal.SIGINT)  # as Ctrl-C sends it to every process of the terminal's group
    os.kill(proc.pid, signal.SIGTERM)  # as systemd sends it to every process of the service
    assert receive.poll(30) and receive.recv() == "done"  # it went on; its parent decides when it ends
    proc.join(10)
    assert proc.exitcode == 0


def test_a_child_started_plainly_is_killed_by_them():
    # The contrast that makes the test above mean something: without the held mask, the same
    # child dies of the same signal.
    proc, receive, mask = _started(lambda p: p.start())
    assert int(signal.SIGTERM) not in mask
    os.kill(proc.pid, signal.SIGTERM)
    proc.join(30)
    assert proc.exitcode == -signal.SIGTERM


def test_a_child_still_running_at_exit_does_not_hang_it(tmp_path):
    # multiprocessing's exit hook sends daemonic children SIGTERM, which these hold, then waits
    # for them: a parent interrupted before it took charge of its child would never exit.
    script = tmp_path / "leave.py"
    script.write_text(
        "import multiprocessing, sys, time\n"
        "from voxd import children\n"
        "if __name__ == '__main__':\n"
        "    ctx = multiprocessing.get_context('spawn')\n"
        "    proc = ctx.Process(target=time.sleep, args=(3600,), daemon=True)\n"
        "    children.start(proc)\n"
        "    print(proc.pid, flush=True)\n"
        "    sys.exit(0)  # as an interrupted parent does, with its child still running\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid), "the child outlived its parent"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
