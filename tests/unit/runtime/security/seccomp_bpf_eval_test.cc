// The test-only BPF evaluator itself, on hand-written programs (the integration test also
// checks it against the kernel).
#include "tests/unit/runtime/security/seccomp_bpf_eval.h"

#include <cerrno>
#include <cstddef>
#include <vector>

#include "gtest/gtest.h"

namespace mesh::runtime::security::seccomp_testing {
namespace {

constexpr sock_filter Stmt(uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; }
constexpr sock_filter Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return sock_filter{code, jt, jf, k};
}
constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kEperm = SECCOMP_RET_ERRNO | EPERM;

uint32_t RunBpf(const std::vector<sock_filter>& p, const seccomp_data& d) {
  absl::StatusOr<uint32_t> r = EvaluateSeccompBpf(p, d);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : 0xdeadbeef;
}

TEST(SeccompBpfEval, LoadsCompareAndReturn) {
  // Allow nr 39 on x86_64, else EPERM.
  std::vector<sock_filter> p = {
      Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      Jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
      Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      Jump(BPF_JMP | BPF_JEQ | BPF_K, 39, 0, 1),
      Stmt(BPF_RET | BPF_K, kAllow),
      Stmt(BPF_RET | BPF_K, kEperm),
  };
  EXPECT_EQ(RunBpf(p, SyscallData(39)), kAllow);
  EXPECT_EQ(RunBpf(p, SyscallData(40)), kEperm);
  EXPECT_EQ(RunBpf(p, SyscallData(39, {}, AUDIT_ARCH_I386)), kEperm);
  EXPECT_EQ(Classify(kAllow), Verdict::kAllow);
  EXPECT_EQ(Classify(kEperm), Verdict::kEperm);
  EXPECT_EQ(Classify(SECCOMP_RET_ERRNO | ENOSYS), Verdict::kEnosys);
  EXPECT_EQ(Classify(SECCOMP_RET_KILL_PROCESS), Verdict::kKillProcess);
  EXPECT_EQ(Classify(SECCOMP_RET_TRAP), Verdict::kOther);
}

TEST(SeccompBpfEval, ArgumentsAluJsetScratchAndX) {
  // A = args[0] low word; A &= 0xff00; M[1] = A; X = A; A = 3; A += X... returns A.
  std::vector<sock_filter> p = {
      Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
      Stmt(BPF_ALU | BPF_AND | BPF_K, 0xff00),
      Stmt(BPF_ST, 1),
      Stmt(BPF_MISC | BPF_TAX, 0),
      Stmt(BPF_LD | BPF_IMM, 3),
      Stmt(BPF_ALU | BPF_ADD | BPF_X, 0),
      Stmt(BPF_ALU | BPF_RSH | BPF_K, 1),
      Jump(BPF_JMP | BPF_JSET | BPF_K, 0x80, 0, 2),
      Stmt(BPF_LDX | BPF_MEM, 1),
      Stmt(BPF_MISC | BPF_TXA, 0),
      Stmt(BPF_RET | BPF_A, 0),
  };
  // args[0] = 0x1234: A=0x1200, +3=0x1203, >>1=0x901, bit 0x80 clear -> returns 0x901.
  EXPECT_EQ(RunBpf(p, SyscallData(0, {0x1234})), 0x901u);
  // args[0] = 0x0100: A=0x100+3=0x103>>1=0x81, bit 0x80 set -> A = M[1] = 0x100.
  EXPECT_EQ(RunBpf(p, SyscallData(0, {0x0100})), 0x100u);
  // The high word of an argument is at offset + 4 (little-endian).
  std::vector<sock_filter> hi = {
      Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[2]) + 4),
      Stmt(BPF_RET | BPF_A, 0),
  };
  EXPECT_EQ(RunBpf(hi, SyscallData(0, {0, 0, 0x700000001ull})), 7u);
}

TEST(SeccompBpfEval, RefusesWhatTheKernelWouldRefuse) {
  const seccomp_data d = SyscallData(0);
  EXPECT_FALSE(EvaluateSeccompBpf({}, d).ok());  // runs off the end
  std::vector<sock_filter> p = {Stmt(BPF_LD | BPF_W | BPF_ABS, sizeof(seccomp_data)),
                                Stmt(BPF_RET | BPF_K, 0)};
  EXPECT_FALSE(EvaluateSeccompBpf(p, d).ok());  // load out of range
  p = {Stmt(BPF_LD | BPF_W | BPF_ABS, 2), Stmt(BPF_RET | BPF_K, 0)};
  EXPECT_FALSE(EvaluateSeccompBpf(p, d).ok());  // unaligned
  p = {Stmt(BPF_LD | BPF_H | BPF_ABS, 0), Stmt(BPF_RET | BPF_K, 0)};
  EXPECT_FALSE(EvaluateSeccompBpf(p, d).ok());  // not a word
  p = {Jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 5), Stmt(BPF_RET | BPF_K, 0)};
  EXPECT_FALSE(EvaluateSeccompBpf(p, d).ok());  // jump past the end
  p = {Stmt(BPF_ST, BPF_MEMWORDS), Stmt(BPF_RET | BPF_K, 0)};
  EXPECT_FALSE(EvaluateSeccompBpf(p, d).ok());  // scratch out of range
  p = {Stmt(BPF_RET | BPF_X, 0)};
  EXPECT_FALSE(EvaluateSeccompBpf(p, d).ok());  // RET X is not seccomp
}

}  // namespace
}  // namespace mesh::runtime::security::seccomp_testing
