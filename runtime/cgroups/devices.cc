#include "runtime/cgroups/devices.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace mesh::runtime {
namespace {

// BPF_DEVCG_ACC_* bits of an access string ("rw" -> READ | WRITE).
uint32_t AccessBits(absl::string_view access) {
  uint32_t bits = 0;
  for (char c : access) {
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
  }
  return bits;
}

constexpr uint32_t kAllAccess = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

// The problem with the letters of `access`, or "" if they are fine.
std::string AccessProblem(absl::string_view access) {
  if (access.empty()) return "access is empty";
  static constexpr char kLetters[] = "rwm";
  bool seen[3] = {false, false, false};
  for (char c : access) {
    const char* pos = c == '\0' ? nullptr : std::strchr(kLetters, c);
    if (pos == nullptr) {
      return absl::StrCat("access \"", access, "\" has '", std::string(1, c),
                          "', which is not r, w or m");
    }
    bool& s = seen[pos - kLetters];
    if (s) return absl::StrCat("access \"", access, "\" has '", std::string(1, c), "' twice");
    s = true;
  }
  return "";
}

// The instructions, named as in the kernel's filter.h macros.
bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}
// dst = *(u32 *)(src + off)
bpf_insn LdxMemW(uint8_t dst, uint8_t src, int16_t off) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
}
// 32-bit ALU with an immediate: dst op= imm (upper half zeroed)
bpf_insn Alu32Imm(uint8_t op, uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
// 32-bit dst = src
bpf_insn Mov32Reg(uint8_t dst, uint8_t src) {
  return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}
// 64-bit dst = imm
bpf_insn Mov64Imm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
// if (dst op imm) goto pc + 1 + off
bpf_insn JmpImm(uint8_t op, uint8_t dst, int32_t imm, int16_t off) {
  return Insn(BPF_JMP | op | BPF_K, dst, 0, off, imm);
}
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// Registers of the program: the context's fields, unpacked once.
constexpr uint8_t kR0 = BPF_REG_0, kCtx = BPF_REG_1, kScratch = BPF_REG_1, kType = BPF_REG_2,
                  kAccess = BPF_REG_3, kMajor = BPF_REG_4, kMinor = BPF_REG_5;

long Bpf(int cmd, bpf_attr* attr) { return syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

}  // namespace

absl::Status ValidateDeviceRules(const std::vector<DeviceRule>& rules) {
  std::vector<std::string> problems;
  for (size_t i = 0; i < rules.size(); ++i) {
    const DeviceRule& r = rules[i];
    auto bad = [&](absl::string_view why) {
      problems.push_back(absl::StrCat("devices[", i, "] (", r.allow ? "allow" : "deny", " ",
                                      std::string(1, r.type == '\0' ? '?' : r.type), "): ", why));
    };
    if (r.type != 'a' && r.type != 'c' && r.type != 'b') {
      bad("type must be 'a' (every device), 'c' (character) or 'b' (block)");
      continue;
    }
    if (std::string access = AccessProblem(r.access); !access.empty()) {
      bad(absl::StrCat(access, "; use a combination of r (read), w (write) and m (mknod)"));
    }
    if (i == 0) {
      if (r.type != 'a') {
        bad("the first rule must be for every device (type 'a', no major or minor) and sets "
            "the default: deny (then allow exceptions follow) or allow (then deny exceptions "
            "follow)");
        continue;
      }
    } else if (r.type == 'a') {
      bad("only the first rule may be for every device (type 'a'); a later one would discard "
          "the rules before it");
      continue;
    } else if (!rules.empty() && rules[0].type == 'a' && r.allow == rules[0].allow) {
      bad(absl::StrCat(r.allow ? "an allow" : "a deny", " exception after a default that ",
                       r.allow ? "allows" : "denies",
                       " every device changes nothing; exceptions must be of the other kind"));
    }
    if (r.type == 'a') {
      if (r.major || r.minor) bad("a rule for every device (type 'a') takes no major or minor");
      if (r.access.size() != 3 || AccessBits(r.access) != kAllAccess) {
        bad("a rule for every device (type 'a') must have access \"rwm\"");
      }
      continue;
    }
    if (r.major && (*r.major < 0 || *r.major > kMaxDeviceMajor)) {
      bad(absl::StrCat("major ", *r.major, " is out of range: 0 to ", kMaxDeviceMajor,
                       ", or unset for any"));
    }
    if (r.minor && (*r.minor < 0 || *r.minor > kMaxDeviceMinor)) {
      bad(absl::StrCat("minor ", *r.minor, " is out of range: 0 to ", kMaxDeviceMinor,
                       ", or unset for any"));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid device rules: ", absl::StrJoin(problems, "; ")));
}

std::string DeviceRuleLine(const DeviceRule& rule) {
  if (rule.type == 'a') return "a";
  auto number = [](const std::optional<int64_t>& n) {
    return n ? absl::StrCat(*n) : std::string("*");
  };
  return absl::StrCat(std::string(1, rule.type), " ", number(rule.major), ":", number(rule.minor),
                      " ", rule.access);
}

bool DeviceAccessAllowed(const std::vector<DeviceRule>& rules, char type, uint32_t major,
                         uint32_t minor, absl::string_view access) {
  if (rules.empty()) return true;  // nothing applied: the kernel's default
  const uint32_t want = AccessBits(access);
  for (size_t i = 1; i < rules.size(); ++i) {
    const DeviceRule& r = rules[i];
    if (r.type != type) continue;
    if (r.major && static_cast<uint32_t>(*r.major) != major) continue;
    if (r.minor && static_cast<uint32_t>(*r.minor) != minor) continue;
    const uint32_t has = AccessBits(r.access);
    // Allow exceptions must cover the whole access, deny exceptions need only touch it.
    const bool match = r.allow ? (want & ~has) == 0 : (want & has) != 0;
    if (match) return r.allow;
  }
  return rules[0].allow;
}

std::vector<bpf_insn> DeviceProgram(const std::vector<DeviceRule>& rules) {
  // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, with access_type =
  // (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*.
  std::vector<bpf_insn> program = {
      LdxMemW(kType, kCtx, offsetof(bpf_cgroup_dev_ctx, access_type)),
      Alu32Imm(BPF_AND, kType, 0xffff),
      LdxMemW(kAccess, kCtx, offsetof(bpf_cgroup_dev_ctx, access_type)),
      Alu32Imm(BPF_RSH, kAccess, 16),
      LdxMemW(kMajor, kCtx, offsetof(bpf_cgroup_dev_ctx, major)),
      LdxMemW(kMinor, kCtx, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  // One block per exception, in order: each test jumps to the next block when the rule does
  // not match; a block that runs to its end returns the rule's verdict.
  for (size_t i = 1; i < rules.size(); ++i) {
    const DeviceRule& r = rules[i];
    std::vector<bpf_insn> block;
    std::vector<size_t> jumps;  // indexes in `block` whose offset leads to the block's end
    auto jump_next = [&](bpf_insn insn) {
      jumps.push_back(block.size());
      block.push_back(insn);
    };
    jump_next(JmpImm(BPF_JNE, kType, r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0));
    const uint32_t has = AccessBits(r.access);
    if (r.allow) {
      // Matches if the access asks for nothing the rule lacks.
      if ((~has & kAllAccess) != 0) {
        block.push_back(Mov32Reg(kScratch, kAccess));
        block.push_back(Alu32Imm(BPF_AND, kScratch, static_cast<int32_t>(~has & kAllAccess)));
        jump_next(JmpImm(BPF_JNE, kScratch, 0, 0));
      }
    } else {
      // Matches if the access asks for anything the rule names.
      block.push_back(Mov32Reg(kScratch, kAccess));
      block.push_back(Alu32Imm(BPF_AND, kScratch, static_cast<int32_t>(has)));
      jump_next(JmpImm(BPF_JEQ, kScratch, 0, 0));
    }
    if (r.major) jump_next(JmpImm(BPF_JNE, kMajor, static_cast<int32_t>(*r.major), 0));
    if (r.minor) jump_next(JmpImm(BPF_JNE, kMinor, static_cast<int32_t>(*r.minor), 0));
    block.push_back(Mov64Imm(kR0, r.allow ? 1 : 0));
    block.push_back(Exit());
    for (size_t j : jumps) block[j].off = static_cast<int16_t>(block.size() - (j + 1));
    program.insert(program.end(), block.begin(), block.end());
  }
  program.push_back(Mov64Imm(kR0, !rules.empty() && !rules[0].allow ? 0 : 1));
  program.push_back(Exit());
  return program;
}

absl::Status ReplaceDeviceProgram(int cgroup_fd, const std::vector<bpf_insn>& program,
                                  absl::string_view what) {
  // The programs attached before, detached once the new one is in place.
  uint32_t ids[64] = {};
  bpf_attr query{};
  query.query.target_fd = static_cast<uint32_t>(cgroup_fd);
  query.query.attach_type = BPF_CGROUP_DEVICE;
  query.query.prog_ids = reinterpret_cast<uint64_t>(ids);
  query.query.prog_cnt = sizeof(ids) / sizeof(ids[0]);
  if (Bpf(BPF_PROG_QUERY, &query) != 0) {
    return mesh::ErrnoToStatus(errno,
                               absl::StrCat(what,
                                            ": list the device programs attached to the cgroup "
                                            "(bpf BPF_PROG_QUERY; needs CONFIG_CGROUP_BPF)"));
  }
  const uint32_t old_count = query.query.prog_cnt;

  // Cgroup device programs need no GPL-only helper, so any license will do.
  static constexpr char kLicense[] = "Apache-2.0";
  auto load = [&](char* log, uint32_t log_size) {
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = reinterpret_cast<uint64_t>(program.data());
    attr.insn_cnt = static_cast<uint32_t>(program.size());
    attr.license = reinterpret_cast<uint64_t>(kLicense);
    attr.log_buf = reinterpret_cast<uint64_t>(log);
    attr.log_size = log_size;
    attr.log_level = log != nullptr ? 1 : 0;
    std::strncpy(attr.prog_name, "mesh_devices", sizeof(attr.prog_name) - 1);
    // Every bpf(2) fd is close-on-exec.
    return UniqueFd(static_cast<int>(Bpf(BPF_PROG_LOAD, &attr)));
  };
  UniqueFd prog = load(nullptr, 0);
  if (!prog.valid()) {
    const int load_errno = errno;
    // Again with the verifier's log, which says which instruction it refused and why.
    std::string log(1 << 16, '\0');
    UniqueFd again = load(log.data(), static_cast<uint32_t>(log.size()));
    log.resize(std::strlen(log.c_str()));
    while (!log.empty() && log.back() == '\n') log.pop_back();
    if (log.size() > 2000) log = absl::StrCat("...", log.substr(log.size() - 2000));
    return mesh::ErrnoToStatus(
        load_errno, absl::StrCat(what, ": load the device program (bpf BPF_PROG_LOAD, ",
                                 program.size(), " instructions; needs CAP_BPF or CAP_SYS_ADMIN)",
                                 log.empty() ? "" : absl::StrCat("; verifier: ", log)));
  }

  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup_fd);
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &attach) != 0) {
    return mesh::ErrnoToStatus(
        errno, absl::StrCat(what,
                            ": attach the device program to the cgroup (bpf "
                            "BPF_PROG_ATTACH, BPF_F_ALLOW_MULTI; EPERM if another program "
                            "is attached there without BPF_F_ALLOW_MULTI)"));
  }
  // The kernel holds the attached program; our fd may go. Every attached program must allow
  // an access, so an old one left behind could only deny more: still report it.
  std::vector<std::string> errors;
  for (uint32_t i = 0; i < old_count; ++i) {
    bpf_attr get{};
    get.prog_id = ids[i];
    UniqueFd old(static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &get)));
    if (!old.valid()) {
      if (errno != ENOENT)
        errors.push_back(absl::StrCat("program ", ids[i], ": ", strerror(errno)));
      continue;
    }
    bpf_attr detach{};
    detach.target_fd = static_cast<uint32_t>(cgroup_fd);
    detach.attach_bpf_fd = static_cast<uint32_t>(old.get());
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &detach) != 0 && errno != ENOENT) {
      errors.push_back(absl::StrCat("program ", ids[i], ": ", strerror(errno)));
    }
  }
  if (!errors.empty()) {
    return absl::InternalError(absl::StrCat(
        what, ": the new device program is attached, but detaching the old ones failed (",
        absl::StrJoin(errors, "; "), "); they stay attached and may deny more than asked"));
  }
  return absl::OkStatus();
}

}  // namespace mesh::runtime
