"""Recalculate XLSX workbooks in LibreOffice (headless, through UNO) and print their values.

Run with the system Python that has the ``uno`` module (Debian's ``python3-uno``), not the
project's virtual environment; it imports nothing from the project::

    /usr/bin/python3 tests/cltv_api/exports/recalc_uno.py book1.xlsx [book2.xlsx ...]

It starts ``soffice --headless`` on a free local port with a throw-away user profile, loads each
workbook, calls ``calculateAll()`` (every formula recomputed by LibreOffice, not read from the
file's cache) and prints one JSON object per workbook, in order, as a JSON list:

    {"results": {label: value, ...},          # sheet "Results": column A -> column B
     "sheets": {name: [[cell, ...], ...]},     # every sheet's used area, row by row
     "errors": ["Results!B5: error 532", ...]} # cells whose formula failed

A cell is a number, a string, or null when empty. Exit status 2 when soffice is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException

CONNECT_TIMEOUT_S = 90.0
EMPTY, VALUE, TEXT, FORMULA = "EMPTY", "VALUE", "TEXT", "FORMULA"
FORMULA_RESULT_STRING = 2  # com.sun.star.sheet.FormulaResult.STRING


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_office(profile: Path, port: int) -> subprocess.Popen[bytes]:
    soffice = shutil.which("soffice")
    if soffice is None:
        print("soffice not found: install libreoffice-calc-nogui and python3-uno", file=sys.stderr)
        sys.exit(2)
    return subprocess.Popen(
        [
            soffice,
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            "--nodefault",
            f"-env:UserInstallation={profile.as_uri()}",
            f"--accept=socket,host=127.0.0.1,port={port};urp;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def connect(port: int, process: subprocess.Popen[bytes]) -> Any:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local
    )
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            context = resolver.resolve(
                f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext"
            )
            return context.ServiceManager.createInstanceWithContext(
                "com.sun.star.frame.Desktop", context
            )
        except NoConnectException:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def cell_value(cell: Any) -> Any:
    kind = cell.getType().value
    if kind == EMPTY:
        return None
    if kind == TEXT:
        return cell.getString()
    if kind == FORMULA and cell.FormulaResultType2 == FORMULA_RESULT_STRING:
        return cell.getString()
    return cell.getValue()


def used_area(sheet: Any) -> list[list[Any]]:
    cursor = sheet.createCursor()
    cursor.gotoEndOfUsedArea(False)
    address = cursor.getRangeAddress()
    rows = []
    for r in range(address.EndRow + 1):
        rows.append(
            [cell_value(sheet.getCellByPosition(c, r)) for c in range(address.EndColumn + 1)]
        )
    return rows


def read_workbook(desktop: Any, path: Path) -> dict[str, Any]:
    hidden = PropertyValue()
    hidden.Name, hidden.Value = "Hidden", True
    doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(str(path)), "_blank", 0, (hidden,))
    try:
        doc.calculateAll()
        sheets, errors = {}, []
        for name in doc.Sheets.getElementNames():
            sheet = doc.Sheets.getByName(name)
            rows = used_area(sheet)
            sheets[name] = rows
            for r, row in enumerate(rows):
                for c in range(len(row)):
                    cell = sheet.getCellByPosition(c, r)
                    if cell.getType().value == FORMULA and cell.getError() != 0:
                        errors.append(f"{name}!R{r + 1}C{c + 1}: error {cell.getError()}")
        results = {str(row[0]): row[1] for row in sheets.get("Results", [])[1:] if row and row[0]}
        return {"results": results, "sheets": sheets, "errors": errors}
    finally:
        doc.close(True)


def main(paths: list[str]) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        process = start_office(Path(profile), port)
        try:
            desktop = connect(port, process)
            out = [read_workbook(desktop, Path(p).resolve()) for p in paths]
            # the office may drop the bridge while it quits
            with contextlib.suppress(Exception):
                desktop.terminate()
        finally:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    os.environ.setdefault("SAL_USE_VCLPLUGIN", "svp")
    main(sys.argv[1:])
