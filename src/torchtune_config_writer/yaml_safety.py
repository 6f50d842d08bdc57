"""What a YAML file may hold before it is turned into values: plain data of sane size.

Checked on the node tree, before construction, so that nothing unsafe is ever built: tags other
than plain data (``!!python/...`` would run code), loops of aliases, nesting deeper than any
config, and aliases that blow a small file up into millions of values.
"""

from __future__ import annotations

import re
from typing import NoReturn

import yaml

# Aliases may repeat a block, but not blow a small file up into millions of nodes
# (OmegaConf 2.4's rule).
_MAX_ALIAS_EXPANSION_RATIO = 100
_MIN_NODES_BEFORE_RATIO = 1_000
# Deeper than any config; keeps every recursive walk far from Python's recursion limit.
MAX_DEPTH = 100
# Values in one file once aliases expand: torchtune's configs hold a few hundred; past this a
# file is a mistake (or an attack) that would take minutes to merge and write out.
MAX_NODES = 100_000
# An experiment file is a page of YAML; past this it is a mistake (or an attack), refused before
# it is parsed, so that no commit can hang on one.
MAX_EXPERIMENT_BYTES = 1024 * 1024
# Tags of plain data; anything else (!!python/..., !!set, !!binary, local tags) is refused.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "merge")
)


_KEY_TAGS = frozenset(("tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"))
# The one local tag: a mapping that replaces the base's whole (yaml_read.Replace).
REPLACE_TAG = "!replace"
_BRACKETS = re.compile(r"[\[\]{}]")


def deep_flow_offset(text: str) -> int | None:
    """Where ``[`` and ``{`` first nest deeper than any config, or ``None``.

    libyaml builds its node tree recursively in C and crashes on tens of thousands of levels,
    so this is checked on the text first (brackets in quoted strings count too: harmless).
    """
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        if depth > MAX_DEPTH:
            return match.start()
    return None


def _fail(message: str, node: yaml.Node) -> NoReturn:
    raise yaml.constructor.ConstructorError(None, None, message, node.start_mark)


def _children(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
    """(node to point at, child) pairs: a mapping's values are pointed at by their keys."""
    if isinstance(node, yaml.MappingNode):
        return [pair for key, value in node.value for pair in ((key, key), (key, value))]
    if isinstance(node, yaml.SequenceNode):
        return [(item, item) for item in node.value]
    return []


def check_nodes(root: yaml.Node) -> None:
    """Refuse what must not be constructed: unsafe tags, recursion, deep nesting, alias bombs.

    Aliases make the node tree a graph, so sizes are memoised per node: the check is linear
    in the file's size however far its aliases expand.
    """
    sizes: dict[int, tuple[int, int]] = {}  # node → (nodes once aliases expand, height)
    visiting: set[int] = set()

    def visit(node: yaml.Node, depth: int) -> tuple[int, int]:
        ident = id(node)
        if ident in visiting:
            _fail("an alias refers to the mapping or list that contains it: remove the loop", node)
        if ident in sizes:
            return sizes[ident]
        if node.tag == REPLACE_TAG and not isinstance(node, yaml.MappingNode):
            _fail("!replace takes a mapping: it replaces the base's mapping there whole", node)
        if node.tag not in _PLAIN_TAGS and node.tag != REPLACE_TAG:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            _fail(
                f"the tag {tag} is not allowed: write plain YAML values (!replace before a "
                "mapping is the one tag there is)",
                node,
            )
        if depth > MAX_DEPTH:
            _fail(f"nested more than {MAX_DEPTH} levels deep: flatten it", node)
        if isinstance(node, yaml.MappingNode):
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode):  # `? [a, b]: 1`
                    kind = "a list" if isinstance(key, yaml.SequenceNode) else "a mapping"
                    _fail(f"a key must be a plain name, not {kind}: write the key as text", key)
                if key.tag not in _KEY_TAGS:
                    # OmegaConf refuses null keys, and 1 and '1' would be two keys to it.
                    _fail(f"a key must be text: quote it ('{key.value}')", key)
        visiting.add(ident)
        count, height = 1, 1
        for _, child in _children(node):
            child_count, child_height = visit(child, depth + 1)
            count, height = count + child_count, max(height, child_height + 1)
        visiting.discard(ident)
        sizes[ident] = (count, height)
        return count, height

    total, height = visit(root, 1)
    if height > MAX_DEPTH:  # only through aliases: point at where the deepest path gets too deep
        node, depth = root, 1
        while depth <= MAX_DEPTH:
            node = max(_children(node), key=lambda pair: sizes[id(pair[1])][1])[1]
            depth += 1
        _fail(f"aliases nest this more than {MAX_DEPTH} levels deep: flatten it", node)
    if total > _MIN_NODES_BEFORE_RATIO and total > _MAX_ALIAS_EXPANSION_RATIO * len(sizes):
        marker = _largest(root, sizes)
        _fail(f"aliases expand {len(sizes):,} nodes to {total:,}: refused as an alias bomb", marker)
    if total > MAX_NODES:
        _fail(
            f"holds {total:,} values, more than the {MAX_NODES:,} a config may: "
            "split it into smaller files or studies",
            _largest(root, sizes),
        )


def _largest(root: yaml.Node, sizes: dict[int, tuple[int, int]]) -> yaml.Node:
    """The key of the innermost block that holds most of the file's values (to point at)."""
    marker, node = root, root
    while True:
        pair = max(_children(node), key=lambda pair: sizes[id(pair[1])][0], default=None)
        if pair is None or 2 * sizes[id(pair[1])][0] <= sizes[id(node)][0]:
            return marker
        marker, node = pair
