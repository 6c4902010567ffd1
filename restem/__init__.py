"""restem: hardened reward verifiers (MATH answers, code with tests) and a ReST-EM harness.

>>> import restem
>>> restem.verify_math("so the answer is $\\boxed{\\frac{1}{2}}$", "0.5").correct
True

The everyday entry points are here; the packages hold the rest:
``restem.verifiers`` (is this answer right?), ``restem.sandbox`` (how untrusted code runs),
``restem.harness`` (the self-training loop). ``import restem`` needs only the standard library;
sympy, pebble, docker and torch load on first use.
"""

from restem import errors, verifiers
from restem.errors import *  # noqa: F403 - RestemError and its kinds
from restem.verifiers import *  # noqa: F403 - the verifiers' public API

__version__ = "0.2.0"

__all__ = [*errors.__all__, *verifiers.__all__]
