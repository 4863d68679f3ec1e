"""Write the HTTP API reference (``docs/reference.md``) from the application's OpenAPI document.

``python -m tools.api_reference`` renders ``create_app().openapi()`` as Markdown: every
operation (method, path, summary, description, parameters, request body, responses), grouped by
tag in the order the application declares them, then every component schema with its fields.
Nothing is written by hand, so the reference cannot drift from the code; ``tests/test_docs.py``
fails when the committed file differs from a fresh rendering.

``--output PATH`` writes elsewhere (the test renders into a temporary file); ``--check`` only
compares and exits with status 1 when the file is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "reference.md"
REGENERATE = "python -m tools.api_reference"
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
REF_PREFIX = "#/components/schemas/"

Schema = Mapping[str, Any]


# ------------------------------------------------------------------------------ small helpers
def cell(text: object) -> str:
    """Text fit for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def one_paragraph(text: str | None) -> str:
    """A description as one line of prose (OpenAPI descriptions may wrap)."""
    return " ".join((text or "").split())


def ref_name(ref: str) -> str:
    """``#/components/schemas/FitCreate`` -> ``FitCreate``."""
    return ref[len(REF_PREFIX) :] if ref.startswith(REF_PREFIX) else ref


def schema_anchor(name: str) -> str:
    """The anchor of a schema's heading (``#### `FitCreate```): GitHub's slug of the name."""
    return "schema-" + slug(name)


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation other than ``-`` and ``_`` dropped,
    spaces turned into hyphens."""
    kept = (c for c in text.strip().lower() if c.isalnum() or c in "-_ ")
    return "".join(kept).replace(" ", "-")


def type_of(schema: Schema | None) -> str:
    """A short, readable type: ``string``, ``integer (int64)``, ``array of FitOut``,
    ``"a" | "b"``, ``FitOut | null``; referenced schemas link to their section."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = ref_name(str(schema["$ref"]))
        return f"[{name}](#{schema_anchor(name)})"
    if "const" in schema:
        return f"`{schema['const']!r}`".replace("'", '"')
    if "enum" in schema:
        return " | ".join(_enum_value(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            joiner = " & " if key == "allOf" else " | "
            return joiner.join(type_of(s) for s in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_of(schema.get('items'))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return f"object of {type_of(schema['additionalProperties'])}"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    text = str(kind or "object")
    if "format" in schema:
        text += f" ({schema['format']})"
    return text


def _enum_value(value: object) -> str:
    """One allowed value in code style; blank strings quoted so they stay visible."""
    if isinstance(value, str) and not value.strip():
        return f'`"{value}"`'
    return f"`{_literal(value)}`"


def _literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def default_of(schema: Schema | None) -> str:
    """The schema's default as shown in a table (empty when there is none)."""
    if not schema or "default" not in schema:
        return ""
    return f"`{_literal(schema['default'])}`" if schema["default"] != "" else '`""`'


# ------------------------------------------------------------------------------ operations
def operations(spec: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(method, path, operation) in the document's order (the order routes were added)."""
    out = []
    for path, item in spec.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                out.append((method.upper(), path, item[method]))
    return out


def tag_of(operation: Mapping[str, Any]) -> str:
    tags = operation.get("tags") or ["other"]
    return str(tags[0])


def operation_anchor(method: str, path: str) -> str:
    """The anchor of an operation's heading ``### `GET /v1/fits/{fit_id}```."""
    return slug(f"{method} {path}")


def render_parameters(parameters: Sequence[Mapping[str, Any]]) -> list[str]:
    if not parameters:
        return []
    lines = [
        "Parameters:",
        "",
        "| name | in | type | required | default | description |",
        "|---|---|---|---|---|---|",
    ]
    for p in parameters:
        schema = p.get("schema", {})
        description = p.get("description") or schema.get("description", "")
        lines.append(
            f"| `{cell(p['name'])}` | {p.get('in', '')} | {cell(type_of(schema))} | "
            f"{'yes' if p.get('required') else 'no'} | {cell(default_of(schema))} | "
            f"{cell(description)} |"
        )
    return [*lines, ""]


def body_schema_text(media_schema: Schema | None) -> str:
    """A request or response body's schema: its name (linked), or the fields of an inline one."""
    if not media_schema:
        return "any"
    if "$ref" in media_schema or media_schema.get("type") != "object":
        return type_of(media_schema)
    props = media_schema.get("properties", {})
    required = set(media_schema.get("required", []))
    fields = ", ".join(
        f"`{name}`{' (required)' if name in required else ''}: {type_of(s)}"
        for name, s in props.items()
    )
    return f"form with {fields}" if fields else "object"


def render_request_body(body: Mapping[str, Any] | None) -> list[str]:
    if not body:
        return []
    required = " (required)" if body.get("required") else ""
    lines = [f"Request body{required}:", ""]
    description = one_paragraph(body.get("description"))
    if description:
        lines += [description, ""]
    for media, content in body.get("content", {}).items():
        lines.append(f"- `{media}`: {body_schema_text(content.get('schema'))}")
    return [*lines, ""]


def render_responses(responses: Mapping[str, Any]) -> list[str]:
    lines = ["Responses:", "", "| status | description | body |", "|---|---|---|"]
    for status in sorted(responses, key=_status_key):
        response = responses[status]
        bodies = "; ".join(
            f"`{media}` {body_schema_text(content.get('schema'))}"
            for media, content in response.get("content", {}).items()
        )
        lines.append(f"| {status} | {cell(response.get('description', ''))} | {cell(bodies)} |")
    return [*lines, ""]


def _status_key(status: str) -> tuple[int, str]:
    return (int(status), "") if status.isdigit() else (1000, status)


def render_operation(method: str, path: str, operation: Mapping[str, Any]) -> list[str]:
    lines = [f"### `{method} {path}`", ""]
    summary = one_paragraph(operation.get("summary"))
    if summary:
        lines += [f"**{summary}**", ""]
    description = one_paragraph(operation.get("description"))
    if description:
        lines += [description, ""]
    lines += render_parameters(operation.get("parameters", []))
    lines += render_request_body(operation.get("requestBody"))
    lines += render_responses(operation.get("responses", {}))
    return lines


# ------------------------------------------------------------------------------ schemas
def render_schema(name: str, schema: Schema) -> list[str]:
    lines = [f'<a id="{schema_anchor(name)}"></a>', "", f"### `{name}`", ""]
    description = one_paragraph(schema.get("description"))
    if description:
        lines += [description, ""]
    props: Mapping[str, Schema] = schema.get("properties", {})
    if "enum" in schema or not props:
        lines += [f"Type: {type_of({k: v for k, v in schema.items() if k != 'title'})}", ""]
        return lines
    required = set(schema.get("required", []))
    lines += [
        "| field | type | required | default | description |",
        "|---|---|---|---|---|",
    ]
    for field, field_schema in props.items():
        lines.append(
            f"| `{cell(field)}` | {cell(type_of(field_schema))} | "
            f"{'yes' if field in required else 'no'} | {cell(default_of(field_schema))} | "
            f"{cell(field_schema.get('description', ''))} |"
        )
    return [*lines, ""]


# ------------------------------------------------------------------------------ document
def render(spec: Mapping[str, Any]) -> str:
    """The whole reference as Markdown (deterministic for a given OpenAPI document)."""
    info = spec.get("info", {})
    ops = operations(spec)
    tags: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for method, path, operation in ops:
        tags.setdefault(tag_of(operation), []).append((method, path, operation))
    schemas: Mapping[str, Schema] = spec.get("components", {}).get("schemas", {})
    lines = [
        f"# HTTP API reference ({info.get('title', 'API')})",
        "",
        f"<!-- Generated by `{REGENERATE}` from create_app().openapi(); do not edit. -->",
        "",
        "Generated from the application's OpenAPI document, so it lists exactly what the code "
        "serves. For how to use the API see [api.md](api.md) and [quickstart.md](quickstart.md); "
        "the live document is at `/openapi.json` and the interactive one at `/docs`."
        + _problem_note(schemas),
        "",
        f"{len(ops)} operations, {len(schemas)} schemas.",
        "",
        "## Operations",
        "",
    ]
    lines += _index(tags)
    for tag, tag_ops in tags.items():
        lines += [f"## {tag}", ""]
        for method, path, operation in tag_ops:
            lines += render_operation(method, path, operation)
    lines += ["## Schemas", ""]
    for name in sorted(schemas):
        lines += render_schema(name, schemas[name])
    return "\n".join(_trim(lines)).rstrip("\n") + "\n"


def _problem_note(schemas: Mapping[str, Schema]) -> str:
    if "Problem" not in schemas:
        return ""
    return (
        f" Every error answers `application/problem+json` ([Problem](#{schema_anchor('Problem')}))."
    )


def _index(tags: Mapping[str, Sequence[tuple[str, str, Mapping[str, Any]]]]) -> list[str]:
    lines = ["| tag | operation | summary |", "|---|---|---|"]
    for tag, tag_ops in tags.items():
        for method, path, operation in tag_ops:
            anchor = operation_anchor(method, path)
            summary = cell(one_paragraph(operation.get("summary")))
            lines.append(f"| {tag} | [`{method} {path}`](#{anchor}) | {summary} |")
    return [*lines, ""]


def _trim(lines: Iterable[str]) -> list[str]:
    """Collapse runs of blank lines into one."""
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return out


def application_spec() -> dict[str, Any]:
    """The OpenAPI document of a fresh application (nothing is started or written)."""
    from cltv_api.main import create_app  # noqa: PLC0415 - imported only when rendering

    spec: dict[str, Any] = create_app().openapi()
    return spec


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write")
    parser.add_argument(
        "--check", action="store_true", help="only compare with the file; exit 1 when it differs"
    )
    args = parser.parse_args(argv)
    text = render(application_spec())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; regenerate it with `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
