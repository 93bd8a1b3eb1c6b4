"""Configuration from the environment. Every channel is optional and switches on when set."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from store.db import DEFAULT_URL

DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Settings(BaseSettings):
    # A refused value (a secret, a token) is never repeated in the error.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    database_url: str = Field(DEFAULT_URL, alias="CONCORDER_DATABASE_URL")
    public_url: str | None = Field(None, alias="CONCORDER_PUBLIC_URL")
    default_language: str = Field("en", alias="CONCORDER_DEFAULT_LANGUAGE")
    default_region: str = Field("GB", alias="CONCORDER_DEFAULT_REGION")  # for national numbers
    assembly_file: str | None = Field(None, alias="CONCORDER_ASSEMBLY")
    # The simulator page and API let anyone who reaches the port chat as any address: on by
    # default only with no real channel and no public URL; beside a real channel only when
    # asked (CONCORDER_SIMULATOR=1), and then its people are kept apart from real contacts.
    simulator: bool | None = Field(None, alias="CONCORDER_SIMULATOR")

    # Derives the one-time invitation codes (bot/invite_codes.py); unset, a random key is
    # kept in a file. Instances sharing a database must share it.
    secret_key: SecretStr | None = Field(None, alias="CONCORDER_SECRET_KEY")

    telegram_bot_token: str | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_webhook_secret: str | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_api_base_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_BASE_URL")

    twilio_account_sid: str | None = Field(None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str | None = Field(None, alias="TWILIO_AUTH_TOKEN")
    twilio_from_number: str | None = Field(None, alias="TWILIO_FROM_NUMBER")
    twilio_messaging_service_sid: str | None = Field(None, alias="TWILIO_MESSAGING_SERVICE_SID")
    twilio_api_base_url: str | None = Field(None, alias="TWILIO_API_BASE_URL")

    # Delivery limits. Telegram: about 30 messages/s overall and 1/s per chat.
    telegram_rate: float = Field(30.0, alias="CONCORDER_TELEGRAM_RATE")
    telegram_chat_rate: float = Field(1.0, alias="CONCORDER_TELEGRAM_CHAT_RATE")
    sms_rate: float = Field(1.0, alias="CONCORDER_SMS_RATE")  # per sender number
    sms_cost_per_segment: float = Field(0.0079, alias="CONCORDER_SMS_COST_PER_SEGMENT")
    sms_max_segments: int = Field(10, alias="CONCORDER_SMS_MAX_SEGMENTS")
    # Delivery: how long a message that keeps failing for a passing reason (the provider is
    # down, a timeout) is retried from the moment it was due, before it is marked failed;
    # and how long a dispatcher holds a message it is sending before another may take it.
    retry_for: timedelta = Field(timedelta(hours=24), alias="CONCORDER_RETRY_FOR")
    send_lease: timedelta = Field(timedelta(minutes=2), alias="CONCORDER_SEND_LEASE")
    # Audit checkpoints (bot/services/audit_checkpoints.py): how often `serve` signs the
    # chain's head, where it writes them, and the name they carry (default: the assembly's).
    checkpoint_every: timedelta = Field(timedelta(hours=24), alias="CONCORDER_CHECKPOINT_EVERY")
    checkpoint_dir: str | None = Field(None, alias="CONCORDER_CHECKPOINT_DIR")
    audit_origin: str | None = Field(None, alias="CONCORDER_AUDIT_ORIGIN")
    # Where Belenios ballots keep their election files (one directory per ballot).
    belenios_dir: str = Field("belenios", alias="CONCORDER_BELENIOS_DIR")
    # How long a vote's encryption may take (seconds) before the voter is told it was not
    # cast: well inside a webhook's own timeout (Twilio waits 15 s).
    belenios_vote_timeout: float = Field(10.0, alias="CONCORDER_BELENIOS_VOTE_TIMEOUT")

    @field_validator("retry_for", "send_lease", "checkpoint_every", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """Also "36h", "90m", "2d", "45s" (besides seconds and ISO 8601 like PT36H)."""
        if isinstance(value, str):
            match = DURATION.fullmatch(value.strip().lower())
            if match:
                number, unit = float(match[1]), match[2]
                return timedelta(seconds=number * DURATION_UNITS[unit])
        return value

    @field_validator("retry_for", "send_lease", "checkpoint_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @property
    def send_timeout(self) -> float:
        """How long one send may take: well within the lease, at most 30 s."""
        return min(30.0, self.send_lease.total_seconds() / 4)

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 32:
            raise ValueError(
                "CONCORDER_SECRET_KEY must be at least 32 characters; make one "
                "with: python3 -c 'import secrets; print(secrets.token_hex(32))'"
            )
        return value

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def sms_enabled(self) -> bool:
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from_number or self.twilio_messaging_service_sid)
        )

    @property
    def real_channel_configured(self) -> bool:
        """Any real account is set, even half of one: messages may reach real people."""
        return bool(self.telegram_bot_token or self.twilio_account_sid)

    @property
    def simulator_enabled(self) -> bool:
        if self.simulator is not None:
            return self.simulator
        return not self.real_channel_configured and self.public_url is None

    @property
    def simulator_kept_apart(self) -> bool:
        """Simulated people get addresses of their own (bot.addresses.simulated_address), so
        they can never speak as, reach or merge with a real contact or an organiser."""
        return self.simulator_enabled and self.real_channel_configured

    @cached_property
    def simulated_channels(self) -> frozenset[str]:
        """Channels with no real account configured are served by the built-in simulator."""
        simulated = set()
        if not self.telegram_enabled:
            simulated.add("telegram")
        if not self.sms_enabled:
            simulated.add("sms")
        return frozenset(simulated)
