"""A JSON array decoded one element at a time, whatever the size of the chunks it is read in."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from csctl.plan.jsonarray import ArrayReader

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
elements = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(elements, max_size=6), st.integers(1, 7), st.sampled_from(["", " ", "\n  "]))
def test_the_elements_of_any_array_in_any_chunks(array, chunk, space):
    text = "[" + space + ("," + space).join(json.dumps(e) for e in array) + space + "]" + space
    stream = io.StringIO(text[1:])
    assert list(ArrayReader(stream.read, "", 0, chunk)) == array


def test_a_number_cut_by_a_chunk_is_read_whole():
    stream = io.StringIO("12345, 678]")
    assert list(ArrayReader(stream.read, "", 0, 2)) == [12345, 678]
