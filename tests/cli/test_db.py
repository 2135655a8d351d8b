"""`mlops db check | migrate | status`: healthy homes, damaged ones, and databases from a newer mlops."""

import json
import os
import sqlite3

import pytest

from conftest import db_state, expect_error, latest_version, parse_one_document, snapshot, validate_document

PAGE = 4096


def add_filler(db, rows=2000):
    """Grow the database to a few hundred pages, checkpointed into the main file."""
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE filler(id INTEGER PRIMARY KEY, body TEXT)")
    connection.executemany("INSERT INTO filler(body) VALUES (?)", [("x" * 200 + str(i),) for i in range(rows)])
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert connection.execute("PRAGMA page_size").fetchone()[0] == PAGE
    connection.close()
    assert not os.path.exists(f"{db}-wal") or os.path.getsize(f"{db}-wal") == 0
    assert db.stat().st_size > 50 * PAGE


def set_pragma(db, pragma):
    connection = sqlite3.connect(db)
    connection.execute(f"PRAGMA {pragma}")
    connection.commit()
    connection.close()


def check_report(mlops, home, exit_code):
    """Run `db check --json`; it prints its report (never an error document) and exits exit_code."""
    code, out, err = mlops("--json", "db", "check", cwd=home.project)
    assert code == exit_code, f"expected exit {exit_code}, got {code}: {err}\n{out}"
    return validate_document(parse_one_document(out), "db-check")


def test_check_healthy_home(mlops, home):
    code, out, err = mlops("db", "check", cwd=home.project)
    assert code == 0, err
    assert "status:          healthy" in out
    assert f"version {latest_version()} of {latest_version()}" in out
    assert "problem" not in out
    report = check_report(mlops, home, 0)
    assert report["healthy"] is True and report["objects"] == 0 and report["stale_tmp_files"] == 0


def test_check_healthy_with_data_and_objects(mlops, home):
    add_filler(home.db)
    fan_out = home.dir / "objects" / "sha256" / "ab"
    fan_out.mkdir(parents=True)
    (fan_out / ("c" * 62)).write_bytes(b"an object")
    report = check_report(mlops, home, 0)
    assert report["objects"] == 1
    assert report["database_bytes"] == home.db.stat().st_size


def test_check_counts_stale_tmp_files(mlops, home):
    (home.dir / "tmp" / "partial-write").write_bytes(b"half")
    report = check_report(mlops, home, 0)
    assert report["stale_tmp_files"] == 1


def test_check_reports_a_corrupted_page(mlops, home):
    add_filler(home.db)
    pages = home.db.stat().st_size // PAGE
    with open(home.db, "r+b") as db:
        # A page in the second half of the file: a b-tree page of the filler table, which was
        # created after every table of the schema.
        db.seek((pages * 2 // 3) * PAGE + 2000)
        db.write(b"\xff" * 512)
    code, out, err = mlops("db", "check", cwd=home.project)
    assert code == 5, f"a corrupted page was not reported: {code}\n{out}\n{err}"
    assert "problem: SQLite integrity check" in out
    assert "problem(s)" in err
    report = check_report(mlops, home, 5)
    assert report["healthy"] is False
    assert any("integrity" in problem for problem in report["problems"]), report["problems"]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_check_and_status_refuse_a_damaged_file(mlops, home, damage):
    add_filler(home.db)
    if damage == "truncated":
        os.truncate(home.db, 10 * PAGE)
    else:
        home.db.write_bytes(os.urandom(5000))
    for command in (["db", "check"], ["db", "status"], ["db", "migrate"]):
        result = mlops(*command, cwd=home.project)
        expect_error(result, 5, "damaged", "db check", "backup")
    code, out, _ = mlops("--json", "db", "check", cwd=home.project)
    assert code == 5
    document = parse_one_document(out)
    # Either the report (healthy=false) or an integrity error, never a success.
    if "error" in document:
        assert validate_document(document, "error")["error"]["code"] == "integrity"
    else:
        assert validate_document(document, "db-check")["healthy"] is False


@pytest.mark.parametrize("stray", ["objects/sha256/stray.txt", "objects/sha256/ab/short", "objects/sha256/AB/" + "c" * 62])
def test_check_reports_strays_in_the_object_store(mlops, home, stray):
    path = home.dir / stray
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not an object")
    code, out, err = mlops("db", "check", cwd=home.project)
    assert code == 5, f"{stray} was not reported:\n{out}"
    reported = path if path.parent.name != "AB" else path.parent
    assert str(reported) in out, out
    report = check_report(mlops, home, 5)
    assert report["objects"] == 0
    assert len(report["problems"]) == 1 and str(reported) in report["problems"][0]


@pytest.mark.parametrize("content", ['{"format": 1, ', "[]", ""])
def test_check_reports_a_malformed_config(mlops, home, content):
    (home.dir / "config.json").write_text(content)
    code, out, _ = mlops("db", "check", cwd=home.project)
    assert code == 5, out
    assert "config.json" in out
    report = check_report(mlops, home, 5)
    assert any("config.json" in problem for problem in report["problems"])


def test_check_reports_a_missing_config(mlops, home):
    (home.dir / "config.json").unlink()
    report = check_report(mlops, home, 5)
    assert any("config.json" in problem for problem in report["problems"]), report


def test_check_reports_a_missing_directory_and_init_repairs_it(mlops, home):
    (home.dir / "objects").rmdir()
    report = check_report(mlops, home, 5)
    assert any("objects" in p and "mlops init" in p for p in report["problems"]), report
    assert mlops("init", cwd=home.project).returncode == 0
    check_report(mlops, home, 0)


def test_check_reports_a_non_wal_journal_and_migrate_fixes_it(mlops, home):
    set_pragma(home.db, "journal_mode=DELETE")
    report = check_report(mlops, home, 5)
    assert report["journal_mode"] == "delete"
    assert any("wal" in p and "db migrate" in p for p in report["problems"]), report
    assert mlops("db", "migrate", cwd=home.project).returncode == 0
    assert check_report(mlops, home, 0)["journal_mode"] == "wal"


def test_check_reports_a_migration_recorded_under_another_name(mlops, home):
    connection = sqlite3.connect(home.db)
    connection.execute("UPDATE schema_migrations SET name = 'from_another_build' WHERE version = 1")
    connection.commit()
    connection.close()
    report = check_report(mlops, home, 5)
    assert any("from_another_build" in p for p in report["problems"]), report


def test_migrate_on_a_current_database_is_a_no_op(mlops, home):
    before = db_state(home.db)
    code, out, err = mlops("db", "migrate", cwd=home.project)
    assert code == 0, err
    assert out == f"Database is current (schema version {latest_version()})\n"
    assert db_state(home.db) == before


def test_migrate_applies_pending_migrations_once(mlops, home):
    home.db.write_bytes(b"")  # a database with no schema yet (version 0)
    code, out, err = mlops("db", "migrate", cwd=home.project)
    assert code == 0, err
    assert f"from schema version 0 to {latest_version()}" in out
    version, rows = db_state(home.db)
    assert version == latest_version()
    assert [row[0] for row in rows] == list(range(1, latest_version() + 1))
    code, out, _ = mlops("--json", "db", "migrate", cwd=home.project)
    assert json.loads(out)["applied"] == []


def test_status_shows_home_database_and_schema(mlops, home):
    code, out, err = mlops("db", "status", cwd=home.project)
    assert code == 0, err
    assert out == (
        f"home:     {home.dir}\n"
        f"database: {home.db}\n"
        f"schema:   version {latest_version()}\n"
    )


@pytest.mark.parametrize("command", [["db", "status"], ["db", "migrate"], ["init"], ["db", "check"]])
def test_newer_database_is_refused_and_left_alone(mlops, home, command):
    set_pragma(home.db, "user_version = 999")
    before = snapshot(home.dir)
    result = mlops(*command, cwd=home.project)
    message = expect_error(result, 4, "999", "upgrade mlops")
    assert str(latest_version()) in message
    after = snapshot(home.dir)
    # A read-only SQLite connection may leave its shared-memory index and an empty WAL behind;
    # neither holds data. Everything else must be byte-identical.
    assert after.pop("mlops.db-wal", (0, b""))[1] == b"", "refusing a newer database wrote to the WAL"
    after.pop("mlops.db-shm", None)
    assert after == before, "refusing a newer database must not touch the home"
    assert db_state(home.db)[0] == 999


def test_newer_database_error_json(mlops, home):
    set_pragma(home.db, "user_version = 999")
    code, out, _ = mlops("--json", "db", "migrate", cwd=home.project)
    assert code == 4
    document = validate_document(parse_one_document(out), "error")
    assert document["error"]["code"] == "conflict"
    assert "upgrade mlops" in document["error"]["message"]
