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

``--update-links`` lets the workbooks' external links (``WEBSERVICE`` formulas) fetch their data
while they load, as a user who trusts the file would: LibreOffice (7.4 here) blocks external
content (``Err:540``) unless the document's folder is a trusted location (Tools > Options >
Security > Macro Security > Trusted Sources, here the folders of the workbooks given) AND the
document is loaded with ``UpdateDocMode=FULL_UPDATE``; ``soffice --convert-to`` does neither::

    /usr/bin/python3 tests/cltv_api/exports/recalc_uno.py --update-links pull.xlsx
"""

from __future__ import annotations

import argparse
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
FULL_UPDATE = 3  # com.sun.star.document.UpdateDocMode.FULL_UPDATE
SECURITY_NODE = "/org.openoffice.Office.Common/Security/Scripting"
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


def property_value(name: str, value: Any) -> PropertyValue:
    prop = PropertyValue()
    prop.Name, prop.Value = name, value
    return prop


def connect(port: int, process: subprocess.Popen[bytes]) -> Any:
    """The office's component context, once its socket answers."""
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local
    )
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            return resolver.resolve(
                f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext"
            )
        except NoConnectException:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def desktop_of(context: Any) -> Any:
    return context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)


def trust_folders(context: Any, folders: list[Path]) -> None:
    """Make ``folders`` trusted locations of this (throw-away) profile, so that documents there
    may update their external links."""
    provider = context.ServiceManager.createInstanceWithContext(
        "com.sun.star.configuration.ConfigurationProvider", context
    )
    access = provider.createInstanceWithArguments(
        "com.sun.star.configuration.ConfigurationUpdateAccess",
        (property_value("nodepath", SECURITY_NODE),),
    )
    urls = tuple(uno.systemPathToFileUrl(str(folder)) for folder in folders)
    # a typed sequence must go through uno.invoke (a plain tuple is not a []string)
    uno.invoke(access, "replaceByName", ("SecureURL", uno.Any("[]string", urls)))
    access.commitChanges()


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


def read_workbook(desktop: Any, path: Path, update_links: bool = False) -> dict[str, Any]:
    options = [property_value("Hidden", True)]
    if update_links:
        options.append(property_value("UpdateDocMode", FULL_UPDATE))
    url = uno.systemPathToFileUrl(str(path))
    doc = desktop.loadComponentFromURL(url, "_blank", 0, tuple(options))
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


def recalculate_all(
    port: int, process: subprocess.Popen[bytes], paths: list[Path], update_links: bool
) -> list[dict[str, Any]]:
    """Every workbook read through the office on ``port``, which is asked to quit afterwards
    (also when reading fails)."""
    context = connect(port, process)
    if update_links:
        trust_folders(context, sorted({p.parent for p in paths}))
    desktop = desktop_of(context)
    try:
        return [read_workbook(desktop, p, update_links) for p in paths]
    finally:
        # the office may drop the bridge while it quits
        with contextlib.suppress(Exception):
            desktop.terminate()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="Recalculate workbooks in LibreOffice.")
    parser.add_argument("paths", nargs="+", type=Path, help="XLSX files")
    parser.add_argument(
        "--update-links",
        action="store_true",
        help="trust the workbooks' folders and let WEBSERVICE formulas fetch on load",
    )
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.paths]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        process = start_office(Path(profile), port)
        try:
            out = recalculate_all(port, process, paths, args.update_links)
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
