"""A Belenios election's files, made and read with belenios-tool.

    DIR/public/UUID.bel   the election archive: what is published and verified
    DIR/setup.bel         the archive as set up (no ballot), from which the close rebuilds
    DIR/trustee/*.privkey the single trustee's private key, held by the service

The ballots themselves are kept in the database (one transaction with the vote); the
archive with every ballot, the encrypted tally, the partial decryption and the result is
written at the close (or as a snapshot for `ballot publish` while voting is open).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.services.ballots.belenios import election
from bot.services.ballots.belenios.tool import TIMEOUT, BeleniosError, run


@dataclass
class Setup:
    uuid: str
    directory: Path
    credentials: list[str]  # private credentials, one per voter, in a random order


def archive(directory: Path, uuid: str) -> Path:
    return directory / "public" / f"{uuid}.bel"


def tracker(ballot: str) -> str:
    """Belenios's ballot tracker: the SHA-256 of the ballot as published, in base64."""
    digest = hashlib.sha256(ballot.encode()).digest()
    return base64.b64encode(digest).decode().rstrip("=")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def set_up(
    root: Path, ballot_id: str, definition: dict[str, Any], language: str, voters: int
) -> Setup:
    """A new election for `voters` voters: credentials, the trustee's key, the election's
    parameters, and its archive initialised."""
    uuid = (await run("setup", "generate-token")).decode().strip()
    directory = (root / f"{ballot_id}-{uuid}").resolve()
    public, trustee, work = directory / "public", directory / "trustee", directory / "setup"
    for path in (public, trustee, work):
        path.mkdir(parents=True, exist_ok=True)
    trustee.chmod(0o700)
    group = ("--group", election.GROUP)
    try:
        (work / "voters.txt").write_text("".join(f"voter{n}\n" for n in range(1, voters + 1)))
        await run("setup", "generate-credentials", "--uuid", uuid, *group, "--file",
                  "voters.txt", "--dir", ".", cwd=work)  # fmt: skip
        private = (next(work.glob("*.privcreds"))).read_text().split()[1::2]
        next(work.glob("*.pubcreds")).rename(public / "public_creds.json")
        await run("setup", "generate-trustee-key", *group, cwd=trustee)
        shutil.copy(next(trustee.glob("*.pubkey")), public / "public_keys.jsons")
        await run("setup", "make-trustees", "--dir", ".", cwd=public)
        template = election.template(ballot_id, definition, language)
        (work / "template.json").write_text(json.dumps(template, ensure_ascii=False))
        await run("setup", "make-election", "--uuid", uuid, *group, "--template",
                  str(work / "template.json"), "--dir", ".", cwd=public)  # fmt: skip
        await run("archive", "init", "--dir", ".", cwd=public)
    finally:
        shutil.rmtree(work)  # the private credentials live in the database only
    for name in ("public_keys.jsons", "trustees.json", "election.json", "public_creds.json"):
        (public / name).unlink(missing_ok=True)
    shutil.copy(archive(directory, uuid), directory / "setup.bel")
    if len(private) != voters:
        raise BeleniosError(f"{len(private)} credentials made for {voters} voters")
    secrets.SystemRandom().shuffle(private)
    return Setup(uuid, directory, private)


async def encrypt(
    directory: Path, uuid: str, credential: str, choices: Any, timeout: float = TIMEOUT
) -> str:
    """The ballot belenios-tool makes of these choices, signed with the credential."""
    del uuid  # the archive in public/ says which election
    secret = f"{credential}\n".encode()
    ballot = await run(
        "election", "generate-ballot", "--dir", str(directory / "public"),
        "--privcred", "{secret}", "--ballot", "/dev/stdin",
        stdin=json.dumps(choices).encode(), secret=secret, timeout=timeout,
    )  # fmt: skip
    return ballot.decode().strip()


async def build(directory: Path, uuid: str, ballots: list[str], *, final: bool) -> Path:
    """The archive with these ballots, in order, rebuilt from the setup in a directory of
    its own; with `final`, voting ended, the tally, its decryption and the result too."""
    if final:  # one close at a time: it holds the ballot's row
        work = directory / "closing"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
    else:  # a snapshot of its own for each caller, who removes it (`snapshot-` + random)
        work = Path(tempfile.mkdtemp(prefix="snapshot-", dir=directory))
    shutil.copy(directory / "setup.bel", work / f"{uuid}.bel")
    for ballot in ballots:
        await run("archive", "add-event", "--type=Ballot", "--dir", ".", cwd=work,
                  stdin=ballot.encode())  # fmt: skip
    if final:
        await run("archive", "add-event", "--type=EndBallots", "--dir", ".", cwd=work)
        encrypted = await run("election", "compute-encrypted-tally", "--dir", ".", cwd=work)
        await add(work, "EncryptedTally", encrypted)
        key = next((directory / "trustee").glob("*.privkey"))
        partial = await run("election", "decrypt", "--dir", ".", "--privkey", str(key),
                            "--trustee-id", "1", cwd=work)  # fmt: skip
        await add(work, "PartialDecryption", partial)
        await add(work, "Result", await run("election", "compute-result", "--dir", ".", cwd=work))
    await verify(work)
    if not final:
        return work / f"{uuid}.bel"
    os.replace(work / f"{uuid}.bel", archive(directory, uuid))  # whole, or not at all
    shutil.rmtree(work)
    return archive(directory, uuid)


async def add(work: Path, kind: str, payload: bytes) -> None:
    await run("archive", "add-event", f"--type={kind}", "--dir", ".", cwd=work, stdin=payload)


async def verify(directory: Path) -> str:
    """belenios-tool's own verification of every check it knows; BeleniosError if any fails."""
    out = await run("election", "verify", "--dir", str(directory))
    return out.decode()


def result_of(archive_path: Path) -> list[list[int]]:
    """The Result event's counts, read from the archive (a tar of JSON files)."""
    import tarfile

    with tarfile.open(archive_path) as tar:
        events = [
            json.loads(tar.extractfile(m).read())
            for m in tar.getmembers()
            if m.name.endswith(".event.json")
        ]
        results = [e for e in events if e.get("type") == "Result"]
        if not results:
            raise BeleniosError(f"{archive_path.name} holds no result yet")
        payload = tar.extractfile(f"{results[-1]['payload']}.data.json").read()
    return json.loads(payload)["result"]


def counted(ballots: list[str]) -> int:
    """How many ballots count: one per credential (a later one replaces the earlier)."""
    return len({json.loads(b)["credential"] for b in ballots})


def replaced(ballots: list[str]) -> list[bool]:
    """For each ballot, whether a later one with the same credential replaces it."""
    last = {json.loads(b)["credential"]: n for n, b in enumerate(ballots)}
    return [last[json.loads(b)["credential"]] != n for n, b in enumerate(ballots)]
