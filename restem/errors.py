"""restem's exceptions: one base a caller can catch, one subclass per kind of failure.

Untrusted input (a model's answer, a program) never raises: it gets a verdict. These are raised
for the caller's own mistakes (a bad config, an unusable problem) and for infrastructure that
cannot go on (no sandbox engine, a lost cluster). Each also keeps the builtin base it had before
(ValueError for bad input, RuntimeError for infrastructure), so older ``except`` clauses still work.

``exit_status`` is what the ``restem`` command exits with for each: 2 for the caller's input
(config, problem, run set-up), 1 for infrastructure.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ExecutorError",
    "GenerationError",
    "JobError",
    "ProblemError",
    "RestemError",
    "RunError",
    "SandboxUnavailable",
]


class RestemError(Exception):
    """The base of every error restem raises on purpose."""

    exit_status = 1


class ConfigError(RestemError, ValueError):
    """A config (file, dataclass or option) that cannot be used; the message names the key."""

    exit_status = 2


class ProblemError(RestemError, ValueError):
    """Problem data that is unusable (no tests, malformed fields)."""

    exit_status = 2


class RunError(RestemError, RuntimeError):
    """A run that cannot start or continue (a folder that is not a run, no problems, an
    unloadable tokenizer); the message says why and what to do."""

    exit_status = 2


class ExecutorError(RestemError, RuntimeError):
    """The executor itself cannot go on (no Ray cluster, no worker could start)."""


class GenerationError(RestemError, RuntimeError):
    """Generation cannot go on (a missing backend, lost workers); the message says what to check."""


class JobError(RestemError, RuntimeError):
    """A launched job could not run or exited with an error; the message names the command and log."""


class SandboxUnavailable(RestemError, RuntimeError):
    """No sandbox can start: no Docker engine answers, or the docker SDK is not installed."""
