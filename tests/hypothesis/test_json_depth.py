"""json_depth, the request body's nesting guard, against its recursive definition."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.middleware import json_depth

pytestmark = pytest.mark.unit

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=3), children, max_size=3)),
    max_leaves=30)


def _depth(value):
    """A scalar is 1; a container is one more than its deepest child (an empty one is 1)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((_depth(child) for child in value), default=0)
    return 1


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=1, max_value=12))
def test_json_depth_matches_the_definition_up_to_the_limit(value, limit):
    expected = _depth(value)
    found = json_depth(value, limit)
    if expected <= limit:
        assert found == expected
    else:
        assert found > limit
