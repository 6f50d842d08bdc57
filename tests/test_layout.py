"""docs/architecture.md's tree is the package as it is, in pipeline order: every module is listed,
and each imports only modules listed above it (a type-only import aside), so that reading the
code down the tree never climbs back."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "torchtune_config_writer"
# Plug-in look-ups, made when called: the keys of `launch:` and the names of the files the tool
# owns come from the registered launch back ends (launchers/), which read sections as the
# experiment's other parts do.
LOOKUPS = {("experiment.launch", "launchers"), ("workspace.layout", "launchers")}


def tree_order() -> list[str]:
    """The modules and subpackages of the tree in docs/architecture.md, in the order listed."""
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    tree = page.split("```\nsrc/torchtune_config_writer/\n", 1)[1].split("```", 1)[0]
    order, path = [], []
    for line in tree.splitlines():
        found = re.match(r"( *)(\S+)", line)
        if found is None:
            continue
        depth = len(found[1]) // 2 - 1
        del path[depth:]
        name = found[2]
        if name.endswith("/"):
            path.append(name[:-1])
            order.append(".".join(path))
        elif name.endswith(".py") and name != "__init__.py":
            order.append(".".join([*path, name[:-3]]))
    return order


def module_name(file: Path) -> str:
    parts = file.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(file: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for each import of the package's own modules, type-only ones left out."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    here = module_name(file).split(".")
    package = here if file.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            names = [node.module] if node.module else [alias.name for alias in node.names]
            for name in names:
                yield node.lineno, ".".join([*base, *name.split(".")])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("torchtune_config_writer."):
                    yield node.lineno, name.removeprefix("torchtune_config_writer.")


def listed_as(module: str, rank: dict[str, int]) -> str | None:
    """The tree entry a module falls under: itself, else its closest listed package."""
    parts = module.split(".")
    while parts and ".".join(parts) not in rank:
        parts.pop()
    return ".".join(parts) if parts else None


def test_the_tree_lists_every_module_and_nothing_else() -> None:
    order = tree_order()
    files = {module_name(f) for f in PACKAGE.rglob("*.py") if f.name != "__main__.py"}
    files |= {module_name(d / "__init__.py") for d in PACKAGE.rglob("*") if d.is_dir()}
    files -= {"", *(name for name in files if "__pycache__" in name)}
    assert sorted(set(order) - files) == []  # listed, not there
    assert sorted(files - set(order)) == []  # there, not listed
    assert len(order) == len(set(order))


def test_every_module_imports_only_what_the_tree_lists_above_it() -> None:
    rank = {name: index for index, name in enumerate(tree_order())}
    climbs = []
    for file in sorted(PACKAGE.rglob("*.py")):
        here = module_name(file)
        if here not in rank:
            continue  # the package itself, and __main__
        for line, target in imported(file):
            entry = listed_as(target, rank)
            if entry is None or entry == here or here.startswith(entry + "."):
                continue  # outside the tree, itself, or the package it is in
            if file.name == "__init__.py" and entry.startswith(here + "."):
                continue  # a package exporting its own modules
            if rank[entry] > rank[here] and (here, entry) not in LOOKUPS:
                climbs.append(f"{file.relative_to(REPO)}:{line}: {here} imports {entry}")
    assert not climbs, "\n".join(climbs)
