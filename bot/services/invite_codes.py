"""One-time invitation codes that the database never holds.

An invitation's code is HMAC(server secret, a random nonce). The outbox row keeps a marker
with the nonce where the code goes, the invitations table the code's SHA-256 (to recognise
it when it comes back in '/start <code>'); the code itself is filled in only as the text
leaves the service (`reveal`: the dispatcher, the simulator's API). A copy of the database
alone therefore opens nobody's invitation.

The secret is CONCORDER_SECRET_KEY or, when unset, a random key made on first use and kept
in a file (mode 0600) beside the SQLite database, or in the working directory. Instances
sharing a database must share the secret: a code made under another key does not match.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import string
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.settings import Settings

ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 32  # Telegram's start parameter takes up to 64 of A-Za-z0-9_-
MARK = "nonce-"
# A marker is as long as a code and in the same GSM-7 letters, so the SMS segments counted
# on the stored text are those of the text sent.
NONCE_LENGTH = CODE_LENGTH - len(MARK)
_MARKER = re.compile(rf"{MARK}([A-Za-z0-9]{{{NONCE_LENGTH}}})(?![A-Za-z0-9])")
KEY_FILE = "concorder-secret.key"
INVITATION_KIND = "invitation"

log = logging.getLogger(__name__)


def new_nonce() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(NONCE_LENGTH))


def marker(nonce: str) -> str:
    return MARK + nonce


def code_for(nonce: str, key: bytes) -> str:
    """The code a nonce stands for: 32 letters and digits (about 190 bits), no '-' or '_'
    (phones that make a link of the SMS often leave a trailing '-' out of it)."""
    number = int.from_bytes(
        hmac.new(key, b"invitation-code:" + nonce.encode(), hashlib.sha256).digest(), "big"
    )
    chars = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(chars)


def reveal(text: str, kind: str, key: bytes) -> str:
    """The text as it leaves the service: each marker of an invitation replaced by its code.
    Texts of other kinds are left alone, whatever they hold."""
    if kind != INVITATION_KIND or MARK not in text:
        return text
    return _MARKER.sub(lambda found: code_for(found.group(1), key), text)


def key_file(database_url: str) -> Path:
    """Where the generated key is kept: beside an SQLite database file, else here."""
    url = make_url(database_url)
    database = url.database or ""
    if (
        url.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
    ):
        return Path(database).resolve().parent / KEY_FILE
    return Path.cwd() / KEY_FILE


def given_key(settings: Settings) -> str | None:
    """CONCORDER_SECRET_KEY, when set."""
    given = settings.secret_key.get_secret_value().strip() if settings.secret_key else None
    return given or None


def has_key(settings: Settings) -> bool:
    """Whether `settings` name a key already (the variable, or a key file that exists)."""
    return given_key(settings) is not None or key_file(settings.database_url).exists()


def server_key(settings: Settings) -> bytes:
    """The secret of `settings`: CONCORDER_SECRET_KEY, else the key file (made on first
    use). Read once per service instance (`Relay.invite_key`); the database checks it is
    the key it was first used with (bot/services/key_check.py)."""
    given = given_key(settings)
    if given:
        return given.encode()
    where = key_file(settings.database_url)
    if not where.exists():
        # Another working directory, another instance: another key, and links made by one
        # would not open with the other.
        log.warning(
            "no CONCORDER_SECRET_KEY: a new secret key is kept in %s; set the "
            "variable wherever more than one process or directory serves this "
            "database",
            where,
        )
    return _file_key(where)


def _file_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a name of its own, then linked into place: a second instance
        # starting at the same moment finds either no file or the complete one.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fp:
                fp.write(secrets.token_hex(32) + "\n")
                fp.flush()
                os.fsync(fp.fileno())
            try:
                os.link(draft, path)
            except FileExistsError:
                pass  # another instance made it first: theirs is the key
        finally:
            os.unlink(draft)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # nobody else may read it
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(
            f"the secret key file {path} is damaged; set CONCORDER_SECRET_KEY "
            "or restore the file (invitations already sent need the same key)"
        )
    return key.encode()
