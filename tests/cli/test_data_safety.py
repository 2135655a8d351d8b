"""`mlops data` under hostile or bad conditions (issue 4): manifests tampered with in the store,
symbolic links planted in the checkout directory, special files in the data, corrupt objects, and
SIGINT in the middle of a checkout. After each: the documented exit code, nothing written outside
DIR, and no file under its final name that is not complete and verified."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, clean_env, expect_error, parse_one_document, run_mlops, snapshot, validate_document
from test_artifact import artifact, assert_store_consistent, flip_byte, object_files, object_path, ok, sha
from test_data import (assert_same_tree, data, data_error_json, data_json, diff_r, listing, tree_state, write)
from test_hash import build_tree

NOW = "2026-01-01T00:00:00.000Z"


# Versions made by hand ----------------------------------------------------------------------------


def manifest(entries: list[tuple[str, bytes, bytes]]) -> bytes:
    """A tree manifest, format 1 (schemas/tree-manifest.md), of (mode, content or link target, path)
    entries, written in the order given: a tampered manifest need not be sorted or unique."""
    text = b"mlops-tree 1\n"
    for mode, content, path in entries:
        text += f"{mode} {len(content)} {sha(content)} ".encode() + path + b"\0"
    return text


def store_object(home, content: bytes, kind: str) -> str:
    """Puts content in the store as `data add` would: a read-only file named by its digest, then its row."""
    digest = sha(content)
    path = object_path(home, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o444)
    connection = sqlite3.connect(home.db, isolation_level=None)
    try:
        connection.execute("INSERT OR IGNORE INTO objects (digest, kind, size, created_at) VALUES (?, ?, ?, ?)",
                           (digest, kind, len(content), NOW))
    finally:
        connection.close()
    return digest


def hand_made_version(home, name: str, entries: list[tuple[str, bytes, bytes]], path: str = "data") -> str:
    """Dataset NAME, version 1, whose tree is the manifest of `entries`; every content is stored too, so
    that nothing but the manifest itself is wrong. Returns NAME@1."""
    for _, content, _ in entries:
        store_object(home, content, "blob")
    tree = store_object(home, manifest(entries), "tree")
    connection = sqlite3.connect(home.db, isolation_level=None)
    try:
        connection.execute("INSERT INTO datasets (name, created_at) VALUES (?, ?)", (name, NOW))
        connection.execute(
            "INSERT INTO dataset_versions (dataset, version, tree, files, size, message, path, created_at) "
            "VALUES (?, 1, ?, ?, ?, 'tampered', ?, ?)",
            (name, tree, len(entries), sum(len(c) for _, c, _ in entries), path, NOW))
        connection.execute("INSERT INTO object_refs (digest, kind, owner, created_at) VALUES (?, 'dataset', ?, ?)",
                           (tree, f"{name}@1", NOW))
    finally:
        connection.close()
    return f"{name}@1"


def test_a_hand_made_valid_version_checks_out(home, tmp_path):
    """The helpers make what `data add` makes: a correct manifest checks out (so the refusals below are
    about the tampering, not the way the versions were made)."""
    ref = hand_made_version(home, "fine", [("100644", b"one\n", b"a.txt"), ("120000", b"a.txt", b"link"),
                                           ("100755", b"#!/bin/sh\n", b"sub/run")])
    target = tmp_path / "out"
    ok(data("checkout", ref, target, cwd=home.project))
    assert tree_state(target) == {b"a.txt": ("file", False, b"one\n"), b"link": ("link", b"a.txt"),
                                  b"sub/run": ("file", True, b"#!/bin/sh\n")}


PAYLOAD = b"#!/bin/sh\necho pwned\n"


def tampered_cases(outside: Path):
    """{id: (entries, what the error says)}: manifests `data add` never makes, each trying to write
    outside DIR or into a repository's or a home's metadata. Sorted and unique unless that is the point."""
    bad_path = "path is absolute, empty, or has an empty"
    beneath = "is listed as a file or link"
    return {
        "dotdot": ([("100644", PAYLOAD, b"../escape")], bad_path),
        "dotdot-inside": ([("100644", b"fine\n", b"a.txt"), ("100644", PAYLOAD, b"sub/../../escape")], bad_path),
        "absolute": ([("100644", PAYLOAD, os.fsencode(outside / "absolute-escape"))], bad_path),
        "dot": ([("100644", PAYLOAD, b"./escape")], bad_path),
        "empty-component": ([("100644", PAYLOAD, b"a//escape")], bad_path),
        "duplicate": ([("100644", b"first\n", b"dup"), ("100644", PAYLOAD, b"dup")], "duplicate"),
        "unsorted": ([("100644", b"b\n", b"b"), ("100644", PAYLOAD, b"a")], "out of order"),
        "file-beneath-a-link": ([("120000", os.fsencode(outside), b"link"), ("100644", PAYLOAD, b"link/escape")],
                                "directory link " + beneath),
        "file-beneath-a-relative-link": ([("120000", b"../../outside", b"up"), ("100755", PAYLOAD, b"up/escape")],
                                         "directory up " + beneath),
        "file-beneath-a-file": ([("100644", b"plain\n", b"f"), ("100644", PAYLOAD, b"f/escape")],
                                "directory f " + beneath),
        "git-hook": ([("100755", PAYLOAD, b".git/hooks/post-checkout"), ("100644", b"fine\n", b"a.txt")],
                     "inside a .git directory"),
        "nested-git": ([("100755", PAYLOAD, b"sub/.git/hooks/pre-commit"), ("100644", b"fine\n", b"sub/a.txt")],
                       "inside a .git directory"),
        "mlops-home": ([("100644", PAYLOAD, b".mlops/config.toml")], "inside a .mlops directory"),
    }


CASE_IDS = list(tampered_cases(Path("/x")))


@pytest.mark.parametrize("case", CASE_IDS)
def test_a_tampered_manifest_is_refused_and_nothing_is_written_outside_dir(home, tmp_path, case):
    work = tmp_path / "work"  # DIR's parent: nothing may appear here but DIR
    work.mkdir()
    outside = tmp_path / "outside"  # where the links point
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"untouched\n")
    entries, needle = tampered_cases(outside)[case]
    ref = hand_made_version(home, "evil", entries)
    outside_before = snapshot(outside)
    assert listing(tmp_path) == ["outside", "project", "work"]
    for extra in ([], ["--force"], ["--link", "hardlink"], ["--link", "copy"]):
        for target in [work / "out", work / "deeper" / "out"]:
            result = data("checkout", ref, target, *extra, cwd=home.project)
            expect_error(result, 5, needle)
            assert result.stdout == ""
            assert listing(work) == [], f"checkout {extra} of a tampered manifest wrote into DIR's parent"
            assert listing(tmp_path) == ["outside", "project", "work"], "something appeared beside DIR's parent"
            assert snapshot(outside) == outside_before and listing(outside) == ["keep.txt"]
            assert not os.path.lexists(outside / "absolute-escape")
    data_error_json("checkout", ref, work / "out", cwd=home.project, exit_code=5, code="integrity")
    # Into a DIR that exists, with a file of its own: it stays as it was.
    existing = work / "existing"
    write(existing / "mine.txt", "mine\n")
    expect_error(data("checkout", ref, existing, "--force", cwd=home.project), 5)
    assert listing(existing) == ["mine.txt"] and (existing / "mine.txt").read_bytes() == b"mine\n"
    assert listing(work) == ["existing"] and listing(outside) == ["keep.txt"]


@pytest.mark.parametrize("case", ["dotdot", "absolute", "duplicate", "file-beneath-a-link"])
def test_a_malformed_manifest_is_reported_as_damage_by_show_and_diff(home, tmp_path, case):
    outside = tmp_path / "outside"
    ref = hand_made_version(home, "evil", tampered_cases(outside)[case][0])
    expect_error(data("show", ref, "--files", cwd=home.project), 5, "manifest")
    build_tree(tmp_path / "dir", [(b"f", "file", b"f\n")])
    expect_error(data("diff", ref, tmp_path / "dir", cwd=home.project), 5, "manifest")
    expect_error(data("status", ref, tmp_path / "dir", cwd=home.project), 5, "manifest")


def test_a_manifest_edited_in_place_no_longer_matches_its_digest(home, tmp_path):
    """A manifest changed on disk (a path renamed, the format still valid) is caught by its digest."""
    build_tree(home.project / "data", [(b"a.txt", "file", b"hello\n"), (b"b.txt", "file", b"bee\n")])
    tree = data_json("add", "ds", "data", cwd=home.project)["tree"].removeprefix("sha256:")
    stored = object_path(home, tree)
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes().replace(b" a.txt\0", b" ../ax\0"))
    stored.chmod(0o444)
    for args in (["checkout", "ds", tmp_path / "work" / "out"], ["show", "ds", "--files"], ["diff", "ds", "data"]):
        expect_error(data(*args, cwd=home.project), 5, tree, "corrupt")
    assert not (tmp_path / "work").exists() and not (tmp_path / "ax").exists()


# A link planted in DIR ----------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path) -> Path:
    """A directory outside DIR with a file of its own, which nothing may touch."""
    path = tmp_path / "outside"
    write(path / "keep.txt", "untouched\n")
    return path


def outside_state(path: Path):
    return listing(path), snapshot(path), os.lstat(path).st_mtime_ns


def test_a_planted_link_is_never_written_through(home, tmp_path, outside):
    build_tree(home.project / "data", [(b"sub/b.txt", "file", b"bee\n"), (b"top.txt", "file", b"top\n")])
    ok(data("add", "ds", "data", cwd=home.project))
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "sub")  # DIR/sub -> outside, where the version has sub/b.txt
    before = outside_state(outside)
    result = data("checkout", "ds", target, cwd=home.project)
    expect_error(result, 4, "not in the version: sub", "--force")
    assert outside_state(outside) == before
    assert os.readlink(target / "sub") == str(outside) and listing(target) == ["sub"], "a refusal changes nothing"
    assert not (outside / "b.txt").exists()

    result = data("checkout", "ds", target, "--force", cwd=home.project)
    assert result.returncode == 0, result
    assert "discarded 1 local change(s)" in result.stdout
    assert outside_state(outside) == before, "checkout --force wrote through the link"
    assert not os.path.islink(target / "sub") and (target / "sub").is_dir()
    assert (target / "sub" / "b.txt").read_bytes() == b"bee\n"
    assert_same_tree(home.project / "data", target)


def test_a_deeper_planted_link_with_stored_text_is_replaced_not_followed(home, tmp_path, outside):
    """A link whose target text is stored (it was in a version) may be replaced without --force; it is
    still replaced, never followed."""
    p = home.project
    data_dir = build_tree(p / "data", [(b"a/b", "link", os.fsencode(outside)), (b"x.txt", "file", b"x\n")])
    ok(data("add", "ds", "data", cwd=p))  # ds@1: a/b is a link to outside
    os.unlink(data_dir / "a" / "b")
    build_tree(data_dir, [(b"a/b/c/d.txt", "file", b"d\n"), (b"a/b/keep.txt", "file", b"not the outside one\n")])
    ok(data("add", "ds", "data", cwd=p))  # ds@2: a/b is a directory
    target = tmp_path / "target"
    before = outside_state(outside)
    ok(data("checkout", "ds@1", target, cwd=p))
    assert os.readlink(target / "a" / "b") == str(outside)
    ok(data("checkout", "ds@2", target, cwd=p))
    assert outside_state(outside) == before
    assert not os.path.islink(target / "a" / "b")
    assert_same_tree(data_dir, target)
    ok(data("checkout", "ds@1", target, cwd=p))  # and back: the directory goes, the link returns
    assert os.readlink(target / "a" / "b") == str(outside) and outside_state(outside) == before
    assert listing(target / "a") == ["b"]


def test_a_file_with_unsaved_content_where_the_version_has_a_directory_is_refused(home, tmp_path):
    build_tree(home.project / "data", [(b"sub/f.txt", "file", b"f\n")])
    ok(data("add", "ds", "data", cwd=home.project))
    target = tmp_path / "target"
    write(target / "sub", "my notes, stored nowhere\n")
    expect_error(data("checkout", "ds", target, cwd=home.project), 4, "sub")
    assert (target / "sub").read_bytes() == b"my notes, stored nowhere\n"
    ok(data("checkout", "ds", target, "--force", cwd=home.project))
    assert (target / "sub" / "f.txt").read_bytes() == b"f\n"


# Special files ------------------------------------------------------------------------------------


def test_special_files_are_skipped_with_a_warning_and_not_versioned(home, tmp_path):
    p = home.project
    source = build_tree(p / "data", [(b"a.txt", "file", b"a\n"), (b"sub/b.txt", "file", b"b\n")])
    os.mkfifo(source / "pipe")
    os.mkfifo(source / "sub" / "deep pipe")
    result = data("add", "ds", "data", cwd=p)
    assert result.returncode == 0, result
    assert result.stdout.startswith("added ds@1: 2 file(s)")
    assert result.stderr.startswith("mlops: warning: skipped 2 special file(s) in data")
    assert "pipe" in result.stderr and "sub/deep pipe" in result.stderr
    result = run_mlops("--json", "data", "add", "ds", "data", cwd=p)
    assert result.returncode == 0 and "mlops: warning: skipped 2 special file(s)" in result.stderr
    document = validate_document(parse_one_document(result.stdout), "data-add")
    assert document["skipped"] == ["pipe", "sub/deep pipe"] and document["created"] is False
    files = [f["path"] for f in data_json("show", "ds", "--files", cwd=p)["entries"]]
    assert files == ["a.txt", "sub/b.txt"]

    # status sees the directory clean, with the same warning; checkout leaves FIFOs in DIR alone.
    result = data("status", "ds", cwd=p)
    assert result.returncode == 0 and "is clean" in result.stdout and "skipped 2 special file(s)" in result.stderr
    target = tmp_path / "target"
    ok(data("checkout", "ds", target, cwd=p))
    assert not os.path.lexists(target / "pipe"), "a FIFO is not data: checkout never makes one"
    os.mkfifo(target / "their pipe")
    result = data("checkout", "ds", target, "--force", cwd=p)
    assert result.returncode == 0 and "skipped 1 special file(s)" in result.stderr
    assert stat.S_ISFIFO(os.lstat(target / "their pipe").st_mode)
    assert_store_consistent(home)


# Corrupt objects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["auto", "copy", "hardlink"])
def test_a_corrupt_object_fails_the_checkout_and_is_never_put_in_place(home, tmp_path, link):
    p = home.project
    victim = os.urandom(20_000)
    source = build_tree(p / "data", [(b"a-first.txt", "file", b"fine\n"), (b"victim.bin", "file", victim),
                                     (b"z/last.txt", "file", b"also fine\n"), (b"victim-copy.bin", "exec", victim)])
    ok(data("add", "ds", "data", cwd=p))
    flip_byte(object_path(home, sha(victim)), 1234)
    target = tmp_path / "target"
    result = data("checkout", "ds", target, "--link", link, cwd=p)
    expect_error(result, 5, sha(victim)[:12])
    data_error_json("checkout", "ds", tmp_path / "again", "--link", link, cwd=p, exit_code=5, code="integrity")
    for directory in [target, tmp_path / "again"]:
        if not directory.exists():
            continue
        state = tree_state(directory)
        assert b"victim.bin" not in state and b"victim-copy.bin" not in state, \
            "a file with corrupt content appeared under its final name"
        for relative, (_, _, content) in state.items():
            assert content == (source / os.fsdecode(relative)).read_bytes()
        assert [n for n in os.listdir(directory) if n.startswith(".mlops")] == [], "temporary files left behind"
    # The workspace itself: a version switch to the corrupt content fails the same way, loses nothing.
    write(source / "victim.bin", "local\n")
    ok(data("add", "ds", "data", cwd=p))
    saved = tree_state(source)
    expect_error(data("checkout", "ds@1", cwd=p), 5, sha(victim)[:12])
    assert not (source / "victim.bin").exists(), "the corrupt content was put in place"
    assert [n for n in os.listdir(source) if n.startswith(".mlops")] == []
    ok(data("checkout", "ds@2", cwd=p))  # what was replaced was stored: nothing is lost
    assert tree_state(source) == saved
    # artifact verify names the damage.
    assert artifact("verify", "--all", cwd=p).returncode == 5


# SIGINT -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_files(tmp_path_factory) -> Path:
    """3000 distinct small files in 30 directories."""
    root = tmp_path_factory.mktemp("many") / "data"
    for i in range(3000):
        directory = root / f"d{i % 30:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:04d}.bin").write_bytes(os.urandom(2000) + str(i).encode())
    return root


def any_file_under(root: Path) -> bool:
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    with os.scandir(entry.path) as inner:
                        if any(True for _ in inner):
                            return True
    except FileNotFoundError:
        pass
    return False


def test_an_interrupted_checkout_leaves_only_whole_files_and_can_be_finished(home, tmp_path, many_files):
    ok(data("add", "big", many_files, cwd=home.project))
    expected = {path.relative_to(many_files): path.read_bytes() for path in many_files.rglob("*.bin")}
    interrupted = 0
    for attempt in range(3):  # a fast machine may finish before the signal: try again, then accept that
        target = tmp_path / f"target-{attempt}"
        process = subprocess.Popen([str(BIN), "data", "checkout", "big", str(target), "--link", "copy", "-j", "1"],
                                   cwd=home.project, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while process.poll() is None and not any_file_under(target) and time.monotonic() < deadline:
            time.sleep(0.0005)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode in (0, 8), f"exit {process.returncode}: {stderr}"
        present = {path.relative_to(target): path for path in target.rglob("*") if not path.is_dir()}
        assert set(present) <= set(expected), f"unexpected entries: {sorted(set(present) - set(expected))[:5]}"
        for relative, path in present.items():
            assert path.read_bytes() == expected[relative], f"{relative} is incomplete or wrong after SIGINT"
        print(f"attempt {attempt}: exit {process.returncode}, {len(present)} of {len(expected)} files")
        if process.returncode == 8:
            interrupted += 1
            assert stdout == "" and stderr.startswith("mlops: error: "), stderr
            assert "interrupt" in stderr.lower()
            assert len(present) < len(expected)
        else:
            assert len(present) == len(expected)
        result = data("checkout", "big", target, cwd=home.project)
        assert result.returncode == 0, result
        assert "discarded" not in result.stdout
        diff_r(many_files, target)
        assert data_json("status", "big", target, cwd=home.project)["clean"] is True
        if interrupted:
            break
    assert_store_consistent(home)


# Bad DIR arguments --------------------------------------------------------------------------------


def test_add_of_a_missing_directory_exits_3_and_of_a_file_exits_2(home):
    p = home.project
    (p / "file.txt").write_bytes(b"a file\n")
    result = data("add", "ds", "missing", cwd=p)
    expect_error(result, 3, "missing", "does not exist")
    assert result.stdout == ""
    data_error_json("add", "ds", "missing", cwd=p, exit_code=3, code="not_found")
    result = data("add", "ds", "file.txt", cwd=p)
    expect_error(result, 2, "file.txt", "not a directory")
    data_error_json("add", "ds", "file.txt", cwd=p, exit_code=2, code="usage")
    assert object_files(home) == {}
    assert data_json("ls", cwd=p) == {"datasets": []}, "a failed add creates no dataset"
