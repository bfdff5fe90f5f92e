#include "runtime/security/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime::security {
namespace {

struct CapName {
  int number;
  const char* name;
};

#define MESH_CAP(c) \
  CapName { c, #c }
// Every capability of linux/capability.h, in number order (checked below).
constexpr CapName kCapabilities[] = {
    MESH_CAP(CAP_CHOWN),
    MESH_CAP(CAP_DAC_OVERRIDE),
    MESH_CAP(CAP_DAC_READ_SEARCH),
    MESH_CAP(CAP_FOWNER),
    MESH_CAP(CAP_FSETID),
    MESH_CAP(CAP_KILL),
    MESH_CAP(CAP_SETGID),
    MESH_CAP(CAP_SETUID),
    MESH_CAP(CAP_SETPCAP),
    MESH_CAP(CAP_LINUX_IMMUTABLE),
    MESH_CAP(CAP_NET_BIND_SERVICE),
    MESH_CAP(CAP_NET_BROADCAST),
    MESH_CAP(CAP_NET_ADMIN),
    MESH_CAP(CAP_NET_RAW),
    MESH_CAP(CAP_IPC_LOCK),
    MESH_CAP(CAP_IPC_OWNER),
    MESH_CAP(CAP_SYS_MODULE),
    MESH_CAP(CAP_SYS_RAWIO),
    MESH_CAP(CAP_SYS_CHROOT),
    MESH_CAP(CAP_SYS_PTRACE),
    MESH_CAP(CAP_SYS_PACCT),
    MESH_CAP(CAP_SYS_ADMIN),
    MESH_CAP(CAP_SYS_BOOT),
    MESH_CAP(CAP_SYS_NICE),
    MESH_CAP(CAP_SYS_RESOURCE),
    MESH_CAP(CAP_SYS_TIME),
    MESH_CAP(CAP_SYS_TTY_CONFIG),
    MESH_CAP(CAP_MKNOD),
    MESH_CAP(CAP_LEASE),
    MESH_CAP(CAP_AUDIT_WRITE),
    MESH_CAP(CAP_AUDIT_CONTROL),
    MESH_CAP(CAP_SETFCAP),
    MESH_CAP(CAP_MAC_OVERRIDE),
    MESH_CAP(CAP_MAC_ADMIN),
    MESH_CAP(CAP_SYSLOG),
    MESH_CAP(CAP_WAKE_ALARM),
    MESH_CAP(CAP_BLOCK_SUSPEND),
    MESH_CAP(CAP_AUDIT_READ),
    MESH_CAP(CAP_PERFMON),
    MESH_CAP(CAP_BPF),
    MESH_CAP(CAP_CHECKPOINT_RESTORE),
};
#undef MESH_CAP

constexpr bool TableIsComplete() {
  if (std::size(kCapabilities) != CAP_LAST_CAP + 1) return false;
  for (int i = 0; i <= CAP_LAST_CAP; ++i) {
    if (kCapabilities[i].number != i) return false;
  }
  return true;
}
static_assert(TableIsComplete(),
              "kCapabilities must list every capability of linux/capability.h in order");
static_assert(CAP_LAST_CAP < 64, "capability masks are 64 bits");

constexpr CapMask Bit(int cap) { return CapMask{1} << cap; }

bool IsAll(absl::string_view name) { return absl::EqualsIgnoreCase(name, "ALL"); }

// Parses a list, "ALL" excluded; `what` names the list in errors ("cap_add").
absl::StatusOr<CapMask> ParseList(const std::vector<std::string>& names, absl::string_view what,
                                  bool* has_all) {
  CapMask mask = 0;
  *has_all = false;
  for (const std::string& name : names) {
    if (IsAll(name)) {
      *has_all = true;
      continue;
    }
    absl::StatusOr<int> cap = ParseCapability(name);
    if (!cap.ok()) return mesh::Annotate(cap.status(), what);
    mask |= Bit(*cap);
  }
  return mask;
}

}  // namespace

int LastKnownCapability() { return CAP_LAST_CAP; }

CapMask AllCapabilities() { return CAP_LAST_CAP == 63 ? ~CapMask{0} : Bit(CAP_LAST_CAP + 1) - 1; }

absl::StatusOr<int> ParseCapability(absl::string_view name) {
  absl::string_view bare = name;
  if (bare.size() >= 4 && absl::EqualsIgnoreCase(bare.substr(0, 4), "CAP_")) bare.remove_prefix(4);
  if (!bare.empty()) {
    for (const CapName& c : kCapabilities) {
      if (absl::EqualsIgnoreCase(absl::string_view(c.name).substr(4), bare)) return c.number;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown capability \"", absl::CHexEscape(name),
                   "\": use a name of capabilities(7) such as \"CAP_NET_ADMIN\" or \"net_admin\""));
}

absl::string_view CapabilityName(int cap) {
  if (cap < 0 || cap > CAP_LAST_CAP) return "";
  return kCapabilities[cap].name;
}

absl::StatusOr<CapMask> CapabilityMask(const std::vector<std::string>& names,
                                       absl::string_view set) {
  CapMask mask = 0;
  for (const std::string& name : names) {
    absl::StatusOr<int> cap = ParseCapability(name);
    if (!cap.ok()) {
      return set.empty()
                 ? cap.status()
                 : mesh::Annotate(cap.status(), absl::StrCat("capability set \"", set, "\""));
    }
    mask |= Bit(*cap);
  }
  return mask;
}

std::vector<std::string> CapabilityNames(CapMask mask) {
  std::vector<std::string> names;
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (mask & Bit(cap)) names.emplace_back(kCapabilities[cap].name);
  }
  return names;
}

std::string FormatCapMask(CapMask mask) { return absl::StrFormat("%016x", mask); }

absl::StatusOr<CapabilityMasks> ToMasks(const CapabilitySets& sets) {
  CapabilityMasks m;
  MESH_ASSIGN_OR_RETURN(m.bounding, CapabilityMask(sets.bounding, "bounding"));
  MESH_ASSIGN_OR_RETURN(m.effective, CapabilityMask(sets.effective, "effective"));
  MESH_ASSIGN_OR_RETURN(m.inheritable, CapabilityMask(sets.inheritable, "inheritable"));
  MESH_ASSIGN_OR_RETURN(m.permitted, CapabilityMask(sets.permitted, "permitted"));
  MESH_ASSIGN_OR_RETURN(m.ambient, CapabilityMask(sets.ambient, "ambient"));
  return m;
}

CapabilitySets ToSets(const CapabilityMasks& masks) {
  CapabilitySets sets;
  sets.bounding = CapabilityNames(masks.bounding);
  sets.effective = CapabilityNames(masks.effective);
  sets.inheritable = CapabilityNames(masks.inheritable);
  sets.permitted = CapabilityNames(masks.permitted);
  sets.ambient = CapabilityNames(masks.ambient);
  return sets;
}

absl::StatusOr<std::vector<std::string>> ApplyCapabilityChanges(
    const std::vector<std::string>& base, const std::vector<std::string>& cap_add,
    const std::vector<std::string>& cap_drop) {
  bool base_all = false, add_all = false, drop_all = false;
  MESH_ASSIGN_OR_RETURN(CapMask base_mask, ParseList(base, "base capabilities", &base_all));
  MESH_ASSIGN_OR_RETURN(CapMask add, ParseList(cap_add, "cap_add", &add_all));
  MESH_ASSIGN_OR_RETURN(CapMask drop, ParseList(cap_drop, "cap_drop", &drop_all));
  if (base_all) base_mask = AllCapabilities();
  CapMask result;
  if (add_all) {
    result = AllCapabilities() & ~drop;
  } else if (drop_all) {
    result = add;
  } else {
    result = (base_mask & ~drop) | add;
  }
  return CapabilityNames(result);
}

absl::StatusOr<CapabilitySets> ContainerCapabilities(const std::vector<std::string>& base,
                                                     const std::vector<std::string>& cap_add,
                                                     const std::vector<std::string>& cap_drop) {
  MESH_ASSIGN_OR_RETURN(std::vector<std::string> caps,
                        ApplyCapabilityChanges(base, cap_add, cap_drop));
  CapabilitySets sets;
  sets.bounding = caps;
  sets.permitted = caps;
  sets.effective = std::move(caps);
  return sets;
}

absl::StatusOr<RuntimeCapabilities> ReadRuntimeCapabilities() {
  RuntimeCapabilities rc;
  rc.last_cap = CAP_LAST_CAP;
  // Older kernels (before 3.2) lack the file; then the headers' value is all we know.
  if (absl::StatusOr<std::string> text = ReadFile("/proc/sys/kernel/cap_last_cap"); text.ok()) {
    int kernel_last = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &kernel_last) && kernel_last >= 0) {
      rc.last_cap = std::min(rc.last_cap, kernel_last);
    }
  }
  for (int cap = 0; cap <= rc.last_cap; ++cap) {
    int r = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (r < 0) {
      return mesh::ErrnoToStatus(errno,
                                 absl::StrCat("read bounding capability ", CapabilityName(cap)));
    }
    if (r == 1) rc.bounding |= Bit(cap);
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) {
    return mesh::ErrnoToStatus(errno, "read the runtime's capabilities (capget)");
  }
  rc.permitted = data[0].permitted | (CapMask{data[1].permitted} << 32);
  rc.effective = data[0].effective | (CapMask{data[1].effective} << 32);
  return rc;
}

}  // namespace mesh::runtime::security
