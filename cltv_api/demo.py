"""A ready-to-try service: ``python -m cltv_api.demo`` (what ``make run`` calls).

1. creates or migrates the database in ``CLTV_DATA_DIR`` (default ``./data``);
2. creates a workspace ``demo`` with an admin key, unless one exists already: the key is kept in
   ``<data_dir>/demo-key.txt`` (permissions 0600) so later runs print it again;
3. loads the CDNOW master transactions (23,570 customers, 1997-1998; see
   ``cltv_api/demo_data/README.md``) as a data set, with the customer's acquisition month as a
   segment column ``cohort`` (``--generated N`` loads N generated customers instead);
4. fits BG/NBD + Gamma-Gamma in weeks;
5. prints the key and example ``curl`` commands, then serves on 127.0.0.1:8000.

Every step is skipped when its result exists, so re-running is cheap. ``--no-serve`` stops
after printing (for tests and scripts); ``--host``/``--port`` choose where to listen.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session

from cltv_api.errors import Unauthorized
from cltv_api.main import create_app
from cltv_api.schemas.datasets import UploadOptions
from cltv_api.schemas.fits import FitCreate
from cltv_api.services import datasets as dataset_service
from cltv_api.services import fits as fit_service
from cltv_api.services.workspaces import ALL_SCOPES, authenticate, create_workspace, issue_key
from cltv_api.settings import Settings
from cltv_api.storage.db import Database
from cltv_api.storage.migrate import upgrade_to_head
from cltv_api.storage.repositories import DatasetRepository, FitRepository
from cltv_api.storage.tables import Dataset, Fit, Workspace

DEMO_WORKSPACE = "demo"
KEY_FILE = "demo-key.txt"
CDNOW_NAME = "CDNOW master 1997-1998"
CDNOW_FILE = "cdnow_master.csv.gz"
GENERATED_NAME = "generated transactions ({n} customers)"
KEY_FILE_MODE = 0o600


@dataclass(frozen=True)
class DemoState:
    """What the demo set up (or found from an earlier run)."""

    workspace_id: str
    key: str
    dataset_id: str
    fit_id: str
    fit_status: str
    segment_by: tuple[str, ...]


def cdnow_path() -> Path:
    """The vendored CDNOW master transactions (gzip'd CSV)."""
    return Path(str(files("cltv_api") / "demo_data" / CDNOW_FILE))


def cdnow_table() -> pa.Table:
    """CDNOW transactions with the acquisition month of each customer as ``cohort``."""
    with gzip.open(cdnow_path(), "rb") as fh:
        table = pa_csv.read_csv(
            fh,
            convert_options=pa_csv.ConvertOptions(
                column_types={"customer_id": pa.string(), "date": pa.date32()}
            ),
        )
    firsts = table.group_by("customer_id").aggregate([("date", "min")])
    months = pc.strftime(firsts["date_min"].cast(pa.timestamp("s")), format="%Y-%m")
    cohorts = pa.table({"customer_id": firsts["customer_id"], "cohort": months})
    joined = table.join(cohorts, "customer_id")
    return joined.sort_by([("customer_id", "ascending"), ("date", "ascending")])


def generated_table(customers: int) -> pa.Table:
    """Synthetic transactions (``benchmarks.generate``) with channel and region segments."""
    from benchmarks.generate import GeneratorConfig, generate_table  # noqa: PLC0415 - source tree

    return generate_table(GeneratorConfig(n_customers=customers, seed=42))


# ------------------------------------------------------------------------------ steps


def _find_workspace(session: Session) -> Workspace | None:
    query = select(Workspace).where(Workspace.name == DEMO_WORKSPACE).order_by(Workspace.created_at)
    return session.scalars(query).first()


def _write_key(path: Path, key: str) -> None:
    """Write the key readable by its owner only (0600), also when the file existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    os.chmod(path, KEY_FILE_MODE)


def demo_key(db: Database, settings: Settings) -> tuple[str, str]:
    """(workspace id, key): the saved key if it still works, else a new admin key for the demo
    workspace (created if missing), saved for next time."""
    path = settings.data_dir / KEY_FILE
    with db.session() as session:
        if path.exists():
            key = path.read_text(encoding="utf-8").strip()
            with contextlib.suppress(Unauthorized):
                return authenticate(session, key).workspace.id, key
        workspace = _find_workspace(session) or create_workspace(session, DEMO_WORKSPACE)
        issued = issue_key(session, workspace.id, "demo", ALL_SCOPES)
        workspace_id = workspace.id
    _write_key(path, issued.plaintext)
    return workspace_id, issued.plaintext


def demo_dataset(
    db: Database, settings: Settings, workspace_id: str, generated: int | None
) -> Dataset:
    """The demo's data set, loaded unless a live one of the same name exists."""
    name = CDNOW_NAME if generated is None else GENERATED_NAME.format(n=generated)
    with db.session() as session:
        existing = DatasetRepository(session, workspace_id).list(
            Dataset.name == name, Dataset.deleted_at.is_(None), limit=1
        )
        if existing:
            return existing[0]
    table = cdnow_table() if generated is None else generated_table(generated)
    segments = ["cohort"] if generated is None else ["channel", "region"]
    upload = dataset_service.ReceivedUpload(
        path=dataset_service.new_upload_path(settings), filename=f"{name}.csv"
    )
    try:
        pa_csv.write_csv(table, upload.path)
        options = UploadOptions(
            name=name,
            customer_col="customer_id",
            date_col="date",
            amount_col="amount",
            segment_cols=segments,
            currency="USD",
        )
        with db.session() as session:
            return dataset_service.create_dataset(session, settings, workspace_id, upload, options)
    finally:
        upload.discard()


def demo_fit(db: Database, settings: Settings, workspace_id: str, dataset: Dataset) -> Fit:
    """BG/NBD + Gamma-Gamma in weeks on the data set, unless a fit of it exists."""
    with db.session() as session:
        existing = FitRepository(session, workspace_id).list(
            Fit.dataset_id == dataset.id, Fit.status != "failed", limit=1
        )
        if existing:
            return existing[0]
        body = FitCreate(
            dataset_id=dataset.id,
            purchase_model="bgnbd",
            spend_model="gamma_gamma",
            segment_by=dataset_service.segment_columns(dataset)[:1],
            time_unit="weeks",
        )
        fit, _ = fit_service.create_fit(session, settings, workspace_id, body)
        return fit


def prepare(settings: Settings, generated: int | None = None) -> DemoState:
    """Database, workspace and key, data set and fit (each only if missing)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        upgrade_to_head(db, lock_path=settings.data_dir / ".migrate.lock")
        workspace_id, key = demo_key(db, settings)
        dataset = demo_dataset(db, settings, workspace_id, generated)
        fit = demo_fit(db, settings, workspace_id, dataset)
    finally:
        db.dispose()
    return DemoState(
        workspace_id=workspace_id,
        key=key,
        dataset_id=dataset.id,
        fit_id=fit.id,
        fit_status=fit.status,
        segment_by=tuple(fit.request.get("segment_by", ())),
    )


# ------------------------------------------------------------------------------ output


def instructions(state: DemoState, base_url: str, settings: Settings) -> str:
    """The key and example requests, ready to paste into a shell."""
    auth = '-H "Authorization: Bearer $CLTV_KEY"'
    fit = f"{base_url}/v1/fits/{state.fit_id}"
    by = f"&by={state.segment_by[0]}" if state.segment_by else ""
    lines = [
        f"cltv demo — data in {settings.data_dir.resolve()}",
        "",
        f"API key (workspace '{DEMO_WORKSPACE}', saved in {settings.data_dir / KEY_FILE}):",
        f"  export CLTV_KEY={state.key}",
        "",
        f"Data set {state.dataset_id}; fit {state.fit_id} ({state.fit_status}).",
        "",
        "Try:",
        f"  curl {auth} {base_url}/v1/datasets",
        f"  curl {auth} {fit}",
        f'  curl {auth} "{fit}/segments?horizon=12&horizon_unit=months&margin=0.3{by}"',
        f'  curl {auth} "{fit}/segments?margin=0.3{by}&format=csv"',
        f'  curl {auth} "{fit}/customers?limit=10&sort=-clv"',
        f'  curl {auth} "{fit}/customers?format=csv" -o customers.csv',
        f"  curl {auth} -F file=@orders.csv -F segment_cols=channel {base_url}/v1/datasets",
        "",
        f"API documentation: {base_url}/docs",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cltv_api.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--no-serve", action="store_true", help="set up and print, but do not start the server"
    )
    parser.add_argument(
        "--generated",
        type=int,
        metavar="N",
        help="load N generated customers instead of CDNOW",
    )
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    settings = Settings()
    state = prepare(settings, generated=args.generated)
    stream.write(instructions(state, f"http://{args.host}:{args.port}", settings))
    stream.flush()
    if args.no_serve:
        return 0
    # No access log: share-token pulls carry their secret in the URL path.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, access_log=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
