"""The business-case workbook (XLSX): inputs as named cells, cash flows as LIVE formulas.

Sheets:

* ``Inputs``: every input of the case, one per row, with its label, value and unit; each value
  cell carries a workbook-level defined name (``in_one_off_cost``, ``in_s1_points``...), which
  is what the formulas refer to. Change an input and the workbook recomputes.
* ``Cash flows``: one row per period (0 = today). Discount factors, survival with and without the
  initiative, the value of every segment, costs, net cash flow, present values and cumulative
  sums are formulas. The only numbers on it are the expected margins per period of a baseline
  fitted from transaction data (a model's output; see
  :func:`cltv_api.economics.business_case.baseline_from_model`).
* ``Results``: NPV, PV of benefits and costs, ROI and (discounted) payback as formulas over the
  cash flows; IRR, the break-even effect size and the Monte Carlo percentiles are the API's
  values, labelled as such.
* ``Sensitivity``: the tornado bars (API values).

The formulas are those of :mod:`cltv_api.economics.business_case` (see its module docstring):
with r_t the baseline retention out of period t, s the start period and "live" meaning t > s,

    r'_t = 1 - max(0, min(1, (1 - r_t)(1 - share) - points))  if live, else r_t
    S_t = prod_{i<t} r_i,   S'_t = prod_{i<t} r'_i,   m'_t = m (1 + spend)(1 + frequency) if live
    baseline_t = N m S_t,   with_t = N m'_t S'_t + NPS_t + referrals_t
    DF_t = (1 + d)^-(t - [t > 0 and timing = start]),   d = (1 + annual)^(years per period) - 1

and NPS and referral terms as documented there. Only functions every spreadsheet has are used
(IF, MIN, MAX, ABS, AND, OR, SUM, SUMPRODUCT), so Excel and LibreOffice agree.

Text that comes from the caller (case and segment names) is always written as text, never as a
formula, whatever its first character (no formula injection).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.worksheet import Worksheet

from cltv_api.economics import business_case as bc
from cltv_api.economics.calculator import PERIOD_YEARS

INPUTS, FLOWS, RESULTS, SENSITIVITY = "Inputs", "Cash flows", "Results", "Sensitivity"
FIRST_ROW = 2  # period 0 on the cash-flow sheet
BOLD = Font(bold=True)

# Labels of the Results sheet (column A); column B holds the value.
NPV = "NPV"
PV_BENEFITS = "PV of incremental value"
PV_COSTS = "PV of costs"
ROI = "ROI"
PAYBACK = "Payback"
DISCOUNTED_PAYBACK = "Discounted payback"
TOTAL_INCREMENTAL = "Total incremental value (undiscounted)"
TOTAL_COSTS = "Total costs (undiscounted)"
TOTAL_NET = "Total net cash flow (undiscounted)"
NOT_REACHED = "not reached"


def _text(cell: Cell, value: str) -> None:
    """Write ``value`` as text even when it starts with ``=`` (never a formula)."""
    cell.value = value
    cell.data_type = "s"


# ------------------------------------------------------------------------------ inputs sheet
@dataclass
class _Inputs:
    """Writes the Inputs sheet row by row and defines a name for each value cell."""

    wb: Workbook
    ws: Worksheet
    row: int = 1

    def title(self, text: str) -> None:
        _text(self.ws.cell(self.row, 1), text)
        self.ws.cell(self.row, 1).font = BOLD
        self.row += 2

    def section(self, text: str) -> None:
        self.row += 1
        _text(self.ws.cell(self.row, 1), text)
        self.ws.cell(self.row, 1).font = BOLD
        self.row += 1

    def text(self, label: str, value: str) -> None:
        _text(self.ws.cell(self.row, 1), label)
        _text(self.ws.cell(self.row, 2), value)
        self.row += 1

    def add(
        self, name: str, label: str, value: float | str, unit: str, *, text: bool = False
    ) -> str:
        """A value in column B named ``name``: a number, a formula (a string starting with
        ``=``), or with ``text=True`` a caller's text (never a formula)."""
        _text(self.ws.cell(self.row, 1), label)
        if text:
            _text(self.ws.cell(self.row, 2), str(value))
        else:
            self.ws.cell(self.row, 2).value = value
        _text(self.ws.cell(self.row, 3), unit)
        _text(self.ws.cell(self.row, 4), name)
        ref = f"'{INPUTS}'!$B${self.row}"
        self.wb.defined_names[name] = DefinedName(name, attr_text=ref)
        self.row += 1
        return name


# ------------------------------------------------------------------------------ flows sheet
@dataclass
class _Column:
    header: str
    formula: Callable[[int], float | str]  # t -> value or formula for period t >= 1
    at_zero: float | str | None = 0.0


@dataclass
class _Flows:
    """Columns of the cash-flow sheet, added in order; letters known once added."""

    horizon: int
    columns: list[_Column] = field(default_factory=list)
    letters: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, column: _Column) -> str:
        self.columns.append(column)
        letter = str(get_column_letter(len(self.columns)))
        self.letters[key] = letter
        return letter

    def cell(self, key: str, t: int) -> str:
        return f"{self.letters[key]}{FIRST_ROW + t}"

    def span(self, key: str, first: int = 0, absolute: bool = False) -> str:
        c = self.letters[key]
        a, b = FIRST_ROW + first, FIRST_ROW + self.horizon
        if absolute:
            return f"'{FLOWS}'!${c}${a}:${c}${b}"
        return f"{c}{a}:{c}{b}"

    def absolute(self, key: str, t: int) -> str:
        return f"'{FLOWS}'!${self.letters[key]}${FIRST_ROW + t}"


def _write_initiative(inp: _Inputs, case: bc.BusinessCaseInput) -> None:
    inp.section("Initiative")
    inp.add("in_currency", "Currency (label, never converted)", case.currency, "", text=True)
    inp.add(
        "in_one_off_cost", "One-off cost, paid today (period 0)", case.one_off_cost, case.currency
    )
    inp.add(
        "in_running_cost",
        "Running cost, paid in every period 1..H",
        case.running_cost_per_period,
        f"{case.currency} per {case.period}",
    )
    inp.add(
        "in_start", "Start period s (effects act from period s + 1)", case.start_period, "periods"
    )
    inp.add("in_horizon", "Horizon H", case.horizon_periods, f"{case.period}s")
    inp.add(
        "in_annual_rate", "Discount rate, effective annual", case.annual_discount_rate, "per year"
    )
    inp.add("in_years", f"Length of one period ({case.period})", PERIOD_YEARS[case.period], "years")
    inp.add(
        "in_timing_start",
        "Cash at the start of each period (1) or at its end (0)",
        1 if case.timing == "start" else 0,
        "flag",
    )
    inp.add(
        "in_rate",
        "Discount rate per period d = (1 + annual)^years - 1",
        "=(1+in_annual_rate)^in_years-1",
        f"per {case.period}",
    )


def _own_value(p: str, g: str) -> str:
    """CLTV over the horizon of a group member's own margin (the quick calculator, closed form:
    m shift (1 - q^H) / (1 - q), q = r / (1 + d); shift 1 at the start of a period, 1/(1+d) at
    its end)."""
    q = f"({p}{g}_r/(1+in_rate))"
    return (
        f"={p}{g}_m*IF(in_timing_start=1,1,1/(1+in_rate))"
        f"*IF(ABS(1-{q})<1E-12,in_horizon,(1-{q}^in_horizon)/(1-{q}))"
    )


def _write_nps_inputs(inp: _Inputs, p: str, shift: bc.NpsShift, unit: str) -> None:
    prof = shift.profile
    inp.add(f"{p}nps_promoters", "NPS: promoters (9-10)", prof.counts.promoters, "respondents")
    inp.add(f"{p}nps_passives", "NPS: passives (7-8)", prof.counts.passives, "respondents")
    inp.add(f"{p}nps_detractors", "NPS: detractors (0-6)", prof.counts.detractors, "respondents")
    for g, label in (("pro", "promoters"), ("pas", "passives"), ("det", "detractors")):
        econ = prof.economics(label)
        inp.add(f"{p}{g}_r", f"NPS {label}: retention per period", econ.retention, "share")
        inp.add(f"{p}{g}_m", f"NPS {label}: margin per period", econ.margin_per_period, unit)
        inp.add(
            f"{p}{g}_f",
            f"NPS {label}: referrals per period",
            econ.referrals_per_period,
            "customers per customer",
        )
        inp.add(f"{p}{g}_own", f"NPS {label}: own value over the horizon", _own_value(p, g), unit)
    total = f"({p}nps_promoters+{p}nps_passives+{p}nps_detractors)"
    if prof.new_customer_value is not None:
        v_new: float | str = prof.new_customer_value
        label = "NPS: value of a referred customer (given)"
    else:
        v_new = (
            f"=({p}nps_promoters*{p}pro_own+{p}nps_passives*{p}pas_own"
            f"+{p}nps_detractors*{p}det_own)/{total}"
        )
        label = "NPS: value of a referred customer (share-weighted own value)"
    inp.add(f"{p}nps_v", label, v_new, unit)
    inp.add(
        f"{p}to_passive",
        "Effect: share of detractors made passives",
        shift.detractors_to_passive,
        "share",
    )
    inp.add(
        f"{p}to_promoter",
        "Effect: share of detractors made promoters",
        shift.detractors_to_promoter,
        "share",
    )
    inp.add(
        f"{p}nps_moved",
        "Detractors active when the initiative starts: N x share x r_D^s",
        f"={p}n*{p}nps_detractors/{total}*{p}det_r^in_start",
        "customers",
    )


def _write_segment_inputs(
    inp: _Inputs, i: int, seg: bc.SegmentCase, case: bc.BusinessCaseInput, flows: _Flows
) -> str:
    p = f"in_s{i + 1}_"
    b, e = seg.baseline, seg.effects
    money = f"{case.currency} per {case.period}"
    inp.section(f"Segment {i + 1}")
    inp.text("Segment", seg.name)
    if isinstance(b, bc.ManualBaseline):
        inp.text("Baseline", "given by hand (constant retention)")
        inp.add(f"{p}n", "Active customers N", b.customers, "customers")
        inp.add(f"{p}margin", "Margin per active customer m", b.margin_per_customer, money)
        inp.add(f"{p}retention", "Retention per period r", b.retention, "share")
    elif isinstance(b, bc.CurveBaseline):
        active = b.customers if b.active_customers is None else b.active_customers
        inp.text("Baseline", f"fitted: {b.source} (values per period on '{FLOWS}')")
        inp.add(f"{p}customers", "Customers", b.customers, "customers")
        inp.add(f"{p}n", "Active customers N (sum of P(alive))", active, "customers")
        v1 = flows.absolute(f"s{i}_v", 1)
        inp.add(
            f"{p}margin",
            "Margin per active customer m = v_1 / N",
            f"=IF({p}n>0,{v1}/{p}n,0)",
            money,
        )
    else:
        inp.text("Baseline", "sBG retention fit (Fader & Hardie 2007)")
        inp.add(f"{p}n", "Active customers N", b.customers, "customers")
        inp.add(f"{p}margin", "Margin per customer m", b.margin_per_customer, money)
        inp.add(f"{p}alpha", "sBG alpha", float(b.model.params_["alpha"]), "")
        inp.add(f"{p}beta", "sBG beta", float(b.model.params_["beta"]), "")
        inp.add(f"{p}renewals", "Renewals made n", b.renewals, "renewals")
    inp.add(f"{p}points", "Effect: churn reduction", e.churn_reduction_points, "points (0.01 = 1)")
    inp.add(f"{p}share", "Effect: churn reduction", e.churn_reduction_share, "share of churn")
    inp.add(f"{p}spend", "Effect: spend uplift", e.spend_uplift, "share")
    inp.add(f"{p}freq", "Effect: frequency uplift", e.frequency_uplift, "share")
    if e.nps_shift is not None:
        _write_nps_inputs(inp, p, e.nps_shift, money)
    if e.referrals is not None:
        inp.add(
            f"{p}ref_n",
            "Effect: referred customers per period",
            e.referrals.new_customers_per_period,
            f"customers per {case.period}",
        )
        if e.referrals.value_per_new_customer is not None:
            value: float | str = e.referrals.value_per_new_customer
            label = "Value of a referred customer (given)"
        else:
            s_range = flows.span(f"s{i}_S", first=1, absolute=True)
            f_range = flows.span("sf", first=1, absolute=True)
            value = f"={p}margin*SUMPRODUCT({s_range},{f_range})"
            label = "Value of a referred customer: sum of m S_j / (1+d)^(j-1)"
        inp.add(f"{p}ref_value", label, value, case.currency)
    return p


def _segment_columns(
    flows: _Flows, i: int, seg: bc.SegmentCase, case: bc.BusinessCaseInput
) -> None:
    """The cash-flow columns of one segment (formulas for t >= 1)."""
    p = f"in_s{i + 1}_"
    k = f"s{i}_"
    b, e = seg.baseline, seg.effects
    name = seg.name
    h = case.horizon_periods

    def c(key: str, t: int) -> str:
        return flows.cell(k + key, t)

    if isinstance(b, bc.CurveBaseline):
        values = list(b.value_per_period)
        flows.add(
            k + "v", _Column(f"{name}: fitted value v_t", lambda t: float(values[t - 1]), None)
        )

        def retention(t: int) -> str:
            if t >= h and len(values) <= h:
                return "=1"
            nxt = c("v", t + 1) if t < h else repr(float(values[t]))
            return f"=IF({c('v', t)}>0,MIN({nxt}/{c('v', t)},1),0)"
    elif isinstance(b, bc.ManualBaseline):

        def retention(t: int) -> str:
            return f"={p}retention"
    else:

        def retention(t: int) -> str:
            tt = f"({p}renewals+{t}-1)"
            return f"=({p}beta+{tt})/({p}alpha+{p}beta+{tt})"

    flows.add(k + "r", _Column(f"{name}: retention r_t", retention, None))
    flows.add(
        k + "rn",
        _Column(
            f"{name}: retention with initiative",
            lambda t: (
                f"=IF({flows.cell('live', t)}=1,"
                f"1-MAX(0,MIN(1,(1-{c('r', t)})*(1-{p}share)-{p}points)),{c('r', t)})"
            ),
            None,
        ),
    )
    flows.add(
        k + "S",
        _Column(
            f"{name}: survival S_t",
            lambda t: "=1" if t == 1 else f"={c('S', t - 1)}*{c('r', t - 1)}",
            None,
        ),
    )
    flows.add(
        k + "Sn",
        _Column(
            f"{name}: survival with initiative",
            lambda t: "=1" if t == 1 else f"={c('Sn', t - 1)}*{c('rn', t - 1)}",
            None,
        ),
    )
    flows.add(
        k + "mn",
        _Column(
            f"{name}: margin per active customer with initiative",
            lambda t: (
                f"=IF({flows.cell('live', t)}=1,{p}margin*(1+{p}spend)*(1+{p}freq),{p}margin)"
            ),
            None,
        ),
    )
    flows.add(
        k + "base", _Column(f"{name}: baseline value", lambda t: f"={p}n*{p}margin*{c('S', t)}")
    )
    flows.add(
        k + "core",
        _Column(
            f"{name}: value with initiative (before NPS, referrals)",
            lambda t: f"={p}n*{c('mn', t)}*{c('Sn', t)}",
        ),
    )
    extra_value, extra_customers = [], []
    if e.nps_shift is not None:

        def stream(g: str, t: int) -> str:
            return f"({p}{g}_m+{p}{g}_f*{p}nps_v)*{p}{g}_r^({t}-1-in_start)"

        def alive(g: str, t: int) -> str:
            return f"{p}{g}_r^({t}-1-in_start)"

        flows.add(
            k + "npsv",
            _Column(
                f"{name}: NPS shift value",
                lambda t: (
                    f"=IF({t}>in_start,{p}nps_moved*({p}to_passive*({stream('pas', t)}-"
                    f"{stream('det', t)})+{p}to_promoter*({stream('pro', t)}-{stream('det', t)})),0)"
                ),
            ),
        )
        flows.add(
            k + "npsc",
            _Column(
                f"{name}: NPS shift extra active customers",
                lambda t: (
                    f"=IF({t}>in_start,{p}nps_moved*({p}to_passive*({alive('pas', t)}-"
                    f"{alive('det', t)})+{p}to_promoter*({alive('pro', t)}-{alive('det', t)})),0)"
                ),
            ),
        )
        extra_value.append("npsv")
        extra_customers.append("npsc")
    if e.referrals is not None:
        flows.add(
            k + "refv",
            _Column(
                f"{name}: referral value",
                lambda t: f"={flows.cell('live', t)}*{p}ref_n*{p}ref_value",
            ),
        )
        flows.add(
            k + "refc",
            _Column(f"{name}: referred customers", lambda t: f"={flows.cell('live', t)}*{p}ref_n"),
        )
        extra_value.append("refv")
    flows.add(
        k + "with",
        _Column(
            f"{name}: value with initiative",
            lambda t: "=" + "+".join(c(x, t) for x in ("core", *extra_value)),
        ),
    )
    flows.add(
        k + "ret",
        _Column(
            f"{name}: customers retained by the initiative",
            lambda t: (
                f"={p}n*({c('Sn', t)}-{c('S', t)})"
                + "".join(f"+{c(x, t)}" for x in extra_customers)
            ),
        ),
    )


def _sum_of(flows: _Flows, keys: Sequence[str]) -> Callable[[int], str]:
    return lambda t: "=" + ("+".join(flows.cell(key, t) for key in keys) if keys else "0")


def _total_columns(flows: _Flows, case: bc.BusinessCaseInput) -> None:
    n = len(case.segments)
    refs = [f"s{i}_refc" for i, s in enumerate(case.segments) if s.effects.referrals is not None]
    flows.add(
        "base",
        _Column("Baseline value, all segments", _sum_of(flows, [f"s{i}_base" for i in range(n)])),
    )
    flows.add(
        "with",
        _Column(
            "Value with initiative, all segments", _sum_of(flows, [f"s{i}_with" for i in range(n)])
        ),
    )
    flows.add(
        "inc",
        _Column("Incremental value", lambda t: f"={flows.cell('with', t)}-{flows.cell('base', t)}"),
    )
    flows.add(
        "ret",
        _Column(
            "Customers retained by the initiative", _sum_of(flows, [f"s{i}_ret" for i in range(n)])
        ),
    )
    flows.add("ref", _Column("Referred customers", _sum_of(flows, refs)))
    flows.add("cost", _Column("Costs", lambda t: "=in_running_cost", "=in_one_off_cost"))
    flows.add(
        "net",
        _Column(
            "Net cash flow",
            lambda t: f"={flows.cell('inc', t)}-{flows.cell('cost', t)}",
            f"={flows.cell('inc', 0)}-{flows.cell('cost', 0)}",
        ),
    )
    flows.add(
        "pv",
        _Column(
            "Present value",
            lambda t: f"={flows.cell('net', t)}*{flows.cell('df', t)}",
            f"={flows.cell('net', 0)}*{flows.cell('df', 0)}",
        ),
    )
    _cumulative(flows, "cnet", "net", "Cumulative net cash flow")
    _cumulative(flows, "cpv", "pv", "Cumulative present value")
    _payback(flows, "reach", "pb", "cnet", "net", "payback")
    _payback(flows, "dreach", "dpb", "cpv", "pv", "discounted payback")


def _cumulative(flows: _Flows, key: str, source: str, label: str) -> None:
    def formula(t: int) -> str:
        return f"={flows.cell(key, t - 1)}+{flows.cell(source, t)}"

    flows.add(key, _Column(label, formula, f"={flows.cell(source, 0)}"))


def _payback(flows: _Flows, reach: str, part: str, cum: str, flow: str, label: str) -> None:
    """A 0/1 column "reached" (the cumulative flow was >= 0 in this or an earlier period) and
    the interpolated crossing (t - 1) + min(1, -C_{t-1} / c_t) in the first period reached."""

    def reached(t: int) -> str:
        return f"=IF(OR({flows.cell(reach, t - 1)}=1,{flows.cell(cum, t)}>=0),1,0)"

    def crossing(t: int) -> str:
        return (
            f"=IF(AND({flows.cell(reach, t)}=1,{flows.cell(reach, t - 1)}=0),"
            f"{t}-1+MIN(1,-{flows.cell(cum, t - 1)}/{flows.cell(flow, t)}),0)"
        )

    flows.add(reach, _Column(f"Reached ({label})", reached, f"=IF({flows.cell(cum, 0)}>=0,1,0)"))
    flows.add(part, _Column(f"Crossing within the period ({label})", crossing, 0.0))


def _common_columns(flows: _Flows) -> None:
    flows.add("t", _Column("Period t", lambda t: t, 0))
    flows.add(
        "live",
        _Column("Initiative acts (t > s)", lambda t: f"=IF({flows.cell('t', t)}>in_start,1,0)", 0),
    )
    flows.add(
        "df",
        _Column(
            "Discount factor",
            lambda t: f"=1/(1+in_rate)^({flows.cell('t', t)}-in_timing_start)",
            1.0,
        ),
    )
    flows.add(
        "sf",
        _Column(
            "Start-of-period factor 1/(1+d)^(t-1)",
            lambda t: f"=1/(1+in_rate)^({flows.cell('t', t)}-1)",
            None,
        ),
    )


def _write_flows_sheet(ws: Worksheet, flows: _Flows) -> None:
    for j, column in enumerate(flows.columns, start=1):
        _text(ws.cell(1, j), column.header)
        ws.cell(1, j).font = BOLD
        if column.at_zero is not None:
            ws.cell(FIRST_ROW, j).value = column.at_zero
        for t in range(1, flows.horizon + 1):
            ws.cell(FIRST_ROW + t, j).value = column.formula(t)
    ws.freeze_panes = "B2"


# ------------------------------------------------------------------------------ results sheet
def _write_results(
    ws: Worksheet, flows: _Flows, result: Mapping[str, Any], currency: str, period: str
) -> None:
    _text(ws.cell(1, 1), "Result")
    _text(ws.cell(1, 2), "Value")
    _text(ws.cell(1, 3), "Unit")
    _text(ws.cell(1, 4), "How")
    for j in range(1, 5):
        ws.cell(1, j).font = BOLD
    pv, inc, cost, df = (flows.span(k, absolute=True) for k in ("pv", "inc", "cost", "df"))
    net = flows.span("net", absolute=True)
    rows: list[tuple[str, Any, str, str]] = [
        (NPV, f"=SUM({pv})", currency, "formula"),
        (PV_BENEFITS, f"=SUMPRODUCT({inc},{df})", currency, "formula"),
        (PV_COSTS, f"=SUMPRODUCT({cost},{df})", currency, "formula"),
        (
            ROI,
            '=IF(B4>0,(B3-B4)/B4,"no costs")',
            "share",
            "formula: (PV benefits - PV costs) / PV costs",
        ),
        (
            PAYBACK,
            f'=IF(SUM({flows.span("reach", absolute=True)})=0,"{NOT_REACHED}",SUM({flows.span("pb", absolute=True)}))',
            f"{period}s from today",
            "formula: first crossing of the cumulative net cash flow, interpolated",
        ),
        (
            DISCOUNTED_PAYBACK,
            f'=IF(SUM({flows.span("dreach", absolute=True)})=0,"{NOT_REACHED}",SUM({flows.span("dpb", absolute=True)}))',
            f"{period}s from today",
            "formula: as payback, on the present values",
        ),
        (TOTAL_INCREMENTAL, f"=SUM({inc})", currency, "formula"),
        (TOTAL_COSTS, f"=SUM({cost})", currency, "formula"),
        (TOTAL_NET, f"=SUM({net})", currency, "formula"),
    ]
    api = "value from the API (not a formula)"
    rows.append(("IRR per period", _number(result.get("irr_per_period")), f"per {period}", api))
    rows.append(("IRR annual", _number(result.get("irr_annual")), "per year", api))
    be = result.get("break_even")
    rows.append(
        (
            "Break-even effect size k (all effects x k give NPV = 0)",
            _number(None if be is None else be["scale"]),
            "factor",
            api + "; found by root search on the model",
        )
    )
    for effect in [] if be is None else be["effects"]:
        rows.append((f"Break-even: {effect['input']}", float(effect["break_even_value"]), "", api))
    mc = result.get("monte_carlo")
    if mc is not None:
        for p, v in mc["percentiles"].items():
            rows.append((f"Simulated NPV, percentile {p}", float(v), currency, api))
        rows.append(
            ("P(NPV > 0), simulated", float(mc["probability_positive"]), "probability", api)
        )
        rows.append(("Simulation draws / seed", f"{mc['n_draws']} / {mc['seed']}", "", api))
    for j, (label, value, unit, how) in enumerate(rows, start=2):
        _text(ws.cell(j, 1), label)
        cell = ws.cell(j, 2)
        if isinstance(value, str) and not value.startswith("="):
            _text(cell, value)
        else:
            cell.value = value
        _text(ws.cell(j, 3), unit)
        _text(ws.cell(j, 4), how)


def _number(value: Any) -> float | str:
    return "n/a" if value is None else float(value)


def _write_sensitivity(ws: Worksheet, result: Mapping[str, Any], currency: str) -> None:
    headers = [
        "Input",
        "Base value",
        "Low value",
        "High value",
        f"NPV low ({currency})",
        f"NPV high ({currency})",
        "Swing",
        "Clipped",
    ]
    for j, h in enumerate(headers, start=1):
        _text(ws.cell(1, j), h)
        ws.cell(1, j).font = BOLD
    for i, bar in enumerate(result["tornado"]["bars"], start=2):
        _text(ws.cell(i, 1), bar["input"])
        for j, key in enumerate(
            ("base_value", "low_value", "high_value", "npv_low", "npv_high", "swing"), start=2
        ):
            ws.cell(i, j).value = bar[key]
        _text(ws.cell(i, 8), "yes" if bar["clipped"] else "no")


# ------------------------------------------------------------------------------ entry point
def business_case_workbook(
    case: bc.BusinessCaseInput, result: Mapping[str, Any], *, title: str, version: int
) -> bytes:
    """The XLSX of an evaluated case (``result`` is the stored evaluation)."""
    wb = Workbook()
    ws_inputs = wb.active
    assert ws_inputs is not None
    ws_inputs.title = INPUTS
    ws_flows = wb.create_sheet(FLOWS)
    ws_results = wb.create_sheet(RESULTS)
    ws_sensitivity = wb.create_sheet(SENSITIVITY)
    flows = _Flows(case.horizon_periods)
    _common_columns(flows)
    for i, seg in enumerate(case.segments):
        _segment_columns(flows, i, seg, case)
    _total_columns(flows, case)
    inputs = _Inputs(wb, ws_inputs)
    inputs.title(f"Business case: {title} (version {version})")
    _text(ws_inputs.cell(inputs.row, 1), "Label")
    _text(ws_inputs.cell(inputs.row, 2), "Value")
    _text(ws_inputs.cell(inputs.row, 3), "Unit")
    _text(ws_inputs.cell(inputs.row, 4), "Name")
    inputs.row += 1
    _write_initiative(inputs, case)
    for i, seg in enumerate(case.segments):
        _write_segment_inputs(inputs, i, seg, case, flows)
    _write_flows_sheet(ws_flows, flows)
    _write_results(ws_results, flows, result, case.currency, case.period)
    _write_sensitivity(ws_sensitivity, result, case.currency)
    for ws, widths in ((ws_inputs, (60, 18, 24, 22)), (ws_results, (55, 18, 20, 60))):
        for j, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(j)].width = width
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
