#pragma once

// The x86_64 system calls mesh's seccomp profile knows: every number the Linux 6.1 uapi headers
// define (0-334 and 424-450, 362 in all). The profile classifies each of them; any other number
// (a syscall added by a later kernel, or a hole in the table) fails with ENOSYS, so that libc
// falls back to an older call instead of seeing EPERM. See docs/security.md.
//
// x86_64 only: mesh's seccomp support refuses other architectures (CompileSeccompPolicy).

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mesh::runtime::security {

struct SyscallInfo {
  int number;
  const char* name;  // as in the kernel headers and libseccomp ("clone3", "umount2")
};

// Sorted by number.
absl::Span<const SyscallInfo> KnownSyscalls();

// The highest number in KnownSyscalls() (set_mempolicy_home_node).
inline constexpr int kHighestKnownSyscall = 450;

// The number of a known syscall, or -1.
int SyscallNumber(absl::string_view name);
// The name of a known syscall number, or nullptr.
const char* SyscallName(int number);

}  // namespace mesh::runtime::security
