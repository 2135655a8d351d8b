#!/usr/bin/env bash
# The main job: the mlops lifecycle end to end, printing what happens at each step. It grows with
# each capability that lands; steps whose issue has not landed are listed at the end.
#
#   MLOPS=/path/to/mlops packaging/demo/main_job.sh [PROJECT_DIR]
# PROJECT_DIR defaults to a new temporary directory, kept afterwards so you can look around.
set -euo pipefail

mlops=${MLOPS:-mlops}
project=${1:-$(mktemp -d /tmp/mlops-demo.XXXXXX)}
step=0

heading() { step=$((step + 1)); printf '\n== %d. %s\n' "$step" "$*"; }
show() { printf '$ mlops %s\n' "$*"; "$mlops" "$@"; }

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

heading "Errors are clear and scripts get exit codes and JSON"
set +e
(cd / && "$mlops" db status); echo "exit code $? (3: no home here)"
"$mlops" --json bogus; echo "exit code $? (2: usage)"
set -e

printf '\n== Still to come (planned nouns, see README): version a dataset, train a small model in a\n'
printf '   tracked run, register two versions, serve the first, canary-promote the second.\n'
printf '\nmain job done; the project is in %s\n' "$project"
