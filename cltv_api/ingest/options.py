"""Options that steer parsing and the validation policies of an ingest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from cltv_api.errors import InvalidInput

Kind = Literal["transactions", "summary", "contractual"]
ErrorPolicy = Literal["reject", "drop"]
NegativePolicy = Literal["reject", "drop", "keep"]
ZeroPolicy = Literal["reject", "drop", "keep"]
FuturePolicy = Literal["error", "drop", "keep"]

KINDS: tuple[str, ...] = ("transactions", "summary", "contractual")


@dataclass(frozen=True)
class ParseOptions:
    """How to read a file and what to do with problem rows.

    Every format field left at ``None`` is detected from the file; a value given here wins.

    Attributes:
        encoding: text encoding of a CSV (any Python codec name, e.g. ``"cp1251"``).
        delimiter: CSV field delimiter (one character, e.g. ``";"`` or ``"\\t"``).
        decimal_separator: ``"."`` or ``","``.
        thousands_separator: ``" "`` (any space, incl. U+00A0 and U+202F), ``"."``, ``","``,
            or ``""`` for none.
        date_format: a ``strptime`` format (``"%d/%m/%Y"``) or one of ``"iso"``, ``"excel"``
            (serial days since 1899-12-30), ``"unix"``/``"unix_s"`` (seconds since
            1970-01-01 UTC) and ``"unix_ms"``. A format without a time part also accepts
            ``" %H:%M"``, ``" %H:%M:%S"`` and ``" %H:%M:%S.%f"`` after the date.
        header_row: 1-based line (CSV) or row (XLSX) of the header; detected when ``None``.
        sheet: XLSX sheet name; the first sheet when ``None``.
        strip_currency: remove currency symbols and codes stuck to numbers (``₽``, ``руб.``,
            ``$``, ``USD``...) before parsing them.
        as_of: dates after this day are "future dates"; today when ``None``.
        on_error: ``"reject"`` (default) rejects the whole file when any row cannot be read
            (missing id, unparsable or impossible date/amount, malformed CSV row);
            ``"drop"`` drops those rows and reports them.
        negative_amounts: returns. ``"drop"`` (default) drops and reports them, ``"reject"``
            rejects the file, ``"keep"`` stores them.
        zero_amounts: ``"keep"`` (default, reported), ``"drop"`` or ``"reject"``.
        future_dates: ``"error"`` (default: treated like an unreadable row, so ``on_error``
            decides), ``"drop"`` or ``"keep"`` (both reported).
        max_issues_per_kind: how many example rows the report lists per kind of problem.
        max_file_bytes: larger files raise ``PayloadTooLarge``; ``None`` for no limit.
        memory_limit: DuckDB memory limit (e.g. ``"1GB"``); DuckDB spills to disk beyond it.
        threads: DuckDB worker threads; ``None`` for DuckDB's default.
        sample_bytes: how much of a CSV the sniffer reads to detect its format.
    """

    encoding: str | None = None
    delimiter: str | None = None
    decimal_separator: str | None = None
    thousands_separator: str | None = None
    date_format: str | None = None
    header_row: int | None = None
    sheet: str | None = None
    strip_currency: bool = True
    as_of: date | None = None
    on_error: ErrorPolicy = "reject"
    negative_amounts: NegativePolicy = "drop"
    zero_amounts: ZeroPolicy = "keep"
    future_dates: FuturePolicy = "error"
    max_issues_per_kind: int = 20
    max_file_bytes: int | None = None
    memory_limit: str = "1GB"
    threads: int | None = None
    sample_bytes: int = 2 * 1024 * 1024

    def __post_init__(self) -> None:
        _check_choice("on_error", self.on_error, ("reject", "drop"))
        _check_choice("negative_amounts", self.negative_amounts, ("reject", "drop", "keep"))
        _check_choice("zero_amounts", self.zero_amounts, ("reject", "drop", "keep"))
        _check_choice("future_dates", self.future_dates, ("error", "drop", "keep"))
        if self.decimal_separator is not None:
            _check_choice("decimal_separator", self.decimal_separator, (".", ","))
        if self.thousands_separator is not None:
            _check_choice("thousands_separator", self.thousands_separator, ("", " ", ".", ","))
        if self.thousands_separator and self.thousands_separator == self.decimal_separator:
            raise InvalidInput("thousands_separator and decimal_separator must differ")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise InvalidInput(f"delimiter must be one character, got {self.delimiter!r}")
        if self.header_row is not None and self.header_row < 1:
            raise InvalidInput("header_row is 1-based and must be >= 1")
        if self.max_issues_per_kind < 1:
            raise InvalidInput("max_issues_per_kind must be >= 1")
        if self.sample_bytes < 4096:
            raise InvalidInput("sample_bytes must be at least 4096")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
