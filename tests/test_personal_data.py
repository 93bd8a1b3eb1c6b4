"""The inventory of personal data names every table, so none is forgotten by erasure or
the export; and what it blanks are real columns."""

from store.personal_data import BLANK, INVENTORY, NOT_PERSONAL
from store.schema import METADATA


def test_every_table_is_in_the_inventory_or_said_to_hold_no_one():
    listed = {place.name for place in INVENTORY} | set(NOT_PERSONAL)
    missing = sorted(set(METADATA.tables) - listed)
    assert missing == [], f"say in store/personal_data.py what {missing} hold about people"


def test_what_erasure_blanks_are_columns_of_their_tables():
    for place in INVENTORY:
        if place.action == BLANK:
            assert place.blank and set(place.blank) <= set(place.table.columns.keys())
        if place.by == "contact":
            assert "contact_id" in place.table.columns
