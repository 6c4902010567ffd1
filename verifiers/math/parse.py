"""Parse: normalized LaTeX -> a small tuple AST, with no ``eval`` and no sympy.

A hand-written Pratt parser: untrusted text is never evaluated, nesting depth and size are capped,
and it runs in linear time, so it is safe in the caller's process. Node shapes:

``("num", text)`` ``("sym", name)`` ``("const", "pi"|"inf")``
``("add"|"sub"|"mul"|"div"|"pow", a, b)`` ``("neg", a)`` ``("pm", a_or_None, b)``
``("sqrt", a)`` ``("root", a, n)`` ``("fact", a)`` ``("abs", a)`` ``("binom", n, k)``
``("func", name, arg)`` ``("log", base_or_None, arg)`` ``("floor"|"ceil", a)``
``("mixed", whole, num, den)`` ``("repeat", text, repeating_digits)``
``("tuple", open, close, items)`` ``("set", items)`` ``("list", items)`` ``("union", parts)``
``("rel", ops, parts)`` ``("matrix", rows)`` ``("ratio", items)`` ``("apply", name, arg)``
``("diff", a, b)`` (set difference) ``("builder", var, domain_or_None, conditions)``
"""

from __future__ import annotations

__all__ = ["FUNCTION_NAMES", "GREEK_LETTERS", "ParseError", "parse_latex"]

MAX_TOKENS = 4000
MAX_DEPTH = 60


class ParseError(ValueError):
    pass


FUNCTION_NAMES = frozenset(
    [
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "arcsin",
        "arccos",
        "arctan",
        "sinh",
        "cosh",
        "tanh",
        "exp",
        "ln",
        "log",
        "lg",
        "arcsec",
        "arccsc",
        "arccot",
    ]
)
# f^{-1} of a trigonometric function is its inverse (\tan^{-1} x = \arctan x), not 1/tan.
_INVERSES = {
    "sin": "arcsin",
    "cos": "arccos",
    "tan": "arctan",
    "sec": "arcsec",
    "csc": "arccsc",
    "cot": "arccot",
}
# Letters that conventionally name functions: f(x+1) is an application, never f*(x+1).
_FUNCTION_LETTERS = frozenset("fghFGH")
GREEK_LETTERS = frozenset(
    [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "varepsilon",
        "zeta",
        "eta",
        "theta",
        "vartheta",
        "iota",
        "kappa",
        "lambda",
        "mu",
        "nu",
        "xi",
        "rho",
        "sigma",
        "tau",
        "upsilon",
        "phi",
        "varphi",
        "chi",
        "psi",
        "omega",
        "Gamma",
        "Delta",
        "Theta",
        "Lambda",
        "Xi",
        "Sigma",
        "Phi",
        "Psi",
        "Omega",
    ]
)
_RELATIONS = {
    "=": "=",
    "<": "<",
    ">": ">",
    "le": "<=",
    "leq": "<=",
    "leqslant": "<=",
    "ge": ">=",
    "geq": ">=",
    "geqslant": ">=",
    "lt": "<",
    "gt": ">",
    "ne": "!=",
    "neq": "!=",
    "approx": "~",  # an approximation: commentary after the exact value, dropped when comparing
    "equiv": "=",
}
_PLAIN_FUNCTIONS = (
    "arcsin",
    "arccos",
    "arctan",
    "arcsec",
    "arccsc",
    "arccot",
    "sqrt",
    "sin",
    "cos",
    "tan",
    "log",
    "ln",
    "exp",
)
_MATRIX_ENVS = frozenset(
    ["matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "smallmatrix", "array"]
)


_DIGITS = frozenset("0123456789")


def _NE_AFTER(s: str, i: int) -> bool:
    """Is ``!=`` at ``i`` a not-equal sign? Not after a digit or a closing bracket (``5!=120``)."""
    j = i - 1
    while j >= 0 and s[j] == " ":
        j -= 1
    return j < 0 or s[j] not in "0123456789)}]!"


def tokenize(s: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch.isspace():
            i += 1
            continue
        # ASCII digits only: str.isdigit() also accepts "²" and "①", which int() rejects
        if ch in _DIGITS or (ch == "." and i + 1 < n and s[i + 1] in _DIGITS):
            j = i
            while j < n and s[j] in _DIGITS:
                j += 1
            if j < n and s[j] == ".":
                j += 1
                while j < n and s[j] in _DIGITS:
                    j += 1
            tokens.append(("num", s[i:j]))
            i = j
        elif ch.isalpha():
            for name in _PLAIN_FUNCTIONS:
                if s.startswith(name, i) and not s[i + len(name) : i + len(name) + 1].isalpha():
                    tokens.append(("cmd", name))
                    i += len(name)
                    break
            else:
                tokens.append(("id", ch))
                i += 1
        elif ch == "\\":
            j = i + 1
            if j < n and s[j].isalpha():
                while j < n and s[j].isalpha():
                    j += 1
                name = s[i + 1 : j]
                if name in ("begin", "end"):
                    k = j
                    while k < n and s[k] == " ":
                        k += 1
                    close = s.find("}", k)
                    if k < n and s[k] == "{" and close != -1:
                        env = s[k + 1 : close].strip().rstrip("*")
                        if env not in _MATRIX_ENVS:
                            raise ParseError(f"unsupported environment {env!r}")
                        if name == "begin" and env == "array":
                            # skip the column spec {cc}
                            k2 = close + 1
                            if k2 < n and s[k2] == "{":
                                close = s.find("}", k2)
                        tokens.append(("matbegin" if name == "begin" else "matend", env))
                        i = close + 1
                        continue
                    raise ParseError("\\begin without an environment")
                tokens.append(("cmd", name))
                i = j
            elif j < n:
                nxt = s[j]
                if nxt == "\\":
                    tokens.append(("rowsep", "\\\\"))
                elif nxt == "{":
                    tokens.append(("lset", "\\{"))
                elif nxt == "}":
                    tokens.append(("rset", "\\}"))
                elif nxt == "|":
                    tokens.append(("op", "|"))
                elif nxt in ",;:! ":
                    pass  # spacing
                else:
                    raise ParseError(f"unexpected \\{nxt}")
                i = j + 1
            else:
                raise ParseError("trailing backslash")
        elif ch == "!" and s.startswith("=", i + 1) and _NE_AFTER(s, i):
            tokens.append(("op", "!="))  # x != 3; but 5!=120 stays a factorial
            i += 2
        elif ch in "+-*/^_()[]{}|!=<>,;&':":
            tokens.append(("op", ch))
            i += 1
        else:
            raise ParseError(f"unexpected character {ch!r}")
        if len(tokens) > MAX_TOKENS:
            raise ParseError("answer too long")
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.abs_depth = 0

    # -- token helpers --
    def peek(self, offset: int = 0) -> tuple[str, str]:
        p = self.pos + offset
        return self.tokens[p] if p < len(self.tokens) else ("end", "")

    def advance(self) -> tuple[str, str]:
        tok = self.peek()
        self.pos += 1
        return tok

    def at(self, kind: str, value: str | None = None) -> bool:
        k, v = self.peek()
        return k == kind and (value is None or v == value)

    def expect(self, kind: str, value: str | None = None) -> None:
        if not self.at(kind, value):
            raise ParseError(f"expected {value or kind}, got {self.peek()[1] or 'end'}")
        self.pos += 1

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("nested too deeply")

    # -- grammar --
    def parse_top(self):
        items = [self.parse_relation()]
        while self.at("op", ",") or self.at("op", ";"):
            self.advance()
            if self.at("end"):
                break
            items.append(self.parse_relation())
        if not self.at("end"):
            raise ParseError(f"unexpected {self.peek()[1]!r}")
        return items[0] if len(items) == 1 else ("list", items)

    def relation_op(self) -> str | None:
        kind, value = self.peek()
        if kind == "op" and value in "=<>":
            if value in "<>" and self.peek(1) == ("op", "="):
                self.pos += 1
                return value + "="
            return value
        if kind == "op" and value == "!=":
            return "!="
        if kind == "cmd" and value in _RELATIONS:
            return _RELATIONS[value]
        return None

    def parse_relation(self):
        parts = [self.parse_ratio()]
        ops = []
        while (op := self.relation_op()) is not None:
            self.advance()
            ops.append(op)
            parts.append(self.parse_ratio())
        return ("rel", ops, parts) if ops else parts[0]

    def parse_ratio(self):
        """``a : b : c``, a ratio (looser than any arithmetic, tighter than a relation)."""
        items = [self.parse_union()]
        while self.at("op", ":") or self.at("cmd", "colon"):
            self.advance()
            items.append(self.parse_union())
        return ("ratio", items) if len(items) > 1 else items[0]

    def parse_union(self):
        left = self.parse_expr(0)
        parts = [left]
        while self.at("cmd", "cup") or self.at("cmd", "setminus") or self.at("cmd", "backslash"):
            if self.advance()[1] == "cup":
                parts.append(self.parse_expr(0))
            else:  # A \cup B \setminus C: the difference binds to everything before it
                whole = ("union", parts) if len(parts) > 1 else parts[0]
                parts = [("diff", whole, self.parse_expr(0))]
        return ("union", parts) if len(parts) > 1 else parts[0]

    def starts_atom(self) -> bool:
        kind, value = self.peek()
        if kind in ("num", "id", "lset", "matbegin"):
            return True
        if kind == "op":
            if value == "|":
                return self.abs_depth == 0
            return value in "({["
        if kind == "cmd":
            return (
                value
                not in (
                    "cdot",
                    "times",
                    "div",
                    "pm",
                    "mp",
                    "cup",
                    "cap",
                    "in",
                    "to",
                    "rfloor",
                    "rceil",
                    "setminus",
                    "backslash",
                    "mid",
                    "colon",
                )
                and value not in _RELATIONS
            )
        return False

    def parse_expr(self, min_bp: int):
        self.enter()
        try:
            left = self.parse_prefix()
            while True:
                kind, value = self.peek()
                if (kind == "op" and value in "+-") or (kind == "cmd" and value in ("pm", "mp")):
                    if min_bp >= 10:
                        break
                    self.advance()
                    right = self.parse_expr(11)
                    op = {"+": "add", "-": "sub"}.get(value)
                    left = (op, left, right) if op else ("pm", left, right)
                elif (kind == "op" and value in "*/") or (
                    kind == "cmd" and value in ("cdot", "times", "div")
                ):
                    if min_bp >= 20:
                        break
                    self.advance()
                    right = self.parse_expr(21)
                    left = ("div" if value in ("/", "div") else "mul", left, right)
                elif kind == "op" and value == "^":
                    if min_bp > 30:
                        break
                    self.advance()
                    left = ("pow", left, self.parse_exponent())
                elif kind == "op" and value == "!":
                    self.advance()
                    left = ("fact", left)
                elif kind == "op" and value == "_":
                    self.advance()
                    left = self.parse_subscript(left)
                elif self.starts_atom():
                    if min_bp >= 20:
                        break
                    if left[0] == "num" and self.at("num"):
                        # "1 0000", "3 5": not a product anyone writes; a malformed number
                        raise ParseError("two numbers side by side")
                    right = self.parse_expr(21)
                    left = ("mul", left, right)
                else:
                    break
            return left
        finally:
            self.depth -= 1

    def parse_exponent(self):
        if self.at("op", "{"):
            return self.parse_braced()
        kind, value = self.peek()
        if kind == "num":
            self.advance()
            return ("num", value)
        if kind == "op" and value == "-":
            self.advance()
            return ("neg", self.parse_exponent())
        if kind in ("id", "cmd", "op") and (kind != "op" or value in "(["):
            return self.parse_prefix()
        raise ParseError("missing exponent")

    def parse_subscript(self, left):
        if left[0] != "sym":
            raise ParseError("subscript on a non-symbol")
        if self.at("op", "{"):
            start = self.pos
            self.parse_braced()
            label = "".join(v for _, v in self.tokens[start : self.pos])
        else:
            label = self.advance()[1]
        return ("sym", f"{left[1]}_{label}")

    def parse_braced(self):
        self.expect("op", "{")
        if self.at("op", "}"):
            raise ParseError("empty group")
        inner = self.parse_group_items("}")
        return inner

    def parse_group_items(self, closer: str):
        items = [self.parse_union()]
        while self.at("op", ","):
            self.advance()
            items.append(self.parse_union())
        self.expect("op", closer)
        if len(items) == 1:
            return items[0]
        return ("set", items) if closer == "}" else ("tuple", "(", closer, items)

    def parse_arg(self):
        """A macro argument: {group}, a single digit of a number, a letter, or a command."""
        kind, value = self.peek()
        if kind == "op" and value == "{":
            return self.parse_braced()
        if kind == "num":
            if len(value) > 1 and value[0] != ".":
                # \frac12: the argument is one digit, the rest stays in the stream
                self.tokens[self.pos] = ("num", value[1:])
                return ("num", value[0])
            self.advance()
            return ("num", value)
        if kind == "id":
            self.advance()
            return ("sym", value)
        if kind == "cmd":
            return self.parse_prefix()
        raise ParseError("missing argument")

    def parse_number(self, text: str):
        # 0.\overline{3}: a repeating decimal
        if self.at("cmd", "overline") and self.peek(1) == ("op", "{"):
            kind, digits = self.peek(2)
            if kind == "num" and digits.isdigit() and self.peek(3) == ("op", "}"):
                self.pos += 4
                return ("repeat", text, digits)
        # 2\frac{1}{2}: a mixed number
        if text.isdigit() and self.at("cmd", "frac"):
            save, saved_tokens = self.pos, list(self.tokens)
            self.advance()
            try:
                num, den = self.parse_arg(), self.parse_arg()
            except ParseError:
                num = den = None
            if (
                num
                and den
                and num[0] == "num"
                and den[0] == "num"
                and num[1].isdigit()
                and den[1].isdigit()
                and int(num[1]) < int(den[1])
            ):
                return ("mixed", text, num[1], den[1])
            self.pos, self.tokens = save, saved_tokens  # parse_arg may have split a number
        return ("num", text)

    def parse_prefix(self):
        kind, value = self.advance()
        if kind == "num":
            return self.parse_number(value)
        if kind == "id":
            if self.at("op", "(") and self.applies(value):
                return ("apply", value, self.parse_prefix())
            return ("sym", value)
        if kind == "op":
            if value == "-":
                return ("neg", self.parse_expr(25))
            if value == "+":
                return self.parse_expr(25)
            if value in "([":
                if self.at("op", ")") or self.at("op", "]"):
                    raise ParseError("empty brackets")
                items = [self.parse_union()]
                while self.at("op", ","):
                    self.advance()
                    items.append(self.parse_union())
                close = self.advance()
                if close[0] != "op" or close[1] not in ")]":
                    raise ParseError("unclosed bracket")
                if len(items) == 1 and value + close[1] in ("()", "[]"):
                    return items[0]
                return ("tuple", value, close[1], items)
            if value == "{":
                if self.at("op", "}"):
                    raise ParseError("empty group")
                return self.parse_group_items("}")
            if value == "|":
                self.abs_depth += 1
                try:
                    inner = self.parse_expr(0)
                finally:
                    self.abs_depth -= 1
                self.expect("op", "|")
                return ("abs", inner)
            raise ParseError(f"unexpected {value!r}")
        if kind == "lset":
            if self.at("rset"):
                self.advance()
                return ("set", [])
            builder = self.parse_builder()
            if builder is not None:
                return builder
            items = [self.parse_relation()]
            while self.at("op", ","):
                self.advance()
                items.append(self.parse_relation())
            self.expect("rset")
            return ("set", items)
        if kind == "matbegin":
            return self.parse_matrix()
        if kind == "cmd":
            return self.parse_command(value)
        raise ParseError(f"unexpected {value or kind}")

    def _builder_separator(self) -> bool:
        return self.at("cmd", "mid") or self.at("op", ":") or self.at("op", "|")

    def parse_builder(self):
        """``\\{x \\mid x < 3\\}`` or ``\\{x \\in S : ...\\}``, just after ``\\{``; else None."""
        kind, var = self.peek()
        if kind != "id":
            return None
        if self.peek(1) == ("cmd", "in"):
            self.pos += 2
            self.abs_depth += 1  # a "|" after the domain separates, it does not open |...|
            try:
                domain = self.parse_union()
            finally:
                self.abs_depth -= 1
        elif self.peek(1) in (("cmd", "mid"), ("op", ":"), ("op", "|")):
            self.pos += 1
            domain = None
        else:
            return None
        if not self._builder_separator():
            raise ParseError("expected | in a set-builder")
        self.advance()
        conditions = [self.parse_relation()]
        while self.at("op", ","):
            self.advance()
            conditions.append(self.parse_relation())
        self.expect("rset")
        return ("builder", var, domain, conditions)

    def applies(self, letter: str) -> bool:
        """Is ``letter(`` a function application? (The "(" is the next token.)

        A function letter (f, g, h) always is; any other letter when its argument is a bare number
        (``-p(0)`` is the value of p at 0, not 0), since a product would be written ``0p``.
        """
        if letter in _FUNCTION_LETTERS:
            return True
        if letter in "ei":
            return False
        k = 1
        if self.peek(k) == ("op", "-"):
            k += 1
        return self.peek(k)[0] == "num" and self.peek(k + 1) == ("op", ")")

    def parse_matrix(self):
        rows: list[list] = [[]]
        while True:
            if self.at("matend"):
                self.advance()
                break
            if self.at("end"):
                raise ParseError("unclosed matrix")
            if self.at("rowsep"):
                self.advance()
                rows.append([])
                continue
            if self.at("op", "&"):
                self.advance()
                continue
            rows[-1].append(self.parse_expr(0))
        rows = [r for r in rows if r]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ParseError("ragged matrix")
        return ("matrix", rows)

    def parse_command(self, name: str):
        if name == "frac":
            return ("div", self.parse_arg(), self.parse_arg())
        if name == "sqrt":
            if self.at("op", "["):
                self.advance()
                index = self.parse_expr(0)
                self.expect("op", "]")
                return ("root", self.parse_arg(), index)
            return ("sqrt", self.parse_arg())
        if name == "binom":
            return ("binom", self.parse_arg(), self.parse_arg())
        if name == "pi":
            return ("const", "pi")
        if name == "infty" or name == "infinity":
            return ("const", "inf")
        if name in ("emptyset", "varnothing"):
            return ("set", [])
        if name in ("pm", "mp"):
            return ("pm", None, self.parse_expr(25))
        if name in GREEK_LETTERS:
            return ("sym", name)
        if name == "lfloor" or name == "lceil":
            inner = self.parse_expr(0)
            self.expect("cmd", "rfloor" if name == "lfloor" else "rceil")
            return ("floor" if name == "lfloor" else "ceil", inner)
        if name in FUNCTION_NAMES:
            exponent = None
            base = None
            if name in ("log", "lg") and self.at("op", "_"):
                self.advance()
                base = self.parse_arg()
            if self.at("op", "^"):
                self.advance()
                exponent = self.parse_exponent()
            if self.at("op", "(") or self.at("op", "{"):
                arg = self.parse_prefix()
            else:
                arg = self.parse_expr(25)
            if exponent == ("neg", ("num", "1")) and name in _INVERSES:
                return ("func", _INVERSES[name], arg)  # \tan^{-1} x is \arctan x
            node = ("log", base, arg) if name in ("log", "lg") else ("func", name, arg)
            return ("pow", node, exponent) if exponent is not None else node
        raise ParseError(f"unsupported command \\{name}")


def parse_latex(s: str):
    """Parse a normalized answer; raises ParseError on anything it does not understand."""
    if not s.strip():
        raise ParseError("empty answer")
    tokens = tokenize(s)
    return _Parser(tokens).parse_top()
