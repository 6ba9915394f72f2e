"""Property-based tests of the two text parsers users type into: input specs (inputs.py)
and quantities (cnnprof/units.py), with their formatters."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnprof import units
from cnnprof.errors import InputSpecError
from cnnprof.inputs import DTYPE_ALIASES, InputSpec, parse_batch, parse_dtype, parse_input_spec

dims = st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=6)
aliases = st.sampled_from(sorted(DTYPE_ALIASES))
settings.register_profile("cnnprof", max_examples=200, deadline=None)
settings.load_profile("cnnprof")


@given(dims)
def test_spec_dims_round_trip(shape: list[int]) -> None:
    spec = parse_input_spec("x".join(map(str, shape)))
    assert spec == InputSpec(tuple(shape), "float32")


@given(dims, aliases, st.sampled_from(["x", "X", "×", " x "]), st.booleans())
def test_spec_with_dtype_separators_and_case(shape: list[int], alias: str, sep: str,
                                             upper: bool) -> None:
    text = sep.join(map(str, shape)) + ":" + (alias.upper() if upper else alias)
    spec = parse_input_spec(f"  {text} ")
    assert spec.shape == tuple(shape)
    assert spec.dtype == DTYPE_ALIASES[alias]


@given(dims, aliases)
def test_str_of_a_spec_parses_back_to_it(shape: list[int], alias: str) -> None:
    spec = InputSpec(tuple(shape), DTYPE_ALIASES[alias])
    assert parse_input_spec(str(spec)) == spec


@given(st.text(max_size=40))
@example("3x224")
@example("0x4")
@example("-1")
@example("3x")
@example("x")
@example(":int64")
@example("3x224x224:")
@example("3.5x2")
@example("١٢x٣")  # non-ASCII digits are not dimensions
def test_any_text_parses_or_raises_input_spec_error(text: str) -> None:
    try:
        spec = parse_input_spec(text)
    except InputSpecError as exc:
        assert exc.one_line()  # a message, never empty
        return
    assert spec.shape and all(isinstance(d, int) and d > 0 for d in spec.shape)
    assert spec.dtype in set(DTYPE_ALIASES.values())


@given(st.text(max_size=20))
def test_dtype_parser_accepts_only_known_names(text: str) -> None:
    try:
        name = parse_dtype(text)
    except InputSpecError:
        assert text.strip().lower().removeprefix("torch.") not in DTYPE_ALIASES
        return
    assert name in set(DTYPE_ALIASES.values())


@given(st.one_of(st.integers(), st.text(max_size=12)))
def test_batch_is_positive_or_rejected(value: int | str) -> None:
    try:
        batch = parse_batch(value)
    except InputSpecError:
        return
    assert isinstance(batch, int) and batch > 0


# -- quantities -------------------------------------------------------------------------------

finite = st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False)
kinds = st.sampled_from(units.KINDS)


@given(finite, kinds)
def test_formatted_quantity_parses_back_within_rounding(value: float, kind: str) -> None:
    if kind == "time" and 0 < value < 1e-9:
        value = 0.0  # below a nanosecond is not a time anyone types
    text = units.format_quantity(value, kind)
    back = units.parse_quantity(text, kind)
    # three significant digits: the relative error is at most half a unit in the 3rd digit
    assert back == pytest.approx(value, rel=5e-3, abs=0.5 if kind != "time" else 1e-12), text


@given(st.floats(min_value=1e-9, max_value=1e15, allow_nan=False), kinds)
def test_ceil_quantity_never_reads_back_below(value: float, kind: str) -> None:
    text = units.ceil_quantity(value, kind)
    back = units.parse_quantity(text, kind)
    assert back >= value * (1 - 1e-12), text
    assert back <= value * 1.01 + (1 if kind != "time" else 0), text  # at most 1% above


@given(st.text(max_size=20), kinds)
def test_any_text_is_a_quantity_or_a_unit_error(text: str, kind: str) -> None:
    try:
        value = units.parse_quantity(text, kind)
    except units.UnitError:
        return
    assert math.isfinite(value) and value >= 0


@given(st.integers(min_value=0, max_value=10**15), kinds)
def test_plain_numbers_are_base_units(value: int, kind: str) -> None:
    assert units.parse_quantity(value, kind) == float(value)
    assert units.parse_quantity(str(value), kind) == float(value)


@given(st.integers(min_value=-(10**14), max_value=10**14))
@example(999_500)
def test_count_and_bytes_keep_the_sign_and_three_digits(value: int) -> None:
    for text in (units.count(value), units.nbytes(value)):
        assert text.startswith("-") == (value < 0)
        digits = [c for c in text.split(" ")[0] if c.isdigit()]
        if abs(value) >= 1000:
            assert len(digits) <= 3  # 3 significant digits above a thousand


@given(st.floats(min_value=1e-9, max_value=1e6, allow_nan=False))
def test_seconds_picks_a_unit_that_keeps_the_number_small(value: float) -> None:
    number, unit = units.seconds(value).split(" ")
    assert unit in ("s", "ms", "µs", "ns")
    # rounding moves 999.95 ms up to "1 s", never to "1000 ms"
    assert 1 <= float(number) < 1000 or unit == "s"
