"""Ballots run as Belenios elections (bot/services/ballots/belenios/).

- `belenios_elections`: where a ballot's election files are and its Belenios uuid.
- `belenios_credentials`: each voter's private credential while the ballot is open (the
  service encrypts their vote with it); every row is deleted at the close, so nothing
  then ties a voter to a public credential, and so to a ballot in the published box.
- `belenios_ballots`: the encrypted ballots as cast, in the order they were cast (the
  order Belenios itself publishes); no voter, no time. A revote is a new ballot signed
  with the same credential, which Belenios counts in place of the earlier one.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base


class BeleniosElection(Base):
    __tablename__ = "belenios_elections"

    ballot_id: Mapped[str] = mapped_column(ForeignKey("ballots.id"), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32))
    directory: Mapped[str] = mapped_column(String(500))
    # "service": one trustee whose private key the service holds (README says what follows).
    trustees: Mapped[str] = mapped_column(String(16), default="service")


class BeleniosCredential(Base):
    __tablename__ = "belenios_credentials"

    ballot_id: Mapped[str] = mapped_column(ForeignKey("ballots.id"), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    private: Mapped[str] = mapped_column(String(64))


class BeleniosBallot(Base):
    __tablename__ = "belenios_ballots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ballot_id: Mapped[str] = mapped_column(ForeignKey("ballots.id"), index=True)
    ballot: Mapped[str] = mapped_column(Text)  # the JSON belenios-tool made, as published
    tracker: Mapped[str] = mapped_column(String(64))  # its SHA-256, base64 (Belenios's)
