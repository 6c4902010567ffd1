"""Benchmarks of restem's verifiers and sandboxes next to their peers (`restem bench math|code`).

Not imported by the other packages. Modules: `math_bench`, `code_bench`, `sandbox_bench` (the raw
sandboxes), `report` (machine, tables, JSON, plots), `peers/` (the contenders that are not restem).
Results land in `benchmarks/results/` (JSON and PNG); `docs/benchmarks.md` shows the latest.
"""
