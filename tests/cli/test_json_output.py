"""--json: exactly one document on stdout, valid against its schema in schemas/json/, on success and on error."""

import json

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from conftest import SCHEMA_DIR, latest_version, load_schema, parse_one_document, validate_document

SCHEMAS = ["error", "init", "db-check", "db-migrate", "db-status", "version", "completion", "hash", "hash-check", "artifact-add", "artifact-get", "artifact-ls", "artifact-show", "artifact-verify", "artifact-gc"]


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


@pytest.mark.parametrize("args", [["--json", "data", "ls"], ["data", "ls", "--json"], ["data", "--json"]])
def test_planned_noun_error_json(mlops, project, args):
    # Global options may follow the command (`mlops db check --json`), for planned nouns too.
    document = error_document(mlops(*args, cwd=project), 1, "failure")
    assert "not available" in document["error"]["message"]


def test_error_document_is_the_only_output(mlops, project):
    code, out, _ = mlops("--json", "bogus", cwd=project)
    assert code == 2
    document = json.loads(out)  # raises on anything after the document
    assert list(document) == ["error"]
    assert out.startswith("{") and out.endswith("}\n")
