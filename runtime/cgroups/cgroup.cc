#include "runtime/cgroups/cgroup.h"

#include <signal.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "runtime/cgroups/cgroup_v1.h"
#include "runtime/cgroups/cgroup_v2.h"
#include "runtime/cgroups/devices.h"

namespace mesh::runtime {
namespace {

// Kernel limits (kernel/sched/core.c, tg_set_cfs_bandwidth): a period from 1 ms to 1 s, a quota
// of at least 1 ms and below 2^44 us (MAX_BW).
constexpr int64_t kMinCpuQuota = 1000;
constexpr int64_t kMaxCpuQuota = (int64_t{1} << 44) - 1;
constexpr uint64_t kMinCpuPeriod = 1000;
constexpr uint64_t kMaxCpuPeriod = 1000000;
// cpu.shares range (kernel/sched: MIN_SHARES, MAX_SHARES).
constexpr uint64_t kMinCpuShares = 2;
constexpr uint64_t kMaxCpuShares = 262144;

bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

absl::Status ValidateParent(absl::string_view parent) {
  auto bad = [parent](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cgroup parent \"", absl::CEscape(parent), "\": ", why,
        "; use a relative path of names made of letters, digits, '_', '-' and '.', like \"mesh\""));
  };
  if (parent.empty()) return bad("is empty");
  for (absl::string_view component : absl::StrSplit(parent, '/')) {
    if (component.empty()) return bad("has an empty component (a leading, trailing or double '/')");
    if (component == "." || component == "..") return bad("has a \".\" or \"..\" component");
    if (component.size() > 255) return bad("has a component longer than 255 characters");
    for (char c : component) {
      if (!IsNameChar(c) && c != '.') return bad("has a character that is not allowed");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view CgroupVersionName(CgroupVersion version) {
  return version == CgroupVersion::kV1 ? "v1" : "v2";
}

absl::Status ValidateCgroupName(absl::string_view name) {
  auto bad = [name](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup name \"", absl::CEscape(name), "\": ", why,
                     "; use 1 to 255 letters, digits, '_' and '-', starting with a letter or "
                     "digit"));
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > 255) return bad(absl::StrCat("is ", name.size(), " characters long"));
  if (!absl::ascii_isalnum(name[0])) return bad("does not start with a letter or digit");
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i])) {
      return bad(absl::StrCat("has '", absl::CEscape(name.substr(i, 1)), "' at position ", i));
    }
  }
  if (name == "tasks" || name == "notify_on_release" || name == "release_agent") {
    return bad("is the name of a cgroup v1 interface file");
  }
  return absl::OkStatus();
}

absl::Status ValidateResources(const Resources& r) {
  std::vector<std::string> problems;
  if (r.memory_limit && *r.memory_limit < kMinMemoryLimit) {
    problems.push_back(absl::StrCat("memory_limit ", *r.memory_limit, " must be at least ",
                                    kMinMemoryLimit, " bytes (1 MiB)"));
  }
  if (r.memory_swap) {
    if (!r.memory_limit) {
      problems.push_back(absl::StrCat(
          "memory_swap ", *r.memory_swap,
          " needs memory_limit (memory_swap is memory + swap, so it says nothing alone)"));
    } else if (*r.memory_swap != -1 && *r.memory_swap < *r.memory_limit) {
      problems.push_back(absl::StrCat("memory_swap ", *r.memory_swap,
                                      " (memory + swap) must be -1 (unlimited swap) or at least "
                                      "memory_limit ",
                                      *r.memory_limit));
    }
  }
  if (r.cpu_quota && *r.cpu_quota != -1 &&
      (*r.cpu_quota < kMinCpuQuota || *r.cpu_quota > kMaxCpuQuota)) {
    problems.push_back(absl::StrCat("cpu_quota ", *r.cpu_quota, " must be -1 (no quota) or from ",
                                    kMinCpuQuota, " to ", kMaxCpuQuota, " microseconds"));
  }
  if (r.cpu_period && (*r.cpu_period < kMinCpuPeriod || *r.cpu_period > kMaxCpuPeriod)) {
    problems.push_back(absl::StrCat("cpu_period ", *r.cpu_period, " must be from ", kMinCpuPeriod,
                                    " to ", kMaxCpuPeriod, " microseconds"));
  }
  if (r.cpu_shares && (*r.cpu_shares < kMinCpuShares || *r.cpu_shares > kMaxCpuShares)) {
    problems.push_back(absl::StrCat("cpu_shares ", *r.cpu_shares, " must be from ", kMinCpuShares,
                                    " to ", kMaxCpuShares));
  }
  if (r.pids_limit && *r.pids_limit < -1) {
    problems.push_back(
        absl::StrCat("pids_limit ", *r.pids_limit, " must be positive, or -1 or 0 for no limit"));
  }
  if (absl::Status devices = ValidateDeviceRules(r.devices); !devices.ok()) {
    problems.emplace_back(devices.message());
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid resources: ", absl::StrJoin(problems, "; ")));
}

uint64_t CpuSharesToWeight(uint64_t shares) {
  shares = std::clamp(shares, kMinCpuShares, kMaxCpuShares);
  return 1 + ((shares - 2) * 9999) / 262142;
}

bool WasOomKilled(int term_signal, uint64_t oom_kills_before, uint64_t oom_kills_after) {
  return term_signal == SIGKILL && oom_kills_after > oom_kills_before;
}

absl::StatusOr<CgroupLayout> ReadCgroupLayout(const std::string& mountinfo) {
  MESH_ASSIGN_OR_RETURN(std::string text, mesh::ReadFile(mountinfo));
  absl::StatusOr<CgroupLayout> layout = ParseCgroupLayout(text);
  if (!layout.ok()) return mesh::Annotate(layout.status(), mountinfo);
  return layout;
}

absl::StatusOr<std::unique_ptr<CgroupDriver>> DetectCgroupDriver(const CgroupLayout& layout,
                                                                 CgroupDriverOptions options) {
  MESH_RETURN_IF_ERROR(ValidateParent(options.parent));
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cgroup driver timeout ", absl::FormatDuration(options.timeout), " must be positive"));
  }
  std::shared_ptr<CgroupFs> fs =
      options.fs ? std::move(options.fs) : std::make_shared<KernelCgroupFs>();

  std::string v2_problem = "no cgroup2 hierarchy is mounted";
  if (layout.v2) {
    const std::string path = absl::StrCat(*layout.v2, "/cgroup.controllers");
    absl::StatusOr<std::string> text = fs->Read(path);
    if (text.ok()) {
      std::set<std::string> offered =
          absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ', absl::SkipEmpty());
      std::vector<absl::string_view> missing;
      for (absl::string_view c : CgroupV2Driver::kControllers) {
        if (!offered.contains(std::string(c))) missing.push_back(c);
      }
      if (missing.empty()) {
        return std::make_unique<CgroupV2Driver>(*layout.v2, options.parent, options.timeout,
                                                std::move(fs));
      }
      v2_problem = absl::StrCat("cgroup2 at ", *layout.v2, " lacks controllers ",
                                absl::StrJoin(missing, ", "), " (", path, " lists \"",
                                absl::StripAsciiWhitespace(*text), "\")");
    } else {
      v2_problem = std::string(text.status().message());
    }
  }

  std::vector<absl::string_view> missing_v1;
  std::map<std::string, std::string> roots;
  for (absl::string_view c : CgroupV1Driver::kControllers) {
    auto it = layout.v1.find(std::string(c));
    if (it == layout.v1.end()) {
      missing_v1.push_back(c);
    } else {
      roots.insert(*it);
    }
  }
  if (missing_v1.empty()) {
    return std::make_unique<CgroupV1Driver>(std::move(roots), options.parent, options.timeout,
                                            std::move(fs));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no usable cgroup hierarchy: ", v2_problem,
                   "; and no v1 hierarchy is mounted for ", absl::StrJoin(missing_v1, ", "),
                   ". mesh needs cpu, memory and pids in cgroup v2, or memory, cpu, cpuacct, pids, "
                   "freezer and devices as cgroup v1 hierarchies"));
}

}  // namespace mesh::runtime
