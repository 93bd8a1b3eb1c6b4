"""The Telegram channel: the webhook, long polling, and the transport that sends messages.

Inbound updates arrive either at POST /webhooks/telegram (when CONCORDER_PUBLIC_URL and
TELEGRAM_WEBHOOK_SECRET are set) or through a long-polling loop (a token is enough); both
feed `telegram_updates.process_update` (polling: `telegram_polling`). Outbound messages go
through `telegram_send.TelegramTransport`; `telegram_client` builds the Bot they share.
Message text and chat ids are personal data: they never reach a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging

from aiohttp import web
from telegram import Bot

from bot.channels.telegram_client import CHANNEL, WEBHOOK_PATH, close_bot, make_bot
from bot.channels.telegram_polling import poll, register_webhook, webhook_mode
from bot.channels.telegram_updates import BadUpdate, handle_update, parse_update
from bot.metrics import WEBHOOKS_REJECTED
from bot.relay import Relay
from bot.web.app import RELAY, SETTINGS

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TELEGRAM_BOT = web.AppKey("telegram_bot", Bot)


async def webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    secret = settings.telegram_webhook_secret
    given = request.headers.get(SECRET_HEADER)
    bot = request.app.get(TELEGRAM_BOT)
    if (
        not secret
        or bot is None
        or given is None
        or not hmac.compare_digest(given.encode(), secret.encode())
    ):
        WEBHOOKS_REJECTED.labels(CHANNEL).inc()
        return web.json_response({"error": "forbidden"}, status=403)
    try:
        update = parse_update(json.loads(await request.read()), bot)
        update_id = update.update_id
    except RecursionError:
        return web.json_response({"error": "body is JSON nested too deeply"}, status=400)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, or a 5,000-digit number
        return web.json_response({"error": f"body is not JSON: {exc}"}, status=400)
    except BadUpdate as exc:
        return web.json_response({"error": str(exc)}, status=400)
    try:
        outcome = await handle_update(update, bot=bot, relay=request.app[RELAY])
    except Exception as exc:  # Telegram retries on 5xx; the error text may quote the message
        log.error("telegram update %s failed (%s)", update_id, type(exc).__name__)
        return web.json_response({"error": "temporarily unavailable"}, status=500)
    log.debug("telegram update %s: %s", update_id, outcome)
    return web.json_response({"ok": True})


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    settings = relay.settings
    app.router.add_post(WEBHOOK_PATH, webhook)
    if not settings.telegram_enabled:
        return

    async def lifecycle(app: web.Application):
        bot = make_bot(settings)
        app[TELEGRAM_BOT] = bot
        task = None
        if dispatch:  # dispatch=False: no background work and no calls out at start-up
            if webhook_mode(settings):
                task = asyncio.create_task(register_webhook(bot, settings))
            else:
                task = asyncio.create_task(poll(bot, relay))
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await close_bot(bot)

    app.cleanup_ctx.append(lifecycle)
