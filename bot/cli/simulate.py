"""`concorder simulate`: chat with a running service from the terminal, as a participant.

It uses the simulator's JSON API (the same as the web page), so it needs `concorder serve`
running with the simulator on; beside a real channel the person it plays is kept apart from
real contacts and organisers.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

API = "/simulator/api/messages"


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


class ServiceDown(Exception):
    """Nothing answers at the URL."""


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SimulatorClient:
    """The simulator's JSON API, for one simulated address."""

    url: str
    channel: str
    address: str
    language: str | None = None
    timeout: float = 10.0

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error") or exc.reason
            except (ValueError, AttributeError):
                message = f"{exc.code} {exc.reason}"
            raise ApiError(exc.code, str(message)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise ServiceDown(str(getattr(exc, "reason", exc))) from None

    def send(self, text: str = "", button: str | None = None) -> dict:
        body: dict[str, Any] = {"channel": self.channel, "address": self.address, "text": text}
        if button is not None:
            body["button"] = button
        if self.language:
            body["language"] = self.language
        return self._call("POST", API, body)

    def replies(self, after: int = 0) -> dict:
        query = urllib.parse.urlencode(
            {"channel": self.channel, "address": self.address, "after": after}
        )
        return self._call("GET", f"{API}?{query}")


@dataclass
class Chat:
    """What the terminal shows and remembers: the last message seen and its buttons."""

    client: SimulatorClient
    console: Console
    after: int = 0
    buttons: list[dict[str, str]] = field(default_factory=list)

    def show(self, message: dict[str, Any]) -> None:
        line = Text("relay> ", style="bold cyan")
        line.append(message["text"])
        if message.get("segments"):
            n = message["segments"]
            line.append(
                f"  ({n} segment{'s' if n != 1 else ''}, {message['encoding']})", style="dim"
            )
        self.console.print(line)
        if message.get("choices"):
            self.buttons = message["choices"]
            row = Text("       ")
            for number, choice in enumerate(self.buttons, start=1):
                row.append(f"[{number}] {choice['label']}", style="reverse")
                row.append("  ")
            self.console.print(row)
        self.after = max(self.after, message["seq"])

    def catch_up(self, history: int | None = None) -> dict:
        """Show new replies (only the last `history` ones on the first look)."""
        result = self.client.replies(self.after)
        messages = result["messages"]
        if history is not None and len(messages) > history:
            self.after = messages[-history - 1]["seq"]
            messages = messages[-history:]
        for message in messages:
            self.show(message)
        return result

    def wait_for_replies(self, queued: int, wait: float) -> None:
        """Poll until the replies to the last message have come, or `wait` seconds pass."""
        if queued == 0:
            self.console.print(Text("(no reply)", style="dim"))
            return
        deadline = time.monotonic() + wait
        seen = 0
        while True:
            result = self.catch_up()
            seen += len(result["messages"])
            if seen >= queued and not result["pending"]:
                return
            if time.monotonic() >= deadline:
                if result["pending"]:
                    self.console.print(
                        Text(
                            f"({result['pending']} repl{'y' if result['pending'] == 1 else 'ies'} "
                            "queued but not sent yet: is the service's dispatcher running?)",
                            style="yellow",
                        )
                    )
                return
            time.sleep(0.2)

    def turn(self, line: str) -> dict:
        """Send what was typed: a button's number presses it on Telegram, else it is text."""
        pressed = self.button_for(line)
        if pressed is not None:
            self.buttons = []
            return self.client.send(button=pressed["data"])
        return self.client.send(text=line)

    def button_for(self, line: str) -> dict[str, str] | None:
        word = line.strip()
        if self.client.channel != "telegram" or not word.isdigit():
            return None
        number = int(word)
        return self.buttons[number - 1] if 1 <= number <= len(self.buttons) else None


def simulate(
    channel: str = typer.Option("sms", help="sms or telegram."),
    address: str = typer.Option(
        "+447700900123", help="Phone number (SMS) or chat id (Telegram) of the simulated person."
    ),
    url: str = typer.Option("http://127.0.0.1:8080", help="Where `concorder serve` runs."),
    language: str | None = typer.Option(
        None,
        help="Language of the person's phone (en, fr, es), used when this address writes first.",
    ),
    wait: float = typer.Option(5.0, help="Seconds to wait for the replies to each message."),
) -> None:
    """Chat with the running service as a participant on a simulated channel (Ctrl-D ends)."""
    console = Console(highlight=False, soft_wrap=True)  # the terminal wraps, not rich
    err = Console(stderr=True, highlight=False)
    chat = Chat(SimulatorClient(url, channel, address, language), console)
    try:
        chat.catch_up(history=5)
        console.print(
            Text(
                f"Simulated {channel} as {address} on {url}. Type a message and press Enter"
                + ("; a button's number presses it" if channel == "telegram" else "")
                + ". Ctrl-D ends.",
                style="dim",
            )
        )
        while True:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if not line.strip():
                continue
            try:
                sent = chat.turn(line)
            except ApiError as exc:
                if exc.status >= 500:
                    err.print(
                        Text(
                            f"The service failed to take it ({exc.message}); its log says why.",
                            style="red",
                        )
                    )
                else:
                    err.print(Text(f"Not sent: {exc.message}", style="red"))
                continue
            chat.wait_for_replies(sent.get("queued", 0), wait)
    except ServiceDown as exc:
        err.print(
            Text(
                f"No Concorder Relay service answers at {url} ({exc}). Start it with "
                "`concorder serve`, or point --url at it.",
                style="red",
            )
        )
        raise typer.Exit(1) from None
    except ApiError as exc:
        err.print(Text(f"The simulator refused: {exc.message}", style="red"))
        raise typer.Exit(1) from None
