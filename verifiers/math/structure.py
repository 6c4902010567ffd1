"""Structure: how an extracted answer is laid out, before its value is judged.

Answers often carry more than their value: a label (``AB = 4``, ``(p,q) = (3,2)``,
``V_1:V_2 = 11:21``, ``f(x) = x^2+1``), a chain of equal sides (``x = 5+5+1 = 11``), or several
labelled values at once (``x = 1, y = 2``; ``p=5,q=2; p=7,q=2``). This module reads that layout
from the normalized text: which side is a label, which side is the value, and which values belong
to which label. It only splits strings (a linear scan; no regex that can backtrack far); the values
themselves are parsed and compared by the caller.

A *label* names the quantity and is never part of the value: one variable (``x``, ``a_n``,
``\\alpha``), a run of capital letters (``AB``, ``S_{ABC}``), a word (``Area``), a geometric name
(``\\angle ABC``, ``\\overline{AB}``, ``|AB|``), a function application (``f(x)``, ``f(2)``), or a
ratio, fraction or tuple of those (``A:B``, ``\\frac{NO}{BO}``, ``(p,q)``). A run of small letters
(``xy``) is a product, not a label: ``xy = 6`` stays an equation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from restem.verifiers.math.normalize import MATH_WORDS
from restem.verifiers.math.parse import GREEK_LETTERS

__all__ = [
    "Shape",
    "analyze",
    "drop_condition",
    "evaluate_matrices",
    "is_label",
    "label_key",
    "solutions",
    "split_top",
    "tuple_label_names",
]

# Relations that make a chain of sides; "=" is handled on its own.
_INEQUALITY_COMMANDS = frozenset(["le", "leq", "leqslant", "ge", "geq", "geqslant", "lt", "gt"])
_RELATION_COMMANDS = _INEQUALITY_COMMANDS | {"ne", "neq", "approx"}
# Words that are maths, never a label: normalize's list less the reciprocal inverses, plus the
# connectives and "sup".
_MATH_WORDS = (MATH_WORDS - {"arcsec", "arccsc", "arccot"}) | {"sup", "and", "or"}
_MAX_LABEL_CHARS = 40
_RELATION_HINT = re.compile(r"[=<>]|\\(?:le|ge|lt|gt|ne|approx)")

_SUBSCRIPT = r"(?:_(?:\{[A-Za-z0-9,]{1,12}\}|[A-Za-z0-9]))?"
_PRIMES = r"'{0,3}"
# One named quantity. Each alternative is anchored by the caller (fullmatch) and has no nested
# quantifier over the same characters, so matching is linear.
_ATOM = re.compile(
    r"(?:"
    rf"[A-Za-z]{_SUBSCRIPT}{_PRIMES}"  # x, a_n, x_{1}, f'
    rf"|\\[a-zA-Z]+{_SUBSCRIPT}{_PRIMES}"  # \alpha, \theta_1 (checked against GREEK_LETTERS)
    rf"|[A-Z]{{2,6}}{_SUBSCRIPT}"  # AB, ABC, MBCN
    r"|[A-Z][a-z]{2,20}(?: [A-Za-z]{1,20}){0,3}"  # Area, Total sum
    r"|[a-z]{4,20}(?: [a-z]{1,20}){0,3}"  # area, total cost
    r"|(?:m)?\\(?:angle|measuredangle|triangle)[A-Z]{1,4}"  # \angle ABC, m\angle A
    r"|\\(?:overline|overrightarrow|vec|widehat|overarc|arc)\{[A-Za-z]{1,4}\}"
    r")"
)
_FUNCTION = re.compile(
    rf"(?P<name>[A-Za-z]{_SUBSCRIPT}{_PRIMES}(?:\^\{{?-1\}}?)?)"
    r"\((?P<args>[A-Za-z0-9+\-]{1,8}(?:,[A-Za-z0-9+\-]{1,8}){0,3})\)"
)
_WORD_RUN = re.compile(r"[A-Za-z]+")


def _split_top_level(
    text: str, separators: str, relations: bool = False
) -> tuple[list[str], list[str]]:
    """Pieces of ``text`` split at separators outside any bracket or brace, and the separators
    between them. Linear.

    Plain separators are single characters. With ``relations`` the separators are ``<>=!`` and
    the relation commands: an operator takes up to two more of ``=<>`` (``<=``, ``>=``, ``!=``),
    so a chain of equalities is never confused with an inequality, and a lone ``!`` is a
    factorial, not a relation.
    """
    pieces: list[str] = []
    ops: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            j = i + 1
            while j < n and text[j].isalpha():
                j += 1
            if j == i + 1:  # \{ \} \, ...
                nxt = text[i + 1 : i + 2]
                if nxt == "{":
                    depth += 1
                elif nxt == "}":
                    depth = max(depth - 1, 0)
                i += 2
                continue
            name = text[i + 1 : j]
            if relations and depth == 0 and name in _RELATION_COMMANDS:
                pieces.append(text[start:i])
                ops.append(name)
                start = j
            i = j
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif depth == 0 and ch in separators:
            k = i + 1
            if relations:
                while k < n and k - i < 2 and text[k] in "=<>":
                    k += 1
                if k == i + 1 and ch == "!":  # a factorial, not a relation
                    i += 1
                    continue
            pieces.append(text[start:i])
            ops.append(text[i:k])
            start = k
            i = k
            continue
        i += 1
    pieces.append(text[start:])
    return pieces, ops


def split_top(text: str, separators: str) -> list[str]:
    """Split at the given one-character separators outside any bracket or brace. Linear."""
    return _split_top_level(text, separators)[0]


def _split_relations(text: str) -> tuple[list[str], list[str]]:
    """Sides and relation operators of a top-level chain (``a < b = c``). Linear.

    ``=`` is one operator; ``<=``, ``>=``, ``!=``, ``\\ne`` and other relations are kept as
    their own operators.
    """
    return _split_top_level(text, "<>=!", relations=True)


def _exact_part(sides: list[str], ops: list[str]) -> tuple[list[str], list[str]]:
    """``x = 1/3 \\approx 0.33`` -> ``x = 1/3``: an approximation after the exact value is a note."""
    if "approx" not in ops:
        return sides, ops
    k = ops.index("approx")
    if k == 0 and is_label(sides[0]):  # "x \\approx 11": the approximation is the only value
        ops = ["=", *ops[1:]]
        if "approx" not in ops:
            return sides, ops
        k = ops.index("approx")
    return sides[: k + 1], ops[:k]


def _is_atom(text: str) -> bool:
    m = _ATOM.fullmatch(text)
    if m is None:
        return False
    if text.startswith("\\") and not text.startswith(("\\angle", "\\measuredangle", "\\triangle")):
        name = _WORD_RUN.match(text, 1)
        if name is not None and name.group(0) in GREEK_LETTERS:
            return True
        return text.startswith(("\\overline", "\\overrightarrow", "\\vec", "\\widehat", "\\arc"))
    if text in ("i", "e"):  # the imaginary unit and Euler's number are values, not names
        return False
    # a word that is maths ("max", "sin") is not a name
    return not any(w in _MATH_WORDS for w in text.lower().split())


def _function_label(text: str) -> tuple[str, tuple[str, ...]] | None:
    """``f(x)`` -> ("f", ("x",)); ``f(2)`` -> ("f", ()); else None."""
    m = _FUNCTION.fullmatch(text)
    if m is None:
        return None
    name = m.group("name")
    if name in ("i", "e"):
        return None
    args = m.group("args").split(",")
    variables = tuple(a for a in args if len(a) == 1 and a.isalpha())
    return name, variables if len(variables) == len(args) else ()


def label_key(text: str) -> str:
    """A label in one spelling: no spaces, no braces (``x_{1}`` = ``x_1``)."""
    return re.sub(r"[\s{}]", "", text)


def is_label(text: str) -> bool:
    s = re.sub(r"\s+", " ", text.strip())
    if not s or len(s) > _MAX_LABEL_CHARS:
        return False
    # "Total sum" keeps its space; "\angle ABC" and "( p , q )" lose theirs.
    return _is_label(s) or (" " in s and _is_label(s.replace(" ", "")))


def _is_label(s: str) -> bool:
    if _is_atom(s) or _function_label(s) is not None:
        return True
    if s.startswith("|") and s.endswith("|") and len(s) > 2:
        return _is_atom(s[1:-1])
    if s.startswith("(") and s.endswith(")"):
        items = split_top(s[1:-1], ",")
        return len(items) >= 2 and all(_is_atom(item.strip()) for item in items)
    if s.startswith("\\frac{"):  # \frac{NO}{BO}
        m = re.fullmatch(r"\{([^{}]{1,20})\}\{([^{}]{1,20})\}", s[len("\\frac") :])
        return m is not None and _is_atom(m.group(1)) and _is_atom(m.group(2))
    for sep in (":", "/"):
        pieces = split_top(s, sep)
        if len(pieces) == 2 and all(_is_atom(p) or _function_label(p) for p in pieces):
            return True
    return False


def tuple_label_names(label: str) -> tuple[str, ...]:
    """``(p,q)`` -> ("p", "q"); any other label -> ()."""
    s = label_key(label)
    if not (s.startswith("(") and s.endswith(")")):
        return ()
    return tuple(split_top(s[1:-1], ","))


@dataclass(frozen=True, slots=True)
class Shape:
    """The layout of one answer. ``text`` is what to judge as its value."""

    text: str
    label: str | None = None  # the label key of a single labelled answer
    function: str | None = None  # f, for a function label f(x)
    bound: tuple[str, ...] = ()  # the variables of that function label
    # A system: (label key, value text) in the order written; several solutions follow each
    # other ("p=5,q=2;p=7,q=2"), a new one starting where a label repeats.
    items: tuple[tuple[str, str], ...] = ()
    chained: bool = False  # the value is the last side of a chain of equalities

    @property
    def is_system(self) -> bool:
        return bool(self.items)


def _constant(text: str) -> bool:
    """No letters outside arithmetic commands: ``5+5+1``, ``2\\cdot 3``, ``\\frac{1}{2}``."""
    stripped = re.sub(r"\\(?:[dt]?frac|sqrt|pi|cdot|times|div|left|right)(?![a-zA-Z])", "", text)
    return not re.search(r"[A-Za-z\\]", stripped) and bool(stripped.strip())


def _labelled(item: str) -> tuple[str, str] | None:
    """``label = value`` (any chain ``label = ... = value``) -> (label key, value text)."""
    sides, ops = _exact_part(*_split_relations(item))
    if not ops or any(op != "=" for op in ops) or not is_label(sides[0]):
        return None
    if not sides[-1].strip():
        return None
    return label_key(sides[0]), sides[-1].strip()


def _single(text: str) -> Shape:
    sides, ops = _split_relations(text)
    if "approx" in ops:
        sides, ops = _exact_part(sides, ops)
        if not ops:
            return Shape(sides[0].strip(), chained=True) if sides[0].strip() else Shape(text)
    if not ops:
        return Shape(text)
    if any(op != "=" for op in ops):
        return _inequality(text, sides, ops)
    lhs, rhs = sides[0].strip(), sides[-1].strip()
    if not rhs or not lhs:
        return Shape(text)
    if is_label(lhs):
        function = _function_label(label_key(lhs))
        return Shape(
            rhs,
            label=label_key(lhs),
            function=function[0] if function else None,
            bound=function[1] if function else (),
            chained=len(sides) > 2,
        )
    if len(sides) == 2 and is_label(rhs) and not is_label(lhs):
        return Shape(lhs, label=label_key(rhs))  # "5 = x"
    if len(sides) > 2 or (_constant(lhs) and _constant(rhs)):
        # A chain of equal sides commits to its last side: "x = 5+5+1 = 11", "2+3 = 5".
        return Shape(rhs, chained=True)
    return Shape(text)  # an equation: "x + y = 1"


def _inequality(text: str, sides: list[str], ops: list[str]) -> Shape:
    """``0 < f(x) < 1``: a function or named quantity in an inequality becomes a variable."""
    named = [k for k, side in enumerate(sides) if _function_label(label_key(side)) is not None]
    if len(named) != 1 or not all(_constant(s) or k in named for k, s in enumerate(sides)):
        return Shape(text)
    rebuilt = []
    for k, side in enumerate(sides):
        rebuilt.append("x" if k in named else side.strip())
        if k < len(ops):
            op = ops[k]
            rebuilt.append(f"\\{op} " if op.isalpha() else op)
    return Shape(" ".join(rebuilt))


def _semicolon_tuples(text: str) -> str:
    """``(0;-2;6)`` -> ``(0,-2,6)``: semicolons separate the entries of a bracket with no comma."""
    if ";" not in text or "(" not in text:
        return text
    out = list(text)
    stack: list[tuple[int, list[int], bool]] = []  # (open index, semicolons, has comma)
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append((i, [], False))
        elif ch in ",;" and stack:
            start, semis, comma = stack[-1]
            if ch == ";":
                semis.append(i)
            else:
                stack[-1] = (start, semis, True)
        elif ch == ")" and stack:
            _, semis, comma = stack.pop()
            if semis and not comma:
                for k in semis:
                    out[k] = ","
    return "".join(out)


# A closing condition on the answer's variables: "f(x) = x for all x", "x = \\frac{\\pi}{4} + k\\pi,
# k \\in \\mathbb{Z}". It qualifies the answer and is not part of its value.
_CONDITION = re.compile(
    r"(?:,\s*|\s+|\\quad\s*)(?:\\forall|for\s+(?:all|any|every|each)\b|where\b)"
    r"|(?:,\s*|\s*\(\s*)[a-zA-Z]\s*\\in\s*\\mathbb\s*\{?\s*[ZNQ]\b",
    re.IGNORECASE,
)


def drop_condition(text: str) -> str:
    """``f(x) = x for all x`` -> ``f(x) = x``; the text unchanged when there is no condition."""
    m = _CONDITION.search(text)
    if m is None or not text[: m.start()].strip():
        return text
    if re.search(r"[=;]|otherwise|else", text[m.end() :], re.IGNORECASE):
        return text  # more clauses follow: a piecewise answer, not one answer and its condition
    return text[: m.start()].rstrip(" ,")


def analyze(text: str) -> Shape:
    """The layout of a normalized answer; ``Shape(text)`` when it has no label or chain."""
    text = drop_condition(_semicolon_tuples(text))
    if not _RELATION_HINT.search(text):
        return Shape(text)
    items = split_top(text, ",;")
    if len(items) == 1:
        return _single(text)
    labelled = [_labelled(item) for item in items]
    if labelled[0] is None:
        # One label in front of a list: "(x, y) = (5, 8), (8, 5)", "x = 1, 2".
        first = _single(items[0])
        if first.label and not any("=" in item for item in items[1:]):
            rest = ", ".join([first.text] + [item.strip() for item in items[1:]])
            return Shape(rest, label=first.label, function=first.function, bound=first.bound)
        return Shape(text)
    if all(pair is not None for pair in labelled):
        pairs = tuple(pair for pair in labelled if pair is not None)
        labels = {label for label, _ in pairs}
        bases = {re.sub(r"_.*", "", label) for label in labels}
        if len(labels) == 1 or (len(bases) == 1 and all("_" in label for label in labels)):
            # "x = 1, x = 2" and "x_1 = 1, x_2 = 2": the values of one unknown, in any order
            return Shape(", ".join(value for _, value in pairs), label=bases.pop())
        return Shape(text, items=pairs)
    if not any("=" in item for item in items[1:]):
        rest = ", ".join([labelled[0][1]] + [item.strip() for item in items[1:]])
        return Shape(rest, label=labelled[0][0])
    return Shape(text)


def solutions(items: tuple[tuple[str, str], ...]) -> list[list[tuple[str, str]]]:
    """Group a system's (label, value) items into solutions: a repeated label starts a new one."""
    groups: list[list[tuple[str, str]]] = [[]]
    for label, value in items:
        if any(label == seen for seen, _ in groups[-1]):
            groups.append([])
        groups[-1].append((label, value))
    return groups


_MAX_MATRIX_ENTRIES = 100


def evaluate_matrices(tree):
    """``A + B``, ``A B``, ``2A`` of written-out matrices -> the resulting matrix (entries stay
    expressions, compared as usual). Anything else is returned unchanged."""
    kind = tree[0] if isinstance(tree, tuple) else None
    if kind == "neg":
        inner = evaluate_matrices(tree[1])
        if inner[0] == "matrix":
            return ("matrix", [[("neg", x) for x in row] for row in inner[1]])
        return tree
    if kind not in ("add", "sub", "mul"):
        return tree
    a, b = evaluate_matrices(tree[1]), evaluate_matrices(tree[2])
    a_matrix, b_matrix = a[0] == "matrix", b[0] == "matrix"
    if not (a_matrix or b_matrix):
        return tree
    if kind in ("add", "sub"):
        if not (a_matrix and b_matrix) or _shape(a) != _shape(b):
            return tree
        return (
            "matrix",
            [[(kind, x, y) for x, y in zip(ra, rb)] for ra, rb in zip(a[1], b[1])],
        )
    if not (a_matrix and b_matrix):  # a scalar times a matrix
        scalar, matrix = (b, a) if a_matrix else (a, b)
        return ("matrix", [[("mul", scalar, x) for x in row] for row in matrix[1]])
    (n, m), (m2, p) = _shape(a), _shape(b)
    if m != m2 or n * p > _MAX_MATRIX_ENTRIES or m > 10:
        return tree
    rows = []
    for i in range(n):
        row = []
        for j in range(p):
            entry = ("mul", a[1][i][0], b[1][0][j])
            for k in range(1, m):
                entry = ("add", entry, ("mul", a[1][i][k], b[1][k][j]))
            row.append(entry)
        rows.append(row)
    return ("matrix", rows)


def _shape(matrix) -> tuple[int, int]:
    return len(matrix[1]), len(matrix[1][0])
