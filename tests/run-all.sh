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
  local head tests failures skips disabled
  head=$(tr '\n\t' '  ' <"$1" | grep -o '<testsuite [^>]*>' | head -n 1)
  attr() { grep -o "[[:space:]]$1=\"[0-9]*\"" <<<"$head" | grep -o '[0-9]*' || echo 0; }
  tests=$(attr tests) failures=$(attr failures) skips=$(attr skipped) disabled=$(attr disabled)
  skips=$(( skips + disabled ))
  passed=$(( passed + tests - failures - skips ))
  failed=$(( failed + failures ))
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

# The real host's network state, compared after the whole suite: unit tests run outside the
# sandbox, so this catches one that reaches the kernel by mistake (a sysctl, a link, a table).
host_state() {
  { ip -d link show; ip addr show; ip -4 route show table all; ip -6 route show table all;
    ip -4 rule show; ip -6 rule show; nft list ruleset; ip netns list;
    cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding
  } 2>&1 | sed -E 's/([a-z_]+_timer) +[0-9.]+/\1 -/g'
}
host_before=$(host_state)

run ctest --preset release --output-junit "$PWD/$results/release.xml" || rc=1
count "$results/release.xml"
run ctest --preset asan --output-junit "$PWD/$results/asan.xml" || rc=1
count "$results/asan.xml"

if [ "$(host_state)" != "$host_before" ]; then
  echo "FAILED: the real host's network state changed during the tests:" >&2
  diff <(echo "$host_before") <(host_state) >&2
  rc=1
fi

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
