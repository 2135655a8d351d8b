"""Which home a command uses: nearest .mlops/ upward, --home, MLOPS_HOME; and what happens without one."""

import json

import pytest

from conftest import expect_error, make_home


def status_home(mlops, cwd, *options, env=None):
    code, out, err = mlops(*options, "--json", "db", "status", cwd=cwd, env=env)
    assert code == 0, err
    return json.loads(out)["home"]


def test_commands_work_from_a_subdirectory(mlops, home):
    deep = home.project / "src" / "models" / "v1"
    deep.mkdir(parents=True)
    code, out, err = mlops("db", "status", cwd=deep)
    assert code == 0, err
    assert f"home:     {home.dir}\n" in out
    assert status_home(mlops, deep) == str(home.dir)


def test_nearest_home_upward_wins(mlops, home):
    inner = make_home(home.project / "inner")
    cwd = inner.project / "sub"
    cwd.mkdir()
    assert status_home(mlops, cwd) == str(inner.dir)
    assert status_home(mlops, home.project / "inner" / "..") == str(home.dir)


@pytest.mark.parametrize("form", ["project", "dot-mlops"])
def test_home_option_from_anywhere(mlops, home, tmp_path, form):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = home.project if form == "project" else home.dir
    assert status_home(mlops, elsewhere, "--home", str(target)) == str(home.dir)
    # Global options may also follow the command.
    code, out, err = mlops("db", "status", "--home", target, cwd=elsewhere)
    assert code == 0, err
    assert str(home.dir) in out


@pytest.mark.parametrize("form", ["project", "dot-mlops"])
def test_mlops_home_env_from_anywhere(mlops, home, tmp_path, form):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = home.project if form == "project" else home.dir
    assert status_home(mlops, elsewhere, env={"MLOPS_HOME": str(target)}) == str(home.dir)


def test_explicit_home_beats_discovery_and_option_beats_env(mlops, home, tmp_path):
    other = make_home(tmp_path / "other")
    # MLOPS_HOME wins over the home found upward from the working directory...
    assert status_home(mlops, home.project, env={"MLOPS_HOME": str(other.project)}) == str(other.dir)
    # ...and --home wins over MLOPS_HOME.
    assert (
        status_home(mlops, home.project, "--home", str(home.project), env={"MLOPS_HOME": str(other.project)})
        == str(home.dir)
    )


def test_relative_home_option(mlops, home):
    assert status_home(mlops, home.project.parent, "--home", home.project.name) == str(home.dir)


def ancestors_have_home(path):
    return any((p / ".mlops").is_dir() for p in [path, *path.parents])


@pytest.mark.parametrize("command", [["db", "status"], ["db", "check"], ["db", "migrate"]])
def test_outside_any_home_says_to_run_init(mlops, project, command):
    if ancestors_have_home(project):
        pytest.skip(f"a .mlops directory exists above {project}")
    result = mlops(*command, cwd=project)
    message = expect_error(result, 3, "no mlops home", "mlops init")
    assert str(project) in message, "the message should say where it looked"
    assert result.stdout == ""
    assert not (project / ".mlops").exists(), "a read command created a home"


def test_home_option_pointing_at_a_non_home(mlops, project):
    plain = project / "plain"
    plain.mkdir()
    result = mlops("--home", plain, "db", "status", cwd=project)
    expect_error(result, 3, "not an mlops home", "mlops init")
    assert str(plain) in result.stderr
    assert not (plain / ".mlops").exists()


def test_home_option_pointing_at_a_missing_directory(mlops, project):
    result = mlops("--home", project / "missing", "db", "status", cwd=project)
    expect_error(result, 3, "not an mlops home")
    assert not (project / "missing").exists()


def test_mlops_home_env_pointing_at_a_non_home_is_not_ignored(mlops, home, tmp_path):
    # Even inside a project with a home, a wrong MLOPS_HOME is an error, not silently ignored.
    plain = tmp_path / "plain"
    plain.mkdir()
    result = mlops("db", "status", cwd=home.project, env={"MLOPS_HOME": str(plain)})
    expect_error(result, 3, "not an mlops home")
