"""The notebooks in ``notebooks/`` run top to bottom without an error (executed with nbclient on
the ``python3`` kernel of this virtualenv: jupyter_client starts a kernelspec whose command is
``python`` with ``sys.executable``, the interpreter running pytest; cells assert their own key
results)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))

pytestmark = pytest.mark.xdist_group("notebooks")


def test_the_three_notebooks_are_present() -> None:
    assert NOTEBOOKS == [
        "01_models_cdnow.ipynb",
        "02_segments_and_business_case.ipynb",
        "03_contractual_retention.ipynb",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_without_errors(name: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code"
    assert all(cell.execution_count is not None for cell in code)
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert errors == []
