#pragma once

// Test-only: runs a classic BPF seccomp program over a struct seccomp_data in userspace, the way
// the kernel's seccomp does, so tests can ask "what does this filter do with syscall N and
// these arguments" without root and without loading anything. The integration test checks it
// against the kernel (security_test.cc, SyscallWalk).

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mesh::runtime::security::seccomp_testing {

// The 32-bit return value (SECCOMP_RET_* | data). InvalidArgument for what the kernel would
// refuse to load or run: an unknown opcode, a load outside seccomp_data or not 4-byte aligned,
// a jump past the end, scratch memory out of range, or running off the end.
absl::StatusOr<uint32_t> EvaluateSeccompBpf(absl::Span<const sock_filter> program,
                                            const seccomp_data& data);

// seccomp_data for syscall `nr` with `args` on `arch` (x86_64 by default).
seccomp_data SyscallData(int nr, std::array<uint64_t, 6> args = {},
                         uint32_t arch = AUDIT_ARCH_X86_64);

enum class Verdict { kAllow, kEperm, kEnosys, kKillProcess, kOther };
Verdict Classify(uint32_t action);
// "allow", "eperm", "enosys", "kill", "other"
std::string VerdictName(Verdict v);

}  // namespace mesh::runtime::security::seccomp_testing
