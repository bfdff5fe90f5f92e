#include "runtime/security/process_security.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime::security {
namespace {

constexpr uint32_t kInvalidId = ~uint32_t{0};  // "unchanged" to setresuid: never an id
constexpr size_t kMaxGroups = 65536;           // NGROUPS_MAX

constexpr CapMask Bit(int cap) { return CapMask{1} << cap; }

std::string Names(CapMask mask) { return absl::StrJoin(CapabilityNames(mask), ", "); }

// InvalidArgument when `inner` (the set called `set`) is not within `outer`.
absl::Status CheckSubset(CapMask inner, CapMask outer, absl::string_view set,
                         absl::string_view why_and_fix) {
  if ((inner & ~outer) == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("capabilities: ", set, " holds ", Names(inner & ~outer), " ", why_and_fix));
}

absl::Status ValidateCapabilities(const CapabilityMasks& c, uint32_t uid) {
  MESH_RETURN_IF_ERROR(CheckSubset(c.effective, c.permitted, "effective",
                                   "outside permitted (effective may only hold permitted "
                                   "capabilities); add it to permitted or drop it"));
  MESH_RETURN_IF_ERROR(CheckSubset(c.permitted, c.bounding, "permitted",
                                   "outside bounding; add it to bounding or drop it"));
  MESH_RETURN_IF_ERROR(CheckSubset(c.inheritable, c.bounding, "inheritable",
                                   "outside bounding; add it to bounding or drop it"));
  MESH_RETURN_IF_ERROR(CheckSubset(
      c.ambient, c.permitted & c.inheritable, "ambient",
      "that is not both permitted and inheritable (the kernel raises an ambient capability "
      "only then); add it to both sets or drop it from ambient"));
  if (uid == 0) {
    // execve gives root permitted = effective = bounding | inheritable whatever was set
    // before (capabilities(7), "Capabilities and execution of programs by root").
    const CapMask after_exec = c.bounding | c.inheritable;
    if (c.permitted != after_exec || c.effective != after_exec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "capabilities for uid 0: permitted and effective must equal bounding (plus "
          "inheritable), because execve gives a root process every capability of those sets; "
          "as configured it would gain ",
          Names((after_exec & ~c.permitted) | (after_exec & ~c.effective)),
          ". Shrink bounding, or run as a non-root user with ambient capabilities"));
    }
  }
  return absl::OkStatus();
}

absl::Status RlimitError(int err, const ResolvedRlimit& r) {
  std::string what =
      absl::StrCat("set rlimit ", RlimitName(r.resource), " to soft ", r.soft, " hard ", r.hard);
  if (err == EPERM) {
    absl::StrAppend(&what,
                    " (raising a hard limit needs CAP_SYS_RESOURCE, which the runtime lacks)");
  }
  return mesh::ErrnoToStatus(err, what);
}

absl::Status CapError(int err, absl::string_view step, int cap) {
  return mesh::ErrnoToStatus(err, absl::StrCat(step, " ", CapabilityName(cap)));
}

}  // namespace

absl::StatusOr<PreparedSecurity> Prepare(const Process& process, SeccompProfile seccomp,
                                         bool privileged, const RuntimeCapabilities& runtime) {
  PreparedSecurity out;
  const User& user = process.user;
  if (user.uid == kInvalidId || user.gid == kInvalidId) {
    return absl::InvalidArgumentError(
        absl::StrCat("user: uid ", user.uid, " / gid ", user.gid,
                     ": 4294967295 is not a usable id (it means \"unchanged\" to the kernel)"));
  }
  if (user.additional_gids.size() > kMaxGroups) {
    return absl::InvalidArgumentError(absl::StrCat("user: ", user.additional_gids.size(),
                                                   " additional gids; the kernel takes at most ",
                                                   kMaxGroups));
  }
  for (uint32_t g : user.additional_gids) {
    if (g == kInvalidId) {
      return absl::InvalidArgumentError("user: additional gid 4294967295 is not a usable id");
    }
  }
  out.uid_ = user.uid;
  out.gid_ = user.gid;
  out.groups_.assign(user.additional_gids.begin(), user.additional_gids.end());

  const CapMask known = runtime.last_cap >= 63 ? ~CapMask{0} : Bit(runtime.last_cap + 1) - 1;
  const CapMask available = runtime.bounding & runtime.permitted & known;
  out.last_cap_ = runtime.last_cap;
  if (privileged) {
    out.caps_.bounding = out.caps_.permitted = out.caps_.effective = available;
  } else if (!process.capabilities) {
    // Choosing the defaults is WithDefaults' job alone; guessing here would run a process
    // with capabilities nobody asked for.
    return absl::InvalidArgumentError(
        "capabilities: process.capabilities is unset; fill in the defaults with WithDefaults "
        "(runtime/spec/defaults.h) or give the sets (all five empty for no capability)");
  } else {
    MESH_ASSIGN_OR_RETURN(out.caps_, ToMasks(*process.capabilities));
    MESH_RETURN_IF_ERROR(ValidateCapabilities(out.caps_, user.uid));
    const CapMask wanted = out.caps_.bounding | out.caps_.permitted | out.caps_.effective |
                           out.caps_.inheritable | out.caps_.ambient;
    if (wanted & ~available) {
      return absl::FailedPreconditionError(absl::StrCat(
          "capabilities: the runtime itself does not hold ", Names(wanted & ~available),
          " (not in its bounding and permitted sets, or unknown to the running kernel), so no "
          "container can get them; drop them from the spec"));
    }
  }

  MESH_ASSIGN_OR_RETURN(out.rlimits_, ResolveRlimits(process.rlimits));
  MESH_RETURN_IF_ERROR(
      CheckRlimitsAllowed(out.rlimits_, (runtime.effective & Bit(CAP_SYS_RESOURCE)) != 0));

  out.no_new_privs_ = process.no_new_privileges;
  if (!privileged && seccomp == SeccompProfile::kDefault) {
    MESH_ASSIGN_OR_RETURN(SeccompProgram program,
                          CompileSeccompPolicy(DefaultSeccompPolicy(out.caps_.bounding)));
    out.seccomp_ = std::move(program);
  }
  return out;
}

absl::StatusOr<PreparedSecurity> Prepare(const Process& process, SeccompProfile seccomp,
                                         bool privileged) {
  MESH_ASSIGN_OR_RETURN(RuntimeCapabilities runtime, ReadRuntimeCapabilities());
  return Prepare(process, seccomp, privileged, runtime);
}

absl::Status PreparedSecurity::LoadSeccomp() const {
  sock_fprog prog = seccomp_->fprog();
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    int err = errno;
    return mesh::ErrnoToStatus(err, err == EACCES
                                        ? "load the seccomp filter (it needs no_new_privs "
                                          "or CAP_SYS_ADMIN)"
                                        : "load the seccomp filter");
  }
  return absl::OkStatus();
}

absl::Status PreparedSecurity::ApplyInChild() const {
  // 1. rlimits. Lowering is always allowed; Prepare refused raising without CAP_SYS_RESOURCE.
  for (const ResolvedRlimit& r : rlimits_) {
    const rlimit value{r.soft, r.hard};
    if (::setrlimit(static_cast<__rlimit_resource>(r.resource), &value) != 0) {
      return RlimitError(errno, r);
    }
  }

  // 2. Without no_new_privs the filter must go in while CAP_SYS_ADMIN is still held.
  if (seccomp_ && !no_new_privs_) MESH_RETURN_IF_ERROR(LoadSeccomp());

  // 3. Bounding set (needs CAP_SETPCAP, still held).
  for (int cap = 0; cap <= last_cap_; ++cap) {
    if ((caps_.bounding & Bit(cap)) == 0 && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return CapError(errno, "drop from the bounding set", cap);
    }
  }

  // 4. Groups and ids. The raw syscalls: glibc's wrappers would try to change every thread
  // (there is only this one), and these are async-signal-safe.
  const bool leave_root = uid_ != 0;
  if (leave_root && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    return mesh::ErrnoToStatus(errno, "set PR_SET_KEEPCAPS");
  }
  if (::syscall(SYS_setgroups, groups_.size(), groups_.data()) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("set ", groups_.size(), " additional groups"));
  }
  if (::syscall(SYS_setresgid, gid_, gid_, gid_) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("set gid ", gid_));
  }
  if (::syscall(SYS_setresuid, uid_, uid_, uid_) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("set uid ", uid_));
  }
  if (leave_root && ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
    return mesh::ErrnoToStatus(errno, "clear PR_SET_KEEPCAPS");
  }

  // 5. The three capset sets. Leaving uid 0 cleared effective (and ambient); KEEPCAPS kept
  // permitted, so each set here is within what the process holds.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    data[i].effective = static_cast<uint32_t>(caps_.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(caps_.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(caps_.inheritable >> (32 * i));
  }
  if (::syscall(SYS_capset, &header, data) != 0) {
    return mesh::ErrnoToStatus(
        errno, absl::StrCat("set capabilities (effective ", FormatCapMask(caps_.effective),
                            ", permitted ", FormatCapMask(caps_.permitted), ", inheritable ",
                            FormatCapMask(caps_.inheritable), ")"));
  }

  // 6. Ambient: what a non-root process keeps across execve.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return mesh::ErrnoToStatus(errno, "clear the ambient capabilities");
  }
  for (int cap = 0; cap <= last_cap_; ++cap) {
    if ((caps_.ambient & Bit(cap)) != 0 &&
        ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
      return CapError(errno, "raise ambient capability", cap);
    }
  }

  // 7. no_new_privs: setuid bits and file capabilities stop granting anything.
  if (no_new_privs_ && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return mesh::ErrnoToStatus(errno, "set no_new_privs");
  }

  // 8. Last: after this only syscalls the profile allows run, execve among them.
  if (seccomp_ && no_new_privs_) MESH_RETURN_IF_ERROR(LoadSeccomp());
  return absl::OkStatus();
}

absl::Status CloseFdsExcept0to2(absl::Span<const int> keep_until_exec) {
  unsigned from = 3;
  for (;;) {
    // The smallest kept fd at or above `from` (no sorting: nothing may be allocated here).
    int next = -1;
    for (int fd : keep_until_exec) {
      if (fd >= static_cast<int>(from) && (next < 0 || fd < next)) next = fd;
    }
    if (next < 0) break;
    if (static_cast<unsigned>(next) > from &&
        ::close_range(from, static_cast<unsigned>(next) - 1, 0) != 0) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("close fds ", from, "-", next - 1));
    }
    int flags = ::fcntl(next, F_GETFD);
    if (flags < 0 || ::fcntl(next, F_SETFD, flags | FD_CLOEXEC) != 0) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("set close-on-exec on kept fd ", next));
    }
    from = static_cast<unsigned>(next) + 1;
  }
  if (::close_range(from, ~0U, 0) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("close fds from ", from));
  }
  return absl::OkStatus();
}

absl::Status SetCloseOnExecFrom3() {
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    return mesh::ErrnoToStatus(errno, "mark fds from 3 close-on-exec");
  }
  return absl::OkStatus();
}

absl::Status MakeNonDumpable() {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return mesh::ErrnoToStatus(errno, "make the process non-dumpable");
  }
  return absl::OkStatus();
}

}  // namespace mesh::runtime::security
