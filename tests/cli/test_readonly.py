"""A home the user cannot write to: a clear error (exit 1), and nothing changed.

CI runs the tests as root, for whom chmod does not stop writes: then the binary runs as user nobody
(the home stays owned by root and not writable by nobody). Otherwise the home is chmod'ed read-only.
"""

import os
import shutil
import subprocess

import pytest

from conftest import BIN, IS_ROOT, NOBODY, db_state, latest_version, make_home, nobody_prefix, run_mlops, snapshot


def nobody_can_run(binary):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run as nobody")
    check = subprocess.run([*nobody_prefix(), "test", "-x", str(binary)], capture_output=True)
    return check.returncode == 0


@pytest.fixture
def as_user(world_dir):
    """run(*args, cwd=...) as a user who cannot write to what root (or the test user) created."""
    if not IS_ROOT:
        return run_mlops
    binary = BIN
    if not nobody_can_run(binary):  # the build tree is not traversable by nobody: use a copy
        binary = world_dir / "bin" / "mlops"
        binary.parent.mkdir()
        shutil.copy2(BIN, binary)
        binary.parent.chmod(0o755)
        binary.chmod(0o755)

    def run(*args, cwd, env=None):
        return run_mlops(*args, cwd=cwd, env={"HOME": "/nonexistent", **(env or {})}, binary=binary, prefix=nobody_prefix())

    return run


def make_read_only(path):
    """Not writable for as_user: nothing to do as root (nobody cannot write root's 0644/0755 files)."""
    if IS_ROOT:
        return
    for root, dirs, files in os.walk(path):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        os.chmod(root, 0o555)


@pytest.fixture
def ro_home(world_dir):
    home = make_home(world_dir / "project")
    make_read_only(home.dir)
    if IS_ROOT:
        assert os.stat(home.dir).st_uid != NOBODY
    return home


def assert_not_writable_error(result):
    code, out, err = result
    assert code == 1, f"expected exit 1, got {code}: {err}"
    assert err.startswith("mlops: error: "), err
    lowered = err.lower()
    assert "not writable" in lowered or "permission" in lowered or "read-only" in lowered, err


@pytest.mark.parametrize("command", [["db", "migrate"], ["init"]])
def test_read_only_home_gives_a_clear_error_and_changes_nothing(as_user, ro_home, command):
    before = snapshot(ro_home.project)
    result = as_user(*command, cwd=ro_home.project)
    assert_not_writable_error(result)
    assert snapshot(ro_home.project) == before, "a failed command changed the home"


def test_read_only_home_with_a_pending_migration(as_user, world_dir):
    home = make_home(world_dir / "project")
    home.db.write_bytes(b"")  # version 0: the migration would have to write
    make_read_only(home.dir)
    before = snapshot(home.project)
    assert_not_writable_error(as_user("db", "migrate", cwd=home.project))
    assert snapshot(home.project) == before
    assert home.db.read_bytes() == b""


def test_read_only_home_error_json(as_user, ro_home, validate):
    code, out, err = as_user("--json", "db", "migrate", cwd=ro_home.project)
    assert code == 1, err
    document = validate(out, "error")
    assert document["error"]["code"] == "failure"
    assert "not writable" in document["error"]["message"] or "ermission" in document["error"]["message"]


def test_init_in_a_read_only_directory(as_user, world_dir):
    project = world_dir / "readonly-project"
    project.mkdir()
    make_read_only(project)
    if not IS_ROOT:
        project.chmod(0o555)
    result = as_user("init", cwd=project)
    assert_not_writable_error(result)
    assert str(project / ".mlops") in result.stderr, "the message should say what it could not create"
    assert not (project / ".mlops").exists()


def test_home_stays_usable_by_its_owner(as_user, ro_home, mlops):
    # The failed attempt by another user leaves nothing behind that breaks the owner's next command.
    as_user("db", "migrate", cwd=ro_home.project)
    if not IS_ROOT:
        for root, dirs, files in os.walk(ro_home.dir):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
    code, out, err = mlops("db", "check", cwd=ro_home.project)
    assert code == 0, err
    assert db_state(ro_home.db)[0] == latest_version()
