"""The verifiers a user would pick instead of restem, each run the way its own users run it.

Every peer module offers ``available() -> str | None`` (None, or why it cannot run here) and
``judge(response, gold) -> bool`` for one pair, in the caller's process.
"""

__all__: list[str] = []
