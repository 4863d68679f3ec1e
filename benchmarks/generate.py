"""Deterministic synthetic transaction log for benchmarks (numpy + pyarrow only).

Every customer follows the stories of the models this project fits:

- Acquisition: the first purchase happens at a uniform time over the first ``acquisition_days``
  of the study (CDNOW: the cohort was acquired in the first 12 weeks of 1997).
- Purchasing, BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way",
  Marketing Science 24(2), Sec. 2): while alive, repeat purchases follow a Poisson process with
  rate lambda ~ gamma(shape r, rate alpha) per day; after each REPEAT purchase the customer
  drops out for good with probability p ~ beta(a, b). The defaults are the paper's weekly
  CDNOW estimates (r=0.243, alpha=4.414 weeks, a=0.793, b=2.426) with alpha converted to days
  (x 7), so the simulated population looks like CDNOW on a daily clock.
- Observation: the log ends ``observation_days`` after the study start (78 weeks, as CDNOW).
  Times are floored to whole days; two orders on the same day stay two orders.
- Spend, Gamma-Gamma (Fader, Hardie & Lee 2005 JMR; Fader & Hardie 2013 note 025): every
  customer draws nu ~ gamma(shape q, rate gamma) and every order's amount is
  gamma(shape p, rate nu) (p=6.25, q=3.74, gamma=15.44 by default, i.e. a mean of about $35),
  rounded to cents and floored at 0.01 so that every amount is positive.
- Segments: ``channel`` (Online/Retail/Partner), ``region`` (5 regions) and ``nps_group``
  (promoter/passive/detractor) are drawn independently per customer. With
  ``segment_effects=True`` channel and region scale the purchase rate lambda and the NPS group
  scales the beta parameter ``a`` (so the mean dropout probability a/(a+b)): promoters stay
  longer, detractors leave sooner. The whole population is then a mixture of BG/NBD
  populations, close to but not exactly the CDNOW BG/NBD; ``segment_effects=False`` gives
  the exact BG/NBD population.

Determinism: customers are generated in fixed blocks of ``BLOCK_SIZE``; block ``k`` draws from
its own streams seeded by ``SeedSequence(seed, spawn_key=(k, stream))``. Writing in chunks of
any size therefore produces the same rows, and because every stream is consumed customer by
customer, the first N customers of a larger file are the same as a file of N customers.
Memory is bounded by one chunk (default 262,144 customers, about 750k orders).

CLI::

    python benchmarks/generate.py --customers 1000000 --seed 42 --out benchmarks/data/tx_1m.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numpy.typing import NDArray

BLOCK_SIZE = 4096
"""Customers per random-number block: fixed, so that output never depends on the chunk size."""

DEFAULT_CHUNK_CUSTOMERS = 64 * BLOCK_SIZE

CHANNELS = ("Online", "Retail", "Partner")
REGIONS = ("North", "South", "East", "West", "Central")
NPS_GROUPS = ("promoter", "passive", "detractor")

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("order_id", pa.string()),
        ("date", pa.timestamp("us")),
        ("amount", pa.float64()),
        ("channel", pa.string()),
        ("region", pa.string()),
        ("nps_group", pa.string()),
    ]
)

# Random streams within a block (the stream number is part of the seed, so never reorder).
_STREAM_SEGMENTS, _STREAM_FIRST, _STREAM_RATE, _STREAM_DROPOUT = 0, 1, 2, 3
_STREAM_LIFETIME, _STREAM_COUNT, _STREAM_TIMES, _STREAM_NU, _STREAM_SPEND = 4, 5, 6, 7, 8


@dataclass(frozen=True)
class BGNBDParams:
    """BG/NBD parameters with ``alpha`` in DAYS (rate lambda ~ gamma(r, alpha) per day)."""

    r: float = 0.243
    alpha: float = 4.414 * 7.0
    a: float = 0.793
    b: float = 2.426


@dataclass(frozen=True)
class SpendParams:
    """Gamma-Gamma parameters; ``gamma`` is in currency units."""

    p: float = 6.25
    q: float = 3.74
    gamma: float = 15.44


@dataclass(frozen=True)
class Segment:
    """Labels, population shares and parameter multipliers of one segment dimension."""

    labels: tuple[str, ...]
    shares: tuple[float, ...]
    multipliers: tuple[float, ...]

    def cumulative(self) -> NDArray[np.float64]:
        return np.cumsum(np.asarray(self.shares) / sum(self.shares))[:-1]


CHANNEL = Segment(CHANNELS, (0.55, 0.30, 0.15), (1.20, 0.80, 0.90))
"""Channel shares; multiplier on the purchase rate lambda."""
REGION = Segment(REGIONS, (0.25, 0.20, 0.20, 0.20, 0.15), (1.10, 0.95, 1.00, 1.05, 0.85))
"""Region shares; multiplier on the purchase rate lambda."""
NPS = Segment(NPS_GROUPS, (0.35, 0.40, 0.25), (0.70, 1.00, 1.50))
"""NPS shares; multiplier on beta's ``a`` (mean dropout a/(a+b): 0.186, 0.246, 0.329)."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines the generated rows (times in days)."""

    n_customers: int
    seed: int = 42
    start_date: dt.date = dt.date(1997, 1, 1)
    acquisition_days: float = 84.0
    observation_days: int = 546
    purchase: BGNBDParams = field(default_factory=BGNBDParams)
    spend: SpendParams = field(default_factory=SpendParams)
    segment_effects: bool = True

    def __post_init__(self) -> None:
        if self.n_customers < 0:
            raise ValueError(f"n_customers must be >= 0, got {self.n_customers}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not 0 < self.acquisition_days <= self.observation_days:
            raise ValueError("need 0 < acquisition_days <= observation_days")
        values = (*vars(self.purchase).values(), *vars(self.spend).values())
        if not all(np.isfinite(v) and v > 0 for v in values):
            raise ValueError("model parameters must be finite and > 0")

    @property
    def n_blocks(self) -> int:
        return -(-self.n_customers // BLOCK_SIZE)


@dataclass(frozen=True)
class GenerationStats:
    """What a call to :func:`write_transactions` produced."""

    customers: int
    transactions: int
    seconds: float

    @property
    def transactions_per_customer(self) -> float:
        return self.transactions / self.customers if self.customers else 0.0


# --------------------------------------------------------------------------- simulation
def _rng(config: GeneratorConfig, block: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(block, stream)))


def _draw_segments(rng: np.random.Generator, n: int) -> NDArray[np.int8]:
    """Segment codes, shape (n, 3): channel, region, NPS group (one uniform per dimension)."""
    u = rng.random((n, 3))
    codes = [
        np.searchsorted(seg.cumulative(), u[:, j], side="right")
        for j, seg in enumerate((CHANNEL, REGION, NPS))
    ]
    return np.column_stack(codes).astype(np.int8)


def _purchase_parameters(
    config: GeneratorConfig, block: int, segments: NDArray[np.int8]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-customer purchase rate lambda (per day) and dropout probability p."""
    n = segments.shape[0]
    bg = config.purchase
    rate_mult = np.ones(n)
    a = np.full(n, bg.a)
    if config.segment_effects:
        rate_mult = (
            np.asarray(CHANNEL.multipliers)[segments[:, 0]]
            * np.asarray(REGION.multipliers)[segments[:, 1]]
        )
        a = bg.a * np.asarray(NPS.multipliers)[segments[:, 2]]
    lam = _rng(config, block, _STREAM_RATE).standard_gamma(bg.r, size=n) * rate_mult / bg.alpha
    p = _rng(config, block, _STREAM_DROPOUT).beta(a, bg.b)
    # beta draws can underflow to exactly 0 for small a; geometric() needs p > 0.
    return lam, np.clip(p, 1e-15, 1.0)


def _repeat_offsets(
    config: GeneratorConfig,
    block: int,
    lam: NDArray[np.float64],
    p: NDArray[np.float64],
    window: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Repeat purchases per customer: (owner index per purchase, time after first purchase).

    The customer would make L ~ geometric(p) repeat purchases before dropping out (the last of
    them is the one after which they leave). Within the window the Poisson process has
    N ~ Poisson(lambda * window) events whose times are N sorted uniforms; the customer makes
    the first min(L, N) of them. Sorting is within customer, drawing is customer by customer.
    """
    lifetime_purchases = _rng(config, block, _STREAM_LIFETIME).geometric(p)
    n_events = _rng(config, block, _STREAM_COUNT).poisson(lam * window)
    owner = np.repeat(np.arange(lam.shape[0]), n_events)
    u = _rng(config, block, _STREAM_TIMES).random(owner.shape[0])
    keys = np.sort(owner + u)  # owner + u in [owner, owner + 1): sorts by owner, then time
    u_sorted = keys - owner  # owner is already sorted, so it lines up with keys
    starts = np.cumsum(n_events) - n_events
    rank = np.arange(owner.shape[0]) - starts[owner]
    made = rank < np.minimum(lifetime_purchases, n_events)[owner]
    return owner[made], u_sorted[made] * window[owner[made]]


def simulate_block(config: GeneratorConfig, block: int) -> dict[str, NDArray[np.generic]]:
    """Orders of the customers in ``block`` as numpy columns, sorted by customer then date.

    Columns: ``customer`` (global index), ``day`` (days since the study start, int32),
    ``amount`` (currency, 2 decimals) and segment codes ``channel``, ``region``, ``nps_group``.
    """
    first_customer = block * BLOCK_SIZE
    n = min(BLOCK_SIZE, config.n_customers - first_customer)
    segments = _draw_segments(_rng(config, block, _STREAM_SEGMENTS), n)
    first = _rng(config, block, _STREAM_FIRST).random(n) * config.acquisition_days
    window = config.observation_days - first
    lam, p = _purchase_parameters(config, block, segments)
    rep_owner, rep_offset = _repeat_offsets(config, block, lam, p, window)

    owner = np.concatenate([np.arange(n), rep_owner])
    times = np.concatenate([first, first[rep_owner] + rep_offset])
    order = np.lexsort((times, owner))  # per customer: first purchase, then repeats in time
    owner, times = owner[order], times[order]

    sp = config.spend
    nu = _rng(config, block, _STREAM_NU).standard_gamma(sp.q, size=n) / sp.gamma
    raw = _rng(config, block, _STREAM_SPEND).standard_gamma(sp.p, size=owner.shape[0])
    amount = np.maximum(np.round(raw / nu[owner], 2), 0.01)
    day = np.minimum(np.floor(times), config.observation_days - 1).astype(np.int32)
    return {
        "customer": (first_customer + owner).astype(np.int64),
        "day": day,
        "amount": amount,
        "channel": segments[owner, 0],
        "region": segments[owner, 1],
        "nps_group": segments[owner, 2],
    }


# --------------------------------------------------------------------------- to Arrow
def _prefixed_ids(prefix: str, numbers: NDArray[np.int64], width: int) -> pa.Array:
    """Strings like C0000000042: ``prefix`` then ``numbers`` zero-padded to ``width`` digits."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _to_table(
    config: GeneratorConfig, columns: dict[str, NDArray[np.generic]], first_order: int
) -> pa.Table:
    n_rows = columns["day"].shape[0]
    epoch_day = (config.start_date - dt.date(1970, 1, 1)).days
    micros = (columns["day"].astype(np.int64) + epoch_day) * 86_400_000_000
    labels = {"channel": CHANNELS, "region": REGIONS, "nps_group": NPS_GROUPS}
    arrays = {
        "customer_id": _prefixed_ids("C", np.asarray(columns["customer"], np.int64), 10),
        "order_id": _prefixed_ids("O", np.arange(first_order, first_order + n_rows), 12),
        "date": pa.array(micros, type=pa.timestamp("us")),
        "amount": pa.array(columns["amount"], type=pa.float64()),
    }
    for name, names in labels.items():
        arrays[name] = pa.array(names, pa.string()).take(pa.array(columns[name]))
    return pa.table(arrays, schema=SCHEMA)


def iter_tables(
    config: GeneratorConfig, chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS
) -> Iterator[pa.Table]:
    """Yield the transaction log as Arrow tables of ``chunk_customers`` customers each.

    ``chunk_customers`` is rounded up to a multiple of ``BLOCK_SIZE``; it changes how the rows
    are split into tables (and Parquet row groups), never the rows themselves.
    """
    if chunk_customers < 1:
        raise ValueError(f"chunk_customers must be >= 1, got {chunk_customers}")
    blocks_per_chunk = -(-chunk_customers // BLOCK_SIZE)
    next_order = 0
    for start in range(0, config.n_blocks, blocks_per_chunk):
        parts = [
            simulate_block(config, b)
            for b in range(start, min(start + blocks_per_chunk, config.n_blocks))
        ]
        columns = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        yield _to_table(config, columns, next_order)
        next_order += columns["day"].shape[0]


def generate_table(
    config: GeneratorConfig, chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS
) -> pa.Table:
    """The whole log as one Arrow table (for tests and small data)."""
    tables = list(iter_tables(config, chunk_customers))
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def _csv_table(table: pa.Table) -> pa.Table:
    """CSV keeps the calendar date only (YYYY-MM-DD)."""
    idx = table.schema.get_field_index("date")
    return table.set_column(idx, "date", table.column("date").cast(pa.date32()))


def write_transactions(
    out: str | Path,
    config: GeneratorConfig,
    *,
    chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS,
    file_format: Literal["parquet", "csv"] | None = None,
    compression: str = "zstd",
) -> GenerationStats:
    """Stream the log to ``out`` chunk by chunk (Parquet row groups, or CSV with a header).

    The format follows the file suffix unless ``file_format`` is given. Memory use is bounded
    by one chunk whatever ``config.n_customers``.
    """
    path = Path(out)
    fmt = file_format or ("csv" if path.suffix.lower() == ".csv" else "parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    n_rows = 0
    tables = iter_tables(config, chunk_customers)
    if fmt == "csv":
        csv_schema = SCHEMA.set(SCHEMA.get_field_index("date"), pa.field("date", pa.date32()))
        with pa_csv.CSVWriter(str(path), csv_schema) as csv_writer:
            for table in tables:
                csv_writer.write_table(_csv_table(table))
                n_rows += table.num_rows
    elif fmt == "parquet":
        with pq.ParquetWriter(str(path), SCHEMA, compression=compression) as pq_writer:
            for table in tables:
                pq_writer.write_table(table, row_group_size=table.num_rows or None)
                n_rows += table.num_rows
    else:
        raise ValueError(f"unknown file format {fmt!r}: use 'parquet' or 'csv'")
    return GenerationStats(config.n_customers, n_rows, time.perf_counter() - began)


# --------------------------------------------------------------------------- CLI
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, required=True, help="number of customers")
    parser.add_argument("--seed", type=int, default=42, help="main seed (default 42)")
    parser.add_argument("--out", type=Path, required=True, help=".parquet or .csv file")
    parser.add_argument("--format", choices=("parquet", "csv"), default=None)
    parser.add_argument(
        "--chunk-customers",
        type=int,
        default=DEFAULT_CHUNK_CUSTOMERS,
        help=f"customers per chunk / row group (multiple of {BLOCK_SIZE}; memory bound)",
    )
    parser.add_argument(
        "--no-segment-effects",
        action="store_true",
        help="segments do not change the parameters (an exact BG/NBD population)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    config = GeneratorConfig(
        n_customers=args.customers, seed=args.seed, segment_effects=not args.no_segment_effects
    )
    stats = write_transactions(
        args.out, config, chunk_customers=args.chunk_customers, file_format=args.format
    )
    print(
        f"wrote {stats.transactions:,} orders for {stats.customers:,} customers "
        f"({stats.transactions_per_customer:.3f} per customer) to {args.out} "
        f"in {stats.seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
