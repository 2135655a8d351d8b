"""Many mlops processes on one home at once (parallel CI jobs): one schema, no "database is locked"."""

import json
import os
import sqlite3
import subprocess

from conftest import BIN, clean_env, db_state, latest_version, make_home

PROCESSES = 16
GATE = 'read _ < "$1"; shift; exec "$@"'


def run_at_once(commands, cwd):
    """Start every command, hold them at a gate (one line each from a FIFO), release them together.

    Returns a list of (args, returncode, stdout, stderr)."""
    fifo = cwd.parent / f"gate-{os.getpid()}-{id(commands)}"
    os.mkfifo(fifo)
    gate = os.open(fifo, os.O_RDWR)  # never blocks; children opening for reading do not block either
    try:
        processes = [
            (
                args,
                subprocess.Popen(
                    ["sh", "-c", GATE, "sh", str(fifo), str(BIN), *args],
                    cwd=cwd,
                    env=clean_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for args in commands
        ]
        os.write(gate, b"go\n" * len(commands))  # `read` takes exactly one line per process
        results = []
        for args, process in processes:
            out, err = process.communicate(timeout=60)
            results.append((args, process.returncode, out, err))
    finally:
        os.close(gate)
        fifo.unlink()
    return results


def assert_one_schema(db):
    version, rows = db_state(db)
    assert [row[0] for row in rows] == list(range(1, latest_version() + 1)), f"schema_migrations: {rows}"
    assert version == latest_version()


def assert_never_locked(results):
    for args, code, out, err in results:
        assert "locked" not in err.lower() and "busy" not in err.lower(), f"mlops {' '.join(args)}: {err}"


def mixed_commands():
    return [["--json", "init"] if i % 2 == 0 else ["--json", "db", "migrate"] for i in range(PROCESSES)]


def test_parallel_init_on_a_fresh_directory(project):
    results = run_at_once([["--json", "init"]] * PROCESSES, project)
    assert_never_locked(results)
    for args, code, out, err in results:
        assert code == 0, f"mlops {' '.join(args)} exited {code}: {err}"
    created = [json.loads(out)["created"] for _, _, out, _ in results]
    assert created.count(True) == 1, f"created flags: {created}"
    assert_one_schema(project / ".mlops" / "mlops.db")


def fresh_directory_rounds(tmp_path, rounds=3):
    """Run the init/migrate mix on `rounds` fresh directories; yield (round, project, results)."""
    for round_number in range(rounds):
        project = tmp_path / f"round{round_number}"
        project.mkdir()
        yield round_number, project, run_at_once(mixed_commands(), project)


def test_parallel_init_and_migrate_on_a_fresh_directory(tmp_path):
    # `db migrate` that runs before any init has created .mlops/ rightly finds no home (exit 3).
    # Once .mlops/ exists, no command may fail on a half-created home.
    for round_number, project, results in fresh_directory_rounds(tmp_path):
        assert_never_locked(results)
        for args, code, out, err in results:
            if args[1] == "init":
                assert code == 0, f"round {round_number}: mlops init exited {code}: {err}"
            else:
                assert code == 0 or (code == 3 and "no mlops home" in err), (
                    f"round {round_number}: mlops db migrate exited {code} with: {err}"
                )
        assert_one_schema(project / ".mlops" / "mlops.db")


def test_exactly_one_parallel_init_reports_created(tmp_path):
    # The home did not exist before: exactly one of the inits created it, whoever applied the
    # migrations (a concurrent `db migrate` may have).
    for round_number, project, results in fresh_directory_rounds(tmp_path):
        flags = [json.loads(out)["created"] for args, code, out, err in results if args[1] == "init" and code == 0]
        assert len(flags) == PROCESSES // 2, f"round {round_number}: not every init succeeded"
        assert flags.count(True) == 1, f"round {round_number}: {flags.count(True)} inits reported created=true"


def test_parallel_init_and_migrate_apply_a_pending_migration_once(project):
    home = make_home(project)
    home.db.write_bytes(b"")  # the home's database has no schema yet: every migration is pending
    results = run_at_once(mixed_commands(), project)
    assert_never_locked(results)
    appliers = 0
    for args, code, out, err in results:
        assert code == 0, f"mlops {' '.join(args)} exited {code}: {err}"
        document = json.loads(out)
        appliers += bool(document["applied"])  # init and db migrate both report what they applied
    assert appliers == 1, f"{appliers} processes applied the migrations"
    assert_one_schema(home.db)


def test_parallel_init_and_migrate_on_an_existing_home(project):
    home = make_home(project)
    before = db_state(home.db)
    results = run_at_once(mixed_commands() + [["--json", "db", "status"]] * 4, project)
    assert_never_locked(results)
    for args, code, out, err in results:
        assert code == 0, f"mlops {' '.join(args)} exited {code}: {err}"
        document = json.loads(out)
        assert document.get("created", False) is False
        assert document.get("applied", []) == []
    assert db_state(home.db) == before


def test_parallel_data_add_numbers_versions_distinctly(tmp_path):
    """16 CI jobs snapshot 16 different directories into one dataset at once: 16 versions, 1..16."""
    home = make_home(tmp_path / "project").project
    for i in range(PROCESSES):
        data = home / f"data{i}"
        data.mkdir()
        (data / "shared.txt").write_text("the same in every job\n")
        (data / "own.txt").write_text(f"job {i}\n")
    results = run_at_once([["--json", "data", "add", "ds", f"data{i}"] for i in range(PROCESSES)], cwd=home)
    assert_never_locked(results)
    versions = {}
    for args, code, out, err in results:
        assert code == 0, err
        document = json.loads(out)
        assert document["created"] is True
        versions[document["version"]] = args[-1]
    assert sorted(versions) == list(range(1, PROCESSES + 1))
    log = subprocess.run([str(BIN), "--json", "data", "log", "ds"], cwd=home, env=clean_env(),
                         capture_output=True, text=True, check=True)
    recorded = {v["version"]: v["path"] for v in json.loads(log.stdout)["versions"]}
    assert recorded == versions  # each job's version is the directory that job added


def test_parallel_run_log_files_into_one_run_lose_no_point(tmp_path):
    """16 training jobs stream 5,000 points each of one metric into the same run at once (the harder
    case: one run's rows and one latest point contended): every point lands once, and the latest point
    is the highest step, whichever job committed last."""
    project = make_home(tmp_path / "project").project
    started = subprocess.run([str(BIN), "run", "start", "--exp", "sweep"], cwd=project, env=clean_env(),
                             capture_output=True, text=True, check=True)
    run_id = started.stdout.strip()
    points = 5_000
    for i in range(PROCESSES):
        steps = range(i * points, (i + 1) * points)
        lines = [json.dumps({"key": "loss", "value": step / 1000, "step": step, "timestamp": step}) for step in steps]
        # One line in the other shape, with a param every job gives the same value and a tag they overwrite.
        lines[10] = json.dumps({"metrics": {"loss": steps[10] / 1000}, "step": steps[10], "timestamp": steps[10],
                                "params": {"seed": "42"}, "tags": {"writer": f"job{i}"}})
        (project / f"job{i}.jsonl").write_text("\n".join(lines) + "\n")
    results = run_at_once([["--json", "run", "log", run_id, "--file", f"job{i}.jsonl"] for i in range(PROCESSES)], project)
    assert_never_locked(results)
    for args, code, out, err in results:
        assert code == 0, f"mlops {' '.join(args)} exited {code}: {err}"
        assert json.loads(out) == {"run": run_id, "metrics": points, "params": 1, "tags": 1}
    db = project / ".mlops" / "mlops.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        total = connection.execute("SELECT count(*) FROM run_metrics").fetchone()[0]
        distinct = connection.execute("SELECT count(DISTINCT step) FROM run_metrics").fetchone()[0]
        wrong = connection.execute("SELECT count(*) FROM run_metrics WHERE key != 'loss' OR timestamp != step "
                                   "OR abs(value - step / 1000.0) > 1e-9").fetchone()[0]
    connection.close()
    assert total == PROCESSES * points == 80_000
    assert distinct == total and wrong == 0  # no point lost, none written twice, none mixed up
    shown = subprocess.run([str(BIN), "--json", "run", "show", run_id], cwd=project, env=clean_env(), capture_output=True,
                           text=True, check=True)
    document = json.loads(shown.stdout)
    last = PROCESSES * points - 1
    assert document["metrics"] == {"loss": {"step": last, "timestamp": last, "value": last / 1000}}
    assert document["params"] == {"seed": "42"}
    assert document["tags"]["writer"] in {f"job{i}" for i in range(PROCESSES)}


def test_parallel_model_registrations_get_distinct_versions(tmp_path):
    """16 CI jobs register 16 different files as one model at once: versions 1..16, each its file."""
    home = make_home(tmp_path / "project").project
    for i in range(PROCESSES):
        (home / f"weights-{i}.bin").write_bytes(f"weights of job {i}\n".encode())
    results = run_at_once([["--json", "model", "register", "m", f"weights-{i}.bin"] for i in range(PROCESSES)], cwd=home)
    assert_never_locked(results)
    versions = {}
    for args, code, out, err in results:
        assert code == 0, err
        versions[json.loads(out)["version"]] = args[-1]
    assert sorted(versions) == list(range(1, PROCESSES + 1))
    listed = subprocess.run([str(BIN), "--json", "model", "versions", "m"], cwd=home, env=clean_env(),
                            capture_output=True, text=True, check=True)
    assert {v["version"]: v["file_name"] for v in json.loads(listed.stdout)["versions"]} == versions
