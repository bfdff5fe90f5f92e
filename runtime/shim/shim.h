#pragma once

// mesh-shim: the small per-container supervisor (DESIGN.md decision 4).
//
//   mesh-shim <run_dir>      (fd 3: the report pipe, closed once the container is created)
//
// Reads <run_dir>/config.json, creates the container (namespaces, cgroup, rootfs, all held in a
// process waiting to exec), reports "ok <pid>" or "error <message>" on fd 3, then serves the
// control socket (start, kill, resize), writes the container's stdout/stderr to its log, and
// records every change of status in state.json. Exits once the container has ended and its
// exit is recorded. Single-threaded on purpose: it forks and clones freely.

namespace mesh::runtime::shim {

int Main(int argc, char** argv);

}  // namespace mesh::runtime::shim
