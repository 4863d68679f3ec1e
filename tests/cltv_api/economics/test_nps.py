"""NPS: classification, the score, group values and the value of moving customers."""

from __future__ import annotations

import numpy as np
import pytest

from cltv_api.economics.nps import (
    GroupEconomics,
    NpsCounts,
    NpsProfile,
    counts_from_scores,
    group_stream,
    moves_for_shift,
    value_groups,
    value_of_shift,
)
from cltv_api.errors import InvalidInput


def test_scores_are_classified_nine_ten_seven_eight_zero_six() -> None:
    # Promoters 10, 9, 9; passives 8, 7; detractors 6, 0, 5 -> NPS 100 (3 - 3) / 8 = 0.
    counts = counts_from_scores([10, 9, 8, 7, 6, 0, 5, 9])
    assert (counts.promoters, counts.passives, counts.detractors) == (3, 2, 3)
    assert counts.nps == 0.0


def test_nps_matches_published_example() -> None:
    # DELA annual report 2018, glossary "Net Promotor Score": 30% promoters and 20% detractors
    # give an NPS of +10.
    assert NpsCounts(promoters=30, passives=50, detractors=20).nps == pytest.approx(10.0)


def test_bad_scores_name_the_rows() -> None:
    with pytest.raises(InvalidInput) as info:
        counts_from_scores([10, 11, 3.5, float("nan"), -1])
    assert [e.row for e in info.value.errors] == [1, 2, 3, 4]
    assert {e.field for e in info.value.errors} == {"scores"}


def _profile(new_customer_value: float | None = 500.0) -> NpsProfile:
    return NpsProfile(
        counts=NpsCounts(promoters=50, passives=30, detractors=20),
        promoters=GroupEconomics(retention=0.8, margin_per_period=100, referrals_per_period=0.1),
        passives=GroupEconomics(retention=0.5, margin_per_period=80),
        detractors=GroupEconomics(retention=0.2, margin_per_period=50),
        new_customer_value=new_customer_value,
    )


def test_group_values_by_hand() -> None:
    # No discounting, unlimited horizon, margin at the start of each period: CLTV = v / (1 - r).
    # Promoters: own 100 / 0.2 = 500, referrals 0.1 x 500 / 0.2 = 250 -> 750.
    # Passives 80 / 0.5 = 160; detractors 50 / 0.8 = 62.5.
    res = value_groups(_profile(), annual_discount_rate=0.0, currency="EUR")
    assert res.group("promoters").own_value == pytest.approx(500)
    assert res.group("promoters").referral_value == pytest.approx(250)
    assert res.group("promoters").total_value == pytest.approx(750)
    assert res.group("passives").total_value == pytest.approx(160)
    assert res.group("detractors").total_value == pytest.approx(62.5)
    assert res.value_detractor_to_passive == pytest.approx(97.5)
    assert res.value_detractor_to_promoter == pytest.approx(687.5)
    assert res.value_passive_to_promoter == pytest.approx(590)
    assert res.nps == pytest.approx(30.0)
    assert res.currency == "EUR"


def test_default_new_customer_value_is_share_weighted_own_value() -> None:
    # 0.5 x 500 + 0.3 x 160 + 0.2 x 62.5 = 310.5 -> promoter referrals 0.1 x 310.5 / 0.2.
    res = value_groups(_profile(None), annual_discount_rate=0.0)
    assert res.new_customer_value == pytest.approx(310.5)
    assert res.group("promoters").referral_value == pytest.approx(155.25)


def test_group_value_uses_the_calculator_margin_multiple() -> None:
    # Gupta & Lehmann (2005), Table 2.2: margin multiple r / (1 + i - r) = 2.5 for r = 80%,
    # i = 12% a year; with cash at the end of each year CLTV x r = 2.5 x margin.
    profile = NpsProfile(
        counts=NpsCounts(1, 1, 1),
        promoters=GroupEconomics(0.8, 1000.0),
        passives=GroupEconomics(0.8, 1000.0),
        detractors=GroupEconomics(0.8, 1000.0),
        new_customer_value=0.0,
    )
    res = value_groups(profile, annual_discount_rate=0.12, period="year", timing="end")
    assert res.group("promoters").total_value * 0.8 == pytest.approx(2500.0)


def test_group_stream_discounts_to_the_group_value() -> None:
    profile = _profile()
    res = value_groups(profile, annual_discount_rate=0.1, horizon_periods=24)
    d = res.discount_rate_per_period
    stream = group_stream(profile.promoters, res.new_customer_value, 24)
    factors = (1 + d) ** -np.arange(24.0)  # start timing: period 1 undiscounted
    assert float(stream @ factors) == pytest.approx(res.group("promoters").total_value, rel=1e-12)


def test_shift_moves_detractors_to_passives_first_then_passives_up() -> None:
    counts = NpsCounts(promoters=30, passives=50, detractors=20)  # NPS 10
    assert moves_for_shift(counts, 10)[:3] == pytest.approx((10, 0, 0))
    # 25 points: all 20 detractors to passives (20 points), then 5 passives to promoters.
    assert moves_for_shift(counts, 25)[:3] == pytest.approx((20, 0, 5))
    # Half of the moved detractors become promoters: each is worth 1.5 points -> 10 moved.
    assert moves_for_shift(counts, 15, to_promoter_share=0.5)[:3] == pytest.approx((5, 5, 0))


def test_value_of_shift_by_hand() -> None:
    # 25 points on 30/50/20: 20 detractors -> passives (97.5 each), 5 passives -> promoters (590).
    profile = NpsProfile(
        counts=NpsCounts(promoters=30, passives=50, detractors=20),
        promoters=_profile().promoters,
        passives=_profile().passives,
        detractors=_profile().detractors,
        new_customer_value=500.0,
    )
    moves = value_of_shift(profile, 25, annual_discount_rate=0.0)
    assert moves.value_gained == pytest.approx(20 * 97.5 + 5 * 590)
    assert moves.nps_before == pytest.approx(10)
    assert moves.nps_after == pytest.approx(35)
    assert "passives first" in moves.assumption


def test_unreachable_shift_names_points() -> None:
    counts = NpsCounts(promoters=30, passives=50, detractors=20)
    with pytest.raises(InvalidInput) as info:
        moves_for_shift(counts, 95)  # at most 20 + 70 = 90 points
    assert info.value.errors[0].field == "points"
    with pytest.raises(InvalidInput):
        moves_for_shift(counts, 40, to_promoter_share=0.5)  # 20 detractors give 30 points


def test_invalid_profile_names_each_field() -> None:
    profile = NpsProfile(
        counts=NpsCounts(promoters=-1, passives=0, detractors=0),
        promoters=GroupEconomics(retention=1.5, margin_per_period=1),
        passives=GroupEconomics(retention=0.5, margin_per_period=float("nan")),
        detractors=GroupEconomics(retention=0.5, margin_per_period=1, referrals_per_period=-2),
    )
    with pytest.raises(InvalidInput) as info:
        value_groups(profile)
    assert {e.field for e in info.value.errors} == {
        "counts.promoters",
        "promoters.retention",
        "passives.margin_per_period",
        "detractors.referrals_per_period",
    }


def test_a_profile_needs_respondents() -> None:
    empty = NpsProfile(
        counts=NpsCounts(0, 0, 0),
        promoters=GroupEconomics(0.5, 1.0),
        passives=GroupEconomics(0.5, 1.0),
        detractors=GroupEconomics(0.5, 1.0),
    )
    with pytest.raises(InvalidInput) as info:
        value_groups(empty)
    assert [e.field for e in info.value.errors] == ["counts"]


def test_full_retention_without_discounting_needs_a_horizon() -> None:
    profile = NpsProfile(
        counts=NpsCounts(1, 1, 1),
        promoters=GroupEconomics(1.0, 1.0),
        passives=GroupEconomics(0.5, 1.0),
        detractors=GroupEconomics(0.5, 1.0),
    )
    with pytest.raises(InvalidInput) as info:
        value_groups(profile, annual_discount_rate=0.0)
    assert info.value.errors[0].field == "promoters.retention"
    assert value_groups(profile, annual_discount_rate=0.0, horizon_periods=10).group(
        "promoters"
    ).own_value == pytest.approx(10.0)
