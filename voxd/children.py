"""Starting the child processes voxd spawns: the isolated book reader and the assembler.

Why signals are held: Ctrl-C in a terminal reaches every process of its group, and systemd's
stop every process of the service. The parent decides when a child ends (it abandons or kills
it, and drops its temp files); a child that took the signal itself would die first, printing a
``KeyboardInterrupt`` traceback of its own. A blocked signal mask is inherited through spawn's
fork and exec, so the child is covered from its first instruction, before it could install
handlers; SIGKILL, which the parent and ``PR_SET_PDEATHSIG`` use, cannot be held.

Why the leftovers are killed at exit: multiprocessing's own exit hook ends daemonic children
with SIGTERM and then waits for them, and these children hold SIGTERM. A child still running
at exit (its parent interrupted between starting it and taking charge of it) would hang the
exit; this module's hook, registered after multiprocessing's and so run before it, kills them.
"""

from __future__ import annotations

import atexit
import signal
import weakref
from multiprocessing import resource_tracker
from multiprocessing.process import BaseProcess

#: What a terminal or a service manager sends to the whole group.
HELD = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})

_started: weakref.WeakSet[BaseProcess] = weakref.WeakSet()


def start(process: BaseProcess) -> None:
    """``process.start()``, the child holding :data:`HELD` from its first instruction.

    The mask is the calling thread's, restored afterwards. A signal can still interrupt the
    start (another thread takes it and Python runs the handler here); a child that was
    spawned by then is killed before the exception goes on, so none is left without a parent
    that knows of it. The resource tracker is started first: starting it unblocks SIGINT and
    SIGTERM in the calling thread (multiprocessing/resource_tracker.py), which would undo the
    mask for the first child spawned."""
    resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        process.start()
        _started.add(process)
    except BaseException:
        if process.pid is not None:
            _kill(process)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _kill(process: BaseProcess) -> None:
    process.kill()
    process.join(5)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_started):
        if process.is_alive():
            _kill(process)
