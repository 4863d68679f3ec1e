"""Complaint economics after TARP / John Goodman: customers and revenue lost through problems.

The customer base is split by what happened to each customer in a period (TARP's "market
damage" reasoning, Goodman's "Basic Facts on Customer Complaint Behavior and the Impact of
Service on the Bottom Line"):

    N customers
      no problem                  N (1 - p)
      problem, did not complain   N p (1 - c)
      complained, satisfied       N p c s
      complained, unsatisfied     N p c (1 - s)

with p the share with a problem, c the share of those who complain and s the share of
complainers satisfied with the resolution. Each group g keeps (repurchases) with probability
r_g, so it loses N_g (1 - r_g) customers, worth N_g (1 - r_g) V (the *revenue at risk*), V the
value of a customer. Against customers without a problem (retention r_0, when known) the loss
*due to the problem* is N_g (r_0 - r_g) V.

Word of mouth (WOM): every unsatisfied customer (non-complainers and unsatisfied complainers)
tells ``told_bad`` people, every satisfied complainer tells ``told_good`` people; a share
``wom_loss_per_person_told`` of the people told about a bad experience are lost as prospects,
and ``wom_gain_per_person_told`` of those told about a good one are won, each worth V.

Value of a customer V: given, or Goodman's "painfully conservative" rule of thumb of THREE YEARS
of revenue, discounted at the cost of capital: V = sum_{y=1..3} R / (1 + d)^y (revenue at the end
of each year), computed with the quick calculator (retention 1, 3 yearly periods).

Better complaint handling (:func:`improvement`) raises c (more customers complain, so fewer
leave silently) and/or s (more complainers are satisfied); its value is the fall in customers and
value lost, WOM included.

Default figures and their sources (all overridable; every result lists them in ``sources``):

- Repurchase intentions, TARP studies for the U.S. Office of Consumer Affairs (commonly cited as
  TARP 1986, "Consumer Complaint Handling in America: An Update Study"). Problems with a
  potential loss under $5 ("small ticket"): did not complain 37%, complained and unsatisfied 46%,
  complained and satisfied 70% (satisfied quickly 95%). Losses over $100 ("large ticket"): 9%,
  19%, 54% (82%). Checked against secondary reports that attribute them to TARP (Barlow & Maul
  2000, *Emotional Value*, ch. on complaints; Fast Company, "What Makes Us Loyal II", 2003;
  CustomerServiceZone, "Link between articulated complaints and customer loyalty"); the 1986
  report itself was not available to verify. Default: the small-ticket figures (the smaller
  differences between groups, so the conservative value of complaint handling).
- Retention of customers without a problem: no figure found that could be verified; no default
  (losses "due to the problem" are then not computed).
- Share who complain: 1 in 27 customers with a problem tells the company ("only 1 of 27 ...";
  "for every customer who complains, 26 others remain silent"), attributed to TARP / the White
  House Office of Consumer Affairs by secondary sources only: UNVERIFIED against the original.
- People told: about twice as many people hear about a bad experience as about a good one, e.g.
  10 vs 5 for a soft-drink maker (Goodman, "Basic Facts on Customer Complaint Behavior", as
  summarised by secondary sources): defaults told_bad = 10, told_good = 5, UNVERIFIED against the
  original.
- Conversion of WOM into lost / won customers: no published figure found; default 0 (WOM losses
  are then only counted in people told) until the user gives a rate.
- Share with a problem and share of complainers satisfied: no defaults (company-specific).
- Customer value: three years of revenue, discounted (the rule of thumb in "Using Lifetime
  Value of a Customer in a CX Business Case: 4 Steps to Make the CFO Your Friend!",
  CustomerThink; the brief attributes it to Goodman, the article's author was not verified).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .calculator import CalculatorInput, calculate
from .cashflows import FieldChecks

DEFAULT_VALUE_YEARS = 3
DEFAULT_COMPLAIN_SHARE = 1.0 / 27.0
DEFAULT_TOLD_BAD = 10.0
DEFAULT_TOLD_GOOD = 5.0


@dataclass(frozen=True)
class Source:
    """Where a default figure comes from and whether it was checked against the original."""

    figure: str
    value: str
    citation: str
    verified: bool


@dataclass(frozen=True)
class RetentionRates:
    """Share of each group that buys again / stays (0-1). ``no_problem`` may be unknown."""

    non_complainer: float
    unsatisfied_complainer: float
    satisfied_complainer: float
    no_problem: float | None = None


_TARP_CITATION = (
    "TARP studies for the U.S. Office of Consumer Affairs (cited as TARP 1986, 'Consumer "
    "Complaint Handling in America: An Update Study'), as reported by Barlow & Maul 2000 "
    "'Emotional Value' and Fast Company 2003 'What Makes Us Loyal II'"
)
TARP_SMALL_TICKET = RetentionRates(
    non_complainer=0.37, unsatisfied_complainer=0.46, satisfied_complainer=0.70
)
"""TARP repurchase intentions, problems with a potential loss under $5."""
TARP_LARGE_TICKET = RetentionRates(
    non_complainer=0.09, unsatisfied_complainer=0.19, satisfied_complainer=0.54
)
"""TARP repurchase intentions, problems with a potential loss over $100."""
TARP_SATISFIED_QUICKLY = {"small_ticket": 0.95, "large_ticket": 0.82}
"""TARP repurchase intentions of complainers whose complaint was resolved quickly."""


@dataclass(frozen=True)
class ComplaintInput:
    """Inputs of the complaint model; shares are fractions (0-1), money in ``currency``.

    Give ``customer_value`` or ``annual_revenue_per_customer`` (then V = ``value_years`` years
    of it, discounted at ``annual_discount_rate``, times ``margin``).
    """

    customers: float
    problem_share: float
    satisfied_share: float
    complain_share: float = DEFAULT_COMPLAIN_SHARE
    retention: RetentionRates = TARP_SMALL_TICKET
    customer_value: float | None = None
    annual_revenue_per_customer: float | None = None
    margin: float = 1.0
    value_years: int = DEFAULT_VALUE_YEARS
    annual_discount_rate: float = 0.10
    told_bad: float = DEFAULT_TOLD_BAD
    told_good: float = DEFAULT_TOLD_GOOD
    wom_loss_per_person_told: float = 0.0
    wom_gain_per_person_told: float = 0.0
    currency: str = ""


@dataclass(frozen=True)
class GroupOutcome:
    group: str
    customers: float
    retention: float | None
    customers_lost: float | None
    value_at_risk: float | None
    customers_lost_due_to_problem: float | None
    value_lost_due_to_problem: float | None


@dataclass(frozen=True)
class ComplaintResult:
    currency: str
    customer_value: float
    groups: list[GroupOutcome]
    people_told_bad: float
    people_told_good: float
    wom_customers_lost: float
    wom_customers_won: float
    wom_value_lost: float
    wom_value_won: float
    customers_lost_with_problem: float
    value_at_risk_with_problem: float
    total_value_at_risk: float
    sources: list[Source] = field(default_factory=list)

    def group(self, name: str) -> GroupOutcome:
        return next(g for g in self.groups if g.group == name)


def validate(inp: ComplaintInput) -> None:
    """Raise InvalidInput naming every impossible field at once."""
    checks = FieldChecks()
    checks.number("customers", inp.customers, low=0.0)
    share = "must be between 0 and 1 (a share, not a percent)"
    for name in ("problem_share", "satisfied_share", "complain_share", "margin"):
        checks.number(name, getattr(inp, name), low=0.0, high=1.0, message=share)
    for name in ("non_complainer", "unsatisfied_complainer", "satisfied_complainer", "no_problem"):
        value = getattr(inp.retention, name)
        if value is not None or name != "no_problem":
            checks.number(f"retention.{name}", value, low=0.0, high=1.0, message=share)
    for name in ("wom_loss_per_person_told", "wom_gain_per_person_told"):
        checks.number(name, getattr(inp, name), low=0.0, high=1.0, message=share)
    checks.number("told_bad", inp.told_bad, low=0.0)
    checks.number("told_good", inp.told_good, low=0.0)
    if inp.customer_value is not None:
        checks.number("customer_value", inp.customer_value, low=0.0)
    elif inp.annual_revenue_per_customer is not None:
        checks.number("annual_revenue_per_customer", inp.annual_revenue_per_customer, low=0.0)
        checks.whole("value_years", inp.value_years, low=1, high=100)
        checks.number(
            "annual_discount_rate",
            inp.annual_discount_rate,
            low=-1.0,
            high=10.0,
            low_open=True,
            message="must be greater than -1 and at most 10 (1000%)",
        )
    else:
        checks.add("customer_value", "give customer_value or annual_revenue_per_customer")
    checks.raise_if_any("the complaint inputs are not valid")


def customer_value(inp: ComplaintInput) -> float:
    """V: as given, or ``value_years`` years of revenue x margin discounted at the end of each
    year, sum_{y=1..Y} R m / (1 + d)^y (Goodman's three-year rule of thumb by default)."""
    if inp.customer_value is not None:
        return float(inp.customer_value)
    assert inp.annual_revenue_per_customer is not None
    return calculate(
        CalculatorInput(
            average_order_value=inp.annual_revenue_per_customer,
            purchases_per_period=1.0,
            gross_margin=inp.margin,
            retention_rate=1.0,
            annual_discount_rate=inp.annual_discount_rate,
            horizon_periods=inp.value_years,
            period="year",
            timing="end",
            currency=inp.currency,
        )
    ).clv


def evaluate(inp: ComplaintInput) -> ComplaintResult:
    """Customers and value lost per group, word-of-mouth losses and gains (see module doc)."""
    validate(inp)
    value = customer_value(inp)
    n, p, c, s = inp.customers, inp.problem_share, inp.complain_share, inp.satisfied_share
    r = inp.retention
    sizes = {
        "no_problem": n * (1 - p),
        "non_complainer": n * p * (1 - c),
        "satisfied_complainer": n * p * c * s,
        "unsatisfied_complainer": n * p * c * (1 - s),
    }
    groups = [_outcome(g, sizes[g], getattr(r, g), r.no_problem, value) for g in sizes]
    told_bad = (sizes["non_complainer"] + sizes["unsatisfied_complainer"]) * inp.told_bad
    told_good = sizes["satisfied_complainer"] * inp.told_good
    wom_lost = told_bad * inp.wom_loss_per_person_told
    wom_won = told_good * inp.wom_gain_per_person_told
    problem_groups = [g for g in groups if g.group != "no_problem"]
    lost = sum(g.customers_lost or 0.0 for g in problem_groups)
    at_risk = sum(g.value_at_risk or 0.0 for g in problem_groups)
    return ComplaintResult(
        currency=inp.currency,
        customer_value=value,
        groups=groups,
        people_told_bad=told_bad,
        people_told_good=told_good,
        wom_customers_lost=wom_lost,
        wom_customers_won=wom_won,
        wom_value_lost=wom_lost * value,
        wom_value_won=wom_won * value,
        customers_lost_with_problem=lost,
        value_at_risk_with_problem=at_risk,
        total_value_at_risk=at_risk + (wom_lost - wom_won) * value,
        sources=sources_used(inp),
    )


def _outcome(
    group: str, size: float, retention: float | None, no_problem: float | None, value: float
) -> GroupOutcome:
    if retention is None:
        return GroupOutcome(group, size, None, None, None, None, None)
    lost = size * (1 - retention)
    due = None if no_problem is None or group == "no_problem" else size * (no_problem - retention)
    return GroupOutcome(
        group=group,
        customers=size,
        retention=retention,
        customers_lost=lost,
        value_at_risk=lost * value,
        customers_lost_due_to_problem=due,
        value_lost_due_to_problem=None if due is None else due * value,
    )


@dataclass(frozen=True)
class Improvement:
    """Better complaint handling: before and after, and what it is worth (currency)."""

    before: ComplaintResult
    after: ComplaintResult
    customers_kept: float
    value_gained: float


def improvement(
    inp: ComplaintInput,
    *,
    complain_share: float | None = None,
    satisfied_share: float | None = None,
) -> Improvement:
    """Value of raising the complaint share and/or the satisfied share to the given levels.

    value gained = (customers lost before - after) V + (net WOM value before - after); negative
    if the new levels are worse.
    """
    after_inp = replace(
        inp,
        complain_share=inp.complain_share if complain_share is None else complain_share,
        satisfied_share=inp.satisfied_share if satisfied_share is None else satisfied_share,
    )
    before, after = evaluate(inp), evaluate(after_inp)
    return Improvement(
        before=before,
        after=after,
        customers_kept=before.customers_lost_with_problem - after.customers_lost_with_problem,
        value_gained=before.total_value_at_risk - after.total_value_at_risk,
    )


def sources_used(inp: ComplaintInput) -> list[Source]:
    """The sources of the default figures this input relies on (overridden ones are omitted)."""
    out = []
    if inp.retention in (TARP_SMALL_TICKET, TARP_LARGE_TICKET):
        ticket = "under $5" if inp.retention == TARP_SMALL_TICKET else "over $100"
        r = inp.retention
        out.append(
            Source(
                figure=f"repurchase intentions, problems with potential loss {ticket}",
                value=(
                    f"non-complainers {r.non_complainer:.0%}, unsatisfied complainers "
                    f"{r.unsatisfied_complainer:.0%}, satisfied complainers "
                    f"{r.satisfied_complainer:.0%}"
                ),
                citation=_TARP_CITATION + "; the 1986 report itself not verified",
                verified=False,
            )
        )
    if inp.complain_share == DEFAULT_COMPLAIN_SHARE:
        out.append(
            Source(
                figure="share of customers with a problem who complain",
                value="1 in 27",
                citation="attributed to TARP / White House Office of Consumer Affairs by "
                "secondary sources; not verified against the original",
                verified=False,
            )
        )
    if inp.told_bad == DEFAULT_TOLD_BAD and inp.told_good == DEFAULT_TOLD_GOOD:
        out.append(
            Source(
                figure="people told about a bad / good experience",
                value="10 / 5",
                citation="Goodman, 'Basic Facts on Customer Complaint Behavior and the Impact "
                "of Service on the Bottom Line' (soft-drink example), via secondary summaries; "
                "not verified against the original",
                verified=False,
            )
        )
    if inp.customer_value is None:
        out.append(
            Source(
                figure="customer value",
                value=f"{inp.value_years} years of revenue, discounted",
                citation="Goodman's conservative rule of thumb (about three years of revenue, "
                "discounted), as summarised in CustomerThink 'Using Lifetime Value of a "
                "Customer in a CX Business Case: 4 Steps to Make the CFO Your Friend!'; "
                "not verified against the original",
                verified=False,
            )
        )
    if inp.wom_loss_per_person_told == 0 and inp.wom_gain_per_person_told == 0:
        out.append(
            Source(
                figure="conversion of word of mouth into lost / won customers",
                value="0 (no published figure found)",
                citation="none",
                verified=False,
            )
        )
    return out
