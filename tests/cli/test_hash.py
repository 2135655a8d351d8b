"""`mlops hash`: files against sha256sum, tree digests against the documented manifest format
(schemas/tree-manifest.md, recomputed here in Python), --list, --check, --jobs, --json and errors.

Names on disk are bytes: the helpers here run the binary with byte-string arguments and read its
stdout as bytes, so names that are not UTF-8 are compared exactly."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from conftest import binary_nobody_can_run, BIN, IS_ROOT, SOURCE_DIR, clean_env, nobody_prefix, parse_one_document, validate_document

HEADER = b"mlops-tree 1\n"
MIB = 1 << 20


# Running the binary with bytes -------------------------------------------------------------------


class Run(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: str


def hash_run(*args, cwd, input: bytes | None = None, env=None, prefix=None, binary=None, timeout=60) -> Run:
    """Runs `mlops hash ARGS...`; args may be str, bytes or paths. stdout stays bytes."""
    command = [*(prefix or []), os.fsencode(str(binary or BIN)), b"hash", *(a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args)]
    done = subprocess.run(
        command,
        cwd=cwd,
        env=clean_env(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    return Run(done.returncode, done.stdout, done.stderr.decode("utf-8", "backslashreplace"))


def ok(run: Run) -> bytes:
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr}\n{run.stdout!r}"
    return run.stdout


def expect_failure(run: Run, exit_code: int, *needles: str) -> str:
    assert run.returncode == exit_code, f"expected exit {exit_code}, got {run.returncode}: {run.stderr}\n{run.stdout!r}"
    assert "mlops: error: " in run.stderr, f"no `mlops: error:` line on stderr: {run.stderr}"
    for needle in needles:
        assert needle in run.stderr, f"stderr does not mention {needle!r}: {run.stderr}"
    return run.stderr


def sha256sum(*args, cwd, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["sha256sum", *(os.fsencode(str(a)) if not isinstance(a, bytes) else a for a in args)],
                          cwd=cwd, input=input, capture_output=True, env=clean_env())


def digest_line(stdout: bytes) -> bytes:
    """The 64 hex digits of a one-line output (after GNU's leading backslash, if any)."""
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    return lines[0].lstrip(b"\\")[:64]


def tree_digest(path, cwd) -> str:
    return digest_line(ok(hash_run(path, cwd=cwd))).decode()


# The reference implementation of schemas/tree-manifest.md ----------------------------------------


def manifest_entries(root: bytes | os.PathLike) -> list[tuple[bytes, bytes, int, str]]:
    """(path, mode, size, hex digest) of every entry of the tree at root, sorted by path bytes."""
    entries = []

    def walk(directory: bytes, prefix: bytes):
        with os.scandir(directory) as listing:
            for entry in listing:
                path = prefix + entry.name
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    walk(entry.path, path + b"/")
                elif stat.S_ISLNK(info.st_mode):
                    target = os.readlink(entry.path)
                    entries.append((path, b"120000", len(target), hashlib.sha256(target).hexdigest()))
                elif stat.S_ISREG(info.st_mode):
                    with open(entry.path, "rb") as file:
                        content = file.read()
                    mode = b"100755" if info.st_mode & stat.S_IXUSR else b"100644"
                    entries.append((path, mode, len(content), hashlib.sha256(content).hexdigest()))
                # FIFOs, sockets and devices leave no entry.

    walk(os.fsencode(root), b"")
    entries.sort(key=lambda entry: entry[0])  # bytes compare as unsigned, like memcmp
    return entries


def tree_manifest(root) -> bytes:
    return HEADER + b"".join(b"%s %d %s %s\0" % (mode, size, digest.encode(), path)
                             for path, mode, size, digest in manifest_entries(root))


def reference_digest(root) -> str:
    return hashlib.sha256(tree_manifest(root)).hexdigest()


# Building trees -----------------------------------------------------------------------------------

# (path, kind, payload): kind is file, exec, link (payload: target), dir or fifo.
AWKWARD_TREE = [
    (b"README", "file", b"top level\n"),
    (b"empty", "file", b""),
    (b"run.sh", "exec", b"#!/bin/sh\necho hi\n"),
    (b"src/main.c", "file", b"int main(void) { return 0; }\n"),
    (b"src/deep/er/still/leaf.txt", "file", b"deep\n"),
    (b"src/deep/er/x", "exec", b"\x00\x01\x02"),
    (b"with space/file name.txt", "file", b"spaces\n"),
    (b"new\nline", "file", b"a newline in the name\n"),
    (b"back\\slash", "file", b"a backslash in the name\n"),
    (b"latin1-\xe9t\xe9", "file", b"not UTF-8\n"),
    (b"bad\xff\xfe/inner", "file", b"a directory that is not UTF-8\n"),
    (b"utf8-\xc3\xa9t\xc3\xa9", "file", b"UTF-8\n"),
    (b"a", "file", b"sorts before a-b and a/b\n"),
    (b"a-b", "file", b"'-' (0x2d) sorts before '/' (0x2f)\n"),
    (b"a0/b", "file", b"'0' (0x30) sorts after '/'\n"),
    (b"A", "file", b"uppercase sorts first\n"),
    (b"link-to-file", "link", b"README"),
    (b"link-to-dir", "link", b"src"),
    (b"dangling", "link", b"does/not/exist"),
    (b"src/up", "link", b"../README"),
    (b"empty-dir", "dir", None),
    (b"src/empty/nested", "dir", None),
]


def build_tree(root: Path, spec, order=None) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    items = list(spec)
    if order is not None:
        items = [items[i] for i in order]
    base = os.fsencode(root)
    for relative, kind, payload in items:
        path = base + b"/" + relative
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind in ("file", "exec"):
            with open(path, "wb") as file:
                file.write(payload)
            os.chmod(path, 0o755 if kind == "exec" else 0o644)
        elif kind == "link":
            os.symlink(payload, path)
        elif kind == "dir":
            os.makedirs(path, exist_ok=True)
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            raise ValueError(kind)
    return root


def random_tree(root: Path, files=60, seed=7) -> Path:
    rng = random.Random(seed)
    spec = []
    for i in range(files):
        depth = rng.randrange(3)
        parts = [f"d{rng.randrange(4)}" for _ in range(depth)] + [f"f{i:03d}.bin"]
        spec.append(("/".join(parts).encode(), "exec" if i % 7 == 0 else "file", rng.randbytes(rng.randrange(0, 9000))))
    return build_tree(root, spec)


# Files against sha256sum --------------------------------------------------------------------------

SIZES = [0, 1, 4095, 4096, 4097, MIB - 1, MIB, MIB + 1]


def test_files_match_sha256sum(project):
    names = []
    for size in SIZES:
        name = f"random-{size}.bin"
        (project / name).write_bytes(os.urandom(size))
        names.append(name)
    ours = ok(hash_run(*names, cwd=project))
    theirs = sha256sum(*names, cwd=project)
    assert theirs.returncode == 0, theirs.stderr
    assert ours == theirs.stdout
    assert len(ours.splitlines()) == len(SIZES)
    check = sha256sum("-c", "--strict", "-", cwd=project, input=ours)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(b": OK\n") == len(SIZES)
    # Absolute paths and a path through a subdirectory print as given.
    absolute = str(project / names[3])
    assert ok(hash_run(absolute, cwd="/")) == sha256sum(absolute, cwd="/").stdout


def test_100_mb_file_matches_sha256sum(tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as file:
        for _ in range(100):
            file.write(os.urandom(MIB))
    try:
        ours = ok(hash_run(path.name, cwd=tmp_path))
        theirs = sha256sum(path.name, cwd=tmp_path)
        assert ours == theirs.stdout
        document = validate_document(parse_one_document(ok(hash_run("--json", path.name, cwd=tmp_path))), "hash")
        assert document["targets"] == [{"path": "big.bin", "type": "file", "size": 100 * MIB,
                                        "digest": "sha256:" + ours[:64].decode()}]
    finally:
        path.unlink()


AWKWARD_NAMES = [b"with space", b"  leading and trailing  ", b"back\\slash", b"new\nline", b"both\\and\nnew\n",
                 b"star*", b"not-utf8-\xff\xfe", b"tab\there"]


def test_awkward_names_are_escaped_like_gnu_and_accepted_by_sha256sum(project):
    for i, name in enumerate(AWKWARD_NAMES):
        with open(os.fsencode(project) + b"/" + name, "wb") as file:
            file.write(b"content %d\n" % i)
    ours = ok(hash_run(*AWKWARD_NAMES, cwd=project))
    theirs = sha256sum(*AWKWARD_NAMES, cwd=project)
    assert ours == theirs.stdout
    lines = ours.split(b"\n")[:-1]
    assert len(lines) == len(AWKWARD_NAMES), "a newline in a name must not split its line"
    assert lines[2].startswith(b"\\") and lines[2].endswith(b"  back\\\\slash")
    assert lines[3].startswith(b"\\") and lines[3].endswith(b"  new\\nline")
    assert not lines[0].startswith(b"\\") and lines[0].endswith(b"  with space")
    check = sha256sum("-c", "--strict", "-", cwd=project, input=ours)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(b": OK\n") == len(AWKWARD_NAMES)
    (project / "list.sha256").write_bytes(ours)
    assert ok(hash_run("--check", "list.sha256", cwd=project)).count(b": OK\n") == len(AWKWARD_NAMES)


# Tree digests against the reference implementation ------------------------------------------------


def test_manifest_example_and_shell_recipe_of_the_format_document(project):
    document = (SOURCE_DIR / "schemas" / "tree-manifest.md").read_text()
    tree = project / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"hello\n")
    # The example manifest, as the document spells it (\n and \0 written as escapes).
    example = re.search(r"^(mlops-tree 1\\n100644 6 [0-9a-f]{64} a\.txt\\0)$", document, re.M)
    assert example, "the document's example manifest was not found"
    example_bytes = example.group(1).replace("\\n", "\n").replace("\\0", "\0").encode()
    assert tree_manifest(tree) == example_bytes
    # The shell recipe, run in the tree, gives the digest mlops prints.
    recipe = re.search(r"^    (printf .*\| sha256sum)$", document, re.M)
    assert recipe, "the document's shell recipe was not found"
    shell = subprocess.run(["bash", "-c", recipe.group(1)], cwd=tree, capture_output=True, check=True, env=clean_env())
    expected = shell.stdout[:64].decode()
    assert expected == hashlib.sha256(example_bytes).hexdigest()
    assert tree_digest("tree", project) == expected


def test_tree_digest_matches_the_reference_manifest(project):
    tree = build_tree(project / "tree", AWKWARD_TREE)
    (tree / "src" / "main.c").chmod(0o600)
    out = ok(hash_run("tree", cwd=project))
    assert out == reference_digest(tree).encode() + b"  tree\n"
    # The entries --list prints are the reference's, in the same (byte) order; links only in --json
    # (their digest is of the target text, which sha256sum -c could not confirm).
    listed = ok(hash_run("--list", "tree", cwd=project)).split(b"\n")[:-1]
    expected = manifest_entries(tree)
    files = [entry for entry in expected if entry[1] != b"120000"]
    assert len(listed) == len(files) + 1
    for line, (path, _mode, _size, digest) in zip(listed, files):
        name = b"tree/" + path
        if b"\\" in name or b"\n" in name:
            name = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
            assert line == b"\\" + digest.encode() + b"  " + name
        else:
            assert line == digest.encode() + b"  " + name
    assert listed[-1] == out.rstrip(b"\n")
    # The modes and sizes, through --json (these names are shown lossily there, so compare the rest).
    document = validate_document(parse_one_document(ok(hash_run("--json", "--list", "tree", cwd=project))), "hash")
    (target,) = document["targets"]
    assert target["files"] == len(expected) == len(target["entries"])
    assert target["size"] == sum(size for _, _, size, _ in expected)
    assert [(e["mode"], e["size"], e["digest"]) for e in target["entries"]] == [
        (mode.decode(), size, "sha256:" + digest) for _, mode, size, digest in expected]
    modes = {path: mode for path, mode, _, _ in expected}
    assert modes[b"run.sh"] == b"100755" and modes[b"link-to-dir"] == b"120000" and modes[b"empty"] == b"100644"


def test_tree_digest_is_stable_across_runs(project):
    tree = build_tree(project / "tree", AWKWARD_TREE)
    outputs = {ok(hash_run("--list", "tree", cwd=project)) for _ in range(3)}
    assert len(outputs) == 1
    assert outputs.pop().endswith(reference_digest(tree).encode() + b"  tree\n")


@pytest.fixture
def scratch_dirs(tmp_path):
    """Directories to build trees in: under tmp_path, and on tmpfs when there is one, where a
    directory lists its entries newest first (ext4 lists them in hash order)."""
    made = []
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        made = [Path(tempfile.mkdtemp(prefix="mlops-hash-", dir="/dev/shm")) for _ in range(2)]
    yield [tmp_path / "one", tmp_path / "elsewhere" / "deeper", *made]
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def test_tree_digest_does_not_depend_on_creation_order_or_location(tmp_path, scratch_dirs):
    order = list(range(len(AWKWARD_TREE)))
    random.Random(3).shuffle(order)
    orders = [None, order, list(reversed(order)), sorted(order, key=lambda i: AWKWARD_TREE[i][0])]
    trees = [build_tree(base / "tree", AWKWARD_TREE, order=o) for base, o in zip(scratch_dirs, orders)]
    listings = {tuple(os.listdir(os.fsencode(tree))) for tree in trees}
    if len(scratch_dirs) > 2:
        assert len(listings) > 1, "the trees should list their entries in different orders"
    expected = reference_digest(trees[0])
    assert {tree_digest(tree, tmp_path) for tree in trees} == {expected}
    assert {reference_digest(tree) for tree in trees} == {expected}
    # An absolute path, a relative one with .. and a trailing slash name the same tree.
    assert tree_digest(str(trees[0]) + "/", "/") == expected
    assert tree_digest("../one/tree", tmp_path / "elsewhere") == expected


def test_tree_digest_ignores_permissions_other_than_owner_x_and_mtimes(project):
    tree = build_tree(project / "tree", AWKWARD_TREE)
    before = tree_digest("tree", project)
    rng = random.Random(11)
    for root, dirs, files in os.walk(os.fsencode(tree)):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            owner_x = os.stat(path).st_mode & stat.S_IXUSR
            os.chmod(path, owner_x | rng.choice([0o400, 0o600]) | rng.choice([0, 0o040, 0o060, 0o070, 0o050]) | rng.choice([0, 0o004, 0o007, 0o005]))
            os.utime(path, ns=(rng.randrange(10**18), rng.randrange(10**18)))
        for name in dirs:
            os.chmod(os.path.join(root, name), rng.choice([0o700, 0o755, 0o750, 0o711]))
    os.chmod(tree, 0o700)
    os.utime(tree, ns=(1, 1))
    os.utime(os.fsencode(tree) + b"/link-to-file", ns=(5, 5), follow_symlinks=False)
    assert tree_digest("tree", project) == before == reference_digest(tree)


def _content(tree):
    (tree / "src" / "main.c").write_bytes(b"int main(void) { return 1; }\n")  # same size


def _name(tree):
    (tree / "README").rename(tree / "README.md")


def _move(tree):
    (tree / "src" / "main.c").rename(tree / "src" / "deep" / "main.c")


def _owner_x_on(tree):
    (tree / "README").chmod(0o744)


def _owner_x_off(tree):
    (tree / "run.sh").chmod(0o655)


def _link_target(tree):
    (tree / "link-to-file").unlink()
    (tree / "link-to-file").symlink_to("empty")


def _link_to_copy(tree):
    (tree / "link-to-file").unlink()
    (tree / "link-to-file").write_bytes(b"README")  # a file whose content is the link's target text


def _new_empty_file(tree):
    (tree / "src" / "empty" / "nested" / "now-a-file").write_bytes(b"")


def _removed(tree):
    (tree / "empty").unlink()


@pytest.mark.parametrize("change", [_content, _name, _move, _owner_x_on, _owner_x_off, _link_target, _link_to_copy,
                                    _new_empty_file, _removed])
def test_tree_digest_changes_with_content_names_x_bit_and_links(project, change):
    tree = build_tree(project / "tree", AWKWARD_TREE)
    before = tree_digest("tree", project)
    change(tree)
    after = tree_digest("tree", project)
    assert after != before
    assert after == reference_digest(tree)


def test_empty_directories_leave_no_trace(project):
    tree = build_tree(project / "tree", AWKWARD_TREE)
    before = tree_digest("tree", project)
    for path in ("new-empty", "src/deep/new/empty/chain", "with space/empty too"):
        (tree / path).mkdir(parents=True)
    assert tree_digest("tree", project) == before
    (project / "nothing").mkdir()
    assert tree_digest("nothing", project) == hashlib.sha256(HEADER).hexdigest()
    document = validate_document(parse_one_document(ok(hash_run("--json", "nothing", cwd=project))), "hash")
    assert document["targets"][0]["files"] == 0 and document["targets"][0]["size"] == 0


def test_symbolic_links_given_as_arguments_are_followed(project):
    tree = build_tree(project / "tree", AWKWARD_TREE)
    (project / "to-tree").symlink_to("tree")
    (project / "to-file").symlink_to("tree/README")
    out = ok(hash_run("to-tree", "to-file", cwd=project)).split(b"\n")
    assert out[0] == reference_digest(tree).encode() + b"  to-tree"
    assert out[1] == hashlib.sha256((tree / "README").read_bytes()).hexdigest().encode() + b"  to-file"
    (project / "nowhere").symlink_to("missing")
    expect_failure(hash_run("nowhere", cwd=project), 3, "nowhere")


# Special files and errors -------------------------------------------------------------------------


def test_fifo_inside_a_tree_is_skipped_with_a_warning(project):
    tree = build_tree(project / "tree", AWKWARD_TREE)
    before = tree_digest("tree", project)
    os.mkfifo(tree / "src" / "pipe")
    run = hash_run("tree", cwd=project, timeout=20)  # opening a FIFO would hang: the timeout catches that
    assert ok(run) == before.encode() + b"  tree\n"
    assert "mlops: warning:" in run.stderr and "src/pipe" in run.stderr, run.stderr
    document = validate_document(parse_one_document(ok(hash_run("--json", "tree", cwd=project, timeout=20))), "hash")
    assert document["targets"][0]["skipped"] == ["src/pipe"]
    assert document["targets"][0]["files"] == len(manifest_entries(tree))


def test_fifo_given_as_an_argument_is_an_error(project):
    os.mkfifo(project / "pipe")
    (project / "file").write_bytes(b"x")
    run = hash_run("file", "pipe", cwd=project, timeout=20)
    expect_failure(run, 1, "pipe")
    assert run.stdout == b""
    document = validate_document(parse_one_document(hash_run("--json", "pipe", cwd=project, timeout=20).stdout), "error")
    assert document["error"]["code"] == "failure"


def test_missing_path_exits_3_and_prints_nothing(project):
    (project / "file").write_bytes(b"x")
    for args in (["missing"], ["file", "missing"], ["missing/below"], ["file/below"]):
        run = hash_run(*args, cwd=project)
        expect_failure(run, 3, args[-1])
        assert run.stdout == b"", "no partial output before the error"
    run = hash_run("--json", "file", "missing", cwd=project)
    assert run.returncode == 3
    document = validate_document(parse_one_document(run.stdout), "error")
    assert document["error"]["code"] == "not_found" and "missing" in document["error"]["message"]


@pytest.fixture
def as_nobody(world_dir):
    """run(*args, cwd=...) as a user who cannot read what root made private (chmod alone as a user)."""
    if not IS_ROOT:
        return lambda *args, cwd: hash_run(*args, cwd=cwd)
    binary = binary_nobody_can_run(world_dir)
    return lambda *args, cwd: hash_run(*args, cwd=cwd, env={"HOME": "/nonexistent"}, prefix=nobody_prefix(), binary=binary)


def world_readable_tree(world_dir) -> Path:
    tree = build_tree(world_dir / "tree", [(b"ok", "file", b"fine\n"), (b"sub/also-ok", "file", b"fine too\n"),
                                           (b"sub/secret", "file", b"private\n"), (b"z-secret", "file", b"private 2\n")])
    for root, dirs, files in os.walk(tree):
        os.chmod(root, 0o755)
    return tree


def test_unreadable_files_exit_1_and_are_named(as_nobody, world_dir):
    tree = world_readable_tree(world_dir)
    (tree / "sub" / "secret").chmod(0o600 if IS_ROOT else 0)
    run = as_nobody("tree/sub/secret", cwd=world_dir)
    expect_failure(run, 1, "tree/sub/secret")
    assert run.stdout == b""
    run = as_nobody("tree", cwd=world_dir)
    expect_failure(run, 1, "tree/sub/secret")
    assert run.stdout == b""
    # Every unreadable file is named, not only the first one.
    (tree / "z-secret").chmod(0o600 if IS_ROOT else 0)
    run = as_nobody("tree", cwd=world_dir)
    expect_failure(run, 1, "tree/sub/secret", "tree/z-secret")
    assert "tree/ok" not in run.stderr
    run = as_nobody("--json", "tree", cwd=world_dir)
    assert run.returncode == 1
    assert validate_document(parse_one_document(run.stdout), "error")["error"]["code"] == "failure"


def test_unreadable_directory_exits_1_and_is_named(as_nobody, world_dir):
    tree = world_readable_tree(world_dir)
    (tree / "sub").chmod(0o700 if IS_ROOT else 0)
    try:
        run = as_nobody("tree", cwd=world_dir)
        expect_failure(run, 1, "sub")
        assert run.stdout == b""
    finally:
        (tree / "sub").chmod(0o755)


def test_unreadable_directories_and_files_are_all_named_in_one_error(as_nobody, world_dir):
    # schemas/tree-manifest.md: "unreadable file or directory: an error naming every one".
    tree = world_readable_tree(world_dir)
    (tree / "sub").chmod(0o700 if IS_ROOT else 0)
    (tree / "z-secret").chmod(0o600 if IS_ROOT else 0)
    try:
        run = as_nobody("tree", cwd=world_dir)
        expect_failure(run, 1, "sub", "z-secret")
    finally:
        (tree / "sub").chmod(0o755)


def test_a_file_that_changes_between_listing_and_reading_gives_a_consistent_entry(project):
    # The tree is listed first (lstat: size), then read. A file rewritten in between must not end
    # up in the manifest with the old size next to the digest of the new content: such a manifest
    # describes no state the tree was ever in. Either the entry matches what was read, or the
    # command fails saying the file changed.
    tree = project / "tree"
    tree.mkdir()
    with open(tree / "a-sparse", "wb") as file:  # keeps the reader busy about 0.2 s, costs no disk
        file.truncate(512 * MIB)
    old, new = b"short", b"a much longer content"
    (tree / "z").write_bytes(old)
    process = subprocess.Popen([str(BIN), "hash", "--json", "--list", "--jobs", "1", "tree"], cwd=project,
                               env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.1)
    (tree / "z").write_bytes(new)
    out, err = process.communicate(timeout=60)
    if process.returncode != 0:
        assert process.returncode == 1 and b"changed" in err, err
        return
    (entry,) = [e for e in json.loads(out)["targets"][0]["entries"] if e["path"] == "z"]
    by_digest = {"sha256:" + hashlib.sha256(content).hexdigest(): content for content in (old, new)}
    assert entry["digest"] in by_digest
    assert entry["size"] == len(by_digest[entry["digest"]]), (
        f"entry z has size {entry['size']} but the digest of {by_digest[entry['digest']]!r}")


# --list ----------------------------------------------------------------------------------------


def test_list_prints_every_file_then_the_tree(project):
    tree = random_tree(project / "data", files=40)
    (project / "single").write_bytes(b"one file\n")
    out = ok(hash_run("--list", "data", "single", cwd=project))
    lines = out.split(b"\n")[:-1]
    entries = manifest_entries(tree)
    assert len(lines) == len(entries) + 2
    assert lines[: len(entries)] == [digest.encode() + b"  data/" + path for path, _, _, digest in entries]
    assert lines[len(entries)] == reference_digest(tree).encode() + b"  data"
    assert lines[-1].endswith(b"  single")
    # Without --list only the arguments are printed.
    assert ok(hash_run("data", "single", cwd=project)).split(b"\n")[:-1] == lines[len(entries):]
    # Every line is accepted by sha256sum -c (a tree line is not: sha256sum cannot read directories).
    files_only = b"".join(line + b"\n" for line in lines if not line.endswith(b"  data"))
    check = sha256sum("-c", "--strict", "-", cwd=project, input=files_only)
    assert check.returncode == 0, check.stdout + check.stderr


# --check ---------------------------------------------------------------------------------------


def checked_lines(stdout: bytes) -> dict[bytes, bytes]:
    return dict(line.rsplit(b": ", 1) for line in stdout.split(b"\n")[:-1])


@pytest.fixture
def listed(project):
    """A project with a tree, two files and list.sha256 from `mlops hash --list` over them."""
    random_tree(project / "data", files=12)
    (project / "one").write_bytes(b"one\n")
    (project / "two words").write_bytes(b"two\n")
    out = ok(hash_run("--list", "data", "one", "two words", cwd=project))
    (project / "list.sha256").write_bytes(out)
    return project


def test_check_a_good_list(listed):
    out = ok(hash_run("--check", "list.sha256", cwd=listed))
    results = checked_lines(out)
    assert len(results) == 12 + 3
    assert set(results.values()) == {b"OK"}
    assert results[b"data"] == b"OK" and results[b"two words"] == b"OK"
    # From stdin too, and with sha256sum's binary-mode marker.
    text = (listed / "list.sha256").read_bytes()
    assert ok(hash_run("--check", "-", cwd=listed, input=text)) == out
    binary_mode = text.replace(b"  ", b" *", 1)
    assert ok(hash_run("--check", "-", cwd=listed, input=binary_mode)) == out


def test_check_names_a_modified_file_and_exits_5(listed):
    (listed / "one").write_bytes(b"ONE\n")
    run = hash_run("--check", "list.sha256", cwd=listed)
    expect_failure(run, 5, "1 of 15")
    results = checked_lines(run.stdout)
    assert results[b"one"] == b"FAILED"
    assert [name for name, status in results.items() if status != b"OK"] == [b"one"]


def test_check_a_modified_file_inside_a_tree_fails_the_tree(listed):
    victim = sorted((listed / "data").rglob("*.bin"))[0]
    victim.write_bytes(victim.read_bytes() + b"!")
    run = hash_run("--check", "list.sha256", cwd=listed)
    assert run.returncode == 5, run.stderr
    results = checked_lines(run.stdout)
    assert results[os.fsencode(victim.relative_to(listed))] == b"FAILED"
    assert results[b"data"] == b"FAILED"
    assert sum(status != b"OK" for status in results.values()) == 2


def test_check_names_a_missing_file_and_exits_5(listed):
    (listed / "two words").unlink()
    run = hash_run("--check", "list.sha256", cwd=listed)
    expect_failure(run, 5, "1 of 15")
    results = checked_lines(run.stdout)
    assert results[b"two words"].startswith(b"FAILED")
    assert "two words" in run.stderr
    assert sum(status != b"OK" for status in results.values()) == 1


def test_check_json(listed, validate):
    run = hash_run("--json", "--check", "list.sha256", cwd=listed)
    document = validate(ok(run).decode(), "hash-check")
    assert document["failed"] == 0 and len(document["checked"]) == 15
    assert all(result["ok"] for result in document["checked"])
    assert document["checked"][-1] == {"path": "two words", "ok": True,
                                       "expected": "sha256:" + hashlib.sha256(b"two\n").hexdigest()}
    (listed / "one").write_bytes(b"changed\n")
    (listed / "two words").unlink()
    run = hash_run("--json", "--check", "list.sha256", cwd=listed)
    assert run.returncode == 5, run.stderr
    document = validate(run.stdout.decode(), "hash-check")  # the report, not an error document
    assert document["failed"] == 2
    assert sorted(r["path"] for r in document["checked"] if not r["ok"]) == ["one", "two words"]


GOOD_LINE = hashlib.sha256(b"one\n").hexdigest() + "  one\n"


@pytest.mark.parametrize("bad_line", [
    "not a checksum line",
    "abc123  one",                                     # too short
    "g" * 64 + "  one",                                # not hex
    hashlib.sha256(b"").hexdigest() + " one",          # one space
    hashlib.sha256(b"").hexdigest() + "\tone",         # a tab
    hashlib.sha256(b"").hexdigest(),                   # no name
    "0" * 63 + "  one",                                # 63 digits
    "\\" + hashlib.sha256(b"").hexdigest() + "  a\\tb",  # an escape GNU never writes
    "\\" + hashlib.sha256(b"").hexdigest() + "  ends\\",  # a lone backslash at the end
])
def test_check_rejects_a_malformed_list_naming_the_line(project, bad_line):
    (project / "one").write_bytes(b"one\n")
    (project / "list").write_text(GOOD_LINE + "\n" + bad_line + "\n" + GOOD_LINE)
    run = hash_run("--check", "list", cwd=project)
    expect_failure(run, 2, "line 3")
    assert run.stdout == b"", "nothing is checked when the list is malformed"
    document = validate_document(parse_one_document(hash_run("--json", "--check", "list", cwd=project).stdout), "error")
    assert document["error"]["code"] == "usage" and "line 3" in document["error"]["message"]


def test_check_list_missing_and_usage_errors(project):
    expect_failure(hash_run("--check", "no-such-list", cwd=project), 3, "no-such-list")
    (project / "list").write_text(GOOD_LINE)
    expect_failure(hash_run("--check", "list", "one", cwd=project), 2)
    expect_failure(hash_run(cwd=project), 2)
    expect_failure(hash_run("one", "--jobs", "0", cwd=project), 2)


def test_check_accepts_what_list_printed_for_a_tree_with_symbolic_links(project):
    # `mlops hash --list` prints the digest of a link's target text (as in the manifest); `--check`
    # given that very output must accept it, not re-hash the file the link points to.
    build_tree(project / "tree", AWKWARD_TREE)
    (project / "list").write_bytes(ok(hash_run("--list", "tree", cwd=project)))
    run = hash_run("--json", "--check", "list", cwd=project)
    failed = [result["path"] for result in json.loads(run.stdout)["checked"] if not result["ok"]]
    assert run.returncode == 0 and not failed, f"--check rejects the output of --list: {failed}\n{run.stderr}"


def test_check_output_escapes_names_like_sha256sum(project):
    names = [b"new\nline", b"back\\slash", b"plain"]
    for name in names:
        (project / os.fsdecode(name)).write_bytes(name)
    listing = ok(hash_run(*names, cwd=project))
    ours = ok(hash_run("--check", "-", cwd=project, input=listing))
    theirs = sha256sum("-c", "-", cwd=project, input=listing)
    assert theirs.returncode == 0
    assert b"\\new\\nline: OK\n" in theirs.stdout  # GNU: the line starts with a backslash, \n escaped
    assert ours.count(b"\n") == len(names), f"a name's newline splits its result line: {ours!r}"
    assert b"\\new\\nline: OK\n" in ours
    assert b"plain: OK\n" in ours


# --jobs and --json ------------------------------------------------------------------------------


def test_jobs_1_and_4_give_identical_output(project):
    random_tree(project / "data", files=150, seed=5)
    build_tree(project / "odd", AWKWARD_TREE)
    (project / "big").write_bytes(os.urandom(3 * MIB + 17))
    args = ["--list", "data", "big", "odd", "data/d1"]
    outputs = {jobs: ok(hash_run("--jobs", str(jobs), *args, cwd=project)) for jobs in (1, 4)}
    assert outputs[1] == outputs[4]
    assert ok(hash_run("-j", "3", *args, cwd=project)) == outputs[1] == ok(hash_run(*args, cwd=project))
    json_outputs = {jobs: ok(hash_run("--json", "--jobs", str(jobs), *args, cwd=project)) for jobs in (1, 4)}
    assert json_outputs[1] == json_outputs[4]


def test_json_output_matches_the_schema_and_the_text(project, validate):
    tree = build_tree(project / "tree", [(b"a.txt", "file", b"hello\n"), (b"bin/tool", "exec", b"#!\n"),
                                         (b"l", "link", b"a.txt"), (b"e", "file", b"")])
    os.mkfifo(tree / "fifo")
    (project / "file").write_bytes(b"file\n")
    text = ok(hash_run("tree", "file", cwd=project, timeout=20)).split(b"\n")[:-1]
    document = validate(ok(hash_run("--json", "tree", "file", cwd=project, timeout=20)).decode(), "hash")
    assert document == {"targets": [
        {"path": "tree", "type": "tree", "digest": "sha256:" + reference_digest(tree), "size": 6 + 3 + 5,
         "files": 4, "skipped": ["fifo"]},
        {"path": "file", "type": "file", "digest": "sha256:" + hashlib.sha256(b"file\n").hexdigest(), "size": 5},
    ]}
    assert [t["digest"][7:].encode() + b"  " + t["path"].encode() for t in document["targets"]] == text
    listed = validate(ok(hash_run("--json", "--list", "tree", "file", cwd=project, timeout=20)).decode(), "hash")
    entries = listed["targets"][0]["entries"]
    assert [(e["path"], e["mode"], e["size"], e["digest"]) for e in entries] == [
        (os.fsdecode(path), mode.decode(), size, "sha256:" + digest) for path, mode, size, digest in manifest_entries(tree)]
    assert [e["mode"] for e in entries] == ["100644", "100755", "100644", "120000"]
    assert "entries" not in listed["targets"][1]
    # Unknown or missing fields do not pass the schema.
    with pytest.raises(AssertionError):
        validate({"targets": [dict(document["targets"][1], extra=1)]}, "hash")
    with pytest.raises(AssertionError):
        validate({"targets": [{k: v for k, v in document["targets"][0].items() if k != "skipped"}]}, "hash")
    with pytest.raises(AssertionError):
        validate({"targets": [dict(listed["targets"][0], type="file")]}, "hash")
