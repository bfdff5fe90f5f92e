#pragma once

// mesh-shim exec <run_dir> <exec.json> [--resize-fd=3]
//
// Runs one more process in a running container: joins its cgroup and every namespace of its
// PID 1 (through a pidfd checked against the recorded start time), applies the container's
// capabilities, no_new_privs and seccomp, with the args, env, cwd and user of exec.json.
// Without a terminal the process gets this helper's stdin/stdout/stderr; with one, a pty
// allocated inside the container, relayed to them. Exits as the process did (its code, or
// re-raising its signal); 126/127 with a message on stderr when it cannot be started.
// `resize_fd` (>= 0, with a terminal): TerminalSize records that resize the pty as they come.

#include <string>

#include "runtime/container/exec_spec.h"

namespace mesh::runtime {

namespace shim {
int ExecMain(const std::string& run_dir, const std::string& exec_json, int resize_fd);
}  // namespace shim

}  // namespace mesh::runtime
