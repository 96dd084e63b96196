"""The Node.js producer of docs/integration.md keeps the ordering keys of `messages.ordering`:
the table it routes by is the engine's, type for type."""

from __future__ import annotations

import re
from pathlib import Path

from messages.ordering import KEY_FIELD_BY_TYPE

NODE_EXAMPLE = Path(__file__).parents[2] / "examples" / "producers" / "node" / "publish.mjs"


def test_the_node_example_routes_by_the_engines_key_table() -> None:
    source = NODE_EXAMPLE.read_text("utf-8")
    table = source[source.index("const KEY_FIELD = {") : source.index("};")]
    pairs = dict(re.findall(r'"([a-z_.]+)": "([a-z_]+)"', table))

    assert pairs == KEY_FIELD_BY_TYPE
    assert '?? "contract_id"' in source
