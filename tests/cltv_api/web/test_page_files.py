"""The page as files and headers (no browser): security headers, static files, no inline script,
and every interface string present in both languages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cltv_api.main import create_app
from cltv_api.routes.calculator import STATIC_DIR
from tests.cltv_api.service.conftest import TestClient, make_settings

INDEX = STATIC_DIR / "index.html"
I18N = STATIC_DIR / "i18n.js"
APP = STATIC_DIR / "app.js"
# Ways a script could add markup, inline handlers or inline styles that a strict CSP refuses (or
# that bypass textContent's escaping).
UNSAFE_DOM_CALLS = (
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "eval(",
    "new Function",
    'setAttribute("on',
    'setAttribute("style',
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path_factory.mktemp("page") / "data"))
    yield TestClient(app, raise_server_exceptions=False)


class PageScan(HTMLParser):
    """Scripts, inline handlers, inline styles, ids and i18n keys of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.script_sources: list[str | None] = []
        self.inline_script_text = ""
        self.inline_handlers: list[str] = []
        self.style_attributes: list[str] = []
        self.style_elements = 0
        self.ids: list[str] = []
        self.i18n_keys: set[str] = set()
        self.labelled_for: set[str] = set()
        self.inputs: list[tuple[str, str | None]] = []
        self.external: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.inline_handlers += [f"{tag}[{name}]" for name, _ in attrs if name.startswith("on")]
        if "style" in values:
            self.style_attributes.append(tag)
        if tag == "style":
            self.style_elements += 1
        if tag == "script":
            self.script_sources.append(values.get("src"))
            self._in_script = True
        for name in ("src", "href"):
            link = values.get(name) or ""
            if re.match(r"^(https?:)?//", link):
                self.external.append(link)
        if values.get("id"):
            self.ids.append(str(values["id"]))
        for name in ("data-i18n", "data-i18n-placeholder", "data-i18n-aria-label"):
            if values.get(name):
                self.i18n_keys.add(str(values[name]))
        if tag == "label" and values.get("for"):
            self.labelled_for.add(str(values["for"]))
        if tag in ("input", "select", "textarea") and values.get("type") not in (
            "radio",
            "checkbox",
        ):
            self.inputs.append((str(values.get("id")), values.get("name")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script_text += data.strip()


def scan(path: Path) -> PageScan:
    parser = PageScan()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def string_keys(language: str) -> set[str]:
    """Keys of ``STRINGS.<language>`` in i18n.js (one ``"key": ...`` per line)."""
    text = I18N.read_text(encoding="utf-8")
    block = re.search(rf"\n  {language}: \{{\n(.*?)\n  \}},\n", text, re.DOTALL)
    assert block is not None, f"no {language} block in i18n.js"
    return set(re.findall(r'^    "([\w.]+)":', block.group(1), re.MULTILINE))


def test_page_is_served_with_strict_security_headers(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["default-src"] == "'none'"
    assert csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "<title>CLTV calculator</title>" in response.text
    assert "/" not in client.get("/openapi.json").json()["paths"]  # the page is not an API


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/static/app.js", "text/javascript"),
        ("/static/i18n.js", "text/javascript"),
        ("/static/style.css", "text/css"),
        ("/static/vendor/uPlot.iife.min.js", "text/javascript"),
        ("/static/vendor/uPlot.min.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_are_served_unsniffable(
    client: TestClient, path: str, media_type: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"


def test_page_under_static_is_as_locked_down_as_the_root(client: TestClient) -> None:
    root = client.get("/")
    copy = client.get("/static/index.html")
    assert copy.status_code == 200
    for header in ("content-security-policy", "x-frame-options", "referrer-policy"):
        assert copy.headers[header] == root.headers[header]


def test_missing_static_file_is_a_problem_404(client: TestClient) -> None:
    response = client.get("/static/nope.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_page_has_no_inline_script_style_or_external_resource() -> None:
    page = scan(INDEX)
    assert page.script_sources == ["/static/vendor/uPlot.iife.min.js", "/static/app.js"]
    assert page.inline_script_text == ""
    assert page.inline_handlers == []
    assert page.style_attributes == []
    assert page.style_elements == 0
    assert page.external == []


def test_page_scripts_do_not_write_inline_handlers_or_html() -> None:
    source = APP.read_text(encoding="utf-8")
    for forbidden in UNSAFE_DOM_CALLS:
        assert forbidden not in source, forbidden


def test_every_input_has_a_label_and_ids_are_unique() -> None:
    page = scan(INDEX)
    assert len(page.ids) == len(set(page.ids))
    unlabelled = [id_ for id_, _ in page.inputs if id_ not in page.labelled_for]
    assert unlabelled == []
    # Every field error has a place next to its input.
    calc_inputs = [id_ for id_, name in page.inputs if id_.startswith("in-")]
    assert calc_inputs and all(f"{id_}-err" in page.ids for id_ in calc_inputs)


def test_both_languages_have_every_string() -> None:
    english, russian = string_keys("en"), string_keys("ru")
    assert len(english) > 100
    assert english == russian
    assert scan(INDEX).i18n_keys <= english
    used_in_script = set(re.findall(r'\bt\("([\w.]+)"', APP.read_text(encoding="utf-8")))
    assert used_in_script and used_in_script <= english, used_in_script - english
