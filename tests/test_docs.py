"""The README and the guides in ``docs/`` stay true to the tree: links resolve, the README stays an entry, and its
configuration table names every variable the bot reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCUMENTS = (README, *sorted((REPO / "docs").glob("*.md")))
README_MAX_LINES = 250

_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


def _prose(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks (a ``#`` comment in a shell block is no heading)."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (``-`` and ``_`` kept), spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a linked heading anchors on its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's ``-1``, ``-2`` … for repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(path):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    """The targets of the file's Markdown links that point into the repository (no scheme, no ``mailto:``)."""
    links = []
    for line in _prose(path):
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):
                links.append(target)
    return links


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(document: Path) -> None:
    broken = []
    for link in relative_links(document):
        target, _, anchor = link.partition("#")
        file = (document.parent / unquote(target)).resolve() if target else document
        if not file.exists():
            broken.append(f"{link}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{link}: no heading with that anchor in {file.relative_to(REPO)}")
    assert not broken, f"{document.relative_to(REPO)} links nowhere: {broken}"


def test_the_readme_stays_an_entry() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def _configuration_table() -> set[str]:
    """The variables the README's Configuration section names in its tables' first column."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.MULTILINE))


def variables_the_bot_reads() -> set[str]:
    """Every environment variable name the settings code passes to a call (``get("IMAGINE_…")``, ``_int("…", …)``).

    ``bot/settings`` may be one module or a package: both are read.
    """
    sources = [REPO / "bot" / "settings.py", *sorted((REPO / "bot" / "settings").glob("**/*.py"))]
    names = set()
    for source in sources:
        if not source.exists():
            continue
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and _ENV_NAME.match(first.value):
                    names.add(first.value)
    return names


def test_the_configuration_table_names_every_variable_the_bot_reads() -> None:
    read = variables_the_bot_reads()
    assert len(read) >= 20, f"found only {sorted(read)} in bot/settings: has the way it reads them changed?"
    missing = read - _configuration_table()
    assert not missing, f"README's configuration table lacks {sorted(missing)}"


def test_the_configuration_table_names_every_variable_of_env_example() -> None:
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), flags=re.MULTILINE))
    missing = listed - _configuration_table()
    assert not missing, f"README's configuration table lacks {sorted(missing)} (from .env.example)"


def _mermaid_blocks(path: Path) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def _drawn(module: str) -> str:
    """How the drawing labels a layer's module or package: its path (``bot/core.py``, ``bot/jobs``, ``cogs/``)."""
    if module == "cogs":
        return "cogs/"
    path = module.replace(".", "/")
    return path if (REPO / path).is_dir() else f"{path}.py"


def test_the_architecture_drawing_draws_the_layers_in_order() -> None:
    from tests.test_architecture import LAYERS

    blocks = _mermaid_blocks(README)
    assert blocks, "README's Architecture section has no Mermaid drawing"
    label = dict(re.findall(r'(\w+)\["([^"<]+)', blocks[0]))
    arrows = re.findall(r"(\w+)(?:\[[^\]]*\])?\s*-->\s*(\w+)", blocks[0])
    drawn = {(label.get(upper, upper), label.get(lower, lower)) for upper, lower in arrows}
    *lower_layers, top = [[_drawn(module) for module in layer if module != "bot.__main__"] for layer in LAYERS]
    expected = {(upper[0], lower[0]) for upper, lower in zip(lower_layers[1:], lower_layers, strict=False)}
    expected |= {(module, lower_layers[-1][0]) for module in top}
    assert drawn == expected, f"the drawing's arrows {sorted(drawn)} are not the layers, top down: {sorted(expected)}"


_CODE_PATH = re.compile(r"`((?:bot|cogs|tests|bench|docs)/[\w./-]*)`")


@pytest.mark.parametrize("document", [*DOCUMENTS, REPO / "CHANGELOG.md"], ids=lambda path: path.name)
def test_every_path_the_docs_name_exists(document: Path) -> None:
    """A path in backticks (``bot/jobs``, ``tests/fakes/server.py``) names something that is there now.

    The changelog's history is exempt below its newest release: it tells what was true then.
    """
    text = document.read_text(encoding="utf-8")
    if document.name == "CHANGELOG.md":
        text = text.split("\n## [0.1.0]")[0]
    missing = sorted({path for path in _CODE_PATH.findall(text) if not (REPO / path.rstrip("/")).exists()})
    assert not missing, f"{document.name} names paths that do not exist: {missing}"


def test_the_benchmark_figures_keep_their_markers() -> None:
    for path in (README, REPO / "docs" / "performance.md"):
        text = path.read_text(encoding="utf-8")
        opened, closed = text.find("<!-- BENCH-FIGURES"), text.find("<!-- /BENCH-FIGURES -->")
        assert 0 <= opened < closed, f"{path.relative_to(REPO)} lost its BENCH-FIGURES markers"
    figures = README.read_text(encoding="utf-8").split("<!-- BENCH-FIGURES", 1)[1].split("<!-- /BENCH-FIGURES", 1)[0]
    assert re.search(r"^(Full|Quick) run \(`python -m bench[^`]*`.*at commit `[0-9a-f]+`", figures, re.MULTILINE), (
        "README's figures no longer say the command and commit that produced them"
    )
