#!/usr/bin/env bash
# Start-up benchmark: `mlops version` and a read command (`mlops db status`) on an empty home,
# against `sqlite3 DB 'select 1'` on the same database, measured in the same run with hyperfine.
# Target: each mlops median within 3x of the baseline median (MLflow and DVC take about 1 s).
#
#   tests/bench/startup.sh [--smoke] [MLOPS_BINARY]
# --smoke: few runs, prints the table, never fails on the ratio (CI machines are shared and noisy).
set -euo pipefail

smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
mlops=$(realpath "${1:-build/mlops}")
target=3.0
if [ $smoke = 1 ]; then runs=15; warmup=3; else runs=300; warmup=30; fi

for tool in hyperfine sqlite3; do
  command -v $tool >/dev/null || { echo "startup.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$mlops" -q init "$work/project" >/dev/null
db="$work/project/.mlops/mlops.db"

cd "$work/project"
hyperfine -N --style none --warmup $warmup --runs $runs --export-json "$work/times.json" \
  "sqlite3 $db 'select 1'" "$mlops version" "$mlops db status" >/dev/null

/usr/bin/python3 - "$work/times.json" "$target" "$smoke" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
target, smoke = float(sys.argv[2]), sys.argv[3] == "1"
baseline = results[0]["median"]
print(f"{'command':<24} {'median ms':>10} {'ratio':>7}  target")
failed = False
for i, r in enumerate(results):
    name = "sqlite3 DB 'select 1'" if i == 0 else "mlops " + r["command"].split(" ", 1)[1]
    ratio = r["median"] / baseline
    verdict = "baseline" if i == 0 else ("ok" if ratio <= target else "MISSED")
    failed |= verdict == "MISSED"
    print(f"{name:<24} {r['median'] * 1000:>10.2f} {ratio:>6.2f}x  {verdict}" + ("" if i == 0 else f" (<= {target}x)"))
if failed and not smoke:
    sys.exit(1)
PY
