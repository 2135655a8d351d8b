"""`mlops init [DIR]`: creates the home, says where, and is idempotent."""

import json
import sqlite3

from conftest import db_state, latest_version, snapshot, validate_document


def test_init_creates_the_home_layout_and_says_where(mlops, project):
    code, out, err = mlops("init", cwd=project)
    assert code == 0, err
    home = project / ".mlops"
    assert out == f"Initialized mlops home in {home}\n"
    assert err == ""
    for name in ("objects", "tmp", "workers"):
        assert (home / name).is_dir(), f".mlops/{name}/ was not created"
    config = json.loads((home / "config.json").read_text())
    assert isinstance(config, dict) and config.get("format") == 1, config
    validate_document(config, "config")
    assert (home / "mlops.db").is_file()


def test_init_creates_a_wal_database_at_the_latest_schema(mlops, project):
    assert mlops("init", cwd=project).returncode == 0
    db = project / ".mlops" / "mlops.db"
    header = db.read_bytes()[:100]
    assert header.startswith(b"SQLite format 3\x00")
    # Bytes 18 and 19 of the header are 2 in WAL mode (1 for the rollback journal).
    assert header[18:20] == b"\x02\x02", "the database is not in WAL mode"
    version, rows = db_state(db)
    assert version == latest_version()
    assert [row[0] for row in rows] == list(range(1, latest_version() + 1))
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()


def test_second_init_is_idempotent_and_keeps_everything(mlops, project):
    assert mlops("init", cwd=project).returncode == 0
    home = project / ".mlops"
    # A user edit of config.json must survive a second init.
    config = json.loads((home / "config.json").read_text())
    config["remotes"] = {"origin": "file:///srv/mlops"}
    (home / "config.json").write_text(json.dumps(config))
    before_state = db_state(home / "mlops.db")

    code, out, err = mlops("init", cwd=project)
    assert code == 0, err
    assert "already exists" in out and str(home) in out, out
    assert "Initialized" not in out
    assert db_state(home / "mlops.db") == before_state, "second init changed the schema records"
    assert json.loads((home / "config.json").read_text()) == config, "second init rewrote config.json"


def test_second_init_reports_created_false_in_json(mlops, project, validate):
    first = validate(mlops("--json", "init", cwd=project).stdout, "init")
    second = validate(mlops("--json", "init", cwd=project).stdout, "init")
    assert first["created"] is True
    assert second["created"] is False
    assert first["home"] == second["home"] == str(project / ".mlops")
    assert first["schema_version"] == second["schema_version"] == latest_version()


def test_init_dir_creates_missing_directories(mlops, project):
    target = project / "a" / "b" / "c"
    code, out, err = mlops("init", "a/b/c", cwd=project)
    assert code == 0, err
    assert (target / ".mlops" / "mlops.db").is_file()
    assert out == f"Initialized mlops home in {target / '.mlops'}\n", "the message must give the absolute path"
    assert not (project / ".mlops").exists(), "init DIR also created a home in the working directory"


def test_init_repairs_a_home_with_missing_directories(mlops, home):
    (home.dir / "workers").rmdir()
    before = db_state(home.db)
    code, out, err = mlops("init", cwd=home.project)
    assert code == 0, err
    assert (home.dir / "workers").is_dir(), "second init did not recreate workers/"
    assert db_state(home.db) == before


def test_home_option_init_creates_the_home_there(mlops, project):
    other = project / "elsewhere"
    code, out, err = mlops("--home", other, "init", cwd=project)
    assert code == 0, err
    assert (other / ".mlops" / "mlops.db").is_file()
    assert not (project / ".mlops").exists()
    assert str(other / ".mlops") in out


def test_home_option_naming_the_dot_mlops_dir_is_not_nested(mlops, project):
    code, _, err = mlops("--home", project / "p" / ".mlops", "init", cwd=project)
    assert code == 0, err
    assert (project / "p" / ".mlops" / "mlops.db").is_file()
    assert not (project / "p" / ".mlops" / ".mlops").exists()


def test_mlops_home_env_init(mlops, project):
    code, _, err = mlops("init", cwd=project, env={"MLOPS_HOME": str(project / "viaenv")})
    assert code == 0, err
    assert (project / "viaenv" / ".mlops" / "mlops.db").is_file()
    assert not (project / ".mlops").exists()


def test_quiet_suppresses_the_initialized_line(mlops, project):
    code, out, err = mlops("-q", "init", cwd=project)
    assert code == 0, err
    assert out == "" and err == ""
    assert (project / ".mlops" / "mlops.db").is_file()
    code, out, err = mlops("--quiet", "init", cwd=project)
    assert (code, out, err) == (0, "", "")


def test_init_twice_leaves_the_files_byte_identical(mlops, home):
    before = snapshot(home.dir)
    assert mlops("init", cwd=home.project).returncode == 0
    after = snapshot(home.dir)
    assert after == before
