#!/usr/bin/env bash
# `mlops data` benchmark (issue 4), every contender against a baseline measured in the same run with
# hyperfine:
#  a. `mlops data add` of 15,000 files of 4 KiB (75 dirs of 200; smoke: 1,600 in 8) into a new home
#     (cold: empty hash cache; the files stay in the page cache, as in artifact_add.sh): under 1 s.
#     Baseline `cp -r` of the tree (the least work that stores 15,000 files somewhere); `mlops
#     artifact add` of the same tree for information.
#  b. `mlops data status NAME` with nothing changed, right after that add (hash cache full): under
#     0.15 s. Baseline `find TREE -type f -printf '%s %T@'` (one lstat per file, as a status needs);
#     `mlops data status --no-cache` for information.
#  c. `mlops data checkout NAME@1 DIR --link copy` into a new empty DIR: under 1.5 s; baseline
#     `cp -r TREE DEST`. `--link hardlink` must be faster than `--link copy`.
#  d. `mlops data add --link copy` of one 1 GiB file of random bytes (smoke: 64 MiB) into a new home
#     (nothing deduplicated): within 1.3x of `cp FILE DEST && openssl dgst -sha256 FILE`. The file
#     stays in the page cache; dirty pages are written out (`sync`) before every run of every
#     contender, so that no run pays for the previous one's writes (mlops ends with a syncfs).
# Absolute targets are scaled by the number of files in smoke mode.
#
#   tests/bench/data.sh [--smoke] [MLOPS_BINARY]
# --smoke: small sizes, few runs, prints the table, never fails on a target (CI machines are shared
# and noisy). Full mode exits 1 when a target is missed. Both fail when a sanity check fails (a
# wrong digest or file count, a status that is not clean, a hash cache that was not filled, a
# checkout that is not what its --link asked for).
#
# Every run writes into a directory or home created for it and nothing is deleted until the end:
# ext4 scans past recently deleted inodes when it creates new ones, so deleting the previous run's
# 15,000 files would slow the next run down. For the same reason, give the filesystem a few minutes
# after a mass deletion (another benchmark's clean-up, or this one's) before a full run: ext4 treats
# inodes freed in the last 60 to 300 s as recently deleted, and every contender creates files slower.
set -euo pipefail

smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
mlops=$(realpath "${1:-build/mlops}")
bench=$(cd "$(dirname "$0")" && pwd)  # bench_report.py, the shared results table
if [ $smoke = 1 ]; then
  dirs=8; runs=3; status_runs=5; big_mib=64; big_runs=3
else
  dirs=75; runs=5; status_runs=20; big_mib=1024; big_runs=5
fi
files=$((dirs * 200))

for tool in hyperfine openssl sqlite3 find; do
  command -v $tool >/dev/null || { echo "data.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

# A real disk, as users have: on tmpfs, writes never reach a disk and syncfs costs nothing.
work=$(mktemp -d "${TMPDIR:-/var/tmp}/mlops-bench-data.XXXXXX")
trap 'rm -rf "$work"' EXIT
fstype=$(stat -f -c %T "$work")
if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
  echo "data.sh: $work is on $fstype, not a disk; set TMPDIR to a directory on one" >&2
  exit 1
fi
cd "$work"
fail() { echo "data.sh: $*" >&2; exit 1; }
json_field() {  # json_field FIELD: FIELD of the JSON document on stdin
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

/usr/bin/python3 - "$dirs" "$big_mib" <<'PY'
import os, sys
for d in range(int(sys.argv[1])):
    os.makedirs(f"data/d{d:03}", exist_ok=True)
    for i in range(200):
        with open(f"data/d{d:03}/f{i:03}", "wb") as f:
            f.write(os.urandom(4096))
os.makedirs("big")
with open("big/big.bin", "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(os.urandom(1 << 20))
PY
sync
tree=$("$mlops" hash --no-cache data | cut -d' ' -f1)
echo 0 > counter
# Each run gets the next number: a new, empty home or destination made by --prepare (which also
# runs before a warmup run: a warmup is as cold as the timed runs).
next='n=$(($(cat counter) + 1)); echo $n > counter'

# a. add, cold.
hyperfine -N --style none --warmup 1 --runs $runs --export-json add.json \
  --prepare "sh -c '$next; mkdir copy\$n; sync'" "sh -c 'cp -r data copy\$(cat counter)'" \
  --prepare "sh -c '$next; $mlops -q init home\$n; sync'" "sh -c '$mlops --home home\$(cat counter) -q data add ds data'" \
  --prepare "sh -c '$next; $mlops -q init home\$n; sync'" "sh -c '$mlops --home home\$(cat counter) -q artifact add data'" \
  >/dev/null
# The last data add's home: artifact add ran after it, --prepare also before the warmup run.
home="$work/home$(($(cat counter) - runs - 1))"
"$mlops" --home "$home" artifact verify --all >/dev/null  # its store is sound
show=$("$mlops" --home "$home" --json data show ds@1)
[ "$(json_field files <<<"$show")" = $files ] || fail "ds@1 holds $(json_field files <<<"$show") files, not $files"
[ "$(json_field tree <<<"$show")" = "sha256:$tree" ] || fail "ds@1 is $(json_field tree <<<"$show"), mlops hash says $tree"
cached=$(sqlite3 "$home/.mlops/mlops.db" 'SELECT count(*) FROM hash_cache')
[ "$cached" -ge $files ] || fail "the add left $cached of $files files in the hash cache"

# b. status with nothing changed, hash cache full.
[ "$("$mlops" --home "$home" --json data status ds | json_field clean)" = True ] || fail "data status is not clean"
hyperfine -N --style none --warmup 2 --runs $status_runs --export-json status.json \
  "find $work/data -type f -printf '%s %T@\n'" "$mlops --home $home data status ds" \
  "$mlops --home $home data status --no-cache ds" >/dev/null

# c. checkout into new empty directories.
hyperfine -N --style none --warmup 1 --runs $runs --export-json checkout.json \
  --prepare "sh -c '$next; mkdir out\$n; sync'" "sh -c 'cp -r data out\$(cat counter)'" \
  --prepare "sh -c '$next; mkdir out\$n; sync'" "sh -c '$mlops --home $home -q data checkout ds@1 out\$(cat counter) --link copy'" \
  --prepare "sh -c '$next; mkdir out\$n; sync'" "sh -c '$mlops --home $home -q data checkout ds@1 out\$(cat counter) --link hardlink'" \
  >/dev/null
last=$(cat counter)
for mode_dir in "copy:out$((last - runs - 1))" "hardlink:out$last"; do
  mode=${mode_dir%%:*}; dir=${mode_dir#*:}
  got=$("$mlops" hash --no-cache "$dir" | cut -d' ' -f1)
  [ "$got" = "$tree" ] || fail "checkout --link $mode made $dir with digest $got, not $tree"
  links=$(stat -c %h "$dir/d000/f000")
  if [ $mode = copy ]; then [ "$links" = 1 ] || fail "checkout --link copy made a file with $links links"; fi
  if [ $mode = hardlink ]; then [ "$links" -gt 1 ] || fail "checkout --link hardlink made an unlinked file"; fi
done

# d. one big file, each add into a new home; every contender starts with nothing dirty.
big_digest=$("$mlops" hash --no-cache big | cut -d' ' -f1)
hyperfine -N --style none --runs $big_runs --export-json big.json \
  --prepare "sh -c '$next; sync'" "sh -c 'cp big/big.bin big\$(cat counter).bin && openssl dgst -sha256 big/big.bin'" \
  --prepare "sh -c '$next; $mlops -q init home\$n; sync'" "sh -c '$mlops --home home\$(cat counter) -q data add big big --link copy'" \
  >/dev/null
big_home="$work/home$(cat counter)"
show=$("$mlops" --home "$big_home" --json data show big@1)
[ "$(json_field tree <<<"$show")" = "sha256:$big_digest" ] || fail "big@1 is $(json_field tree <<<"$show"), not sha256:$big_digest"
[ "$(stat -c %h big/big.bin)" = 1 ] || fail "data add --link copy linked the big file into the store"

PYTHONPATH="$bench" /usr/bin/python3 - "$work" "$smoke" "$files" "$big_mib" <<'PY'
import json, sys
from bench_report import print_table
work, smoke, files, big_mib = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
def medians(name):
    return [r["median"] for r in json.load(open(f"{work}/{name}.json"))["results"]]
cp_tree, data_add, artifact_add = medians("add")
find_stat, status, status_nocache = medians("status")
cp_out, checkout_copy, checkout_hardlink = medians("checkout")
cp_openssl, big_add = medians("big")
scale = files / 15000  # the absolute targets are for 15,000 files
# (contender, median s, baseline's name, baseline's median s, check, target text): check is
# None for a baseline or information, else a function of (median, ratio) that says whether it is met.
rows = [
    (f"cp -r TREE ({files} files)", cp_tree, None, None, None, "baseline"),
    ("mlops data add, cold", data_add, "cp -r", cp_tree, lambda m, r: m < 1.0 * scale, f"< {1.0 * scale:.3f} s"),
    ("mlops artifact add, cold", artifact_add, "cp -r", cp_tree, None, "information"),
    None,
    ("find TREE -printf (lstat)", find_stat, None, None, None, "baseline"),
    ("mlops data status, clean", status, "find", find_stat, lambda m, r: m < 0.15 * scale, f"< {0.15 * scale:.3f} s"),
    ("mlops data status --no-cache", status_nocache, "find", find_stat, None, "information"),
    None,
    ("cp -r TREE DEST", cp_out, None, None, None, "baseline"),
    ("mlops data checkout copy", checkout_copy, "cp -r", cp_out, lambda m, r: m < 1.5 * scale, f"< {1.5 * scale:.3f} s"),
    ("mlops data checkout hardlink", checkout_hardlink, "checkout copy", checkout_copy, lambda m, r: r < 1, "< 1x (faster than copy)"),
    None,
    (f"cp FILE && openssl ({big_mib} MiB)", cp_openssl, None, None, None, "baseline"),
    ("mlops data add --link copy", big_add, "cp && openssl", cp_openssl, lambda m, r: r <= 1.3, "<= 1.3x"),
]
print(f"a-c: {files} files of 4 KiB in 200 per directory, in the page cache; d: one {big_mib} MiB file "
      f"(mlops {big_mib / 1024 / big_add:.2f} GiB/s)")
print_table(rows, smoke, name_width=34, base_width=14)
PY
