#include "runtime/security/rlimits.h"

#include <sys/resource.h>

#include <cerrno>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace mesh::runtime::security {
namespace {

struct RlimitInfo {
  int resource;
  const char* name;
};

#define MESH_RLIMIT(r) \
  RlimitInfo { r, #r }
constexpr RlimitInfo kRlimits[] = {
    MESH_RLIMIT(RLIMIT_CPU),      MESH_RLIMIT(RLIMIT_FSIZE),  MESH_RLIMIT(RLIMIT_DATA),
    MESH_RLIMIT(RLIMIT_STACK),    MESH_RLIMIT(RLIMIT_CORE),   MESH_RLIMIT(RLIMIT_RSS),
    MESH_RLIMIT(RLIMIT_NPROC),    MESH_RLIMIT(RLIMIT_NOFILE), MESH_RLIMIT(RLIMIT_MEMLOCK),
    MESH_RLIMIT(RLIMIT_AS),       MESH_RLIMIT(RLIMIT_LOCKS),  MESH_RLIMIT(RLIMIT_SIGPENDING),
    MESH_RLIMIT(RLIMIT_MSGQUEUE), MESH_RLIMIT(RLIMIT_NICE),   MESH_RLIMIT(RLIMIT_RTPRIO),
    MESH_RLIMIT(RLIMIT_RTTIME),
};
#undef MESH_RLIMIT
static_assert(std::size(kRlimits) == RLIMIT_NLIMITS, "every RLIMIT_* is named");

std::string Value(uint64_t v) {
  return v == kRlimitInfinity ? std::string("unlimited") : absl::StrCat(v);
}

}  // namespace

absl::StatusOr<int> ParseRlimitType(absl::string_view name) {
  absl::string_view bare = name;
  if (bare.size() >= 7 && absl::EqualsIgnoreCase(bare.substr(0, 7), "RLIMIT_")) {
    bare.remove_prefix(7);
  }
  if (!bare.empty()) {
    for (const RlimitInfo& r : kRlimits) {
      if (absl::EqualsIgnoreCase(absl::string_view(r.name).substr(7), bare)) return r.resource;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown rlimit \"", absl::CHexEscape(name),
                   "\": use a name of getrlimit(2) such as \"RLIMIT_NOFILE\" or \"nofile\""));
}

absl::string_view RlimitName(int resource) {
  for (const RlimitInfo& r : kRlimits) {
    if (r.resource == resource) return r.name;
  }
  return "";
}

absl::StatusOr<std::vector<ResolvedRlimit>> ResolveRlimits(const std::vector<Rlimit>& rlimits) {
  std::vector<ResolvedRlimit> out;
  out.reserve(rlimits.size());
  for (const Rlimit& r : rlimits) {
    absl::StatusOr<int> resource = ParseRlimitType(r.type);
    if (!resource.ok()) return resource.status();
    absl::string_view name = RlimitName(*resource);
    if (r.soft > r.hard) {
      return absl::InvalidArgumentError(absl::StrCat("rlimit ", name, ": soft limit ",
                                                     Value(r.soft), " is above the hard limit ",
                                                     Value(r.hard), "; lower the soft limit"));
    }
    for (const ResolvedRlimit& seen : out) {
      if (seen.resource == *resource) {
        return absl::InvalidArgumentError(
            absl::StrCat("rlimit ", name, " is given twice; keep one entry"));
      }
    }
    out.push_back({*resource, r.soft, r.hard});
  }
  return out;
}

absl::Status CheckRlimitsAllowed(const std::vector<ResolvedRlimit>& limits, bool can_raise) {
  if (can_raise) return absl::OkStatus();
  for (const ResolvedRlimit& r : limits) {
    rlimit current{};
    if (::getrlimit(r.resource, &current) != 0) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("read rlimit ", RlimitName(r.resource)));
    }
    if (current.rlim_max != RLIM_INFINITY &&
        (r.hard == kRlimitInfinity || r.hard > current.rlim_max)) {
      return absl::PermissionDeniedError(
          absl::StrCat("rlimit ", RlimitName(r.resource), ": hard limit ", Value(r.hard),
                       " is above the runtime's own hard limit ", Value(current.rlim_max),
                       ", and raising it needs CAP_SYS_RESOURCE, which the runtime does not hold "
                       "(EPERM); ask for at most ",
                       Value(current.rlim_max),
                       " or raise the runtime's limit (e.g. LimitNOFILE= in its systemd unit)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace mesh::runtime::security
