"""Issue #23 item 4: every markdown link of the notebooks and of README.md goes somewhere.

A link (or image) is either an absolute ``https://`` address with no template left in it
(``{API}``, ``{`` or ``}``: an unfilled placeholder does nothing when clicked), or a relative
path to a file that exists, whose ``#fragment``, when it points into a notebook, is the id
JupyterLab gives one of that notebook's headings.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
DOCUMENTS = sorted(NOTEBOOKS.glob("*.ipynb")) + [ROOT / "README.md"]

# [text](target) and ![alt](target); the text may hold `code` and one level of [brackets].
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.MULTILINE)


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    return path.read_text(encoding="utf-8")


def without_code(markdown: str) -> str:
    """Markdown with fenced code blocks removed (their brackets are code, not links)."""
    return re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)


def links_of(path: Path) -> list:
    return LINK.findall(without_code(markdown_of(path)))


def heading_anchor(text: str) -> str:
    """The id JupyterLab gives a heading: its text as shown, spaces replaced by '-'."""
    shown = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("`", "").replace("*", "")
    return shown.replace(" ", "-")


def anchors_of(path: Path) -> set:
    return {heading_anchor(text) for text in HEADING.findall(without_code(markdown_of(path)))}


def problem(document: Path, target: str):
    """What is wrong with the link ``target`` in ``document``, or None."""
    if "{" in target or "}" in target:
        return "a template placeholder is left in it"
    if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
        if not target.startswith("https://") or len(target) <= len("https://"):
            return "an absolute link must be https://"
        return None
    if target.startswith("#"):
        path, fragment = document, target[1:]
    else:
        relative, _, fragment = target.partition("#")
        if not relative or relative.startswith("/"):
            return "a relative link must name a file"
        path = (document.parent / unquote(relative)).resolve()
        if not path.exists():
            return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} does not exist"
    if fragment and path.suffix == ".ipynb" and unquote(fragment) not in anchors_of(path):
        return f"{path.name} has no heading with the id {fragment!r}"
    return None


def test_the_link_pattern_finds_links():
    found = LINK.findall("see [`Saver`]({API}tf/Saver)'s dict, ![a](docs/x.png) and "
                        "[f(x)](https://example.org/a_(b)) [[1]](https://example.org)")
    assert found == ["{API}tf/Saver", "docs/x.png", "https://example.org/a_(b)", "https://example.org"], found
    assert problem(ROOT / "README.md", "{API}tf/Saver") == "a template placeholder is left in it"
    assert problem(ROOT / "README.md", "http://example.org") == "an absolute link must be https://"
    assert problem(ROOT / "README.md", "notebooks/nothing.ipynb").endswith("does not exist")
    assert problem(NOTEBOOKS / "00_start_here.ipynb", "01_save_a_checkpoint.ipynb#No-such-heading")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_link_goes_somewhere(document):
    targets = links_of(document)
    assert targets, f"{document.name} has no links: the pattern is wrong"
    broken = [(target, why) for target in targets if (why := problem(document, target))]
    assert not broken, f"{document.name}: links that go nowhere:\n" + "\n".join(f"  {t}: {w}" for t, w in broken)
