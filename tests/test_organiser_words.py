"""Organisers' commands in every shipped language: DIFFUSER / DIFUNDIR beside BROADCAST,
PROGRAMME / PROGRAMA beside SCHEDULE, pour: / para: beside to: and the audiences in each
language. Any organiser may use any language's words; the messages name the reader's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from flows.organiser import parse_broadcast, valid_audience
from store.organisers import Broadcast, BroadcastPreview
from tests.test_broadcast import add_member
from tests.test_organisers import (  # noqa: F401  (fixture)
    NOW,
    ORGANISER_CHAT,
    ORGANISER_PHONE,
    audit_kinds,
    calendar,  # the organisers' calendar, which every test's relay runs
    panel,
    replies_to,
    say,
    total,
)


async def last(db, address) -> str:
    return (await replies_to(db, address))[-1]


async def sent_broadcast(db) -> Broadcast:
    async with db.sessions() as session:
        return (await session.execute(select(Broadcast))).scalar_one()


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("to:reserve Hello", ("reserve", "Hello")),
        ("pour:Sélection Bonjour à tous", ("selected", "Bonjour à tous")),
        ("PARA:reserva Hola", ("reserve", "Hola")),
        ("pour:groupe:Nord Salle B", ("group:nord", "Salle B")),
        ("para:idioma:es Hola", ("lang:es", "Hola")),
        ("to:langue:fr Salut", ("lang:fr", "Salut")),  # words of two languages mixed
        ("para:todos Hola", ("all", "Hola")),
        ("Tous en salle B", ("all", "Tous en salle B")),  # no prefix: the whole text
        ("pour:amis Salut", ("amis", "Salut")),  # unknown: kept as typed, then refused
    ],
)
def test_audience_words_in_every_language_mean_the_same_audience(typed, parsed):
    assert parse_broadcast(typed) == parsed


def test_only_english_audiences_come_out_of_parsing_as_valid():
    assert valid_audience("group:nord") and valid_audience("lang:es")
    assert not valid_audience("amis") and not valid_audience("group:")
    assert not valid_audience("reserva") and not valid_audience("all:x")


async def test_french_organiser_broadcasts_with_diffuser_pour_and_envoyer(db, relay):
    await panel(db)  # two English members on Telegram, one French reserve by SMS
    await say(relay, ORGANISER_CHAT, "FRANCAIS")
    await say(relay, ORGANISER_CHAT, "DIFFUSER pour:reserve Rappel : séance samedi")
    preview = await last(db, ORGANISER_CHAT)
    assert preview.splitlines() == [
        "Aperçu de votre message à reserve : 1 personne (0 sur Telegram, 1 par SMS).",
        "",
        "Rappel : séance samedi",
        "",
        "Répondez ENVOYER pour l'envoyer, ou ABANDONNER pour l'abandonner.",
    ]
    await say(relay, ORGANISER_CHAT, "ENVOYER", now=NOW + timedelta(minutes=1))
    assert await last(db, ORGANISER_CHAT) == "Envoi de votre message à 1 personne."
    row = await sent_broadcast(db)
    assert (row.audience, row.recipients, row.text) == ("reserve", 1, "Rappel : séance samedi")


async def test_french_organiser_broadcasts_by_sms_and_confirms_with_envoyer_and_the_code(db, relay):
    await panel(db)
    await say(relay, ORGANISER_PHONE, "FRANCAIS", channel="sms")
    await say(relay, ORGANISER_PHONE, "diffuser pour:sélection Salle B demain", channel="sms")
    preview = await last(db, ORGANISER_PHONE)
    assert preview.startswith("Aperçu de votre message à selection : 2 personnes")
    code = re.search(r"Répondez ENVOYER (\d{6}) pour l'envoyer à 2 personnes", preview).group(1)
    await say(relay, ORGANISER_PHONE, f"ENVOYER {code}", channel="sms")
    assert await last(db, ORGANISER_PHONE) == "Envoi de votre message à 2 personnes."
    row = await sent_broadcast(db)
    assert (row.audience, row.origin, row.text) == ("selected", "sms", "Salle B demain")


async def test_spanish_organiser_broadcasts_to_one_language_with_difundir(db, relay):
    await panel(db, reserve_fr_sms=False)
    async with db.sessions.begin() as session:
        await add_member(session, language="es")
    await say(relay, ORGANISER_CHAT, "ESPANOL")
    await say(relay, ORGANISER_CHAT, "/difundir para:idioma:es La sesión empieza a las 10")
    preview = await last(db, ORGANISER_CHAT)
    assert preview.startswith(
        "Vista previa de su mensaje a idioma:es: 1 persona (1 en Telegram, 0 por SMS)."
    )
    assert preview.endswith("Responda ENVIAR para enviarlo, o DESCARTAR para descartarlo.")
    await say(relay, ORGANISER_CHAT, "enviar")
    assert await last(db, ORGANISER_CHAT) == "Enviando su mensaje a 1 persona."
    assert (await sent_broadcast(db)).audience == "lang:es"


async def test_programme_and_programa_show_the_schedule(db, relay):
    await panel(db)
    await say(relay, ORGANISER_CHAT, "FRANCAIS")
    await say(relay, ORGANISER_CHAT, "PROGRAMME")
    listing = (await last(db, ORGANISER_CHAT)).splitlines()
    assert listing[0] == "À venir :" and "Ouverture" in listing[1] and len(listing) == 3
    await say(relay, ORGANISER_PHONE, "programa", channel="sms")  # an English organiser
    assert (await last(db, ORGANISER_PHONE)).startswith("Coming up:\nSession 1: Opening")
    assert (await audit_kinds(db)).count("organiser.schedule_viewed") == 2

    # A sentence that starts with the word is not asking for the schedule.
    await say(relay, ORGANISER_CHAT, "Programme de demain ?")
    assert not (await last(db, ORGANISER_CHAT)).startswith("À venir")
    assert (await audit_kinds(db)).count("organiser.schedule_viewed") == 2


async def test_mistakes_are_answered_with_the_french_words(db, relay):
    await panel(db, reserve_fr_sms=False)
    await say(relay, ORGANISER_CHAT, "FRANCAIS")
    await say(relay, ORGANISER_CHAT, "DIFFUSER pour:amis Bonjour")
    assert await last(db, ORGANISER_CHAT) == (
        "Je ne connais pas le public « amis ». Utilisez tous, selection, reserve, "
        "groupe:NOM ou langue:CODE."
    )
    await say(relay, ORGANISER_CHAT, "/diffuser")
    assert await last(db, ORGANISER_CHAT) == (
        "Pour écrire à l'assemblée, tapez /diffuser suivi du texte. Commencez par "
        "pour:selection, pour:reserve, pour:groupe:NOM ou pour:langue:CODE pour toucher "
        "moins de personnes."
    )
    await say(relay, ORGANISER_CHAT, "diffuser pour:groupe:nord Bonjour")
    assert await last(db, ORGANISER_CHAT) == (
        "Personne dans « groupe:nord » n'est joignable : il n'y a rien à envoyer."
    )
    assert await total(db, BroadcastPreview) == 0


async def test_english_words_still_work_for_everyone(db, relay):
    await panel(db)
    await say(relay, ORGANISER_CHAT, "FRANCAIS")
    await say(relay, ORGANISER_CHAT, "/broadcast to:selected Salut")
    assert (await last(db, ORGANISER_CHAT)).startswith(
        "Aperçu de votre message à selection : 2 personnes"
    )
    await say(relay, ORGANISER_CHAT, "DISCARD")
    await say(relay, ORGANISER_CHAT, "/schedule")
    assert (await last(db, ORGANISER_CHAT)).startswith("À venir :")
    await say(relay, ORGANISER_PHONE, "BROADCAST to:lang:fr Salle B", channel="sms")
    assert "to lang:fr: 1 person (0 on Telegram, 1 by SMS)" in await last(db, ORGANISER_PHONE)


async def test_the_new_words_give_non_organisers_nothing_and_take_nothing_from_them(db, relay):
    await panel(db)
    answers = {}
    for stranger, english, translated in (
        ("9990001", "/broadcast Free pizza", "DIFFUSER Pizza gratuite"),
        ("9990002", "/schedule", "/programa"),
    ):
        await say(relay, stranger, "hello")
        await say(relay, stranger, english)
        await say(relay, "8" + stranger, "hello")
        await say(relay, "8" + stranger, translated)
        answers[english] = await last(db, stranger)
        assert await last(db, "8" + stranger) == answers[english]  # the usual answer
    assert "Preview" not in str(answers) and "Coming up" not in str(answers)
    assert (await audit_kinds(db)).count("organiser.command_refused") == 4
    assert await total(db, BroadcastPreview) == 0

    # A member of the panel saying they are late in French is still heard as late.
    async with db.sessions.begin() as session:
        await add_member(session, language="fr", address="7770001")
    await say(relay, "7770001", "En retard, programme chargé")
    assert await last(db, "7770001") == (
        "Merci de nous avoir prévenus. L'équipe organisatrice est informée."
    )
