"""CSV that spreadsheets open safely: CSV injection neutralised, numbers kept as numbers.

CSV injection (OWASP, "CSV Injection"): a spreadsheet treats a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), and a leading
tab or carriage return can hide such a start. Every TEXT cell starting with one of those
characters gets a leading apostrophe (``'=HYPERLINK(...)``), which spreadsheets show as text.
Real numbers are never prefixed: Python ``int``/``float`` values are written as numbers, and so
is text that reads as a plain decimal number (``-12.5`` stays ``-12.5``: a negative amount is
not a formula).

Formatting:

* numbers: shortest round-trip digits without an exponent (``0.0001``, never ``1e-04``);
  NaN and infinities become empty cells; ``decimal="comma"`` writes ``1234,5`` (then the
  separator must not be a comma);
* booleans: ``true`` / ``false``; ``None``: an empty cell;
* dates and datetimes: ISO 8601 (``2024-01-31``, ``2024-01-31T12:00:00+00:00``);
* ``bom=True`` starts the file with a UTF-8 byte-order mark, which Excel needs to read UTF-8
  (Cyrillic names) correctly.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Cell = str | int | float | bool | date | datetime | Decimal | None
DecimalMark = Literal["point", "comma"]
SEPARATORS: tuple[str, ...] = (",", ";", "\t")
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
UTF8_BOM = "\ufeff"
_PLAIN_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")


def format_number(value: float | int | Decimal, decimal: DecimalMark = "point") -> str:
    """A number as a spreadsheet reads it: no exponent, shortest round-trip digits."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number here")
    if isinstance(value, int):
        text = str(value)
    else:
        number = float(value)
        if not math.isfinite(number):
            return ""
        text = np.format_float_positional(number, trim="-")
    return text.replace(".", ",") if decimal == "comma" else text


def neutralise(text: str) -> str:
    """Text made safe for a spreadsheet: a leading apostrophe when it would start a formula.

    Text that is a plain decimal number (``-3``, ``+0.5``) is left alone: it is data, and a
    spreadsheet reads it as a number, not as a formula.
    """
    if text.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def format_cell(value: Cell, decimal: DecimalMark = "point") -> str:
    """One cell's text (see the module docstring for each type)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return format_number(value, decimal)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return neutralise(str(value))


def check_options(sep: str, decimal: DecimalMark) -> list[tuple[str, str]]:
    """Problems with the locale options as (option, message) pairs; empty when they are fine."""
    problems = []
    if sep not in SEPARATORS:
        problems.append(("sep", f"must be one of {list(SEPARATORS)}"))
    if decimal not in ("point", "comma"):
        problems.append(("decimal", "must be 'point' or 'comma'"))
    elif decimal == "comma" and sep == ",":
        problems.append(("sep", "must not be ',' with decimal=comma (use ';')"))
    return problems


def write_csv(
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    sep: str = ",",
    decimal: DecimalMark = "point",
    bom: bool = False,
) -> str:
    """The table as CSV text (``\\r\\n`` line ends, fields quoted only when needed).

    Raises ValueError for impossible options (see :func:`check_options`).
    """
    problems = check_options(sep, decimal)
    if problems:
        raise ValueError("; ".join(f"{name} {message}" for name, message in problems))
    out = io.StringIO()
    if bom:
        out.write(UTF8_BOM)
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n")
    writer.writerow([neutralise(str(h)) for h in header])
    for row in rows:
        writer.writerow([format_cell(v, decimal) for v in row])
    return out.getvalue()


_TRIGGER_PATTERN = "^[=+\\-@\t\r]"


def neutralise_arrow(data: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
    """:func:`neutralise` applied to every string column of an Arrow batch (vectorised), for
    CSV written by Arrow's streaming writer. Numbers, dates and nulls are left as they are."""
    columns = []
    for column in data.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            starts = pc.match_substring_regex(column, _TRIGGER_PATTERN)
            plain = pc.match_substring_regex(column, _PLAIN_NUMBER.pattern)
            risky = pc.and_kleene(starts, pc.invert(plain))
            quoted = pc.binary_join_element_wise(pa.scalar("'", column.type), column, "")
            columns.append(pc.if_else(risky, quoted, column))
        else:
            columns.append(column)
    if isinstance(data, pa.Table):
        return pa.Table.from_arrays(columns, schema=data.schema)
    return pa.RecordBatch.from_arrays(columns, schema=data.schema)
