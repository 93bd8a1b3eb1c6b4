"""The demo makes room for a visitor who was not drawn, whatever the draw gave: one member
declines when the visitor can take their place; when every such swap breaks a quota, two
decline and the visitor comes in with another registrant."""

from __future__ import annotations

import pytest

from bot.services.demo.places import make_room
from bot.services.draw.rules import Bounds

ONE_EACH = {
    "gender": {"woman": Bounds(1, 1), "man": Bounds(1, 1)},
    "region": {"north": Bounds(1, 1), "south": Bounds(1, 1)},
}
PEOPLE = {
    "V": {"gender": "woman", "region": "south"},  # the visitor
    "P1": {"gender": "woman", "region": "north"},
    "P2": {"gender": "man", "region": "south"},
    "P3": {"gender": "woman", "region": "south"},
    "Q1": {"gender": "woman", "region": "north"},
    "Q2": {"gender": "man", "region": "north"},
}

CASES = [
    # (panel, not drawn, who declines, who is called up beside the visitor)
    pytest.param(["Q2", "P3"], ["P1"], ["P3"], [], id="the one alike steps aside"),
    pytest.param(["P1", "P2"], ["Q1", "Q2"], ["P1", "P2"], ["Q2"], id="no swap fits: two go"),
    pytest.param(["P1", "P2"], ["Q1"], [], [], id="nobody can fill the second place"),
]


@pytest.mark.parametrize(("panel", "others", "leaving", "joining"), CASES)
def test_room_is_made_with_every_quota_kept(panel, others, leaving, joining):
    assert make_room(PEOPLE, ONE_EACH, panel, "V", others) == (leaving, joining)
