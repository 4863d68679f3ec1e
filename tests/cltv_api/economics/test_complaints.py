"""Complaint economics (TARP / Goodman): groups, losses, word of mouth and better handling."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cltv_api.economics.complaints import (
    TARP_LARGE_TICKET,
    TARP_SATISFIED_QUICKLY,
    TARP_SMALL_TICKET,
    ComplaintInput,
    RetentionRates,
    customer_value,
    evaluate,
    improvement,
)
from cltv_api.errors import InvalidInput


def _inp(**kw: object) -> ComplaintInput:
    base: dict[str, object] = {
        "customers": 10_000,
        "problem_share": 0.25,
        "complain_share": 0.2,
        "satisfied_share": 0.5,
        "customer_value": 100.0,
        "currency": "USD",
    }
    base.update(kw)
    return ComplaintInput(**base)  # type: ignore[arg-type]


def test_tarp_repurchase_figures_are_the_published_ones() -> None:
    # TARP, as reported by Barlow & Maul (2000) and Fast Company (2003): under $5 -> 37% / 46% /
    # 70% (95% if resolved quickly); over $100 -> 9% / 19% / 54% (82%).
    assert (
        TARP_SMALL_TICKET.non_complainer,
        TARP_SMALL_TICKET.unsatisfied_complainer,
        TARP_SMALL_TICKET.satisfied_complainer,
    ) == (0.37, 0.46, 0.70)
    assert (
        TARP_LARGE_TICKET.non_complainer,
        TARP_LARGE_TICKET.unsatisfied_complainer,
        TARP_LARGE_TICKET.satisfied_complainer,
    ) == (0.09, 0.19, 0.54)
    assert TARP_SATISFIED_QUICKLY == {"small_ticket": 0.95, "large_ticket": 0.82}


def test_groups_and_losses_by_hand() -> None:
    # 10,000 customers, 25% with a problem, 20% of those complain, half of complainers satisfied:
    # no problem 7,500; non-complainers 2,000; satisfied 250; unsatisfied 250.
    # Lost (small ticket): 2,000 x 0.63 = 1,260; 250 x 0.30 = 75; 250 x 0.54 = 135 -> 1,470,
    # worth 147,000 at 100 each.
    res = evaluate(_inp())
    sizes = {g.group: g.customers for g in res.groups}
    assert sizes == pytest.approx(
        {
            "no_problem": 7500,
            "non_complainer": 2000,
            "satisfied_complainer": 250,
            "unsatisfied_complainer": 250,
        }
    )
    assert res.group("non_complainer").customers_lost == pytest.approx(1260)
    assert res.group("satisfied_complainer").customers_lost == pytest.approx(75)
    assert res.group("unsatisfied_complainer").customers_lost == pytest.approx(135)
    assert res.customers_lost_with_problem == pytest.approx(1470)
    assert res.value_at_risk_with_problem == pytest.approx(147_000)
    # No-problem retention unknown: its losses and losses "due to the problem" are not computed.
    assert res.group("no_problem").customers_lost is None
    assert res.group("non_complainer").customers_lost_due_to_problem is None
    assert res.currency == "USD"


def test_word_of_mouth_by_hand() -> None:
    # Unsatisfied (2,000 + 250) tell 10 each = 22,500 people; satisfied 250 tell 5 = 1,250.
    # 1% of the bad news loses a customer (225 -> 22,500), 2% of the good wins one (25 -> 2,500):
    # total at risk 147,000 + 22,500 - 2,500 = 167,000.
    res = evaluate(_inp(wom_loss_per_person_told=0.01, wom_gain_per_person_told=0.02))
    assert res.people_told_bad == pytest.approx(22_500)
    assert res.people_told_good == pytest.approx(1_250)
    assert res.wom_customers_lost == pytest.approx(225)
    assert res.wom_value_won == pytest.approx(2_500)
    assert res.total_value_at_risk == pytest.approx(167_000)


def test_losses_due_to_the_problem_need_no_problem_retention() -> None:
    # With no-problem retention 0.8: non-complainers lose 2,000 x (0.8 - 0.37) = 860 more than
    # they would have without a problem; satisfied complainers 250 x (0.8 - 0.7) = 25.
    rates = replace(TARP_SMALL_TICKET, no_problem=0.8)
    res = evaluate(_inp(retention=rates))
    assert res.group("non_complainer").customers_lost_due_to_problem == pytest.approx(860)
    assert res.group("satisfied_complainer").value_lost_due_to_problem == pytest.approx(2500)
    assert res.group("no_problem").customers_lost == pytest.approx(1500)


def test_default_customer_value_is_three_years_of_discounted_revenue() -> None:
    # 1,000 a year at 10%: 1000/1.1 + 1000/1.21 + 1000/1.331 = 2,486.85.
    inp = _inp(customer_value=None, annual_revenue_per_customer=1000.0)
    assert customer_value(inp) == pytest.approx(2486.852, rel=1e-6)
    assert customer_value(replace(inp, margin=0.4)) == pytest.approx(0.4 * 2486.852, rel=1e-6)


def test_better_handling_is_worth_the_customers_it_keeps() -> None:
    # Satisfied share 50% -> 80%: complainers 500 -> 400 satisfied (lose 30%) and 100
    # unsatisfied (lose 54%): 120 + 54 = 174 lost instead of 75 + 135 = 210 -> 36 kept, 3,600.
    better = improvement(_inp(), satisfied_share=0.8)
    assert better.customers_kept == pytest.approx(36)
    assert better.value_gained == pytest.approx(3600)
    # More complaints (20% -> 40%): 1,500 silent (lose 945), 500 satisfied (150), 500
    # unsatisfied (270) -> 1,365 lost instead of 1,470: 105 kept.
    more_voice = improvement(_inp(), complain_share=0.4)
    assert more_voice.customers_kept == pytest.approx(105)


def test_better_handling_counts_word_of_mouth() -> None:
    # 1% of people told about a bad experience are lost: 150 fewer unsatisfied complainers tell
    # 10 each -> 15 fewer lost (1,500), plus 36 kept directly (3,600).
    inp = _inp(wom_loss_per_person_told=0.01)
    assert improvement(inp, satisfied_share=0.8).value_gained == pytest.approx(3600 + 1500)


def test_defaults_carry_their_sources_and_flags() -> None:
    res = evaluate(
        ComplaintInput(
            customers=100, problem_share=0.3, satisfied_share=0.5, annual_revenue_per_customer=10.0
        )
    )
    figures = {s.figure: s for s in res.sources}
    assert not figures["share of customers with a problem who complain"].verified
    # a secondary source's rule of thumb: never presented as checked against an original
    assert not figures["customer value"].verified
    assert "not verified" in figures["customer value"].citation
    assert (
        "TARP" in figures["repurchase intentions, problems with potential loss under $5"].citation
    )
    assert (
        "no published figure"
        in figures["conversion of word of mouth into lost / won customers"].value
    )
    overridden = evaluate(_inp(retention=RetentionRates(0.5, 0.5, 0.5), told_bad=3.0))
    assert all(
        "repurchase" not in s.figure and "people told" not in s.figure for s in overridden.sources
    )


def test_invalid_inputs_name_every_field() -> None:
    with pytest.raises(InvalidInput) as info:
        evaluate(
            ComplaintInput(
                customers=-5,
                problem_share=1.5,
                satisfied_share=float("nan"),
                retention=RetentionRates(1.2, 0.5, 0.5),
            )
        )
    assert {e.field for e in info.value.errors} == {
        "customers",
        "problem_share",
        "satisfied_share",
        "retention.non_complainer",
        "customer_value",
    }
