#pragma once

// Process helpers shared by the shim and the exec helper.

#include <sys/types.h>

#include <string>
#include <vector>

namespace mesh::runtime::shim {

// clone3 with CLONE_PIDFD and `flags` (namespace flags), like fork: the child returns 0, the
// parent the child's pid and its pidfd in *pidfd. -1 and errno on failure. (glibc has no
// clone3 wrapper, and linux/sched.h clashes with its sched.h.)
pid_t CloneWithPidfd(uint64_t flags, int* pidfd);

// `arg0` looked up in the PATH of `env` (the container's, resolved in the calling process's
// root), as execvpe would if it used `env`; `arg0` itself if it has a '/' or is not found
// (execve then reports ENOENT).
std::string FindExecutable(const std::vector<std::string>& env, const std::string& arg0);

// execve of `args` with `env` (after FindExecutable); returns only on failure (errno set).
// The process starts as a fresh one would: every signal at its default disposition and none
// blocked, whatever the shim (or whoever started it) ignored or blocked (execve keeps ignored
// signals and the mask).
void Exec(const std::vector<std::string>& args, const std::vector<std::string>& env);

}  // namespace mesh::runtime::shim
