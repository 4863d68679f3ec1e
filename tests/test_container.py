"""The Dockerfile stays valid: hadolint passes and everything it names exists in the project."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    proc = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_copied_paths_exist() -> None:
    sources = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources, "the Dockerfile copies the project"
    for src in sources:
        assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the project"


def test_command_names_an_importable_app_with_a_health_route() -> None:
    match = re.search(r'CMD \["uvicorn", "([\w.]+):(\w+)"', DOCKERFILE)
    assert match, "the image runs uvicorn"
    module = importlib.import_module(match.group(1))
    app = getattr(module, match.group(2))
    assert "/healthz" in app.openapi()["paths"]
    assert "/healthz" in DOCKERFILE  # the HEALTHCHECK probes it


def test_extras_named_in_docs_exist_in_pyproject() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for extra in ("postgres", "spark"):
        assert f"\n{extra} = [" in pyproject
    assert "EXTRAS: postgres" in (ROOT / "compose.yaml").read_text(encoding="utf-8")
