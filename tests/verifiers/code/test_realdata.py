"""The acceptance figures on the real data sets ($RESTEM_DATA_DIR/code).

The sweeps are `slow`; MBPP runs on every 8th task and the docker-vs-local comparison on a
sample unless RESTEM_FULL_SWEEPS=1 (all of MBPP alone takes about two minutes on two cores).
"""

from __future__ import annotations

import gzip
import json
import os

import pytest
from restem.verifiers import CodeLimits, verify_code_batch
from restem.verifiers.code import (
    Mode,
    load_apps_folder,
    load_apps_mapcoder,
    load_apps_solutions,
    load_humaneval,
    mbpp_problem,
)

pytestmark = pytest.mark.realdata
FULL = os.environ.get("RESTEM_FULL_SWEEPS") == "1"

# Reference solutions that fail under strict comparison, and why (SOURCES.md "Known traps").
STRICT_REFERENCE_FAILURES = {
    1613: "lossy call format: a multi-line string argument splits into several arguments",
    1627: "lossy call format: the string '123' reads as the int 123",
    2798: "lossy call format: the string '12345' reads as the int 12345",
    2009: "several valid answers, and the program picks one at random (needs a special judge)",
    2047: "several valid answers; the tests keep one (needs a special judge)",
    2060: "valid only wrapped in a function as APPS runs it (`nonlocal` at top level)",
    2070: "valid only wrapped in a function as APPS runs it (`return` at top level)",
}
LOSSY = {1613, 1627, 2798}
# Some accepted APPS solutions need ~4 s of CPU on one test (2064's test 10 takes 3.9-4.3 s here),
# right at the default 4 s limit: the verdict would depend on the machine. These tests are about
# what is judged, not how fast, so they allow more.
GENEROUS = CodeLimits(test_s=10.0, total_s=120.0)
# Original-layout solutions with a top-level `return` (valid only the way APPS wraps them).
WRAPPED_ONLY = {("2287", 2), ("2287", 4), ("2287", 9)}


def _humaneval_rows(code_dir):
    with gzip.open(code_dir / "humaneval.jsonl.gz", "rt", encoding="utf-8") as stream:
        return [json.loads(line) for line in stream]


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def code_dir(data_dir):
    return data_dir / "code"


def test_original_layout_folders_load(code_dir):
    modes = {
        f.name: load_apps_folder(f).mode
        for f in sorted((code_dir / "apps_original_layout").iterdir())
    }
    assert modes == {
        "0001": Mode.STDIO,
        "0111": Mode.STDIO,
        "2287": Mode.STDIO,
        "2404": Mode.CALL,
        "4184": Mode.CALL,
    }
    assert load_apps_folder(code_dir / "apps_original_layout" / "2404").uses_solution_class


@pytest.mark.slow
def test_humaneval_canonical_solutions_pass_and_return_mutants_fail(code_dir, box):
    rows = _humaneval_rows(code_dir)
    problems = load_humaneval(code_dir / "humaneval.jsonl.gz")
    assert len(problems) == 164

    def mutant(body: str) -> str:  # the last `return` line answers None
        lines = body.split("\n")
        i = max(n for n, line in enumerate(lines) if line.strip().startswith("return "))
        lines[i] = lines[i][: len(lines[i]) - len(lines[i].lstrip())] + "return None"
        return "\n".join(lines)

    items = [(p, p.prompt + r["canonical_solution"]) for p, r in zip(problems, rows)]
    items += [(p, p.prompt + mutant(r["canonical_solution"])) for p, r in zip(problems, rows)]
    verdicts = verify_code_batch(items, backend=box, workers=2)
    assert [p.id for p, v in zip(problems, verdicts[:164]) if not v.correct] == []
    assert [p.id for p, v in zip(problems, verdicts[164:]) if v.correct] == []


@pytest.mark.slow
def test_mbpp_reference_solutions_pass(code_dir, box):
    rows = _jsonl(code_dir / "mbpp.jsonl")
    assert len(rows) == 974
    rows = rows if FULL else rows[::8]
    verdicts = verify_code_batch(
        [(mbpp_problem(r), r["code"]) for r in rows], backend=box, workers=2, all_tests=True
    )
    assert [(r["task_id"], v.reason) for r, v in zip(rows, verdicts) if not v.correct] == []


@pytest.fixture(scope="module")
def apps(code_dir):
    problems = {p.id: p for p in load_apps_mapcoder(code_dir / "apps_mapcoder150.jsonl")}
    assert len(problems) == 128
    return problems


def _judge_generously(apps, rows: list[dict], box):
    """Each row's ``text`` judged on its APPS problem (by ``id``) under the generous limits."""
    pairs = [(apps[str(row["id"])], row["text"]) for row in rows]
    return verify_code_batch(pairs, backend=box, workers=2, limits=GENEROUS)


@pytest.mark.slow
def test_apps_reference_solutions_fail_only_where_the_data_says(code_dir, apps, box):
    refs = _jsonl(code_dir / "apps_reference_solutions.jsonl")
    verdicts = _judge_generously(apps, refs, box)
    failed = {r["id"] for r, v in zip(refs, verdicts) if not v.correct}
    assert failed == set(STRICT_REFERENCE_FAILURES)
    assert len(refs) - len(failed) == 31
    # apps_compat wraps programs and accepts several answers as APPS does; lossy calls remain.
    retry = [(apps[str(r["id"])], r["text"]) for r in refs if r["id"] in failed]
    compat = verify_code_batch(retry, backend=box, workers=2, comparison="apps_compat")
    still = {
        r["id"] for r, v in zip([r for r in refs if r["id"] in failed], compat) if not v.correct
    }
    assert LOSSY <= still <= LOSSY | {2009}  # 2009 passes APPS's set check when the dice agree


@pytest.mark.slow
def test_apps_model_solutions_pass_as_their_source_judged_them(code_dir, apps, box):
    models = _jsonl(code_dir / "apps_model_solutions.jsonl")
    verdicts = _judge_generously(apps, models, box)
    failed = [m for m, v in zip(models, verdicts) if not v.correct]
    # 13 are stdin programs for call-based problems: MapCoder fed the stringified arguments on
    # stdin. Under the APPS call contract they fail; read as MapCoder read them, they pass.
    assert len(failed) == 13, [
        (m["id"], v.status.value, v.reason[:200]) for m, v in zip(models, verdicts) if not v.correct
    ]
    assert all(apps[str(m["id"])].mode is Mode.CALL for m in failed)
    as_stdio = {
        p.id: p
        for p in load_apps_mapcoder(code_dir / "apps_mapcoder150.jsonl", calls_as_stdio=True)
    }
    again = verify_code_batch(
        [(as_stdio[str(m["id"])], m["text"]) for m in failed], backend=box, workers=2
    )
    assert [m["id"] for m, v in zip(failed, again) if not v.correct] == []


@pytest.mark.slow
def test_apps_original_layout_solutions_pass(code_dir, box):
    items, keys = [], []
    for folder in sorted((code_dir / "apps_original_layout").iterdir()):
        problem = load_apps_folder(folder)
        for n, solution in enumerate(load_apps_solutions(folder)):
            items.append((problem, solution))
            keys.append((folder.name, n))
    assert len(items) == 101
    verdicts = verify_code_batch(items, backend=box, workers=2, limits=GENEROUS)
    failed = {k for k, v in zip(keys, verdicts) if not v.correct}
    assert failed == WRAPPED_ONLY
    assert all(v.status == "compile_error" for k, v in zip(keys, verdicts) if k in failed)
    wrapped = [item for item, k in zip(items, keys) if k in failed]
    assert all(v.correct for v in verify_code_batch(wrapped, backend=box, comparison="apps_compat"))


@pytest.mark.slow
def test_no_apps_problem_is_passed_by_a_trivial_program(code_dir, apps, box):
    problems = list(apps.values()) + [
        load_apps_folder(f) for f in sorted((code_dir / "apps_original_layout").iterdir())
    ]
    items = [(p, program) for p in problems for program in ("print()", "pass")]
    verdicts = verify_code_batch(items, backend=box, workers=2)
    weak = sorted({p.id for (p, _), v in zip(items, verdicts) if v.correct})
    assert weak == []  # weak-test problems: none in this data


@pytest.mark.slow
@pytest.mark.docker
def test_docker_and_local_give_the_same_verdicts(code_dir, apps, box):
    from restem.sandbox import docker_available
    from restem.verifiers.code import open_sandbox

    if not docker_available():
        pytest.skip("no Docker engine answers")
    rows = _humaneval_rows(code_dir)
    he = load_humaneval(code_dir / "humaneval.jsonl.gz")
    step = 1 if FULL else 16
    items = [(p, p.prompt + r["canonical_solution"]) for p, r in list(zip(he, rows))[::step]]
    items += [(p, p.prompt + "    return None\n") for p in he[::step]]
    mbpp = _jsonl(code_dir / "mbpp.jsonl")[:: 5 * step]
    items += [(mbpp_problem(r), r["code"]) for r in mbpp]
    items += [(mbpp_problem(r), "def f(): pass") for r in mbpp]
    for name in ("apps_reference_solutions.jsonl", "apps_model_solutions.jsonl"):
        items += [
            (apps[str(r["id"])], r["text"]) for r in _jsonl(code_dir / name)[:: step // 4 or 1]
        ]
    hostile = {"input_output": {"fn_name": "f", "inputs": [[1]], "outputs": [1]}}
    items += [
        (hostile, "def f(x):\n    while True: pass"),
        (hostile, "def f(x):\n    return bytearray(1 << 31)"),
        (hostile, "import os\nos._exit(0)"),
        (hostile, "def f(x)\n    return x"),
    ]
    with open_sandbox("docker", 2) as docker:
        on_docker = [v.status for v in verify_code_batch(items, backend=docker, workers=2)]
    on_local = [v.status for v in verify_code_batch(items, backend=box, workers=2)]
    assert on_docker == on_local
    assert {s.value for s in on_local} >= {
        "passed",
        "wrong_answer",
        "timeout",
        "memory",
        "compile_error",
    }
