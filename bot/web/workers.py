"""`concorder serve --workers N`: one service in N processes on one listening socket.

One Python process uses one core. On PostgreSQL, N processes share the sockets bound by the
parent (the kernel hands each connection to one of them) and run as N instances of the
service on one database, which every part already allows (claims, the shared send window,
the audit sequencer). The parent only watches: it forwards a stop to the workers, and starts
again a worker that died, after a pause that grows while they keep dying.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# A worker that dies this soon after it started counts as failing to start: the next
# start waits longer (doubling up to MAX_PAUSE), so a broken setting does not spin.
STARTUP_SECONDS = 10.0
FIRST_PAUSE = 0.5
MAX_PAUSE = 30.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Workers:
    """The parent's side: the worker processes it started, and whether it is stopping."""

    def __init__(self, serve: Callable[[], None]):
        self.serve = serve
        self.children: dict[int, float] = {}  # pid -> when it started
        self.stopping = False
        self.pause = FIRST_PAUSE

    def start(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: default signal handling, serve, never return from here
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _stop_with(parent)
            code = 0
            try:
                self.serve()
            except BaseException:  # noqa: BLE001 -- the worker's own log said why
                code = 1
            finally:
                os._exit(code)
        self.children[pid] = time.monotonic()

    def stop(self, signum: int, _frame=None) -> None:
        """Tell every worker to stop (they finish what they hold), and start no more."""
        self.stopping = True
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def ended(self, pid: int, status: int) -> None:
        """A worker ended: unless the service is stopping, another takes its place."""
        started = self.children.pop(pid, None)
        if started is None or self.stopping:
            return
        log.warning("a worker process ended (%s); starting another", _how(status))
        if time.monotonic() - started < STARTUP_SECONDS:
            time.sleep(self.pause)
            self.pause = min(self.pause * 2, MAX_PAUSE)
        else:
            self.pause = FIRST_PAUSE
        if not self.stopping:
            self.start()


def serve_in_workers(workers: int, serve: Callable[[], None]) -> int:
    """Run `serve()` (which serves the sockets the parent bound, until told to stop) in
    `workers` child processes until the parent is told to stop; the command's exit status.
    The parent keeps the sockets open (a worker started again needs them) but never
    accepts on them: every connection goes to a worker."""
    pool = Workers(serve)
    signal.signal(signal.SIGTERM, pool.stop)
    signal.signal(signal.SIGINT, pool.stop)
    for _ in range(workers):
        pool.start()
    log.info("serving in %d worker processes", workers)
    while pool.children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        pool.ended(pid, status)
    return 0


def _stop_with(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when the parent dies (a parent killed with
    kill -9 must not leave workers serving unwatched); exit if it died already."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(0)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
