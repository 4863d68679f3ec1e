"""Check the relative links of the Markdown documentation: files exist, anchors exist.

``python -m tools.doc_links`` checks README.md and docs/*.md and prints one line per broken
link (exit status 1 if there is any). A link is relative when it has no URL scheme
(``https:``, ``mailto:``) and does not start with ``/`` (a path on the running server, such as
``/docs``). Anchors follow GitHub's heading slugs (lower case; punctuation other than ``-`` and
``_`` dropped; spaces become hyphens; a repeated heading gets ``-1``, ``-2``...) plus explicit
``<a id="...">`` / ``<a name="...">`` targets. Links inside fenced code blocks and inline code
are ignored.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_LINK_TEXT = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class BrokenLink:
    """A relative link whose file or anchor does not exist."""

    source: Path
    line: int
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.target} ({self.reason})"


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) outside fenced code blocks, with inline code blanked."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, _INLINE_CODE.sub(lambda m: "code", line)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (Markdown links and code marks removed first)."""
    text = _LINK_TEXT.sub(lambda m: m.group(1), heading).replace("`", "")
    kept = "".join(c for c in text.strip().lower() if c.isalnum() or c in "-_ ")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown file defines: heading slugs (deduplicated as GitHub does) and
    explicit HTML anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        found.update(_HTML_ANCHOR.findall(line))
        match = _HEADING.match(line)
        if match:
            base = github_slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> Iterator[tuple[int, str]]:
    """(line, target) of every inline link, image and reference definition in prose."""
    for number, line in prose_lines(text):
        for match in _INLINE_LINK.finditer(line):
            yield number, match.group(1)
        definition = _REFERENCE_DEF.match(line)
        if definition:
            yield number, definition.group(1)


def is_relative(target: str) -> bool:
    return not (_SCHEME.match(target) or target.startswith("/"))


def check_file(path: Path, root: Path = REPO_ROOT) -> list[BrokenLink]:
    """Broken relative links of one Markdown file."""
    text = path.read_text(encoding="utf-8")
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    broken = []
    cache: dict[Path, set[str]] = {}
    for line, target in links(text):
        if not is_relative(target):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not destination.exists():
            broken.append(BrokenLink(shown, line, target, "no such file"))
            continue
        if anchor and destination.suffix == ".md":
            if destination not in cache:
                cache[destination] = anchors(destination.read_text(encoding="utf-8"))
            if anchor not in cache[destination]:
                broken.append(BrokenLink(shown, line, target, f"no anchor #{anchor}"))
    return broken


def documentation_files(root: Path = REPO_ROOT) -> list[Path]:
    """README.md and every docs/*.md file."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def check_files(paths: Iterable[Path], root: Path = REPO_ROOT) -> list[BrokenLink]:
    return [problem for path in paths for problem in check_file(path, root)]


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(p).resolve() for p in argv] if argv else documentation_files()
    broken = check_files(paths)
    for problem in broken:
        print(problem)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
