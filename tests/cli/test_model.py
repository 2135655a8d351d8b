"""`mlops model ...`: the model registry, seen from the outside. Versions are files in the object store
(ONNX ones inspected by the real mlops-worker), with lineage to real runs, datasets and git commits,
aliases whose every move is recorded, and a gate that compares a candidate with a baseline.

ONNX fixtures are built here with the onnx package; the JSON shapes are checked in test_json_output.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import BIN, clean_env, expect_error, make_home, parse_one_document, run_mlops, validate_document
from test_artifact import object_path, ok, sha
from test_data import git, repository, write  # noqa: F401 (repository is a fixture)


# ONNX fixtures ------------------------------------------------------------------------------------


def onnx_model(path: Path, *, input_name="features", dtype=TensorProto.FLOAT, batch="batch", bias=0.5,
               extra_input=False, logits_output=False) -> Path:
    """The demo's churn model (packaging/demo/train.py): features [batch, 2] -> MatMul, Add, Sigmoid.

    Variants for the signature checks: another input name or element type, a fixed batch, a second
    required input ("offset", added to the logits), a second output ("logits")."""
    nodes = [helper.make_node("MatMul", [input_name, "weights"], ["logits_raw"]),
             helper.make_node("Add", ["logits_raw", "bias"], ["logits"]),
             helper.make_node("Sigmoid", ["logits" if not extra_input else "shifted"], ["churn_probability"])]
    inputs = [helper.make_tensor_value_info(input_name, dtype, [batch, 2])]
    if extra_input:
        nodes.insert(2, helper.make_node("Add", ["logits", "offset"], ["shifted"]))
        inputs.append(helper.make_tensor_value_info("offset", TensorProto.FLOAT, [batch, 1]))
    outputs = [helper.make_tensor_value_info("churn_probability", TensorProto.FLOAT, [batch, 1])]
    if logits_output:
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 1]))
    weights_type = np.float32 if dtype == TensorProto.FLOAT else np.int64
    graph = helper.make_graph(
        nodes, "churn", inputs, outputs,
        [numpy_helper.from_array(np.array([[1], [2]], dtype=weights_type), "weights"),
         numpy_helper.from_array(np.array([bias], dtype=weights_type if dtype != TensorProto.FLOAT else np.float32), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="mlops-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# Running the binary -------------------------------------------------------------------------------


def model(home, *args, cwd=None, env=None):
    """`mlops model ARGS...` in the project."""
    return run_mlops("model", *args, cwd=cwd or home.project, env=env)


def doc(home, *args, cwd=None, schema=None):
    """A successful `mlops --json model ARGS...`: one document on stdout, stderr empty."""
    result = run_mlops("--json", "model", *args, cwd=cwd or home.project)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}\n{result.stdout}"
    assert result.stderr == "", f"stderr should be empty on success with --json: {result.stderr!r}"
    parsed = parse_one_document(result.stdout)
    return validate_document(parsed, schema) if schema else parsed


def register(home, name, *args, cwd=None) -> dict:
    return doc(home, "register", name, *map(str, args), cwd=cwd)


def start_run(home, *params, metrics=(), cwd=None) -> str:
    """A real run (`mlops run start` + `run log`), returning its id."""
    run_id = ok(run_mlops("run", "start", "--exp", "e", *[a for p in params for a in ("--param", p)],
                          cwd=cwd or home.project)).strip()
    if metrics:
        ok(run_mlops("run", "log", run_id, *[a for m in metrics for a in ("--metric", m)], cwd=cwd or home.project))
    return run_id


def run_with_model(home, file: Path, *metrics) -> str:
    """A run with METRICS whose artifact is FILE; returns the run id."""
    run_id = start_run(home, metrics=metrics)
    ok(run_mlops("run", "artifact", "add", run_id, file, cwd=home.project))
    return run_id


def version_numbers(home, name, *extra) -> list[int]:
    return [v["version"] for v in doc(home, "versions", name, *extra)["versions"]]


# Registering ----------------------------------------------------------------------------------------


def test_register_from_a_path_numbers_versions_1_2_3_and_records_the_onnx_signature(home):
    p = home.project
    onnx_model(p / "churn.onnx")
    first = register(home, "churn", p / "churn.onnx")
    assert (first["version"], first["ref"], first["created"], first["same_as"]) == (1, "churn@1", True, None)
    content = (p / "churn.onnx").read_bytes()
    assert first["digest"] == "sha256:" + sha(content) and first["size"] == len(content)
    assert (first["format"], first["file_name"]) == ("onnx", "churn.onnx")
    assert first["signature"]["inputs"] == [{"name": "features", "type": "float32", "shape": ["batch", 2]}]
    assert first["signature"]["outputs"] == [{"name": "churn_probability", "type": "float32", "shape": ["batch", 1]}]
    assert first["signature"]["opsets"] == [{"domain": "", "version": 13}]
    assert first["signature"]["ir_version"] == 8 and first["signature"]["producer"] == "mlops-tests"

    onnx_model(p / "int.onnx", dtype=TensorProto.INT64)
    onnx_model(p / "fixed.onnx", batch=4, bias=0.25)
    result = model(home, "register", "churn", "int.onnx")
    assert result.returncode == 0 and result.stdout == f"registered churn@2 (onnx, {(p / 'int.onnx').stat().st_size} bytes)\n"
    third = register(home, "churn", "fixed.onnx")
    assert third["version"] == 3 and third["signature"]["inputs"][0]["shape"] == [4, 2]
    assert version_numbers(home, "churn") == [3, 2, 1]

    shown = ok(model(home, "show", "churn@2"))
    assert "format:  onnx\n" in shown
    assert "input:   features int64 [batch, 2]\n" in shown
    assert "output:  churn_probability float32 [batch, 1]\n" in shown
    assert "opset:   ai.onnx 13\n" in shown
    assert ok(model(home, "show", "churn@3")).count("[4, 2]") == 1


def test_the_same_content_twice_is_a_new_version_that_names_the_first_unless_dedupe(home):
    p = home.project
    onnx_model(p / "m.onnx")
    register(home, "churn", "m.onnx")
    result = model(home, "register", "churn", "m.onnx")
    assert result.returncode == 0, result
    assert result.stdout == f"registered churn@2 (onnx, {(p / 'm.onnx').stat().st_size} bytes)\nsame content as churn@1\n"
    second = doc(home, "show", "churn@2")
    assert second["same_as"] == 1 and second["digest"] == doc(home, "show", "churn@1")["digest"]
    assert "same content as: churn@1\n" in ok(model(home, "show", "churn@2"))

    deduped = register(home, "churn", "m.onnx", "--dedupe")
    assert deduped["created"] is False and deduped["version"] in (1, 2) and deduped["digest"] == second["digest"]
    human = model(home, "register", "churn", "m.onnx", "--dedupe")
    assert human.returncode == 0 and "already holds this content, nothing registered (--dedupe)" in human.stdout
    assert version_numbers(home, "churn") == [2, 1], "--dedupe made no version"
    # Another model with the same file starts from 1 and is not "the same" as a version of churn.
    other = register(home, "other", "m.onnx")
    assert (other["version"], other["same_as"]) == (1, None)


def test_register_from_a_stored_artifact_and_from_a_runs_artifact(home):
    p = home.project
    onnx_model(p / "m.onnx")
    digest = ok(run_mlops("--json", "artifact", "add", "m.onnx", cwd=p))
    digest = parse_one_document(digest)["targets"][0]["digest"].removeprefix("sha256:")
    by_digest = register(home, "churn", "--artifact", digest[:12])
    assert by_digest["digest"] == "sha256:" + digest and by_digest["format"] == "onnx"
    assert by_digest["signature"]["inputs"][0]["name"] == "features"

    onnx_model(p / "out" / "trained.onnx", bias=2.0)
    run_id = run_with_model(home, p / "out" / "trained.onnx", "acc=0.5")
    by_run = register(home, "churn", "--run", run_id[:8], "--path", "trained.onnx")
    assert (by_run["version"], by_run["run_id"], by_run["file_name"]) == (2, run_id, "trained.onnx")
    assert by_run["digest"] == "sha256:" + sha((p / "out" / "trained.onnx").read_bytes())

    expect_error(model(home, "register", "churn", "--run", run_id, "--path", "nope.onnx"), 3)
    expect_error(model(home, "register", "churn", "--artifact", "ab" * 32), 3)
    expect_error(model(home, "register", "churn", "--path", "trained.onnx"), 2, "--run")
    expect_error(model(home, "register", "churn"), 2, "exactly one")
    expect_error(model(home, "register", "churn", "m.onnx", "--artifact", digest), 2, "exactly one")
    assert version_numbers(home, "churn") == [2, 1]


def test_a_file_that_is_not_onnx_registers_with_format_unknown(home):
    write(home.project / "README.txt", "not a model\n")
    version = register(home, "notes", "README.txt")
    assert (version["format"], version["signature"], version["file_name"]) == ("unknown", None, "README.txt")
    shown = ok(model(home, "show", "notes"))
    assert "format:  unknown\n" in shown and "input:" not in shown


@pytest.mark.parametrize("content", ["text", "truncated"])
def test_a_file_named_onnx_that_is_not_a_valid_model_exits_5_and_registers_nothing(home, content):
    p = home.project
    good = onnx_model(p / "good.onnx").read_bytes()
    write(p / "bad.onnx", b"hello, not a model\n" if content == "text" else good[: len(good) // 2])
    expect_error(model(home, "register", "churn", "bad.onnx"), 5, "bad.onnx", "not a valid one", "nothing was registered")
    assert doc(home, "ls")["models"] == [], "no model, no version"
    expect_error(model(home, "versions", "churn"), 3, "no model named")
    # An existing model gets no version either.
    register(home, "churn", "good.onnx")
    expect_error(model(home, "register", "churn", "bad.onnx"), 5)
    assert version_numbers(home, "churn", "--all") == [1]


def test_a_directory_exits_2_and_a_missing_file_exits_3(home):
    (home.project / "dir").mkdir()
    expect_error(model(home, "register", "churn", "dir"), 2, "is not a file")
    expect_error(model(home, "register", "churn", "missing.onnx"), 3, "missing.onnx", "does not exist")
    expect_error(model(home, "register", "bad name!", "dir"), 2)
    assert doc(home, "ls")["models"] == []


# Reading ----------------------------------------------------------------------------------------------


def test_ls_show_references_versions_and_download(home, tmp_path):
    p = home.project
    assert ok(model(home, "ls")) == "no models yet; `mlops model register NAME FILE` adds one\n"
    files = [onnx_model(p / f"m{i}.onnx", bias=float(i)) for i in (1, 2, 3)]
    for f in files:
        register(home, "churn", f.name)
    write(p / "w.bin", b"\x00\x01weights")
    register(home, "aux", "w.bin")
    ok(model(home, "alias", "set", "churn", "champion", "2"))

    listed = doc(home, "ls")["models"]
    assert [(m["name"], m["latest"]["version"]) for m in listed] == [("aux", 1), ("churn", 3)]
    table = ok(model(home, "ls")).splitlines()
    assert table[0].split() == ["NAME", "LATEST", "FORMAT", "ALIASES", "CREATED"]
    assert table[2].split()[:3] == ["churn", "3", "onnx"]

    assert doc(home, "show", "churn@1")["digest"] == "sha256:" + sha(files[0].read_bytes())
    assert doc(home, "show", "churn@champion")["version"] == 2
    assert doc(home, "show", "churn@latest")["version"] == 3
    assert doc(home, "show", "churn")["version"] == 3
    assert doc(home, "show", "churn@2")["aliases"] == ["champion"]
    assert "aliases: champion\n" in ok(model(home, "show", "churn@2"))
    expect_error(model(home, "show", "churn@9"), 3, "no version 9")
    expect_error(model(home, "show", "churn@staging"), 3, "no alias \"staging\"")
    expect_error(model(home, "show", "nobody@1"), 3, "no model named")
    expect_error(model(home, "show", "churn@0"), 2)

    rows = ok(model(home, "versions", "churn")).splitlines()
    assert rows[0].split() == ["VERSION", "FORMAT", "ALIASES", "RUN", "CREATED", "STATE"]
    assert [r.split()[0] for r in rows[1:]] == ["3", "2", "1"]

    for ref, index in (("churn@1", 0), ("churn@champion", 1), ("churn", 2)):
        out = tmp_path / f"download-{index}.onnx"
        result = model(home, "download", ref, out)
        assert result.returncode == 0 and result.stdout == f"churn@{index + 1} -> {out}\n", result
        assert out.read_bytes() == files[index].read_bytes()
    out = tmp_path / "download-0.onnx"
    expect_error(model(home, "download", "churn@2", out), 4)
    assert out.read_bytes() == files[0].read_bytes(), "refused: OUT unchanged"
    ok(model(home, "download", "churn@2", out, "--force"))
    assert out.read_bytes() == files[1].read_bytes()
    expect_error(model(home, "download", "churn@7", tmp_path / "x"), 3)
    assert not (tmp_path / "x").exists()


def test_tags_at_registration_and_later(home):
    p = home.project
    onnx_model(p / "m.onnx")
    first = register(home, "churn", "m.onnx", "--tag", "team=risk", "--tag", "stage=dev", "--description", "first try")
    assert first["tags"] == {"team": "risk", "stage": "dev"} and first["description"] == "first try"
    tagged = doc(home, "tag", "churn@1", "stage=qa")
    assert tagged["tags"] == {"team": "risk", "stage": "qa"}, "tags overwrite"
    shown = ok(model(home, "show", "churn@1"))
    assert "tag stage:   qa\n" in shown or "tag stage: qa" in " ".join(shown.split()), shown
    expect_error(model(home, "tag", "churn@1", "novalue"), 2, "KEY=VALUE")
    expect_error(model(home, "register", "churn", "m.onnx", "--tag", "=x"), 2)
    expect_error(model(home, "tag", "churn@5", "a=b"), 3)
    assert version_numbers(home, "churn") == [1]


# Aliases --------------------------------------------------------------------------------------------


def three_versions(home):
    for i in (1, 2, 3):
        onnx_model(home.project / f"m{i}.onnx", bias=float(i))
        register(home, "churn", f"m{i}.onnx")


def test_alias_set_move_noop_rm_and_the_history_of_every_move(home):
    three_versions(home)
    assert ok(model(home, "alias", "history", "churn")) == "no alias was ever set\n"
    assert ok(model(home, "alias", "set", "churn", "production", "1")) == "churn@production -> 1\n"
    assert ok(model(home, "alias", "set", "churn", "production", "3")) == "moved churn@production: 1 -> 3\n"
    assert ok(model(home, "alias", "set", "churn", "production", "3")) == "churn@production is already churn@3, nothing to do\n"
    same = doc(home, "alias", "set", "churn", "production", "3")
    assert (same["changed"], same["previous"], same["version"]) == (False, 3, 3)
    moved = doc(home, "alias", "set", "churn", "production", "2")
    assert (moved["changed"], moved["previous"]) == (True, 3)
    assert doc(home, "show", "churn@production")["version"] == 2
    ok(model(home, "alias", "set", "churn", "Champion_2-b", "1"))
    assert ok(model(home, "alias", "rm", "churn", "production")) == "removed churn@production (was 2)\n"
    expect_error(model(home, "show", "churn@production"), 3, "no alias")
    expect_error(model(home, "alias", "rm", "churn", "production"), 3, "no alias")
    expect_error(model(home, "alias", "set", "churn", "staging", "9"), 3, "no version 9")
    expect_error(model(home, "alias", "set", "nobody", "staging", "1"), 3)

    moves = doc(home, "alias", "history", "churn")["moves"]
    assert [(m["alias"], m["from"], m["to"]) for m in moves] == [
        ("production", None, 1), ("production", 1, 3), ("production", 3, 2), ("Champion_2-b", None, 1), ("production", 2, None)]
    assert [m["command"] for m in moves] == [
        "mlops model alias set churn production 1", "mlops model alias set churn production 3",
        "mlops --json model alias set churn production 2", "mlops model alias set churn Champion_2-b 1",
        "mlops model alias rm churn production"]
    times = [m["at"] for m in moves]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)
    table = ok(model(home, "alias", "history", "churn")).splitlines()
    assert table[0].split() == ["TIME", "ALIAS", "FROM", "TO", "COMMAND"]
    assert table[2].split()[1:] == ["production", "1", "3", "mlops", "model", "alias", "set", "churn", "production", "3"]
    assert table[5].split()[1:4] == ["production", "2", "-"]


@pytest.mark.parametrize("alias", ["latest", "v3", "V12", "12", "bad alias", "a.b", ""])
def test_reserved_and_invalid_alias_names_exit_2(home, alias):
    three_versions(home)
    expect_error(model(home, "alias", "set", "churn", alias, "1"), 2, "alias")
    assert doc(home, "alias", "history", "churn")["moves"] == []
    assert doc(home, "show", "churn@1")["aliases"] == []


def test_archive_refuses_aliased_versions_and_archived_versions_take_no_alias(home):
    three_versions(home)
    ok(model(home, "alias", "set", "churn", "production", "2"))
    expect_error(model(home, "archive", "churn@2"), 4, "aliased as production")
    assert doc(home, "show", "churn@2")["archived_at"] is None
    archived = doc(home, "archive", "churn@1")
    assert archived["changed"] is True and archived["archived_at"]
    assert ok(model(home, "archive", "churn@1")) == "churn@1 was already archived, nothing to do\n"
    expect_error(model(home, "alias", "set", "churn", "staging", "1"), 4, "archived", "restore")
    expect_error(model(home, "alias", "set", "churn", "production", "1"), 4, "archived")
    assert doc(home, "show", "churn@production")["version"] == 2, "the refused move changed nothing"
    states = {line.split()[0]: line.split()[-1] for line in ok(model(home, "versions", "churn")).splitlines()[1:]}
    assert states == {"3": "live", "2": "live", "1": "archived"}
    assert doc(home, "show", "churn@1")["version"] == 1, "archived versions can still be read"
    restored = doc(home, "restore", "churn@1")
    assert restored["changed"] is True and restored["archived_at"] is None
    ok(model(home, "alias", "set", "churn", "staging", "1"))
    assert doc(home, "show", "churn@staging")["version"] == 1


def test_rm_is_refused_while_aliased_then_gc_frees_only_unshared_content(home):
    p = home.project
    write(p / "only.bin", b"only in churn@1\n")
    write(p / "shared.bin", b"in churn@2 and in other@1\n")
    register(home, "churn", "only.bin")
    register(home, "churn", "shared.bin")
    register(home, "other", "shared.bin")
    only, shared = sha(b"only in churn@1\n"), sha(b"in churn@2 and in other@1\n")
    ok(model(home, "alias", "set", "churn", "production", "1"))
    expect_error(model(home, "rm", "churn@1"), 4, "aliased as production")
    ok(model(home, "alias", "rm", "churn", "production"))
    removed = doc(home, "rm", "churn@1")
    assert removed["ref"] == "churn@1" and removed["deleted_at"]
    expect_error(model(home, "show", "churn@1"), 3, "churn@1 was removed")
    expect_error(model(home, "download", "churn@1", p / "out"), 3)
    expect_error(model(home, "rm", "churn@1"), 3)
    assert version_numbers(home, "churn") == [2]
    assert version_numbers(home, "churn", "--all") == [2, 1]
    assert doc(home, "versions", "churn", "--all")["versions"][1]["deleted_at"] == removed["deleted_at"]
    assert ok(model(home, "versions", "churn", "--all")).splitlines()[2].split()[-1] == "removed"
    ok(model(home, "rm", "churn@2"))
    assert object_path(home, only).exists() and object_path(home, shared).exists(), "rm keeps the files until gc"

    gc = parse_one_document(ok(run_mlops("--json", "artifact", "gc", cwd=p)))
    freed = {o["digest"].removeprefix("sha256:") for o in gc["removed"]}
    assert only in freed and shared not in freed
    assert not object_path(home, only).exists() and object_path(home, shared).exists()
    ok(model(home, "download", "other@1", p / "again.bin"))
    assert (p / "again.bin").read_bytes() == b"in churn@2 and in other@1\n"
    # The next version of churn is 3: numbers are never reused.
    assert register(home, "churn", "only.bin")["version"] == 3


# Lineage ------------------------------------------------------------------------------------------------


def test_lineage_through_a_real_run_dataset_and_git_commit(repository):
    home = make_home(repository)
    head = git("rev-parse", "HEAD", cwd=repository)
    dataset = parse_one_document(ok(run_mlops("--json", "data", "add", "raw", "data/raw", cwd=repository)))
    run_id = start_run(home, "lr=0.1", "epochs=3", metrics=("acc=0.5",))
    ok(run_mlops("run", "log", run_id, "--metric", "acc=0.875", "--step", "1", "--metric", "loss=0.25", cwd=repository))
    onnx_model(repository / "out" / "model.onnx")  # untracked: the tree stays clean
    ok(run_mlops("run", "artifact", "add", run_id, "out/model.onnx", cwd=repository))

    version = register(home, "churn", "--run", run_id, "--path", "model.onnx", "--dataset", "raw@1")
    assert version["run_id"] == run_id and version["git_commit"] == head
    assert (version["git_branch"], version["git_dirty"]) == ("trunk", False)
    assert version["datasets"] == [{"dataset": "raw", "version": 1}]

    lineage = doc(home, "lineage", "churn@1")
    assert lineage["ref"] == "churn@1" and lineage["digest"] == version["digest"]
    run = lineage["run"]
    assert (run["id"], run["experiment"], run["status"], run["git_commit"]) == (run_id, "e", "running", head)
    assert run["params"] == {"lr": "0.1", "epochs": "3"}
    assert run["metrics"] == {"acc": 0.875, "loss": 0.25}, "the latest point of each metric"
    assert lineage["datasets"] == [{"dataset": "raw", "version": 1, "ref": "raw@1", "tree": dataset["tree"],
                                    "files": 1, "git_commit": head, "removed": False}]
    text = ok(model(home, "lineage", "churn@1"))
    assert f"└─ run {run_id} (" in text and f"   ├─ git commit {head}\n" in text
    assert "   ├─ param lr = 0.1\n" in text and "   ├─ metric acc = 0.875\n" in text
    assert f"└─ dataset raw@1 (1 files, tree {dataset['tree'][:19]}, git {head[:10]})\n" in text
    shown = ok(model(home, "show", "churn@1"))
    assert f"run:" in shown and run_id in shown and f"git commit:" in shown and head in shown and "raw@1" in shown

    # A registration without a run takes the commit of the working tree it runs in.
    write(repository / "train.py", "print('changed')\n")
    git("commit", "-qam", "second", cwd=repository)
    plain = register(home, "churn", "out/model.onnx")
    assert plain["run_id"] is None and plain["git_commit"] == git("rev-parse", "HEAD", cwd=repository)
    assert doc(home, "lineage", "churn@2")["run"] is None

    # The dataset version removed since: lineage says so.
    ok(run_mlops("data", "rm", "raw@1", cwd=repository))
    entry = doc(home, "lineage", "churn@1")["datasets"][0]
    assert (entry["removed"], entry["tree"], entry["files"]) == (True, None, None)
    expect_error(model(home, "register", "churn", "out/model.onnx", "--dataset", "raw@7"), 3)
    expect_error(model(home, "register", "churn", "out/model.onnx", "--run", "f" * 32), 3)


# Gate ---------------------------------------------------------------------------------------------------


@pytest.fixture
def gated(home):
    """churn@1 (acc 0.8, loss 0.5), churn@2 (acc 0.9, loss 0.3), churn@3 without a run, churn@4 whose run has no acc."""
    p = home.project
    for number, metrics in ((1, ("acc=0.8", "loss=0.5")), (2, ("acc=0.9", "loss=0.3"))):
        run_id = run_with_model(home, onnx_model(p / f"r{number}" / "model.onnx", bias=float(number)), *metrics)
        register(home, "churn", "--run", run_id, "--path", "model.onnx")
    register(home, "churn", onnx_model(p / "plain.onnx", bias=3.0).name)
    run_id = run_with_model(home, onnx_model(p / "r4" / "model.onnx", bias=4.0), "loss=0.1")
    register(home, "churn", "--run", run_id, "--path", "model.onnx")
    return home


def gate(home, *args):
    return model(home, "gate", *args)


def test_gate_on_a_metric_passes_with_exit_0_and_fails_with_exit_6(gated):
    home = gated
    result = gate(home, "churn@2", "--against", "churn@1", "--metric", "acc")
    assert result.returncode == 0 and result.stdout.endswith("gate passed\n") and result.stdout.startswith("PASS acc:"), result
    assert gate(home, "churn@2", "--against", "churn@1", "--metric", "acc", "--higher-is-better").returncode == 0
    failed = gate(home, "churn@1", "--against", "churn@2", "--metric", "acc")
    assert failed.returncode == 6 and failed.stdout.startswith("FAIL acc:") and failed.stdout.endswith("gate FAILED\n"), failed
    expect_error(failed, 6, "churn@1 did not pass the gate against churn@2")

    assert gate(home, "churn@2", "--against", "churn@1", "--metric", "loss", "--lower-is-better").returncode == 0
    assert gate(home, "churn@1", "--against", "churn@2", "--metric", "loss", "--lower-is-better").returncode == 6
    assert gate(home, "churn@2", "--against", "churn@1", "--metric", "loss", "--higher-is-better").returncode == 6
    expect_error(gate(home, "churn@2", "--against", "churn@1", "--metric", "acc", "--higher-is-better",
                      "--lower-is-better"), 2, "not both")

    # --min-delta: 0.9 - 0.8 is 0.1 in decimal, 0.09999999999999998 in binary: it passes.
    assert gate(home, "churn@2", "--against", "churn@1", "--metric", "acc", "--min-delta", "0.1").returncode == 0
    assert gate(home, "churn@2", "--against", "churn@1", "--metric", "acc", "--min-delta", "0.05").returncode == 0
    assert gate(home, "churn@2", "--against", "churn@1", "--metric", "acc", "--min-delta", "0.15").returncode == 6
    assert gate(home, "churn@2", "--against", "churn@1", "--metric", "loss", "--lower-is-better",
                "--min-delta", "0.3").returncode == 6
    # --max-regression: the candidate may be worse by that much.
    assert gate(home, "churn@1", "--against", "churn@2", "--metric", "acc", "--max-regression", "0.15").returncode == 0
    assert gate(home, "churn@1", "--against", "churn@2", "--metric", "acc", "--max-regression", "0.05").returncode == 6
    assert gate(home, "churn@1", "--against", "churn@2", "--metric", "loss", "--lower-is-better",
                "--max-regression", "0.25").returncode == 0
    expect_error(gate(home, "churn@2", "--against", "churn@1", "--metric", "acc", "--min-delta", "0.1",
                      "--max-regression", "0.1"), 2, "not both")

    document = parse_one_document(gate(home, "--json", "churn@1", "--against", "churn@2", "--metric", "acc",
                                       "--max-regression", "0.05").stdout)
    assert document["passed"] is False and document["candidate"] == "churn@1" and document["baseline"] == "churn@2"
    metric = document["metric"]
    assert (metric["name"], metric["candidate"], metric["baseline"], metric["higher_is_better"]) == ("acc", 0.8, 0.9, True)
    assert metric["required"] == -0.05 and abs(metric["improvement"] + 0.1) < 1e-9 and metric["passed"] is False


def test_gate_needs_runs_with_the_metric_and_something_to_check(gated):
    home = gated
    expect_error(gate(home, "churn@3", "--against", "churn@1", "--metric", "acc"), 3, "churn@3", "without a run")
    expect_error(gate(home, "churn@2", "--against", "churn@3", "--metric", "acc"), 3, "churn@3", "without a run")
    expect_error(gate(home, "churn@4", "--against", "churn@1", "--metric", "acc"), 3, "churn@4", "no value for metric acc")
    expect_error(gate(home, "churn@2", "--against", "churn@1", "--metric", "f1"), 3, "metric f1")
    expect_error(gate(home, "churn@2", "--against", "churn@9", "--metric", "acc"), 3)
    expect_error(gate(home, "churn@2", "--against", "churn@1"), 2, "nothing to check")


SIGNATURE_VARIANTS = {
    "renamed input": (dict(input_name="inputs"), dict(), ["input features is gone", "input inputs is new"]),
    "changed type": (dict(dtype=TensorProto.INT64), dict(), ["input features changed type"]),
    "narrowed dimension": (dict(batch=8), dict(), ["input features dimension 0 narrowed"]),
    "extra required input": (dict(extra_input=True), dict(), ["input offset is new"]),
    "removed output": (dict(), dict(logits_output=True), ["output logits is gone"]),
}


def test_signature_gate_passes_for_identical_and_widened_signatures(home):
    p = home.project
    register(home, "churn", onnx_model(p / "a.onnx").name)
    register(home, "churn", onnx_model(p / "b.onnx", bias=9.0).name)
    register(home, "churn", onnx_model(p / "fixed.onnx", batch=8).name)
    result = gate(home, "churn@2", "--against", "churn@1", "--signature-compatible")
    assert result.returncode == 0, result
    assert result.stdout == "PASS signature: callers of the baseline can call the candidate\ngate passed\n"
    # Symbolic where the baseline was fixed: every old caller still fits.
    assert gate(home, "churn@1", "--against", "churn@3", "--signature-compatible").returncode == 0
    document = parse_one_document(gate(home, "--json", "churn@2", "--against", "churn@1", "--signature-compatible").stdout)
    assert document == {"candidate": "churn@2", "baseline": "churn@1", "signature": {"compatible": True, "problems": []},
                        "passed": True}
    write(p / "w.bin", b"weights")
    register(home, "churn", "w.bin")
    expect_error(gate(home, "churn@4", "--against", "churn@1", "--signature-compatible"), 3, "signature")


@pytest.mark.parametrize("variant", SIGNATURE_VARIANTS)
def test_signature_gate_fails_with_exit_6_when_callers_would_break(home, variant):
    p = home.project
    candidate_kwargs, baseline_kwargs, problems = SIGNATURE_VARIANTS[variant]
    register(home, "churn", onnx_model(p / "baseline.onnx", **baseline_kwargs).name)
    register(home, "churn", onnx_model(p / "candidate.onnx", bias=7.0, **candidate_kwargs).name)
    result = gate(home, "churn@2", "--against", "churn@1", "--signature-compatible")
    assert result.returncode == 6, result
    assert result.stdout.startswith("FAIL signature: ") and result.stdout.endswith("gate FAILED\n")
    for problem in problems:
        assert problem in result.stdout, result.stdout
    document = parse_one_document(gate(home, "--json", "churn@2", "--against", "churn@1", "--signature-compatible").stdout)
    assert document["passed"] is False and document["signature"]["compatible"] is False
    assert all(any(problem in text for text in document["signature"]["problems"]) for problem in problems)


# Concurrency ----------------------------------------------------------------------------------------------


def test_two_processes_moving_one_alias_at_once_both_succeed_and_both_moves_are_recorded(home):
    three_versions(home)
    for attempt in range(4):
        alias = f"race{attempt}"
        processes = [subprocess.Popen([str(BIN), "model", "alias", "set", "churn", alias, str(n)], cwd=home.project,
                                      env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for n in (1, 2)]
        for process in processes:
            out, err = process.communicate(timeout=30)
            assert process.returncode == 0, f"exit {process.returncode}: {err}"
            assert err == ""
        moves = [(m["from"], m["to"], m["command"]) for m in doc(home, "alias", "history", "churn")["moves"]
                 if m["alias"] == alias]
        assert len(moves) == 2, moves
        (from1, to1, _), (from2, to2, _) = moves
        assert from1 is None and {to1, to2} == {1, 2} and from2 == to1, "the second move starts where the first ended"
        assert doc(home, "show", f"churn@{alias}")["version"] == to2
        assert {c for _, _, c in moves} == {f"mlops model alias set churn {alias} 1", f"mlops model alias set churn {alias} 2"}
