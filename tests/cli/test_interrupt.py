"""Waiting for another process's lock: SIGINT/SIGTERM end the wait with exit 8; a busy timeout gives a
clear error; a short lock is waited out."""

import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import BIN, clean_env


@pytest.fixture
def locked_home(home):
    """The home's database with an exclusive lock held by another connection (like a stuck writer)."""
    connection = sqlite3.connect(home.db, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA locking_mode=EXCLUSIVE")
    connection.execute("BEGIN EXCLUSIVE")
    connection.execute("CREATE TABLE IF NOT EXISTS held(x)")
    connection.execute("INSERT INTO held VALUES (1)")
    home.lock = connection
    yield home
    connection.close()  # closing twice is harmless


def start(args, cwd, env=None):
    return subprocess.Popen(
        [str(BIN), *args],
        cwd=cwd,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_waiting_for_a_lock_exits_8(locked_home, signo):
    process = start(["db", "status"], locked_home.project)
    time.sleep(0.5)
    assert process.poll() is None, "db status did not wait for the lock: " + process.communicate()[1]
    sent = time.monotonic()
    process.send_signal(signo)
    try:
        out, err = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"mlops did not end within 5 s of {signo.name}")
    elapsed = time.monotonic() - sent
    assert process.returncode == 8, f"expected exit 8 after {signo.name}, got {process.returncode}: {err}"
    assert elapsed < 3, f"took {elapsed:.1f} s to stop after {signo.name}"
    assert err.startswith("mlops: error: ") and "interrupt" in err.lower(), err
    assert "locked" not in err.lower(), f"an interruption reported as a lock problem: {err}"


def test_signal_while_waiting_gives_the_interrupted_error_json(locked_home, validate):
    process = start(["--json", "db", "status"], locked_home.project)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=5)
    assert process.returncode == 8, err
    document = validate(out, "error")
    assert document["error"]["code"] == "interrupted"


def test_busy_timeout_gives_a_clear_error(locked_home):
    started = time.monotonic()
    process = start(["db", "status"], locked_home.project, env={"MLOPS_BUSY_TIMEOUT_MS": "300"})
    out, err = process.communicate(timeout=10)
    elapsed = time.monotonic() - started
    assert process.returncode == 1, f"expected exit 1, got {process.returncode}: {err}"
    assert elapsed < 2.5, f"MLOPS_BUSY_TIMEOUT_MS=300 but it gave up after {elapsed:.1f} s"
    assert elapsed >= 0.25, f"gave up after {elapsed:.2f} s, before the 300 ms busy timeout"
    assert err.startswith("mlops: error: ")
    assert "locked" in err.lower() or "busy" in err.lower(), err
    assert out == ""


def test_a_short_lock_is_waited_out(locked_home):
    # Another process holding the lock for a moment is normal; the user must not see it.
    # In exclusive locking mode only closing the connection releases the lock.
    release = threading.Timer(1.0, locked_home.lock.close)
    started = time.monotonic()
    release.start()
    try:
        process = start(["db", "status"], locked_home.project)
        out, err = process.communicate(timeout=15)
    finally:
        release.join()
    assert process.returncode == 0, err
    assert time.monotonic() - started >= 0.9, "db status did not wait for the lock at all"
    assert f"home:     {locked_home.dir}" in out
