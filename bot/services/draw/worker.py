"""Running a solve in a child interpreter, and the runs a caller asks for.

Reproducibility: the library keeps committees in Python sets of strings, whose iteration
order depends on the interpreter's hash seed, so the same seed could give another panel in
another process. Every solve therefore runs in a child interpreter with PYTHONHASHSEED
fixed (`python -m bot.services.draw`), which also keeps the solver's console output off
ours. The child reads one JSON payload per line and answers with JSON lines: progress
events, then one result or one error.

A `SolverWorker` owns one such child, started at its first solve and reused for the next
(starting Python and the solver costs about a second); whoever runs several draws holds
one and closes it after. `run_draw` and the others make and close their own when given
none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from bot.services.draw.rules import (
    HASH_SEED,
    SOLVER_BACKEND,
    Draw,
    DrawError,
    DrawInput,
    ReplaceInput,
    Replacement,
    SolverUnavailable,
    backend_for,
    backend_versions,
    canonical_json,
    check_algorithm,
    draw_from_answer,
    replacement_from_answer,
    seed_number,
)

Progress = Callable[[dict[str, Any]], None]


def run_draw(
    inp: DrawInput,
    seed: str,
    algorithm: str = "maximin",
    *,
    panels: int = 1,
    pick_seed: str | None = None,
    pick_number: int | None = None,
    progress: Progress | None = None,
    time_limit: float | None = None,
    worker: SolverWorker | None = None,
    backend: str | None = None,
) -> Draw:
    """Select a panel (and its reserve). With panels > 1: compute that many quota-compliant
    panels; without `pick_seed` or `pick_number` stop there (to publish them), with one of
    them pick a panel. `backend` defaults to the algorithm's own (rules.backend_for)."""
    backend = backend or backend_for(algorithm)
    check_algorithm(algorithm, backend)
    if panels < 1:
        raise DrawError("--panels must be at least 1.")
    if panels > 1 and algorithm == "legacy":
        raise DrawError(
            "The legacy algorithm cannot make a transparent lottery of several "
            "panels; use maximin or nash with --panels."
        )
    if (pick_seed is not None or pick_number is not None) and panels == 1:
        raise DrawError("A pick only applies to a transparent lottery (--panels M).")
    if inp.panel_size < 1:
        raise DrawError("The panel size must be at least 1.")
    canonical = inp.canonical()
    payload = {
        "mode": "select",
        "input": canonical,
        "seed": seed,
        "seed_number": seed_number(seed),
        "algorithm": algorithm,
        "panels": panels,
        "pick_seed": pick_seed,
        "solver_backend": backend,
        "versions": backend_versions(backend),
    }
    if pick_number is not None:
        payload["pick_number"] = pick_number
    if inp.flex:
        payload["flex"] = {
            c: {v: [b.min, b.max] for v, b in vs.items()} for c, vs in inp.flex.items()
        }
    answer = _solve(worker, payload, progress, time_limit)
    payload.pop("flex", None)  # advice only: not part of what re-runs the draw
    return draw_from_answer(answer, payload)


def run_replace(
    inp: ReplaceInput,
    seed: str,
    algorithm: str = "maximin",
    *,
    progress: Progress | None = None,
    worker: SolverWorker | None = None,
) -> Replacement:
    check_algorithm(algorithm)
    missing = inp.panel_size - len(inp.kept)
    if missing < 1:
        raise DrawError("The panel is full: nobody needs replacing.")
    payload = {
        "mode": "replace",
        "input": inp.canonical(),
        "seed": seed,
        "seed_number": seed_number(seed),
        "algorithm": algorithm,
    }
    answer = _solve(worker, payload, progress)
    return replacement_from_answer(answer, payload)


def rerun(
    payload: Mapping[str, Any],
    progress: Progress | None = None,
    *,
    worker: SolverWorker | None = None,
) -> dict[str, Any]:
    """Run a recorded payload again (for --verify): the child's raw answer."""
    check_algorithm(payload["algorithm"], payload.get("solver_backend") or SOLVER_BACKEND)
    return _solve(worker, dict(payload), progress)


def rerun_many(
    payloads: Sequence[Mapping[str, Any]],
    progress: Progress | None = None,
    time_limit: float | None = None,
    *,
    worker: SolverWorker | None = None,
) -> list[dict[str, Any] | DrawError]:
    """Several recorded payloads in one child process: an answer or a DrawError each."""
    if not payloads:
        return []
    for payload in payloads:
        check_algorithm(payload["algorithm"], payload.get("solver_backend") or SOLVER_BACKEND)
    answers = _solve(worker, {"mode": "batch", "payloads": list(payloads)}, progress, time_limit)
    return [
        DrawError(
            a["error"]["message"], a["error"].get("categories", ()), a["error"].get("kind", "draw")
        )
        if "error" in a
        else a["result"]
        for a in answers["answers"]
    ]


def _solve(
    worker: SolverWorker | None,
    payload: dict[str, Any],
    progress: Progress | None,
    time_limit: float | None = None,
) -> dict[str, Any]:
    if worker is not None:
        return worker.solve(payload, progress, time_limit)
    with SolverWorker() as own:
        return own.solve(payload, progress, time_limit)


class SolverWorker:
    """The child interpreter the solves run in, started at the first and kept for the next.

    Use it as a context manager (or call close()): closing ends the child. Solves through
    one worker take turns; a worker may be used from any thread."""

    def __init__(self) -> None:
        self._child: _Child | None = None
        self._lock = threading.Lock()

    def solve(
        self,
        payload: dict[str, Any],
        progress: Progress | None = None,
        time_limit: float | None = None,
    ) -> dict[str, Any]:
        """Run `payload` in the child; with `time_limit` (seconds), stop it then."""
        with self._lock:
            if self._child is None or not self._child.alive:
                self._child = _Child()
            try:
                answer = self._child.ask(payload, progress, time_limit)
            except BaseException:
                self._end()  # interrupted or dead: never leave a solver running
                raise
        if "error" in answer:
            error = answer["error"]
            if error.get("kind") == "solver":
                raise SolverUnavailable(error["message"])
            raise DrawError(
                error["message"], error.get("categories", ()), error.get("kind", "draw")
            )
        return answer["result"]

    def close(self) -> None:
        with self._lock:
            self._end()

    def _end(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    def __enter__(self) -> SolverWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Child:
    """A child interpreter with a fixed hash seed that solves one payload per input line.

    It ends when its input closes, and is killed on a time limit or an interrupt."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}
        root = os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        )
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.services.draw"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            bufsize=1,
            env=env,
            cwd=root,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(
        self, payload: dict[str, Any], progress: Progress | None, time_limit: float | None
    ) -> dict[str, Any]:
        process = self.process
        assert process.stdin and process.stdout
        timer = threading.Timer(time_limit, process.kill) if time_limit else None
        try:
            process.stdin.write(canonical_json(payload) + "\n")
            process.stdin.flush()
            if timer:
                timer.start()
            for line in process.stdout:
                message = json.loads(line)
                if "progress" not in message:
                    return message
                if progress is not None:
                    progress(message["progress"])
        except BrokenPipeError:
            pass
        finally:
            if timer:
                timer.cancel()
        code = process.wait()
        if timer and timer.finished.is_set():
            raise DrawError(f"Stopped after the time limit of {time_limit:g} s.", kind="timeout")
        self.errors.seek(0)
        tail = self.errors.read()[-2000:]
        raise DrawError(
            f"The selection process stopped unexpectedly (exit {code}). Its last output:\n{tail}"
        )

    def close(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.errors):
            if stream:
                stream.close()


# --- inside the child --------------------------------------------------------------------


class _Reporter:
    """The library's ProgressReporter, forwarding events as JSON lines (throttled)."""

    def __init__(self, out: TextIO):
        self.out = out
        self.last = 0.0

    def _send(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps({"progress": event}) + "\n")
        self.out.flush()

    def start_phase(
        self, name: str, total: int | None = None, *, message: str | None = None
    ) -> None:
        self._send({"event": "start", "name": name, "total": total, "message": message})

    def update(self, current: int, *, message: str | None = None) -> None:
        now = time.monotonic()
        if now - self.last >= 0.2:
            self.last = now
            self._send({"event": "update", "current": current, "message": message})

    def end_phase(self) -> None:
        self._send({"event": "end"})


def child_main() -> None:
    from bot.services.draw.solver import solve

    # The solver writes to file descriptor 1; keep that for stderr and talk on a copy.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        payload = json.loads(line)
        try:
            answer = {"result": solve(payload, _Reporter(out))}
        except DrawError as error:
            answer = {
                "error": {
                    "message": error.message,
                    "kind": error.kind,
                    "categories": error.categories,
                }
            }
        except Exception as error:  # a library failure: say which, keep serving
            traceback.print_exc()
            answer = {
                "error": {
                    "message": f"The selection library failed: {type(error).__name__}: {error}",
                    "kind": "crash",
                }
            }
        out.write(canonical_json(answer) + "\n")
        out.flush()
