"""The filter (cap, dedup) and the config loader (clear errors)."""

from __future__ import annotations

import pytest
from restem.harness.config import ConfigError, config_to_dict, load_config, parse_config
from restem.harness.loop import filter_stage
from restem.harness.rundir import SampleRow, VerdictRow


def _cfg(**filter_options):
    return parse_config(
        {
            "name": "f",
            "model": {"path": "m"},
            "data": {"train_path": "a", "eval_path": "b"},
            "filter": filter_options,
        }
    )


def _samples(problem: str, completions: list[str], correct: list[bool]):
    samples = [SampleRow(problem, i, c) for i, c in enumerate(completions)]
    verdicts = [
        VerdictRow(problem, i, ok, "correct" if ok else "incorrect", "")
        for i, ok in enumerate(correct)
    ]
    return samples, verdicts


class TestFilter:
    def test_keeps_only_correct_samples(self):
        samples, verdicts = _samples("p", ["a", "b", "c"], [True, False, True])
        kept = filter_stage(_cfg(), samples, verdicts, seed=0)
        assert [s.completion for s in kept] == ["a", "c"]

    def test_caps_each_problem(self):
        s1, v1 = _samples("easy", [f"s{i}" for i in range(20)], [True] * 20)
        s2, v2 = _samples("hard", ["x"], [True])
        kept = filter_stage(_cfg(max_per_problem=3), s1 + s2, v1 + v2, seed=0)
        assert sum(s.problem_id == "easy" for s in kept) == 3
        assert sum(s.problem_id == "hard" for s in kept) == 1

    def test_drops_exact_duplicates_per_problem_only(self):
        s1, v1 = _samples("p", ["same", "same ", "other"], [True, True, True])
        s2, v2 = _samples("q", ["same"], [True])
        kept = filter_stage(_cfg(), s1 + s2, v1 + v2, seed=0)
        assert [(s.problem_id, s.completion) for s in kept] == [
            ("p", "same"),
            ("p", "other"),
            ("q", "same"),
        ]

    def test_dedup_can_be_turned_off(self):
        samples, verdicts = _samples("p", ["same", "same"], [True, True])
        assert len(filter_stage(_cfg(dedup=False), samples, verdicts, seed=0)) == 2

    def test_capped_choice_is_reproducible(self):
        samples, verdicts = _samples("p", [f"s{i}" for i in range(30)], [True] * 30)
        first = filter_stage(_cfg(max_per_problem=5), samples, verdicts, seed=7)
        again = filter_stage(_cfg(max_per_problem=5), samples, verdicts, seed=7)
        assert first == again


BASE = {"name": "r", "model": {"path": "m"}, "data": {"train_path": "a", "eval_path": "b"}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, "unknown key bogus"),
        ({"sample": {"kk": 3}}, "unknown key sample.kk"),
        ({"sample": {"k": "many"}}, "sample.k: expected an integer"),
        ({"sample": {"k": 0}}, "sample.k: must be at least 1"),
        ({"sample": {"temperature": 0}}, "sample.temperature: must be positive"),
        ({"train": {"continue_from_previous": "yes"}}, "expected true or false"),
        (
            {"data": {"task": "chess", "train_path": "a", "eval_path": "b"}},
            "data.task: must be one of",
        ),
        ({"data": {"train_path": "a"}}, "data.train_path and data.eval_path are required"),
        ({"model": {}}, "missing required key model.path"),
        ({"model": "gpt2"}, "model: expected a mapping"),
        ({"name": "../escape"}, "name: must be a plain folder name"),
        ({"sample": {"backend": "tgi"}}, "sample.backend: must be one of"),
    ],
)
def test_config_errors_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_config({**BASE, **change})


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_config_round_trips_and_keeps_paper_defaults():
    cfg = parse_config({**BASE, "sample": {"stop": ["\n\n"]}})
    assert parse_config(config_to_dict(cfg)) == cfg
    assert (cfg.sample.k, cfg.sample.temperature, cfg.sample.top_k) == (32, 0.7, 40)
    assert cfg.filter.max_per_problem == 10 and cfg.train.continue_from_previous is False


def test_cli_reports_config_errors_with_exit_2(tmp_path, capsys):
    from restem.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(
        "name: r\nmodel: {path: m}\ndata: {train_path: a, eval_path: b}\nsample: {k: -1}\n"
    )
    assert main(["train", "--config", str(path)]) == 2
    assert "sample.k: must be at least 1" in capsys.readouterr().err
