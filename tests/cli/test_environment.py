"""Settings from the environment and paths as people type them: bad values are usage errors
that never crash mlops or hide the real mistake."""

import json

from conftest import expect_error


def test_bad_log_level_is_a_usage_error(mlops, home):
    result = mlops("db", "status", cwd=home.project, env={"MLOPS_LOG": "loud"})
    expect_error(result, 2, "MLOPS_LOG=loud", "trace, debug")


def test_bad_log_level_with_a_usage_error_still_reports_cleanly(mlops, home):
    # Reporting the usage error must not trip over the bad setting (it used to abort).
    result = mlops("bogus", cwd=home.project, env={"MLOPS_LOG": "loud"})
    expect_error(result, 2, "unknown command")


def test_log_level_flags_win_over_the_environment(mlops, home):
    code, out, err = mlops("-q", "db", "status", cwd=home.project, env={"MLOPS_LOG": "debug"})
    assert code == 0 and err == ""
    code, out, err = mlops("-vv", "db", "status", cwd=home.project, env={"MLOPS_LOG": "off"})
    assert code == 0 and "mlops: debug: home" in err


def test_busy_timeout_accepts_milliseconds_or_a_unit(mlops, home):
    for value in ["5000", "5s"]:
        code, out, err = mlops("db", "status", cwd=home.project, env={"MLOPS_BUSY_TIMEOUT_MS": value})
        assert code == 0, err
    expect_error(mlops("db", "status", cwd=home.project, env={"MLOPS_BUSY_TIMEOUT_MS": "soon"}),
                 2, "MLOPS_BUSY_TIMEOUT_MS=soon")


def test_home_with_a_trailing_slash(mlops, home, tmp_path):
    # Tab completion adds the slash; it must name the same home and never nest a new one.
    for form in [f"{home.project}/", f"{home.dir}/"]:
        code, out, err = mlops("--home", form, "--json", "db", "status", cwd=tmp_path)
        assert code == 0, err
        assert json.loads(out)["home"] == str(home.dir)
    code, out, err = mlops("--home", f"{home.dir}/", "--json", "init", cwd=tmp_path)
    assert code == 0, err
    assert json.loads(out)["home"] == str(home.dir)
    assert not (home.dir / ".mlops").exists()
