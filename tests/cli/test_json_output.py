"""--json: exactly one document on stdout, valid against its schema in schemas/json/, on success and on error."""

import json
import os
import shutil
import subprocess

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from conftest import SCHEMA_DIR, clean_env, latest_version, load_schema, parse_one_document, validate_document

SCHEMAS = ["deploy-create", "deploy-ls", "deploy-rm", "deploy-rollout", "deploy-status", "deploy-history", "error", "init", "db-check", "db-migrate", "db-status", "version", "completion", "hash", "hash-check", "artifact-add", "artifact-get", "artifact-ls", "artifact-show", "artifact-verify", "artifact-gc",
           "data-add", "data-ls", "data-log", "data-show", "data-tag", "data-diff", "data-status", "data-checkout", "data-rm",
           "exp-create", "exp-ls", "exp-show", "exp-rm",
           "run-start", "run-end", "run-log", "run-exec", "run-ls", "run-show", "run-compare", "run-metrics", "run-rm",
           "run-artifact-add", "run-artifact-get",
           "model-register", "model-ls", "model-show", "model-versions", "model-download", "model-alias-set", "model-alias-rm",
           "model-alias-history", "model-tag", "model-archive", "model-restore", "model-rm", "model-lineage", "model-gate",
           "model-card", "model-export",
           "serve-start", "serve-ls", "serve-status", "serve-stop", "serve-prune", "serve-logs", "serve-predict", "serve-load"]


def ok_document(result, schema):
    code, out, err = result
    assert code == 0, f"exit {code}: {err}"
    assert err == "", f"stderr should be empty on success with --json: {err!r}"
    return validate_document(parse_one_document(out), schema)


def error_document(result, exit_code, code_name):
    code, out, err = result
    assert code == exit_code, f"expected exit {exit_code}, got {code}: {err}"
    document = validate_document(parse_one_document(out), "error")
    assert document["error"]["code"] == code_name
    assert document["error"]["exit_code"] == exit_code
    # The same message goes to stderr for people.
    assert err == f"mlops: error: {document['error']['message']}\n"
    return document


# Schemas themselves -----------------------------------------------------------------------------


ALL_SCHEMAS = sorted(p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json"))


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_schema_is_valid_draft_2020_12(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def loose_objects(node, all_required, where="#"):
    """Yield the places where an object schema is not closed (or, for outputs, has optional fields)."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            closed = node.get("additionalProperties")
            if closed is None or closed is True:
                yield f"{where}: additionalProperties is not set (unknown fields would pass)"
            if all_required and set(node.get("required", [])) != set(node.get("properties", {})):
                yield f"{where}: not every property is required"
        for key, value in node.items():
            yield from loose_objects(value, all_required, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from loose_objects(value, all_required, f"{where}/{index}")


@pytest.mark.parametrize("name", ALL_SCHEMAS)
def test_schema_is_strict(name):
    # A command's --json output always carries every field; file formats may have optional keys.
    problems = list(loose_objects(load_schema(name), all_required=name in SCHEMAS))
    assert not problems, "\n".join(problems)


def test_every_json_output_has_a_schema():
    missing = [name for name in SCHEMAS if name not in ALL_SCHEMAS]
    assert not missing, f"no schemas/json/NAME.schema.json for {missing}"


def test_schemas_reject_unknown_and_missing_fields(mlops, home):
    document = ok_document(mlops("--json", "db", "status", cwd=home.project), "db-status")
    extra = dict(document, surprise=1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(extra, load_schema("db-status"), cls=Draft202012Validator)
    missing = {k: v for k, v in document.items() if k != "schema_version"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(missing, load_schema("db-status"), cls=Draft202012Validator)
    wrong_pair = {"error": {"code": "usage", "exit_code": 3, "message": "x"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong_pair, load_schema("error"), cls=Draft202012Validator)


# Success ----------------------------------------------------------------------------------------


def test_init_json(mlops, project):
    document = ok_document(mlops("--json", "init", cwd=project), "init")
    assert document == {"home": str(project / ".mlops"), "created": True, "schema_version": latest_version(),
                        "applied": list(range(1, latest_version() + 1))}
    again = ok_document(mlops("--json", "init", cwd=project), "init")
    assert again["created"] is False and again["applied"] == []


def test_db_check_json(mlops, home):
    document = ok_document(mlops("--json", "db", "check", cwd=home.project), "db-check")
    assert document["healthy"] is True and document["problems"] == []
    assert document["home"] == str(home.dir)
    assert document["schema_version"] == document["latest_version"] == latest_version()
    assert document["journal_mode"] == "wal"
    assert document["database_bytes"] == home.db.stat().st_size


def test_db_migrate_json(mlops, home):
    document = ok_document(mlops("--json", "db", "migrate", cwd=home.project), "db-migrate")
    assert document == {
        "home": str(home.dir),
        "from_version": latest_version(),
        "to_version": latest_version(),
        "applied": [],
    }


def test_db_status_json(mlops, home):
    document = ok_document(mlops("--json", "db", "status", cwd=home.project), "db-status")
    assert document["home"] == str(home.dir)
    assert document["database"] == str(home.db)
    assert document["schema_version"] == document["latest_version"] == latest_version()
    assert document["database_bytes"] == home.db.stat().st_size


def test_json_option_after_the_command(mlops, home):
    before = ok_document(mlops("--json", "db", "status", cwd=home.project), "db-status")
    after = ok_document(mlops("db", "status", "--json", cwd=home.project), "db-status")
    assert before == after


@pytest.mark.parametrize("load", [False, True])
def test_version_json(mlops, project, load):
    args = ["--json", "version"] + (["--load"] if load else [])
    document = ok_document(mlops(*args, cwd=project), "version")
    assert mlops("--version", cwd=project).stdout == f"mlops {document['mlops']}\n"
    libraries = document["libraries"]
    assert libraries["sqlite"]["loaded"] and libraries["openssl"]["loaded"]
    if load:
        assert libraries["libgit2"]["loaded"] and libraries["libcurl"]["loaded"], libraries


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_json(mlops, project, shell):
    document = ok_document(mlops("--json", "completion", shell, cwd=project), "completion")
    assert document["shell"] == shell
    assert document["script"] == mlops("completion", shell, cwd=project).stdout


def test_json_success_has_no_human_lines(mlops, project):
    code, out, _ = mlops("--json", "init", cwd=project)
    assert code == 0
    assert "Initialized" not in out and out.lstrip().startswith("{") and out.endswith("}\n")


# Errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "bogus"],
        ["--json", "db", "bogus"],
        ["--json", "db", "status", "--bogus"],
        ["--json"],
        ["--json", "completion", "tcsh"],
        ["db", "bogus", "--json"],
    ],
)
def test_usage_error_json(mlops, project, args):
    error_document(mlops(*args, cwd=project), 2, "usage")


@pytest.mark.parametrize("args", [["--json", "db", "status"], ["db", "check", "--json"], ["--json", "db", "migrate"]])
def test_no_home_error_json(mlops, project, args):
    document = error_document(mlops(*args, cwd=project), 3, "not_found")
    assert "mlops init" in document["error"]["message"]


def test_home_option_not_a_home_error_json(mlops, project):
    document = error_document(mlops("--json", "--home", project, "db", "status", cwd=project), 3, "not_found")
    assert "not an mlops home" in document["error"]["message"]


@pytest.mark.parametrize("args", [["--json", "deploy", "ls"], ["deploy", "ls", "--json"]])
def test_deploy_ls_json_wherever_the_option_is(mlops, home, args):
    # Global options may follow the command (`mlops db check --json`).
    code, out, err = mlops(*args, cwd=home.project)
    assert code == 0, err
    assert validate_document(parse_one_document(out), "deploy-ls") == {"deployments": []}


def test_error_document_is_the_only_output(mlops, project):
    code, out, _ = mlops("--json", "bogus", cwd=project)
    assert code == 2
    document = json.loads(out)  # raises on anything after the document
    assert list(document) == ["error"]
    assert out.startswith("{") and out.endswith("}\n")


# data -------------------------------------------------------------------------------------------


def in_a_git_repository(path):
    """Whether `path` or a directory above it holds .git (then git lineage cannot be null)."""
    return any((directory / ".git").exists() for directory in [path, *path.parents])


def git(*args, cwd):
    env = clean_env({"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                     "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"})
    subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=env, check=True, capture_output=True)


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="the git command is needed to make a repository")


@pytest.fixture
def data_dir(home):
    """A home with data/ in its project: two files and a symbolic link."""
    data = home.project / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("hello\n")
    (data / "sub" / "b.txt").write_text("world\n")
    (data / "link").symlink_to("a.txt")
    return data


def data_json(mlops, home, *args, schema):
    return ok_document(mlops("--json", "data", *args, cwd=home.project), schema)


def test_data_add_json_outside_git(mlops, home, data_dir):
    if in_a_git_repository(home.project):
        pytest.skip(f"{home.project} lies in a git repository")
    document = data_json(mlops, home, "add", "ds", "data", "-m", "first", "--tag", "v1", schema="data-add")
    assert document["git"] is None
    assert (document["dataset"], document["version"], document["ref"]) == ("ds", 1, "ds@1")
    assert (document["created"], document["same_as"], document["deleted_at"]) == (True, None, None)
    assert (document["files"], document["size"], document["path"]) == (3, 17, "data")
    assert (document["message"], document["tags"], document["skipped"]) == ("first", ["v1"], [])
    assert document["tree"] == "sha256:" + mlops("hash", "data", cwd=home.project).stdout.split()[0]
    assert document["objects_written"] == 4 and document["objects_existing"] == 0 and document["bytes_written"] > 0

    # The same content again: no new version, the latest one described, nothing written.
    again = data_json(mlops, home, "add", "ds", "data", "--tag", "again", schema="data-add")
    assert (again["created"], again["version"], again["tags"]) == (False, 1, ["again", "v1"])
    assert (again["objects_written"], again["bytes_written"], again["objects_existing"]) == (0, 0, 4)

    # Back to an older content: a new version, same_as names the older one.
    (data_dir / "a.txt").write_text("changed\n")
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    (data_dir / "a.txt").write_text("hello\n")
    back = data_json(mlops, home, "add", "ds", "data", schema="data-add")
    assert (back["created"], back["version"], back["same_as"], back["message"], back["tags"]) == (True, 3, 1, "", [])


def test_data_add_json_with_skipped_special_files(mlops, home, data_dir):
    os.mkfifo(data_dir / "fifo")
    code, out, err = mlops("--json", "data", "add", "ds", "data", cwd=home.project)
    assert code == 0, err
    assert "fifo" in err  # the warning, on stderr
    document = validate_document(parse_one_document(out), "data-add")
    assert document["skipped"] == ["fifo"] and document["files"] == 3


@needs_git
@pytest.mark.parametrize("state", ["no_commit", "committed", "dirty_detached"])
def test_data_add_json_in_git(mlops, home, data_dir, state):
    git("init", "-q", cwd=home.project)
    if state != "no_commit":
        git("add", "data", cwd=home.project)
        git("commit", "-q", "-m", "data", cwd=home.project)
        git("remote", "add", "origin", "https://user:secret@example.com/repo.git", cwd=home.project)
    if state == "dirty_detached":
        git("checkout", "-q", "--detach", cwd=home.project)
        (data_dir / "a.txt").write_text("changed\n")
    document = data_json(mlops, home, "add", "ds", "data", schema="data-add")
    lineage = document["git"]
    assert lineage is not None and lineage["path"] == "data"
    if state == "no_commit":
        assert lineage == {"commit": None, "branch": None, "dirty": False, "path": "data", "remote": None}
    else:
        assert len(lineage["commit"]) == 40
        assert lineage["remote"] == "https://example.com/repo.git"  # no credentials
        assert lineage["branch"] == ("main" if state == "committed" else None)
        assert lineage["dirty"] is (state == "dirty_detached")
    # Every verb that shows versions carries the same lineage.
    assert data_json(mlops, home, "show", "ds", schema="data-show")["git"] == lineage
    assert data_json(mlops, home, "log", "ds", schema="data-log")["versions"][0]["git"] == lineage
    assert data_json(mlops, home, "ls", schema="data-ls")["datasets"][0]["latest"]["git"] == lineage


def test_data_ls_json(mlops, home, data_dir):
    assert data_json(mlops, home, "ls", schema="data-ls") == {"datasets": []}
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    data_json(mlops, home, "add", "other", "data/sub", schema="data-add")
    document = data_json(mlops, home, "ls", schema="data-ls")
    assert [d["name"] for d in document["datasets"]] == ["ds", "other"]
    assert document["datasets"][0]["versions"] == 1 and document["datasets"][0]["latest"]["ref"] == "ds@1"
    # Every version removed: latest is null.
    data_json(mlops, home, "rm", "other@1", schema="data-rm")
    other = data_json(mlops, home, "ls", schema="data-ls")["datasets"][1]
    assert (other["name"], other["versions"], other["latest"]) == ("other", 0, None)


def test_data_log_json(mlops, home, data_dir):
    data_json(mlops, home, "add", "ds", "data", "--tag", "v1", schema="data-add")
    (data_dir / "new.txt").write_text("new\n")
    data_json(mlops, home, "add", "ds", "data", "-m", "more", schema="data-add")
    document = data_json(mlops, home, "log", "ds", schema="data-log")
    assert document["dataset"] == "ds"
    assert [v["version"] for v in document["versions"]] == [2, 1]
    assert [v["message"] for v in document["versions"]] == ["more", ""]
    data_json(mlops, home, "rm", "ds@1", schema="data-rm")
    assert [v["version"] for v in data_json(mlops, home, "log", "ds", schema="data-log")["versions"]] == [2]
    removed = data_json(mlops, home, "log", "ds", "--all", schema="data-log")["versions"][1]
    assert removed["version"] == 1 and removed["deleted_at"] is not None and removed["tags"] == []
    data_json(mlops, home, "rm", "ds@2", schema="data-rm")
    assert data_json(mlops, home, "log", "ds", schema="data-log") == {"dataset": "ds", "versions": []}


@pytest.mark.parametrize("files", [False, True])
def test_data_show_json(mlops, home, data_dir, files):
    added = data_json(mlops, home, "add", "ds", "data", "--tag", "v1", schema="data-add")
    args = ["show", "ds@v1"] + (["--files"] if files else [])
    document = data_json(mlops, home, *args, schema="data-show")
    version_fields = {k: v for k, v in added.items() if k in document}
    assert {k: v for k, v in document.items() if k != "entries"} == version_fields
    if files:
        assert document["entries"] == [
            {"path": "a.txt", "mode": "100644", "size": 6, "digest": document["entries"][0]["digest"]},
            {"path": "link", "mode": "120000", "size": 5, "digest": document["entries"][1]["digest"]},
            {"path": "sub/b.txt", "mode": "100644", "size": 6, "digest": document["entries"][2]["digest"]},
        ]
    else:
        assert document["entries"] is None


def test_data_show_schema_takes_files_list_whole_or_not_at_all(mlops, home, data_dir):
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    document = data_json(mlops, home, "show", "ds", "--files", schema="data-show")
    for broken in (dict(document, entries=[{"path": "a"}]), dict(document, surprise=1),
                   {k: v for k, v in document.items() if k != "tree"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, load_schema("data-show"), cls=Draft202012Validator)


def test_data_tag_json(mlops, home, data_dir):
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    (data_dir / "new.txt").write_text("new\n")
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    new = data_json(mlops, home, "tag", "ds@1", "good", schema="data-tag")
    assert new == {"dataset": "ds", "tag": "good", "version": 1, "changed": True, "moved_from": None}
    same = data_json(mlops, home, "tag", "ds@1", "good", schema="data-tag")
    assert same == {"dataset": "ds", "tag": "good", "version": 1, "changed": False, "moved_from": None}
    moved = data_json(mlops, home, "tag", "ds", "good", "--force", schema="data-tag")
    assert moved == {"dataset": "ds", "tag": "good", "version": 2, "changed": True, "moved_from": 1}
    error_document(mlops("--json", "data", "tag", "ds@1", "good", cwd=home.project), 4, "conflict")


def test_data_diff_json(mlops, home, data_dir):
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    (data_dir / "a.txt").rename(data_dir / "renamed.txt")
    (data_dir / "link").unlink()
    (data_dir / "sub" / "b.txt").write_text("world, again\n")
    (data_dir / "new.txt").write_text("new\n")
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    document = data_json(mlops, home, "diff", "ds@1", "ds@2", schema="data-diff")
    assert (document["from"], document["to"], document["clean"]) == ("ds@1", "ds@2", False)
    assert [(c["change"], c["path"]) for c in document["changes"]] == [
        ("removed", "link"), ("added", "new.txt"), ("renamed", "renamed.txt"), ("modified", "sub/b.txt")]
    by_kind = {c["change"]: c for c in document["changes"]}
    assert by_kind["added"]["before"] is None and by_kind["removed"]["after"] is None
    assert by_kind["renamed"]["before"]["path"] == "a.txt" and by_kind["renamed"]["after"]["path"] == "renamed.txt"
    assert document["summary"] == {"added": 1, "removed": 1, "modified": 1, "renamed": 1,
                                   "bytes_added": 4 + 13, "bytes_removed": 5 + 6}
    # Against itself, and against a directory (named as given).
    same = data_json(mlops, home, "diff", "ds@2", "ds@latest", "--stat", schema="data-diff")
    assert (same["to"], same["changes"], same["clean"]) == ("ds@2", [], True)
    directory = data_json(mlops, home, "diff", "ds@1", "data", schema="data-diff")
    assert directory["to"] == "data" and directory["changes"] == document["changes"]


def test_data_status_json(mlops, home, data_dir):
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    clean = data_json(mlops, home, "status", "ds", schema="data-status")
    assert clean == {"dataset": "ds", "version": 1, "ref": "ds@1", "dir": str(data_dir), "changes": [],
                     "summary": {"added": 0, "removed": 0, "modified": 0, "renamed": 0, "bytes_added": 0, "bytes_removed": 0},
                     "clean": True}
    (data_dir / "a.txt").write_text("hello, again\n")
    dirty = data_json(mlops, home, "status", "ds@1", "data", "--stat", schema="data-status")
    assert dirty["dir"] == "data" and dirty["clean"] is False
    assert [(c["change"], c["path"], c["before"]["size"], c["after"]["size"]) for c in dirty["changes"]] == [
        ("modified", "a.txt", 6, 13)]


def test_data_checkout_json(mlops, home, data_dir):
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    document = data_json(mlops, home, "checkout", "ds@1", "out", "--link", "copy", schema="data-checkout")
    assert document == {"dataset": "ds", "version": 1, "ref": "ds@1", "dir": "out", "written": 3, "unchanged": 0,
                        "removed": 0, "discarded": 0, "skipped": []}
    (home.project / "out" / "a.txt").write_text("a local change\n")
    (home.project / "out" / "extra.txt").write_text("stored nowhere\n")
    error_document(mlops("--json", "data", "checkout", "ds", "out", cwd=home.project), 4, "conflict")
    forced = data_json(mlops, home, "checkout", "ds", "out", "--force", schema="data-checkout")
    assert (forced["written"], forced["unchanged"], forced["removed"], forced["discarded"]) == (1, 2, 1, 2)
    # Without DIR: where the version was added from, as an absolute path.
    default = data_json(mlops, home, "checkout", "ds", schema="data-checkout")
    assert (default["dir"], default["written"], default["unchanged"]) == (str(data_dir), 0, 3)


def test_data_rm_json(mlops, home, data_dir):
    data_json(mlops, home, "add", "ds", "data", "--tag", "v1", "--tag", "best", schema="data-add")
    document = data_json(mlops, home, "rm", "ds@1", schema="data-rm")
    assert document == {"dataset": "ds", "version": 1, "ref": "ds@1", "already": False, "tags": ["best", "v1"]}
    again = data_json(mlops, home, "rm", "ds@1", schema="data-rm")
    assert again == {"dataset": "ds", "version": 1, "ref": "ds@1", "already": True, "tags": []}


@pytest.mark.parametrize(
    "args, exit_code, code_name",
    [
        (["log", "nosuch"], 3, "not_found"),
        (["show", "ds@9"], 3, "not_found"),
        (["show", "ds@nosuch"], 3, "not_found"),
        (["add", "-bad", "data"], 2, "usage"),
        (["rm", "ds@latest"], 2, "usage"),
        (["status", "ds", "missing"], 3, "not_found"),
    ],
)
def test_data_error_json(mlops, home, data_dir, args, exit_code, code_name):
    data_json(mlops, home, "add", "ds", "data", schema="data-add")
    error_document(mlops("--json", "data", *args, cwd=home.project), exit_code, code_name)


# exp and run ------------------------------------------------------------------------------------


RUN_FIELDS = {"id", "name", "experiment", "status", "parent_id", "start_time", "end_time", "command", "host", "exit_code",
              "git", "deleted_at"}
DETAIL_FIELDS = {"params", "tags", "metrics", "artifacts", "children"}


def exp_json(mlops, home, *args, schema):
    return ok_document(mlops("--json", "exp", *args, cwd=home.project), schema)


def run_json(mlops, home, *args, schema, cwd=None, env=None):
    return ok_document(mlops("--json", "run", *args, cwd=cwd or home.project, env=env), schema)


def start_run(mlops, home, *args, exp="e", cwd=None):
    return run_json(mlops, home, "start", "--exp", exp, *args, schema="run-start", cwd=cwd)


def test_exp_json(mlops, home):
    assert exp_json(mlops, home, "ls", schema="exp-ls") == {"experiments": []}
    created = exp_json(mlops, home, "create", "first exp", schema="exp-create")
    assert {k: created[k] for k in ("id", "name", "deleted_at", "runs", "created")} == {
        "id": 1, "name": "first exp", "deleted_at": None, "runs": 0, "created": True}
    again = exp_json(mlops, home, "create", "first exp", schema="exp-create")
    assert again == dict(created, created=False)
    start_run(mlops, home, exp="first exp")
    start_run(mlops, home, exp="second")  # run start creates its experiment
    shown = exp_json(mlops, home, "show", "first exp", schema="exp-show")
    assert shown == {k: v for k, v in dict(created, runs=1).items() if k != "created"}
    listed = exp_json(mlops, home, "ls", schema="exp-ls")["experiments"]
    assert [(e["name"], e["runs"]) for e in listed] == [("first exp", 1), ("second", 1)]

    removed = exp_json(mlops, home, "rm", "second", schema="exp-rm")
    assert removed["name"] == "second" and removed["deleted_at"] is not None and removed["runs"] == 1
    assert exp_json(mlops, home, "rm", "second", schema="exp-rm") == removed  # nothing more to do
    assert [e["name"] for e in exp_json(mlops, home, "ls", schema="exp-ls")["experiments"]] == ["first exp"]
    everything = exp_json(mlops, home, "ls", "--all", schema="exp-ls")["experiments"]
    assert [(e["name"], e["deleted_at"] is None) for e in everything] == [("first exp", True), ("second", False)]
    assert exp_json(mlops, home, "show", "second", schema="exp-show") == removed
    # Creating a removed experiment again is a conflict: the name still belongs to its runs.
    document = error_document(mlops("--json", "exp", "create", "second", cwd=home.project), 4, "conflict")
    assert "was removed" in document["error"]["message"]


@pytest.mark.parametrize(
    "args, exit_code, code_name",
    [
        (["show", "nosuch"], 3, "not_found"),
        (["rm", "nosuch"], 3, "not_found"),
        (["create", "bad\tname"], 2, "usage"),
        (["create"], 2, "usage"),
    ],
)
def test_exp_error_json(mlops, home, args, exit_code, code_name):
    error_document(mlops("--json", "exp", *args, cwd=home.project), exit_code, code_name)


def test_run_start_json_outside_git(mlops, home):
    if in_a_git_repository(home.project):
        pytest.skip(f"{home.project} lies in a git repository")
    document = start_run(mlops, home, "--name", "first", "--param", "lr=0.01", "--tag", "team=cv")
    assert set(document) == RUN_FIELDS | DETAIL_FIELDS
    assert (document["name"], document["experiment"], document["status"]) == ("first", "e", "running")
    assert document["git"] is None and document["parent_id"] is None and document["command"] is None
    assert (document["end_time"], document["exit_code"], document["deleted_at"]) == (None, None, None)
    assert (document["params"], document["tags"], document["metrics"]) == ({"lr": "0.01"}, {"team": "cv"}, {})
    assert (document["artifacts"], document["children"]) == ([], [])
    # Without --name: run- and the id's first 8 digits. --shell changes only the text.
    plain = start_run(mlops, home, "--shell")
    assert plain["name"] == "run-" + plain["id"][:8]
    assert mlops("run", "start", "--exp", "e", "--shell", cwd=home.project).stdout.startswith("export MLOPS_RUN_ID=")


@needs_git
@pytest.mark.parametrize("state", ["no_commit", "committed"])
def test_run_start_json_in_git(mlops, home, state):
    git("init", "-q", cwd=home.project)
    (home.project / "src").mkdir()
    (home.project / "src" / "train.py").write_text("print('hi')\n")
    if state == "committed":
        git("add", "src", cwd=home.project)
        git("commit", "-q", "-m", "code", cwd=home.project)
        git("remote", "add", "origin", "https://user:secret@example.com/repo.git", cwd=home.project)
    document = start_run(mlops, home, cwd=home.project / "src")
    lineage = document["git"]
    if state == "no_commit":
        assert lineage == {"commit": None, "branch": None, "dirty": False, "path": "src", "remote": None}
    else:
        assert len(lineage["commit"]) == 40 and lineage["branch"] == "main" and lineage["dirty"] is False
        assert lineage["path"] == "src" and lineage["remote"] == "https://example.com/repo.git"
    # Every verb that shows the run carries the same lineage.
    assert run_json(mlops, home, "show", document["id"], schema="run-show")["git"] == lineage
    assert run_json(mlops, home, "ls", schema="run-ls")["runs"][0]["git"] == lineage
    assert run_json(mlops, home, "end", document["id"], schema="run-end")["git"] == lineage


def test_run_end_json(mlops, home):
    run = start_run(mlops, home)
    ended = run_json(mlops, home, "end", run["id"][:8], "--status", "failed", schema="run-end")
    assert set(ended) == RUN_FIELDS | {"changed"}
    assert (ended["id"], ended["status"], ended["changed"], ended["exit_code"]) == (run["id"], "failed", True, None)
    assert ended["end_time"] >= ended["start_time"]
    again = run_json(mlops, home, "end", run["id"], "--status", "failed", schema="run-end")
    assert again == dict(ended, changed=False)
    error_document(mlops("--json", "run", "end", run["id"], cwd=home.project), 4, "conflict")
    # MLOPS_RUN_ID names the run when RUN is left out.
    other = start_run(mlops, home)
    by_env = run_json(mlops, home, "end", "--status", "killed", schema="run-end", env={"MLOPS_RUN_ID": other["id"]})
    assert (by_env["id"], by_env["status"]) == (other["id"], "killed")


def test_run_log_json(mlops, home):
    run = start_run(mlops, home)
    logged = run_json(mlops, home, "log", run["id"], "--metric", "acc=0.5", "--metric", "loss=nan", "--step", "3",
                      "--param", "lr=0.1", "--tag", "a=b", schema="run-log")
    assert logged == {"run": run["id"], "metrics": 2, "params": 1, "tags": 1}
    lines = home.project / "points.jsonl"
    lines.write_text('{"key": "acc", "value": 0.75, "step": 4}\n\n'
                     '{"metrics": {"big": "Infinity", "small": "-Infinity", "none": null}, "params": {"lr": "0.1"}, "step": 5}\n')
    from_file = run_json(mlops, home, "log", run["id"], "--file", "points.jsonl", schema="run-log")
    assert from_file == {"run": run["id"], "metrics": 4, "params": 1, "tags": 0}
    shown = run_json(mlops, home, "show", run["id"], schema="run-show")
    assert {k: m["value"] for k, m in shown["metrics"].items()} == {
        "acc": 0.75, "big": "Infinity", "small": "-Infinity", "none": "NaN", "loss": "NaN"}
    assert (shown["metrics"]["acc"]["step"], shown["metrics"]["big"]["step"]) == (4, 5)
    # Nothing to log, a bad line, a param given another value: error documents, nothing logged.
    error_document(mlops("--json", "run", "log", run["id"], cwd=home.project), 2, "usage")
    lines.write_text('{"key": "acc", "value": "high"}\n')
    error_document(mlops("--json", "run", "log", run["id"], "--file", "points.jsonl", cwd=home.project), 2, "usage")
    error_document(mlops("--json", "run", "log", run["id"], "--param", "lr=0.2", cwd=home.project), 4, "conflict")


def test_run_exec_json(mlops, home):
    parent = start_run(mlops, home)
    # The command writes nothing on stdout: stdout holds the document alone.
    code, out, err = mlops("--json", "run", "exec", "--parent", parent["id"], "--exp", "e", "--param", "p=1", "--",
                           "sh", "-c", 'test -n "$MLOPS_RUN_ID" && test -d "$MLOPS_HOME" && exit 3', cwd=home.project)
    assert code == 3, err  # mlops exits with the command's exit status
    assert err == ""
    document = validate_document(parse_one_document(out), "run-exec")
    assert set(document) == RUN_FIELDS | DETAIL_FIELDS
    assert document["command"] == ["sh", "-c", 'test -n "$MLOPS_RUN_ID" && test -d "$MLOPS_HOME" && exit 3']
    assert (document["status"], document["exit_code"], document["parent_id"]) == ("failed", 3, parent["id"])
    assert document["params"] == {"p": "1"}
    assert document["end_time"] >= document["start_time"]
    finished = run_json(mlops, home, "exec", "--exp", "e", "--", "true", schema="run-exec")
    assert (finished["status"], finished["exit_code"], finished["command"], finished["parent_id"]) == ("finished", 0, ["true"], None)
    assert run_json(mlops, home, "show", parent["id"], schema="run-show")["children"] == [document["id"]]
    # A command that cannot be started: an error document; its run is recorded as failed with 127.
    error_document(mlops("--json", "run", "exec", "--exp", "missing", "--", "/nonexistent/program", cwd=home.project), 3, "not_found")
    failed = run_json(mlops, home, "ls", "--exp", "missing", schema="run-ls")["runs"]
    assert [(r["status"], r["exit_code"], r["command"]) for r in failed] == [("failed", 127, ["/nonexistent/program"])]


def test_run_ls_json(mlops, home):
    assert run_json(mlops, home, "ls", schema="run-ls") == {"runs": []}
    runs = [start_run(mlops, home, "--param", f"n={n}", exp="a" if n < 2 else "b") for n in range(3)]
    for n, run in enumerate(runs):
        run_json(mlops, home, "log", run["id"], "--metric", f"acc={0.5 + n / 10}", schema="run-log")
    listed = run_json(mlops, home, "ls", "--order-by", "metrics.acc DESC", schema="run-ls")["runs"]
    assert [r["id"] for r in listed] == [r["id"] for r in reversed(runs)]
    assert all(set(r) == RUN_FIELDS | DETAIL_FIELDS for r in listed)
    assert listed[0]["metrics"]["acc"]["value"] == pytest.approx(0.7) and listed[0]["params"] == {"n": "2"}
    found = run_json(mlops, home, "ls", "--exp", "a", "--filter", "metrics.acc > 0.55 and params.n = '1'", schema="run-ls")
    assert [r["id"] for r in found["runs"]] == [runs[1]["id"]]
    assert run_json(mlops, home, "ls", "--filter", "metrics.acc > 2", schema="run-ls") == {"runs": []}
    assert len(run_json(mlops, home, "ls", "--limit", "2", schema="run-ls")["runs"]) == 2
    # Removed runs only with --all, with deleted_at set.
    run_json(mlops, home, "rm", runs[0]["id"], schema="run-rm")
    assert runs[0]["id"] not in [r["id"] for r in run_json(mlops, home, "ls", schema="run-ls")["runs"]]
    everything = run_json(mlops, home, "ls", "--all", schema="run-ls")["runs"]
    assert [r["deleted_at"] is not None for r in everything if r["id"] == runs[0]["id"]] == [True]


def test_run_show_json(mlops, home):
    parent = start_run(mlops, home)
    child = start_run(mlops, home, "--parent", parent["id"][:8])
    assert child["parent_id"] == parent["id"]
    shown = run_json(mlops, home, "show", parent["id"], schema="run-show")
    assert shown["children"] == [child["id"]] and shown["parent_id"] is None
    assert {k: v for k, v in shown.items() if k != "children"} == {k: v for k, v in parent.items() if k != "children"}
    by_env = run_json(mlops, home, "show", schema="run-show", env={"MLOPS_RUN_ID": child["id"]})
    assert by_env["id"] == child["id"] and by_env["parent_id"] == parent["id"]
    # A removed child leaves its parent's children; a removed run still shows.
    run_json(mlops, home, "rm", child["id"], schema="run-rm")
    assert run_json(mlops, home, "show", parent["id"], schema="run-show")["children"] == []
    assert run_json(mlops, home, "show", child["id"], schema="run-show")["deleted_at"] is not None


def test_run_compare_json(mlops, home):
    one = start_run(mlops, home, "--param", "lr=0.1", "--tag", "t=x")
    two = start_run(mlops, home, "--param", "lr=0.1")
    run_json(mlops, home, "log", one["id"], "--metric", "acc=0.5", "--metric", "loss=nan", schema="run-log")
    run_json(mlops, home, "log", two["id"], "--metric", "acc=0.75", schema="run-log")
    document = run_json(mlops, home, "compare", one["id"], two["id"][:8], schema="run-compare")
    assert document["runs"] == [one["id"], two["id"]]
    assert [(r["kind"], r["key"], r["values"], r["differs"]) for r in document["rows"]] == [
        ("params", "lr", ["0.1", "0.1"], False),
        ("metrics", "acc", [0.5, 0.75], True),
        ("metrics", "loss", ["NaN", None], True),
        ("tags", "t", ["x", None], True),
    ]
    error_document(mlops("--json", "run", "compare", one["id"], cwd=home.project), 2, "usage")


@pytest.mark.parametrize("format", [[], ["--format", "json"], ["--format", "csv"]])
def test_run_metrics_json(mlops, home, format):
    run = start_run(mlops, home)
    for step, value in [(2, "0.5"), (1, "inf"), (3, "nan"), (4, "-inf")]:
        run_json(mlops, home, "log", run["id"], "--metric", f"m={value}", "--step", str(step), "--time", "1000", schema="run-log")
    document = run_json(mlops, home, "metrics", run["id"], "m", *format, schema="run-metrics")
    assert document == {"run": run["id"], "key": "m", "points": [
        {"step": 1, "timestamp": 1000, "value": "Infinity"},
        {"step": 2, "timestamp": 1000, "value": 0.5},
        {"step": 3, "timestamp": 1000, "value": "NaN"},
        {"step": 4, "timestamp": 1000, "value": "-Infinity"},
    ]}
    error_document(mlops("--json", "run", "metrics", run["id"], "nosuch", cwd=home.project), 3, "not_found")


def test_run_rm_and_restore_json(mlops, home):
    run = start_run(mlops, home)
    removed = run_json(mlops, home, "rm", run["id"], schema="run-rm")
    assert set(removed) == RUN_FIELDS | {"changed"}
    assert removed["changed"] is True and removed["deleted_at"] is not None and removed["status"] == "running"
    assert run_json(mlops, home, "rm", run["id"], schema="run-rm") == dict(removed, changed=False)
    error_document(mlops("--json", "run", "log", run["id"], "--metric", "a=1", cwd=home.project), 4, "conflict")
    # restore has the same shape (one schema for both).
    restored = run_json(mlops, home, "restore", run["id"], schema="run-rm")
    assert restored == dict(removed, deleted_at=None)
    assert run_json(mlops, home, "restore", run["id"], schema="run-rm") == dict(restored, changed=False)


def test_run_artifact_json(mlops, home):
    run = start_run(mlops, home)
    (home.project / "model").mkdir()
    (home.project / "model" / "weights.bin").write_bytes(b"\0" * 10)
    (home.project / "notes.txt").write_text("notes\n")
    added = run_json(mlops, home, "artifact", "add", run["id"], "model", "notes.txt", schema="run-artifact-add")
    assert added["run"] == run["id"]
    assert [(a["name"], a["kind"], a["size"]) for a in added["artifacts"]] == [("model", "tree", 10), ("notes.txt", "blob", 6)]
    assert added["artifacts"][1]["digest"] == "sha256:" + mlops("hash", "notes.txt", cwd=home.project).stdout.split()[0]
    assert run_json(mlops, home, "show", run["id"], schema="run-show")["artifacts"] == added["artifacts"]

    got = run_json(mlops, home, "artifact", "get", run["id"], "notes.txt", "copy.txt", schema="run-artifact-get")
    assert got == {"run": run["id"], "name": "notes.txt", "digest": added["artifacts"][1]["digest"], "out": "copy.txt"}
    assert (home.project / "copy.txt").read_text() == "notes\n"
    tree = run_json(mlops, home, "artifact", "get", run["id"][:8], "model", "out", schema="run-artifact-get")
    assert (tree["out"], tree["digest"]) == ("out", added["artifacts"][0]["digest"])
    assert (home.project / "out" / "weights.bin").read_bytes() == b"\0" * 10
    error_document(mlops("--json", "run", "artifact", "get", run["id"], "model", "out", cwd=home.project), 4, "conflict")
    error_document(mlops("--json", "run", "artifact", "get", run["id"], "nosuch", cwd=home.project), 3, "not_found")
    # Without OUT: NAME, in the working directory.
    (home.project / "sub").mkdir()
    default = run_json(mlops, home, "artifact", "get", run["id"], "notes.txt", schema="run-artifact-get", cwd=home.project / "sub")
    assert default["out"] == "notes.txt" and (home.project / "sub" / "notes.txt").is_file()


@pytest.mark.parametrize(
    "args, exit_code, code_name",
    [
        (["show", "0123456789abcdef"], 3, "not_found"),
        (["show", "xyz"], 2, "usage"),
        (["show"], 2, "usage"),  # no RUN and no MLOPS_RUN_ID
        (["ls", "--filter", "metrics.acc > 'x'"], 2, "usage"),
        (["ls", "--filter", "metrics.a > 1 or metrics.b > 1"], 2, "usage"),
        (["ls", "--order-by", "metrics.acc sideways"], 2, "usage"),
        (["ls", "--limit", "0"], 2, "usage"),
        (["ls", "--exp", "nosuch"], 3, "not_found"),
        (["start", "--exp", "e", "--param", "bad key!=1"], 2, "usage"),
        (["exec", "--exp", "e"], 2, "usage"),
        (["show", "0123456789abcdef", "--", "true"], 2, "usage"),  # only exec takes a command after --
        (["metrics", "0123456789abcdef", "m", "--format", "xml"], 2, "usage"),
    ],
)
def test_run_error_json(mlops, home, args, exit_code, code_name):
    error_document(mlops("--json", "run", *args, cwd=home.project), exit_code, code_name)


def test_run_schemas_reject_what_the_commands_never_print(mlops, home):
    run = start_run(mlops, home)
    run_json(mlops, home, "log", run["id"], "--metric", "m=1", schema="run-log")
    shown = run_json(mlops, home, "show", run["id"], schema="run-show")
    point = shown["metrics"]["m"]
    broken = [
        dict(shown, metrics={"m": dict(point, value="nan")}),  # only NaN, Infinity, -Infinity as strings
        dict(shown, metrics={"bad key!": point}),
        dict(shown, id=run["id"][:8]),
        dict(shown, status="paused"),
        dict(shown, command=[]),
        {k: v for k, v in shown.items() if k != "children"},
        dict(shown, surprise=1),
    ]
    for document in broken:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, load_schema("run-show"), cls=Draft202012Validator)
    # A new run cannot have ended; an exec'd run always has a command.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(run, end_time=1), load_schema("run-start"), cls=Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(shown, command=None, exit_code=0, end_time=1, status="finished"), load_schema("run-exec"),
                            cls=Draft202012Validator)


# Model registry ----------------------------------------------------------------------------------


def test_model_json_every_verb(mlops, home, tmp_path):
    from test_model import onnx_model

    p = home.project
    run_id = mlops("run", "start", "--exp", "e", "--param", "lr=0.1", cwd=p).stdout.strip()
    assert mlops("run", "log", run_id, "--metric", "acc=0.75", cwd=p).returncode == 0
    onnx_model(p / "out" / "model.onnx")
    assert mlops("run", "artifact", "add", run_id, "out/model.onnx", cwd=p).returncode == 0
    (p / "data").mkdir()
    (p / "data" / "a.csv").write_text("1,2\n")
    assert mlops("data", "add", "ds", "data", cwd=p).returncode == 0
    assert ok_document(mlops("--json", "model", "ls", cwd=p), "model-ls") == {"models": []}

    first = ok_document(mlops("--json", "model", "register", "churn", "--run", run_id, "--path", "model.onnx",
                              "--dataset", "ds@1", "--tag", "k=v", cwd=p), "model-register")
    assert first["created"] is True and first["signature"]["inputs"][0]["shape"] == ["batch", 2]
    (p / "notes.txt").write_text("not a model\n")
    unknown = ok_document(mlops("--json", "model", "register", "churn", "notes.txt", cwd=p), "model-register")
    assert unknown["format"] == "unknown" and unknown["signature"] is None
    again = ok_document(mlops("--json", "model", "register", "churn", "out/model.onnx", cwd=p), "model-register")
    assert again["same_as"] == 1
    deduped = ok_document(mlops("--json", "model", "register", "churn", "out/model.onnx", "--dedupe", cwd=p), "model-register")
    assert deduped["created"] is False

    listed = ok_document(mlops("--json", "model", "ls", cwd=p), "model-ls")
    assert [m["latest"]["version"] for m in listed["models"]] == [3]
    assert ok_document(mlops("--json", "model", "show", "churn@1", cwd=p), "model-show")["run_id"] == run_id
    alias = ok_document(mlops("--json", "model", "alias", "set", "churn", "production", "1", cwd=p), "model-alias-set")
    assert alias == {"model": "churn", "alias": "production", "version": 1, "changed": True, "previous": None}
    moved = ok_document(mlops("--json", "model", "alias", "set", "churn", "production", "3", cwd=p), "model-alias-set")
    assert (moved["changed"], moved["previous"]) == (True, 1)
    assert ok_document(mlops("--json", "model", "show", "churn@production", cwd=p), "model-show")["aliases"] == ["production"]
    removed_alias = ok_document(mlops("--json", "model", "alias", "rm", "churn", "production", cwd=p), "model-alias-rm")
    assert removed_alias == {"model": "churn", "alias": "production", "version": 3}
    history = ok_document(mlops("--json", "model", "alias", "history", "churn", cwd=p), "model-alias-history")
    assert [(m["from"], m["to"]) for m in history["moves"]] == [(None, 1), (1, 3), (3, None)]
    tagged = ok_document(mlops("--json", "model", "tag", "churn@2", "stage=qa", cwd=p), "model-tag")
    assert tagged["tags"] == {"stage": "qa"}
    archived = ok_document(mlops("--json", "model", "archive", "churn@2", cwd=p), "model-archive")
    assert archived["changed"] is True and archived["archived_at"] is not None
    restored = ok_document(mlops("--json", "model", "restore", "churn@2", cwd=p), "model-restore")
    assert restored["changed"] is True and restored["archived_at"] is None
    out = tmp_path / "downloaded.onnx"
    downloaded = ok_document(mlops("--json", "model", "download", "churn@1", str(out), cwd=p), "model-download")
    assert downloaded == {"ref": "churn@1", "digest": first["digest"], "out": str(out)}
    lineage = ok_document(mlops("--json", "model", "lineage", "churn@1", cwd=p), "model-lineage")
    assert lineage["run"]["params"] == {"lr": "0.1"} and lineage["datasets"][0]["removed"] is False
    assert ok_document(mlops("--json", "model", "lineage", "churn@2", cwd=p), "model-lineage")["run"] is None
    signature = ok_document(mlops("--json", "model", "gate", "churn@3", "--against", "churn@1", "--signature-compatible", cwd=p),
                            "model-gate")
    assert signature["passed"] is True and "metric" not in signature
    removed = ok_document(mlops("--json", "model", "rm", "churn@2", cwd=p), "model-rm")
    assert removed["deleted_at"] is not None
    every = ok_document(mlops("--json", "model", "versions", "churn", "--all", cwd=p), "model-versions")
    assert [v["version"] for v in every["versions"]] == [3, 2, 1] and every["model"] == "churn"

    # The gate's document on failure: exit 6, the report on stdout, the error line on stderr.
    run2 = mlops("run", "start", "--exp", "e", cwd=p).stdout.strip()
    assert mlops("run", "log", run2, "--metric", "acc=0.5", cwd=p).returncode == 0
    assert mlops("run", "artifact", "add", run2, "out/model.onnx", cwd=p).returncode == 0
    ok_document(mlops("--json", "model", "register", "churn", "--run", run2, "--path", "model.onnx", cwd=p), "model-register")
    code, stdout, stderr = mlops("--json", "model", "gate", "churn@4", "--against", "churn@1", "--metric", "acc",
                                 "--signature-compatible", cwd=p)
    assert code == 6 and stderr.startswith("mlops: error: ")
    gate = validate_document(parse_one_document(stdout), "model-gate")
    assert gate["passed"] is False and gate["metric"]["passed"] is False and gate["signature"]["compatible"] is True


@pytest.mark.parametrize("args, exit_code, code_name", [
    (["model", "show", "nobody@1"], 3, "not_found"),
    (["model", "register", "churn", "missing.onnx"], 3, "not_found"),
    (["model", "alias", "set", "churn", "latest", "1"], 2, "usage"),
    (["model", "show", "churn@0"], 2, "usage"),
])
def test_model_error_json(mlops, home, args, exit_code, code_name):
    error_document(mlops("--json", *args, cwd=home.project), exit_code, code_name)


def test_model_error_json_for_a_bad_onnx_file(mlops, home):
    (home.project / "bad.onnx").write_bytes(b"not a model")
    error_document(mlops("--json", "model", "register", "churn", "bad.onnx", cwd=home.project), 5, "integrity")


def test_model_schemas_reject_what_the_commands_never_print(mlops, home):
    (home.project / "w.bin").write_bytes(b"weights")
    document = ok_document(mlops("--json", "model", "register", "m", "w.bin", cwd=home.project), "model-register")
    for broken in (dict(document, surprise=1), {k: v for k, v in document.items() if k != "same_as"},
                   dict(document, format="pickle"), dict(document, version=0), dict(document, ref="m@latest")):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, load_schema("model-register"), cls=Draft202012Validator)
    move = {"model": "m", "alias": "v2", "version": 1, "changed": True, "previous": None}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(move, load_schema("model-alias-set"), cls=Draft202012Validator)
    gate = {"candidate": "m@2", "baseline": "m@1", "passed": True}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(gate, load_schema("model-gate"), cls=Draft202012Validator)
