"""Mutating signed JSON documents for the fuzz tests (keyrings, warrants): any JSON value at any
place in the document."""

from __future__ import annotations

from hypothesis import strategies as st

json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3), max_leaves=6)


def json_paths(value, prefix=()):
    """Every place in a JSON value, as a tuple of keys and indexes (the root is ())."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_paths(item, prefix + (index,))


def set_at(document, path, value) -> None:
    """Replace the value at ``path`` (not the root) in place."""
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
