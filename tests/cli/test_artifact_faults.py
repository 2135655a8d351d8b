"""`mlops artifact` under bad conditions (issue 3, "Bad input and faults"): unreadable files, a full
disk, kill -9 and SIGINT in the middle of `artifact add`, files that change while being added, and
several commands on one store at once. After each: a clear error, no half-written object under its
final name, no row for a missing object, and a store that `artifact verify` and `db check` pass."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import binary_nobody_can_run, BIN, IS_ROOT, NOBODY, Home, clean_env, expect_error, make_home, nobody_prefix, run_mlops
from test_artifact import (artifact, assert_store_consistent, db_check, object_files, object_path, object_root, ok,
                           ok_json, recorded, references, sha, tmp_entries, unpin)
from test_concurrency import run_at_once
from test_hash import build_tree, manifest_entries, tree_manifest

MIB = 1 << 20


def hash_digest(path: Path) -> str:
    """`mlops hash PATH` run outside any home: the digest `artifact add` must print."""
    result = run_mlops("hash", "--no-cache", path, cwd=path.parent)
    return ok(result)[:64]


def start_add(home, *paths, extra=()):
    return subprocess.Popen([str(BIN), "artifact", "add", *extra, *map(str, paths)], cwd=home.project,
                            env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until_objects_appear(home, process, timeout=30.0) -> bool:
    """True once the first object has its final name under objects/sha256/xx/ (add is putting
    objects in place: fan-out directories are created first, so they say nothing); False when the
    process ended first."""
    root = object_root(home)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with os.scandir(root) as fan_out:
                for directory in fan_out:
                    with os.scandir(directory.path) as objects:
                        if any(True for _ in objects):
                            return True
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    return False


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory) -> Path:
    """3000 distinct small files in 30 directories: `artifact add` takes the better part of a second."""
    root = tmp_path_factory.mktemp("big") / "tree"
    for i in range(3000):
        directory = root / f"d{i % 30:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:04d}.bin").write_bytes(os.urandom(1500) + str(i).encode())
    return root


def query_copy(home, sql) -> list[tuple]:
    """Reads the database through a copy: opening another user's WAL database as root would leave
    root-owned -shm/-wal files that the user could no longer open."""
    with tempfile.TemporaryDirectory() as scratch:
        for suffix in ("", "-wal"):
            if os.path.exists(f"{home.db}{suffix}"):
                shutil.copy(f"{home.db}{suffix}", f"{scratch}/copy.db{suffix}")
        connection = sqlite3.connect(f"{scratch}/copy.db")
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()


# Unreadable files ---------------------------------------------------------------------------------


@pytest.fixture
def as_other_user(world_dir):
    """run(*args, cwd=...) as user nobody when root (chmod does not stop root from reading), else as is."""
    if not IS_ROOT:
        return lambda *args, cwd: run_mlops(*args, cwd=cwd)
    binary = binary_nobody_can_run(world_dir)
    return lambda *args, cwd: run_mlops(*args, cwd=cwd, env={"HOME": "/nonexistent"}, binary=binary,
                                        prefix=nobody_prefix())


def test_an_unreadable_file_exits_1_naming_it_and_stores_nothing(as_other_user, world_dir):
    project = world_dir / "project"
    project.mkdir()
    if IS_ROOT:
        os.chown(project, NOBODY, NOBODY)  # the user's own home: only the file is out of reach
    ok(as_other_user("-q", "init", cwd=project))
    home = Home(project, project / ".mlops", project / ".mlops" / "mlops.db")
    tree = build_tree(project / "tree", [(b"ok.txt", "file", b"fine\n"), (b"sub/also-ok.bin", "file", os.urandom(5000)),
                                         (b"sub/secret.bin", "file", os.urandom(7000)), (b"z-last.txt", "file", b"z\n")])
    for root, _, _ in os.walk(tree):
        os.chmod(root, 0o755)
    secret = tree / "sub" / "secret.bin"
    secret.chmod(0o600 if IS_ROOT else 0)
    try:
        for target in ["tree", "tree/sub/secret.bin"]:
            result = as_other_user("artifact", "add", target, cwd=project)
            expect_error(result, 1, "tree/sub/secret.bin")
            assert result.stdout == ""
        result = as_other_user("--json", "artifact", "add", "tree", cwd=project)
        assert result.returncode == 1 and '"failure"' in result.stdout
        assert object_files(home) == {}, "nothing may be stored when one file cannot be read"
        assert tmp_entries(home) == []
        assert query_copy(home, "SELECT * FROM objects") == []
        assert query_copy(home, "SELECT * FROM object_refs") == []
        assert "no objects stored yet" in ok(as_other_user("artifact", "ls", cwd=project))
    finally:
        secret.chmod(0o644)
    # The same user can store the tree once the file is readable: the error was about the file.
    assert ok(as_other_user("artifact", "add", "tree", cwd=project))[:64] == sha(tree_manifest(tree))
    ok(as_other_user("artifact", "verify", "--all", cwd=project))


# A full disk --------------------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs mounted on a temporary directory (root only)."""
    if not IS_ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_a_full_disk_fails_clearly_and_leaves_the_store_consistent(small_tmpfs, tmp_path):
    home = make_home(small_tmpfs / "project")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * MIB))
    tree = build_tree(tmp_path / "tree", [(b"a.txt", "file", b"small a\n"), (b"b.txt", "file", b"small b\n"),
                                          (b"c/big.bin", "file", big.read_bytes())])
    free_before = shutil.disk_usage(small_tmpfs).free
    for target in [big, tree]:
        result = artifact("add", target, cwd=home.project)
        expect_error(result, 1, "space")
        assert result.stdout == ""
        assert not object_path(home, sha(big.read_bytes())).exists()
        assert object_files(home) == {}, "no object may be stored by an add that failed"
        assert recorded(home) == set() and references(home) == set()
        assert tmp_entries(home) == []
        ok(artifact("verify", "--all", cwd=home.project))
        assert shutil.disk_usage(small_tmpfs).free >= free_before - 64 * 1024, "the failed add left data behind"
    # The store still works for what fits.
    (tmp_path / "small.bin").write_bytes(b"fits")
    assert ok(artifact("add", tmp_path / "small.bin", cwd=home.project))[:64] == sha(b"fits")
    assert_store_consistent(home)
    assert db_check(home)["healthy"] is True


# Killed or interrupted in the middle of add -------------------------------------------------------


def check_after_a_crash(home, tree: Path, expected: str):
    """The store a dead `artifact add` left: consistent; gc removes the leftovers; add works again."""
    files, rows = object_files(home), recorded(home)
    assert rows <= set(files), f"rows for objects that are not stored: {sorted(rows - set(files))[:5]}"
    for digest, path in files.items():
        assert sha(path.read_bytes()) == digest, f"{path}: half-written or wrong content under its final name"
        assert os.stat(path).st_mode & 0o222 == 0, f"{path} is writable"
    ok(artifact("verify", "--all", cwd=home.project))
    leftovers = len(set(files) - rows)
    collected = ok_json(artifact("--json", "gc", cwd=home.project), "artifact-gc")
    assert collected["unrecorded_files"] == leftovers
    assert set(object_files(home)) == recorded(home)
    assert tmp_entries(home) == []
    assert db_check(home)["stale_tmp_files"] == 0
    assert ok(artifact("add", tree, cwd=home.project))[:64] == expected
    assert_store_consistent(home)
    assert len(recorded(home)) == 3001
    check = db_check(home)
    assert check["healthy"] is True and check["stale_tmp_files"] == 0, check
    return leftovers


# (how to pick the moment, extra delay): a timer lands while files are read and copied; "objects"
# waits until objects are being put in place under their final names.
MOMENTS = [("objects", 0.0), ("timer", 0.15), ("objects", 0.003), ("objects", 0.01), ("timer", 0.3),
           ("objects", 0.02), ("timer", 0.05)]


def interrupt_add(home, tree, signo, moment, delay):
    process = start_add(home, tree)
    try:
        if moment == "timer":
            time.sleep(delay)
        else:
            wait_until_objects_appear(home, process)
            time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signo)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def test_kill_9_in_the_middle_of_add_leaves_a_consistent_store(tmp_path, big_tree):
    expected = hash_digest(big_tree)
    killed = []
    for attempt, (moment, delay) in enumerate(MOMENTS):
        home = make_home(tmp_path / f"attempt-{attempt}")
        code, _, err = interrupt_add(home, big_tree, signal.SIGKILL, moment, delay)
        if code == 0:
            continue  # it finished first
        assert code == -signal.SIGKILL, f"exit {code}: {err}"
        stored_files, stored_rows = len(object_files(home)), len(recorded(home))
        check_after_a_crash(home, big_tree, expected)
        killed.append((moment, stored_files, stored_rows))
        if any(m == "timer" for m, _, _ in killed) and any(f > 0 and r < 3001 for _, f, r in killed):
            break
    assert killed, "add always finished before SIGKILL"
    assert any(f > 0 and r < 3001 for _, f, r in killed), (
        f"never killed while objects were being put in place: {killed}")


def test_sigint_in_the_middle_of_add_exits_8_and_leaves_a_consistent_store(tmp_path, big_tree):
    expected = hash_digest(big_tree)
    interrupted = []
    for attempt, (moment, delay) in enumerate(MOMENTS[:5]):
        home = make_home(tmp_path / f"attempt-{attempt}")
        code, out, err = interrupt_add(home, big_tree, signal.SIGINT, moment, delay)
        if code == 0:
            continue
        assert code == 8, f"expected exit 8 after SIGINT, got {code}: {err}"
        assert err.startswith("mlops: error: ") and "interrupt" in err.lower(), err
        assert out == ""
        check_after_a_crash(home, big_tree, expected)
        interrupted.append(moment)
        if len(set(interrupted)) == 2:
            break
    assert interrupted, "add always finished before SIGINT"


# A file that changes while add runs -------------------------------------------------------------


def test_a_file_replaced_while_add_runs_never_becomes_a_corrupt_object(home):
    # --link hardlink reads each file in a first pass and links it into the store in a second one.
    # A file replaced in between must not end up stored under the digest of what it held before.
    tree = home.project / "tree"
    tree.mkdir()
    small = tree / "a.txt"
    small.write_bytes(b"the content that was hashed\n")
    past = time.time_ns() - 10**11
    os.utime(small, ns=(past - 10**9, past))  # atime < mtime: relatime records the read
    with open(tree / "z-sparse.bin", "wb") as file:  # keeps the reader busy, costs no disk
        file.truncate(256 * MIB)
    atime = small.stat().st_atime_ns
    process = start_add(home, "tree", extra=["--link", "hardlink", "-j", "1"])
    try:
        deadline = time.monotonic() + 10
        while small.stat().st_atime_ns == atime and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        replacement = tree / "a.txt.new"
        replacement.write_bytes(b"new content, written after a.txt was hashed\n")
        replacement.rename(small)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode in (0, 1), err
    if process.returncode == 1:
        assert "changed" in err, err
    for digest, path in object_files(home).items():
        assert sha(path.read_bytes()) == digest, (
            f"add exited {process.returncode} but stored {path.name[:10]}... with other content than its "
            f"digest says (the file replaced after it was hashed); verify: "
            f"{artifact('verify', '--all', cwd=home.project).stdout}")
    ok(artifact("verify", "--all", cwd=home.project))


# Several commands at once -------------------------------------------------------------------------


def test_concurrent_adds_of_overlapping_trees(home, tmp_path):
    shared = [(f"shared/f{i:03d}".encode(), "file", os.urandom(1500)) for i in range(300)]
    trees = []
    for k in range(4):
        own = [(f"own/f{i:03d}".encode(), "file", os.urandom(1500)) for i in range(60)]
        neighbour = [(b"pair.bin", "file", f"shared by trees {k // 2}".encode())]
        trees.append(build_tree(tmp_path / f"tree-{k}", shared + own + neighbour))
    results = run_at_once([["artifact", "add", str(tree)] for tree in trees], cwd=home.project)
    for (args, code, out, err), tree in zip(results, trees):
        assert code == 0, f"mlops {' '.join(args)}: exit {code}: {err}"
        assert out[:64] == sha(tree_manifest(tree))
    expected = {sha(tree_manifest(tree)) for tree in trees}
    for tree in trees:
        expected |= {digest for _, _, _, digest in manifest_entries(tree)}
    assert recorded(home) == expected
    assert_store_consistent(home)
    assert db_check(home)["healthy"] is True
    assert {owner for _, kind, owner in references(home) if kind == "artifact"} == {str(t) for t in trees}
    for k, tree in enumerate(trees):
        ok(artifact("get", sha(tree_manifest(tree))[:8], f"got-{k}", cwd=home.project))
        assert manifest_entries(home.project / f"got-{k}") == manifest_entries(tree)


def test_gc_beside_adds_never_loses_a_pinned_object(home, tmp_path):
    def files(prefix, count):
        return [(f"{prefix}/f{i:03d}".encode(), "file", os.urandom(1200)) for i in range(count)]

    junk_only, junk_shared = files("junk", 150), files("shared", 150)
    junk = build_tree(tmp_path / "junk", junk_only + junk_shared)
    pinned = build_tree(tmp_path / "pinned", files("p", 300))
    new_trees = [build_tree(tmp_path / f"new-{k}", files("n", 300) + junk_shared) for k in range(2)]
    ok(artifact("add", pinned, cwd=home.project))
    for round_ in range(2):
        ok(artifact("add", junk, cwd=home.project))
        unpin(home, junk)  # gc fodder, some of it about to be pinned again by the new trees
        commands = [["artifact", "add", str(new_trees[0])], ["artifact", "gc"], ["artifact", "add", str(pinned)],
                    ["artifact", "gc"], ["artifact", "add", str(new_trees[1])], ["artifact", "gc"]]
        for args, code, out, err in run_at_once(commands, cwd=home.project):
            assert code == 0, f"round {round_}: mlops {' '.join(args)}: exit {code}: {err}\n{out}"
        ok(artifact("gc", cwd=home.project))
        assert_store_consistent(home)
        live = set()
        for tree in [pinned, *new_trees]:
            live |= {sha(tree_manifest(tree))} | {digest for _, _, _, digest in manifest_entries(tree)}
        assert recorded(home) == live, "gc removed a pinned object, or kept an unpinned one"
        for tree in [pinned, *new_trees]:
            out = home.project / f"got-{round_}-{tree.name}"
            ok(artifact("get", sha(tree_manifest(tree)), out, cwd=home.project))
            assert manifest_entries(out) == manifest_entries(tree)
        for tree in new_trees:
            unpin(home, tree)  # next round: their objects are gc fodder again
    assert db_check(home)["healthy"] is True


def test_verify_waiting_for_gc_reports_no_object_that_gc_removed(home):
    # verify --all lists the objects, then takes the store lock; gc (exclusive) may run in between.
    # An object gc removes meanwhile is gone by design, not "missing": verify must not report it.
    (home.project / "pinned.bin").write_bytes(b"pinned")
    (home.project / "unpinned.bin").write_bytes(b"unpinned")
    ok(artifact("add", "pinned.bin", "unpinned.bin", cwd=home.project))
    unpin(home, home.project / "unpinned.bin")
    gone = sha(b"unpinned")
    with open(home.dir / "objects" / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what gc holds while it removes objects
        process = subprocess.Popen([str(BIN), "artifact", "verify", "--all"], cwd=home.project, env=clean_env(),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        assert process.poll() is None, "verify did not wait for the store lock"
        # Exactly what gc does under its lock: the rows first, then the file.
        connection = sqlite3.connect(home.db, isolation_level=None)
        connection.execute("DELETE FROM object_refs WHERE digest = ?", (gone,))
        connection.execute("DELETE FROM objects WHERE digest = ?", (gone,))
        connection.close()
        object_path(home, gone).unlink()
        fcntl.flock(lock, fcntl.LOCK_UN)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, (
        f"verify --all reported an object that gc removed while verify waited for the lock: exit "
        f"{process.returncode}\n{out}{err}")
    assert "verified 1 object(s): 1 ok" in out
