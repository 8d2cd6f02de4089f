"""Starting the child processes voxd spawns: the isolated book reader and the assembler.

Why signals are held: Ctrl-C in a terminal reaches every process of its group, and systemd's
stop every process of the service. The parent decides when a child ends (it abandons or kills
it, and drops its temp files); a child that took the signal itself would die first, printing a
``KeyboardInterrupt`` traceback of its own. A blocked signal mask is inherited through spawn's
fork and exec, so the child is covered from its first instruction, before it could install
handlers; SIGKILL, which the parent and ``PR_SET_PDEATHSIG`` use, cannot be held.
"""

from __future__ import annotations

import signal
from multiprocessing import resource_tracker
from multiprocessing.process import BaseProcess

#: What a terminal or a service manager sends to the whole group.
HELD = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


def start(process: BaseProcess) -> None:
    """``process.start()``, the child holding :data:`HELD` from its first instruction; the
    calling thread's own mask is as it was afterwards (a signal that came meanwhile is taken then).

    The resource tracker is started first: starting it unblocks SIGINT and SIGTERM in the
    calling thread (multiprocessing/resource_tracker.py), which would undo the mask for the
    first child spawned."""
    resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
