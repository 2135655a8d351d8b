#!/usr/bin/env bash
# Registry benchmark (issue 6): on a registry of 1,000 models with 20 versions each (smoke: 50),
# `mlops model show NAME@production` and `mlops --json model show NAME@17` against a bare
# `sqlite3 DB` query of the same version row, measured in the same run with hyperfine.
# Target: each mlops median within 3x of the sqlite3 median.
#
# The registry is made with one real registration (an ONNX model, inspected by mlops-worker),
# then copied in SQL to every model and version: 20,000 registrations through the CLI would
# measure registration, not lookup.
#
#   tests/bench/registry.sh [--smoke] [MLOPS_BINARY]
# --smoke: small registry, few runs, prints the table, never fails on the ratio.
set -euo pipefail

smoke=0
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
mlops=$(realpath "${1:-build/mlops}")
target=3.0
if [ $smoke = 1 ]; then models=50; runs=15; warmup=3; else models=1000; runs=200; warmup=20; fi
versions=20

for tool in hyperfine sqlite3; do
  command -v $tool >/dev/null || { echo "registry.sh: $tool is missing" >&2; exit 1; }
done
/usr/bin/python3 -c "import onnx" 2>/dev/null || { echo "registry.sh: python3-onnx is missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mlops-bench-registry.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$mlops" -q init "$work/project" >/dev/null
cd "$work/project"
db=.mlops/mlops.db

/usr/bin/python3 - <<'PY'
from onnx import TensorProto, helper, numpy_helper, save
import numpy as np
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
    [numpy_helper.from_array(np.ones((4, 1), dtype=np.float32), "w")])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
save(model, "model.onnx")
PY
"$mlops" -q model register seed model.onnx >/dev/null
sqlite3 "$db" <<SQL
BEGIN;
WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i + 1 < $models)
INSERT INTO models (name, created_at) SELECT printf('model-%04d', i), created_at FROM m, models WHERE name = 'seed';
WITH RECURSIVE v(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM v WHERE n < $versions)
INSERT INTO model_versions (model, version, digest, size, file_name, format, signature, description, created_at)
  SELECT m.name, v.n, s.digest, s.size, s.file_name, s.format, s.signature, 'copy', s.created_at
  FROM models m, v, model_versions s WHERE m.name != 'seed' AND s.model = 'seed' AND s.version = 1;
INSERT INTO model_aliases (model, alias, version, updated_at) SELECT name, 'production', 12, created_at FROM models WHERE name != 'seed';
COMMIT;
SQL
count=$(sqlite3 "$db" "SELECT count(*) FROM model_versions")
[ "$count" = $((models * versions + 1)) ] || { echo "registry.sh: made $count versions" >&2; exit 1; }
name=$(printf 'model-%04d' $((models / 2)))
"$mlops" --json model show "$name@production" | grep -q '"version": 12' || { echo "registry.sh: wrong version resolved" >&2; exit 1; }

query="SELECT v.* FROM model_aliases a JOIN model_versions v ON v.model = a.model AND v.version = a.version WHERE a.model = '$name' AND a.alias = 'production'"
hyperfine -N --style none --warmup $warmup --runs $runs --export-json "$work/times.json" \
  "sqlite3 $db \"$query\"" "$mlops model show $name@production" "$mlops --json model show $name@17" >/dev/null

/usr/bin/python3 - "$work/times.json" "$target" "$smoke" "$models" "$versions" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
target, smoke, models, versions = float(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
print(f"registry of {models} models x {versions} versions")
names = ["sqlite3 DB (alias -> version row)", "mlops model show NAME@production", "mlops --json model show NAME@17"]
baseline = results[0]["median"]
print(f"{'contender':<36} {'median ms':>10} {'ratio':>7}  target")
failed = False
for name, r in zip(names, results):
    ratio = r["median"] / baseline
    verdict = "baseline" if r is results[0] else ("ok" if ratio <= target else "MISSED") + f" (<= {target}x)"
    failed |= "MISSED" in verdict
    print(f"{name:<36} {r['median'] * 1000:>10.2f} {ratio:>6.2f}x  {verdict}")
if failed and not smoke:
    sys.exit(1)
PY
