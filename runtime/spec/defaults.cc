#include "runtime/spec/defaults.h"

#include <algorithm>
#include <optional>

namespace mesh::runtime {

const std::vector<std::string>& DefaultCapabilities() {
  static const auto* caps = new std::vector<std::string>{
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return *caps;
}

const std::vector<std::string>& StrictCapabilities() {
  static const auto* caps = [] {
    auto* out = new std::vector<std::string>;
    for (const std::string& c : DefaultCapabilities()) {
      if (c != "CAP_MKNOD" && c != "CAP_NET_RAW" && c != "CAP_AUDIT_WRITE") out->push_back(c);
    }
    return out;
  }();
  return *caps;
}

const std::vector<std::string>& DefaultMaskedPaths() {
  // /sys/devices/system/cpu/cpu*/thermal_throttle is expanded at mount time (one per CPU).
  static const auto* paths =
      new std::vector<std::string>{"/proc/acpi",
                                   "/proc/asound",
                                   "/proc/interrupts",
                                   "/proc/kcore",
                                   "/proc/keys",
                                   "/proc/latency_stats",
                                   "/proc/sched_debug",
                                   "/proc/scsi",
                                   "/proc/timer_list",
                                   "/proc/timer_stats",
                                   "/sys/firmware",
                                   "/sys/devices/virtual/powercap",
                                   "/sys/devices/system/cpu/cpu*/thermal_throttle"};
  return *paths;
}

const std::vector<std::string>& DefaultReadonlyPaths() {
  static const auto* paths = new std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq",
                                                          "/proc/sys", "/proc/sysrq-trigger"};
  return *paths;
}

std::vector<DeviceRule> DefaultDeviceRules(bool privileged) {
  if (privileged) return {DeviceRule{.allow = true, .type = 'a'}};
  std::vector<DeviceRule> rules = {DeviceRule{.allow = false, .type = 'a'}};
  struct Dev {
    int64_t major;
    std::optional<int64_t> minor;
  };
  // null, zero, full, random, urandom, tty, ptmx, the ptys.
  for (const Dev& d : {Dev{1, 3}, Dev{1, 5}, Dev{1, 7}, Dev{1, 8}, Dev{1, 9}, Dev{5, 0}, Dev{5, 2},
                       Dev{136, std::nullopt}}) {
    rules.push_back(DeviceRule{.allow = true, .type = 'c', .major = d.major, .minor = d.minor});
  }
  return rules;
}

CapabilitySets CapabilitiesFrom(const std::vector<std::string>& caps) {
  CapabilitySets sets;
  sets.bounding = caps;
  sets.permitted = caps;
  sets.effective = caps;
  return sets;
}

ContainerSpec WithDefaults(ContainerSpec spec) {
  if (!spec.process.capabilities) {
    spec.process.capabilities = CapabilitiesFrom(DefaultCapabilities());
  }
  if (!spec.privileged) {
    if (spec.masked_paths.empty()) spec.masked_paths = DefaultMaskedPaths();
    if (spec.readonly_paths.empty()) spec.readonly_paths = DefaultReadonlyPaths();
  }
  if (spec.resources.devices.empty()) spec.resources.devices = DefaultDeviceRules(spec.privileged);
  for (NamespaceType type :
       {NamespaceType::kPid, NamespaceType::kMount, NamespaceType::kUts, NamespaceType::kIpc,
        NamespaceType::kCgroup, NamespaceType::kNetwork}) {
    if (std::none_of(spec.namespaces.begin(), spec.namespaces.end(),
                     [&](const NamespaceSpec& n) { return n.type == type; })) {
      spec.namespaces.push_back({type, ""});
    }
  }
  // push_back/append, not = "...": gcc 12 reports a false -Wrestrict on the inlined
  // assignment of a literal to an empty string.
  if (spec.process.cwd.empty()) spec.process.cwd.push_back('/');
  if (spec.hostname.empty()) spec.hostname.append(spec.id);
  return spec;
}

}  // namespace mesh::runtime
