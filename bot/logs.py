"""Logging for the long-running commands: no phone number, chat id, message text, token or
account SID in any line, whoever writes it and whatever fails.

Two things make a line private here. Exception messages are never written: a database
error quotes the row it refused (PostgreSQL's `DETAIL: Key (channel, address)=(sms, +44...)`),
a provider's error quotes the message; a traceback keeps its frames and the exception's
type only, and an exception passed as an argument is written as its type. Then whatever is
left (our messages and other libraries') has anything shaped like a secret or a number
replaced: phone numbers and long digit runs (chat ids), bot tokens, Twilio SIDs and hex
secrets, invitation codes after `start=`, and the configured secrets themselves.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from typing import IO, Any

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
HANDLER_NAME = "concorder-private"
OUR_PACKAGES = ("bot", "flows", "scheduler", "store")

# Libraries that log each request (URLs with the bot token or account SID, headers,
# parameters with chat ids and text) at INFO or DEBUG, or every timer tick.
QUIET = (
    "twilio.http_client",
    "twilio.async_http_client",
    "httpx",
    "httpcore",
    "telegram.Bot",
    "telegram.ext.ExtBot",
    "telegram.request",
    "apscheduler",
    "aiosqlite",
    "asyncio",
)

_REDACTIONS = (
    # A bot token: the bot's id, a colon, 35 characters (checked before the digit runs).
    (re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}"), "[token]"),
    # Twilio SIDs (AC account, SM/MM message, MG messaging service, ...): two capitals and
    # 32 hex digits; any other 32+ hex digits may be an auth token or a key.
    (re.compile(r"\b[A-Z]{2}[0-9a-fA-F]{32}\b"), "[sid]"),
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), "[secret]"),
    # A Telegram invitation link's one-time code.
    (re.compile(r"(start=|/start\s+)[A-Za-z0-9_-]{8,64}"), r"\1[code]"),
    # Phone numbers in any spelling (+44 7700 900123, 07700-900123, (415) 555-0100) and
    # chat ids: seven digits or more, grouped by spaces, dashes or brackets. Not dots: a
    # status and a duration ("200 0.004s") are not a number; nor is an ISO date.
    (
        re.compile(r"(?<![\w+.-])(?!\d{4}-\d{2}-\d{2}(?!\d))\+?\(?\d(?:[ ()-]{0,2}\d){6,}"),
        "[number]",
    ),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _type_name(exc_type: type | None) -> str:
    if exc_type is None:
        return "Exception"
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


def frames_only(exc: BaseException) -> str:
    """A traceback without any exception's message: frames (code only) and types, causes
    included. Messages can quote the data that failed."""
    return "".join(_frames(traceback.TracebackException.from_exception(exc), set()))


def _frames(exc: traceback.TracebackException, seen: set[int]) -> list[str]:
    seen.add(id(exc))
    lines: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += _frames(cause, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += _frames(context, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if exc.stack:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(exc.stack.format())
    lines.append(f"{_type_name(exc.exc_type)} (message not logged: it may hold personal data)\n")
    return lines


def _safe(value: Any) -> Any:
    return type(value).__name__ if isinstance(value, BaseException) else value


class PrivateFormatter(logging.Formatter):
    """Formats a record without exception messages and with secrets and numbers redacted.

    The record itself is left as it is: other handlers see it unchanged."""

    def __init__(self, fmt: str = FORMAT, secrets: Iterable[str] = ()):
        super().__init__(fmt)
        self.secrets = tuple(s for s in secrets if s and len(s) >= 6)

    def message(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple):
            args = tuple(_safe(a) for a in args)
        elif isinstance(args, Mapping):
            args = {k: _safe(v) for k, v in args.items()}
        msg = str(_safe(record.msg))
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):
            text = f"{msg} (arguments not logged)"
        if not record.name.startswith(OUR_PACKAGES) and "\n" in text:
            # e.g. asyncio's "Task exception was never retrieved" adds the task's repr,
            # exception message included, on the lines after the first.
            text = text.split("\n", 1)[0]
        return text

    def format(self, record: logging.LogRecord) -> str:
        clean = logging.makeLogRecord(record.__dict__)
        clean.msg, clean.args = redact(self.message(record), self.secrets), None
        clean.exc_info, clean.exc_text = None, None
        text = super().format(clean)
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            text += "\n" + redact(frames_only(exc), self.secrets).rstrip("\n")
        return text


def configured_secrets(settings: Any) -> list[str]:
    """The secret values of the configuration, redacted wherever they turn up."""
    secrets = [
        settings.telegram_bot_token,
        settings.telegram_webhook_secret,
        settings.twilio_auth_token,
        settings.twilio_account_sid,
    ]
    key = getattr(settings, "secret_key", None)
    if key is not None:
        secrets.append(key.get_secret_value())
    return [s for s in secrets if s]


def configure_logging(
    settings: Any = None, *, stream: IO[str] | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send every log line through PrivateFormatter (to stderr unless `stream`) and quiet
    the libraries that log each request. Safe to call again: the handler is replaced."""
    secrets: list[str] = []
    try:
        if settings is None:
            from bot.settings import Settings

            settings = Settings()
        secrets = configured_secrets(settings)
    except ValueError:
        pass  # a configuration the command will refuse, with its own message
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(PrivateFormatter(FORMAT, secrets))
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # An error nothing caught would otherwise be printed whole (message included) to stderr.
    sys.excepthook = _log_uncaught
    return handler


def _log_uncaught(exc_type, exc, tb) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("bot").critical(
        "stopped by an unexpected error", exc_info=(exc_type, exc, tb)
    )
