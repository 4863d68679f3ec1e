"""Which column of the file plays which role (customer id, date, amount...).

The user's explicit :class:`ColumnMapping` always wins; roles it leaves empty are found by
comparing *normalised* header names (lower case, ``ё`` -> ``е``, runs of spaces, ``_``, ``-``,
``.`` and ``/`` -> one space) with common English and Russian names, in priority order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Literal

from cltv_api.errors import FieldError, InvalidInput

Layout = Literal["transactions", "summary", "cohort", "customer"]


@dataclass(frozen=True)
class ColumnMapping:
    """Header names of the columns that play each role (``None``: find it by name).

    Transactions: ``customer_id``, ``date``, ``amount`` (required), ``order_id`` (rows
    sharing an order id are one transaction) and ``segments``.
    Summary (one row per customer): ``frequency``, ``recency``, ``T`` (required),
    ``customer_id``, ``monetary_value``, ``weight``, ``segments``.
    Contractual: ``cohort``, ``period``, ``survivors`` (cohort survivor counts) or
    ``customer_id``, ``start``, ``end`` and ``segments`` (one row per customer or spell).
    """

    customer_id: str | None = None
    date: str | None = None
    amount: str | None = None
    order_id: str | None = None
    segments: tuple[str, ...] = ()
    frequency: str | None = None
    recency: str | None = None
    T: str | None = None
    monetary_value: str | None = None
    weight: str | None = None
    cohort: str | None = None
    period: str | None = None
    survivors: str | None = None
    start: str | None = None
    end: str | None = None

    def roles(self) -> dict[str, str]:
        """The single-column roles that are set, as ``{role: header}``."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "segments" and value is not None:
                out[f.name] = value
        return out


# Candidate names per role, already normalised, best first.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customer id",
        "customer",
        "customerid",
        "customer no",
        "customer number",
        "client id",
        "client",
        "clientid",
        "user id",
        "userid",
        "user",
        "buyer id",
        "buyer",
        "cust id",
        "account id",
        "member id",
        "id клиента",
        "клиент",
        "код клиента",
        "клиент id",
        "покупатель",
        "id покупателя",
        "код покупателя",
        "контрагент",
        "абонент",
        "заказчик",
        "пользователь",
    ),
    "date": (
        "date",
        "order date",
        "orderdate",
        "transaction date",
        "purchase date",
        "invoice date",
        "sale date",
        "payment date",
        "datetime",
        "timestamp",
        "created at",
        "дата",
        "дата заказа",
        "дата покупки",
        "дата продажи",
        "дата операции",
        "дата чека",
        "дата документа",
        "дата оплаты",
    ),
    "amount": (
        "amount",
        "sum",
        "revenue",
        "total",
        "order total",
        "sales",
        "value",
        "net amount",
        "gross amount",
        "amount total",
        "сумма",
        "выручка",
        "сумма заказа",
        "сумма покупки",
        "сумма продажи",
        "сумма чека",
        "итого",
        "стоимость",
        "оборот",
    ),
    "order_id": (
        "order id",
        "orderid",
        "order",
        "order number",
        "order no",
        "invoice",
        "invoice id",
        "invoice number",
        "transaction id",
        "receipt",
        "receipt id",
        "номер заказа",
        "id заказа",
        "заказ",
        "номер чека",
        "чек",
        "номер документа",
        "документ",
    ),
    "frequency": ("frequency", "freq", "x", "repeat purchases", "частота", "число покупок"),
    "recency": ("recency", "t x", "tx", "давность"),
    "T": ("t", "age", "t cal", "customer age", "срок", "возраст клиента"),
    "monetary_value": (
        "monetary value",
        "monetary",
        "m",
        "avg amount",
        "average amount",
        "average order value",
        "aov",
        "средний чек",
        "средняя сумма",
    ),
    "weight": ("weight", "weights", "count", "n customers", "customers", "вес", "число клиентов"),
    "cohort": ("cohort", "когорта"),
    "period": ("period", "periods", "year", "month", "период", "год", "месяц"),
    "survivors": (
        "survivors",
        "active",
        "alive",
        "retained",
        "n active",
        "active customers",
        "выжившие",
        "активные",
        "активных клиентов",
        "осталось",
    ),
    "start": (
        "start",
        "start date",
        "signup date",
        "subscription start",
        "started at",
        "activation date",
        "дата начала",
        "начало",
        "дата подключения",
    ),
    "end": (
        "end",
        "end date",
        "churn date",
        "cancel date",
        "cancelled at",
        "canceled at",
        "termination date",
        "дата окончания",
        "окончание",
        "дата отключения",
        "дата отказа",
    ),
}
# In one-row-per-customer layouts a bare "id" is the customer.
_SUMMARY_CUSTOMER = (*CANDIDATES["customer_id"], "id", "код")

ROLES_BY_LAYOUT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # layout: (required roles, optional roles)
    "transactions": (("customer_id", "date", "amount"), ("order_id",)),
    "summary": (("frequency", "recency", "T"), ("customer_id", "monetary_value", "weight")),
    "cohort": (("cohort", "period", "survivors"), ()),
    "customer": (("customer_id", "start"), ("end",)),
}
OUTPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "transactions": ("customer_id", "date", "amount", "order_id"),
    "summary": ("customer_id", "frequency", "recency", "T", "monetary_value", "weight"),
    "cohort": ("cohort", "period", "survivors"),
    "customer": ("customer_id", "start", "end"),
}


def normalize_name(name: str) -> str:
    """Header name as compared with candidates: ``' Customer_ID '`` -> ``'customer id'``."""
    s = name.replace("\ufeff", "").strip().lower().replace("ё", "е")
    return re.sub(r"[\s_\-./]+", " ", s).strip()


@dataclass(frozen=True)
class ResolvedMapping:
    """Roles resolved to column positions of the file."""

    layout: Layout
    roles: dict[str, int]
    segments: tuple[int, ...] = ()
    columns: tuple[str, ...] = field(default=())

    def name(self, role: str) -> str:
        return self.columns[self.roles[role]]

    def as_mapping(self) -> ColumnMapping:
        """The mapping with actual header names (what the UI shows back)."""
        values = {role: self.columns[i] for role, i in self.roles.items()}
        segs = tuple(self.columns[i] for i in self.segments)
        return replace(ColumnMapping(), **values, segments=segs)


def resolve_mapping(
    columns: tuple[str, ...], mapping: ColumnMapping | None, kind: str
) -> ResolvedMapping:
    """Resolve ``mapping`` against the file's ``columns`` for ``kind`` of data.

    Raises InvalidInput naming the missing roles and listing the file's columns.
    """
    mapping = mapping or ColumnMapping()
    explicit = {role: _find_explicit(columns, role, name) for role, name in mapping.roles().items()}
    segments = tuple(_find_explicit(columns, "segments", s) for s in mapping.segments)
    layout = _layout(columns, explicit, kind)
    required, optional = ROLES_BY_LAYOUT[layout]
    foreign = sorted(set(explicit) - set(required) - set(optional))
    if foreign:
        raise InvalidInput(
            f"Mapping roles {foreign} do not apply to {layout} data; "
            f"roles for it: {list(required + optional)}"
        )
    roles = dict(explicit)
    used = set(roles.values())
    for role in required + optional:
        if role not in roles:
            found = _find_default(columns, role, layout, used)
            if found is not None:
                roles[role] = found
                used.add(found)
    missing = [r for r in required if r not in roles]
    if missing:
        raise InvalidInput(
            f"Could not find the {', '.join(missing)} column(s) for {layout} data. Columns in "
            f"the file: {list(columns)}. Pass mapping=ColumnMapping({missing[0]}='...').",
            errors=[FieldError(field=r, message="column not found") for r in missing],
            extra={"columns": list(columns)},
        )
    _check_distinct(columns, roles, segments)
    return ResolvedMapping(layout, roles, segments, columns)


def suggest_mapping(columns: tuple[str, ...], kind: str) -> tuple[ColumnMapping | None, str | None]:
    """A mapping suggestion for the upload form, and the problem when there is none."""
    try:
        return resolve_mapping(columns, None, kind).as_mapping(), None
    except InvalidInput as exc:
        return None, exc.detail


def _layout(columns: tuple[str, ...], explicit: dict[str, int], kind: str) -> Layout:
    if kind == "transactions":
        return "transactions"
    if kind == "summary":
        return "summary"
    if kind != "contractual":
        raise InvalidInput(f"kind must be 'transactions', 'summary' or 'contractual'; got {kind!r}")
    if {"cohort", "period", "survivors"} & set(explicit):
        return "cohort"
    if {"start", "end", "customer_id"} & set(explicit):
        return "customer"
    cohort_roles = ("cohort", "period", "survivors")
    if all(_find_default(columns, r, "cohort", set()) is not None for r in cohort_roles):
        return "cohort"
    return "customer"


def _find_explicit(columns: tuple[str, ...], role: str, name: str) -> int:
    exact = [i for i, c in enumerate(columns) if c == name]
    if len(exact) == 1:
        return exact[0]
    loose = [i for i, c in enumerate(columns) if normalize_name(c) == normalize_name(name)]
    if len(exact) > 1 or len(loose) > 1:
        raise InvalidInput(
            f"The file has several columns named {name!r} (for {role}); rename them so each "
            "header is unique.",
            errors=[FieldError(field=role, message="duplicate column name", value=name)],
        )
    if not loose:
        raise InvalidInput(
            f"Column {name!r} (for {role}) is not in the file. Columns in the file: "
            f"{list(columns)}.",
            errors=[FieldError(field=role, message="column not found", value=name)],
            extra={"columns": list(columns)},
        )
    return loose[0]


def _find_default(columns: tuple[str, ...], role: str, layout: str, used: set[int]) -> int | None:
    names = (
        _SUMMARY_CUSTOMER
        if role == "customer_id" and layout != "transactions"
        else CANDIDATES[role]
    )
    normalised = [normalize_name(c) for c in columns]
    for candidate in names:
        hits = [i for i, n in enumerate(normalised) if n == candidate and i not in used]
        if len(hits) > 1:
            shown = [columns[i] for i in hits]
            raise InvalidInput(
                f"Several columns could be the {role} ({shown}); pass "
                f"mapping=ColumnMapping({role}='...').",
                errors=[FieldError(field=role, message="several candidate columns")],
            )
        if hits:
            return hits[0]
    return None


def _check_distinct(
    columns: tuple[str, ...], roles: dict[str, int], segments: tuple[int, ...]
) -> None:
    seen: dict[int, str] = {}
    for role, i in roles.items():
        if i in seen:
            raise InvalidInput(
                f"Column {columns[i]!r} is mapped to both {seen[i]} and {role}; each column can "
                "play one role."
            )
        seen[i] = role
    for i in segments:
        if i in seen:
            raise InvalidInput(
                f"Column {columns[i]!r} is mapped to {seen[i]} and also listed as a segment."
            )
        seen[i] = "segment"
    if len(set(segments)) != len(segments):
        raise InvalidInput("A segment column is listed twice.")
