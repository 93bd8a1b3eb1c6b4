"""GET /organiser: the dashboard for a signed-in organiser, else the sign-in form."""

from __future__ import annotations

from aiohttp import web

from bot.services.organiser_signin import signed_in
from bot.web.app import RELAY, SESSIONS, SETTINGS
from bot.web.organiser.figures import gather
from bot.web.organiser.signin import COOKIE, signin_form
from bot.web.pages import language_of, render
from flows import ballot_text
from flows.i18n import translator
from store.models import utcnow


async def page(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    language = language_of(request, request.app[SETTINGS].default_language)
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        who = await signed_in(session, request.cookies.get(COOKIE), now)
    if who is None:
        return signin_form(request, language)
    figures = await gather(relay, language)
    t = translator(language)
    return render(
        request,
        "organiser_dashboard.html",
        language,
        private=True,
        zone=relay.calendar.schedule.timezone if relay.calendar else "UTC",
        who=who,
        now=now,
        assembly_name=relay.assembly.name_in(language) if relay.assembly else None,
        figures=figures,
        ballot_title=lambda definition: ballot_text.title(definition, t),
    )
