"""Shared fixtures of the CLI tests: the real `mlops` binary run in temporary projects.

Environment (set by ctest; defaults for a developer running pytest by hand):
  MLOPS_BIN        the binary under test          (default: SOURCE_DIR/build/mlops)
  MLOPS_BUILD_DIR  the CMake build directory       (default: SOURCE_DIR/build)
  MLOPS_SOURCE_DIR the repository root             (default: derived from this file's location)
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from jsonschema import Draft202012Validator

SOURCE_DIR = Path(os.environ.get("MLOPS_SOURCE_DIR") or Path(__file__).resolve().parents[2])
BUILD_DIR = Path(os.environ.get("MLOPS_BUILD_DIR") or SOURCE_DIR / "build")
BIN = Path(os.environ.get("MLOPS_BIN") or BUILD_DIR / "mlops").resolve()
SCHEMA_DIR = SOURCE_DIR / "schemas" / "json"
NOBODY = 65534
IS_ROOT = os.geteuid() == 0


def pytest_configure(config):
    if not (BIN.is_file() and os.access(BIN, os.X_OK)):
        pytest.exit(f"mlops binary not found at {BIN}: build it, or set MLOPS_BIN", returncode=4)
    # A private base for tmp_path: pytest's shared /tmp/pytest-of-USER rotation deletes the
    # directories of another pytest session running at the same time (parallel CI jobs).
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="mlops-cli-tests-")
        config._mlops_basetemp = config.option.basetemp


def pytest_sessionfinish(session, exitstatus):
    basetemp = getattr(session.config, "_mlops_basetemp", None)
    if basetemp and exitstatus == 0:
        shutil.rmtree(basetemp, ignore_errors=True)  # kept after a failure, for a look


class Result(NamedTuple):
    """What a user sees from one run: unpacks as (returncode, stdout, stderr)."""

    returncode: int
    stdout: str
    stderr: str


def clean_env(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """A minimal environment: nothing MLOPS_* leaks in from the caller, no colour.

    `extra` adds variables; a value of None removes one (for example NO_COLOR)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root" if IS_ROOT else "/tmp"),
        "LC_ALL": "C.UTF-8",
        "NO_COLOR": "1",
    }
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def nobody_prefix() -> list[str]:
    """Command prefix that drops root to user nobody (chmod does not stop root from writing)."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def run_mlops(
    *args: str | os.PathLike,
    cwd: str | os.PathLike,
    env: dict[str, str | None] | None = None,
    timeout: float = 30,
    binary: Path | None = None,
    prefix: list[str] | None = None,
) -> Result:
    command = [*(prefix or []), str(binary or BIN), *map(str, args)]
    done = subprocess.run(
        command,
        cwd=cwd,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def mlops():
    """run(*args, cwd=DIR, env={...}) -> Result(returncode, stdout, stderr)."""
    return run_mlops


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh, empty project directory (no home in it or above it)."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@dataclass
class Home:
    project: Path  # the directory that holds .mlops
    dir: Path  # .mlops
    db: Path  # .mlops/mlops.db


def make_home(project: Path) -> Home:
    project.mkdir(parents=True, exist_ok=True)
    result = run_mlops("-q", "init", cwd=project)
    assert result.returncode == 0, f"mlops init failed: {result}"
    return Home(project, project / ".mlops", project / ".mlops" / "mlops.db")


@pytest.fixture
def home(project) -> Home:
    """An initialised home in a fresh project directory."""
    return make_home(project)


@pytest.fixture
def world_dir():
    """A fresh directory that user nobody can traverse and read (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="mlops-cli-"))
    path.chmod(0o755)
    yield path
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(path, ignore_errors=True)


_schemas: dict[str, dict] = {}


def load_schema(name: str) -> dict:
    if name not in _schemas:
        path = SCHEMA_DIR / f"{name}.schema.json"
        assert path.is_file(), f"missing JSON Schema {path}"
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        _schemas[name] = schema
    return _schemas[name]


def parse_one_document(stdout: str):
    """stdout must hold exactly one JSON document and nothing else (json.loads rejects extra data)."""
    assert stdout.strip(), "expected a JSON document on stdout, got nothing"
    try:
        return json.loads(stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"stdout is not exactly one JSON document ({error}):\n{stdout}") from None


def validate_document(document, name: str):
    errors = sorted(Draft202012Validator(load_schema(name)).iter_errors(document), key=str)
    assert not errors, f"document does not match schemas/json/{name}.schema.json:\n" + "\n".join(
        f"- {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors
    ) + f"\n{json.dumps(document, indent=2)}"
    return document


@pytest.fixture
def validate():
    """validate(document_or_stdout, schema_name) -> the parsed document, checked against its schema."""

    def check(document, name: str):
        if isinstance(document, str):
            document = parse_one_document(document)
        return validate_document(document, name)

    return check


def expect_error(result: Result, exit_code: int, *needles: str, after_progress: bool = False) -> str:
    """The command failed with exit_code and an `mlops: error:` message mentioning every needle; returns
    the message. It starts stderr, or with `after_progress` it follows the `mlops: ...` lines (progress,
    warnings) that a long command such as a deploy rollout prints before it fails."""
    assert result.returncode == exit_code, f"expected exit {exit_code}, got {result}"
    message = result.stderr
    if after_progress:
        lines = message.splitlines(keepends=True)
        error = next((i for i, line in enumerate(lines) if line.startswith("mlops: error: ")), len(lines))
        assert all(line.startswith("mlops: ") for line in lines[:error]), f"stray lines before the error: {result}"
        message = "".join(lines[error:])
    assert message.startswith("mlops: error: "), f"no `mlops: error:` line on stderr: {result}"
    for needle in needles:
        assert needle.lower() in message.lower(), f"the error does not mention {needle!r}: {result}"
    return message


def db_state(db: Path) -> tuple[int, list[tuple]]:
    """(user_version, rows of schema_migrations) read with Python's sqlite3."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        rows = connection.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()
    connection.close()
    return version, rows


def latest_version() -> int:
    """The highest migration number in schemas/sql/ (what the binary embeds)."""
    numbers = [int(p.name.split("_", 1)[0]) for p in (SOURCE_DIR / "schemas" / "sql").glob("[0-9]*_*.sql")]
    assert numbers, "no migrations in schemas/sql/"
    return max(numbers)


def snapshot(directory: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under directory with its mode and content, to prove that nothing changed."""
    state = {}
    for path in sorted(directory.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        state[str(path.relative_to(directory))] = (stat.S_IMODE(info.st_mode), content)
    return state


def binary_nobody_can_run(world_dir: Path) -> Path:
    """The binary under test, or a copy in `world_dir` when user nobody cannot reach the original."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run as nobody")
    if subprocess.run([*nobody_prefix(), "test", "-x", str(BIN)]).returncode == 0:
        return BIN
    binary = world_dir / "bin" / "mlops"
    binary.parent.mkdir(exist_ok=True)
    shutil.copy2(BIN, binary)
    binary.parent.chmod(0o755)
    binary.chmod(0o755)
    return binary
