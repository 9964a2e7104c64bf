#!/usr/bin/env bash
# The suite under load: a CPU hog on every core (a Python busy loop each, at nice 0, as a
# colleague's job would be), then the test command ROUNDS times in a row. Each round's result and
# seconds are printed, its output kept in test-artifacts/under-load/round-N.log; the hogs are
# stopped on exit (also on Ctrl-C). Exit status 0 only when every round passed.
#
#   tests/hog.sh [ROUNDS] [COMMAND...]      default: 3 rounds of `make test`
#   make test-under-load ROUNDS=3 PYTEST_ARGS=...
set -u

rounds=${1:-3}
shift $(( $# > 0 ? 1 : 0 ))
if [ $# -eq 0 ]; then set -- make test; fi
case $rounds in '' | *[!0-9]*) echo "tests/hog.sh: ROUNDS must be a whole number, got '$rounds'" >&2; exit 2;; esac

cd "$(dirname "$0")/.." || exit 2
logs=test-artifacts/under-load
mkdir -p "$logs"
python=$(command -v python3 || command -v python)
cores=$(nproc)

hogs=()
stop_hogs() {
    # only the processes this script started, by their ids
    if [ ${#hogs[@]} -gt 0 ]; then kill "${hogs[@]}" 2>/dev/null; wait "${hogs[@]}" 2>/dev/null; fi
    hogs=()
}
trap stop_hogs EXIT
trap 'stop_hogs; exit 130' INT TERM

for _ in $(seq "$cores"); do
    nice -n 0 "$python" -c 'while True: pass' &
    hogs+=($!)
done
echo "CPU hog: ${#hogs[@]} busy loops (pids ${hogs[*]}) on $cores cores; $rounds round(s) of: $*"

failed=0
summary=()
for round in $(seq "$rounds"); do
    started=$(date +%s)
    "$@" >"$logs/round-$round.log" 2>&1
    status=$?
    seconds=$(( $(date +%s) - started ))
    result=$([ $status -eq 0 ] && echo passed || echo "FAILED (exit $status)")
    [ $status -eq 0 ] || failed=$((failed + 1))
    line="round $round/$rounds: $result in ${seconds} s ($(tail -n 1 "$logs/round-$round.log"))"
    echo "$line"
    summary+=("$line")
done

stop_hogs
echo "--- under load, $cores hog(s): $((rounds - failed))/$rounds round(s) passed; logs in $logs/"
printf '%s\n' "${summary[@]}"
[ $failed -eq 0 ]
