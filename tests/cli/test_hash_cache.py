"""The hash cache of `mlops hash`: inside a home, unchanged files are not read again; any change to
(device, inode, size, mtime, ctime) reads them again; --no-cache reads everything; outside a home
nothing is cached or written; files modified just before they are read are not remembered.

What was read and what came from the cache is taken from `-v`'s line on stderr:
  mlops: info: N file(s): H from the hash cache, R read"""

from __future__ import annotations

import hashlib
import os
import random
import re
import sqlite3
import time
from pathlib import Path

import pytest

import test_hash as reference  # the manifest's reference implementation and the bytes runner
from conftest import IS_ROOT, make_home, snapshot
from test_hash import as_nobody  # noqa: F401 (a fixture, used by name)

INFO = re.compile(r"^mlops: info: (\d+) file\(s\): (\d+) from the hash cache, (\d+) read$", re.M)
RACY_WINDOW = 0.05  # seconds: hash_cache.cpp does not remember files changed this recently
SETTLE = 0.15  # long enough after a change that a file is no longer racily clean


def hashed(*args, cwd, env=None):
    """(stdout, (files, from cache, read)) of `mlops hash -v ARGS...`."""
    run = reference.hash_run("-v", *args, cwd=cwd, env=env)
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr}"
    counts = INFO.findall(run.stderr)
    assert len(counts) == 1, f"expected one `mlops: info:` count line on stderr: {run.stderr}"
    return run.stdout, tuple(map(int, counts[0]))


def make_files(root: Path, count: int, seed=1) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        path = root / f"d{i % 7}" / f"s{i % 3}" / f"file-{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randrange(1, 3000)))
        paths.append(path)
    return paths


def cache_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT device, inode, size, mtime_ns, ctime_ns, digest FROM hash_cache "
                                  "ORDER BY inode").fetchall()
    connection.close()
    return rows


@pytest.fixture(params=[200, 20], ids=["200-files", "20-files"])
def data(request, home):
    """A home with a tree data/ of 200 files (the cache is preloaded above 64 files) or 20 (looked up
    file by file), old enough to be cached."""
    files = make_files(home.project / "data", request.param)
    time.sleep(SETTLE)
    return home, files


def test_second_run_reads_nothing(data):
    home, files = data
    n = len(files)
    first, counts = hashed("data", cwd=home.project)
    assert counts == (n, 0, n)
    assert first == reference.reference_digest(home.project / "data").encode() + b"  data\n"
    assert len(cache_rows(home.db)) == n
    second, counts = hashed("data", cwd=home.project)
    assert counts == (n, n, 0), "unchanged files were read again"
    assert second == first
    # A file of the tree given on its own comes from the cache too, and --list changes nothing.
    _, counts = hashed(files[5], cwd=home.project)
    assert counts == (1, 1, 0)
    listed, counts = hashed("--list", "data", cwd=home.project)
    assert counts == (n, n, 0)
    assert listed.endswith(first)
    # From a subdirectory of the project (the home is found upward) and with --home from elsewhere.
    _, counts = hashed(".", cwd=home.project / "data")
    assert counts == (n, n, 0)
    _, counts = hashed("--home", home.project, home.project / "data", cwd="/")
    assert counts == (n, n, 0)


def test_touched_files_are_read_again(data):
    home, files = data
    n = len(files)
    original, _ = hashed("data", cwd=home.project)
    touched = files[::20][:6]
    for path in touched:
        path.write_bytes(path.read_bytes())  # the same bytes, a new mtime and ctime
    chmodded = files[3]
    chmodded.chmod(0o640)  # only the ctime changes (and no bit the manifest records)
    time.sleep(SETTLE)
    again, counts = hashed("data", cwd=home.project)
    assert counts == (n, n - len(touched) - 1, len(touched) + 1)
    assert again == original
    _, counts = hashed("data", cwd=home.project)
    assert counts == (n, n, 0), "files read again should be cached again"
    # Growing a file, and shrinking one, are read too (and change the digest).
    with open(files[1], "ab") as file:
        file.write(b"more")
    os.truncate(files[2], 0)
    time.sleep(SETTLE)
    changed, counts = hashed("data", cwd=home.project)
    assert counts == (n, n - 2, 2)
    assert changed != original
    assert changed == reference.reference_digest(home.project / "data").encode() + b"  data\n"


def test_same_size_change_with_restored_mtime_is_detected(data):
    home, files = data
    n = len(files)
    original, _ = hashed("data", cwd=home.project)
    victim = files[7]
    before = os.stat(victim)
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0xFF
    with open(victim, "r+b") as file:  # in place: the same inode
        file.write(content)
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(victim)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns
    time.sleep(SETTLE)
    changed, counts = hashed("data", cwd=home.project)
    assert counts == (n, n - 1, 1), "a change with a restored mtime was not noticed (ctime)"
    expected = reference.reference_digest(home.project / "data")
    assert changed == expected.encode() + b"  data\n" != original
    out, counts = hashed(victim, cwd=home.project)
    assert out.startswith(hashlib.sha256(bytes(content)).hexdigest().encode())
    # A different file (another inode) put in its place with the same size and mtime: read too.
    replacement = victim.with_name("replacement")
    replacement.write_bytes(bytes(b ^ 0x55 for b in content))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    replacement.rename(victim)
    time.sleep(SETTLE)
    replaced, counts = hashed("data", cwd=home.project)
    assert counts == (n, n - 1, 1)
    assert replaced == reference.reference_digest(home.project / "data").encode() + b"  data\n"
    assert replaced not in (changed, original)


def test_no_cache_reads_everything_and_writes_nothing(data):
    home, files = data
    n = len(files)
    _, counts = hashed("--no-cache", "data", cwd=home.project)
    assert counts == (n, 0, n)
    assert cache_rows(home.db) == [], "--no-cache should not fill the cache"
    first, _ = hashed("data", cwd=home.project)
    rows = cache_rows(home.db)
    assert len(rows) == n
    files[0].write_bytes(b"changed")  # a stale entry that --no-cache must neither use nor fix
    time.sleep(SETTLE)
    out, counts = hashed("--no-cache", "data", cwd=home.project)
    assert counts == (n, 0, n)
    assert out == reference.reference_digest(home.project / "data").encode() + b"  data\n" != first
    assert cache_rows(home.db) == rows


def test_outside_a_home_nothing_is_cached_or_written(project, tmp_path):
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    make_files(project / "data", 100)
    time.sleep(SETTLE)
    before = (snapshot(project), snapshot(user_home))
    env = {"HOME": str(user_home)}
    for _ in range(2):
        out, counts = hashed("data", cwd=project, env=env)
        assert counts == (100, 0, 100)
    assert out == reference.reference_digest(project / "data").encode() + b"  data\n"
    assert (snapshot(project), snapshot(user_home)) == before, "hashing outside a home wrote files"
    assert not any(path.name == ".mlops" for path in tmp_path.rglob("*"))


def fresh_hash_within_window(home, path: Path, attempts=8) -> tuple[int, int, int]:
    """Writes path and hashes its tree at once; retries until the run ended within the racy
    window of the write (so its read surely started within it). Returns the run's counts."""
    for attempt in range(attempts):
        path.write_bytes(b"fresh content %d\n" % attempt)
        written = os.stat(path).st_ctime_ns
        _, counts = hashed("data", cwd=home.project)
        if time.time_ns() - written < RACY_WINDOW * 1e9:
            return counts
        time.sleep(SETTLE)  # too slow (a busy machine): the file may be cached now, try again
    pytest.skip(f"could not hash within {RACY_WINDOW * 1000:.0f} ms of a write in {attempts} attempts")


def test_a_file_hashed_right_after_it_was_written_is_not_cached(data):
    home, files = data
    n = len(files)
    hashed("data", cwd=home.project)
    fresh = home.project / "data" / "fresh"
    counts = fresh_hash_within_window(home, fresh)
    assert counts[0] == n + 1
    assert counts[2] >= 1
    out, counts = hashed("data", cwd=home.project)
    assert counts == (n + 1, n, 1), "a racily clean file was cached: the next run did not read it"
    time.sleep(SETTLE)
    hashed("data", cwd=home.project)  # now old enough to be remembered
    again, counts = hashed("data", cwd=home.project)
    assert counts == (n + 1, n + 1, 0)
    assert again == out


def test_a_file_with_an_mtime_in_the_future_is_never_cached(data):
    home, files = data
    n = len(files)
    future = time.time_ns() + 3600 * 10**9
    os.utime(files[0], ns=(future, future))
    time.sleep(SETTLE)
    for _ in range(2):
        _, counts = hashed("data", cwd=home.project)
        assert counts[2] >= 1
    _, counts = hashed("data", cwd=home.project)
    assert counts == (n, n - 1, 1)


def test_a_home_the_user_cannot_write_still_hashes(as_nobody, world_dir):
    # The cache only saves reads: a home the user may read but not write (a shared checkout, or
    # another user's project) must not make `mlops hash` fail. As root the binary runs as nobody.
    home = make_home(world_dir / "project")
    make_files(home.project / "data", 10)
    for root, dirs, names in os.walk(world_dir):
        os.chmod(root, 0o755)
        for name in names:
            os.chmod(os.path.join(root, name), 0o644 if IS_ROOT else 0o444)
    if not IS_ROOT:
        for root, dirs, names in os.walk(home.dir):
            os.chmod(root, 0o555)
    time.sleep(SETTLE)
    expected = reference.reference_digest(home.project / "data").encode() + b"  data\n"
    assert as_nobody("--no-cache", "data", cwd=home.project).stdout == expected
    run = as_nobody("-v", "data", cwd=home.project)
    assert run.returncode == 0, f"hashing in a read-only home failed: {run.stderr}"
    assert run.stdout == expected
