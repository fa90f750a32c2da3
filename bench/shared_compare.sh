#!/usr/bin/env bash
# Tiergate beside the peers in the shared harness (../shared/bench), one run, one core each.
#
#   bench/shared_compare.sh [--old DIR] [--loads max,500] [--reps 2] [--targets portkey]
#
# Targets: direct (the mock itself), Tiergate as shipped (`tiergate`: auth, validation, metrics,
# JSON request log), Tiergate with full governance (`tg-gov`: the key has RPM/TPM limits, daily
# token and monthly USD budgets, its team a budget, and a global quota applies), the peers named
# by --targets (run ../shared/bench/setup.sh once to install them), and with --old DIR a second
# Tiergate from another source tree (`tg-old`, e.g. `git worktree add ../tg-old <commit>`), for
# before/after comparisons inside one run. Prints the harness's table; results in
# ../shared/bench/results/<stamp>/ (or --out).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
shared="$here/../shared/bench"
old="" loads="max,500" reps=2 peers="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --old) old="$(cd "$2" && pwd)"; shift 2;;
    --loads) loads="$2"; shift 2;;
    --reps) reps="$2"; shift 2;;
    --targets) peers="$2"; shift 2;;
    --out) out="$2"; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
key='authorization: Bearer tg-demo-local-only-0123456789abcdef'
run="cd $here && exec .venv/bin/python -m bench.shared_target --mock-base {mock_base} --port {port}"
targets="direct${peers:+,$peers}"
args=()
add() {  # name, extra shared_target flags
  targets="$targets,$1"
  args+=(--add-target "$1" 'http://127.0.0.1:{port}/v1' "sh -c \"$run $2\""
         --target-header "$1" "$key" --target-cpus "$1" 1)
}
[ -n "$old" ] && add tg-old "--src $old"
add tiergate ""
add tg-gov "--governance"
cd "$shared"
exec "$here/.venv/bin/python" bench.py --targets "$targets" --delays 0 --loads "$loads" \
  --reps "$reps" --duration 6 ${out:+--out "$out"} "${args[@]}"
