"""Output comparison rules, table-driven: strict (default) and apps_compat."""

from __future__ import annotations

import pytest
from restem.verifiers.code import Comparison, compare_stdout, compare_value
from restem.verifiers.code.values import HugeInt, decode, loads

# (got, expected, strict verdict, apps_compat verdict)
STDOUT_CASES = [
    ("1 2\n", "1 2\n", True, True),
    ("1 2", "1 2\n", True, True),  # a missing final newline
    ("  1   2  \n\n\n", "1 2\n", True, True),  # spacing and trailing blank lines
    ("1 2\r\n3\r\n", "1 2\n3\n", True, True),  # CRLF
    ("2 1\n", "1 2\n", False, True),  # order: APPS compares each line as a set of tokens
    ("1 2 2 1\n", "1 2\n", False, True),  # duplicates: same
    ("1000001\n", "1000000\n", False, True),  # integers are exact; APPS uses numpy.allclose
    ("3\n1\n", "1\n3\n", False, True),  # line order: APPS compares a set of lines
    ("1\n2\n", "1 2\n", False, False),  # line structure
    ("1 2\n", "1\n2\n", False, False),
    ("0.3333333\n", "0.333333333\n", True, True),  # floats within 1e-6
    ("0.334\n", "0.333333\n", False, False),
    ("1e6\n", "1000000.0\n", True, True),
    ("2.0\n", "2\n", True, True),  # a decimal and an integer compare as numbers
    ("007\n", "7\n", True, True),  # the same integer
    ("-0\n", "0\n", True, True),
    ("+5\n", "5\n", True, True),
    ("123456789012345678901234567890\n", "123456789012345678901234567891\n", False, True),
    ("YES\n", "yes\n", False, False),  # case counts
    ("\n", "0\n", False, False),
    ("", "", True, True),
    ("1\n\n2\n", "1\n2\n", False, True),  # a blank line inside the output counts
    ("nan\n", "nan\n", True, True),  # identical tokens, whatever they are
    ("inf\n", "1e309\n", False, True),
    ("abc\n", "abd\n", False, False),
    ("1.0000001\n", "1\n", True, True),
    ("1.00001\n", "1\n", False, True),  # 1e-5 relative: apps_compat's rtol only
]


@pytest.mark.parametrize(("got", "expected", "strict", "compat"), STDOUT_CASES)
def test_stdout_comparison(got, expected, strict, compat):
    assert compare_stdout(got, expected)[0] is strict
    assert compare_stdout(got, expected, Comparison.APPS_COMPAT)[0] is compat


def test_strict_reasons_point_at_the_difference():
    assert compare_stdout("1 3\n", "1 2\n")[1] == "line 1, token 2: expected '2', got '3'"
    assert compare_stdout("1\n", "1\n2\n")[1] == "expected 2 lines, got 1"
    assert compare_stdout("1 2 2 1\n", "1 2\n")[1] == "line 1: expected 2 tokens, got 4"


# (got, expected, strict, apps_compat); expected as APPS stores it (often wrapped in a list)
VALUE_CASES = [
    (3, 3, True, True),
    (3, [3], True, True),  # APPS's one-element wrapping
    ([3], [3], True, True),
    (3.0000001, 3, True, False),
    (3.1, 3, False, False),
    (1000001, 1000000, False, False),
    ((1, 2), [1, 2], True, True),  # a tuple is a JSON list
    ([1, 2], [2, 1], False, False),
    ("1", 1, False, False),  # strings are not numbers
    (False, 0, True, True),  # as the source judges (Codewars' ==) decide
    (True, [True], True, True),
    (None, None, True, True),
    (None, [None], True, True),
    ({"a": 1}, {"a": 1}, True, True),
    ({"a": 1}, {"a": 2}, False, False),
    ({1: 1}, {"1": 1}, False, False),
    ({1, 2}, [1, 2], False, False),
    (float("nan"), float("nan"), False, False),
    ([[1, 2], [3]], [[[1, 2], [3]]], True, True),
]


@pytest.mark.parametrize(("got", "expected", "strict", "compat"), VALUE_CASES)
def test_value_comparison(got, expected, strict, compat):
    assert compare_value(got, expected)[0] is strict
    assert compare_value(got, expected, "apps_compat")[0] is compat


def test_huge_integers_are_compared_as_text_without_conversion():
    digits = "9" * 50_000
    got, expected = loads(digits), loads(digits)
    assert isinstance(got, HugeInt)
    assert compare_value(got, expected)[0]
    assert not compare_value(loads("8" + digits[1:]), expected)[0]
    assert not compare_value(5, expected)[0]


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ('{"__tuple__": [1, [2]]}', (1, [2])),
        ('{"__set__": [1, 2]}', {1, 2}),
        ('{"__frozenset__": ["a"]}', frozenset({"a"})),
        ('{"__dict__": [[1, "x"], [{"__tuple__": [1]}, 2]]}', {1: "x", (1,): 2}),
        ('{"__bytes__": "6869"}', b"hi"),
        ('{"__complex__": [1.0, -2.0]}', 1 - 2j),
        ("[NaN, Infinity]", [float("nan"), float("inf")]),
    ],
)
def test_decoding_rebuilds_builtin_values(encoded, decoded):
    value = decode(loads(encoded))
    assert type(value) is type(decoded)
    assert repr(value) == repr(decoded)


@pytest.mark.parametrize(
    "forged",
    [
        '{"__set__": [[1]]}',  # unhashable element
        '{"a": 1, "b": 2}',  # an object without a tag
        '{"__eval__": "1"}',
        '{"__complex__": "x"}',
        '{"__dict__": [[[1], 2]]}',
        "[" * 300 + "]" * 300,
    ],
)
def test_forged_encodings_are_refused(forged):
    from restem.verifiers.code.values import ValueFormatError

    with pytest.raises(ValueFormatError):
        decode(loads(forged))
