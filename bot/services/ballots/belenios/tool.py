"""belenios-tool (Debian's package, version 2.0) run as a subprocess off the event loop,
with a timeout and an error that says which command failed and what it printed."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

TOOL = "belenios-tool"
INSTALL = "apt-get install -y belenios-tool"
TIMEOUT = 120.0  # seconds; a tally of a few hundred ballots takes a few


class BeleniosError(RuntimeError):
    """belenios-tool is missing, failed or took too long."""


def installed() -> str:
    path = shutil.which(TOOL)
    if path is None:
        raise BeleniosError(f"{TOOL} is not installed: `{INSTALL}` (Debian or Ubuntu).")
    return path


async def run(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    timeout: float = TIMEOUT,
    secret: bytes | None = None,
) -> bytes:
    """The command's standard output; BeleniosError naming the subcommand otherwise.

    `secret` (a vote, a credential) reaches the tool through a pipe named by "{secret}" in
    the arguments (/dev/fd/N): it is never written to a file."""
    env = {**os.environ, "BELENIOS_USE_URANDOM": "1", "TERM": "dumb"}
    read_end = write_end = None
    if secret is not None:
        read_end, write_end = os.pipe()
        os.write(write_end, secret)  # a few hundred bytes: the pipe's buffer holds them
        os.close(write_end)
        args = tuple(a.replace("{secret}", f"/dev/fd/{read_end}") for a in args)
    try:
        process = await asyncio.create_subprocess_exec(
            installed(),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            pass_fds=(read_end,) if read_end is not None else (),
        )
    finally:
        if read_end is not None:
            os.close(read_end)
    command = " ".join(a for a in args if not a.startswith("--"))
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin or b""), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BeleniosError(f"{TOOL} {command} took more than {timeout:.0f}s") from None
    if process.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        detail = " / ".join(line for line in said if not line.startswith("I: "))[-600:]
        raise BeleniosError(f"{TOOL} {command} failed ({process.returncode}): {detail}")
    return out


async def version() -> str:
    return (await run("--version")).decode().strip()
