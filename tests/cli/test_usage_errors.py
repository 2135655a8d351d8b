"""Command-line usage: unknown commands and options (exit 2), help, version."""

import re

import pytest

from conftest import SOURCE_DIR, expect_error

NOUNS = ["init", "hash", "artifact", "data", "exp", "run", "model", "serve", "deploy", "db", "completion", "version"]


def project_version():
    match = re.search(r"project\(mlops\s+VERSION\s+([0-9.]+)", (SOURCE_DIR / "CMakeLists.txt").read_text())
    assert match, "no VERSION in the top-level CMakeLists.txt"
    return match.group(1)


def test_unknown_command_exits_2_naming_it(mlops, project):
    result = mlops("bogus", cwd=project)
    expect_error(result, 2, "unknown command", "`mlops bogus`", "mlops --help")
    assert result.stdout == ""


def test_unknown_subcommand_exits_2_naming_it(mlops, project):
    result = mlops("db", "bogus", cwd=project)
    expect_error(result, 2, "unknown command", "`mlops db bogus`", "mlops db --help")


def test_noun_without_verb_exits_2(mlops, project):
    expect_error(mlops("db", cwd=project), 2, "mlops db --help")


@pytest.mark.parametrize(
    "args, named",
    [
        (["--bogus"], "--bogus"),
        (["db", "status", "--bogus"], "--bogus"),
        (["version", "--frobnicate"], "--frobnicate"),
        (["-x", "db", "status"], "-x"),
    ],
)
def test_unknown_option_exits_2_naming_it(mlops, project, args, named):
    result = mlops(*args, cwd=project)
    expect_error(result, 2, named)
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["--bogus"], ["db", "--bogus"]])
def test_unknown_option_is_not_called_a_command(mlops, project, args):
    # `mlops --bogus` is a mistyped option; calling it an "unknown command" sends the user the wrong way.
    message = expect_error(mlops(*args, cwd=project), 2, "--bogus")
    assert "unknown command" not in message, message


def test_no_command_exits_2(mlops, project):
    result = mlops(cwd=project)
    expect_error(result, 2, "mlops --help")


def test_extra_positional_exits_2(mlops, project):
    result = mlops("init", "a", "b", cwd=project)
    expect_error(result, 2, "b")
    assert not (project / "a").exists(), "a usage error must not do part of the work"
    assert not (project / ".mlops").exists()


def test_option_missing_its_value_exits_2(mlops, project):
    expect_error(mlops("--home", cwd=project), 2, "--home")


def test_completion_rejects_an_unknown_shell(mlops, project):
    result = mlops("completion", "tcsh", cwd=project)
    expect_error(result, 2, "tcsh", "bash", "zsh", "fish")
    assert result.stdout == ""


def test_help_lists_every_noun_and_exits_0(mlops, project):
    code, out, err = mlops("--help", cwd=project)
    assert code == 0, err
    assert "Usage: mlops" in out
    listed = re.findall(r"^  ([a-z]+)\s{2,}", out, flags=re.MULTILINE)
    assert sorted(listed) == sorted(NOUNS), f"--help lists {listed}"
    for option in ("--home", "--json", "--quiet", "--verbose", "--no-color", "--version"):
        assert option in out
    assert "manpage" not in out, "the hidden manpage command leaks into --help"


@pytest.mark.parametrize("args", [["db", "--help"], ["db", "check", "--help"], ["init", "-h"], ["completion", "--help"]])
def test_command_help_exits_0(mlops, project, args):
    code, out, err = mlops(*args, cwd=project)
    assert code == 0, err
    assert f"Usage: mlops {' '.join(a for a in args if not a.startswith('-'))}" in out


def test_db_help_lists_its_verbs(mlops, project):
    out = mlops("db", "--help", cwd=project).stdout
    for verb in ("check", "migrate", "status"):
        assert re.search(rf"^  {verb}\s", out, flags=re.MULTILINE), f"`mlops db --help` lacks {verb}"


def test_version_option_prints_the_version(mlops, project):
    code, out, err = mlops("--version", cwd=project)
    assert code == 0, err
    assert out == f"mlops {project_version()}\n"


def test_version_command_prints_mlops_and_libraries(mlops, project):
    code, out, err = mlops("version", cwd=project)
    assert code == 0, err
    assert re.search(rf"^mlops:\s+{re.escape(project_version())}$", out, flags=re.MULTILINE), out
    for library in ("sqlite", "openssl", "libgit2", "libcurl", "cuda"):
        assert re.search(rf"^{library}:\s+\S", out, flags=re.MULTILINE), f"`mlops version` lacks {library}"


def test_deploy_without_verb_is_a_usage_error(mlops, project):
    result = mlops("deploy", cwd=project)
    assert result.returncode == 2, result.stderr
    assert "mlops deploy --help" in result.stderr
