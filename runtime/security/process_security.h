#pragma once

// The process side of a container's security: rlimits, user and groups, capabilities,
// no_new_privs and seccomp, plus fd hygiene and dumpability for the runtime's own helpers.
// docs/security.md says what each guards against.
//
// Use (in the shim, which is single-threaded):
//
//   MESH_ASSIGN_OR_RETURN(PreparedSecurity sec,
//                         Prepare(spec.process, spec.seccomp, spec.privileged));  // may fail
//   pid_t pid = fork();            // or clone() into the new namespaces
//   // child:
//   MakeNonDumpable();             // first thing after entering the container's namespaces
//   ... namespaces, mounts, pivot_root, cwd, stdio on 0-2 ...
//   CloseFdsExcept0to2({report_pipe});  // only 0-2 survive execve (CVE-2024-21626)
//   sec.ApplyInChild();            // last step before execve; seccomp is loaded at its end
//   execve(...);                   // at once: no runtime code runs under the container's
//                                  // creds after this (CVE-2019-5736)

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/security/capabilities.h"
#include "runtime/security/rlimits.h"
#include "runtime/security/seccomp.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime::security {

// Everything the child side needs, validated and computed before fork. Move-only (it owns
// the seccomp program the kernel reads at load time).
class PreparedSecurity {
 public:
  PreparedSecurity(PreparedSecurity&&) = default;
  PreparedSecurity& operator=(PreparedSecurity&&) = default;
  PreparedSecurity(const PreparedSecurity&) = delete;
  PreparedSecurity& operator=(const PreparedSecurity&) = delete;

  // Applies the prepared settings to the calling process, in this order:
  //   1. rlimits (setrlimit);
  //   2. seccomp, here already when no_new_privileges is off: loading a filter needs
  //      no_new_privs or CAP_SYS_ADMIN, and the latter is gone after step 5 (runc does the
  //      same; the profile allows every call of steps 3-6);
  //   3. the bounding set: PR_CAPBSET_DROP for every capability outside it;
  //   4. setgroups(additional_gids), setresgid, setresuid to the spec user, with
  //      PR_SET_KEEPCAPS so that permitted survives a switch away from uid 0;
  //   5. capset(effective, permitted, inheritable);
  //   6. the ambient set: cleared, then each configured capability raised;
  //   7. PR_SET_NO_NEW_PRIVS when no_new_privileges is on;
  //   8. seccomp when no_new_privileges is on: last, right before execve, which the profile
  //      allows.
  // Call it in a single-threaded child right before execve: the id changes use the raw
  // syscalls and affect the calling thread only. It takes no locks and allocates nothing on
  // success (the error path builds an absl::Status; the child is about to _exit then). On
  // failure the process is half-configured: do not exec, _exit.
  absl::Status ApplyInChild() const;

  uint32_t uid() const { return uid_; }
  uint32_t gid() const { return gid_; }
  const std::vector<gid_t>& additional_gids() const { return groups_; }
  // The five sets set before execve. After execve the kernel gives a process with uid 0
  // permitted = effective = bounding (+ inheritable), and any other uid permitted =
  // effective = ambient (for a program without file capabilities); see docs/security.md.
  const CapabilityMasks& capabilities() const { return caps_; }
  const std::vector<ResolvedRlimit>& rlimits() const { return rlimits_; }
  bool no_new_privileges() const { return no_new_privs_; }
  // nullptr when seccomp is unconfined (privileged, or SeccompProfile::kUnconfined).
  const SeccompProgram* seccomp() const { return seccomp_ ? &*seccomp_ : nullptr; }

 private:
  friend absl::StatusOr<PreparedSecurity> Prepare(const Process& process, SeccompProfile seccomp,
                                                  bool privileged,
                                                  const RuntimeCapabilities& runtime);
  PreparedSecurity() = default;
  absl::Status LoadSeccomp() const;

  uint32_t uid_ = 0;
  uint32_t gid_ = 0;
  std::vector<gid_t> groups_;
  CapabilityMasks caps_;
  int last_cap_ = 0;
  std::vector<ResolvedRlimit> rlimits_;
  bool no_new_privs_ = true;
  std::optional<SeccompProgram> seccomp_;
};

// Validates `process` and precomputes what ApplyInChild needs, in the process that will fork
// (its capabilities and limits are what the child inherits). No kernel state changes.
//   - privileged: every capability the runtime holds (its bounding and permitted sets) in
//     bounding, permitted and effective; inheritable and ambient empty; no seccomp.
//     process.capabilities is ignored, no_new_privileges is honoured.
//   - otherwise the five sets of process.capabilities exactly as given, whatever the uid (all
//     empty: no capability at all); what the process keeps after execve is the kernel's rule
//     (see capabilities() above and ContainerCapabilities in capabilities.h).
//   - InvalidArgument: process.capabilities unset on a non-privileged process (WithDefaults
//     fills it in; Prepare does not guess), an unknown capability or rlimit name, soft > hard,
//     a limit given twice, a uid or gid of 4294967295, more than 65536 additional gids, or
//     capability sets the kernel cannot hold (effective outside permitted; permitted or
//     inheritable outside bounding; ambient outside permitted ∩ inheritable; for uid 0
//     permitted or effective different from bounding ∪ inheritable, which execve would widen
//     them to).
//   - FailedPrecondition: a capability the runtime itself lacks (a child cannot gain it);
//     a seccomp profile on a non-x86_64 host.
//   - PermissionDenied: a hard rlimit above the runtime's own without CAP_SYS_RESOURCE.
absl::StatusOr<PreparedSecurity> Prepare(const Process& process, SeccompProfile seccomp,
                                         bool privileged, const RuntimeCapabilities& runtime);
// The same, with ReadRuntimeCapabilities() of the calling process.
absl::StatusOr<PreparedSecurity> Prepare(const Process& process, SeccompProfile seccomp,
                                         bool privileged);

// fd hygiene: "only fds 0-2 reach the container" (CVE-2024-21626 leaked a host directory fd).
// Closes every fd >= 3 now (close_range), except `keep_until_exec` (e.g. the pipe that reports
// an exec failure), which are set close-on-exec instead; after execve only 0, 1 and 2 are left.
// Closing now, not just at exec, also takes the fds away from the setup steps that follow
// (chdir, mounts): no path through /proc/self/fd/N reaches the host. No allocation.
absl::Status CloseFdsExcept0to2(absl::Span<const int> keep_until_exec = {});

// Marks every fd >= 3 close-on-exec (close_range CLOSE_RANGE_CLOEXEC): they stay usable until
// execve and are gone after it. For a helper that still needs its fds while setting up; prefer
// CloseFdsExcept0to2 where it can be used. No allocation.
absl::Status SetCloseOnExecFrom3();

// PR_SET_DUMPABLE 0 for the runtime's own processes that enter a container (the shim's init
// and exec helpers) until they execve the container's program: other processes of the
// container, even with the same uid, can then not ptrace them nor open /proc/PID/exe, fd/,
// mem or environ (owned by root, ptrace access refused) — the way CVE-2019-5736 reached the
// runtime binary. execve of the container's program resets it. No allocation.
absl::Status MakeNonDumpable();

}  // namespace mesh::runtime::security
