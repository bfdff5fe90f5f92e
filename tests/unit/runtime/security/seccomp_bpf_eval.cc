#include "tests/unit/runtime/security/seccomp_bpf_eval.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace mesh::runtime::security::seccomp_testing {

absl::StatusOr<uint32_t> EvaluateSeccompBpf(absl::Span<const sock_filter> program,
                                            const seccomp_data& data) {
  uint32_t a = 0, x = 0;
  uint32_t mem[BPF_MEMWORDS] = {};
  auto bad = [](size_t pc, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bpf instruction ", pc, ": ", why));
  };
  size_t pc = 0;
  while (pc < program.size()) {
    const sock_filter& in = program[pc];
    const uint32_t k = in.k;
    size_t next = pc + 1;
    switch (BPF_CLASS(in.code)) {
      case BPF_LD:
      case BPF_LDX: {
        uint32_t value = 0;
        const uint16_t mode = BPF_MODE(in.code);
        if (mode == BPF_ABS) {
          if (BPF_CLASS(in.code) != BPF_LD || BPF_SIZE(in.code) != BPF_W) {
            return bad(pc, "seccomp loads only 32-bit words into A");
          }
          if (k % 4 != 0 || k + 4 > sizeof(seccomp_data)) return bad(pc, "load out of range");
          std::memcpy(&value, reinterpret_cast<const char*>(&data) + k, 4);
        } else if (mode == BPF_LEN) {
          value = sizeof(seccomp_data);
        } else if (mode == BPF_IMM) {
          value = k;
        } else if (mode == BPF_MEM) {
          if (k >= BPF_MEMWORDS) return bad(pc, "scratch memory index out of range");
          value = mem[k];
        } else {
          return bad(pc, "unsupported load mode");
        }
        (BPF_CLASS(in.code) == BPF_LD ? a : x) = value;
        break;
      }
      case BPF_ST:
      case BPF_STX:
        if (k >= BPF_MEMWORDS) return bad(pc, "scratch memory index out of range");
        mem[k] = BPF_CLASS(in.code) == BPF_ST ? a : x;
        break;
      case BPF_ALU: {
        const uint32_t operand = BPF_SRC(in.code) == BPF_X ? x : k;
        switch (BPF_OP(in.code)) {
          case BPF_ADD:
            a += operand;
            break;
          case BPF_SUB:
            a -= operand;
            break;
          case BPF_MUL:
            a *= operand;
            break;
          case BPF_DIV:
            if (operand == 0) return uint32_t{0};  // classic BPF: the program returns 0
            a /= operand;
            break;
          case BPF_MOD:
            if (operand == 0) return uint32_t{0};
            a %= operand;
            break;
          case BPF_OR:
            a |= operand;
            break;
          case BPF_AND:
            a &= operand;
            break;
          case BPF_XOR:
            a ^= operand;
            break;
          case BPF_LSH:
            a = operand >= 32 ? 0 : a << operand;
            break;
          case BPF_RSH:
            a = operand >= 32 ? 0 : a >> operand;
            break;
          case BPF_NEG:
            a = 0 - a;
            break;
          default:
            return bad(pc, "unknown alu operation");
        }
        break;
      }
      case BPF_JMP: {
        if (BPF_OP(in.code) == BPF_JA) {
          next = pc + 1 + k;
        } else {
          const uint32_t operand = BPF_SRC(in.code) == BPF_X ? x : k;
          bool taken;
          switch (BPF_OP(in.code)) {
            case BPF_JEQ:
              taken = a == operand;
              break;
            case BPF_JGT:
              taken = a > operand;
              break;
            case BPF_JGE:
              taken = a >= operand;
              break;
            case BPF_JSET:
              taken = (a & operand) != 0;
              break;
            default:
              return bad(pc, "unknown jump");
          }
          next = pc + 1 + (taken ? in.jt : in.jf);
        }
        if (next >= program.size()) return bad(pc, "jump past the end");
        break;
      }
      case BPF_RET:
        if (BPF_RVAL(in.code) == BPF_K) return k;
        if (BPF_RVAL(in.code) == BPF_A) return a;
        return bad(pc, "seccomp returns only K or A");
      case BPF_MISC:
        if (BPF_MISCOP(in.code) == BPF_TAX) {
          x = a;
        } else if (BPF_MISCOP(in.code) == BPF_TXA) {
          a = x;
        } else {
          return bad(pc, "unknown misc operation");
        }
        break;
      default:
        return bad(pc, "unknown instruction class");
    }
    pc = next;
  }
  return absl::InvalidArgumentError("bpf program runs off its end without returning");
}

seccomp_data SyscallData(int nr, std::array<uint64_t, 6> args, uint32_t arch) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = arch;
  for (size_t i = 0; i < 6; ++i) d.args[i] = args[i];
  return d;
}

Verdict Classify(uint32_t action) {
  const uint32_t kind = action & SECCOMP_RET_ACTION_FULL;
  if (kind == SECCOMP_RET_ALLOW) return Verdict::kAllow;
  if (kind == SECCOMP_RET_KILL_PROCESS) return Verdict::kKillProcess;
  if (kind == SECCOMP_RET_ERRNO) {
    const uint32_t err = action & SECCOMP_RET_DATA;
    if (err == EPERM) return Verdict::kEperm;
    if (err == ENOSYS) return Verdict::kEnosys;
  }
  return Verdict::kOther;
}

std::string VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kAllow:
      return "allow";
    case Verdict::kEperm:
      return "eperm";
    case Verdict::kEnosys:
      return "enosys";
    case Verdict::kKillProcess:
      return "kill";
    case Verdict::kOther:
      break;
  }
  return "other";
}

}  // namespace mesh::runtime::security::seccomp_testing
