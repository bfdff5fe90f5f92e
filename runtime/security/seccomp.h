#pragma once

// mesh's default seccomp profile, in the shape of Docker's (moby profiles/seccomp): an
// allow-list with default action EPERM, capability-dependent extras, argument filters on
// clone, socket and personality, clone3 failing with ENOSYS (so libc falls back to the
// filtered clone), and ENOSYS for every syscall number the profile does not know (so libc
// falls back from a newer call it tries first). x86_64 only. docs/security.md explains each
// choice.
//
// The pipeline: DefaultSeccompPolicy(caps) -> SeccompPolicy (plain data, testable) ->
// CompileSeccompPolicy -> SeccompProgram (classic BPF for seccomp(2), built with libseccomp
// before fork; loading it allocates nothing).

#include <linux/filter.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/security/capabilities.h"

namespace mesh::runtime::security {

// (args[index] & mask) == value, on all 64 bits of the argument.
struct SeccompArgMatch {
  unsigned index = 0;  // 0..5
  uint64_t mask = 0;
  uint64_t value = 0;
};

enum class SeccompAction {
  kAllow,
  kErrnoNosys,  // fail with ENOSYS without running the syscall
};

// One rule: `syscall` gets `action` when every match holds (always when there is none).
// Several rules for one syscall are alternatives. A syscall no rule matches fails with EPERM.
struct SeccompRule {
  int syscall = 0;
  SeccompAction action = SeccompAction::kAllow;
  std::vector<SeccompArgMatch> all_of;
};

struct SeccompPolicy {
  std::vector<SeccompRule> rules;
};

// Docker's default profile for a container whose bounding set is `bounding` (Docker decides
// its capability-dependent rules on the container's capability list, which is its bounding
// set), with one change from Docker 24: io_uring_* are blocked (as Docker 25+ does). With
// Docker's 14 default capabilities, 67 of the 362 known syscalls are refused.
SeccompPolicy DefaultSeccompPolicy(CapMask bounding);

// The syscall numbers a policy allows with any arguments, sorted (unconditional kAllow rules).
std::vector<int> UnconditionallyAllowed(const SeccompPolicy& policy);

// A compiled filter: classic BPF over struct seccomp_data, ready for
// seccomp(SECCOMP_SET_MODE_FILTER). Its first instructions send every x86_64 syscall number
// outside KnownSyscalls() to ERRNO(ENOSYS); the rest is libseccomp's program for the policy
// (default ERRNO(EPERM); a non-x86_64 call, i386 or x32, kills the process).
class SeccompProgram {
 public:
  const std::vector<sock_filter>& instructions() const { return instructions_; }
  // Points into this object: keep it alive (and unmoved) while the kernel reads it.
  sock_fprog fprog() const;

 private:
  friend absl::StatusOr<SeccompProgram> CompileSeccompPolicy(const SeccompPolicy& policy);
  std::vector<sock_filter> instructions_;
};

// Compiles through libseccomp (which allocates: call it before fork). FailedPrecondition on a
// host that is not x86_64; InvalidArgument for a rule on an unknown syscall or a bad argument
// index; Internal when libseccomp fails.
absl::StatusOr<SeccompProgram> CompileSeccompPolicy(const SeccompPolicy& policy);

}  // namespace mesh::runtime::security
