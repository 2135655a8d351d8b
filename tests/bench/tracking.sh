#!/usr/bin/env bash
# Experiment tracking benchmark (issue 5), every contender against a baseline measured in the same
# run with hyperfine:
#  a. `mlops run log RUN --file F` of 1,000,000 metric points (20 keys x 50,000 steps, one JSON
#     object per line, MLflow's shape; smoke: 200,000) into a new run of a new home: under 2 s.
#     Baseline: the sqlite3 shell importing the same rows from CSV (`.import`) into a new database
#     holding only the run_metrics table and its index, copied from mlops's own schema, in WAL mode
#     with synchronous=FULL as mlops uses it: the cost of storing those rows with the same engine in
#     one transaction, with no parsing to speak of. Information: python3 merely parsing the file
#     with json.loads (what a Python logger would pay before writing anything).
#  b. 1,000 separate `mlops run log RUN --metric loss=I --step I` invocations in a shell loop, into
#     one run of a new home (smoke: 100): under 5 s in all (scaled in smoke mode). Baseline: as many
#     `sqlite3 DB "INSERT INTO run_metrics ..."` invocations, on a new home's database made the same
#     way: a process that opens the database and commits one row, each time.
#  c. `mlops run ls --filter 'metrics.acc > 0.9' --order-by 'metrics.acc DESC' --limit 10` over
#     10,000 runs with 20 metrics of 100 steps each (20,000,000 metric points, about 1 GiB; smoke:
#     500 runs): under 100 ms. One run is made with `mlops run start` and `mlops run log --file`;
#     the others are SQL copies of it (its params, tags, metric history and latest points), each
#     run's latest acc then set to a random value in [0, 1) so that the filter keeps about a tenth.
#     Baseline: `sqlite3 DB 'SELECT count(*) FROM runs'` (a process that opens the database and
#     reads it). Information: the sqlite3 shell running the equivalent query itself.
#
#   tests/bench/tracking.sh [--smoke] [MLOPS_BINARY]
# --smoke: small sizes, few runs, prints the table, never fails on a target (CI machines are shared
# and noisy); under a minute. Full mode exits 1 when a target is missed (it needs about 3 minutes
# and 2 GiB of disk; run it on an idle machine: check `uptime`). Both fail when a sanity check
# fails (a row count that is not what was logged, a search that returns the wrong runs).
#
# Each timed run of a and b writes into a home or database created for it by --prepare (which
# also runs before a warmup run), with dirty pages written out (`sync`) first. The helper scripts
# that hyperfine runs are written into the work directory, to keep the quoting readable.
set -euo pipefail

smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
mlops=$(realpath "${1:-build/mlops}")
bench=$(cd "$(dirname "$0")" && pwd)  # bench_report.py, the shared results table
if [ $smoke = 1 ]; then
  points=200000; invocations=100; search_runs=500; runs=3; loop_runs=3; query_runs=10
else
  points=1000000; invocations=1000; search_runs=10000; runs=5; loop_runs=3; query_runs=30
fi

for tool in hyperfine sqlite3; do
  command -v $tool >/dev/null || { echo "tracking.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
python=/usr/bin/python3

# A real disk, as users have: on tmpfs, commits never reach a disk and fsync costs nothing.
work=$(mktemp -d "${TMPDIR:-/var/tmp}/mlops-bench-tracking.XXXXXX")
trap 'rm -rf "$work"' EXIT
fstype=$(stat -f -c %T "$work")
if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
  echo "tracking.sh: $work is on $fstype, not a disk; set TMPDIR to a directory on one" >&2
  exit 1
fi
cd "$work"
load=$(cut -d' ' -f1-3 /proc/loadavg)  # before this benchmark loads the machine
fail() { echo "tracking.sh: $*" >&2; exit 1; }
count() { sqlite3 "$1" "$2"; }

# mlops's own schema: the run_metrics table (and its index) for the baseline databases, and how a
# metric row names its run (run_id: the run's id; run: its integer seq).
"$mlops" -q init schema
$python - schema/.mlops/mlops.db "$points" <<'PY'
import json, random, sqlite3, sys
db, points = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
ddl = [row[0] for row in con.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'run_metrics' AND sql IS NOT NULL")]
columns = [row[1] for row in con.execute("PRAGMA table_info(run_metrics)")]
refs = {"run_id": ("'" + "f" * 32 + "'", "(SELECT id FROM runs)"), "run": ("1", "(SELECT seq FROM runs)")}
ref = [c for c in columns if c in refs]
if len(ref) != 1 or set(columns) - set(ref) != {"key", "step", "timestamp", "value"}:
    sys.exit(f"tracking.sh: run_metrics has columns {columns}: update this benchmark")
with open("metrics_schema.sql", "w") as f:
    f.write("PRAGMA journal_mode = WAL;\n" + ";\n".join(ddl) + ";\n")
# b's baseline: one row, into the only run of a new home.
values = {ref[0]: refs[ref[0]][1], "key": "'loss'", "step": "$i", "timestamp": "$i", "value": "0.5"}
with open("insert.sql", "w") as f:
    f.write(f"INSERT INTO run_metrics ({', '.join(columns)}) VALUES ({', '.join(values[c] for c in columns)})")
# a's file, and the same rows as CSV in the table's column order.
random.seed(5)
keys = [f"metric_{k:02}" for k in range(20)]
with open("points.jsonl", "w") as jsonl, open("points.csv", "w") as csv:
    for i in range(points):
        key, step, timestamp, value = keys[i % 20], i // 20, 1700000000000 + i, random.random()
        jsonl.write(json.dumps({"key": key, "value": value, "step": step, "timestamp": timestamp}) + "\n")
        row = {ref[0]: refs[ref[0]][0].strip("'"), "key": key, "step": step, "timestamp": timestamp, "value": repr(value)}
        csv.write(",".join(str(row[c]) for c in columns) + "\n")
PY
sync

echo 0 > counter
next='n=$(($(cat counter) + 1)); echo $n > counter'
cat > new_home.sh <<EOF
$next
"$mlops" -q init home\$n
"$mlops" --home home\$n -q run start --exp bench > home\$n/run
sync
EOF
cat > new_metrics_db.sh <<EOF
$next
sqlite3 metrics\$n.db < metrics_schema.sql > /dev/null
sync
EOF
cat > import_csv.sh <<'EOF'
exec sqlite3 -cmd 'PRAGMA synchronous = FULL' metrics$(cat counter).db '.import --csv points.csv run_metrics'
EOF
cat > log_file.sh <<EOF
n=\$(cat counter)
exec "$mlops" --home home\$n -q run log "\$(cat home\$n/run)" --file points.jsonl
EOF
cat > log_loop.sh <<EOF
n=\$(cat counter)
run=\$(cat home\$n/run)
i=0
while [ \$i -lt $invocations ]; do
  "$mlops" --home home\$n run log "\$run" --metric loss=\$i --step \$i
  i=\$((i + 1))
done
EOF
cat > insert_loop.sh <<EOF
n=\$(cat counter)
i=0
while [ \$i -lt $invocations ]; do
  sqlite3 home\$n/.mlops/mlops.db "$(cat insert.sql)"
  i=\$((i + 1))
done
EOF

# a. one file of points.
hyperfine -N --style none --warmup 1 --runs $runs --export-json file.json \
  --prepare "sh new_metrics_db.sh" "sh import_csv.sh" \
  --prepare "sh new_home.sh" "sh log_file.sh" \
  --prepare "sync" "$python -c 'import json, sys; [json.loads(line) for line in open(sys.argv[1])]' points.jsonl" \
  >/dev/null
n=$(cat counter)
[ "$(count "metrics$((n - runs - 1)).db" 'SELECT count(*) FROM run_metrics')" = $points ] || fail "the CSV import stored the wrong number of rows"
[ "$(count home$n/.mlops/mlops.db 'SELECT count(*) FROM run_metrics')" = $points ] || fail "run log --file stored the wrong number of points"
[ "$(count home$n/.mlops/mlops.db 'SELECT count(*) FROM run_latest_metrics')" = 20 ] || fail "run log --file kept the wrong latest points"
"$mlops" --home home$n run metrics "$(cat home$n/run)" metric_07 | tail -1 | grep -q "^$((points / 20 - 1)),$((1700000000000 + points - 13))," ||
  fail "run metrics shows another last point than the file's"

# b. one invocation per point.
hyperfine -N --style none --warmup 1 --runs $loop_runs --export-json loop.json \
  --prepare "sh new_home.sh" "sh insert_loop.sh" \
  --prepare "sh new_home.sh" "sh log_loop.sh" \
  >/dev/null
n=$(cat counter)
[ "$(count "home$((n - loop_runs - 1))/.mlops/mlops.db" 'SELECT count(*) FROM run_metrics')" = $invocations ] || fail "the sqlite3 loop stored the wrong number of rows"
[ "$(count home$n/.mlops/mlops.db 'SELECT count(*) FROM run_metrics')" = $invocations ] || fail "the run log loop stored the wrong number of points"
[ "$("$mlops" --home home$n run metrics "$(cat home$n/run)" loss | tail -1 | cut -d, -f1)" = $((invocations - 1)) ] ||
  fail "run metrics does not end with the loop's last step"

# c. search over many runs: one real run, copied.
"$mlops" -q init search
template=$("$mlops" --home search -q run start --exp bench --param lr=0.01 --param model=resnet50 --tag team=vision)
$python -c '
import json, random
random.seed(3)
for step in range(100):
    print(json.dumps({"metrics": {("acc" if k == 0 else f"metric_{k:02}"): random.random() for k in range(20)}, "step": step}))
' > template.jsonl
"$mlops" --home search -q run log "$template" --file template.jsonl >/dev/null
"$mlops" --home search -q run end "$template" >/dev/null
db=search/.mlops/mlops.db
$python - "$db" "$template" "$search_runs" <<'PY'
import sqlite3, sys
db, template, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode = DELETE")  # no WAL for a 1 GiB transaction; back to WAL below
con.execute("PRAGMA synchronous = OFF")
con.execute("PRAGMA cache_size = -1000000")
def columns(table):
    return [(row[1], row[2].upper(), row[5]) for row in con.execute(f"PRAGMA table_info({table})")]
# Run i's id: 8 scrambled hex digits (unique: an odd multiplier mod 2^32), then i.
new_id = "printf('%08x%024x', (:i * 2654435761) % 4294967296, :i)"
names, exprs = [], []
for name, kind, pk in columns("runs"):
    if pk and kind == "INTEGER":
        continue  # the rowid (seq): assigned
    names.append(name)
    exprs.append({"id": new_id, "name": "'bench-' || :i", "start_time": "t.start_time + :i",
                  "end_time": "t.end_time + :i"}.get(name, "t." + name))
copies = [f"INSERT INTO runs ({', '.join(names)}) SELECT {', '.join(exprs)} FROM runs t WHERE t.id = :template"]
refs = {"run_id": "id", "run": "seq"}  # how a table names its run
for table in ("run_params", "run_tags", "run_metrics", "run_latest_metrics"):
    names = [c[0] for c in columns(table)]
    ref = [c for c in names if c in refs]
    if len(ref) != 1:
        sys.exit(f"tracking.sh: {table} has columns {names}: update this benchmark")
    ref = ref[0]
    values = [f"c.{refs[ref]}" if c == ref else f"m.{c}" for c in names]
    copies.append(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)} FROM runs c, {table} m "
                  f"WHERE c.id = {new_id} AND m.{ref} = (SELECT {refs[ref]} FROM runs WHERE id = :template)")
con.execute("BEGIN")
for i in range(1, count):
    for sql in copies:
        con.execute(sql, {"i": i, "template": template})
con.execute("UPDATE run_latest_metrics SET value = random() / 18446744073709551616.0 + 0.5 WHERE key = 'acc'")
con.execute("COMMIT")
con.execute("PRAGMA journal_mode = WAL")
con.close()
PY
sync
[ "$(count $db 'SELECT count(*) FROM runs')" = $search_runs ] || fail "the search home has the wrong number of runs"
[ "$(count $db 'SELECT count(*) FROM run_metrics')" = $((search_runs * 2000)) ] || fail "the search home has the wrong number of points"
# The same search in SQL, for the sanity check and for information (m.run_id = r.id, or m.run = r.seq).
join=$(count $db "SELECT CASE name WHEN 'run' THEN 'm.run = r.seq' ELSE 'm.run_id = r.id' END FROM pragma_table_info('run_latest_metrics') WHERE name IN ('run', 'run_id')")
search_sql="SELECT r.id FROM runs r JOIN run_latest_metrics m ON $join AND m.key = 'acc' WHERE m.value > 0.9 AND r.deleted_at IS NULL ORDER BY m.value DESC LIMIT 10"
expected=$(count $db "$search_sql")
got=$("$mlops" --home search --json run ls --filter 'metrics.acc > 0.9' --order-by 'metrics.acc DESC' --limit 10 |
  $python -c 'import json, sys; print("\n".join(r["id"] for r in json.load(sys.stdin)["runs"]))')
[ "$(wc -l <<<"$expected")" = 10 ] || fail "the search home has fewer than 10 runs with acc > 0.9"
[ "$got" = "$expected" ] || fail "run ls found other runs than SQL does:"$'\n'"$got"$'\n'"expected:"$'\n'"$expected"
hyperfine -N --style none --warmup 3 --runs $query_runs --export-json search.json \
  "sqlite3 $db 'SELECT count(*) FROM runs'" \
  "$mlops --home search run ls --filter 'metrics.acc > 0.9' --order-by 'metrics.acc DESC' --limit 10" \
  "sqlite3 $db \"$search_sql\"" \
  "$mlops --home search --json run ls --filter 'metrics.acc > 0.9' --order-by 'metrics.acc DESC' --limit 10" \
  >/dev/null

PYTHONPATH="$bench" $python - "$work" "$smoke" "$points" "$invocations" "$search_runs" "$load" <<'PY'
import json, sys
from bench_report import print_table
work, smoke, points, invocations, search_runs, load = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def medians(name):
    return [r["median"] for r in json.load(open(f"{work}/{name}.json"))["results"]]
csv_import, log_file, python_parse = medians("file")
insert_loop, log_loop = medians("loop")
count_runs, search, search_sql, search_json = medians("search")
file_target = 2.0 * points / 1_000_000  # the absolute targets are for the full sizes
loop_target = 5.0 * invocations / 1000
# (contender, median s, baseline's name, baseline's median s, check, target text): check is None for a
# baseline or information, else a function of (median, ratio) that says whether it is met.
rows = [
    (f"sqlite3 .import CSV ({points} rows)", csv_import, None, None, None, "baseline"),
    ("mlops run log --file", log_file, ".import", csv_import, lambda m, r: m < file_target, f"< {file_target:.2f} s"),
    ("python3 json.loads of the file", python_parse, ".import", csv_import, None, "information"),
    None,
    (f"{invocations} x sqlite3 INSERT", insert_loop, None, None, None, "baseline"),
    (f"{invocations} x mlops run log --metric", log_loop, "sqlite3 loop", insert_loop, lambda m, r: m < loop_target, f"< {loop_target:.2f} s"),
    None,
    ("sqlite3 SELECT count(*) FROM runs", count_runs, None, None, None, "baseline"),
    ("mlops run ls --filter --order-by", search, "count(*)", count_runs, lambda m, r: m < 0.1, "< 0.100 s"),
    ("sqlite3 running the same search", search_sql, "count(*)", count_runs, None, "information"),
    ("mlops --json run ls (same search)", search_json, "count(*)", count_runs, None, "information"),
]
print(f"a: {points} points of 20 keys in one JSON-lines file ({points / log_file / 1e6:.2f} M points/s); b: {invocations} "
      f"processes ({log_loop / invocations * 1000:.1f} ms each); c: {search_runs} runs x 20 metrics x 100 steps; load average before: {load}")
print_table(rows, smoke, name_width=36, base_width=13)
PY
