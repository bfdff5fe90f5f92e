#!/usr/bin/env bash
# The whole test suite, as .ci/run and the README run it (as root, so integration tests run):
#   release build (g++):         unit + integration tests
#   asan build (clang, ASan+UBSan): unit tests
# Prints each ctest summary and a closing "tests: N passed, N failed, N skipped" line.
# Under CI=true a skipped test fails the run: CI must really run every test.
set -uo pipefail
cd "$(dirname "$0")/.."

results=build/test-results
mkdir -p "$results"
rc=0
passed=0 failed=0 skipped=0

# count FILE: adds a ctest JUnit file's totals to the running counts.
count() {
  local line tests failures skips disabled
  line=$(grep -o '<testsuite [^>]*>' "$1" | head -n 1)
  tests=$(sed -n 's/.* tests="\([0-9]*\)".*/\1/p' <<<"$line")
  failures=$(sed -n 's/.* failures="\([0-9]*\)".*/\1/p' <<<"$line")
  skips=$(sed -n 's/.* skipped="\([0-9]*\)".*/\1/p' <<<"$line")
  disabled=$(sed -n 's/.* disabled="\([0-9]*\)".*/\1/p' <<<"$line")
  skips=$(( ${skips:-0} + ${disabled:-0} ))
  passed=$(( passed + ${tests:-0} - ${failures:-0} - skips ))
  failed=$(( failed + ${failures:-0} ))
  skipped=$(( skipped + skips ))
}

run() { echo "==> $*"; "$@"; }

# Configure and build both presets first: a build error stops everything.
for preset in release asan; do
  run cmake --preset "$preset" >/dev/null || exit 1
  run cmake --build --preset "$preset" || exit 1
done

integration=$(ctest --preset release -N -L integration | sed -n 's/^Total Tests: //p')
echo "==> release: $(ctest --preset release -N -L unit | sed -n 's/^Total Tests: //p') unit, ${integration} integration tests"
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root: integration tests will skip (run as root to include them)"
fi

run ctest --preset release --output-junit "$PWD/$results/release.xml" || rc=1
count "$results/release.xml"
run ctest --preset asan --output-junit "$PWD/$results/asan.xml" || rc=1
count "$results/asan.xml"

if [ "${CI:-}" = "true" ]; then
  if [ "$skipped" -ne 0 ]; then
    echo "FAILED: $skipped tests skipped, and CI=true forbids skipping" >&2
    rc=1
  fi
  if [ "${integration:-0}" -eq 0 ]; then
    echo "FAILED: no integration tests were found" >&2
    rc=1
  fi
fi
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$rc"
