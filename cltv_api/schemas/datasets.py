"""Data set bodies: upload options, the stored data set, its RFM preview and the upload preview."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DatasetKind = Literal["transactions", "summary", "contractual"]
TimeUnitName = Literal["days", "weeks", "months"]

MAX_NAME_CHARS = 200
MAX_COLUMN_CHARS = 200


def _split_names(values: list[str]) -> list[str]:
    """Repeated and/or comma-separated names, stripped, without blanks or repeats."""
    names = [part.strip() for value in values for part in value.split(",")]
    return list(dict.fromkeys(name for name in names if name))


class UploadOptions(BaseModel):
    """How to read and name an upload: column mapping, parsing and validation policies.

    Sent as query parameters, or as form fields next to the ``file`` part of a multipart upload
    (a form field wins over a query parameter of the same name). Every parsing option left out is
    detected from the file.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Orders 2024",
                    "customer_col": "Клиент",
                    "date_col": "Дата",
                    "amount_col": "Сумма",
                    "segment_cols": ["Канал", "Регион"],
                    "encoding": "cp1251",
                    "delimiter": ";",
                    "decimal": ",",
                    "date_format": "%d.%m.%Y",
                    "currency": "RUB",
                }
            ]
        },
    )

    name: str | None = Field(
        default=None,
        max_length=MAX_NAME_CHARS,
        description="Name of the data set (default: the file name).",
    )
    filename: str | None = Field(
        default=None,
        max_length=255,
        description="File name of a raw-body upload (multipart uploads carry their own).",
    )
    kind: DatasetKind = Field(
        default="transactions",
        description="What the rows are: transactions, one summary row per customer, or "
        "contractual (cohort survivor counts or subscription spells).",
    )
    customer_col: str | None = Field(
        default=None, max_length=MAX_COLUMN_CHARS, description="Customer id column."
    )
    date_col: str | None = Field(
        default=None, max_length=MAX_COLUMN_CHARS, description="Transaction date column."
    )
    amount_col: str | None = Field(
        default=None, max_length=MAX_COLUMN_CHARS, description="Amount (spend) column."
    )
    order_col: str | None = Field(
        default=None,
        max_length=MAX_COLUMN_CHARS,
        description="Order id column: rows sharing an order id are one transaction.",
    )
    segment_cols: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Segment columns to keep (repeat the parameter or separate with commas).",
    )
    fit: Literal["bgnbd", "pnbd", "mbgnbd", "bgbb", "auto"] | None = Field(
        default=None,
        description="One-call batch for finance: also fit this purchase model (with the "
        "Gamma-Gamma spend model) and answer with the CLTV segment table as CSV (201 with the "
        "fit's `Location`; 202 with a job when the data set is large).",
    )
    segment_by: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="With `fit`: segment columns to report by (default: `segment_cols`); "
        "they are kept as segment columns of the data set too.",
    )
    time_unit: TimeUnitName = Field(default="weeks", description="With `fit`: purchase period.")
    horizon: int = Field(default=12, gt=0, description="With `fit`: CLTV horizon.")
    horizon_unit: TimeUnitName = Field(default="months", description="With `fit`: its unit.")
    discount_rate: float = Field(
        default=0.10, ge=0, le=1, description="With `fit`: annual effective discount rate."
    )
    margin: float = Field(
        default=1.0, ge=0, le=1, description="With `fit`: share of revenue counted as value."
    )
    encoding: str | None = Field(
        default=None, max_length=40, description="Text encoding of a CSV, e.g. `cp1251`."
    )
    delimiter: str | None = Field(
        default=None,
        max_length=3,
        description="CSV delimiter: one character, or `tab`.",
    )
    decimal: Literal[".", ","] | None = Field(default=None, description="Decimal separator.")
    thousands: Literal["", " ", ".", ","] | None = Field(
        default=None, description="Thousands separator (empty: none)."
    )
    date_format: str | None = Field(
        default=None,
        max_length=64,
        description="A strptime format (`%d.%m.%Y`) or `iso`, `excel`, `unix_s`, `unix_ms`; "
        "needed when day and month cannot be told apart.",
    )
    sheet: str | None = Field(
        default=None, max_length=200, description="XLSX sheet (default: the first)."
    )
    negative_amounts: Literal["reject", "drop", "keep"] = Field(
        default="drop", description="Returns (negative amounts): drop and report, reject, keep."
    )
    on_error: Literal["reject", "drop"] = Field(
        default="reject",
        description="Unreadable rows: reject the whole file, or drop them and report.",
    )
    future_dates: Literal["error", "drop", "keep"] = Field(
        default="error", description="Dates after today: treat as unreadable, drop, or keep."
    )
    currency: str | None = Field(
        default=None,
        max_length=12,
        description="Currency label of the amounts (e.g. `RUB`, `EUR`); shown with values.",
    )

    @field_validator("segment_cols", mode="after")
    @classmethod
    def _split_segment_cols(cls, values: list[str]) -> list[str]:
        names = _split_names(values)
        too_long = [n for n in names if len(n) > MAX_COLUMN_CHARS]
        if too_long:
            raise ValueError(f"column names are at most {MAX_COLUMN_CHARS} characters")
        return names

    @model_validator(mode="after")
    def _keep_report_columns(self) -> UploadOptions:
        """Columns to report by must be in the data set: add them to ``segment_cols``, so
        ``?fit=auto&segment_by=channel`` works without naming the column twice."""
        extra = [c for c in _split_names(self.segment_by) if c not in self.segment_cols]
        if extra:
            self.segment_cols = [*self.segment_cols, *extra]
        return self

    @field_validator("delimiter", mode="after")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() in {"tab", "\\t"}:
            return "\t"
        if len(value) != 1:
            raise ValueError("must be one character, or 'tab'")
        return value


class ColumnMappingOut(BaseModel):
    """Which column of the file plays which role (header names as in the file)."""

    customer_id: str | None = None
    date: str | None = None
    amount: str | None = None
    order_id: str | None = None
    segments: list[str] = Field(default_factory=list)
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


class DetectedFormatOut(BaseModel):
    """How the file was read (detected, or as given)."""

    file_type: Literal["csv", "xlsx", "parquet"]
    encoding: str | None = None
    delimiter: str | None = None
    quote: str | None = None
    decimal_separator: str | None = None
    thousands_separator: str | None = Field(
        default=None, description='`" "` stands for any space (also no-break spaces).'
    )
    date_format: str | None = None
    header_row: int | None = Field(default=None, description="1-based line or row of the header.")
    sheet: str | None = None
    columns: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class IssueOut(BaseModel):
    """One reported row of the file (``row``: line of a CSV with the header, row of a sheet)."""

    kind: str
    row: int | None
    column: str | None
    value: str | None
    message: str


class ValidationReportOut(BaseModel):
    """What was checked, found and done: counts per kind of problem cover every row, ``issues``
    lists the first rows of each kind."""

    rows_read: int
    rows_kept: int
    rows_dropped: int
    counts: dict[str, int]
    actions: dict[str, str]
    policies: dict[str, str]
    issues: list[IssueOut]
    notes: list[str]


class SegmentColumnOut(BaseModel):
    name: str
    distinct_values: int


DATASET_EXAMPLE: dict[str, Any] = {
    "id": "ds_5b1n8q4w6e7d2k9x0c3v",
    "name": "orders-2024.csv",
    "kind": "transactions",
    "status": "ready",
    "format": {
        "file_type": "csv",
        "encoding": "cp1251",
        "delimiter": ";",
        "quote": '"',
        "decimal_separator": ",",
        "thousands_separator": " ",
        "date_format": "%d.%m.%Y",
        "header_row": 1,
        "sheet": None,
        "columns": ["Клиент", "Дата", "Сумма", "Канал"],
        "warnings": [],
    },
    "mapping": {
        "customer_id": "Клиент",
        "date": "Дата",
        "amount": "Сумма",
        "segments": ["Канал"],
    },
    "row_count": 120500,
    "stored_rows": 120412,
    "customer_count": 23570,
    "transaction_count": 120412,
    "date_min": "2024-01-02T00:00:00",
    "date_max": "2024-12-30T00:00:00",
    "amount_total": 18450233.5,
    "currency": "RUB",
    "segment_columns": [{"name": "Канал", "distinct_values": 3}],
    "report": {
        "rows_read": 120500,
        "rows_kept": 120412,
        "rows_dropped": 88,
        "counts": {"negative_amount": 88},
        "actions": {"negative_amount": "dropped"},
        "policies": {"on_error": "reject", "negative_amounts": "drop"},
        "issues": [
            {
                "kind": "negative_amount",
                "row": 17,
                "column": "Сумма",
                "value": "-1 250,00",
                "message": "negative amount (a return?)",
            }
        ],
        "notes": [],
    },
    "sha256": "9f2c0d3e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "created_at": "2026-01-05T09:30:00Z",
    "url": "/v1/datasets/ds_5b1n8q4w6e7d2k9x0c3v",
}


class DatasetOut(BaseModel):
    """A stored data set: what was read and how, what is in it, and the validation report."""

    model_config = ConfigDict(json_schema_extra={"examples": [DATASET_EXAMPLE]})

    id: str
    name: str
    kind: DatasetKind
    status: Literal["ready"] = Field(description="Stored and usable.")
    format: DetectedFormatOut
    mapping: ColumnMappingOut
    row_count: int = Field(description="Data rows read from the file (dropped ones included).")
    stored_rows: int = Field(description="Rows stored after validation (and order grouping).")
    customer_count: int | None = Field(description="Distinct customers.")
    transaction_count: int | None = Field(description="Stored transactions (transaction data).")
    date_min: datetime | None = Field(description="Earliest transaction or start date.")
    date_max: datetime | None = Field(description="Latest transaction or end date.")
    amount_total: float | None = Field(description="Sum of the stored amounts, in `currency`.")
    currency: str | None = Field(description="Currency label given at upload.")
    segment_columns: list[SegmentColumnOut]
    report: ValidationReportOut
    sha256: str = Field(description="SHA-256 of the stored (normalised) data.")
    created_at: datetime
    url: str


MAX_OFFSET = 1_000_000_000
"""Largest ``offset`` of a list request: past any real list, and inside the databases' 64-bit
integers (a larger number made SQLite fail with a 500)."""


class Page(BaseModel):
    """Paging members of a list response."""

    total: int = Field(description="How many items match, over all pages.")
    limit: int
    offset: int
    next: str | None = Field(description="The next page, or null on the last one.")


class DatasetList(Page):
    items: list[DatasetOut]


class PreviewOut(BaseModel):
    """What the upload form shows before anything is stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "format": DATASET_EXAMPLE["format"],
                    "columns": ["Клиент", "Дата", "Сумма", "Канал"],
                    "suggested_mapping": {
                        "customer_id": "Клиент",
                        "date": "Дата",
                        "amount": "Сумма",
                        "segments": [],
                    },
                    "mapping_problem": None,
                    "rows": [["00017", "05.01.2024", "1 250,00", "Online"]],
                }
            ]
        }
    )

    format: DetectedFormatOut
    columns: list[str]
    suggested_mapping: ColumnMappingOut | None
    mapping_problem: str | None = Field(description="Why no complete mapping could be found.")
    rows: list[list[str | None]] = Field(description="The first data rows, as text.")


class CustomerRFM(BaseModel):
    """One customer's repeat purchases, recency and age in whole periods of ``time_unit``
    (Fader, Hardie & Lee 2005: x, t_x, T) and mean spend of the repeat purchases."""

    customer_id: str
    segments: dict[str, str | None]
    frequency: float = Field(description="Repeat purchase periods (x).")
    recency: float = Field(description="Periods from the first to the last purchase (t_x).")
    T: float = Field(description="Periods from the first purchase to the observation end.")
    monetary_value: float = Field(description="Mean spend per repeat period (0 when x = 0).")


class Distribution(BaseModel):
    mean: float | None
    median: float | None
    min: float | None
    max: float | None


class RFMStats(BaseModel):
    """Aggregates over every customer (not only the listed ones)."""

    customers: int
    repeat_customers: int = Field(description="Customers with at least one repeat purchase.")
    share_repeat: float | None
    frequency: Distribution
    recency: Distribution
    T: Distribution
    monetary_value: Distribution = Field(description="Over repeat customers only.")


class RFMSummaryOut(BaseModel):
    """The per-customer summary a fit would use: the first customers and aggregate stats."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "ds_5b1n8q4w6e7d2k9x0c3v",
                    "time_unit": "weeks",
                    "observation_end": "1998-06-30",
                    "customers": [
                        {
                            "customer_id": "00001",
                            "segments": {},
                            "frequency": 3.0,
                            "recency": 49.0,
                            "T": 77.0,
                            "monetary_value": 23.72,
                        }
                    ],
                    "stats": {
                        "customers": 23570,
                        "repeat_customers": 10620,
                        "share_repeat": 0.45,
                        "frequency": {"mean": 1.5, "median": 0.0, "min": 0.0, "max": 41.0},
                        "recency": {"mean": 18.3, "median": 0.0, "min": 0.0, "max": 77.0},
                        "T": {"mean": 71.9, "median": 72.0, "min": 66.0, "max": 77.0},
                        "monetary_value": {"mean": 37.4, "median": 27.6, "min": 0.0, "max": 3212},
                    },
                }
            ]
        }
    )

    dataset_id: str
    time_unit: TimeUnitName
    observation_end: date
    customers: list[CustomerRFM]
    stats: RFMStats
