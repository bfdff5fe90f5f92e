#pragma once

// Checks the output of security_syscall_walk (one "syscall NR NAME VERDICT" line per known
// syscall, "probe NAME NR ARG0HEX VERDICT" lines, a summary) line by line against the
// userspace evaluation of the seccomp program that was loaded. Used by the walk in a forked
// child (security_test) and inside a real container (runtime_hardening_test).

#include <linux/filter.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/unit/runtime/security/seccomp_bpf_eval.h"

namespace mesh::runtime::security {

// The walker passes this as its sixth argument, so the profile can tell its probes apart.
inline constexpr uint64_t kWalkMagic = 0x6d6573682d77616bULL;  // as in security_syscall_walk.cc

// The verdict ("allow", "errno", ...) of `program` for syscall `nr` with first argument `arg0`.
inline std::string ExpectedVerdict(const std::vector<sock_filter>& program, long nr,
                                   uint64_t arg0) {
  absl::StatusOr<uint32_t> action = seccomp_testing::EvaluateSeccompBpf(
      program, seccomp_testing::SyscallData(static_cast<int>(nr), {arg0, 0, 0, 0, 0, kWalkMagic}));
  EXPECT_TRUE(action.ok()) << action.status();
  return seccomp_testing::VerdictName(seccomp_testing::Classify(action.ok() ? *action : 0));
}

struct WalkResult {
  std::set<std::string> blocked;              // names of the syscalls not allowed
  std::map<std::string, std::string> probes;  // probe name -> verdict
  int syscalls = 0;                           // syscall lines seen
};

// Parses `out`, expecting every verdict to be the one `program` gives.
inline WalkResult CheckWalk(const std::string& out, const std::vector<sock_filter>& program) {
  WalkResult r;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    long nr = 0;
    if (f[0] == "syscall") {
      EXPECT_EQ(f.size(), 4u) << line;
      if (f.size() != 4 || !absl::SimpleAtoi(f[1], &nr)) {
        ADD_FAILURE() << "bad line: " << line;
        continue;
      }
      EXPECT_EQ(f[3], ExpectedVerdict(program, nr, 0)) << line;
      if (f[3] != "allow") r.blocked.insert(f[2]);
      ++r.syscalls;
    } else if (f[0] == "probe") {
      uint64_t arg0 = 0;
      EXPECT_EQ(f.size(), 5u) << line;
      if (f.size() != 5 || !absl::SimpleAtoi(f[2], &nr) || !absl::SimpleHexAtoi(f[3], &arg0)) {
        ADD_FAILURE() << "bad line: " << line;
        continue;
      }
      EXPECT_EQ(f[4], ExpectedVerdict(program, nr, arg0)) << line;
      r.probes[f[1]] = f[4];
    }
  }
  return r;
}

}  // namespace mesh::runtime::security
