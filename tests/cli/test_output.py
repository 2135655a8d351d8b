"""Human output: -q keeps results and errors only; colour only on a terminal, never with NO_COLOR or --no-color."""

import os
import pty
import re
import subprocess

import pytest

from conftest import BIN, clean_env

ANSI = re.compile(r"\x1b\[")
COLOUR_ALLOWED = {"NO_COLOR": None, "TERM": "xterm-256color"}


def run_on_tty(args, cwd, env):
    """Run with stdout and stderr on a pseudo-terminal; returns (returncode, output)."""
    master, slave = pty.openpty()
    process = subprocess.Popen([str(BIN), *args], cwd=cwd, env=clean_env(env), stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return process.wait(timeout=30), output.decode()


@pytest.mark.parametrize(
    "args", [["init"], ["db", "status"], ["db", "check"], ["db", "migrate"], ["version"], ["--help"], ["bogus"], ["data", "ls"]]
)
def test_no_ansi_escapes_when_not_a_tty(mlops, home, args):
    # Even with a colour-capable TERM and no NO_COLOR: pipes get plain text.
    code, out, err = mlops(*args, cwd=home.project, env=COLOUR_ALLOWED)
    assert not ANSI.search(out), f"ANSI escape on stdout of `mlops {' '.join(args)}`: {out!r}"
    assert not ANSI.search(err), f"ANSI escape on stderr of `mlops {' '.join(args)}`: {err!r}"


def test_colour_on_a_terminal(home):
    code, output = run_on_tty(["db", "status"], home.project, COLOUR_ALLOWED)
    assert code == 0, output
    assert ANSI.search(output), "no colour on a terminal (this test checks that colour can be seen)"
    code, output = run_on_tty(["bogus"], home.project, COLOUR_ALLOWED)
    assert code == 2 and ANSI.search(output) and "error:" in output


@pytest.mark.parametrize("how", ["--no-color", "NO_COLOR"])
@pytest.mark.parametrize("args", [["db", "status"], ["bogus"], ["db", "bogus"]])
def test_no_colour_on_a_terminal_when_asked(home, how, args):
    env = dict(COLOUR_ALLOWED)
    if how == "NO_COLOR":
        env["NO_COLOR"] = "1"
    else:
        args = ["--no-color", *args]
    code, output = run_on_tty(args, home.project, env)
    assert output.strip(), "no output at all"
    assert not ANSI.search(output), f"{how} did not turn colour off: {output!r}"


def test_quiet_keeps_results(mlops, home):
    code, out, err = mlops("-q", "db", "status", cwd=home.project)
    assert code == 0, err
    assert f"home:     {home.dir}" in out, "-q must still print the result of a command"


def test_quiet_drops_info_lines(mlops, home):
    assert mlops("-q", "db", "migrate", cwd=home.project)[1:] == ("", "")
    assert mlops("-q", "init", cwd=home.project)[1:] == ("", "")
    assert "already exists" in mlops("init", cwd=home.project).stdout


def test_quiet_keeps_errors(mlops, project):
    code, out, err = mlops("-q", "db", "status", cwd=project)
    assert code == 3
    assert err.startswith("mlops: error: no mlops home")


def test_verbose_does_not_change_stdout(mlops, home):
    plain = mlops("db", "status", cwd=home.project)
    verbose = mlops("-vv", "db", "status", cwd=home.project)
    assert verbose.returncode == 0
    assert verbose.stdout == plain.stdout, "logs must go to stderr, never stdout"
