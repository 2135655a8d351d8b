"""`mlops data add|ls|log|show|tag|diff|status|checkout|rm`: versioned datasets, seen from the outside
(issue 4). Every version is checked out into fresh directories and compared byte for byte with a
copy saved when it was added (`diff -r`, plus modes and link targets); the store is inspected on
disk (.mlops/objects) and in the database; git lineage is checked against a real repository.

Tampered manifests, links planted in the workspace, special files, corrupt objects and SIGINT are
in test_data_safety.py. The helpers here are shared with it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import expect_error, make_home, parse_one_document, run_mlops, snapshot, validate_document
from test_artifact import (artifact, assert_store_consistent, object_files, object_path, ok, query, run_bytes, sha)
from test_hash import build_tree, tree_manifest

SETTLE = 0.15  # seconds: past the hash cache's racy window, so a file just written gets cached


# Running the binary -------------------------------------------------------------------------------


def data(*args, cwd, **kwargs):
    """`mlops data ARGS...` -> Result(returncode, stdout, stderr), text."""
    return run_mlops("data", *args, cwd=cwd, **kwargs)


def data_json(verb, *args, cwd, **kwargs) -> dict:
    """A successful `mlops --json data VERB ARGS...`: exactly one JSON document on stdout, valid against
    schemas/json/data-VERB.schema.json, and nothing on stderr."""
    result = run_mlops("--json", "data", verb, *args, cwd=cwd, **kwargs)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}\n{result.stdout}"
    assert result.stderr == "", f"stderr should be empty on success with --json: {result.stderr!r}"
    return validate_document(parse_one_document(result.stdout), f"data-{verb}")


def data_error_json(*args, cwd, exit_code: int, code: str) -> dict:
    """A failing `mlops --json data ARGS...`: the error document on stdout, the exit code it names."""
    result = run_mlops("--json", "data", *args, cwd=cwd)
    assert result.returncode == exit_code, f"expected exit {exit_code}, got {result}"
    document = validate_document(parse_one_document(result.stdout), "error")
    assert document["error"]["code"] == code and document["error"]["exit_code"] == exit_code
    return document


def run_data_bytes(*args, cwd):
    """`mlops data ARGS...` with bytes arguments; stdout stays bytes."""
    return run_bytes("data", *args, cwd=cwd)


# Trees on disk ------------------------------------------------------------------------------------


def tree_state(root) -> dict[bytes, tuple]:
    """Every file and link under root (bytes paths), .git and .mlops left out, as checkout must make it:
    ("file", executable, content) or ("link", target). Directories leave no trace, as in a manifest."""
    base = os.fsencode(root)
    state = {}
    for directory, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if d not in (b".git", b".mlops")]
        for name in files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, base)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                state[relative] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as file:
                    state[relative] = ("file", bool(info.st_mode & stat.S_IXUSR), file.read())
    return state


def diff_r(expected, actual):
    """`diff -r --no-dereference`: the same names, the same bytes, links compared as links."""
    done = subprocess.run(["diff", "-r", "--no-dereference", os.fsencode(expected), os.fsencode(actual)],
                          capture_output=True)
    assert done.returncode == 0, f"diff -r {expected} {actual}:\n{done.stdout.decode(errors='replace')}" \
                                 f"{done.stderr.decode(errors='replace')}"


def assert_same_tree(expected, actual):
    diff_r(expected, actual)
    assert tree_state(actual) == tree_state(expected), "modes or link targets differ"


def save_copy(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, symlinks=True)
    return destination


def write(path: Path, content: bytes | str, executable=False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(0o755 if executable else 0o644)
    return path


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


V1_SPEC = [
    (b"README.md", "file", b"# the data\n"),
    (b"empty.txt", "file", b""),
    (b"prepare.sh", "exec", b"#!/bin/sh\necho preparing\n"),
    (b"train/a.csv", "file", b"x,y\n" + b"1,2\n" * 500),
    (b"train/b.csv", "file", b"x,y\n" + b"3,4\n" * 700),
    (b"train/c.csv", "file", b"x,y\n" + b"5,6\n" * 300),
    (b"labels/l.txt", "file", b"cat\ndog\n"),
    (b"deep/er/still/leaf.bin", "file", bytes(range(256)) * 8),
    (b"latest-readme", "link", b"README.md"),
]


def change_to_v2(root: Path):
    """From V1: one file modified, one renamed (same content), one removed, one added."""
    write(root / "train" / "a.csv", b"x,y\n" + b"9,9\n" * 500)
    os.rename(root / "train" / "b.csv", root / "train" / "b-renamed.csv")
    (root / "labels" / "l.txt").unlink()
    (root / "labels").rmdir()
    write(root / "new" / "n.bin", os.urandom(4096))


def change_to_v3(root: Path):
    write(root / "README.md", "# the data, version 3\n")
    write(root / "extra.txt", "one more\n")
    (root / "latest-readme").unlink()
    os.symlink("extra.txt", root / "latest-readme")


@pytest.fixture
def three_versions(home, tmp_path):
    """ds@1..3 added from project/data, with a saved copy of each: (home, {n: copy})."""
    source = build_tree(home.project / "data", V1_SPEC)
    saved = {1: save_copy(source, tmp_path / "saved" / "v1")}
    ok(data("add", "ds", "data", "-m", "first", cwd=home.project))
    change_to_v2(source)
    saved[2] = save_copy(source, tmp_path / "saved" / "v2")
    ok(data("add", "ds", "data", "-m", "second", cwd=home.project))
    change_to_v3(source)
    saved[3] = save_copy(source, tmp_path / "saved" / "v3")
    ok(data("add", "ds", "data", "-m", "third", cwd=home.project))
    return home, saved


# Round trip ---------------------------------------------------------------------------------------


def test_every_version_checks_out_byte_for_byte(three_versions, tmp_path):
    home, saved = three_versions
    for number, copy in saved.items():
        for ref in [f"ds@{number}"] + (["ds", "ds@latest"] if number == 3 else []):
            target = tmp_path / "fresh" / ref.replace("@", "-")
            result = data("checkout", ref, target, cwd=home.project)
            assert ok(result) == f"ds@{number} -> {target}: {len(tree_state(copy))} written, 0 unchanged, 0 removed\n"
            assert_same_tree(copy, target)
    assert_store_consistent(home)


def test_diff_between_the_versions_names_each_change(three_versions):
    home, saved = three_versions
    out = ok(data("diff", "ds@1", "ds@2", cwd=home.project))
    assert out == ("ds@1 -> ds@2:\n"
                   "  removed:  labels/l.txt (8 B)\n"
                   "  added:    new/n.bin (4.0 KiB)\n"
                   "  modified: train/a.csv (2.0 KiB -> 2.0 KiB)\n"
                   "  renamed:  train/b.csv -> train/b-renamed.csv\n"
                   "1 added, 1 removed, 1 modified, 1 renamed (+6.0 KiB, -2.0 KiB)\n"), out
    document = data_json("diff", "ds@1", "ds@2", cwd=home.project)
    assert document["from"] == "ds@1" and document["to"] == "ds@2" and document["clean"] is False
    changes = {(c["change"], c["path"]) for c in document["changes"]}
    assert changes == {("removed", "labels/l.txt"), ("added", "new/n.bin"), ("modified", "train/a.csv"),
                       ("renamed", "train/b-renamed.csv")}
    renamed = next(c for c in document["changes"] if c["change"] == "renamed")
    assert renamed["before"]["path"] == "train/b.csv" and renamed["after"]["path"] == "train/b-renamed.csv"
    assert renamed["before"]["digest"] == renamed["after"]["digest"] == \
        "sha256:" + sha((saved[1] / "train" / "b.csv").read_bytes())
    summary = document["summary"]
    assert (summary["added"], summary["removed"], summary["modified"], summary["renamed"]) == (1, 1, 1, 1)
    assert summary["bytes_added"] == 4096 + len((saved[2] / "train" / "a.csv").read_bytes())
    assert summary["bytes_removed"] == 8 + len((saved[1] / "train" / "a.csv").read_bytes())


def test_round_trip_with_the_versions_recorded_as_added(three_versions):
    """What the user sees in log, show and ls after three adds."""
    home, saved = three_versions
    log = data_json("log", "ds", cwd=home.project)
    assert [v["version"] for v in log["versions"]] == [3, 2, 1]
    assert [v["message"] for v in log["versions"]] == ["third", "second", "first"]
    for version in log["versions"]:
        copy = saved[version["version"]]
        state = tree_state(copy)
        assert version["files"] == len(state)
        assert version["size"] == sum(len(v[-1]) if v[0] == "link" else len(v[2]) for v in state.values())
        assert version["tree"] == "sha256:" + sha(tree_manifest(copy))
        assert version["path"] == "data" and version["git"] is None and version["deleted_at"] is None


# Dedup --------------------------------------------------------------------------------------------


def test_second_version_stores_only_the_changed_files(home):
    source = build_tree(home.project / "data", V1_SPEC)
    first = data_json("add", "ds", "data", cwd=home.project)
    distinct = {sha(v[2] if v[0] == "file" else v[1]) for v in tree_state(source).values()}
    assert first["created"] is True and first["version"] == 1 and first["ref"] == "ds@1"
    assert first["objects_written"] == len(distinct) + 1  # the files, the link's target text, the manifest
    assert len(object_files(home)) == first["objects_written"]
    before = set(object_files(home))

    change_to_v2(source)  # a.csv changed, b.csv renamed, l.txt removed, n.bin added
    second = data_json("add", "ds", "data", cwd=home.project)
    assert second["created"] is True and second["version"] == 2
    assert second["objects_written"] == 3, "only a.csv, n.bin and the new manifest are new"
    new = set(object_files(home)) - before
    assert new == {sha((source / "train" / "a.csv").read_bytes()), sha((source / "new" / "n.bin").read_bytes()),
                   sha(tree_manifest(source))}
    assert set(object_files(home)) >= before, "adding a version never removes objects"
    assert second["objects_existing"] == second["files"] - 2  # every unchanged file, the renamed one included
    assert second["bytes_written"] == sum(object_files(home)[d].stat().st_size for d in new)
    assert_store_consistent(home)


def test_identical_content_makes_no_new_version_and_names_the_equal_one(home):
    source = build_tree(home.project / "data", V1_SPEC)
    ok(data("add", "ds", "data", cwd=home.project))
    objects_before = set(object_files(home))
    time.sleep(0.01)
    os.utime(source / "README.md")  # new mtimes, same content
    (source / "empty-dir").mkdir()  # empty directories leave no trace
    result = data("add", "ds", "data", "-m", "nothing changed", cwd=home.project)
    assert ok(result) == "unchanged: data equals ds@1, no new version\n"
    assert "the message was not recorded" in result.stderr  # said, not silently dropped
    document = data_json("add", "ds", "data", cwd=home.project)
    assert document["created"] is False and document["ref"] == "ds@1" and document["version"] == 1
    assert document["objects_written"] == 0 and document["bytes_written"] == 0
    assert document["message"] == "", "the message of the unchanged add must not replace the version's"
    assert [v["version"] for v in data_json("log", "ds", cwd=home.project)["versions"]] == [1]
    assert set(object_files(home)) == objects_before

    # Back to the content of an older version, after another: a new version that says which it equals.
    write(source / "README.md", "changed\n")
    ok(data("add", "ds", "data", cwd=home.project))
    write(source / "README.md", "# the data\n")
    result = data("add", "ds", "data", cwd=home.project)
    assert ok(result).startswith("added ds@3: ")
    assert "same content as ds@1\n" in result.stdout
    shown = data_json("show", "ds@3", cwd=home.project)
    assert shown["tree"] == data_json("show", "ds@1", cwd=home.project)["tree"]


def test_git_and_mlops_directories_are_skipped_at_any_depth(home, tmp_path):
    source = build_tree(home.project / "data", [
        (b"keep.txt", "file", b"kept\n"),
        (b".git/config", "file", b"[core]\n"),
        (b"sub/.git/HEAD", "file", b"ref: refs/heads/main\n"),
        (b"sub/deeper/.mlops/mlops.db", "file", b"not a database\n"),
        (b"sub/deeper/file.txt", "file", b"kept too\n"),
        (b".gitignore", "file", b"*.tmp\n"),
        (b"sub/.mlopsrc", "file", b"a file, not the directory\n"),
    ])
    document = data_json("show", data_json("add", "ds", "data", cwd=home.project)["ref"], "--files",
                         cwd=home.project)
    assert [f["path"] for f in document["entries"]] == [".gitignore", "keep.txt", "sub/.mlopsrc",
                                                          "sub/deeper/file.txt"]
    # Checkout leaves a .git in the target alone: it is not the version's, and not a local change.
    target = build_tree(tmp_path / "target", [(b".git/config", "file", b"mine\n"),
                                              (b"sub/.git/HEAD", "file", b"mine too\n")])
    ok(data("checkout", "ds", target, cwd=home.project))
    assert (target / ".git" / "config").read_bytes() == b"mine\n"
    assert (target / "sub" / ".git" / "HEAD").read_bytes() == b"mine too\n"
    assert tree_state(target) == {k: v for k, v in tree_state(source).items()}
    assert "clean" in ok(data("status", "ds", target, cwd=home.project))
    # The project itself as the data: its home is not part of the version.
    whole = data_json("show", data_json("add", "whole", ".", cwd=home.project)["ref"], "--files", cwd=home.project)
    assert [f["path"] for f in whole["entries"]] == ["data/" + f["path"] for f in document["entries"]]


# ls, log, show ------------------------------------------------------------------------------------


def test_ls_log_and_show(home):
    p = home.project
    assert ok(data("ls", cwd=p)) == "no datasets yet; `mlops data add NAME DIR` creates one\n"
    assert data_json("ls", cwd=p) == {"datasets": []}
    build_tree(p / "images", [(b"cat.png", "file", b"\x89PNG" + b"\0" * 96), (b"run.sh", "exec", b"#!/bin/sh\n"),
                              (b"alias", "link", b"cat.png")])
    build_tree(p / "text", [(b"corpus.txt", "file", b"words " * 1000)])
    ok(data("add", "images", "images", "-m", "first images", "--tag", "base", cwd=p))
    tree1 = "sha256:" + sha(tree_manifest(p / "images"))
    write(p / "images" / "dog.png", b"\x89PNG" + b"\1" * 200)
    ok(data("add", "images", "images", "-m", "a dog too", cwd=p))
    ok(data("add", "text", "text", cwd=p))

    lines = ok(data("ls", cwd=p)).splitlines()
    assert lines[0].split() == ["NAME", "VERSIONS", "LATEST", "FILES", "SIZE", "UPDATED"]
    assert lines[1].split()[:5] == ["images", "2", "2", "4", "321"] and lines[1].split()[5] == "B"
    assert lines[2].split()[:6] == ["text", "1", "1", "1", "5.9", "KiB"]
    assert len(lines) == 3
    listed = data_json("ls", cwd=p)["datasets"]
    assert [(d["name"], d["versions"], d["latest"]["version"], d["latest"]["files"]) for d in listed] == [
        ("images", 2, 2, 4), ("text", 1, 1, 1)]

    lines = ok(data("log", "images", cwd=p)).splitlines()
    assert lines[0].split() == ["VERSION", "CREATED", "FILES", "SIZE", "COMMIT", "TAGS", "MESSAGE"]
    assert lines[1].split()[0] == "2" and lines[1].endswith("a dog too")
    assert lines[2].split()[0] == "1" and " base " in lines[2] and lines[2].endswith("first images")
    assert len(lines) == 3

    shown = ok(data("show", "images@1", cwd=p))
    fields = dict(line.split(":", 1) for line in shown.splitlines())
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["version"] == "images@1"
    assert fields["tree"] == tree1
    assert fields["files"] == "3"
    assert fields["size"] == "117 B (117 bytes)"
    assert fields["added from"] == "images"
    assert fields["message"] == "first images"
    assert fields["tags"] == "base"
    assert fields["git"] == "not in a git repository"

    listed = ok(data("show", "images@1", "--files", cwd=p)).split("\n\n", 1)[1].splitlines()
    cat = sha(b"\x89PNG" + b"\0" * 96)
    assert listed == [f"120000            7 {sha(b'cat.png')[:12]}  alias",
                      f"100644          100 {cat[:12]}  cat.png",
                      f"100755           10 {sha(b'#!/bin/sh' + bytes([10]))[:12]}  run.sh"]
    document = data_json("show", "images", "--files", cwd=p)
    assert document["ref"] == "images@2" and document["version"] == 2 and document["message"] == "a dog too"
    assert [(f["path"], f["mode"], f["size"], f["digest"]) for f in document["entries"]] == [
        ("alias", "120000", 7, "sha256:" + sha(b"cat.png")),
        ("cat.png", "100644", 100, "sha256:" + cat),
        ("dog.png", "100644", 204, "sha256:" + sha(b"\x89PNG" + b"\1" * 200)),
        ("run.sh", "100755", 10, "sha256:" + sha(b"#!/bin/sh\n")),
    ]
    assert data_json("show", "images", cwd=p)["entries"] is None
    expect_error(data("log", "nope", cwd=p), 3, 'no dataset named "nope"')


# Tags ---------------------------------------------------------------------------------------------


def test_tags_name_versions_and_move_only_with_force(home):
    p = home.project
    source = build_tree(p / "data", [(b"f", "file", b"one\n")])
    added = data_json("add", "ds", "data", "--tag", "v1", "--tag", "stable", cwd=p)
    assert added["tags"] == ["stable", "v1"]
    write(source / "f", "two\n")
    ok(data("add", "ds", "data", cwd=p))

    assert ok(data("tag", "ds@2", "prod", cwd=p)) == "tagged ds@2 as prod\n"
    assert ok(data("tag", "ds", "prod", cwd=p)) == "prod already names ds@2, nothing to do\n"
    result = data("tag", "ds@1", "prod", cwd=p)
    expect_error(result, 4, 'tag "prod" already names ds@2', "--force")
    assert result.stdout == ""
    data_error_json("tag", "ds@1", "prod", cwd=p, exit_code=4, code="conflict")
    assert data_json("show", "ds@prod", cwd=p)["version"] == 2, "a refused move must leave the tag where it was"

    assert ok(data("tag", "ds@1", "prod", "--force", cwd=p)) == "moved prod from ds@2 to ds@1\n"
    assert data_json("show", "ds@prod", cwd=p)["version"] == 1
    assert data_json("show", "ds@1", cwd=p)["tags"] == ["prod", "stable", "v1"]
    assert data_json("show", "ds@2", cwd=p)["tags"] == []
    moved = data_json("tag", "ds@stable", "prod", cwd=p)
    assert moved == {"dataset": "ds", "tag": "prod", "version": 1, "changed": False, "moved_from": None}
    moved = data_json("tag", "ds@2", "prod", "--force", cwd=p)
    assert moved == {"dataset": "ds", "tag": "prod", "version": 2, "changed": True, "moved_from": 1}

    # A tag resolves anywhere a REF goes.
    ok(data("checkout", "ds@v1", p / "out", cwd=p))
    assert (p / "out" / "f").read_bytes() == b"one\n"
    assert "ds@1 -> ds@2" in ok(data("diff", "ds@stable", "ds@prod", cwd=p))

    # add --tag of a tag that names another version: refused, and no version is created.
    write(source / "f", "three\n")
    expect_error(data("add", "ds", "data", "--tag", "prod", cwd=p), 4, 'tag "prod" already names ds@2')
    assert [v["version"] for v in data_json("log", "ds", cwd=p)["versions"]] == [2, 1]

    for bad in ["latest", "1abc", "9", "bad tag", "-dash", "é", "a" * 129, "a/b", ""]:
        result = data("tag", "ds@1", bad, cwd=p)
        assert result.returncode == 2, f"tag {bad!r}: {result}"
        assert result.stderr.startswith("mlops: error: ")
    expect_error(data("tag", "ds@1", "latest", cwd=p), 2, '"latest" cannot be a tag')
    expect_error(data("tag", "ds@1", "1abc", cwd=p), 2, "starts with a digit")
    expect_error(data("add", "ds", "data", "--tag", "latest", cwd=p), 2, "latest")
    expect_error(data("show", "ds@nosuch", cwd=p), 3, 'no version tagged "nosuch"')
    expect_error(data("tag", "ds@nosuch", "other", cwd=p), 3, 'no version tagged "nosuch"')
    expect_error(data("tag", "nope@1", "other", cwd=p), 3, 'no dataset named "nope"')


@pytest.mark.parametrize("ref", ["bad name", "ds@", "ds@0", "ds@01", "ds@-1", "@1", "ds@1@2", "ds@latest!", "-ds",
                                 "d/s", "ds@v 1", "x" * 129])
def test_bad_references_exit_2(home, ref):
    build_tree(home.project / "data", [(b"f", "file", b"x\n")])
    ok(data("add", "ds", "data", cwd=home.project))
    verbs = [["show", ref], ["checkout", ref, "out"], ["diff", ref, "ds@1"], ["status", ref, "data"], ["tag", ref, "t"],
             ["log", ref] if "@" not in ref else ["rm", ref]]
    if "@" in ref and "/" not in ref:
        verbs.append(["diff", "ds@1", ref])  # else TO is a directory
    for verb in verbs:
        result = data(*verb, cwd=home.project)
        assert result.returncode == 2, f"data {verb}: {result}"
        assert result.stderr.startswith("mlops: error: ") and result.stdout == ""
    assert not (home.project / "out").exists()


@pytest.mark.parametrize("name", ["bad name", "-x", ".hidden", "a/b", "é", "x" * 129])
def test_bad_dataset_names_exit_2_before_anything_is_stored(home, name):
    build_tree(home.project / "data", [(b"f", "file", b"x\n")])
    result = data("add", name, "data", cwd=home.project)
    assert result.returncode == 2, result
    assert result.stderr.startswith("mlops: error: ")
    assert object_files(home) == {}
    assert query(home, "SELECT * FROM datasets") == []


def test_unknown_dataset_version_or_tag_exits_3(home):
    build_tree(home.project / "data", [(b"f", "file", b"x\n")])
    ok(data("add", "ds", "data", cwd=home.project))
    p = home.project
    for args, needle in [(["show", "nope"], 'no dataset named "nope"'), (["show", "ds@2"], 'has no version 2'),
                         (["show", "ds@gone"], 'no version tagged "gone"'), (["checkout", "ds@7", "out"], "no version 7"),
                         (["status", "nope", "data"], "nope"), (["diff", "ds@1", "ds@5"], "no version 5"),
                         (["rm", "ds@3"], "no version 3"), (["log", "nope"], "nope")]:
        expect_error(data(*args, cwd=p), 3, needle)
    data_error_json("show", "ds@2", cwd=p, exit_code=3, code="not_found")
    assert not (p / "out").exists()


# diff ---------------------------------------------------------------------------------------------


def test_diff_renames_stat_and_a_directory(home):
    p = home.project
    payload = os.urandom(3000)
    source = build_tree(p / "data", [(b"a/one.bin", "file", payload), (b"b.txt", "file", b"bee\n"),
                                     (b"tool", "file", b"#!/bin/sh\n"), (b"gone.txt", "file", b"bye\n")])
    ok(data("add", "ds", "data", cwd=p))
    os.makedirs(source / "moved" / "here")
    os.rename(source / "a" / "one.bin", source / "moved" / "here" / "one.bin")  # same content, new path
    (source / "tool").chmod(0o755)  # same content, new mode
    write(source / "b.txt", "bee bee\n")
    (source / "gone.txt").unlink()
    write(source / "added.txt", "hi\n")
    ok(data("add", "ds", "data", cwd=p))

    out = ok(data("diff", "ds@1", "ds@2", cwd=p))
    assert out.splitlines()[0] == "ds@1 -> ds@2:"
    body = set(out.splitlines()[1:-1])
    assert body == {"  added:    added.txt (3 B)", "  removed:  gone.txt (4 B)", "  modified: b.txt (4 B -> 8 B)",
                    "  modified: tool (mode 100644 -> 100755)", "  renamed:  a/one.bin -> moved/here/one.bin"}
    assert out.splitlines()[-1] == "1 added, 1 removed, 2 modified, 1 renamed (+21 B, -18 B)"

    stat_out = ok(data("diff", "ds@1", "ds@2", "--stat", cwd=p))
    assert stat_out == "ds@1 -> ds@2:\n  1 added, 1 removed, 2 modified, 1 renamed (+21 B, -18 B)\n"
    document = data_json("diff", "ds@1", "ds@2", "--stat", cwd=p)
    assert document["summary"] == {"added": 1, "removed": 1, "modified": 2, "renamed": 1, "bytes_added": 21,
                                   "bytes_removed": 18}

    # Backwards, every change is reversed.
    back = data_json("diff", "ds@2", "ds@1", cwd=p)
    assert {(c["change"], c["path"]) for c in back["changes"]} == {
        ("removed", "added.txt"), ("added", "gone.txt"), ("modified", "b.txt"), ("modified", "tool"),
        ("renamed", "a/one.bin")}

    # A version against itself and against the directory it came from.
    assert ok(data("diff", "ds@2", "ds@latest", cwd=p)) == "ds@2 and ds@2 hold the same files\n"
    assert ok(data("diff", "ds@2", "data", cwd=p)) == "ds@2 and data hold the same files\n"
    assert data_json("diff", "ds@2", "data", cwd=p)["clean"] is True
    write(source / "b.txt", "changed in the directory\n")
    document = data_json("diff", "ds@2", "./data", cwd=p)
    assert document["to"] == "./data" and document["clean"] is False
    assert [(c["change"], c["path"]) for c in document["changes"]] == [("modified", "b.txt")]
    assert document["changes"][0]["after"]["digest"] == "sha256:" + sha(b"changed in the directory\n")
    assert "modified: b.txt (8 B -> 25 B)" in ok(data("diff", "ds@2", str(source), cwd=p))
    # A directory whose name has an '@' is reached by a path with a '/'.
    save_copy(source, p / "snap@2")
    assert "modified: b.txt" in ok(data("diff", "ds@1", "./snap@2", cwd=p))
    expect_error(data("diff", "ds@1", "missing-dir", cwd=p), 3, "missing-dir")


# status -------------------------------------------------------------------------------------------


def test_status_clean_then_modified_added_removed_renamed(home):
    p = home.project
    source = build_tree(p / "data", [(b"keep.txt", "file", b"keep\n"), (b"edit.txt", "file", b"before\n"),
                                     (b"drop.txt", "file", b"drop\n"), (b"old/name.bin", "file", os.urandom(500))])
    ok(data("add", "ds", "data", cwd=p))
    clean = ok(data("status", "ds", cwd=p))  # DIR defaults to where the version was added from
    assert clean == f"{p / 'data'} is clean: it holds exactly ds@1 (4 file(s))\n"
    document = data_json("status", "ds@1", cwd=p)
    assert document["clean"] is True and document["changes"] == [] and document["ref"] == "ds@1"

    write(source / "edit.txt", "after!\n")
    write(source / "new.txt", "new\n")
    (source / "drop.txt").unlink()
    os.rename(source / "old", source / "new-dir")
    result = data("status", "ds", cwd=p)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == f"{p / 'data'} against ds@1:"
    assert set(lines[1:-1]) == {"  modified: edit.txt (7 B -> 7 B)", "  added:    new.txt (4 B)",
                                "  removed:  drop.txt (5 B)", "  renamed:  old/name.bin -> new-dir/name.bin"}
    assert lines[-1] == "1 added, 1 removed, 1 modified, 1 renamed (+11 B, -12 B)"
    document = data_json("status", "ds", cwd=p)
    assert document["clean"] is False
    assert document["summary"] == {"added": 1, "removed": 1, "modified": 1, "renamed": 1, "bytes_added": 11,
                                   "bytes_removed": 12}
    assert ok(data("status", "ds", "--stat", cwd=p)).splitlines()[1] == \
        "  1 added, 1 removed, 1 modified, 1 renamed (+11 B, -12 B)"
    # --no-cache reads everything and sees the same.
    assert data_json("status", "ds", "--no-cache", cwd=p) == document
    # Against another directory: a checkout of the version is clean.
    ok(data("checkout", "ds@1", p / "elsewhere", cwd=p))
    assert ok(data("status", "ds", p / "elsewhere", cwd=p)).endswith("is clean: it holds exactly ds@1 (4 file(s))\n")
    expect_error(data("status", "ds", p / "missing", cwd=p), 3, "missing")


def test_status_goes_through_the_hash_cache(home):
    p = home.project
    source = build_tree(p / "data", [(f"f{i:02d}.bin".encode(), "file", os.urandom(1000)) for i in range(20)])
    time.sleep(SETTLE)
    ok(data("add", "ds", "data", cwd=p))
    inode = (source / "f07.bin").stat().st_ino
    rows = query(home, "SELECT count(*) FROM hash_cache")
    assert rows == [(20,)], "add should remember the digests of the files it read"

    # A cached digest is believed while the file's identity is unchanged: poison one, status trusts it;
    # --no-cache reads the file and sees it clean.
    connection = sqlite3.connect(home.db, isolation_level=None)
    try:
        connection.execute("UPDATE hash_cache SET digest = ? WHERE inode = ?", (bytes(32), inode))
    finally:
        connection.close()
    document = data_json("status", "ds", cwd=p)
    assert [(c["change"], c["path"]) for c in document["changes"]] == [("modified", "f07.bin")], \
        "status did not use the hash cache"
    assert data_json("status", "ds", "--no-cache", cwd=p)["clean"] is True

    # A same-size change with the mtime put back is still seen: the cache is keyed on ctime too.
    path = source / "f03.bin"
    info = path.stat()
    content = bytearray(path.read_bytes())
    content[10] ^= 0xFF
    path.write_bytes(bytes(content))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    time.sleep(SETTLE)
    document = data_json("status", "ds", cwd=p)
    assert ("modified", "f03.bin") in [(c["change"], c["path"]) for c in document["changes"]]


# checkout -----------------------------------------------------------------------------------------


def test_checkout_into_an_empty_directory_reports_what_it_wrote(home, tmp_path):
    source = build_tree(home.project / "data", V1_SPEC)
    ok(data("add", "ds", "data", cwd=home.project))
    target = tmp_path / "empty"
    target.mkdir()
    document = data_json("checkout", "ds", target, "--link", "copy", cwd=home.project)
    assert document == {"dataset": "ds", "version": 1, "ref": "ds@1", "dir": str(target), "written": len(V1_SPEC),
                        "unchanged": 0, "removed": 0, "discarded": 0, "skipped": []}
    assert_same_tree(source, target)
    for path in target.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert path.stat().st_nlink == 1, f"--link copy made {path} share an inode"
            assert stat.S_IMODE(path.stat().st_mode) in (0o644, 0o755)
    assert [name for name in os.listdir(target) if name.startswith(".mlops")] == []
    # Again: everything is already right and nothing is touched.
    inodes = {p: p.lstat().st_ino for p in target.rglob("*")}
    again = data_json("checkout", "ds", target, cwd=home.project)
    assert (again["written"], again["unchanged"], again["removed"]) == (0, len(V1_SPEC), 0)
    assert {p: p.lstat().st_ino for p in target.rglob("*")} == inodes
    # A directory that does not exist yet is created.
    ok(data("checkout", "ds", tmp_path / "new" / "deeper", cwd=home.project))
    assert_same_tree(source, tmp_path / "new" / "deeper")


def test_checkout_hardlink_shares_the_stored_object(home, tmp_path):
    source = build_tree(home.project / "data", V1_SPEC)
    ok(data("add", "ds", "data", cwd=home.project))
    target = tmp_path / "linked"
    ok(data("checkout", "ds", target, "--link", "hardlink", cwd=home.project))
    assert_same_tree(source, target)
    for relative in [b"README.md", b"train/a.csv", b"deep/er/still/leaf.bin"]:
        path = Path(os.fsdecode(os.path.join(os.fsencode(target), relative)))
        info = path.stat()
        stored = object_path(home, sha(path.read_bytes()))
        assert info.st_ino == stored.stat().st_ino, f"{relative!r} is not a hard link to its object"
        assert info.st_nlink > 1
        assert stat.S_IMODE(info.st_mode) & 0o222 == 0, "a hard-linked file shares the object's read-only mode"
    # An executable never shares the object's inode: its mode would change the object's.
    script = target / "prepare.sh"
    assert script.stat().st_nlink == 1 and script.stat().st_mode & stat.S_IXUSR
    assert object_path(home, sha(script.read_bytes())).stat().st_ino != script.stat().st_ino
    assert os.path.islink(target / "latest-readme")
    ok(data("status", "ds", target, cwd=home.project))
    assert data_json("status", "ds", target, cwd=home.project)["clean"] is True
    assert_store_consistent(home)


def test_hardlinked_checkout_never_changes_the_mode_of_a_stored_object(home, tmp_path):
    source = build_tree(home.project / "data", [(b"tool", "file", b"#!/bin/sh\necho hi\n")])
    ok(data("add", "ds", "data", cwd=home.project))
    (source / "tool").chmod(0o755)
    ok(data("add", "ds", "data", cwd=home.project))
    target = tmp_path / "linked"
    ok(data("checkout", "ds@1", target, "--link", "hardlink", cwd=home.project))
    stored = object_path(home, sha(b"#!/bin/sh\necho hi\n"))
    assert stored.stat().st_ino == (target / "tool").stat().st_ino
    ok(data("checkout", "ds@2", target, "--link", "hardlink", cwd=home.project))
    assert (target / "tool").stat().st_mode & stat.S_IXUSR, "ds@2 has the executable bit"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444, \
        f"the stored object's mode became {oct(stat.S_IMODE(stored.stat().st_mode))}"


def test_switching_the_workspace_between_versions_needs_no_force(three_versions):
    home, saved = three_versions
    workspace = home.project / "data"
    unchanged_file = workspace / "train" / "c.csv"  # the same in every version
    inode = unchanged_file.stat().st_ino
    for number in [1, 3, 2, 1, 2, 3]:
        result = data("checkout", f"ds@{number}", cwd=home.project)  # DIR: where the versions were added from
        assert result.returncode == 0, f"checkout ds@{number}: {result}"
        assert result.stdout.startswith(f"ds@{number} -> {workspace}: ")
        assert "discarded" not in result.stdout
        assert_same_tree(saved[number], workspace)
        assert "is clean" in ok(data("status", f"ds@{number}", cwd=home.project))
        assert unchanged_file.stat().st_ino == inode, "a file already right was rewritten"
    # Directories the version does not have are gone (labels/ exists only in ds@1).
    assert not (workspace / "labels").exists()
    assert not (workspace / "new").exists() or (workspace / "new" / "n.bin").exists()
    document = data_json("checkout", "ds@1", cwd=home.project)
    assert (document["written"], document["unchanged"], document["removed"], document["discarded"]) == (5, 4, 3, 0)
    assert (workspace / "labels" / "l.txt").read_bytes() == b"cat\ndog\n" and not (workspace / "new").exists()


def test_checkout_refuses_local_changes_then_force_discards_them(three_versions, tmp_path):
    home, saved = three_versions
    workspace = home.project / "data"
    write(workspace / "README.md", "my local edit\n")
    write(workspace / "notes" / "untracked.txt", "mine\n")
    before = snapshot(workspace)
    for extra in ([], ["--link", "hardlink"]):
        result = data("checkout", "ds@1", *extra, cwd=home.project)
        expect_error(result, 4, "2 file(s)", "stored nowhere", "modified: README.md",
                     "not in the version: notes/untracked.txt", "nothing was changed", "--force")
        assert result.stdout == ""
        assert snapshot(workspace) == before, "a refused checkout changed the directory"
    data_error_json("checkout", "ds@1", cwd=home.project, exit_code=4, code="conflict")
    assert snapshot(workspace) == before
    # A file whose content is stored (it is in some version) may go without --force.
    write(workspace / "notes" / "untracked.txt", "# the data\n")
    write(workspace / "README.md", "# the data, version 3\n")
    ok(data("checkout", "ds@1", cwd=home.project))
    assert_same_tree(saved[1], workspace)

    write(workspace / "README.md", "edited again\n")
    write(workspace / "stray.bin", os.urandom(100))
    (workspace / "train" / "a.csv").chmod(0o755)  # a mode change alone loses no content
    result = data("checkout", "ds@3", "--force", cwd=home.project)
    assert result.returncode == 0, result
    assert "discarded 2 local change(s) (--force)" in result.stdout
    assert_same_tree(saved[3], workspace)
    assert data_json("checkout", "ds@3", "--force", cwd=home.project)["discarded"] == 0


def test_checkout_into_a_file_is_refused_and_a_stored_file_in_the_way_is_replaced(home, tmp_path):
    build_tree(home.project / "data", [(b"sub/f.txt", "file", b"f\n")])
    ok(data("add", "ds", "data", cwd=home.project))
    (tmp_path / "a-file").write_bytes(b"not a directory")
    expect_error(data("checkout", "ds", tmp_path / "a-file", cwd=home.project), 4, "not a directory")
    assert (tmp_path / "a-file").read_bytes() == b"not a directory"
    # A file with stored content where the version has a directory: replaced without --force.
    target = tmp_path / "target"
    write(target / "sub", "f\n")
    ok(data("checkout", "ds", target, cwd=home.project))
    assert (target / "sub" / "f.txt").read_bytes() == b"f\n"


def test_an_empty_directory_where_the_version_has_a_file_does_not_block_checkout(home, tmp_path):
    p = home.project
    source = build_tree(p / "data", [(b"a.txt", "file", b"a\n"), (b"x/sub/f", "file", b"f\n"), (b"z.txt", "file", b"z\n")])
    ok(data("add", "ds", "data", cwd=p))
    shutil.rmtree(source / "x")
    write(source / "x", "now a file\n")
    ok(data("add", "ds", "data", cwd=p))
    target = tmp_path / "target"
    ok(data("checkout", "ds@1", target, cwd=p))
    (target / "x" / "empty").mkdir()  # an empty directory holds no content: nothing is lost by removing it
    before = snapshot(target)
    result = data("checkout", "ds@2", target, cwd=p)
    if result.returncode != 0:  # a refusal is acceptable, if it changes nothing and says why
        assert result.returncode == 4 and "appeared while checkout was writing" not in result.stderr, result
        assert snapshot(target) == before, "a refused checkout changed the directory"
        result = data("checkout", "ds@2", target, "--force", cwd=p)
    assert result.returncode == 0, result
    assert_same_tree(source, target)


def test_a_directory_holding_a_fifo_where_the_version_has_a_file_is_refused_up_front(home, tmp_path):
    p = home.project
    source = build_tree(p / "data", [(b"a.txt", "file", b"a\n"), (b"x/f", "file", b"f\n")])
    ok(data("add", "ds", "data", cwd=p))
    shutil.rmtree(source / "x")
    write(source / "x", "now a file\n")
    ok(data("add", "ds", "data", cwd=p))
    target = tmp_path / "target"
    ok(data("checkout", "ds@1", target, cwd=p))
    os.mkfifo(target / "x" / "pipe")  # not content mlops manages: checkout must not delete it
    before = snapshot(target)
    for extra in ([], ["--force"]):
        result = data("checkout", "ds@2", target, *extra, cwd=p)
        assert result.returncode == 4, result
        assert "in the way of file x: x/pipe" in result.stderr
        assert snapshot(target) == before, "a refused checkout changed the directory"


# rm and gc ----------------------------------------------------------------------------------------


def test_removed_version_is_not_found_and_rm_again_is_a_no_op(three_versions):
    home, saved = three_versions
    p = home.project
    ok(data("tag", "ds@2", "old", cwd=p))
    assert ok(data("rm", "ds@2", cwd=p)) == \
        "removed ds@2 and its tag(s) old; `mlops artifact gc` frees the files no other version shares\n"
    for args in (["show", "ds@2"], ["checkout", "ds@2", p / "out"], ["diff", "ds@1", "ds@2"], ["status", "ds@2"]):
        expect_error(data(*args, cwd=p), 3, "ds@2 was removed")
    expect_error(data("show", "ds@old", cwd=p), 3, 'no version tagged "old"')
    assert not (p / "out").exists()
    assert [v["version"] for v in data_json("log", "ds", cwd=p)["versions"]] == [3, 1]
    every = data_json("log", "ds", "--all", cwd=p)["versions"]
    assert [(v["version"], v["deleted_at"] is not None) for v in every] == [(3, False), (2, True), (1, False)]
    assert "2 (removed)" in ok(data("log", "ds", "--all", cwd=p))
    again = data("rm", "ds@2", cwd=p)
    assert again.returncode == 0 and again.stdout.startswith("ds@2 was already removed (")
    assert data_json("rm", "ds@2", cwd=p)["already"] is True
    for ref in ["ds", "ds@latest", "ds@old"]:
        expect_error(data("rm", ref, cwd=p), 2, "NAME@N")
    # Removing the latest: NAME means the one before; numbers are never reused.
    ok(data("rm", "ds@3", cwd=p))
    assert data_json("show", "ds", cwd=p)["version"] == 1
    write(p / "data" / "fresh.txt", "fresh\n")
    assert data_json("add", "ds", "data", cwd=p)["version"] == 4
    ok(data("rm", "ds@1", cwd=p))
    ok(data("rm", "ds@4", cwd=p))
    expect_error(data("show", "ds", cwd=p), 3, "no versions left")
    assert ok(data("log", "ds", cwd=p)) == "ds has no versions left\n"
    assert data_json("ls", cwd=p)["datasets"][0]["latest"] is None


def test_rm_then_gc_frees_only_what_no_other_version_shares(home):
    p = home.project
    source = build_tree(p / "data", [(b"shared.bin", "file", b"in both versions\n"),
                                     (b"only1.bin", "file", b"only in version 1\n")])
    ok(data("add", "ds", "data", cwd=p))
    tree1 = sha(tree_manifest(source))
    (source / "only1.bin").unlink()
    write(source / "only2.bin", "only in version 2\n")
    ok(data("add", "ds", "data", cwd=p))
    tree2 = sha(tree_manifest(source))
    before = set(object_files(home))
    ok(data("rm", "ds@1", cwd=p))
    assert set(object_files(home)) == before, "rm keeps the files until gc"

    result = artifact("--json", "gc", cwd=p)
    assert result.returncode == 0, f"gc after data rm: {result}"
    document = validate_document(parse_one_document(result.stdout), "artifact-gc")
    freed = {o["digest"].removeprefix("sha256:") for o in document["removed"]}
    assert freed == {tree1, sha(b"only in version 1\n")}
    assert set(object_files(home)) == before - freed
    assert tree2 in object_files(home) and sha(b"in both versions\n") in object_files(home)
    assert_store_consistent(home)
    ok(data("checkout", "ds@2", p / "out", cwd=p))
    assert_same_tree(source, p / "out")
    expect_error(data("checkout", "ds@1", p / "out1", cwd=p), 3, "ds@1 was removed")


# git lineage --------------------------------------------------------------------------------------


def git(*args, cwd) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"git {args}: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture
def repository(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is needed to make a repository")
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "trunk", cwd=repo)
    write(repo / "train.py", "print('train')\n")
    write(repo / "data" / "raw" / "a.csv", "1,2\n")  # untracked: data usually is
    git("add", "train.py", cwd=repo)
    git("commit", "-q", "-m", "first", cwd=repo)
    git("remote", "add", "origin", "https://user:secret@example.com/x.git", cwd=repo)
    return repo


def test_git_lineage_is_recorded_from_a_real_repository(repository):
    home = make_home(repository)  # the project is the repository; .mlops is untracked
    head = git("rev-parse", "HEAD", cwd=repository)
    first = data_json("add", "raw", "data/raw", cwd=repository)
    assert first["git"] == {"commit": head, "branch": "trunk", "dirty": False, "path": "data/raw",
                            "remote": "https://example.com/x.git"}, "untracked files do not make a tree dirty"
    shown = ok(data("show", "raw", cwd=repository))
    assert f"git commit: {head}\n" in shown
    assert "git branch: trunk\n" in shown and "git path:   data/raw\n" in shown
    assert "git remote: https://example.com/x.git\n" in shown
    assert "COMMIT" in ok(data("log", "raw", cwd=repository)) and head[:10] in ok(data("log", "raw", cwd=repository))

    # A tracked file modified: dirty. From a subdirectory, the data given relative to it.
    write(repository / "train.py", "print('changed')\n")
    write(repository / "data" / "raw" / "b.csv", "3,4\n")
    second = data_json("add", "raw", "raw", cwd=repository / "data")
    assert second["version"] == 2
    assert second["git"]["dirty"] is True and second["git"]["commit"] == head
    assert second["git"]["path"] == "data/raw" and second["path"] == "data/raw"
    assert f"{head[:10]}+dirty" in ok(data("log", "raw", cwd=repository))
    assert "(dirty: uncommitted changes)" in ok(data("show", "raw@2", cwd=repository))

    # A new commit on another branch.
    git("checkout", "-q", "-b", "feature", cwd=repository)
    git("commit", "-q", "-am", "second", cwd=repository)
    write(repository / "data" / "raw" / "c.csv", "5,6\n")
    third = data_json("add", "raw", "data/raw", cwd=repository)
    assert third["git"]["commit"] == git("rev-parse", "HEAD", cwd=repository) != head
    assert third["git"]["branch"] == "feature" and third["git"]["dirty"] is False

    # The credentials are nowhere: not in any output, not in the database.
    for result in [data("show", f"raw@{n}", cwd=repository) for n in (1, 2, 3)] + [data("log", "raw", cwd=repository)]:
        assert "secret" not in result.stdout and "user:" not in result.stdout
    assert b"secret" not in home.db.read_bytes()
    wal = home.db.with_name("mlops.db-wal")
    assert not wal.exists() or b"secret" not in wal.read_bytes()
    rows = query(home, "SELECT git_remote FROM dataset_versions")
    assert rows == [("https://example.com/x.git",)] * 3


def test_data_outside_the_repository_takes_the_lineage_of_the_working_directory(repository, tmp_path):
    make_home(repository)
    outside = build_tree(tmp_path / "elsewhere", [(b"f", "file", b"x\n")])
    document = data_json("add", "ext", outside, cwd=repository / "data")
    assert document["git"]["commit"] == git("rev-parse", "HEAD", cwd=repository)
    assert document["git"]["path"] == "data"
    assert document["path"] == str(outside), "a path outside the project is recorded absolute"


def test_no_git_fields_outside_a_repository(home):
    build_tree(home.project / "data", [(b"f", "file", b"x\n")])
    document = data_json("add", "ds", "data", cwd=home.project)
    assert document["git"] is None
    assert "git:        not in a git repository\n" in ok(data("show", "ds", cwd=home.project))
    assert ok(data("log", "ds", cwd=home.project)).splitlines()[1].split()[5] == "-"  # 1 DATE 1 2 B -
    assert query(home, "SELECT git_commit, git_branch, git_dirty, git_path, git_remote FROM dataset_versions") == [
        (None, None, None, None, None)]


# Awkward names, modes, links ----------------------------------------------------------------------


def test_awkward_file_names_round_trip(home, tmp_path):
    names = [b"with space.txt", b"  leading and trailing  ", b"new\nline", b"tab\there", b"latin1-\xe9t\xe9",
             b"bad\xff\xfe/inner file", b"utf8-\xc3\xa9t\xc3\xa9", b"back\\slash", b"quote\"and'", b"-dash",
             b"dir with space/new\nline too/\x80\x81.bin"]
    spec = [(name, "file", b"content of " + name) for name in names]
    source = build_tree(home.project / "data", spec)
    ok(data("add", "ds", "data", cwd=home.project))
    target = tmp_path / "out"
    result = run_data_bytes("checkout", "ds", os.fsencode(target), cwd=home.project)
    assert result.returncode == 0, result.stderr
    assert set(tree_state(target)) == set(names)
    assert_same_tree(source, target)
    # Non-UTF-8 names also go through --json (escaped, not dropped).
    listed = run_bytes("--json", "data", "show", "ds", "--files", cwd=home.project)
    assert listed.returncode == 0, listed.stderr
    paths = [f["path"] for f in validate_document(json.loads(listed.stdout), "data-show")["entries"]]
    assert sorted(paths) == sorted(name.decode("utf-8", "replace") for name in names), \
        "non-UTF-8 bytes are shown as U+FFFD, every name is listed"
    # And status sees a checkout of them as clean, a rename of one as a rename.
    assert data_json("status", "ds", target, cwd=home.project)["clean"] is True
    os.rename(os.path.join(os.fsencode(target), b"new\nline"), os.path.join(os.fsencode(target), b"new\nline\xff"))
    changes = validate_document(json.loads(run_bytes("--json", "data", "status", "ds", os.fsencode(target),
                                                     cwd=home.project).stdout), "data-status")
    assert changes["summary"]["renamed"] == 1 and len(changes["changes"]) == 1


def test_hardlink_checkout_of_content_shared_by_executables_and_plain_files(home, tmp_path):
    # Plain files are hard-linked to their object while, on other threads, executables with the
    # same content are copied from it: each link moves the object's ctime mid-read. A stored
    # object is checked by its digest, so that must not read as "changed while it was being read".
    entries = []
    for i in range(64):
        entries.append((f"exec/{i:02}".encode(), "exec", b"one content for all\n"))
        entries.append((f"plain/{i:02}".encode(), "file", b"one content for all\n"))
    source = build_tree(home.project / "data", entries)
    ok(data("add", "ds", "data", cwd=home.project))
    for attempt in range(3):
        target = tmp_path / f"out-{attempt}"
        ok(data("checkout", "ds", target, "--link", "hardlink", "--jobs", "8", cwd=home.project))
        assert tree_state(target) == tree_state(source)
    ok(artifact("verify", "--all", cwd=home.project))


def test_executable_bits_and_symbolic_links_round_trip(home, tmp_path):
    source = build_tree(home.project / "data", [
        (b"bin/run", "exec", b"#!/bin/sh\necho run\n"),
        (b"bin/not-run", "file", b"#!/bin/sh\necho not\n"),
        (b"same-content-exec", "exec", b"shared\n"),
        (b"same-content-plain", "file", b"shared\n"),
        (b"to-file", "link", b"bin/run"),
        (b"to-dir", "link", b"bin"),
        (b"dangling", "link", b"does/not/exist"),
        (b"absolute", "link", b"/etc/hostname"),
        (b"bin/up", "link", b"../same-content-plain"),
    ])
    (source / "bin" / "group-x").write_bytes(b"g\n")
    (source / "bin" / "group-x").chmod(0o654)  # only the owner's x bit counts
    ok(data("add", "ds", "data", cwd=home.project))
    for link in ["copy", "auto", "hardlink"]:
        target = tmp_path / f"out-{link}"
        ok(data("checkout", "ds", target, "--link", link, cwd=home.project))
        diff_r(source, target)
        state = tree_state(target)
        assert state == tree_state(source)
        assert state[b"bin/run"][1] is True and state[b"same-content-exec"][1] is True
        assert state[b"bin/not-run"][1] is False and state[b"same-content-plain"][1] is False
        assert state[b"bin/group-x"][1] is False
        for name, expected in [(b"to-file", b"bin/run"), (b"to-dir", b"bin"), (b"dangling", b"does/not/exist"),
                               (b"absolute", b"/etc/hostname"), (b"bin/up", b"../same-content-plain")]:
            path = os.path.join(os.fsencode(target), name)
            assert os.path.islink(path), f"{name!r} is not a symbolic link"
            assert os.readlink(path) == expected
        assert not (target / "to-dir").resolve().is_relative_to(source), "a link must not point at the source"
    # A mode change alone, both ways, is a change status and checkout see.
    target = tmp_path / "out-copy"
    (target / "bin" / "run").chmod(0o644)
    (target / "bin" / "not-run").chmod(0o755)
    changes = data_json("status", "ds", target, cwd=home.project)["changes"]
    assert sorted((c["change"], c["path"], c["before"]["mode"], c["after"]["mode"]) for c in changes) == [
        ("modified", "bin/not-run", "100644", "100755"), ("modified", "bin/run", "100755", "100644")]
    ok(data("checkout", "ds", target, cwd=home.project))  # no content lost: no --force needed
    assert tree_state(target) == tree_state(source)
    # A link replaced by a file with the link's target text as content is a change too.
    (target / "to-file").unlink()
    write(target / "to-file", "bin/run")
    assert data_json("status", "ds", target, cwd=home.project)["summary"]["modified"] == 1
    ok(data("checkout", "ds", target, cwd=home.project))
    assert os.readlink(target / "to-file") == "bin/run"


# add details --------------------------------------------------------------------------------------


def test_add_records_where_the_data_came_from_and_reports_in_json(home, tmp_path):
    p = home.project
    build_tree(p / "sub" / "data", [(b"f", "file", b"x\n")])
    document = data_json("add", "ds", "data", "-m", "from a subdirectory", "--no-cache", "-j", "1",
                         cwd=p / "sub")
    assert document["path"] == "sub/data", "a path inside the project is recorded relative to the project"
    assert document["message"] == "from a subdirectory"
    assert document["files"] == 1 and document["size"] == 2 and document["skipped"] == []
    assert document["tree"] == "sha256:" + sha(tree_manifest(p / "sub" / "data"))
    assert document["same_as"] is None and document["created"] is True
    # checkout and status without DIR find it from anywhere in the project.
    (p / "sub" / "data" / "f").write_bytes(b"y\n")
    assert data_json("status", "ds", cwd=p)["clean"] is False
    expect_error(data("checkout", "ds", cwd=p), 4, "modified: f")
    ok(data("checkout", "ds", "--force", cwd=p / "sub" / "data"))
    assert (p / "sub" / "data" / "f").read_bytes() == b"x\n"
    # An empty directory is a version with no files.
    (tmp_path / "empty").mkdir()
    empty = data_json("add", "nothing", tmp_path / "empty", cwd=p)
    assert empty["files"] == 0 and empty["path"] == str(tmp_path / "empty")
    ok(data("checkout", "nothing", tmp_path / "e2", cwd=p))
    assert listing(tmp_path / "e2") == []
    for link in ["copy", "hardlink", "auto"]:
        ok(data("add", "ds", "sub/data", "--link", link, cwd=p))
    expect_error(data("add", "ds", "sub/data", "--link", "bogus", cwd=p), 2, "bogus")
