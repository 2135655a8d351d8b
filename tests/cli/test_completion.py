"""Shell completions: the files in completions/ are what `mlops completion SHELL` prints, and they work."""

import shutil
import subprocess

import pytest

from conftest import SOURCE_DIR

FILES = {
    "bash": SOURCE_DIR / "completions" / "mlops.bash",
    "zsh": SOURCE_DIR / "completions" / "_mlops",
    "fish": SOURCE_DIR / "completions" / "mlops.fish",
}


@pytest.mark.parametrize("shell", FILES)
def test_completion_files_are_up_to_date(mlops, project, shell):
    code, out, err = mlops("completion", shell, cwd=project)
    assert code == 0, err
    path = FILES[shell]
    regenerate = f"build/mlops completion {shell} > {path.relative_to(SOURCE_DIR)}"
    assert path.is_file(), f"{path} is missing; generate it with `{regenerate}`"
    assert out == path.read_text(), f"{path.relative_to(SOURCE_DIR)} is stale; regenerate it with `{regenerate}`"


# bash -------------------------------------------------------------------------------------------


def bash_complete(*words):
    """COMPREPLY of the bash completion for the command line `words` (the last one being completed)."""
    script = (
        'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
        'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _mlops mlops "${COMP_WORDS[COMP_CWORD]}"; '
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script, str(FILES["bash"]), *words],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0 and done.stderr == "", f"bash completion failed: {done.stderr}"
    return done.stdout.split()


@pytest.mark.parametrize(
    "words, expected",
    [
        (["mlops", ""], ["init", "hash", "artifact", "data", "exp", "run", "model", "serve", "deploy", "db", "completion", "version"]),
        (["mlops", "d"], ["data", "deploy", "db"]),
        (["mlops", "db", ""], ["check", "migrate", "status"]),
        (["mlops", "db", "m"], ["migrate"]),
        (["mlops", "db", "check", "--j"], ["--json"]),
        (["mlops", "completion", ""], ["bash", "zsh", "fish"]),
        (["mlops", "completion", "z"], ["zsh"]),
        (["mlops", "version", "--l"], ["--load"]),
        (["mlops", "--json", "db", ""], ["check", "migrate", "status"]),
        (["mlops", "--home", "/tmp", "db", "s"], ["status"]),
        (["mlops", "--no"], ["--no-color"]),
    ],
)
def test_bash_completes(words, expected):
    assert sorted(bash_complete(*words)) == sorted(expected)


def test_bash_completes_files_for_home(tmp_path):
    (tmp_path / "projdir").mkdir()
    assert bash_complete("mlops", "--home", str(tmp_path / "proj")) == [str(tmp_path / "projdir")]


def test_bash_hides_the_manpage_command():
    assert "manpage" not in bash_complete("mlops", "m")


def test_bash_registers_the_function():
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", 'source "$0"; complete -p mlops', str(FILES["bash"])],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "-F _mlops" in done.stdout and done.stdout.rstrip().endswith(" mlops")


# zsh and fish -----------------------------------------------------------------------------------


def need(shell):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")


def test_zsh_syntax():
    need("zsh")
    done = subprocess.run(["zsh", "-n", str(FILES["zsh"])], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert FILES["zsh"].read_text().startswith("#compdef mlops"), "zsh needs the #compdef line to autoload it"


def test_fish_syntax():
    need("fish")
    done = subprocess.run(["fish", "-n", str(FILES["fish"])], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# The zsh completion system needs a terminal; instead, run the script's _mlops with the completion
# builtins replaced by functions that print what they were given, then filter by the prefix as
# zsh would. This checks the script's own logic (which words it offers where).
ZSH_HARNESS = r"""
compadd() { local a; (( ${@[(I)--]} )) && shift ${@[(i)--]}; for a in "$@"; do print -r -- "word:$a"; done }
_describe() { local a; for a in "${(@P)2}"; do print -r -- "word:${a%%:*}"; done }
_files() { print -r -- "files" }
compdef() { : }
source "$1"; shift
words=("$@"); CURRENT=$#; PREFIX=${words[CURRENT]}
_mlops
"""


def zsh_complete(*words):
    need("zsh")
    done = subprocess.run(
        ["zsh", "-f", "-c", ZSH_HARNESS, "zsh", str(FILES["zsh"]), *words],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0 and done.stderr == "", f"zsh completion failed: {done.stderr}"
    offered = [line[5:] for line in done.stdout.splitlines() if line.startswith("word:")]
    return [word for word in offered if word.startswith(words[-1])]


@pytest.mark.parametrize(
    "words, expected",
    [
        (["mlops", ""], ["init", "hash", "artifact", "data", "exp", "run", "model", "serve", "deploy", "db", "completion", "version"]),
        (["mlops", "d"], ["data", "deploy", "db"]),
        (["mlops", "db", ""], ["check", "migrate", "status"]),
        (["mlops", "completion", ""], ["bash", "zsh", "fish"]),
        (["mlops", "--j"], ["--json"]),
        (["mlops", "db", "check", "--j"], ["--json"]),
        (["mlops", "version", "--l"], ["--load"]),
        (["mlops", "--home", "/tmp", "db", "s"], ["status"]),
    ],
)
def test_zsh_completes(words, expected):
    assert sorted(set(zsh_complete(*words))) == sorted(expected)


def fish_complete(line):
    need("fish")
    done = subprocess.run(
        ["fish", "--no-config", "-c", f'source $argv[1]; complete -C "{line}"', str(FILES["fish"])],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [entry.split("\t")[0] for entry in done.stdout.splitlines()]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("mlops ", ["artifact", "completion", "data", "db", "deploy", "exp", "hash", "init", "model", "run", "serve", "version"]),
        ("mlops db ", ["check", "migrate", "status"]),
        ("mlops completion ", ["bash", "fish", "zsh"]),
        ("mlops d", ["data", "db", "deploy"]),
    ],
)
def test_fish_completes(line, expected):
    assert sorted(fish_complete(line)) == sorted(expected)


def test_fish_completes_options():
    assert "--load" in fish_complete("mlops version --")
    assert "--json" in fish_complete("mlops --j")
