"""`mlops run exec --exp E -- CMD ARGS...`: a command run as a tracked run. mlops starts the run, runs
the command with MLOPS_RUN_ID and MLOPS_HOME set, ends the run as the command ended (finished, failed,
killed) and exits with its exit status; SIGTERM and SIGINT sent to mlops reach the command.

Real commands (sh, sleep, Python) run as children; signals are sent with os.kill, and a terminal's
Ctrl-C through a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, Result, clean_env, expect_error, run_mlops
from test_artifact import error_json, ok, query
from test_tracking import HEX32, count, document, fields, latest, show, start

PYTHON = sys.executable


def execute(home, *command, options=(), env=None, cwd=None, input=None) -> Result:
    """`mlops run exec --exp e OPTIONS... -- COMMAND...`."""
    done = subprocess.run([str(BIN), "run", "exec", "--exp", "e", *options, "--", *map(str, command)],
                          cwd=cwd or home.project, env=clean_env(env), input=input,
                          stdin=None if input is not None else subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    return Result(done.returncode, done.stdout, done.stderr)


def summary(stdout: str) -> tuple[str, str, int]:
    """(run id, status, exit code) from mlops' last line, `run ID STATUS (exit code N, D.Ds)`."""
    match = re.fullmatch(r"run ([0-9a-f]{32}) (\w+) \(exit code (\d+), \d+\.\ds\)", stdout.splitlines()[-1])
    assert match, f"no summary line at the end of stdout: {stdout!r}"
    return match[1], match[2], int(match[3])


def only_run(home) -> dict:
    runs = document(home, "run", "ls", "--all")["runs"]
    assert len(runs) == 1, runs
    return runs[0]


def wait_for(path: Path, process: subprocess.Popen, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"mlops ended early: {process.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def stop(process: subprocess.Popen):
    """Kills what a failed test left running."""
    if process.poll() is None:
        process.kill()
        process.communicate()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# Exit statuses ------------------------------------------------------------------------------------


def test_a_succeeding_command_makes_a_finished_run(home):
    parent = start(home)
    before = int(time.time() * 1000)
    result = execute(home, "sh", "-c", "echo child says hi; echo child complains >&2; sleep 0.3",
                     options=["--name", "job", "--param", "lr=0.1", "--tag", "team=cv", "--parent", parent[:8]])
    after = int(time.time() * 1000)
    assert result.returncode == 0, result.stderr
    # The command's own output passes through; mlops adds one line after it.
    assert result.stdout.startswith("child says hi\n")
    run_id, status, code = summary(result.stdout)
    assert (status, code) == ("finished", 0)
    assert "child complains\n" in result.stderr
    shown = show(home, run_id)
    assert (shown["name"], shown["experiment"], shown["status"], shown["exit_code"]) == ("job", "e", "finished", 0)
    assert shown["command"] == ["sh", "-c", "echo child says hi; echo child complains >&2; sleep 0.3"]
    assert shown["host"] == socket.gethostname()
    assert before <= shown["start_time"] and shown["start_time"] + 300 <= shown["end_time"] <= after
    assert (shown["params"], shown["tags"], shown["parent_id"]) == ({"lr": "0.1"}, {"team": "cv"}, parent)
    assert show(home, parent)["children"] == [run_id]
    text = fields(ok(run_mlops("run", "show", run_id, cwd=home.project)))
    assert text["command"] == "sh -c echo child says hi; echo child complains >&2; sleep 0.3"
    assert (text["exit code"], text["status"], text["host"]) == ("0", "finished", socket.gethostname())


@pytest.mark.parametrize("code", [1, 3, 42, 255])
def test_a_failing_command_makes_a_failed_run_and_mlops_exits_with_its_code(home, code):
    result = execute(home, "sh", "-c", f"exit {code}")
    assert result.returncode == code, result.stderr
    run_id, status, reported = summary(result.stdout)
    assert (status, reported) == ("failed", code)
    shown = show(home, run_id)
    assert (shown["status"], shown["exit_code"]) == ("failed", code) and shown["end_time"] >= shown["start_time"]
    assert query(home, "SELECT status, exit_code FROM runs") == [("failed", code)]


def test_a_missing_program_exits_3_and_its_run_is_recorded_failed(home):
    result = execute(home, "no-such-program-anywhere", "--flag")
    expect_error(result, 3, "cannot run no-such-program-anywhere", "No such file or directory", "on PATH")
    recorded = only_run(home)
    assert (recorded["status"], recorded["exit_code"]) == ("failed", 127)
    assert recorded["command"] == ["no-such-program-anywhere", "--flag"] and recorded["end_time"] is not None
    error_json(run_mlops("--json", "run", "exec", "--exp", "e", "--", "/nonexistent/bin/tool", cwd=home.project), 3,
               "not_found")


def test_a_program_that_cannot_be_executed_exits_1_and_its_run_is_recorded_failed(home):
    script = home.project / "train.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)  # not executable, for root too
    result = execute(home, "./train.sh")
    expect_error(result, 1, "cannot run ./train.sh", "Permission denied")
    assert "never" not in result.stdout
    recorded = only_run(home)
    assert (recorded["status"], recorded["exit_code"], recorded["command"]) == ("failed", 127, ["./train.sh"])


@pytest.mark.parametrize("signo", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_a_command_that_dies_of_a_signal_makes_a_killed_run(home, signo):
    result = execute(home, "sh", "-c", f"kill -{int(signo)} $$")
    assert result.returncode == 128 + signo, result
    run_id, status, code = summary(result.stdout)
    assert (status, code) == ("killed", 128 + signo)
    assert (show(home, run_id)["status"], show(home, run_id)["exit_code"]) == ("killed", 128 + signo)


# What the command sees ----------------------------------------------------------------------------


def test_the_command_sees_its_run_and_home_and_logs_to_it(home):
    (home.project / "src").mkdir()
    out = home.project / "seen.txt"
    # From / the home cannot be found upward: only MLOPS_HOME leads to it.
    script = (f'echo "$MLOPS_RUN_ID|$MLOPS_HOME" > {out}; cd / && '
              f'{BIN} --json run show > {out}.json && '
              f'{BIN} run log --metric acc=0.5 --step 1 --param from_child=yes >/dev/null && '
              f'printf \'{{"key": "loss", "value": 0.25, "step": 2}}\\n\' | {BIN} run log --file - >/dev/null')
    result = execute(home, "sh", "-c", script, cwd=home.project / "src")
    assert result.returncode == 0, result.stderr
    run_id, status, _ = summary(result.stdout)
    assert status == "finished"
    seen_id, seen_home = out.read_text().strip().split("|")
    assert seen_id == run_id and HEX32.fullmatch(seen_id)
    assert os.path.realpath(seen_home) == os.path.realpath(home.dir)
    # While the command ran, its run was running.
    during = json.loads(Path(f"{out}.json").read_text())
    assert (during["id"], during["status"], during["end_time"]) == (run_id, "running", None)
    shown = show(home, run_id)
    assert latest(home, run_id) == {"acc": (0.5, 1), "loss": (0.25, 2)}
    assert shown["params"] == {"from_child": "yes"}


def test_the_command_gets_every_argument_after_the_double_dash_untouched(home):
    args = ["--json", "-v", "--exp", "x", "a b", "--", "'quoted'", "$HOME", ""]
    result = execute(home, "sh", "-c", 'for a in "$@"; do printf "<%s>\\n" "$a"; done', "sh", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:-1] == [f"<{a}>" for a in args]  # mlops kept none of them
    run_id, _, _ = summary(result.stdout)
    assert show(home, run_id)["command"][4:] == args
    assert show(home, run_id)["experiment"] == "e"


def test_the_command_inherits_standard_input_and_the_environment(home):
    result = execute(home, "sh", "-c", 'cat; echo "var=$MY_VAR"', env={"MY_VAR": "kept"}, input="line one\nline two\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("line one\nline two\nvar=kept\n")


def test_usage_errors_start_no_run(home):
    expect_error(run_mlops("run", "exec", "--exp", "e", "sh", "-c", "exit 0", cwd=home.project), 2, "not expected")
    expect_error(run_mlops("run", "exec", "--exp", "e", "--", cwd=home.project), 2, "no command", "after --")
    expect_error(run_mlops("run", "exec", "--exp", "e", cwd=home.project), 2, "no command")
    expect_error(run_mlops("run", "exec", "--", "true", cwd=home.project), 2, "--exp")
    expect_error(run_mlops("run", "exec", "--exp", "e", "--param", "bad;key=1", "--", "true", cwd=home.project), 2,
                 "is not valid")
    expect_error(run_mlops("run", "ls", "--", "true", cwd=home.project), 2, "not expected: true")  # only run exec runs a command
    assert count(home, "runs") == 0
    # A removed experiment or parent: a conflict, and the command never runs.
    ok(run_mlops("exp", "create", "old", cwd=home.project))
    ok(run_mlops("exp", "rm", "old", cwd=home.project))
    marker = home.project / "ran"
    expect_error(run_mlops("run", "exec", "--exp", "old", "--", "touch", marker, cwd=home.project), 4, "was removed")
    assert not marker.exists() and count(home, "runs") == 0


# Signals ------------------------------------------------------------------------------------------


def exec_in_background(home, *command, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([str(BIN), "run", "exec", "--exp", "e", "--", *map(str, command)], cwd=home.project,
                            env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_sent_to_mlops_is_forwarded_and_the_run_is_killed(home, signo):
    ready, pid_file = home.project / "ready", home.project / "pid"
    process = exec_in_background(home, "sh", "-c", f"echo $$ > {pid_file}; touch {ready}; exec sleep 30")
    try:
        wait_for(ready, process)
        child = int(pid_file.read_text())
        started = time.monotonic()
        os.kill(process.pid, signo)
        out, err = process.communicate(timeout=15)
    finally:
        stop(process)
    assert time.monotonic() - started < 10, "the command did not stop: the signal was not forwarded"
    assert process.returncode == 128 + signo, err
    assert gone(child)
    run_id, status, code = summary(out)
    assert (status, code) == ("killed", 128 + signo)
    shown = show(home, run_id)
    assert (shown["status"], shown["exit_code"]) == ("killed", 128 + signo) and shown["end_time"] is not None


HANDLER = """
import os, signal, sys, time
def stop(signo, frame):
    with open("got", "a") as f:
        f.write(f"{signo}\\n")
    time.sleep(0.2)  # cleaning up
    sys.exit(int(sys.argv[1]))
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
open("ready", "w").close()
time.sleep(30)
sys.exit(99)
"""


@pytest.mark.parametrize("code, status", [(0, "finished"), (1, "killed")])
def test_a_command_that_handles_sigterm_decides_how_its_run_ends(home, code, status):
    # The command caught the forwarded signal and exited by itself: mlops exits with its code. Exiting
    # 0 means it finished its work; anything else after a signal to stop is a killed run.
    process = exec_in_background(home, PYTHON, "-c", HANDLER, code)
    try:
        wait_for(home.project / "ready", process)
        os.kill(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        stop(process)
    assert (home.project / "got").read_text() == f"{int(signal.SIGTERM)}\n", "forwarded exactly once"
    assert process.returncode == code, err
    run_id, reported, reported_code = summary(out)
    assert (reported, reported_code) == (status, code)
    assert (show(home, run_id)["status"], show(home, run_id)["exit_code"]) == (status, code)


def test_ctrl_c_at_a_terminal_reaches_the_command_once(home):
    # The terminal sends SIGINT to the whole foreground process group, the command included; mlops
    # must not send it a second one.
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a session of its own, the pseudo-terminal as its controlling terminal
        try:
            os.chdir(home.project)
            os.execve(str(BIN), [str(BIN), "run", "exec", "--exp", "e", "--", PYTHON, "-c", HANDLER, "0"], clean_env())
        finally:
            os._exit(127)
    output = b""
    try:
        deadline = time.monotonic() + 15
        while not (home.project / "ready").exists():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.01)
        os.write(terminal, b"\x03")  # Ctrl-C
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: every process of the terminal has exited
                break
            if not chunk:
                break
            output += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(terminal)
    text = output.decode(errors="replace")
    assert (home.project / "got").read_text() == f"{int(signal.SIGINT)}\n", f"SIGINT count: {text}"
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert only_run(home)["status"] == "finished"


@pytest.mark.parametrize("status, code", [("finished", 3), ("failed", 0)])
def test_a_command_that_ends_its_own_run_keeps_its_exit_status(home, status, code):
    # A script written to work on its own too: it ends the run it was given, then exits.
    result = execute(home, "sh", "-c", f'{BIN} run end --status {status} >/dev/null && exit {code}')
    assert result.returncode == code, result
    assert only_run(home)["status"] == status  # what the command said stands
