#!/usr/bin/env bash
# The main job: the mlops lifecycle end to end, printing what happens at each step. It grows with
# each capability that lands; steps whose issue has not landed are listed at the end.
#
#   MLOPS=/path/to/mlops packaging/demo/main_job.sh [PROJECT_DIR]
# PROJECT_DIR defaults to a new temporary directory, kept afterwards so you can look around.
set -euo pipefail

mlops=${MLOPS:-mlops}
export MLOPS=$mlops  # the trainer calls it too
worker=$(dirname "$(realpath "$(command -v "$mlops")")")/mlops-worker  # installed beside mlops
demo=$(cd "$(dirname "$0")" && pwd)
project=${1:-$(mktemp -d /tmp/mlops-demo.XXXXXX)}
step=0

heading() { step=$((step + 1)); printf '\n== %d. %s\n' "$step" "$*"; }
# Prints the command as one could type it (quoting only what needs it), then runs it.
show() {
  local word shown=""
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./=@:,+-]+$ ]]; then shown+=" $word"; else shown+=" '${word//\'/\'\\\'\'}'"; fi
  done
  printf '$ mlops%s\n' "$shown"
  "$mlops" "$@"
}

mkdir -p "$project"
cd "$project"
heading "The binary and what it was built with"
show version

heading "Create a home for the project in $project"
show init
show init  # Idempotent: a second init changes nothing.

heading "Check the home: database integrity, schema, object store"
show db check

heading "A read command from a subdirectory finds the home upward"
mkdir -p src/train && (cd src/train && show db status)

heading "Hash a small dataset: files in sha256sum format, the directory by its manifest"
mkdir -p data/images
for i in 1 2 3; do printf 'sample %s\n' "$i" > "data/images/img$i.txt"; done
printf 'id,label\n1,cat\n2,dog\n3,cat\n' > data/labels.csv
show hash --list data

heading "Store it in the content-addressed object store, fetch it back, verify everything"
show artifact add data
digest=$("$mlops" --json artifact add data | sed -n 's/.*"digest": "sha256:\([0-9a-f]*\)".*/\1/p' | head -n 1)
show artifact show "${digest:0:12}"
show artifact get "${digest:0:12}" restored
diff -r data restored && echo "restored copy is identical"
show artifact verify --all

heading "Version the data as a dataset, tied to the project's git commit"
git init -q . && git -c user.name=demo -c user.email=demo@example.com commit -q --allow-empty -m "demo code"
show data add labels data -m "first labels" --tag v1
show data add labels data  # Identical content: no new version.
printf '4,dog\n' >> data/labels.csv
mv data/images/img3.txt data/images/img3-renamed.txt
show data status labels
show data add labels data -m "one more label, one image renamed"
show data log labels
show data diff labels@v1 labels@2

heading "Check out the first version elsewhere, verified; the workspace still holds the second"
show data checkout labels@1 labels-v1
grep -c , labels-v1/labels.csv | sed 's/^/labels-v1 rows: /'
show data status labels

heading "Version a training dataset, then train a small model in two tracked runs"
/usr/bin/python3 "$demo/make_dataset.py" churn-data
show data add churn churn-data -m "synthetic churn data, 2000 rows"
for lr in 0.05 1.0; do
  show run exec --exp churn --name "lr-$lr" --param dataset=churn@1 -- \
    /usr/bin/python3 "$demo/train.py" churn-data --lr "$lr" --out "model-lr-$lr.onnx"
done
show run ls --exp churn --order-by "metrics.accuracy DESC"
best=$("$mlops" --json run ls --exp churn --order-by "metrics.accuracy DESC" --limit 1 |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["runs"][0]["id"])')
show run show "$best"
show run ls --filter "metrics.accuracy > 0.8 and params.lr = '1.0'"

heading "Register both models (their ONNX signatures checked), alias the first as production"
runs=$("$mlops" --json run ls --exp churn --order-by "attributes.start_time ASC" |
  /usr/bin/python3 -c 'import json, sys; print(" ".join(r["id"] for r in json.load(sys.stdin)["runs"]))')
read -r first second <<<"$runs"
show model register churn --run "$first" --path model-lr-0.05.onnx --dataset churn@1 \
  --description "churn scoring, logistic regression" --tag intended_use="demo: ranking accounts at risk"
show model register churn --run "$second" --path model-lr-1.0.onnx --dataset churn@1 \
  --description "churn scoring, logistic regression, higher learning rate"
show model alias set churn production 1
show model show churn@production
show model lineage churn@2
echo "# may churn@2 replace production? (CI would gate on the exit code)"
set +e
show model gate churn@2 --against churn@production --metric accuracy --max-regression 0.01 --signature-compatible
echo "exit code $? (0: pass, 6: fail)"
set -e
show model card churn@2 --out MODEL_CARD.md
show model export churn@production --format triton triton-repository

heading "Score two accounts with churn@production on the bundled runtime (GPU when there is one)"
echo '{"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 2], "data": [[0.2, 3.0], [2.5, -1.0]]}]}' \
  >score-request.json
echo "\$ mlops-worker run triton-repository/churn/1/model.onnx --request score-request.json"
"$worker" run triton-repository/churn/1/model.onnx --request score-request.json --device auto

heading "Serve churn@production on the worker, call it, measure it, stop it"
# Stop the service however the job ends, so that no worker outlives it.
trap '"$mlops" serve stop --all >/dev/null 2>&1 || true' EXIT
show serve start churn@production --name churn-prod
url=$("$mlops" --json serve status churn-prod | python3 -c 'import json, sys; print(json.load(sys.stdin)["url"])')
echo "\$ curl -s $url/v2/models/churn/infer -d @score-request.json"
curl -s "$url/v2/models/churn/infer" -d @score-request.json
echo
echo '[[0.2, 3.0], [2.5, -1.0]]' >rows.json
show serve predict churn-prod --input rows.json
show serve load churn-prod --concurrency 8 --duration 2s
show serve ls
show serve stop churn-prod

heading "Canary-promote churn@2 behind a stable endpoint, under load, with automatic rollback"
trap '"$mlops" deploy rm churn-live --force >/dev/null 2>&1 || true; "$mlops" serve stop --all >/dev/null 2>&1 || true' EXIT
show deploy create churn-live --model churn@production
# Clients call the stable endpoint the whole time; the load report below counts their failures.
"$mlops" serve load churn-live --concurrency 4 --duration 6s >canary-load.txt &
load=$!
show deploy canary churn-live --to churn@2 --steps 25,50,100 --interval 1s --min-requests 20 --set-alias production
wait "$load"
echo "\$ # what the clients saw meanwhile:"
cat canary-load.txt
show deploy history churn-live
show deploy status churn-live
show model versions churn
echo "# A bad build: its worker fails every request after its smoke test (MLOPS_WORKER_FAIL_AFTER injects that)."
"$mlops" serve load churn-live --concurrency 4 --duration 3s >rollback-load.txt &
load=$!
set +e
MLOPS_WORKER_FAIL_AFTER=5 show deploy canary churn-live --to churn@1 --steps 25,100 --interval 1s --set-alias production
echo "exit code $? (6: rolled back automatically; churn@production still names version 2)"
set -e
wait "$load"
show deploy history churn-live
echo "# A crash: the router is killed; \`deploy resume\` starts it again on the same URL, as the row says."
router=$("$mlops" --json deploy status churn-live | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["router"]["pid"])')
kill -9 "$router"
show deploy resume churn-live
show serve predict churn-live --input rows.json
show deploy rm churn-live

heading "Errors are clear and scripts get exit codes and JSON"
set +e
(cd / && "$mlops" db status); echo "exit code $? (3: no home here)"
"$mlops" --json bogus; echo "exit code $? (2: usage)"
set -e

printf '\nmain job done; the project is in %s\n' "$project"
