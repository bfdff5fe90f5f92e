#pragma once

// A tiny interpreter for the cgroup device programs of runtime/cgroups/devices.h, so that unit
// tests can check what a program decides without a kernel.

#include <linux/bpf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace mesh::runtime {

// Runs a cgroup device program on one access, with the eBPF subset DeviceProgram emits. Refuses
// what the verifier would: an unknown opcode, a backward or out-of-range jump, a context read
// through a register that no longer holds the context or at an offset outside
// bpf_cgroup_dev_ctx, a register read before it is written, falling off the end.
inline absl::StatusOr<uint64_t> RunDeviceProgram(const std::vector<bpf_insn>& program,
                                                 const bpf_cgroup_dev_ctx& ctx) {
  uint64_t reg[11] = {};
  bool written[11] = {};
  written[BPF_REG_1] = true;
  bool r1_is_ctx = true;
  auto use = [&](int r) { return r >= 0 && r <= 10 && written[r]; };
  for (size_t pc = 0; pc < program.size();) {
    const bpf_insn& i = program[pc];
    const std::string at = absl::StrCat("instruction ", pc, ": ");
    ++pc;
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W: {
        if (i.src_reg != BPF_REG_1 || !r1_is_ctx) {
          return absl::InvalidArgumentError(at + "load not from the context");
        }
        if (i.off < 0 || i.off % 4 != 0 || i.off + 4 > static_cast<int>(sizeof(ctx))) {
          return absl::InvalidArgumentError(at + "context offset out of range");
        }
        uint32_t value = 0;
        std::memcpy(&value, reinterpret_cast<const char*>(&ctx) + i.off, 4);
        reg[i.dst_reg] = value;
        break;
      }
      case BPF_ALU | BPF_AND | BPF_K:
      case BPF_ALU | BPF_RSH | BPF_K:
        if (!use(i.dst_reg)) return absl::InvalidArgumentError(at + "register not written");
        reg[i.dst_reg] = (i.code & 0xf0) == BPF_AND
                             ? static_cast<uint32_t>(reg[i.dst_reg]) & static_cast<uint32_t>(i.imm)
                             : static_cast<uint32_t>(reg[i.dst_reg]) >> i.imm;
        break;
      case BPF_ALU | BPF_MOV | BPF_X:
        if (!use(i.src_reg)) return absl::InvalidArgumentError(at + "register not written");
        reg[i.dst_reg] = static_cast<uint32_t>(reg[i.src_reg]);
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        reg[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
      case BPF_JMP | BPF_JEQ | BPF_K: {
        if (!use(i.dst_reg)) return absl::InvalidArgumentError(at + "register not written");
        if (i.off < 0 || pc + i.off >= program.size()) {
          return absl::InvalidArgumentError(at + "jump backwards or out of the program");
        }
        const bool equal = reg[i.dst_reg] == static_cast<uint64_t>(static_cast<int64_t>(i.imm));
        if (equal == ((i.code & 0xf0) == BPF_JEQ)) pc += i.off;
        continue;
      }
      case BPF_JMP | BPF_EXIT:
        if (!written[BPF_REG_0]) return absl::InvalidArgumentError(at + "r0 not written");
        return reg[BPF_REG_0];
      default:
        return absl::InvalidArgumentError(absl::StrCat(at, "unknown opcode ", i.code));
    }
    if ((i.code & 0x07) != BPF_JMP) {
      written[i.dst_reg] = true;
      if (i.dst_reg == BPF_REG_1) r1_is_ctx = false;  // any write replaces the context pointer
    }
  }
  return absl::InvalidArgumentError("fell off the end of the program");
}

inline uint32_t AccessBitsOf(absl::string_view access) {
  uint32_t bits = 0;
  for (char c : access) {
    bits |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  }
  return bits;
}

// The program's verdict for one access (1 allow, 0 deny); -1 with a test failure if it broke.
inline int Verdict(const std::vector<bpf_insn>& program, char type, uint32_t major, uint32_t minor,
                   absl::string_view access) {
  bpf_cgroup_dev_ctx ctx{};
  ctx.access_type =
      (AccessBitsOf(access) << 16) | (type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
  ctx.major = major;
  ctx.minor = minor;
  absl::StatusOr<uint64_t> r0 = RunDeviceProgram(program, ctx);
  EXPECT_TRUE(r0.ok()) << r0.status();
  return r0.ok() ? static_cast<int>(*r0) : -1;
}

}  // namespace mesh::runtime
