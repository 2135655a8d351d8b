"""`mlops exp ...` and `mlops run ...` (except `run exec`, in test_run_exec.py): experiment tracking with
MLflow's semantics, seen from the outside. Params are written once, metrics append, tags overwrite;
search uses MLflow's filter language on each metric's latest point. Results are read back through
the CLI (text and --json) and the database is inspected with Python's sqlite3; git lineage is checked
against a real repository.

The JSON documents' shapes are in test_json_output.py; here they are read for what they say."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import BIN, Result, clean_env, expect_error, make_home, parse_one_document, run_mlops, validate_document
from test_artifact import error_json, execute, object_path, ok, query
from test_data import diff_r, git, repository, write  # noqa: F401 (repository is a fixture)

HEX32 = re.compile(r"[0-9a-f]{32}")


# Running the binary -------------------------------------------------------------------------------


def run(home, *args, env=None, cwd=None) -> Result:
    """`mlops run ARGS...` in the project."""
    return run_mlops("run", *args, cwd=cwd or home.project, env=env)


def exp(home, *args, env=None) -> Result:
    return run_mlops("exp", *args, cwd=home.project, env=env)


def document(home, *args, schema=None, env=None, cwd=None):
    """A successful `mlops --json ARGS...`: one document on stdout (valid against SCHEMA), stderr empty."""
    result = run_mlops("--json", *args, cwd=cwd or home.project, env=env)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}\n{result.stdout}"
    assert result.stderr == "", f"stderr should be empty on success with --json: {result.stderr!r}"
    parsed = parse_one_document(result.stdout)
    return validate_document(parsed, schema) if schema else parsed


def with_input(home, *args, input: str, env=None) -> Result:
    """`mlops ARGS...` with INPUT on standard input."""
    done = subprocess.run([str(BIN), *map(str, args)], cwd=home.project, env=clean_env(env), input=input,
                          capture_output=True, text=True, timeout=30)
    return Result(done.returncode, done.stdout, done.stderr)


def start(home, *args, exp_name="e", cwd=None) -> str:
    """`mlops run start --exp EXP ARGS...`: prints the new run's id, alone."""
    out = ok(run(home, "start", "--exp", exp_name, *args, cwd=cwd))
    assert HEX32.fullmatch(out.rstrip("\n")) and out.endswith("\n") and out.count("\n") == 1, repr(out)
    return out.strip()


def show(home, run_id, env=None) -> dict:
    return document(home, "run", "show", run_id, schema="run-show", env=env)


def log(home, run_id, *args):
    out = ok(run(home, "log", run_id, *args))
    assert out.startswith("logged ") and out.endswith(f" to run {run_id}\n"), out


def latest(home, run_id) -> dict:
    """{key: (value, step)} of the run's latest metrics, as `run show --json` reports them."""
    return {key: (point["value"], point["step"]) for key, point in show(home, run_id)["metrics"].items()}


def history(home, run_id, key) -> list[tuple]:
    points = document(home, "run", "metrics", run_id, key, schema="run-metrics")["points"]
    return [(p["step"], p["timestamp"], p["value"]) for p in points]


def fields(text: str) -> dict[str, str]:
    """`run show` text output as {field: value} (the last value of a repeated field wins)."""
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        found[name] = value.strip()
    return found


def unknown_id(*known: str) -> str:
    """A well-formed run id that shares not even its first 8 digits with any of KNOWN."""
    return next(c * 32 for c in "0123456789abcdef" if not any(k.startswith(c * 8) for k in known))


def count(home, table) -> int:
    return query(home, f"SELECT count(*) FROM {table}")[0][0]


@pytest.fixture
def tracked(home):
    """A home in which `e` has one running run: (home, run id)."""
    return home, start(home)


# Experiments --------------------------------------------------------------------------------------


def test_exp_create_is_idempotent_and_ls_lists_each_once(home):
    assert ok(exp(home, "ls")) == "no experiments yet; `mlops exp create NAME` makes one\n"
    assert ok(exp(home, "create", "vision")) == "created experiment vision\n"
    assert ok(exp(home, "create", "vision")) == "experiment vision already exists, nothing to do\n"
    assert ok(exp(home, "create", "nlp with spaces")) == "created experiment nlp with spaces\n"
    listed = document(home, "exp", "ls", schema="exp-ls")["experiments"]
    assert [(e["name"], e["runs"]) for e in listed] == [("nlp with spaces", 0), ("vision", 0)]
    assert query(home, "SELECT name FROM experiments ORDER BY id") == [("vision",), ("nlp with spaces",)]
    table = ok(exp(home, "ls")).splitlines()
    assert table[0].split() == ["NAME", "RUNS", "CREATED"] and len(table) == 3


@pytest.mark.parametrize("name", ["", "tab\there", "x" * 501])
def test_exp_create_rejects_bad_names(home, name):
    expect_error(exp(home, "create", name), 2, "experiment name")
    assert count(home, "experiments") == 0


def test_exp_show_counts_live_runs_and_unknown_names_exit_3(home):
    expect_error(exp(home, "show", "nosuch"), 3, 'no experiment named "nosuch"')
    runs = [start(home, exp_name="e") for _ in range(3)]
    assert fields(ok(exp(home, "show", "e")))["runs"] == "3"
    ok(run(home, "rm", runs[0]))
    shown = document(home, "exp", "show", "e", schema="exp-show")
    assert (shown["name"], shown["runs"], shown["deleted_at"]) == ("e", 2, None)


def test_exp_rm_hides_the_experiment_and_keeps_its_runs(home):
    kept = start(home, "--name", "kept", exp_name="old")
    start(home, exp_name="new")
    assert ok(exp(home, "rm", "old")) == "removed experiment old\n"
    assert [e["name"] for e in document(home, "exp", "ls")["experiments"]] == ["new"]
    everything = ok(exp(home, "ls", "--all"))
    assert "old (removed)" in everything and "new" in everything
    # Its runs are kept: still shown, still found with --exp.
    assert show(home, kept)["experiment"] == "old"
    assert [r["id"] for r in document(home, "run", "ls", "--exp", "old")["runs"]] == [kept]
    # No new runs in a removed experiment; the name is not reused silently.
    expect_error(run(home, "start", "--exp", "old"), 4, 'experiment "old" was removed')
    assert count(home, "runs") == 2
    assert ok(exp(home, "rm", "old")) == "removed experiment old\n"  # idempotent
    expect_error(exp(home, "rm", "nosuch"), 3, 'no experiment named "nosuch"')


# run start / show ---------------------------------------------------------------------------------


def test_run_start_records_a_running_run_and_creates_its_experiment(home):
    before = int(time.time() * 1000)
    run_id = start(home, "--name", "first try", "--param", "lr=0.01", "--param", "epochs=10", "--tag", "team=cv",
                   exp_name="fresh")
    after = int(time.time() * 1000)
    assert [e["name"] for e in document(home, "exp", "ls")["experiments"]] == ["fresh"]
    shown = show(home, run_id)
    assert (shown["id"], shown["name"], shown["experiment"], shown["status"]) == (run_id, "first try", "fresh", "running")
    assert before <= shown["start_time"] <= after and shown["end_time"] is None
    assert shown["host"] == socket.gethostname() and shown["command"] is None and shown["exit_code"] is None
    assert shown["params"] == {"lr": "0.01", "epochs": "10"} and shown["tags"] == {"team": "cv"}
    text = fields(ok(run(home, "show", run_id)))
    assert (text["id"], text["name"], text["status"], text["duration"]) == (run_id, "first try", "running", "-")
    assert (text["param lr"], text["param epochs"], text["tag team"]) == ("0.01", "10", "cv")
    # Without --name: run- and the first 8 digits of the id.
    other = start(home)
    assert show(home, other)["name"] == f"run-{other[:8]}"
    assert query(home, "SELECT id, status FROM runs ORDER BY start_time") == [(run_id, "running"), (other, "running")]


def test_run_start_shell_prints_an_export_line_for_eval(home):
    out = ok(run(home, "start", "--exp", "e", "--shell"))
    assert re.fullmatch(r"export MLOPS_RUN_ID=[0-9a-f]{32}\n", out), out
    # As a user scripts it: eval, then verbs without RUN use it.
    script = (f'eval "$({BIN} run start --exp e --shell)" && {BIN} run log --metric acc=0.5 >/dev/null && '
              f'{BIN} run end >/dev/null && echo "$MLOPS_RUN_ID"')
    done = subprocess.run(["sh", "-c", script], cwd=home.project, env=clean_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    shown = show(home, run_id)
    assert shown["status"] == "finished" and shown["metrics"]["acc"]["value"] == 0.5


def test_run_argument_defaults_to_MLOPS_RUN_ID(tracked):
    home, run_id = tracked
    env = {"MLOPS_RUN_ID": run_id}
    ok(run(home, "log", "--metric", "acc=0.25", "--tag", "t=1", env=env))
    assert fields(ok(run(home, "show", env=env)))["id"] == run_id
    assert ok(run(home, "rm", env=env)) == f"run {run_id} removed\n"
    assert ok(run(home, "restore", env=env)) == f"run {run_id} restored\n"
    assert ok(run(home, "end", "--status", "failed", env=env)) == f"run {run_id} failed\n"
    assert show(home, run_id)["metrics"]["acc"]["value"] == 0.25
    # An explicit RUN wins over the variable.
    other = start(home)
    assert show(home, other, env=env)["id"] == other
    # Neither: a usage error that says how to set it.
    for verb in (["log", "--metric", "a=1"], ["show"], ["end"], ["rm"], ["restore"]):
        expect_error(run(home, *verb), 2, "no run given", "MLOPS_RUN_ID")
    expect_error(run(home, "show", env={"MLOPS_RUN_ID": "nothex"}), 2, '"nothex" is not a run id')


def test_run_ids_resolve_from_unique_prefixes_of_8_or_more_digits(tracked):
    home, run_id = tracked
    for prefix in (run_id[:8], run_id[:12], run_id):
        assert show(home, prefix)["id"] == run_id
    for bad in (run_id[:7], run_id.upper(), run_id + "0", "g" * 8, "0123-567", " " + run_id):
        expect_error(run(home, "show", bad), 2, "is not a run id")
    unknown = unknown_id(run_id)
    expect_error(run(home, "show", unknown), 3, f"no run {unknown}")
    expect_error(run(home, "show", unknown[:8]), 3, f"no run {unknown[:8]}")
    # Two ids that share their first 8 digits (a collision, made in the database): the 8-digit prefix
    # is ambiguous, a longer one is not.
    twin = run_id[:8] + ("0" if run_id[8] != "0" else "1") * 24
    execute(home, "INSERT INTO runs (id, experiment_id, name, status, start_time) "
                  "SELECT ?, experiment_id, 'twin', 'running', start_time FROM runs WHERE id = ?", twin, run_id)
    expect_error(run(home, "show", run_id[:8]), 2, f"run id prefix {run_id[:8]} is ambiguous", "give more digits")
    assert show(home, run_id[:9])["id"] == run_id
    assert show(home, twin[:9])["name"] == "twin"


# Params, tags, metrics ----------------------------------------------------------------------------


def test_params_are_written_once(home):
    run_id = start(home, "--param", "lr=0.01")
    log(home, run_id, "--param", "lr=0.01")  # the same value again: fine
    log(home, run_id, "--param", "batch=32")
    message = expect_error(run(home, "log", run_id, "--param", "lr=0.1"), 4, 'param "lr"', 'already "0.01"', "written once")
    assert run_id in message
    assert show(home, run_id)["params"] == {"lr": "0.01", "batch": "32"}
    # A batch with a conflict logs nothing of the batch: not the metric, not the tag, not the new param.
    expect_error(run(home, "log", run_id, "--metric", "acc=1", "--tag", "t=x", "--param", "new=1", "--param", "lr=2"), 4)
    shown = show(home, run_id)
    assert (shown["params"], shown["tags"], shown["metrics"]) == ({"lr": "0.01", "batch": "32"}, {}, {})
    assert count(home, "run_metrics") == 0
    # Values are compared exactly: "0.010" is another value.
    expect_error(run(home, "log", run_id, "--param", "lr=0.010"), 4)


def test_tags_overwrite(tracked):
    home, run_id = tracked
    log(home, run_id, "--tag", "stage=draft", "--tag", "owner=ann")
    log(home, run_id, "--tag", "stage=final")
    log(home, run_id, "--tag", "owner=")  # an empty value is a value
    assert show(home, run_id)["tags"] == {"stage": "final", "owner": ""}
    assert query(home, "SELECT key, value FROM run_tags ORDER BY key") == [("owner", ""), ("stage", "final")]


def test_metrics_append_and_history_is_in_step_order(tracked):
    home, run_id = tracked
    for step, time_ms, value in [(2, 3000, "0.5"), (0, 1000, "0.9"), (1, 2000, "0.7"), (1, 2500, "0.6"), (2, 3000, "0.5")]:
        log(home, run_id, "--metric", f"loss={value}", "--step", str(step), "--time", str(time_ms))
    # Every point is kept, duplicates included, ordered by step then timestamp.
    assert history(home, run_id, "loss") == [(0, 1000, 0.9), (1, 2000, 0.7), (1, 2500, 0.6), (2, 3000, 0.5), (2, 3000, 0.5)]
    csv = ok(run(home, "metrics", run_id, "loss"))
    assert csv == "step,timestamp,value\n0,1000,0.9\n1,2000,0.7\n1,2500,0.6\n2,3000,0.5\n2,3000,0.5\n"
    assert ok(run(home, "metrics", run_id, "loss", "--format", "csv")) == csv
    as_json = json.loads(ok(run(home, "metrics", run_id, "loss", "--format", "json")))
    assert [p["value"] for p in as_json["points"]] == [0.9, 0.7, 0.6, 0.5, 0.5] and as_json["key"] == "loss"
    assert count(home, "run_metrics") == 5
    # Without --time: now.
    before = int(time.time() * 1000)
    log(home, run_id, "--metric", "fresh=1")
    (step, timestamp, value), = history(home, run_id, "fresh")
    assert step == 0 and before <= timestamp <= int(time.time() * 1000) and value == 1
    expect_error(run(home, "metrics", run_id, "nosuch"), 3, 'has no metric "nosuch"')
    expect_error(run(home, "metrics", run_id, "loss", "--format", "xml"), 2, "--format xml")
    expect_error(run(home, "metrics", "0" * 32, "loss"), 3, "no run")


def test_latest_metric_is_the_highest_step_even_when_logged_out_of_order(tracked):
    home, run_id = tracked
    log(home, run_id, "--metric", "loss=1.0", "--step", "5", "--time", "1000")
    log(home, run_id, "--metric", "loss=9.0", "--step", "3", "--time", "9000")  # later, but an earlier step
    assert latest(home, run_id) == {"loss": (1.0, 5)}
    assert fields(ok(run(home, "show", run_id)))["metric loss"] == "1 (step 5)"
    # The same step: the later timestamp wins, whatever the order of logging.
    log(home, run_id, "--metric", "acc=0.2", "--step", "7", "--time", "5000")
    log(home, run_id, "--metric", "acc=0.1", "--step", "7", "--time", "4000")
    assert latest(home, run_id)["acc"] == (0.2, 7)
    # One batch with several points of a key: the highest step of the batch, against what is stored.
    (home.project / "points.jsonl").write_text(
        '{"key": "loss", "value": 4.0, "step": 6, "timestamp": 1}\n'
        '{"key": "loss", "value": 3.0, "step": 8, "timestamp": 1}\n'
        '{"key": "loss", "value": 2.0, "step": 4, "timestamp": 99999}\n')
    ok(run(home, "log", run_id, "--file", "points.jsonl"))
    assert latest(home, run_id)["loss"] == (3.0, 8)
    # Search compares the latest value, not any value of the history.
    found = lambda f: [r["id"] for r in document(home, "run", "ls", "--filter", f)["runs"]]  # noqa: E731
    assert found("metrics.loss = 3") == [run_id]
    assert found("metrics.loss = 9") == [] and found("metrics.loss > 3.5") == []


def test_nan_and_infinite_metric_values_round_trip(tracked):
    home, run_id = tracked
    log(home, run_id, "--metric", "a=nan", "--metric", "b=inf", "--metric", "c=-inf", "--metric", "d=NaN",
        "--metric", "e=-Infinity", "--metric", "f=1e300", "--time", "7")
    lines = ['{"key": "g", "value": null, "timestamp": 7}', '{"key": "h", "value": "NaN", "timestamp": 7}',
             '{"key": "i", "value": "Infinity", "timestamp": 7}', '{"key": "j", "value": "-Infinity", "timestamp": 7}',
             '{"metrics": {"k": "Infinity", "l": null, "m": -0.0}, "timestamp": 7}']
    (home.project / "odd.jsonl").write_text("\n".join(lines) + "\n")
    ok(run(home, "log", run_id, "--file", "odd.jsonl"))
    expected = {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": "NaN", "e": "-Infinity", "f": 1e300, "g": "NaN",
                "h": "NaN", "i": "Infinity", "j": "-Infinity", "k": "Infinity", "l": "NaN", "m": 0}
    assert {key: value for key, (value, step) in latest(home, run_id).items()} == expected
    for key, value in expected.items():
        assert history(home, run_id, key) == [(0, 7, value)]
    text = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}
    for key in ("a", "b", "c", "g", "i", "j"):
        assert ok(run(home, "metrics", run_id, key)) == f"step,timestamp,value\n0,7,{text[expected[key]]}\n"
    assert query(home, "SELECT value FROM run_metrics WHERE key IN ('a', 'g', 'l') ") == [(None,)] * 3  # NaN: NULL
    assert query(home, "SELECT value FROM run_metrics WHERE key = 'b'") == [(float("inf"),)]
    # Search sees infinities as numbers.
    found = [r["id"] for r in document(home, "run", "ls", "--filter", "metrics.b > 1e308 and metrics.c < -1e308")["runs"]]
    assert found == [run_id]


@pytest.mark.parametrize("value", ["abc", "", "1.5.2", "0x", "1e5000x", "nan nan"])
def test_metric_values_that_are_not_numbers_exit_2(tracked, value):
    home, run_id = tracked
    expect_error(run(home, "log", run_id, "--metric", f"m={value}"), 2, "metric m", "not a number")
    assert count(home, "run_metrics") == 0


@pytest.mark.parametrize("option", ["--metric", "--param", "--tag"])
def test_options_must_be_key_equals_value(tracked, option):
    home, run_id = tracked
    for text in ("novalue", "=1"):
        expect_error(run(home, "log", run_id, option, text), 2, f'{option} "{text}" is not KEY=VALUE')
    # Only the first '=' splits: the value may hold more.
    if option != "--metric":
        log(home, run_id, option, "k=a=b")
        shown = show(home, run_id)
        assert (shown["params"] if option == "--param" else shown["tags"]) == {"k": "a=b"}


def test_log_needs_something_to_log(tracked):
    home, run_id = tracked
    expect_error(run(home, "log", run_id), 2, "nothing to log")
    (home.project / "f.jsonl").write_text('{"key": "a", "value": 1}\n')
    expect_error(run(home, "log", run_id, "--file", "f.jsonl", "--metric", "b=2"), 2, "either --file or --metric")
    expect_error(run(home, "log", run_id, "--file", "missing.jsonl"), 3, "cannot read missing.jsonl")
    assert count(home, "run_metrics") == 0


KEY_OK = ["a", "k" * 250, "val/loss", "a.b-c_d e", "train/acc_1", "a..b", "a/b/c", " leading space"]
KEY_BAD = ["k" * 251, "/abs", "..", "../up", "a/../b", "a/..", "semi;colon", "quote'", 'dquote"', "star*", "tab\t",
           "new\nline", "é", "a\\b", "pct%"]


@pytest.mark.parametrize("kind", ["metric", "param", "tag"])
def test_key_rules_at_the_boundary(tracked, kind):
    home, run_id = tracked
    value = "1"
    for key in KEY_OK:
        log(home, run_id, f"--{kind}", f"{key}={value}")
    shown = show(home, run_id)
    stored = {"metric": shown["metrics"], "param": shown["params"], "tag": shown["tags"]}[kind]
    assert sorted(stored) == sorted(KEY_OK)
    for key in KEY_BAD:
        result = run(home, "log", run_id, f"--{kind}", f"{key}={value}")
        if len(key) > 250:
            expect_error(result, 2, f"{kind} key", "251 characters long, the limit is 250")
        else:
            expect_error(result, 2, f"{kind} key", "is not valid")
    assert sorted({"metric": show(home, run_id)["metrics"], "param": show(home, run_id)["params"],
                   "tag": show(home, run_id)["tags"]}[kind]) == sorted(KEY_OK)
    # Also at run start, where a bad key makes no run at all.
    runs = count(home, "runs")
    expect_error(run(home, "start", "--exp", "e", f"--{kind}" if kind != "metric" else "--tag", f"{'k' * 251}=1"), 2)
    assert count(home, "runs") == runs


def test_key_rules_apply_to_lines_of_a_file(tracked):
    home, run_id = tracked
    (home.project / "f.jsonl").write_text('{"key": "ok", "value": 1}\n{"metrics": {"../escape": 2}}\n')
    expect_error(run(home, "log", run_id, "--file", "f.jsonl"), 2, 'metric key "../escape" is not valid')
    (home.project / "f.jsonl").write_text('{"key": "ok", "value": 1}\n{"params": {"' + "p" * 251 + '": "x"}}\n')
    expect_error(run(home, "log", run_id, "--file", "f.jsonl"), 2, "param key", "the limit is 250")
    assert count(home, "run_metrics") == 0 and show(home, run_id)["metrics"] == {}


@pytest.mark.parametrize("kind, limit", [("param", 6000), ("tag", 8000)])
def test_value_limits_at_the_boundary(tracked, kind, limit):
    home, run_id = tracked
    log(home, run_id, f"--{kind}", f"long={'v' * limit}")
    expect_error(run(home, "log", run_id, f"--{kind}", f"longer={'v' * (limit + 1)}"), 2,
                 f'the value of {kind} "longer" is {limit + 1} characters long, the limit is {limit}')
    shown = show(home, run_id)
    assert (shown["params"] if kind == "param" else shown["tags"]) == {"long": "v" * limit}
    runs = count(home, "runs")
    expect_error(run(home, "start", "--exp", "e", f"--{kind}", f"x={'v' * (limit + 1)}"), 2, "the limit is")
    assert count(home, "runs") == runs
    # Metric keys have no value limit, but values of params and tags from a file obey the same one.
    (home.project / "f.jsonl").write_text(json.dumps({f"{kind}s": {"from_file": "v" * (limit + 1)}}) + "\n")
    expect_error(run(home, "log", run_id, "--file", "f.jsonl"), 2, f"{limit + 1} characters long")


@pytest.mark.parametrize("kind, limit", [("param", 6000), ("tag", 8000)])
def test_value_limits_count_characters_not_bytes(tracked, kind, limit):
    home, run_id = tracked
    value = "é" * limit  # `limit` characters (MLflow counts characters), twice as many UTF-8 bytes
    ok(run(home, "log", run_id, f"--{kind}", f"accented={value}"))
    shown = show(home, run_id)
    assert (shown["params"] if kind == "param" else shown["tags"]) == {"accented": value}


# run log --file -----------------------------------------------------------------------------------


def test_log_file_takes_both_line_shapes(tracked):
    home, run_id = tracked
    (home.project / "train.jsonl").write_text(
        '{"key": "loss", "value": 0.9, "step": 0, "timestamp": 100}\n'
        "\n"
        '   \t\n'
        '{"key": "loss", "value": 0.4, "step": 1, "timestamp": 200}\n'
        '{"metrics": {"acc": 0.5, "f1": 0.25}, "params": {"lr": "0.01", "opt": "adam"}, "tags": {"team": "cv"},'
        ' "step": 1, "timestamp": 300}\n'
        '{"tags": {"team": "nlp"}}\n'
        '{"key": "acc", "value": 1, "metrics": {"acc": 0.75}, "step": 2, "timestamp": 400}\n')
    out = ok(run(home, "log", run_id, "--file", "train.jsonl"))
    assert out == f"logged 6 metric(s), 2 param(s), 2 tag(s) to run {run_id}\n"
    assert history(home, run_id, "loss") == [(0, 100, 0.9), (1, 200, 0.4)]
    assert history(home, run_id, "acc") == [(1, 300, 0.5), (2, 400, 1), (2, 400, 0.75)]
    assert history(home, run_id, "f1") == [(1, 300, 0.25)]
    shown = show(home, run_id)
    assert shown["params"] == {"lr": "0.01", "opt": "adam"} and shown["tags"] == {"team": "nlp"}
    # Lines without step or timestamp: step 0, timestamp now.
    before = int(time.time() * 1000)
    (home.project / "bare.jsonl").write_text('{"key": "bare", "value": 3}\n')
    ok(run(home, "log", run_id, "--file", "bare.jsonl"))
    (step, timestamp, value), = history(home, run_id, "bare")
    assert (step, value) == (0, 3) and before <= timestamp <= int(time.time() * 1000)


def test_log_file_from_standard_input(tracked):
    home, run_id = tracked
    lines = "".join(json.dumps({"key": "loss", "value": 1 / (n + 1), "step": n, "timestamp": n}) + "\n" for n in range(50))
    result = with_input(home, "run", "log", run_id, "--file", "-", input=lines)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"logged 50 metric(s), 0 param(s), 0 tag(s) to run {run_id}\n"
    assert history(home, run_id, "loss") == [(n, n, 1 / (n + 1)) for n in range(50)]
    assert latest(home, run_id) == {"loss": (1 / 50, 49)}
    # MLOPS_RUN_ID and standard input together, as a training script pipes into it.
    env = {"MLOPS_RUN_ID": run_id}
    result = with_input(home, "--json", "run", "log", "--file", "-", input='{"params": {"seed": "7"}}\n', env=env)
    assert json.loads(result.stdout) == {"run": run_id, "metrics": 0, "params": 1, "tags": 0}
    bad = with_input(home, "run", "log", run_id, "--file", "-", input='{"key": "x", "value": 1}\nnot json\n')
    expect_error(bad, 2, "standard input line 2", "not json", "nothing was logged")


BAD_LINES = [
    ("not json at all", "not JSON"),
    ('{"key": "m", "value": 1', "not JSON"),
    ("[1, 2]", "each line must be a JSON object"),
    ('"just a string"', "each line must be a JSON object"),
    ('{"key": "m", "value": "high"}', 'metric "m" has value "high", which is not a number'),
    ('{"key": "m", "value": true}', "which is not a number"),
    ('{"key": "m"}', 'needs "key" (a string) and "value"'),
    ('{"key": 5, "value": 1}', 'needs "key" (a string) and "value"'),
    ('{"value": 1}', '"value" without "key"'),
    ('{"key": "m", "value": 1, "step": 1.5}', '"step" must be an integer'),
    ('{"key": "m", "value": 1, "step": "3"}', '"step" must be an integer'),
    ('{"key": "m", "value": 1, "timestamp": "now"}', '"timestamp" must be an integer'),
    ('{"key": "m", "value": 1, "unit": "s"}', 'unknown field "unit"'),
    ('{"metrics": [1, 2]}', '"metrics" must be an object'),
    ('{"metrics": {"m": "x"}}', "which is not a number"),
    ('{"params": {"lr": 0.01}}', "params.lr must be a string"),
    ('{"tags": ["a"]}', '"tags" must be an object of strings'),
]


@pytest.mark.parametrize("line, problem", BAD_LINES, ids=[problem for _, problem in BAD_LINES])
def test_log_file_with_a_bad_line_logs_nothing(tracked, line, problem):
    home, run_id = tracked
    good = '{"key": "loss", "value": 0.5, "step": 1}\n{"params": {"lr": "0.01"}, "tags": {"t": "x"}}\n\n'
    (home.project / "bad.jsonl").write_text(good + line + "\n" + '{"key": "acc", "value": 1}\n')
    expect_error(run(home, "log", run_id, "--file", "bad.jsonl"), 2, "bad.jsonl line 4", problem, "nothing was logged")
    shown = show(home, run_id)
    assert (shown["metrics"], shown["params"], shown["tags"]) == ({}, {}, {})
    assert (count(home, "run_metrics"), count(home, "run_params"), count(home, "run_tags")) == (0, 0, 0)


def test_log_file_with_a_param_conflict_logs_nothing(tracked):
    home, run_id = tracked
    log(home, run_id, "--param", "lr=0.01")
    lines = "".join(json.dumps({"key": "m", "value": n, "step": n}) + "\n" for n in range(1000))
    (home.project / "f.jsonl").write_text(lines + '{"params": {"lr": "0.02"}, "tags": {"t": "x"}}\n')
    expect_error(run(home, "log", run_id, "--file", "f.jsonl"), 4, 'param "lr"')
    assert count(home, "run_metrics") == 0 and show(home, run_id)["tags"] == {}


def test_log_file_is_all_or_nothing_across_chunks_of_a_large_file(tracked):
    """A large file is parsed while earlier parts are written; one transaction all the same."""
    home, run_id = tracked
    points = 120_000
    # The highest step comes first: the latest point must survive the later parts of the file.
    lines = ['{"key": "loss", "value": -1, "step": 1000000, "timestamp": 1}\n']
    lines += [f'{{"key": "loss", "value": {n}, "step": {n}, "timestamp": 1}}\n' for n in range(points - 1)]
    big = home.project / "big.jsonl"
    big.write_text("".join(lines) + "{oops}\n")
    expect_error(run(home, "log", run_id, "--file", big), 2, f"line {points + 1}", "nothing was logged")
    assert count(home, "run_metrics") == 0 and show(home, run_id)["metrics"] == {}
    log(home, run_id, "--param", "lr=0.01")
    big.write_text("".join(lines) + '{"params": {"lr": "0.02"}}\n')
    expect_error(run(home, "log", run_id, "--file", big), 4, 'param "lr"')
    assert count(home, "run_metrics") == 0 and show(home, run_id)["metrics"] == {}
    big.write_text("".join(lines) + '{"params": {"lr": "0.01", "seed": "1"}}\n')
    assert ok(run(home, "log", run_id, "--file", big)) == \
        f"logged {points} metric(s), 2 param(s), 0 tag(s) to run {run_id}\n"
    assert count(home, "run_metrics") == points
    assert latest(home, run_id) == {"loss": (-1, 1000000)}
    assert show(home, run_id)["params"] == {"lr": "0.01", "seed": "1"}


def test_log_from_a_slow_pipe_leaves_the_home_writable(tracked):
    """`python train.py | mlops run log --file -`: other commands keep working while training runs."""
    home, run_id = tracked
    logger = subprocess.Popen([str(BIN), "run", "log", run_id, "--file", "-"], cwd=home.project, env=clean_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        logger.stdin.write('{"key": "loss", "value": 1, "step": 0}\n')
        logger.stdin.flush()
        time.sleep(0.3)  # the logger has read the line and waits for more
        other = run(home, "start", "--exp", "e", env={"MLOPS_BUSY_TIMEOUT_MS": "1500"})
        same = run(home, "log", run_id, "--metric", "acc=0.5", env={"MLOPS_BUSY_TIMEOUT_MS": "1500"})
    finally:
        out, err = logger.communicate('{"key": "loss", "value": 0.5, "step": 1}\n', timeout=30)
    assert logger.returncode == 0, err
    assert other.returncode == 0, other.stderr
    assert same.returncode == 0, same.stderr
    assert latest(home, run_id) == {"loss": (0.5, 1), "acc": (0.5, 0)}


def start_piped_log(home, run_id) -> subprocess.Popen:
    """`producer | mlops run log RUN --file -`, the producer being this test: three lines written."""
    logger = subprocess.Popen([str(BIN), "run", "log", run_id, "--file", "-"], cwd=home.project, env=clean_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logger.stdin.write('{"key": "loss", "value": 1}\n' * 3)
    logger.stdin.flush()
    time.sleep(0.3)  # read and waiting for more
    return logger


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM])
def test_log_from_a_pipe_interrupted_exits_8_and_logs_nothing(tracked, signo):
    home, run_id = tracked
    logger = start_piped_log(home, run_id)
    os.kill(logger.pid, signo)
    out, err = logger.communicate('{"key": "loss", "value": 2}\n' * 3, timeout=30)
    expect_error(Result(logger.returncode, out, err), 8, f"interrupted by {signo.name}")
    assert count(home, "run_metrics") == 0 and show(home, run_id)["metrics"] == {}


def test_log_from_a_silent_pipe_stops_promptly_on_sigterm(tracked):
    home, run_id = tracked
    logger = start_piped_log(home, run_id)
    try:
        os.kill(logger.pid, signal.SIGTERM)
        try:
            code = logger.wait(timeout=3)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        out, err = logger.communicate("", timeout=30)  # the producer ends: EOF
    assert code == 8, f"still running 3 s after SIGTERM; then: exit {logger.returncode}, {err!r}"
    assert count(home, "run_metrics") == 0


def test_names_that_start_with_a_dash_can_be_read_back(tracked, tmp_path):
    home, run_id = tracked
    log(home, run_id, "--metric=-loss=0.5")  # a valid key: letters, digits, _ - . space /
    write(home.project / "-weights.bin", b"w\n")
    ok(run(home, "artifact", "add", run_id, "./-weights.bin"))
    assert [a["name"] for a in show(home, run_id)["artifacts"]] == ["-weights.bin"]
    assert ok(run(home, "metrics", run_id, "--", "-loss")).splitlines()[1].endswith(",0.5")
    ok(run(home, "artifact", "get", run_id, "--force", "--", "-weights.bin", tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == b"w\n"


# run end, rm, restore -----------------------------------------------------------------------------


def test_run_end_sets_a_final_status_once(home):
    runs = {status: start(home) for status in ("finished", "failed", "killed")}
    for status, run_id in runs.items():
        args = ["end", run_id] + ([] if status == "finished" else ["--status", status])  # finished by default
        before = int(time.time() * 1000)
        assert ok(run(home, *args)) == f"run {run_id} {status}\n"
        shown = show(home, run_id)
        assert shown["status"] == status and before <= shown["end_time"] <= int(time.time() * 1000)
        assert shown["exit_code"] is None
        # The same status again: nothing to do, nothing changed.
        assert ok(run(home, *args)) == f"run {run_id} had already ended as {status}, nothing to do\n"
        assert show(home, run_id)["end_time"] == shown["end_time"]
        # Another status: a conflict, the first one stays.
        other = "failed" if status != "failed" else "killed"
        expect_error(run(home, "end", run_id, "--status", other), 4, f"run {run_id} already ended as {status}")
        assert show(home, run_id)["status"] == status
    assert query(home, "SELECT status, count(*) FROM runs GROUP BY status ORDER BY status") == [
        ("failed", 1), ("finished", 1), ("killed", 1)]
    fields_of = fields(ok(run(home, "show", runs["failed"])))
    assert fields_of["status"] == "failed" and re.fullmatch(r"\d+\.\ds", fields_of["duration"])


@pytest.mark.parametrize("status", ["running", "FINISHED", "done", ""])
def test_run_end_rejects_statuses_that_are_not_final(tracked, status):
    home, run_id = tracked
    expect_error(run(home, "end", run_id, "--status", status), 2, "is not a final status")
    assert show(home, run_id)["status"] == "running"


def test_run_rm_hides_a_run_and_restore_brings_it_back(home):
    kept, removed = start(home, "--name", "kept"), start(home, "--name", "gone")
    log(home, removed, "--metric", "acc=0.5", "--param", "lr=1")
    assert ok(run(home, "rm", removed)) == f"run {removed} removed\n"
    assert ok(run(home, "rm", removed[:8])) == f"run {removed} was already removed, nothing to do\n"
    listed = ok(run(home, "ls"))
    assert kept[:12] in listed and removed[:12] not in listed
    everything = ok(run(home, "ls", "--all"))
    assert re.search(rf"^{removed[:12]} +gone +e +running \(removed\)", everything, re.M), everything
    assert [r["id"] for r in document(home, "run", "ls", "--filter", "params.lr = '1'")["runs"]] == []
    assert [r["id"] for r in document(home, "run", "ls", "--all", "--filter", "params.lr = '1'")["runs"]] == [removed]
    # Still shown, with what it logged; nothing more can be logged to it, nor can it be ended.
    shown = show(home, removed)
    assert shown["deleted_at"] is not None and shown["params"] == {"lr": "1"}
    assert "removed" in fields(ok(run(home, "show", removed)))
    expect_error(run(home, "log", removed, "--metric", "acc=0.7"), 4, "was removed", f"mlops run restore {removed}")
    expect_error(run(home, "end", removed), 4, "was removed")
    (home.project / "a.txt").write_text("a\n")
    expect_error(run(home, "artifact", "add", removed, "a.txt"), 4, "was removed")
    assert [(step, value) for step, _, value in history(home, removed, "acc")] == [(0, 0.5)]
    assert document(home, "exp", "show", "e")["runs"] == 1
    # restore: back in the listing, logging works again; restoring twice is fine.
    assert ok(run(home, "restore", removed)) == f"run {removed} restored\n"
    assert ok(run(home, "restore", removed)) == f"run {removed} was already restored, nothing to do\n"
    assert removed[:12] in ok(run(home, "ls")) and show(home, removed)["deleted_at"] is None
    log(home, removed, "--metric", "acc=0.7", "--step", "1")
    assert latest(home, removed) == {"acc": (0.7, 1)}
    expect_error(run(home, "rm", unknown_id(kept, removed)), 3, "no run")
    expect_error(run(home, "restore", unknown_id(kept, removed)[:8]), 3, "no run")


# Nested runs --------------------------------------------------------------------------------------


def test_nested_runs_list_their_children(home):
    parent = start(home, "--name", "sweep")
    children = [start(home, "--parent", parent[:8], "--name", f"trial {n}") for n in range(3)]
    grandchild = start(home, "--parent", children[0])
    shown = show(home, parent)
    assert shown["children"] == children and shown["parent_id"] is None
    assert show(home, children[0])["parent_id"] == parent and show(home, children[0])["children"] == [grandchild]
    text = ok(run(home, "show", parent))
    assert [line.split()[1] for line in text.splitlines() if line.startswith("child:")] == children
    assert "parent:" in ok(run(home, "show", children[1])) and parent in ok(run(home, "show", children[1]))
    assert [r["id"] for r in document(home, "run", "ls", "--filter", f"attributes.parent_id = '{parent}'")["runs"]] == \
        children[::-1]
    # A removed child leaves the list; a removed parent takes no new children.
    ok(run(home, "rm", children[1]))
    assert show(home, parent)["children"] == [children[0], children[2]]
    ok(run(home, "rm", parent))
    expect_error(run(home, "start", "--exp", "e", "--parent", parent), 4, "was removed")
    unknown = unknown_id(parent, *children, grandchild)
    expect_error(run(home, "start", "--exp", "e", "--parent", unknown), 3, "no run")
    expect_error(run(home, "start", "--exp", "e", "--parent", "sweep"), 2, "is not a run id")
    assert count(home, "runs") == 5


# run compare --------------------------------------------------------------------------------------


def test_compare_marks_the_rows_that_differ(home):
    one = start(home, "--param", "lr=0.1", "--param", "opt=adam", "--tag", "team=cv")
    two = start(home, "--param", "lr=0.1", "--param", "opt=sgd", "--tag", "team=cv")
    three = start(home, "--param", "lr=0.1", "--param", "opt=adam")
    for run_id, acc in ((one, "0.5"), (two, "0.5"), (three, "0.5")):
        log(home, run_id, "--metric", f"acc={acc}")
    log(home, two, "--metric", "loss=1.5")
    out = ok(run(home, "compare", one, two[:8], three))
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", one[:12], two[:12], three[:12]]
    rows = {line[2:].split()[0]: (line[:1], line[2:].split()[1:]) for line in lines[1:-1]}
    assert rows == {
        "params.lr": (" ", ["0.1", "0.1", "0.1"]),
        "params.opt": ("*", ["adam", "sgd", "adam"]),
        "metrics.acc": (" ", ["0.5", "0.5", "0.5"]),
        "metrics.loss": ("*", ["-", "1.5", "-"]),
        "tags.team": ("*", ["cv", "cv", "-"]),
    }, out
    assert lines[-1] == "(* marks values that differ)"
    compared = document(home, "run", "compare", one, two, schema="run-compare")
    assert {(r["kind"], r["key"]): r["differs"] for r in compared["rows"]} == {
        ("params", "lr"): False, ("params", "opt"): True, ("metrics", "acc"): False, ("metrics", "loss"): True,
        ("tags", "team"): False}
    expect_error(run(home, "compare", one), 2, "two or more runs")
    expect_error(run(home, "compare"), 2)
    unknown = unknown_id(one, two, three)
    expect_error(run(home, "compare", one, unknown), 3, "no run")


# Search -------------------------------------------------------------------------------------------

INJECTION = "'; DROP TABLE runs; --"


@pytest.fixture(scope="module")
def searchable(tmp_path_factory):
    """Four runs in `search` (oldest first: alpha, beta, gamma, delta) and one in `other`; the ids by name."""
    home = make_home(tmp_path_factory.mktemp("search") / "project")
    specs = {
        "alpha": (["--param", "lr=0.01", "--param", "opt=Adam", "--param", "note=it's; DROP TABLE runs; --",
                   "--tag", "team=cv"], ["--metric", "loss=0.8", "--metric", "acc=0.9"], ["--metric", "loss=0.1", "--step", "1"],
                  "finished"),
        "beta": (["--param", "lr=0.1", "--param", "opt=adam", "--param", "pct=50%_off", "--tag", "team=nlp"],
                 ["--metric", "loss=0.5", "--metric", "acc=0.7"], None, "failed"),
        "gamma": (["--param", "lr=0.001", "--param", "opt=SGD", "--param", "pct=50x"],
                  ["--metric", "loss=0.9", "--step", "5"], ["--metric", "loss=0.05", "--step", "3"], None),
        INJECTION: (["--param", "my param=x y", "--param", "opt=O'Brien \"quoted\"", "--tag", "path/to key=%_*?["],
                    ["--metric", "my key=3"], None, "killed"),
    }
    ids = {}
    for name, (start_args, first, second, status) in specs.items():
        ids[name] = start(home, "--name", name, *start_args, exp_name="search")
        for batch in (first, second):
            if batch:
                log(home, ids[name], *batch)
        if status:
            ok(run(home, "end", ids[name], "--status", status))
        time.sleep(0.002)  # distinct start times: the default order, newest first, is then known
    ids["epsilon"] = start(home, "--name", "epsilon", "--param", "lr=0.01", exp_name="other")
    log(home, ids["epsilon"], "--metric", "loss=0.3")
    starts = [show(home, ids[name])["start_time"] for name in ("alpha", "beta", "gamma", INJECTION, "epsilon")]
    assert starts == sorted(set(starts)), starts
    return home, ids


def names(home, *args, exp=("search",)) -> list[str]:
    """The names of the runs `run ls ARGS...` finds, in its order (--exp search unless told)."""
    extra = [a for e in exp for a in ("--exp", e)]
    return [r["name"] for r in document(home, "run", "ls", *extra, *args, schema="run-ls")["runs"]]


def found(home, filter_text, exp=("search",)) -> list[str]:
    return names(home, "--filter", filter_text, exp=exp)


D = INJECTION  # the run named with an injection attempt (newest in `search`)
NEWEST_FIRST = [D, "gamma", "beta", "alpha"]


def test_search_without_filter_lists_newest_first(searchable):
    home, ids = searchable
    assert names(home) == NEWEST_FIRST
    assert names(home, exp=()) == ["epsilon"] + NEWEST_FIRST
    assert names(home, exp=("other", "search")) == ["epsilon"] + NEWEST_FIRST
    table = ok(run_mlops("run", "ls", "--exp", "search", cwd=home.project)).splitlines()
    assert table[0].split() == ["ID", "NAME", "EXPERIMENT", "STATUS", "STARTED", "DURATION"]
    assert [line.split()[0] for line in table[1:]] == [ids[n][:12] for n in NEWEST_FIRST]
    expect_error(run_mlops("run", "ls", "--exp", "nosuch", cwd=home.project), 3, 'no experiment named "nosuch"')
    assert ok(run_mlops("run", "ls", "--filter", "metrics.loss > 100", cwd=home.project)) == "no runs match\n"


@pytest.mark.parametrize("filter_text, expected", [
    # Latest values: alpha 0.1 (step 1 after 0.8), beta 0.5, gamma 0.9 (step 5; 0.05 is step 3), delta none.
    ("metrics.loss = 0.5", ["beta"]),
    ("metrics.loss == 0.5", ["beta"]),
    ("metrics.loss != 0.5", ["gamma", "alpha"]),
    ("metrics.loss <> 0.5", ["gamma", "alpha"]),
    ("metrics.loss < 0.5", ["alpha"]),
    ("metrics.loss <= 0.5", ["beta", "alpha"]),
    ("metrics.loss > 0.5", ["gamma"]),
    ("metrics.loss >= 0.5", ["gamma", "beta"]),
    ("metrics.loss >= -1", ["gamma", "beta", "alpha"]),
    ("metrics.loss < 5e-1", ["alpha"]),
    ("metric.acc > 0.8", ["alpha"]),
    ("metrics.`my key` = 3", [D]),
    ('metrics."my key" >= 3', [D]),
    ("metrics.nosuch < 1", []),
])
def test_search_compares_the_latest_metric_values(searchable, filter_text, expected):
    home, _ = searchable
    assert found(home, filter_text) == expected


@pytest.mark.parametrize("filter_text, expected", [
    ("params.lr = '0.01'", ["alpha"]),
    ('params.lr = "0.01"', ["alpha"]),
    ("params.lr != '0.01'", ["gamma", "beta"]),  # runs without lr do not match
    ("params.opt = 'adam'", ["beta"]),
    ("params.opt LIKE 'A%'", ["alpha"]),  # LIKE is case-sensitive
    ("params.opt like 'a%'", ["beta"]),
    ("params.opt LIKE '%dam'", ["beta", "alpha"]),
    ("params.opt ILIKE 'A%'", ["beta", "alpha"]),  # ILIKE is not
    ("params.opt ILIKE 'ADAM'", ["beta", "alpha"]),
    ("params.opt LIKE 'ADAM'", []),
    ("params.opt IN ('Adam', 'SGD')", ["gamma", "alpha"]),
    ("params.opt IN ('adam')", ["beta"]),
    ("params.opt NOT IN ('Adam', 'SGD')", [D, "beta"]),
    ("params.opt not in ('Adam','adam','SGD')", [D]),
    ("params.pct IS NULL", [D, "alpha"]),
    ("params.pct IS NOT NULL", ["gamma", "beta"]),
    ("param.`my param` = 'x y'", [D]),
    ("tags.team = 'cv'", ["alpha"]),
    ("tags.team != 'cv'", ["beta"]),
    ("tags.team LIKE '%l%'", ["beta"]),
    ("tags.team ILIKE 'CV'", ["alpha"]),
    ("tags.team IN ('cv', 'nlp', 'rl')", ["beta", "alpha"]),
    ("tags.team NOT IN ('cv')", ["beta"]),
    ("tags.team IS NULL", [D, "gamma"]),
    ("tag.team IS NOT NULL", ["beta", "alpha"]),
    ("tags.`path/to key` IS NOT NULL", [D]),
])
def test_search_on_params_and_tags(searchable, filter_text, expected):
    home, _ = searchable
    assert found(home, filter_text) == expected


def test_search_on_attributes(searchable):
    home, ids = searchable
    assert found(home, "attributes.status = 'finished'") == ["alpha"]
    assert found(home, "attributes.status != 'running'") == [D, "beta", "alpha"]
    assert found(home, "attribute.status IN ('failed', 'killed')") == [D, "beta"]
    assert found(home, "attributes.status = 'running'", exp=()) == ["epsilon", "gamma"]
    assert found(home, "attributes.run_name = 'beta'") == ["beta"]
    assert found(home, "run.run_name LIKE '%a'") == ["gamma", "beta", "alpha"]
    assert found(home, "attr.run_name ILIKE 'ALPHA'") == ["alpha"]
    assert found(home, f"attributes.run_id = '{ids['gamma']}'") == ["gamma"]
    beta_start = show(home, ids["beta"])["start_time"]
    assert found(home, f"attributes.start_time > {beta_start}") == [D, "gamma"]
    assert found(home, f"attributes.start_time >= {beta_start}") == [D, "gamma", "beta"]
    assert found(home, f"attributes.start_time < {beta_start}") == ["alpha"]
    assert found(home, f"attributes.start_time = {beta_start}") == ["beta"]
    assert found(home, "attributes.end_time > 0") == [D, "beta", "alpha"]


def test_search_chains_comparisons_with_and(searchable):
    home, _ = searchable
    assert found(home, "metrics.loss < 1 and params.opt ILIKE 'adam'") == ["beta", "alpha"]
    assert found(home, "metrics.loss < 1 AND params.opt ILIKE 'adam' and tags.team = 'nlp'") == ["beta"]
    assert found(home, "metrics.loss < 1 and metrics.loss > 0.2 And attributes.status = 'failed'") == ["beta"]
    assert found(home, "params.lr = '0.01' and tags.team = 'nlp'") == []
    assert found(home, "params.lr = '0.01'", exp=()) == ["epsilon", "alpha"]
    assert found(home, "params.lr = '0.01'", exp=("other",)) == ["epsilon"]


def caret(stderr: str, text: str) -> int:
    """The 0-based column that the caret under TEXT points at, from `mlops: error: ...` on stderr."""
    lines = stderr.splitlines()
    assert f"  {text}" in lines, stderr
    under = lines[lines.index(f"  {text}") + 1]
    assert under.strip() == "^" and under.startswith("  "), stderr
    return len(under) - 3


@pytest.mark.parametrize("filter_text, at, problem", [
    ("metrics.loss < 0.5 or metrics.acc > 0.5", "or", "OR is not supported"),
    ("metrics.loss < 0.5 OR params.lr = '1'", "OR", "OR is not supported"),
    ("params.lr = '0.01", "'0.01", "the quote ' is never closed"),
    ("metrics.`my key = 3", "`my", "never closed"),
    ("metrics.loss < 'low'", "'low'", "expected a number"),
    ("metrics.loss LIKE '1%'", "LIKE", "is a number"),
    ("metrics.loss IS NULL", "IS", "expected a comparison"),
    ("params.lr > '0.01'", ">", "compares strings only with"),
    ("params.lr = 0.01", "0.01", "expected a quoted string"),
    ("params.lr IN '0.01'", "IN", "expected a list in parentheses"),
    ("params.lr IN ('a' 'b')", "'b'", "expected ',' or ')'"),
    ("params.lr NOT LIKE 'a'", "LIKE", "expected IN after NOT"),
    ("params.lr IS MAYBE", "MAYBE", "expected NULL"),
    ("foo.bar = 1", "foo.bar", '"foo" is not metrics, params, tags or attributes'),
    ("metrics = 1", "metrics", "expected a '.' and a key"),
    ("metrics. = 1", "=", "expected a key after the '.'"),
    ("attributes.color = 'red'", "attributes.color", '"color" is not an attribute'),
    ("attributes.status IS NULL", "IS", "attributes are never null"),
    ("attributes.start_time > 'yesterday'", "'yesterday'", "expected a number"),
    ("metrics.loss < 1 metrics.acc > 0", "metrics.acc", "expected AND"),
    ("metrics.loss < 1 and", None, "expected metrics.KEY"),
    ("metrics.loss ! 1", "!", "must be followed by '='"),
    ("params.lr = '0.01'; DROP TABLE runs; --", ";", "unexpected character ';'"),
    ("metrics.loss < 1e5x", "1e5x", "is not a number"),
])
def test_search_syntax_errors_exit_2_and_point_at_the_problem(searchable, filter_text, at, problem):
    home, _ = searchable
    result = run_mlops("run", "ls", "--filter", filter_text, cwd=home.project)
    message = expect_error(result, 2, "invalid --filter", problem)
    column = len(filter_text) if at is None else filter_text.index(at)
    assert f"at position {column + 1}:" in message
    assert caret(message, filter_text) == column
    assert result.stdout == ""
    assert count(home, "runs") == 5


@pytest.mark.parametrize("order_by, expected", [
    ("metrics.acc DESC", ["alpha", "beta", D, "gamma"]),  # without acc: last, newest first among them
    ("metrics.acc ASC", ["beta", "alpha", D, "gamma"]),
    ("metrics.acc", ["beta", "alpha", D, "gamma"]),
    ("metrics.loss asc", ["alpha", "beta", "gamma", D]),
    ("metrics.loss desc", ["gamma", "beta", "alpha", D]),
    ("metrics.`my key` DESC", [D, "gamma", "beta", "alpha"]),
    ("params.lr ASC", ["gamma", "alpha", "beta", D]),
    ("params.lr DESC", ["beta", "alpha", "gamma", D]),
    ("tags.team DESC", ["beta", "alpha", D, "gamma"]),
    ("tags.team ASC, metrics.loss DESC", ["alpha", "beta", "gamma", D]),
    ("tags.team ASC, metrics.loss ASC", ["alpha", "beta", "gamma", D]),
    ("params.pct ASC, params.opt DESC", ["beta", "gamma", D, "alpha"]),
    ("attributes.run_name ASC", [D, "alpha", "beta", "gamma"]),
    ("attributes.start_time ASC", ["alpha", "beta", "gamma", D]),
    ("attributes.start_time DESC", NEWEST_FIRST),
])
def test_search_orders_with_missing_values_last(searchable, order_by, expected):
    home, _ = searchable
    assert names(home, "--order-by", order_by) == expected


def test_search_order_and_limit_together(searchable):
    home, _ = searchable
    assert names(home, "--order-by", "metrics.loss ASC", "--limit", "2") == ["alpha", "beta"]
    assert names(home, "--order-by", "metrics.loss ASC", "--limit", "1", exp=()) == ["alpha"]
    assert names(home, "--order-by", "metrics.loss DESC", "--limit", "3", exp=()) == ["gamma", "beta", "epsilon"]
    assert names(home, "--filter", "metrics.loss < 1", "--order-by", "metrics.loss DESC", "--limit", "2") == ["gamma", "beta"]
    assert names(home, "--limit", "1000") == NEWEST_FIRST
    assert len(ok(run_mlops("run", "ls", "--limit", "2", cwd=home.project)).splitlines()) == 3
    for bad in ("0", "-1"):
        expect_error(run_mlops("run", "ls", "--limit", bad, cwd=home.project), 2, "--limit must be 1 or more")
    expect_error(run_mlops("run", "ls", "--limit", "many", cwd=home.project), 2)


@pytest.mark.parametrize("order_by, at, problem", [
    ("metrics.loss DESC,", None, "expected another key after ','"),
    ("shoe.size DESC", "shoe.size", "is not metrics, params, tags or attributes"),
    ("metrics.loss DESC, 'x'", "'x'", "expected metrics.KEY"),
    ("attributes.flavour", "attributes.flavour", "is not an attribute"),
    ("metrics.loss DESC metrics.acc", "metrics.acc", "expected ASC, DESC or ','"),
    ("metrics.loss sideways", "sideways", "expected ASC, DESC or ','"),
    ("metrics.loss DESC; DROP TABLE runs", ";", "unexpected character ';'"),
])
def test_order_by_errors_exit_2_and_point_at_the_problem(searchable, order_by, at, problem):
    home, _ = searchable
    message = expect_error(run_mlops("run", "ls", "--order-by", order_by, cwd=home.project), 2, "invalid --order-by", problem)
    column = len(order_by) if at is None else order_by.index(at)
    assert f"at position {column + 1}:" in message and caret(message, order_by) == column


# Injection attempts are data: every key and value is a bound parameter.


@pytest.mark.parametrize("filter_text, expected", [
    ("params.note = 'it''s; DROP TABLE runs; --'", ["alpha"]),
    ('params.note = "it\'s; DROP TABLE runs; --"', ["alpha"]),
    ("params.note = 'it\\'s; DROP TABLE runs; --'", ["alpha"]),
    ("params.note LIKE '%DROP TABLE%'", ["alpha"]),
    ("params.note = 'it'", []),
    (f"attributes.run_name = \"{INJECTION}\"", [D]),
    ("attributes.run_name = '''; DROP TABLE runs; --'", [D]),
    ("params.opt = 'O''Brien \"quoted\"'", [D]),
    ('params.opt = "O\'Brien ""quoted"""', [D]),
    ("params.lr = '0.01'' OR ''1''=''1'", []),
    ("params.lr = '0.01\" OR \"1\"=\"1'", []),
    ("params.`lr'; DROP TABLE runs; --` = '0.01'", []),
    ("params.`lr` = '0.01'", ["alpha"]),
    ("tags.`team = 'cv' --` IS NULL", NEWEST_FIRST),
    ("params.lr IN ('0.01'') OR 1=1 --', '0.1')", ["beta"]),
    ("metrics.`loss) OR (1=1` > 0", []),
    # % and _ are LIKE's wildcards and nothing else: = compares them literally; GLOB's own specials
    # (* ? [) are plain characters in LIKE and ILIKE.
    ("params.pct = '50%'", []),
    ("params.pct = '50%_off'", ["beta"]),
    ("params.pct LIKE '50%'", ["gamma", "beta"]),
    ("params.pct LIKE '50_'", ["gamma"]),
    ("params.pct LIKE '50%_off'", ["beta"]),
    ("params.pct LIKE '50*'", []),
    ("params.pct LIKE '50?'", []),
    ("params.pct LIKE '50[x]'", []),
    ("tags.`path/to key` = '%_*?['", [D]),
    ("tags.`path/to key` LIKE '%*?['", [D]),
    ("tags.`path/to key` LIKE '_____'", [D]),
    ("tags.`path/to key` LIKE '?????'", []),
    ("tags.`path/to key` LIKE '*'", []),
    ("tags.`path/to key` LIKE '[%]%'", []),
    ("tags.`path/to key` ILIKE '%*?['", [D]),
    ("tags.`path/to key` ILIKE '%_*'", []),
    ("tags.`path/to key` ILIKE '%[%'", [D]),
])
def test_search_injection_attempts_are_plain_data(searchable, filter_text, expected):
    home, ids = searchable
    assert found(home, filter_text) == expected
    # The tables are all there, every run in them.
    assert count(home, "runs") == 5 and count(home, "experiments") == 2
    assert names(home) == NEWEST_FIRST


def test_values_with_quotes_and_semicolons_are_stored_exactly(searchable):
    home, ids = searchable
    assert show(home, ids["alpha"])["params"]["note"] == "it's; DROP TABLE runs; --"
    shown = show(home, ids[D])
    assert shown["name"] == INJECTION and shown["params"]["opt"] == "O'Brien \"quoted\""
    assert shown["tags"] == {"path/to key": "%_*?["}
    assert query(home, "SELECT name FROM runs WHERE id = ?", ids[D]) == [(INJECTION,)]
    assert fields(ok(run_mlops("run", "show", ids[D], cwd=home.project)))["name"] == INJECTION


# Artifacts ----------------------------------------------------------------------------------------


def test_artifacts_round_trip_and_gc_keeps_them(tracked, tmp_path):
    home, run_id = tracked
    p = home.project
    model = os.urandom(100_000)
    write(p / "model.bin", model)
    write(p / "report" / "summary.txt", "accuracy 0.9\n")
    write(p / "report" / "plots" / "loss.csv", "step,loss\n0,1\n1,0.5\n")
    write(p / "report" / "run.sh", "#!/bin/sh\necho hi\n", executable=True)
    saved = tmp_path / "saved-report"
    subprocess.run(["cp", "-a", str(p / "report"), str(saved)], check=True)
    added = document(home, "run", "artifact", "add", run_id[:8], "model.bin", "report", schema="run-artifact-add")
    by_name = {a["name"]: a for a in added["artifacts"]}
    assert sorted(by_name) == ["model.bin", "report"]
    assert by_name["model.bin"]["digest"] == "sha256:" + hashlib.sha256(model).hexdigest()
    assert (by_name["model.bin"]["kind"], by_name["model.bin"]["size"]) == ("blob", len(model))
    assert by_name["report"]["kind"] == "tree"
    assert {a["name"]: a["digest"] for a in show(home, run_id)["artifacts"]} == {n: a["digest"] for n, a in by_name.items()}
    text = fields(ok(run(home, "show", run_id)))
    assert text["artifact model.bin"] == f"blob {hashlib.sha256(model).hexdigest()[:12]} ({len(model)} bytes)"

    # Nothing else refers to these objects: gc must keep them all the same.
    gc = document(home, "artifact", "gc", schema="artifact-gc")
    assert gc["removed"] == [], gc
    assert object_path(home, hashlib.sha256(model).hexdigest()).is_file()

    ok(run(home, "artifact", "get", run_id, "model.bin", tmp_path / "model.out"))
    assert (tmp_path / "model.out").read_bytes() == model
    ok(run(home, "artifact", "get", run_id, "report", tmp_path / "report.out"))
    diff_r(saved, tmp_path / "report.out")
    assert os.access(tmp_path / "report.out" / "run.sh", os.X_OK)
    # OUT defaults to NAME in the working directory; an existing OUT needs --force.
    (p / "sub").mkdir()
    ok(run(home, "artifact", "get", run_id, "model.bin", cwd=p / "sub"))
    assert (p / "sub" / "model.bin").read_bytes() == model
    write(tmp_path / "taken", "mine\n")
    expect_error(run(home, "artifact", "get", run_id, "model.bin", tmp_path / "taken"), 4, "already exists", "--force")
    assert (tmp_path / "taken").read_text() == "mine\n"
    ok(run(home, "artifact", "get", run_id, "model.bin", tmp_path / "taken", "--force"))
    assert (tmp_path / "taken").read_bytes() == model
    expect_error(run(home, "artifact", "get", run_id, "nosuch", tmp_path / "x"), 3, 'has no artifact "nosuch"')
    expect_error(run(home, "artifact", "add", run_id, "missing.bin"), 3)
    assert not (tmp_path / "x").exists()


def test_artifact_replaced_under_its_name_unpins_the_old_object(tracked, tmp_path):
    home, run_id = tracked
    first, second = b"first model\n" * 1000, b"second model\n" * 1000
    write(home.project / "model.bin", first)
    ok(run(home, "artifact", "add", run_id, "model.bin"))
    write(home.project / "model.bin", second)
    ok(run(home, "artifact", "add", run_id, "model.bin"))
    assert [(a["name"], a["digest"]) for a in show(home, run_id)["artifacts"]] == [
        ("model.bin", "sha256:" + hashlib.sha256(second).hexdigest())]
    gc = document(home, "artifact", "gc", schema="artifact-gc")
    assert [o["digest"] for o in gc["removed"]] == ["sha256:" + hashlib.sha256(first).hexdigest()]
    assert not object_path(home, hashlib.sha256(first).hexdigest()).exists()
    assert object_path(home, hashlib.sha256(second).hexdigest()).is_file()
    ok(run(home, "artifact", "get", run_id, "model.bin", tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == second


def test_artifact_get_verifies_the_bytes(tracked, tmp_path):
    home, run_id = tracked
    content = b"weights\n" * 100
    write(home.project / "w.bin", content)
    ok(run(home, "artifact", "add", run_id, "w.bin"))
    stored = object_path(home, hashlib.sha256(content).hexdigest())
    stored.chmod(0o644)
    stored.write_bytes(b"tampered" + content[8:])
    expect_error(run(home, "artifact", "get", run_id, "w.bin", tmp_path / "out.bin"), 5, "corrupt", "nothing was written")
    assert not (tmp_path / "out.bin").exists()
    error_json(run_mlops("--json", "run", "artifact", "get", run_id, "w.bin", tmp_path / "out.bin", cwd=home.project), 5,
               "integrity")


# git lineage --------------------------------------------------------------------------------------


def test_run_start_records_git_lineage_from_a_real_repository(repository):
    home = make_home(repository)
    head = git("rev-parse", "HEAD", cwd=repository)
    clean = start(home, cwd=repository)
    assert show(home, clean)["git"] == {"commit": head, "branch": "trunk", "dirty": False, "path": ".",
                                        "remote": "https://example.com/x.git"}, "untracked files do not make a tree dirty"
    text = fields(ok(run(home, "show", clean)))
    assert (text["git commit"], text["git branch"], text["git remote"]) == (head, "trunk", "https://example.com/x.git")
    # A tracked file edited: dirty. From a subdirectory: its path.
    write(repository / "train.py", "print('changed')\n")
    dirty = start(home, cwd=repository / "data")
    assert show(home, dirty)["git"] == {"commit": head, "branch": "trunk", "dirty": True, "path": "data",
                                        "remote": "https://example.com/x.git"}
    assert fields(ok(run(home, "show", dirty)))["git commit"] == f"{head} (dirty)"
    # Another branch, another commit.
    git("checkout", "-q", "-b", "feature", cwd=repository)
    git("commit", "-q", "-am", "second", cwd=repository)
    moved = start(home, cwd=repository)
    lineage = show(home, moved)["git"]
    assert (lineage["commit"], lineage["branch"], lineage["dirty"]) == (git("rev-parse", "HEAD", cwd=repository), "feature", False)
    assert lineage["commit"] != head
    # The credentials of the remote are nowhere.
    for run_id in (clean, dirty, moved):
        assert "secret" not in ok(run(home, "show", run_id)) and "user:" not in ok(run(home, "show", run_id))
    assert b"secret" not in home.db.read_bytes()
    wal = home.db.with_name("mlops.db-wal")
    assert not wal.exists() or b"secret" not in wal.read_bytes()
    assert query(home, "SELECT git_remote FROM runs") == [("https://example.com/x.git",)] * 3


def test_no_git_lineage_outside_a_repository(home):
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=home.project, capture_output=True).returncode == 0:
        pytest.skip(f"{home.project} lies in a git repository")
    result = run(home, "start", "--exp", "e")
    assert result.returncode == 0 and result.stderr == ""
    run_id = result.stdout.strip()
    assert show(home, run_id)["git"] is None
    assert not any(line.startswith("git") for line in ok(run(home, "show", run_id)).splitlines())
    assert query(home, "SELECT git_commit, git_branch, git_dirty, git_path, git_remote FROM runs") == [(None,) * 5]


# Every verb: --json, errors as documents -----------------------------------------------------------


def test_errors_with_json_are_one_document_with_the_exit_code(tracked):
    home, run_id = tracked
    unknown = unknown_id(run_id)
    cases = [
        (["run", "show", unknown], 3, "not_found"),
        (["run", "show", "xyz"], 2, "usage"),
        (["run", "log", run_id, "--metric", "bad;key=1"], 2, "usage"),
        (["run", "log", run_id, "--file", "nosuch.jsonl"], 3, "not_found"),
        (["run", "ls", "--filter", "metrics.a < 1 or metrics.b > 1"], 2, "usage"),
        (["exp", "show", "nosuch"], 3, "not_found"),
        (["run", "artifact", "get", run_id, "nosuch"], 3, "not_found"),
    ]
    ok(run(home, "log", run_id, "--param", "p=1"))
    ok(run(home, "end", run_id))
    cases += [(["run", "log", run_id, "--param", "p=2"], 4, "conflict"), (["run", "end", run_id, "--status", "killed"], 4, "conflict")]
    for args, exit_code, code_name in cases:
        error = error_json(run_mlops("--json", *args, cwd=home.project), exit_code, code_name)
        assert error["error"]["message"], args


# Crashes ----------------------------------------------------------------------------------------


def test_a_logger_killed_in_the_middle_of_a_large_file_loses_only_that_file(tracked, tmp_path):
    """kill -9 while `run log --file` writes 400,000 points: the database is intact and holds all
    of the file's points or none (one transaction), what was logged before is kept, and logging
    works. Some kill must land before the commit, so the delays shrink until one does."""
    home, run_id = tracked
    log(home, run_id, "--metric", "before=1", "--step", "1")
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"key": "loss", "value": i / 7, "step": i}) + "\n" for i in range(400_000)))
    lost_everything = False
    for delay in (0.6, 0.4, 0.25, 0.15, 0.08, 0.9, 1.2):
        process = subprocess.Popen([str(BIN), "run", "log", run_id, "--file", str(big)], cwd=home.project,
                                   env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        process.kill()
        process.communicate(timeout=60)
        assert document(home, "db", "check", schema="db-check")["healthy"] is True
        rows = count(home, "run_metrics")
        assert rows in (1, 400_001), f"a killed file log left {rows - 1} of its 400,000 points"
        if rows == 1 and process.returncode == -signal.SIGKILL:
            lost_everything = True
            break
        execute(home, "DELETE FROM run_metrics WHERE key = 'loss'")  # it committed first: try again, sooner
    assert lost_everything, "no kill landed before the commit"
    assert history(home, run_id, "before")[0][2] == 1
    log(home, run_id, "--metric", "after=2")
    assert set(latest(home, run_id)) >= {"before", "after"}
