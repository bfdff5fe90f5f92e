#!/usr/bin/env bash
# RULE_LAUNCH_LINK of targets linked fully statically (mesh-shim, see runtime/CMakeLists.txt).
# CMake's imported targets (Abseil, libseccomp, ...) name shared libraries by full path; this
# swaps each for the static archive beside it, adds -static and runs the link. A library with
# no static archive is an error, not a silent dynamic link.
set -euo pipefail
args=("$1" -static)
shift
for a in "$@"; do
  if [[ "$a" =~ ^(/.*/lib[^/]+)\.so(\.[0-9.]+)?$ ]]; then
    archive="${BASH_REMATCH[1]}.a"
    if [[ ! -f "$archive" ]]; then
      echo "static-link.sh: $a has no static archive ($archive); install it or configure with -DMESH_STATIC_SHIM=OFF" >&2
      exit 1
    fi
    a="$archive"
  fi
  args+=("$a")
done
exec "${args[@]}"
