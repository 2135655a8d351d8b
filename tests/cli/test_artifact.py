"""`mlops artifact add|get|cat|ls|show|verify|gc`: the content-addressed object store, seen from the
outside (issue 3). Digests are compared with `mlops hash` and with Python's hashlib; the store is
inspected on disk (.mlops/objects/sha256/xx/...) and in the database (objects, object_refs).

Faults (unreadable files as another user, a full disk, kill -9, SIGINT, concurrent commands) are in
test_artifact_faults.py. The helpers here are shared with it."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from conftest import BIN, clean_env, expect_error, parse_one_document, run_mlops, validate_document
from test_hash import AWKWARD_TREE, build_tree, manifest_entries, random_tree, tree_manifest

FICLONE = 0x40049409


# Running the binary -------------------------------------------------------------------------------


class Run(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: str


def run_bytes(*args, cwd, env=None, prefix=None, binary=None, timeout=60) -> Run:
    """Runs `mlops ARGS...` with str/bytes/path arguments; stdout stays bytes (binary-safe)."""
    command = [*(prefix or []), os.fsencode(str(binary or BIN)),
               *(a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args)]
    done = subprocess.run(command, cwd=cwd, env=clean_env(env), stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr.decode("utf-8", "backslashreplace"))


def artifact(*args, cwd, **kwargs):
    """`mlops artifact ARGS...` -> Result(returncode, stdout, stderr), text."""
    return run_mlops("artifact", *args, cwd=cwd, **kwargs)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}\n{result.stdout!r}"
    return result.stdout


def ok_json(result, schema):
    """A successful --json run: one document, valid against schemas/json/SCHEMA.schema.json, no stderr."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}\n{result.stdout}"
    assert result.stderr == "", f"stderr should be empty on success with --json: {result.stderr!r}"
    return validate_document(parse_one_document(result.stdout), schema)


def error_json(result, exit_code, code_name):
    assert result.returncode == exit_code, f"expected exit {exit_code}, got {result}"
    document = validate_document(parse_one_document(result.stdout), "error")
    assert document["error"]["code"] == code_name and document["error"]["exit_code"] == exit_code
    return document


def add_json(home, *paths, cwd=None, extra=()):
    return ok_json(artifact("--json", "add", *extra, *paths, cwd=cwd or home.project), "artifact-add")


def add_one(home, path, *extra, cwd=None) -> str:
    """Adds one path; returns the 64 hex digits of its digest."""
    document = add_json(home, path, cwd=cwd, extra=extra)
    return document["targets"][0]["digest"].removeprefix("sha256:")


# Inspecting the store -----------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def object_root(home) -> Path:
    return home.dir / "objects" / "sha256"


def object_path(home, hex_digest: str) -> Path:
    return object_root(home) / hex_digest[:2] / hex_digest[2:]


def object_files(home) -> dict[str, Path]:
    """Every file under objects/sha256, by the digest its place names (xx + rest)."""
    files = {}
    root = object_root(home)
    if root.exists():
        for path in root.rglob("*"):
            if not path.is_dir():
                files[path.parent.name + path.name] = path
    return files


def query(home, sql, *params) -> list[tuple]:
    connection = sqlite3.connect(f"file:{home.db}?mode=ro", uri=True)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def execute(home, sql, *params):
    connection = sqlite3.connect(home.db, isolation_level=None)
    try:
        connection.execute(sql, params)
    finally:
        connection.close()


def recorded(home) -> set[str]:
    return {row[0] for row in query(home, "SELECT digest FROM objects")}


def references(home) -> set[tuple]:
    return set(query(home, "SELECT digest, kind, owner FROM object_refs"))


def tmp_entries(home) -> list[str]:
    return sorted(os.listdir(home.dir / "tmp"))


def stored_state(home):
    """What a user could see change: object files (with identity and content), rows, tmp/."""
    files = {}
    for digest, path in object_files(home).items():
        info = path.lstat()
        files[digest] = (info.st_ino, info.st_mtime_ns, stat.S_IMODE(info.st_mode), path.read_bytes())
    rows = set(query(home, "SELECT digest, kind, size, created_at FROM objects"))
    return files, rows, references(home), tmp_entries(home)


def flip_byte(path: Path, offset: int = 0):
    """Corrupts a stored object the way a disk would: one byte changes, the file stays read-only."""
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)


def unpin(home, owner: Path):
    """Removes the `artifact` pin of a path, as if nothing referred to what was added from it."""
    execute(home, "DELETE FROM object_refs WHERE kind = 'artifact' AND owner = ?", str(owner))


def assert_store_consistent(home):
    """Every row has its file, every file holds the content its name says, verify passes, tmp/ is empty."""
    files = object_files(home)
    rows = recorded(home)
    assert rows <= set(files), f"rows without an object file: {sorted(rows - set(files))}"
    for digest, path in files.items():
        assert sha(path.read_bytes()) == digest, f"{path} is not the content its name says (half-written?)"
    ok(artifact("verify", "--all", cwd=home.project))
    assert tmp_entries(home) == []


def db_check(home):
    return ok_json(run_mlops("--json", "db", "check", cwd=home.project), "db-check")


def escaped_line(digest: str, path: bytes) -> bytes:
    """One sha256sum line, escaped like GNU's for names with a backslash or a newline."""
    if b"\\" in path or b"\n" in path:
        return b"\\" + digest.encode() + b"  " + path.replace(b"\\", b"\\\\").replace(b"\n", b"\\n") + b"\n"
    return digest.encode() + b"  " + path + b"\n"


def ficlone_works(directory: Path) -> bool:
    source, target = directory / ".ficlone-source", directory / ".ficlone-target"
    source.write_bytes(b"x" * 4096)
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        return True
    except OSError as error:
        assert error.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY), error
        return False
    finally:
        source.unlink()
        target.unlink(missing_ok=True)


def get_leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(".mlops-get-"))


# add ----------------------------------------------------------------------------------------------


def test_add_prints_the_digests_that_mlops_hash_prints(home):
    (home.project / "weights.bin").write_bytes(os.urandom(300_000))
    (home.project / "empty").write_bytes(b"")
    build_tree(home.project / "tree", AWKWARD_TREE)
    args = ["weights.bin", "empty", "tree"]
    expected = run_bytes("hash", *args, cwd=home.project)
    assert expected.returncode == 0, expected.stderr
    added = run_bytes("artifact", "add", *args, cwd=home.project)
    assert added.returncode == 0, added.stderr
    assert added.stdout == expected.stdout
    assert added.stderr == "", "no progress bar or chatter off a TTY"
    lines = added.stdout.splitlines()
    assert lines[0] == f"{sha((home.project / 'weights.bin').read_bytes())}  weights.bin".encode()
    assert lines[1] == f"{sha(b'')}  empty".encode()
    assert lines[2] == f"{sha(tree_manifest(home.project / 'tree'))}  tree".encode()


def test_objects_are_read_only_files_named_by_their_digest(home):
    tree = build_tree(home.project / "tree", AWKWARD_TREE)
    (home.project / "loose.bin").write_bytes(os.urandom(5000))
    ok(artifact("add", "tree", "loose.bin", cwd=home.project))
    entries = manifest_entries(tree)
    tree_digest = sha(tree_manifest(tree))
    expected = {digest for _, _, _, digest in entries} | {tree_digest, sha((home.project / "loose.bin").read_bytes())}
    files = object_files(home)
    assert set(files) == expected
    assert recorded(home) == expected
    for digest, path in files.items():
        info = path.lstat()
        assert stat.S_ISREG(info.st_mode), f"{path} is not a regular file (a symlink is stored as its target text)"
        assert stat.S_IMODE(info.st_mode) == 0o444, f"{path} has mode {oct(stat.S_IMODE(info.st_mode))}, not read-only"
        assert path.parent.parent == object_root(home)
        assert path.parent.name == digest[:2] and path.name == digest[2:] and len(path.name) == 62
        assert sha(path.read_bytes()) == digest
    kinds = dict(query(home, "SELECT digest, kind FROM objects"))
    assert [d for d, kind in kinds.items() if kind == "tree"] == [tree_digest]
    sizes = dict(query(home, "SELECT digest, size FROM objects"))
    assert all(sizes[d] == files[d].stat().st_size for d in files)
    assert tmp_entries(home) == []


def test_adding_again_writes_nothing(home):
    random_tree(home.project / "tree", files=40)
    (home.project / "model.bin").write_bytes(os.urandom(70_000))
    first = add_json(home, "tree", "model.bin")
    unique = object_files(home)
    assert first["objects_written"] == len(unique)
    assert first["bytes_written"] == sum(path.stat().st_size for path in unique.values())
    assert first["objects_written"] + first["objects_existing"] == 40 + 1 + 1  # files, manifest, loose file
    before = stored_state(home)
    for extra in ([], ["--no-cache"], ["--link", "copy"], ["--link", "hardlink"]):
        again = add_json(home, "tree", "model.bin", extra=extra)
        assert again["objects_written"] == 0, f"add {extra} wrote objects again: {again}"
        assert again["bytes_written"] == 0
        assert again["objects_existing"] == 42
        assert again["targets"] == first["targets"]
        assert stored_state(home) == before, f"add {extra} touched the store"


def test_identical_content_is_stored_once(home):
    same, other = b"the same bytes\n" * 100, b"other\n"
    build_tree(home.project / "tree", [(b"a/x", "file", same), (b"b/y", "file", same), (b"b/z", "exec", same),
                                       (b"c", "file", other)])
    (home.project / "copy.txt").write_bytes(same)
    document = add_json(home, "tree", "copy.txt")
    tree_digest = sha(tree_manifest(home.project / "tree"))
    assert set(object_files(home)) == {sha(same), sha(other), tree_digest}
    assert document["objects_written"] == 3
    assert document["objects_existing"] == 3  # two more copies of `same` in the tree, one outside
    assert document["bytes_written"] == len(same) + len(other) + len(tree_manifest(home.project / "tree"))
    shown = ok_json(artifact("--json", "show", sha(same), cwd=home.project), "artifact-show")
    assert {(r["kind"], r["owner"]) for r in shown["references"]} == {
        ("tree", tree_digest), ("artifact", str(home.project / "copy.txt"))}


def test_add_json_describes_each_target(home):
    (home.project / "f.bin").write_bytes(b"12345")
    random_tree(home.project / "d", files=7)
    document = add_json(home, "f.bin", "d")
    assert document["targets"] == [
        {"path": "f.bin", "kind": "blob", "digest": "sha256:" + sha(b"12345"), "size": 5, "files": 1},
        {"path": "d", "kind": "tree", "digest": "sha256:" + sha(tree_manifest(home.project / "d")),
         "size": sum(size for _, _, size, _ in manifest_entries(home.project / "d")), "files": 7},
    ]


def test_missing_path_exits_3_and_records_nothing(home):
    (home.project / "present.bin").write_bytes(b"present")
    (home.project / "dir").mkdir()
    for missing in ["missing.bin", "dir/nope"]:
        result = artifact("add", "present.bin", missing, cwd=home.project)
        expect_error(result, 3, missing)
        assert result.stdout == ""
        error_json(artifact("--json", "add", "present.bin", missing, cwd=home.project), 3, "not_found")
    assert object_files(home) == {}
    assert query(home, "SELECT * FROM objects") == [] and query(home, "SELECT * FROM object_refs") == []
    assert tmp_entries(home) == []


# Link modes ---------------------------------------------------------------------------------------


def test_link_copy_stores_an_independent_copy(home):
    source = home.project / "data.bin"
    source.write_bytes(os.urandom(10_000))
    source.chmod(0o644)
    digest = add_one(home, "data.bin", "--link", "copy")
    stored = object_path(home, digest)
    assert stored.stat().st_ino != source.stat().st_ino
    assert stat.S_IMODE(source.stat().st_mode) == 0o644, "copy mode must not touch the source"
    source.write_bytes(b"the user edits the file afterwards")
    assert sha(stored.read_bytes()) == digest
    ok(artifact("verify", "--all", cwd=home.project))


def test_link_hardlink_shares_the_inode_and_makes_the_source_read_only(home):
    source = home.project / "data.bin"
    source.write_bytes(os.urandom(10_000))
    source.chmod(0o644)
    build_tree(home.project / "tree", [(b"inside.bin", "file", os.urandom(3000))])
    digest = add_one(home, "data.bin", "--link", "hardlink")
    stored = object_path(home, digest)
    assert stored.stat().st_ino == source.stat().st_ino, "--link hardlink did not hard-link the object"
    assert source.stat().st_nlink == 2
    assert stat.S_IMODE(source.stat().st_mode) & 0o222 == 0, "the hard-linked source must become read-only"
    inside = home.project / "tree" / "inside.bin"
    ok(artifact("add", "--link", "hardlink", "tree", cwd=home.project))
    assert object_path(home, sha(inside.read_bytes())).stat().st_ino == inside.stat().st_ino
    ok(artifact("verify", "--all", cwd=home.project))
    assert tmp_entries(home) == []


def test_link_reflink_fails_clearly_where_the_filesystem_cannot_clone(home):
    if ficlone_works(home.dir):
        pytest.skip("this filesystem supports FICLONE (reflink): nothing to refuse")
    source = home.project / "data.bin"
    source.write_bytes(os.urandom(10_000))
    result = artifact("add", "--link", "reflink", "data.bin", cwd=home.project)
    expect_error(result, 1, "reflink", "data.bin")
    assert result.stdout == ""
    assert object_files(home) == {} and recorded(home) == set() and tmp_entries(home) == []
    # auto falls back to a copy on the same filesystem
    digest = add_one(home, "data.bin", "--link", "auto")
    assert object_path(home, digest).stat().st_ino != source.stat().st_ino
    result = artifact("get", "--link", "reflink", digest, "out.bin", cwd=home.project)
    expect_error(result, 1, "reflink")
    assert not (home.project / "out.bin").exists() and get_leftovers(home.project) == []


@pytest.mark.parametrize("verb", ["add", "get"])
def test_bad_link_mode_exits_2(home, verb):
    (home.project / "data.bin").write_bytes(b"data")
    digest = add_one(home, "data.bin")
    args = ["data.bin"] if verb == "add" else [digest, "out.bin"]
    for mode in ["symlink", "COPY", ""]:
        expect_error(artifact(verb, "--link", mode, *args, cwd=home.project), 2, "--link")
    assert not (home.project / "out.bin").exists()


# get ----------------------------------------------------------------------------------------------


def test_get_blob_writes_the_original_bytes(home):
    data = os.urandom(200_000) + b"\0\r\n no newline at the end"
    (home.project / "model.bin").write_bytes(data)
    digest = add_one(home, "model.bin")
    document = ok_json(artifact("--json", "get", digest, "out.bin", cwd=home.project), "artifact-get")
    assert document == {"digest": "sha256:" + digest, "kind": "blob", "out": "out.bin"}
    out = home.project / "out.bin"
    assert out.read_bytes() == data
    assert stat.S_ISREG(out.lstat().st_mode)
    assert stat.S_IMODE(out.stat().st_mode) & 0o200, "a file got from the store is the user's to edit"
    ok(artifact("get", "--link", "copy", digest, "copied.bin", cwd=home.project))
    copied = home.project / "copied.bin"
    assert copied.read_bytes() == data and copied.stat().st_ino != object_path(home, digest).stat().st_ino
    assert get_leftovers(home.project) == []


def test_get_tree_reproduces_files_modes_links_and_names(home):
    tree = build_tree(home.project / "tree", AWKWARD_TREE)
    digest = add_one(home, "tree")
    document = ok_json(artifact("--json", "get", digest, "copy", cwd=home.project), "artifact-get")
    assert document == {"digest": "sha256:" + digest, "kind": "tree", "out": "copy"}
    out = home.project / "copy"
    assert manifest_entries(out) == manifest_entries(tree)
    base = os.fsencode(out)
    for path, kind, payload in AWKWARD_TREE:
        full = base + b"/" + path
        if kind in ("file", "exec"):
            info = os.lstat(full)
            assert stat.S_ISREG(info.st_mode), path
            with open(full, "rb") as file:
                assert file.read() == payload, path
            assert bool(info.st_mode & stat.S_IXUSR) == (kind == "exec"), f"{path!r}: executable bit"
            assert info.st_mode & stat.S_IWUSR, f"{path!r} should be writable by its owner"
        elif kind == "link":
            assert os.path.islink(full) and os.readlink(full) == payload, path
    assert (out / "with space" / "file name.txt").read_bytes() == b"spaces\n"
    assert os.path.isfile(base + b"/new\nline")
    assert (out / "src" / "deep" / "er" / "still" / "leaf.txt").read_bytes() == b"deep\n"
    digest_again = run_bytes("hash", "copy", cwd=home.project)
    assert digest_again.stdout[:64].decode() == digest
    assert get_leftovers(home.project) == []


def test_get_refuses_an_existing_out_unless_force(home):
    (home.project / "a.bin").write_bytes(b"stored content")
    random_tree(home.project / "tree", files=10)
    blob = add_one(home, "a.bin")
    tree = add_one(home, "tree")
    out_file, out_dir = home.project / "out.bin", home.project / "out-dir"
    out_file.write_bytes(b"old")
    out_dir.mkdir()
    (out_dir / "stale").write_bytes(b"old")
    for digest, out in [(blob, out_file), (tree, out_dir)]:
        expect_error(artifact("get", digest, out.name, cwd=home.project), 4, out.name, "--force")
        error_json(artifact("--json", "get", digest, out.name, cwd=home.project), 4, "conflict")
    assert out_file.read_bytes() == b"old" and (out_dir / "stale").read_bytes() == b"old"
    ok(artifact("get", "--force", blob, "out.bin", cwd=home.project))
    assert out_file.read_bytes() == b"stored content"
    ok(artifact("get", "--force", tree, "out-dir", cwd=home.project))
    assert not (out_dir / "stale").exists()
    assert manifest_entries(out_dir) == manifest_entries(home.project / "tree")
    # an existing symbolic link is an existing OUT too, even a dangling one
    (home.project / "link").symlink_to("nowhere")
    expect_error(artifact("get", blob, "link", cwd=home.project), 4, "link")
    assert os.readlink(home.project / "link") == "nowhere"


def test_get_default_out_is_the_first_12_hex_digits(home):
    (home.project / "a.bin").write_bytes(b"content a")
    random_tree(home.project / "tree", files=5)
    blob = add_one(home, "a.bin")
    tree = add_one(home, "tree")
    ok(artifact("get", blob[:8], cwd=home.project))
    assert (home.project / blob[:12]).read_bytes() == b"content a"
    document = ok_json(artifact("--json", "get", tree, cwd=home.project), "artifact-get")
    assert document["out"] == tree[:12]
    assert manifest_entries(home.project / tree[:12]) == manifest_entries(home.project / "tree")
    expect_error(artifact("get", blob, cwd=home.project), 4, blob[:12])


def test_get_of_a_corrupt_object_exits_5_and_writes_nothing(home):
    (home.project / "a.bin").write_bytes(os.urandom(50_000))
    build_tree(home.project / "tree", [(b"ok.txt", "file", b"fine\n"), (b"sub/bad.bin", "file", os.urandom(20_000))])
    blob = add_one(home, "a.bin")
    tree = add_one(home, "tree")
    bad_member = sha((home.project / "tree" / "sub" / "bad.bin").read_bytes())
    flip_byte(object_path(home, blob), 1000)
    flip_byte(object_path(home, bad_member), 19_999)
    for digest, named in [(blob, blob), (tree, bad_member)]:
        result = artifact("get", digest, "out", cwd=home.project)
        expect_error(result, 5, named, "corrupt")
        assert not os.path.lexists(home.project / "out"), "a corrupt object must not reach OUT"
        expect_error(artifact("get", digest, cwd=home.project), 5, named)
        assert not os.path.lexists(home.project / digest[:12])
        error_json(artifact("--json", "get", digest, "out", cwd=home.project), 5, "integrity")
    assert get_leftovers(home.project) == []


def test_get_force_of_a_corrupt_object_keeps_the_existing_out(home):
    # "verifying every byte against its digest before `out` appears": a failed get --force must not
    # have destroyed what OUT held.
    (home.project / "a.bin").write_bytes(os.urandom(50_000))
    build_tree(home.project / "tree", [(b"bad.bin", "file", os.urandom(20_000))])
    blob = add_one(home, "a.bin")
    tree = add_one(home, "tree")
    flip_byte(object_path(home, blob))
    flip_byte(object_path(home, sha((home.project / "tree" / "bad.bin").read_bytes())))
    (home.project / "precious-dir").mkdir()
    (home.project / "precious-dir" / "keep").write_bytes(b"keep me")
    expect_error(artifact("get", "--force", tree, "precious-dir", cwd=home.project), 5, "corrupt")
    assert (home.project / "precious-dir" / "keep").read_bytes() == b"keep me"
    (home.project / "precious.bin").write_bytes(b"keep me")
    expect_error(artifact("get", "--force", blob, "precious.bin", cwd=home.project), 5, "corrupt")
    assert (home.project / "precious.bin").exists(), "get --force deleted OUT although the object was corrupt"
    assert (home.project / "precious.bin").read_bytes() == b"keep me"


def test_get_of_a_missing_object_exits_5(home):
    (home.project / "a.bin").write_bytes(b"will vanish")
    blob = add_one(home, "a.bin")
    object_path(home, blob).unlink()
    expect_error(artifact("get", blob, "out", cwd=home.project), 5, blob, "missing")
    expect_error(artifact("cat", blob, cwd=home.project), 5, blob, "missing")
    assert not os.path.lexists(home.project / "out")


# Digest prefixes ----------------------------------------------------------------------------------


def invoke(verb, reference, out="out"):
    return [verb, reference, out] if verb == "get" else [verb, reference]


def test_a_unique_prefix_works_everywhere(home):
    data = os.urandom(1000)
    (home.project / "a.bin").write_bytes(data)
    digest = add_one(home, "a.bin")
    for i, reference in enumerate([digest[:8], digest[:13], digest, "sha256:" + digest, "sha256:" + digest[:8]]):
        ok(artifact("get", reference, f"out-{i}", cwd=home.project))
        assert (home.project / f"out-{i}").read_bytes() == data
        assert run_bytes("artifact", "cat", reference, cwd=home.project).stdout == data
        shown = ok_json(artifact("--json", "show", reference, cwd=home.project), "artifact-show")
        assert shown["digest"] == "sha256:" + digest
        verified = ok_json(artifact("--json", "verify", reference, cwd=home.project), "artifact-verify")
        assert verified == {"verified": 1, "problems": []}


@pytest.mark.parametrize("verb", ["get", "cat", "show", "verify"])
def test_malformed_digests_exit_2(home, verb):
    (home.project / "a.bin").write_bytes(b"a")
    digest = add_one(home, "a.bin")
    for reference, needle in [(digest[:7], "7"), ("zzzzzzzz", "hex"), (digest[:8] + "-", ""), ("", ""),
                              (digest + "0", ""), ("md5:" + digest[:8], "")]:
        result = artifact(*invoke(verb, reference), cwd=home.project)
        expect_error(result, 2, needle)
        assert result.stdout == ""
    error_json(artifact("--json", *invoke(verb, digest[:7]), cwd=home.project), 2, "usage")
    assert not os.path.lexists(home.project / "out")


@pytest.mark.parametrize("verb", ["get", "cat", "show", "verify"])
def test_unknown_digest_exits_3(home, verb):
    (home.project / "a.bin").write_bytes(b"a")
    digest = add_one(home, "a.bin")
    unknown = format((int(digest[:8], 16) + 1) % 16**8, "08x")
    for reference in [unknown, unknown + digest[8:]]:
        expect_error(artifact(*invoke(verb, reference), cwd=home.project), 3, reference)
    error_json(artifact("--json", *invoke(verb, unknown), cwd=home.project), 3, "not_found")
    assert not os.path.lexists(home.project / "out")


@pytest.mark.parametrize("verb", ["get", "cat", "show", "verify"])
def test_an_ambiguous_prefix_exits_2_naming_the_candidates(home, verb):
    data = b"real object"
    (home.project / "a.bin").write_bytes(data)
    digest = add_one(home, "a.bin")
    # A second row sharing the first 10 hex digits (finding a real SHA-256 collision on 8+ digits
    # would take too long): the 11th digit differs.
    twin = digest[:10] + ("0" if digest[10] != "0" else "1") + digest[11:]
    execute(home, "INSERT INTO objects (digest, kind, size, created_at) VALUES (?, 'blob', 1, '2026-01-01T00:00:00.000Z')",
            twin)
    for reference in [digest[:8], digest[:10], "sha256:" + digest[:9]]:
        result = artifact(*invoke(verb, reference), cwd=home.project)
        expect_error(result, 2, "ambiguous", digest, twin)
        assert result.stdout == ""
    error_json(artifact("--json", *invoke(verb, digest[:8]), cwd=home.project), 2, "usage")
    assert not os.path.lexists(home.project / "out")
    result = artifact(*invoke(verb, digest[:11]), cwd=home.project)
    assert result.returncode == 0, result


# cat ----------------------------------------------------------------------------------------------


def test_cat_prints_a_blob_byte_for_byte(home):
    data = bytes(range(256)) * 300 + b"\0\r\n\xff no newline at the end"
    (home.project / "binary.bin").write_bytes(data)
    (home.project / "empty").write_bytes(b"")
    digest = add_one(home, "binary.bin")
    run = run_bytes("artifact", "cat", digest, cwd=home.project)
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout == data
    empty = add_one(home, "empty")
    assert run_bytes("artifact", "cat", empty[:8], cwd=home.project) == Run(0, b"", "")


def test_cat_of_a_tree_prints_its_file_list(home):
    tree = build_tree(home.project / "tree", AWKWARD_TREE)
    digest = add_one(home, "tree")
    run = run_bytes("artifact", "cat", digest, cwd=home.project)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"".join(escaped_line(d, path) for path, _, _, d in manifest_entries(tree))


def test_cat_of_a_corrupt_object_exits_5_and_prints_nothing(home):
    (home.project / "a.bin").write_bytes(os.urandom(100_000))
    digest = add_one(home, "a.bin")
    flip_byte(object_path(home, digest), 99_999)
    run = run_bytes("artifact", "cat", digest, cwd=home.project)
    assert run.returncode == 5 and digest in run.stderr and "corrupt" in run.stderr, run.stderr
    assert run.stdout == b"", "not one byte of a corrupt object may be printed"


# ls and show --------------------------------------------------------------------------------------


def test_ls_lists_blobs_and_trees(home):
    result = artifact("ls", cwd=home.project)
    assert ok(result) == "no objects stored yet\n"
    assert ok_json(artifact("--json", "ls", cwd=home.project), "artifact-ls") == {"objects": []}
    (home.project / "model.bin").write_bytes(b"weights" * 1000)
    build_tree(home.project / "tree", [(b"a", "file", b"aaa"), (b"b/c", "exec", b"cc"), (b"l", "link", b"a")])
    add_json(home, "model.bin", "tree")
    expected = {(digest, kind, size) for digest, kind, size in query(home, "SELECT digest, kind, size FROM objects")}
    assert len(expected) == 5 and {kind for _, kind, _ in expected} == {"blob", "tree"}
    lines = ok(artifact("ls", cwd=home.project)).splitlines()
    assert lines[0].split() == ["DIGEST", "KIND", "SIZE", "CREATED"]
    shown = {(fields[0], fields[1], int(fields[2])) for fields in (line.split() for line in lines[1:])}
    assert shown == {(digest[:12], kind, size) for digest, kind, size in expected}
    document = ok_json(artifact("--json", "ls", cwd=home.project), "artifact-ls")
    assert {(o["digest"].removeprefix("sha256:"), o["kind"], o["size"]) for o in document["objects"]} == expected


def test_show_names_what_refers_to_an_object(home):
    (home.project / "model.bin").write_bytes(b"weights")
    build_tree(home.project / "data", [(b"train.csv", "file", b"1,2\n"), (b"nested/test.csv", "file", b"3,4\n")])
    (home.project / "elsewhere").mkdir()
    (home.project / "elsewhere" / "model-copy.bin").write_bytes(b"weights")
    add_json(home, "model.bin", "data")
    add_json(home, "model-copy.bin", cwd=home.project / "elsewhere")
    model, tree, member = sha(b"weights"), sha(tree_manifest(home.project / "data")), sha(b"3,4\n")

    document = ok_json(artifact("--json", "show", model[:8], cwd=home.project), "artifact-show")
    assert document["digest"] == "sha256:" + model and document["kind"] == "blob" and document["size"] == 7
    assert document["path"] == str(object_path(home, model))
    assert document["references"] == [
        {"kind": "artifact", "owner": str(home.project / "elsewhere" / "model-copy.bin")},
        {"kind": "artifact", "owner": str(home.project / "model.bin")},
    ]
    human = ok(artifact("show", model, cwd=home.project))
    assert f"artifact {home.project / 'model.bin'}" in human and "sha256:" + model in human
    assert "7 bytes" in human and str(object_path(home, model)) in human

    document = ok_json(artifact("--json", "show", member, cwd=home.project), "artifact-show")
    assert [(r["kind"], r["owner"].removeprefix("sha256:")) for r in document["references"]] == [("tree", tree)]
    assert f"tree {tree}" in ok(artifact("show", member, cwd=home.project)).replace("sha256:", "")

    document = ok_json(artifact("--json", "show", tree, cwd=home.project), "artifact-show")
    assert document["kind"] == "tree" and document["size"] == len(tree_manifest(home.project / "data"))
    assert document["references"] == [{"kind": "artifact", "owner": str(home.project / "data")}]

    unpin(home, home.project / "model.bin")
    unpin(home, home.project / "elsewhere" / "model-copy.bin")
    assert ok_json(artifact("--json", "show", model, cwd=home.project), "artifact-show")["references"] == []
    assert "nothing" in ok(artifact("show", model, cwd=home.project))


# verify -------------------------------------------------------------------------------------------


def test_verify_all_on_a_healthy_store(home):
    assert "verified 0 object(s)" in ok(artifact("verify", "--all", cwd=home.project))
    random_tree(home.project / "tree", files=30)
    add_json(home, "tree")
    count = len(recorded(home))
    assert f"verified {count} object(s): {count} ok, 0 bad" in ok(artifact("verify", "--all", cwd=home.project))
    assert ok_json(artifact("--json", "verify", "--all", cwd=home.project), "artifact-verify") == {
        "verified": count, "problems": []}
    assert ok_json(artifact("--json", "verify", "--all", "-j", "1", cwd=home.project), "artifact-verify") == {
        "verified": count, "problems": []}


def corrupt(home, digest: str, original: bytes, offset: int = 0):
    """Puts a corrupt copy of an object in its place (again: verify may move a corrupt object aside)."""
    path = object_path(home, digest)
    data = bytearray(original)
    data[offset % len(data)] ^= 0xFF
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def test_verify_names_a_corrupt_object(home):
    build_tree(home.project / "tree", [(f"f{i}".encode(), "file", os.urandom(3000)) for i in range(10)])
    tree = add_one(home, "tree")
    original = (home.project / "tree" / "f3").read_bytes()
    victim = sha(original)
    corrupt(home, victim, original, 1234)
    result = artifact("verify", "--all", cwd=home.project)
    assert result.returncode == 5, result
    assert result.stderr.startswith("mlops: error: ")
    bad = [line for line in result.stdout.splitlines() if ": " in line and not line.startswith("verified")]
    assert len(bad) == 1 and bad[0].startswith(f"{victim}: corrupt"), result.stdout
    assert "verified 11 object(s): 10 ok, 1 bad" in result.stdout
    # The corrupt file is not served again: it stays where it was, or verify moved it aside into tmp/.
    assert not object_path(home, victim).exists() or sha(object_path(home, victim).read_bytes()) != victim
    corrupt(home, victim, original, 1234)
    result = artifact("--json", "verify", "--all", cwd=home.project)
    assert result.returncode == 5
    document = validate_document(parse_one_document(result.stdout), "artifact-verify")
    assert document["verified"] == 11
    assert [p["digest"] for p in document["problems"]] == ["sha256:" + victim]
    assert document["problems"][0]["problem"].startswith("corrupt")
    corrupt(home, victim, original, 1234)
    result = artifact("verify", victim[:8], cwd=home.project)
    assert result.returncode == 5 and f"{victim}: corrupt" in result.stdout, result
    ok(artifact("verify", tree, cwd=home.project))  # the other objects are fine


def test_verify_names_every_missing_and_corrupt_object(home):
    build_tree(home.project / "tree", [(f"f{i}".encode(), "file", os.urandom(500)) for i in range(6)])
    add_one(home, "tree")
    original = (home.project / "tree" / "f1").read_bytes()
    bad, missing = sha(original), sha((home.project / "tree" / "f4").read_bytes())
    corrupt(home, bad, original)
    object_path(home, missing).unlink()
    result = artifact("verify", "--all", cwd=home.project)
    assert result.returncode == 5, result
    assert f"{bad}: corrupt" in result.stdout
    assert f"{missing}: missing" in result.stdout
    assert "verified 7 object(s): 5 ok, 2 bad" in result.stdout
    corrupt(home, bad, original)
    result = artifact("--json", "verify", "--all", cwd=home.project)
    assert result.returncode == 5
    document = validate_document(parse_one_document(result.stdout), "artifact-verify")
    assert {(p["digest"], p["problem"].split(":")[0]) for p in document["problems"]} == {
        ("sha256:" + bad, "corrupt"), ("sha256:" + missing, "missing")}
    result = artifact("verify", missing[:8], cwd=home.project)
    assert result.returncode == 5 and f"{missing}: missing" in result.stdout


def test_verify_needs_digests_or_all(home):
    (home.project / "a.bin").write_bytes(b"a")
    digest = add_one(home, "a.bin")
    expect_error(artifact("verify", cwd=home.project), 2, "--all")
    expect_error(artifact("verify", "--all", digest, cwd=home.project), 2, "--all")
    error_json(artifact("--json", "verify", cwd=home.project), 2, "usage")


def test_adding_the_original_files_again_repairs_the_store(home):
    # verify's error says "restore them by adding the original files again": that must work.
    build_tree(home.project / "tree", [(b"lost.bin", "file", os.urandom(4000)), (b"rotten.bin", "file", os.urandom(4000))])
    add_one(home, "tree")
    lost = sha((home.project / "tree" / "lost.bin").read_bytes())
    rotten = sha((home.project / "tree" / "rotten.bin").read_bytes())
    object_path(home, lost).unlink()
    flip_byte(object_path(home, rotten))
    result = artifact("verify", "--all", cwd=home.project)
    expect_error(result, 5, "adding the original files again")
    ok(artifact("add", "tree", cwd=home.project))
    result = artifact("verify", "--all", cwd=home.project)
    assert result.returncode == 0, f"`artifact add` of the original files did not restore the objects: {result}"


# gc -----------------------------------------------------------------------------------------------


def test_gc_removes_only_what_nothing_refers_to(home):
    p = home.project
    (p / "keep.bin").write_bytes(b"pinned file")
    (p / "drop.bin").write_bytes(b"unpinned file")
    shared = b"in both trees"
    build_tree(p / "kept", [(b"x", "file", b"only in the kept tree"), (b"shared", "file", shared)])
    build_tree(p / "dropped", [(b"shared", "file", shared), (b"only", "file", b"only in the dropped tree")])
    add_json(home, "keep.bin", "drop.bin", "kept", "dropped")
    kept_tree, dropped_tree = sha(tree_manifest(p / "kept")), sha(tree_manifest(p / "dropped"))
    unpin(home, p / "drop.bin")
    unpin(home, p / "dropped")
    doomed = {sha(b"unpinned file"), dropped_tree, sha(b"only in the dropped tree")}
    survivors = set(recorded(home)) - doomed
    assert survivors == {sha(b"pinned file"), kept_tree, sha(b"only in the kept tree"), sha(shared)}
    sizes = dict(query(home, "SELECT digest, size FROM objects"))

    before = stored_state(home)
    dry = ok_json(artifact("--json", "gc", "--dry-run", cwd=p), "artifact-gc")
    assert dry["dry_run"] is True
    assert {o["digest"].removeprefix("sha256:") for o in dry["removed"]} == doomed
    assert dry["bytes"] == sum(sizes[d] for d in doomed)
    assert dry["unrecorded_files"] == 0 and dry["tmp_files"] == 0
    assert "would remove 3 unreferenced object(s)" in ok(artifact("gc", "--dry-run", cwd=p))
    assert stored_state(home) == before, "gc --dry-run removed something"

    done = ok_json(artifact("--json", "gc", cwd=p), "artifact-gc")
    assert done["dry_run"] is False
    assert done["removed"] == dry["removed"] and done["bytes"] == dry["bytes"]
    assert set(object_files(home)) == survivors and recorded(home) == survivors
    assert all(digest in survivors for digest, _, _ in references(home))
    assert all(owner != dropped_tree for _, _, owner in references(home))
    shown = ok_json(artifact("--json", "show", sha(shared), cwd=p), "artifact-show")
    assert shown["references"] == [{"kind": "tree", "owner": kept_tree}]
    assert_store_consistent(home)
    assert db_check(home)["healthy"] is True
    ok(artifact("get", kept_tree, "restored", cwd=p))
    assert manifest_entries(p / "restored") == manifest_entries(p / "kept")
    again = ok_json(artifact("--json", "gc", cwd=p), "artifact-gc")
    assert again == {"dry_run": False, "removed": [], "bytes": 0, "unrecorded_files": 0, "tmp_files": 0}
    assert "removed 0 unreferenced object(s)" in ok(artifact("gc", cwd=p))


def test_gc_removes_stray_files_in_tmp_and_unrecorded_objects(home):
    (home.project / "a.bin").write_bytes(b"recorded")
    digest = add_one(home, "a.bin")
    tmp = home.dir / "tmp"
    (tmp / "object-left-by-a-crash").write_bytes(b"half")
    (tmp / "a-directory").mkdir()
    (tmp / "a-directory" / "inside").write_bytes(b"x")
    stray_content = b"an object file without a row"
    stray = object_path(home, sha(stray_content))
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(stray_content)
    stray.chmod(0o444)
    assert db_check(home)["stale_tmp_files"] == 2

    before = stored_state(home)
    dry = ok_json(artifact("--json", "gc", "--dry-run", cwd=home.project), "artifact-gc")
    assert dry == {"dry_run": True, "removed": [], "bytes": 0, "unrecorded_files": 1, "tmp_files": 2}
    assert stored_state(home) == before
    done = ok_json(artifact("--json", "gc", cwd=home.project), "artifact-gc")
    assert done == {"dry_run": False, "removed": [], "bytes": 0, "unrecorded_files": 1, "tmp_files": 2}
    assert not stray.exists() and tmp_entries(home) == []
    assert set(object_files(home)) == {digest}
    assert_store_consistent(home)
    check = db_check(home)
    assert check["healthy"] is True and check["stale_tmp_files"] == 0


def test_gc_counts_stray_files_beside_an_unreferenced_object_that_is_already_gone(home):
    (home.project / "a.bin").write_bytes(b"unpinned, and its file deleted by hand")
    digest = add_one(home, "a.bin")
    unpin(home, home.project / "a.bin")
    object_path(home, digest).unlink()
    stray_content = b"stray"
    stray = object_path(home, sha(stray_content))
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(stray_content)
    done = ok_json(artifact("--json", "gc", cwd=home.project), "artifact-gc")
    assert [o["digest"] for o in done["removed"]] == ["sha256:" + digest]
    assert not stray.exists() and recorded(home) == set()
    assert done["unrecorded_files"] == 1, f"gc removed one unrecorded file but reported {done['unrecorded_files']}"


# A tree object is outside input when it is written out: a hostile manifest with a valid digest --


def plant_tree(home, manifest: bytes) -> str:
    """Stores `manifest` as a tree object by hand, as an attacker with write access could."""
    digest = sha(manifest)
    path = object_path(home, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest)
    with sqlite3.connect(home.db) as db:
        db.execute("INSERT INTO objects (digest, kind, size, created_at) VALUES (?, 'tree', ?, 'now')",
                   (digest, len(manifest)))
    return digest


@pytest.mark.parametrize("paths", [
    [b"../escaped"],                 # a path climbing out of OUT
    [b"/tmp/absolute"],             # an absolute path
    [b"a", b"a/escaped"],           # a link "a" with a file beneath it
])
def test_get_refuses_a_hostile_tree_and_writes_nothing(home, tmp_path, paths):
    (home.project / "x").write_bytes(b"x")
    blob = add_one(home, "x")
    entries = b""
    for path in paths:
        mode = b"120000" if path == b"a" else b"100644"
        entries += mode + b" 1 " + blob.encode() + b" " + path + b"\0"
    tree = plant_tree(home, b"mlops-tree 1\n" + entries)
    result = artifact("get", tree[:12], "out", cwd=home.project)
    expect_error(result, 5, "manifest")
    assert not (home.project / "out").exists()
    assert not (home.project / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert [p.name for p in home.project.iterdir() if p.name.startswith(".mlops-get")] == []
