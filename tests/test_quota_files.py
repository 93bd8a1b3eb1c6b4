"""Quotas from the stratification app's categories CSV, and targets as shares of the panel."""

from __future__ import annotations

import pytest

from bot.services import draw
from bot.services.draw import Bounds, DrawRecordError, rules_for

# The categories file published with example_small_20 (Flanigan et al., Nature 2021,
# replication data), byte for byte: the stratification app's layout.
PUBLISHED_CATEGORIES = (
    "category,feature,min,max\n"
    "gender,female,9,20\n"
    "gender,male,9,20\n"
    "leaning,liberal,9,20\n"
    "leaning,conservative,9,20"
)
ASSEMBLY = {"selection": {"panel_size": 40, "reserve_size": 5, "one_per_household": True}}


def test_the_published_categories_file_is_read_as_is(tmp_path):
    path = tmp_path / "categories.csv"
    path.write_text(PUBLISHED_CATEGORIES, encoding="utf-8")
    rules = rules_for({"selection": {"panel_size": 20}}, path)
    assert rules.panel_size == 20 and rules.reserve_size == 0
    assert rules.quotas == {
        "gender": {"female": Bounds(9, 20), "male": Bounds(9, 20)},
        "leaning": {"liberal": Bounds(9, 20), "conservative": Bounds(9, 20)},
    }


def test_shares_flex_limits_and_sizes_from_the_assembly(tmp_path):
    path = tmp_path / "categories.csv"
    path.write_text(
        "category,name,min,max,min_flex,max_flex\n"
        "gender,woman,48%,48%,15,25\n"  # 19.2 of 40 seats: 19 to 20
        "gender,man,19,21,,\n"
        "gender,other,0,2,0,4\n"
        "age,under 40,0.5,,,\n"  # a bare share in min: no, a whole number is needed
    )
    with pytest.raises(DrawRecordError, match=r"line 5: min '0.5' and max '' must be whole"):
        rules_for(ASSEMBLY, path)
    path.write_text(
        "category,name,min,max,min_flex,max_flex\n"
        "gender,woman,48%,48%,15,25\n"
        "gender,man,19,21,,\n"
        "gender,other,0,2,0,4\n"
    )
    rules = rules_for(ASSEMBLY, path)
    assert rules.quotas["gender"] == {
        "woman": Bounds(19, 20),
        "man": Bounds(19, 21),
        "other": Bounds(0, 2),
    }
    assert (rules.panel_size, rules.reserve_size, rules.one_per_household) == (40, 5, True)
    assert rules.flex == {"gender": {"woman": Bounds(15, 25), "other": Bounds(0, 4)}}

    path.write_text("category,name,min,max,min_flex\ngender,woman,10,12,11\n")
    with pytest.raises(DrawRecordError, match="line 2: the flex limits 11-40 must contain min 10"):
        rules_for(ASSEMBLY, path)
    with pytest.raises(DrawRecordError, match="not the panel size"):
        rules_for({"selection": {}}, path)


def test_a_share_column_and_percentages_in_toml(tmp_path):
    path = tmp_path / "shares.csv"
    path.write_text("category,value,share\nregion,north,30%\nregion,south,0.7\n")
    assert rules_for(ASSEMBLY, path).quotas == {
        "region": {"north": Bounds(12, 12), "south": Bounds(28, 28)}
    }
    assert draw.quota_bounds({"g": {"w": "48%", "m": {"share": "52%"}}}, 40) == {
        "g": {"w": Bounds(19, 20), "m": Bounds(20, 21)}
    }
    toml = tmp_path / "quotas.toml"
    toml.write_text('panel_size = 25\n[quotas.gender]\nwoman = "50%"\nman = "50%"\n')
    assert rules_for(None, toml).quotas["gender"]["woman"] == Bounds(12, 13)
