"""The documentation stays true: the API reference matches the code, relative links resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import api_reference, doc_links

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE = REPO_ROOT / "docs" / "reference.md"


# ------------------------------------------------------------------------------ API reference
def test_reference_is_identical_to_a_fresh_rendering_of_the_openapi_document(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "reference.md"
    assert api_reference.main(["--output", str(fresh)]) == 0
    assert REFERENCE.exists(), f"docs/reference.md is missing: run `{api_reference.REGENERATE}`"
    assert fresh.read_text(encoding="utf-8") == REFERENCE.read_text(encoding="utf-8"), (
        f"docs/reference.md is stale (the API changed): run `{api_reference.REGENERATE}` "
        "from the repository root and commit the result"
    )


def test_reference_lists_every_operation_and_schema_of_the_application() -> None:
    spec = api_reference.application_spec()
    text = REFERENCE.read_text(encoding="utf-8")
    for method, path, _ in api_reference.operations(spec):
        assert f"### `{method} {path}`" in text
    for name in spec["components"]["schemas"]:
        assert f"### `{name}`" in text


TINY_SPEC = {
    "info": {"title": "demo"},
    "paths": {
        "/v1/things/{thing_id}": {
            "get": {
                "tags": ["things"],
                "summary": "A thing",
                "parameters": [
                    {
                        "name": "thing_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "description": "Id | name."},
                    },
                    {
                        "name": "unit",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["days", "weeks"], "default": "weeks"},
                        "description": "Time unit.",
                    },
                ],
                "responses": {
                    "404": {"description": "Not Found"},
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                        },
                    },
                },
            },
            "put": {
                "tags": ["things"],
                "summary": "Replace a thing",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                    },
                },
                "responses": {"204": {"description": "No Content"}},
            },
        }
    },
    "components": {
        "schemas": {
            "Thing": {
                "type": "object",
                "description": "A thing.",
                "required": ["size"],
                "properties": {
                    "size": {"type": "number", "description": "Size in metres."},
                    "tags": {"type": "array", "items": {"type": "string"}, "default": []},
                    "parent": {"anyOf": [{"$ref": "#/components/schemas/Thing"}, {"type": "null"}]},
                },
            }
        }
    },
}


def test_rendering_shows_parameters_body_responses_and_schema_fields() -> None:
    text = api_reference.render(TINY_SPEC)
    # Parameters: name, location, type, required, default, description (pipes escaped).
    assert "| `thing_id` | path | string | yes |  | Id \\| name. |" in text
    assert "| `unit` | query | `days` \\| `weeks` | no | `weeks` | Time unit. |" in text
    # Request body names its schema and links to it.
    assert "- `application/json`: [Thing](#schema-thing)" in text
    # Responses are sorted by status.
    assert text.index("| 200 | OK |") < text.index("| 404 | Not Found |")
    assert "| 204 | No Content |  |" in text
    # Schema fields with type, required flag and description; references link.
    assert "| `size` | number | yes |  | Size in metres. |" in text
    assert "| `tags` | array of string | no | `[]` |  |" in text
    assert "| `parent` | [Thing](#schema-thing) \\| null | no |  |  |" in text
    assert text.count("### `GET /v1/things/{thing_id}`") == 1
    assert "1 operations" not in text and "2 operations, 1 schemas." in text


def test_rendered_reference_has_no_broken_anchors(tmp_path: Path) -> None:
    page = tmp_path / "reference.md"
    page.write_text(api_reference.render(TINY_SPEC), encoding="utf-8")
    for linked in ("api.md", "quickstart.md"):  # the guides the reference's introduction names
        (tmp_path / linked).write_text("# guide\n", encoding="utf-8")
    assert doc_links.check_file(page, tmp_path) == []


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert api_reference.main(["--output", str(stale), "--check"]) == 1
    assert "python -m tools.api_reference" in capsys.readouterr().err


# ------------------------------------------------------------------------------ links
def test_every_relative_link_in_readme_and_docs_points_to_an_existing_file_and_anchor() -> None:
    broken = doc_links.check_files(doc_links.documentation_files(REPO_ROOT), REPO_ROOT)
    assert not broken, "broken links:\n" + "\n".join(map(str, broken))


def test_link_checker_finds_missing_files_and_anchors_and_ignores_code(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Units and conventions\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Title\n\n"
        "[ok](other.md) [ok](other.md#units-and-conventions) [ok](#title-1) [web](https://x.org)\n"
        "[server path](/docs) [missing](nowhere.md) [bad anchor](other.md#units)\n"
        "`[in code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n"
        "[ref]: missing-too.md\n",
        encoding="utf-8",
    )
    broken = doc_links.check_file(page, tmp_path)
    assert [(b.line, b.target, b.reason) for b in broken] == [
        (6, "nowhere.md", "no such file"),
        (6, "other.md#units", "no anchor #units"),
        (11, "missing-too.md", "no such file"),
    ]


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        # Examples of GitHub's heading anchors.
        ("Units and conventions in every valuation", "units-and-conventions-in-every-valuation"),
        ("`GET /v1/fits/{fit_id}`", "get-v1fitsfit_id"),
        ("CLTV (`models.clv`)", "cltv-modelsclv"),
        ("Cost of churn: value lost per churner", "cost-of-churn-value-lost-per-churner"),
        ("Русский Excel", "русский-excel"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert doc_links.github_slug(heading) == slug
