#!/bin/sh
# Runs every benchmark built in BUILD_DIR (default: build) and prints its figures; each one
# measures its own baseline in the same run and reports ratios to it, since this machine is shared.
#   bench/run.sh [BUILD_DIR] [extra arguments for every benchmark]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
status=0
found=0
here=$(dirname "$0")
# Compiled benchmarks take their arguments; scripted ones (bench/*_bench.py: real servers under
# load) take the build directory first.
for bench in "$build"/bench/*_bench "$here"/*_bench.py; do
  [ -x "$bench" ] || continue
  found=1
  echo "== $(basename "$bench")"
  rc=0
  case "$bench" in
    *.py) /usr/bin/python3 "$bench" "$build" || rc=$? ;;
    *) "$bench" "$@" || rc=$? ;;
  esac
  if [ "$rc" -eq 77 ]; then
    echo "   (skipped)"
  elif [ "$rc" -ne 0 ]; then
    echo "   FAILED with exit code $rc"
    status=1
  fi
done
if [ "$found" -eq 0 ]; then
  echo "no benchmarks in $build/bench: build first (make build BUILD=$build)" >&2
  exit 1
fi
exit $status
