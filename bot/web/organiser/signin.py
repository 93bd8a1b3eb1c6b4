"""Signing in and out of the organiser page.

A wrong, expired or used token or link, or one of a removed organiser, all get the same
answer. After MAX_FAILURES wrong tries from one client within WINDOW, that client is
refused without a check until the window has passed, so tokens cannot be guessed at speed.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from aiohttp import web

from bot.services import organiser_signin as service
from bot.web.app import SESSIONS, SETTINGS
from bot.web.pages import language_of, render
from store.models import utcnow

COOKIE = "concorder_organiser"
MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
MAX_CLIENTS = 10_000


class Attempts:
    """Wrong sign-ins per client address, kept for WINDOW (in this instance's memory)."""

    def __init__(self) -> None:
        self.failures: dict[str, deque[datetime]] = {}

    def _recent(self, client: str, now: datetime) -> deque[datetime]:
        times = self.failures.setdefault(client, deque())
        while times and times[0] <= now - WINDOW:
            times.popleft()
        if not times:
            del self.failures[client]
            return deque()
        return times

    def wait(self, client: str, now: datetime) -> timedelta | None:
        """How long this client must wait before trying again, or None."""
        times = self._recent(client, now)
        if len(times) < MAX_FAILURES:
            return None
        return times[-MAX_FAILURES] + WINDOW - now

    def failed(self, client: str, now: datetime) -> None:
        if len(self.failures) > MAX_CLIENTS:  # many addresses: drop those gone quiet
            for other in list(self.failures):
                self._recent(other, now)
        self._recent(client, now)
        self.failures.setdefault(client, deque()).append(now)


ATTEMPTS = web.AppKey("organiser_signin_attempts", Attempts)


def signin_form(
    request: web.Request, language: str, *, status: int = 200, problem: str | None = None, **extra
) -> web.Response:
    return render(
        request,
        "organiser_signin.html",
        language,
        status=status,
        private=True,
        problem=problem,
        **extra,
    )


async def link_page(request: web.Request) -> web.Response:
    """A link's page: a button that signs in. Opening it spends nothing, so a chat app
    fetching the link for a preview does not use it up."""
    language = language_of(request, request.app[SETTINGS].default_language)
    link = request.query.get("link", "")
    if not link:
        return signin_form(request, language)
    return render(request, "organiser_link.html", language, private=True, link=link)


async def sign_in(request: web.Request) -> web.Response:
    form = await request.post()
    language = language_of(request, request.app[SETTINGS].default_language, form.get("lang"))
    now, client = utcnow(), request.remote or "-"
    attempts = request.app[ATTEMPTS]
    wait = attempts.wait(client, now)
    if wait is not None:
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        return signin_form(request, language, status=429, problem="wait", minutes=minutes)
    link = str(form.get("link") or "")
    via, secret = ("link", link) if link else ("token", str(form.get("token") or ""))
    async with request.app[SESSIONS].begin() as session:
        done = await service.sign_in(session, secret, now, via=via)
    if done is None:
        attempts.failed(client, now)
        return signin_form(request, language, status=401, problem="refused")
    response = web.Response(status=303, headers={"Location": f"/organiser?lang={language}"})
    response.set_cookie(
        COOKIE,
        done.cookie,
        max_age=int((done.expires_at - now).total_seconds()),
        path="/organiser",
        httponly=True,
        samesite="Strict",
        secure=_https(request),
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    form = await request.post()
    language = language_of(request, request.app[SETTINGS].default_language, form.get("lang"))
    async with request.app[SESSIONS].begin() as session:
        await service.sign_out(session, request.cookies.get(COOKIE))
    response = web.Response(status=303, headers={"Location": f"/organiser?lang={language}"})
    response.del_cookie(COOKIE, path="/organiser")
    return response


def _https(request: web.Request) -> bool:
    public = request.app[SETTINGS].public_url or ""
    return request.secure or public.startswith("https://")
