"""The drawing of the house: imports between the product's files have no circle and only run downwards.

Every import counts, ``TYPE_CHECKING`` ones too: a type that needs a module above is a sign that the
two belong together or that the lower one wants a protocol of its own. The layers, lowest first, are
:data:`LAYERS`; a module may import its own layer and the ones below it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("bot.base",),
    ("bot.i18n",),
    ("bot.api",),
    ("bot.media",),
    ("bot.storage",),
    ("bot.moderation",),
    ("bot.jobs",),
    ("bot.settings",),
    ("bot.ops",),
    ("bot.core",),
    ("bot.discord_app",),
    ("bot.cli", "bot.__main__", "cogs"),
)
"""Each entry names the modules or packages of one layer (a package stands for everything in it)."""

MAX_LINES = 400
LONG_MODULES_WITH_A_REASON: dict[str, str] = {
    "tests.fakes.discord.guild": "most of it is Discord's payload literals, which read best whole",
}
"""Modules allowed past :data:`MAX_LINES`, each with the reason it stays whole."""


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_modules() -> dict[str, Path]:
    files = [*(REPO / "bot").rglob("*.py"), *(REPO / "cogs").rglob("*.py")]
    return {module_name(path): path for path in files}


def imported(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """The product's modules ``path`` imports: for each name an import statement names, the longest known module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def import_graph() -> dict[str, set[str]]:
    modules = product_modules()
    known = set(modules)
    return {name: set(imported(path, name, known)) for name, path in modules.items()}


def layer_of(name: str) -> int:
    for rank, members in enumerate(LAYERS):
        if any(name == member or name.startswith(member + ".") for member in members):
            return rank
    return -1


def test_each_name_of_an_import_counts_relative_ones_too(tmp_path: Path) -> None:
    source = tmp_path / "engine.py"
    source.write_text(
        "from bot.jobs import model, webhooks\n"
        "import bot.base.clock, bot.api.client\n"
        "from . import showing\n"
        "from ..storage import records\n"
        "from .missing import anything\n"
    )
    known = {"bot", "bot.jobs", "bot.jobs.engine", "bot.jobs.model", "bot.jobs.webhooks", "bot.jobs.showing"}
    known |= {"bot.base.clock", "bot.api.client", "bot.storage", "bot.storage.records"}
    found = set(imported(source, "bot.jobs.engine", known))
    assert found == {
        "bot.jobs.model",
        "bot.jobs.webhooks",
        "bot.base.clock",
        "bot.api.client",
        "bot.jobs.showing",
        "bot.storage.records",
        "bot.jobs",
    }


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(name for name in product_modules() if name not in {"bot", "cogs"} and layer_of(name) < 0)
    assert not unplaced, f"modules outside every layer of LAYERS: {unplaced}"


def test_imports_only_run_downwards() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if target not in {"bot", "cogs"} and layer_of(target) > layer_of(name)
    ]
    assert not upward, "imports that run upwards:\n" + "\n".join(upward)


def test_no_import_circles() -> None:
    graph = import_graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in circles)


def test_every_package_says_what_it_owns() -> None:
    missing = [
        str(init.relative_to(REPO))
        for folder in ("bot", "tests/fakes")
        for init in sorted((REPO / folder).rglob("__init__.py"))
        if ast.get_docstring(ast.parse(init.read_text())) is None
    ]
    assert not missing, f"packages without a docstring: {missing}"


def readable_modules() -> dict[str, Path]:
    """The product's modules, and the benchmark's and the fakes' (code others carry on too)."""
    support = [*(REPO / "bench").rglob("*.py"), *(REPO / "tests" / "fakes").rglob("*.py")]
    return {**product_modules(), **{module_name(path): path for path in support}}


@pytest.mark.parametrize("name", sorted(readable_modules()))
def test_modules_stay_readable(name: str) -> None:
    lines = len(readable_modules()[name].read_text().splitlines())
    if name in LONG_MODULES_WITH_A_REASON:
        return
    assert lines <= MAX_LINES, f"{name} has {lines} lines (over {MAX_LINES}): split it by responsibility"
