#include "agent/api/convert.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/errno_status.h"
#include "base/names.h"
#include "base/quote.h"
#include "base/status_macros.h"
#include "netplane/ipam/ip.h"
#include "netplane/ipam/pool.h"
#include "netplane/network/names.h"
#include "runtime/cgroups/cgroup.h"
#include "runtime/security/capabilities.h"
#include "runtime/spec/defaults.h"
#include "runtime/spec/sysctl.h"

namespace mesh::agent {
namespace {

using google::protobuf::RepeatedPtrField;
using netplane::ipam::IpAddress;
using netplane::ipam::IpPrefix;

constexpr size_t kMaxImageBytes = 255;
// MAX_ARG_STRLEN: execve refuses an argument or environment string of 32 pages (128 KiB) or
// more, its terminating NUL included.
constexpr size_t kMaxArgBytes = (size_t{128} << 10) - 1;
constexpr int kMaxArgs = 4096;
constexpr int kMaxEnv = 4096;
constexpr size_t kMaxPathBytes = 4095;  // PATH_MAX (4096) with the NUL
constexpr size_t kMaxUserBytes = 256;
constexpr size_t kMaxCapabilityBytes = 64;
constexpr size_t kMaxLabelKeyLength = 63;
constexpr size_t kMaxLabelValueBytes = 255;
constexpr size_t kMaxDnsLabelLength = 63;
constexpr uint64_t kMinEgressRate = 8000;                // 8 kbit/s
constexpr uint64_t kMaxEgressRate = 16000000000;         // 16 Gbit/s (tc tbf: 2^31 bytes/s)
constexpr uint64_t kMaxEgressBurst = uint64_t{1} << 30;  // 1 GiB
constexpr size_t kMaxDnsNameLength = 253;
constexpr uint32_t kMaxLogFiles = 100;
// A user namespace maps container ids 0-65535; the runtime refuses a range past host id
// 4294967294 (4294967295 is "no id" to the kernel).
constexpr uint32_t kUsernsSize = 65536;
constexpr uint64_t kMaxUsernsHostBase = uint64_t{4294967295} - kUsernsSize;
constexpr uint64_t kCpuPeriodUs = 100000;
constexpr double kMaxCpus = 1024;
// The cgroup drivers refuse a CFS quota under 1000 us (runtime/cgroups ValidateResources):
// 0.01 CPUs of a 100 ms period.
constexpr double kMinCpus = 0.01;
constexpr uint32_t kMinMtu = 68;  // RFC 791's minimum IPv4 MTU, as netplane checks it
constexpr uint32_t kMaxMtu = 65535;
constexpr int kDefaultMtu = 1500;
constexpr int kMinPrefixLength = 8;
constexpr int kMaxPrefixLength = netplane::ipam::Pool::kMaxV4PrefixLength;
// google/protobuf/duration.proto and timestamp.proto.
constexpr int64_t kMaxDurationSeconds = 315576000000;
constexpr int32_t kMaxNanos = 999999999;
constexpr int64_t kMinTimestampSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimestampSeconds = 253402300799;  // 9999-12-31T23:59:59Z
// Linux signal numbers, numbered as Docker and kill(1) number them: glibc keeps 32 and 33 for
// itself, so SIGRTMIN is 34.
constexpr int kMaxSignal = 64;
constexpr int kRtMin = 34;
constexpr int kRtMax = 64;

std::string At(absl::string_view field, size_t index) {
  return absl::StrCat(field, "[", index, "]");
}

std::string Dot(absl::string_view field, absl::string_view member) {
  return absl::StrCat(field, ".", member);
}

absl::Status Invalid(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

// An error of a library parser or validator, put under `field`, with a hint after it unless
// the message already ends in a suggestion ("did you mean 10.88.1.0/24?").
absl::Status InvalidWithHint(absl::string_view field, const absl::Status& status,
                             absl::string_view hint) {
  if (absl::EndsWith(status.message(), "?")) return Invalid(field, status.message());
  return Invalid(field, absl::StrCat(status.message(), "; ", hint));
}

// egress_rate_bps and egress_burst_bytes of the message at `at` (an attachment, a link end).
absl::Status CheckEgress(uint64_t rate, uint64_t burst, absl::string_view at) {
  if (rate != 0 && (rate < kMinEgressRate || rate > kMaxEgressRate)) {
    return Invalid(
        Dot(at, "egress_rate_bps"),
        absl::StrCat(rate, " bit/s is out of range; give ", kMinEgressRate, " (8 kbit/s) to ",
                     kMaxEgressRate, " (16 Gbit/s), or 0 for no limit"));
  }
  if (burst != 0 && rate == 0) {
    return Invalid(Dot(at, "egress_burst_bytes"), "a burst needs a rate (egress_rate_bps)");
  }
  if (burst > kMaxEgressBurst) {
    return Invalid(Dot(at, "egress_burst_bytes"),
                   absl::StrCat(burst, " bytes is more than ", kMaxEgressBurst, " (1 GiB)"));
  }
  return absl::OkStatus();
}

// The offset of the first byte that is not part of valid UTF-8 (RFC 3629: shortest forms only,
// no surrogates, nothing above U+10FFFF), or npos.
size_t InvalidUtf8At(absl::string_view s) {
  auto byte = [&s](size_t k) { return static_cast<unsigned char>(s[k]); };
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      length = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      length = 3;
      if (c == 0xe0) low = 0xa0;   // no overlong forms
      if (c == 0xed) high = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      length = 4;
      if (c == 0xf0) low = 0x90;   // no overlong forms
      if (c == 0xf4) high = 0x8f;  // nothing above U+10FFFF
    } else {
      return i;
    }
    if (i + length > s.size() || byte(i + 1) < low || byte(i + 1) > high) return i;
    for (size_t k = 2; k < length; ++k) {
      if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return i;
    }
    i += length;
  }
  return absl::string_view::npos;
}

// An IPv4 address; `hint` says what to give instead of a bad one.
absl::StatusOr<IpAddress> ParseIpv4(absl::string_view text, absl::string_view field,
                                    absl::string_view hint) {
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  if (ip.ok() && !ip->is_v4()) {
    ip = absl::InvalidArgumentError(absl::StrCat(Quote(text), " is an IPv6 address"));
  }
  if (!ip.ok()) return InvalidWithHint(field, ip.status(), hint);
  return ip;
}

// Any string field: at most `max_bytes` bytes of UTF-8 without NUL.
absl::Status CheckText(absl::string_view value, absl::string_view field, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return Invalid(field, absl::StrCat("is ", value.size(), " bytes long, more than the ",
                                       max_bytes, " allowed; shorten it"));
  }
  if (size_t nul = value.find('\0'); nul != value.npos) {
    return Invalid(field,
                   absl::StrCat(Quote(value), " has a NUL byte at offset ", nul, "; remove it"));
  }
  if (size_t bad = InvalidUtf8At(value); bad != value.npos) {
    return Invalid(field, absl::StrCat(Quote(value), " is not valid UTF-8 (byte 0x",
                                       absl::Hex(static_cast<unsigned char>(value[bad])),
                                       " at offset ", bad, "); send UTF-8 text"));
  }
  return absl::OkStatus();
}

absl::Status CheckName(NameKind kind, absl::string_view name, absl::string_view field) {
  return Annotate(ValidateName(kind, name), field);
}

// An absolute path without ".." components; `example` shows what a good one looks like.
absl::Status CheckAbsolutePath(absl::string_view path, absl::string_view field,
                               absl::string_view example) {
  MESH_RETURN_IF_ERROR(CheckText(path, field, kMaxPathBytes));
  if (path.empty()) {
    return Invalid(field,
                   absl::StrCat("is empty; give an absolute path such as \"", example, "\""));
  }
  if (path[0] != '/') {
    return Invalid(field, absl::StrCat(Quote(path),
                                       " is not an absolute path; start it with "
                                       "'/', such as \"",
                                       example, "\""));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return Invalid(field, absl::StrCat(Quote(path),
                                         " has a \"..\" component; give the path "
                                         "without it"));
    }
  }
  return absl::OkStatus();
}

// A mount destination: absolute, in normal form (no "." or "..", no empty components, no
// trailing '/'), so that two spellings of one directory are seen as duplicates; not "/".
absl::Status CheckMountDestination(absl::string_view path, absl::string_view field) {
  MESH_RETURN_IF_ERROR(CheckAbsolutePath(path, field, "/data"));
  std::vector<absl::string_view> parts =
      absl::StrSplit(path, '/', [](absl::string_view p) { return !p.empty() && p != "."; });
  const std::string normal = absl::StrCat("/", absl::StrJoin(parts, "/"));
  if (normal == "/") {
    return Invalid(field, "is the container's root directory; mount on a directory below it");
  }
  if (normal != path) {
    return Invalid(field,
                   absl::StrCat(Quote(path), " is not in normal form; write ", Quote(normal)));
  }
  return absl::OkStatus();
}

// RFC 1123 host name label: 1 to 63 letters, digits and '-', not starting or ending with '-'.
bool IsDnsLabel(absl::string_view label) {
  if (label.empty() || label.size() > kMaxDnsLabelLength) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '-'; });
}

absl::Status CheckHostname(absl::string_view hostname, absl::string_view field) {
  if (IsDnsLabel(hostname)) return absl::OkStatus();
  return Invalid(field, absl::StrCat(Quote(hostname),
                                     " is not a host name; use 1 to 63 letters, "
                                     "digits and '-', starting and ending with a letter or "
                                     "digit"));
}

absl::Status CheckDnsName(absl::string_view name, absl::string_view field) {
  bool ok = !name.empty() && name.size() <= kMaxDnsNameLength;
  for (absl::string_view label : absl::StrSplit(name, '.')) ok = ok && IsDnsLabel(label);
  if (ok) return absl::OkStatus();
  return Invalid(field, absl::StrCat(Quote(name),
                                     " is not a DNS name; use labels of 1 to 63 "
                                     "letters, digits and '-' joined by '.' (253 characters at "
                                     "most)"));
}

// "uid[:gid]" or "name[:group]": one or two non-empty parts without blanks or control
// characters. Whether they exist is for the image's /etc/passwd to say, at create time.
absl::Status CheckUser(absl::string_view user, absl::string_view field) {
  MESH_RETURN_IF_ERROR(CheckText(user, field, kMaxUserBytes));
  std::vector<absl::string_view> parts = absl::StrSplit(user, ':');
  bool ok = parts.size() <= 2;
  for (absl::string_view part : parts) {
    ok = ok && !part.empty() && std::none_of(part.begin(), part.end(), [](char c) {
           return static_cast<unsigned char>(c) <= ' ' || c == '\x7f';
         });
  }
  if (ok) return absl::OkStatus();
  return Invalid(field, absl::StrCat(Quote(user),
                                     " is not a user; use \"uid[:gid]\" or "
                                     "\"name[:group]\", such as \"1000:1000\" or \"nobody\""));
}

// A command line (entrypoint, args, a health check's command): at most kMaxArgs entries of at
// most kMaxArgBytes each.
absl::Status CheckArgv(const RepeatedPtrField<std::string>& argv, absl::string_view field) {
  if (argv.size() > kMaxArgs) {
    return Invalid(field, absl::StrCat("has ", argv.size(), " entries, more than the ", kMaxArgs,
                                       " allowed; pass long lists in a file"));
  }
  for (int i = 0; i < argv.size(); ++i) {
    MESH_RETURN_IF_ERROR(CheckText(argv[i], At(field, i), kMaxArgBytes));
  }
  return absl::OkStatus();
}

// The program of a command line: it has to name something.
absl::Status CheckProgram(const RepeatedPtrField<std::string>& argv, absl::string_view field) {
  if (!argv.empty() && argv[0].empty()) {
    return Invalid(At(field, 0), "is empty; name the program to run");
  }
  return absl::OkStatus();
}

absl::string_view EnvKey(absl::string_view entry) { return entry.substr(0, entry.find('=')); }

absl::Status CheckEnv(const RepeatedPtrField<std::string>& env, absl::string_view field) {
  if (env.size() > kMaxEnv) {
    return Invalid(
        field, absl::StrCat("has ", env.size(), " entries, more than the ", kMaxEnv, " allowed"));
  }
  for (int i = 0; i < env.size(); ++i) {
    const std::string at = At(field, i);
    MESH_RETURN_IF_ERROR(CheckText(env[i], at, kMaxArgBytes));
    const size_t eq = env[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      return Invalid(at, absl::StrCat(Quote(env[i]),
                                      " is not KEY=VALUE with a non-empty KEY; "
                                      "write it as \"NAME=value\""));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCapabilities(const RepeatedPtrField<std::string>& names,
                               absl::string_view field) {
  for (int i = 0; i < names.size(); ++i) {
    const std::string at = At(field, i);
    MESH_RETURN_IF_ERROR(CheckText(names[i], at, kMaxCapabilityBytes));
    if (absl::EqualsIgnoreCase(names[i], "ALL")) continue;
    MESH_RETURN_IF_ERROR(Annotate(runtime::security::ParseCapability(names[i]).status(), at));
  }
  return absl::OkStatus();
}

absl::Status CheckMounts(const RepeatedPtrField<v1::Mount>& mounts, absl::string_view field) {
  std::map<absl::string_view, int> destinations;  // views into `mounts`
  for (int i = 0; i < mounts.size(); ++i) {
    const v1::Mount& m = mounts[i];
    const std::string at = At(field, i);
    if (!v1::Mount::Type_IsValid(m.type())) {
      return Invalid(Dot(at, "type"), absl::StrCat(m.type(),
                                                   " is not a mount type; use "
                                                   "TYPE_BIND or TYPE_TMPFS"));
    }
    MESH_RETURN_IF_ERROR(CheckMountDestination(m.destination(), Dot(at, "destination")));
    if (auto [it, added] = destinations.emplace(m.destination(), i); !added) {
      return Invalid(Dot(at, "destination"),
                     absl::StrCat(Quote(m.destination()), " is the destination of ",
                                  At(field, it->second), " already; mount one thing there"));
    }
    if (m.type() == v1::Mount::TYPE_TMPFS) {
      MESH_RETURN_IF_ERROR(CheckText(m.source(), Dot(at, "source"), kMaxPathBytes));
      continue;
    }
    MESH_RETURN_IF_ERROR(CheckAbsolutePath(m.source(), Dot(at, "source"), "/srv/data"));
    if (m.tmpfs_size_bytes() != 0) {
      return Invalid(Dot(at, "tmpfs_size_bytes"),
                     "is for tmpfs mounts only; remove it or set type to TYPE_TMPFS");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckResources(const v1::Resources& r, absl::string_view field) {
  if (r.memory_bytes() < 0) {
    return Invalid(Dot(field, "memory_bytes"),
                   absl::StrCat(r.memory_bytes(),
                                " is negative; give a limit in bytes, or 0 "
                                "for none"));
  }
  if (r.memory_bytes() > 0 && r.memory_bytes() < runtime::kMinMemoryLimit) {
    return Invalid(Dot(field, "memory_bytes"),
                   absl::StrCat(r.memory_bytes(), " bytes is less than the smallest limit, ",
                                runtime::kMinMemoryLimit,
                                " bytes (1 MiB); give more, or 0 for "
                                "none"));
  }
  const double cpus = r.cpus();
  if (!std::isfinite(cpus) || cpus < 0) {
    return Invalid(Dot(field, "cpus"), absl::StrCat(cpus,
                                                    " is not a number of CPUs; give one "
                                                    "from ",
                                                    kMinCpus, " to ", kMaxCpus,
                                                    ", or 0 for "
                                                    "no limit"));
  }
  if (cpus > 0 && (cpus < kMinCpus || cpus > kMaxCpus)) {
    return Invalid(Dot(field, "cpus"),
                   absl::StrCat(cpus, " is outside ", kMinCpus, " to ", kMaxCpus,
                                " (the CFS quota is 1 ms to ", kMaxCpus * 100,
                                " ms per 100 ms period); give a value in range, or 0 for no "
                                "limit"));
  }
  if (r.pids() < 0) {
    return Invalid(Dot(field, "pids"), absl::StrCat(r.pids(),
                                                    " is negative; give the most "
                                                    "processes at once, or 0 for "
                                                    "no limit"));
  }
  return absl::OkStatus();
}

absl::Status CheckRestart(const v1::RestartPolicy& restart, absl::string_view field) {
  if (!v1::RestartPolicy::Mode_IsValid(restart.mode())) {
    return Invalid(Dot(field, "mode"), absl::StrCat(restart.mode(),
                                                    " is not a restart mode; use MODE_NO, "
                                                    "MODE_ON_FAILURE, MODE_ALWAYS or "
                                                    "MODE_UNLESS_STOPPED"));
  }
  if (restart.max_retries() != 0 && restart.mode() != v1::RestartPolicy::MODE_ON_FAILURE) {
    return Invalid(Dot(field, "max_retries"),
                   absl::StrCat("applies to MODE_ON_FAILURE only, and mode is ",
                                v1::RestartPolicy::Mode_Name(restart.mode()),
                                "; remove it or set mode to MODE_ON_FAILURE"));
  }
  return absl::OkStatus();
}

// A duration field that is set: valid, and at least `min`.
absl::Status CheckDurationAtLeast(const google::protobuf::Duration& d, absl::Duration min,
                                  absl::string_view field, absl::string_view hint) {
  MESH_RETURN_IF_ERROR(ValidateDuration(d, field));
  const absl::Duration value = FromProtoDuration(d);
  if (value < min) {
    return Invalid(field,
                   absl::StrCat(absl::FormatDuration(value), " is ",
                                min == absl::ZeroDuration()
                                    ? "negative"
                                    : absl::StrCat("shorter than ", absl::FormatDuration(min)),
                                "; ", hint));
  }
  return absl::OkStatus();
}

absl::Status CheckHealthCheck(const v1::HealthCheck& check, absl::string_view field) {
  const std::string command = Dot(field, "command");
  if (check.command().empty()) {
    return Invalid(command,
                   "is empty; give the command to run (exit code 0 is healthy), or "
                   "remove the health check");
  }
  MESH_RETURN_IF_ERROR(CheckArgv(check.command(), command));
  MESH_RETURN_IF_ERROR(CheckProgram(check.command(), command));
  if (check.has_interval()) {
    MESH_RETURN_IF_ERROR(CheckDurationAtLeast(check.interval(), absl::Milliseconds(1),
                                              Dot(field, "interval"),
                                              "give 1ms or more, or leave it unset for 30s"));
  }
  if (check.has_timeout()) {
    MESH_RETURN_IF_ERROR(CheckDurationAtLeast(check.timeout(), absl::Milliseconds(1),
                                              Dot(field, "timeout"),
                                              "give 1ms or more, or leave it unset for 30s"));
  }
  if (check.has_start_period()) {
    MESH_RETURN_IF_ERROR(CheckDurationAtLeast(check.start_period(), absl::ZeroDuration(),
                                              Dot(field, "start_period"),
                                              "give 0 or more, or leave it unset"));
  }
  return absl::OkStatus();
}

absl::Status CheckNetworks(const RepeatedPtrField<v1::NetworkAttachment>& networks,
                           absl::string_view field) {
  std::map<absl::string_view, int> seen;  // views into `networks`
  for (int i = 0; i < networks.size(); ++i) {
    const v1::NetworkAttachment& n = networks[i];
    const std::string at = At(field, i);
    MESH_RETURN_IF_ERROR(CheckName(NameKind::kNetwork, n.network(), Dot(at, "network")));
    if (auto [it, added] = seen.emplace(n.network(), i); !added) {
      return Invalid(Dot(at, "network"),
                     absl::StrCat(Quote(n.network()), " is attached by ", At(field, it->second),
                                  " already; list each network once"));
    }
    if (!n.ip().empty()) {
      MESH_RETURN_IF_ERROR(ParseIpv4(n.ip(), Dot(at, "ip"),
                                     "give an IPv4 address of the network's subnet "
                                     "(\"10.88.0.5\"), or leave it empty for the next free one")
                               .status());
    }
    for (int j = 0; j < n.aliases_size(); ++j) {
      MESH_RETURN_IF_ERROR(CheckDnsName(n.aliases(j), At(Dot(at, "aliases"), j)));
    }
    MESH_RETURN_IF_ERROR(CheckEgress(n.egress_rate_bps(), n.egress_burst_bytes(), at));
  }
  return absl::OkStatus();
}

// Two published ports clash when they share protocol and host port and either listens on
// every host address or both on the same one (netplane refuses the same).
struct PortKey {
  netplane::Protocol protocol;
  uint16_t host_port;
  auto operator<=>(const PortKey&) const = default;
};
struct PortUsers {
  std::optional<int> any_address;      // index of a mapping on every host address
  std::map<IpAddress, int> addresses;  // host address -> index of its mapping
};

absl::Status CheckPort(uint32_t port, absl::string_view field) {
  if (port >= 1 && port <= 65535) return absl::OkStatus();
  return Invalid(field, absl::StrCat(port, " is not a port (1-65535)"));
}

// The index of the dependency graph: each member's short name, the first one if repeated.
std::map<absl::string_view, int> IndexByName(const v1::GroupSpec& spec) {
  std::map<absl::string_view, int> index;
  for (int i = 0; i < spec.containers_size(); ++i) {
    index.emplace(spec.containers(i).spec().name(), i);
  }
  return index;
}

// deps[i]: the members member i waits for (depends_on and network_from), each once, in the
// order the spec names them; unknown names and the member itself are left out.
std::vector<std::vector<int>> DependencyGraph(const v1::GroupSpec& spec) {
  const std::map<absl::string_view, int> index = IndexByName(spec);
  std::vector<std::vector<int>> deps(spec.containers_size());
  for (int i = 0; i < spec.containers_size(); ++i) {
    const v1::GroupContainer& member = spec.containers(i);
    auto add = [&](absl::string_view name) {
      auto it = index.find(name);
      if (it == index.end() || it->second == i) return;
      if (std::find(deps[i].begin(), deps[i].end(), it->second) == deps[i].end()) {
        deps[i].push_back(it->second);
      }
    };
    if (!member.spec().network_from().empty()) add(member.spec().network_from());
    for (const v1::Dependency& d : member.depends_on()) add(d.container());
  }
  return deps;
}

// The first dependency cycle a depth-first walk in spec order meets, as member indexes with the
// first one repeated at the end ({a, b, a}); empty if there is none. Iterative, so a long chain
// of members cannot exhaust the stack.
std::vector<int> FindCycle(const std::vector<std::vector<int>>& deps) {
  enum class Mark { kNew, kOnPath, kDone };
  std::vector<Mark> mark(deps.size(), Mark::kNew);
  for (size_t root = 0; root < deps.size(); ++root) {
    if (mark[root] != Mark::kNew) continue;
    std::vector<std::pair<int, size_t>> path = {{static_cast<int>(root), 0}};  // node, next edge
    mark[root] = Mark::kOnPath;
    while (!path.empty()) {
      const int node = path.back().first;
      const size_t edge = path.back().second++;
      if (edge == deps[node].size()) {
        mark[node] = Mark::kDone;
        path.pop_back();
        continue;
      }
      const int next = deps[node][edge];
      if (mark[next] == Mark::kOnPath) {
        std::vector<int> cycle;
        auto start = std::find_if(path.begin(), path.end(),
                                  [next](const auto& step) { return step.first == next; });
        for (auto it = start; it != path.end(); ++it) cycle.push_back(it->first);
        cycle.push_back(next);
        return cycle;
      }
      if (mark[next] == Mark::kNew) {
        mark[next] = Mark::kOnPath;
        path.emplace_back(next, 0);
      }
    }
  }
  return {};
}

// Member `index` of the group's list `list` ("spec.networks") is called `name`, at `field`: with
// the group's prefix it is a name too, so it must still fit in 63 characters; and no earlier
// member of the list (in `seen`, short name -> index) may have it.
absl::Status AddMemberName(absl::string_view group, absl::string_view name, NameKind kind,
                           absl::string_view field, absl::string_view list, int index,
                           std::map<absl::string_view, int>& seen) {
  if (absl::Status full = ValidateName(kind, MemberName(group, name)); !full.ok()) {
    return InvalidWithHint(field, Annotate(full, "with the group's prefix"),
                           "shorten the group's or the member's name");
  }
  if (auto [it, added] = seen.emplace(name, index); !added) {
    return Invalid(field, absl::StrCat(Quote(name), " is taken by ", At(list, it->second),
                                       " already; give each ", NameKindString(kind),
                                       " of the group its own name"));
  }
  return absl::OkStatus();
}

// The group's links: two ends each, on members with their own network namespace, interface
// names free on their member, addresses, MTUs and limits; and the members' routes through them.
absl::Status CheckLinks(const v1::GroupSpec& spec,
                        const std::map<absl::string_view, int>& containers) {
  // member -> interface -> where it is taken
  std::map<std::string, std::map<std::string, std::string>> taken;
  for (const auto& [name, index] : containers) {
    const v1::ContainerSpec& c = spec.containers(index).spec();
    for (int j = 0; j < c.networks_size(); ++j) {
      taken[std::string(name)][absl::StrCat("eth", j)] =
          absl::StrCat("network ", Quote(c.networks(j).network()));
    }
  }
  for (int i = 0; i < spec.links_size(); ++i) {
    const v1::Link& link = spec.links(i);
    const std::string at = At("spec.links", i);
    if (link.endpoints_size() != 2) {
      return Invalid(
          Dot(at, "endpoints"),
          absl::StrCat("has ", link.endpoints_size(),
                       " endpoints; a link joins exactly two (\"r1:eth1\", \"r2:eth1\")"));
    }
    if (link.mtu() != 0 && (link.mtu() < 68 || link.mtu() > 65535)) {
      return Invalid(Dot(at, "mtu"), absl::StrCat(link.mtu(), " is outside 68 to 65535"));
    }
    for (int e = 0; e < 2; ++e) {
      const v1::LinkEndpoint& end = link.endpoints(e);
      const std::string end_at = At(Dot(at, "endpoints"), e);
      auto member = containers.find(end.container());
      if (member == containers.end()) {
        return Invalid(Dot(end_at, "container"),
                       absl::StrCat(Quote(end.container()), " is not a container of group ",
                                    Quote(spec.name()), "; name a member (short name)"));
      }
      const v1::ContainerSpec& c = spec.containers(member->second).spec();
      if (!c.network_from().empty()) {
        return Invalid(
            Dot(end_at, "container"),
            absl::StrCat(Quote(end.container()), " shares the network namespace of ",
                         Quote(c.network_from()), "; link ", Quote(c.network_from()), " instead"));
      }
      const std::string& ifname = end.interface();
      if (!netplane::IsValidIfname(ifname) || ifname == "lo" ||
          InvalidUtf8At(ifname) != absl::string_view::npos) {
        return Invalid(Dot(end_at, "interface"),
                       absl::StrCat(Quote(ifname),
                                    " is not an interface name; give 1 to 15 bytes, not \"lo\", "
                                    "without '/', ':' or spaces (\"eth1\")"));
      }
      std::string& owner = taken[end.container()][ifname];
      if (!owner.empty()) {
        return Invalid(Dot(end_at, "interface"),
                       absl::StrCat(Quote(end.container()), " has ", ifname, " for ", owner,
                                    " already; give this end another interface"));
      }
      owner = absl::StrCat(at, " (", LinkName(link), ")");
      if (end.mtu() != 0 && (end.mtu() < 68 || end.mtu() > 65535)) {
        return Invalid(Dot(end_at, "mtu"), absl::StrCat(end.mtu(), " is outside 68 to 65535"));
      }
      std::set<std::string> seen;
      for (int k = 0; k < end.addresses_size(); ++k) {
        const std::string address_at = At(Dot(end_at, "addresses"), k);
        absl::StatusOr<netplane::ipam::InterfaceAddress> a =
            netplane::ipam::InterfaceAddress::Parse(end.addresses(k));
        if (!a.ok()) {
          return InvalidWithHint(address_at, a.status(),
                                 "give an address with its prefix length, e.g. \"10.0.12.1/30\"");
        }
        const IpPrefix subnet = a->subnet();
        if (a->address.is_v4() && subnet.length() <= 30 &&
            (a->address == subnet.network() || a->address == subnet.Last())) {
          return Invalid(address_at,
                         absl::StrCat(a->address.ToString(), " is the ",
                                      a->address == subnet.network() ? "network" : "broadcast",
                                      " address of ", subnet.ToString(), "; give a host address"));
        }
        if (!seen.insert(a->address.ToString()).second) {
          return Invalid(address_at, absl::StrCat(a->address.ToString(), " is given twice"));
        }
      }
      MESH_RETURN_IF_ERROR(CheckEgress(end.egress_rate_bps(), end.egress_burst_bytes(), end_at));
    }
  }
  // A default route through a link cannot replace the default route a member's first network
  // gives it (that one comes with the network, this one with the link).
  for (int i = 0; i < spec.containers_size(); ++i) {
    const v1::ContainerSpec& c = spec.containers(i).spec();
    for (int j = 0; j < c.routes_size(); ++j) {
      if (c.routes(j).destination() == "default" && c.networks_size() > 0 &&
          RoutesThroughLink(spec, c.name(), c.routes(j))) {
        return Invalid(At(Dot(At("spec.containers", i), "spec.routes"), j),
                       absl::StrCat("a default route through a link, on a member with networks (",
                                    Quote(c.networks(0).network()),
                                    " gives it its default route); route the subnets behind the "
                                    "link instead, or take the member off its networks"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::pair<uint8_t, std::optional<uint16_t>>> ParsePolicyPort(absl::string_view text,
                                                                            absl::string_view at) {
  const size_t slash = text.find('/');
  const absl::string_view proto = text.substr(0, slash);
  uint8_t number = 0;
  if (proto == "tcp") {
    number = IPPROTO_TCP;
  } else if (proto == "udp") {
    number = IPPROTO_UDP;
  } else if (proto == "icmp" && slash == absl::string_view::npos) {
    number = IPPROTO_ICMP;
  } else {
    return Invalid(
        at, absl::StrCat(Quote(text), " is not a port; write tcp/80, udp/53, tcp, udp or icmp"));
  }
  if (slash == absl::string_view::npos) return std::make_pair(number, std::optional<uint16_t>());
  uint32_t port = 0;
  const absl::string_view digits = text.substr(slash + 1);
  if (digits.empty() || digits.size() > 5 ||
      !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &port) || port == 0 || port > 65535) {
    return Invalid(at, absl::StrCat(Quote(text), ": the port must be 1 to 65535"));
  }
  return std::make_pair(number, std::optional<uint16_t>(static_cast<uint16_t>(port)));
}

namespace {

// The group's policy: a known default; each rule an action, senders and receivers that name
// members ("*", a member, "network:NAME", "group:NAME"), and ports.
absl::Status CheckPolicy(const v1::GroupSpec& spec,
                         const std::map<absl::string_view, int>& networks,
                         const std::map<absl::string_view, int>& containers) {
  const v1::Policy& policy = spec.policy();
  if (!v1::Policy::Default_IsValid(policy.default_action())) {
    return Invalid("spec.policy.default_action",
                   absl::StrCat(policy.default_action(),
                                " is not a default; use DEFAULT_ALLOW or DEFAULT_DENY"));
  }
  for (int i = 0; i < policy.rules_size(); ++i) {
    const v1::PolicyRule& rule = policy.rules(i);
    const std::string at = At("spec.policy.rules", i);
    if (rule.action() != v1::PolicyRule::ACTION_ALLOW &&
        rule.action() != v1::PolicyRule::ACTION_DENY) {
      return Invalid(Dot(at, "action"), "give ACTION_ALLOW or ACTION_DENY");
    }
    for (const auto& [field, list] :
         {std::pair{"from", &rule.from()}, std::pair{"to", &rule.to()}}) {
      if (list->empty()) {
        return Invalid(Dot(at, field),
                       "is empty; name members, \"network:NAME\", \"group:NAME\" or \"*\"");
      }
      for (int k = 0; k < list->size(); ++k) {
        const std::string& who = list->Get(k);
        absl::string_view network = who;
        if (who == "*") continue;
        if (absl::string_view group = who; absl::ConsumePrefix(&group, "group:")) {
          // Any group, this one or another, existing or not (yet): its members as they are.
          MESH_RETURN_IF_ERROR(CheckName(NameKind::kGroup, group, At(Dot(at, field), k)));
          continue;
        }
        if (absl::ConsumePrefix(&network, "network:")) {
          if (!networks.contains(network)) {
            return Invalid(
                At(Dot(at, field), k),
                absl::StrCat(Quote(network), " is not a network of group ", Quote(spec.name())));
          }
          continue;
        }
        if (!containers.contains(who)) {
          return Invalid(
              At(Dot(at, field), k),
              absl::StrCat(Quote(who), " is not a container of group ", Quote(spec.name()),
                           "; name a member, \"network:NAME\", \"group:NAME\" or \"*\""));
        }
      }
    }
    for (int k = 0; k < rule.ports_size(); ++k) {
      MESH_RETURN_IF_ERROR(ParsePolicyPort(rule.ports(k), At(Dot(at, "ports"), k)).status());
    }
    if (rule.description().size() > 100 ||
        InvalidUtf8At(rule.description()) != absl::string_view::npos) {
      return Invalid(Dot(at, "description"), "must be at most 100 bytes of UTF-8");
    }
  }
  return absl::OkStatus();
}

// The references of member `i` to networks and containers of its group.
absl::Status CheckMemberReferences(const v1::GroupSpec& spec, int i,
                                   const std::map<absl::string_view, int>& networks,
                                   const std::map<absl::string_view, int>& containers) {
  const v1::GroupContainer& member = spec.containers(i);
  const v1::ContainerSpec& c = member.spec();
  const std::string at = At("spec.containers", i);
  const std::string group = Quote(spec.name());
  for (int j = 0; j < c.networks_size(); ++j) {
    if (!networks.contains(c.networks(j).network())) {
      return Invalid(Dot(At(Dot(at, "spec.networks"), j), "network"),
                     absl::StrCat(Quote(c.networks(j).network()), " is not a network of group ",
                                  group, "; add it to spec.networks or fix the name"));
    }
  }
  if (!c.network_from().empty()) {
    // (The container itself is refused by ValidateContainerSpec.)
    if (!containers.contains(c.network_from())) {
      return Invalid(Dot(at, "spec.network_from"),
                     absl::StrCat(Quote(c.network_from()), " is not a container of group ", group,
                                  "; name a member of the group (short name)"));
    }
  }
  std::map<absl::string_view, int> listed;  // views into `member`
  for (int k = 0; k < member.depends_on_size(); ++k) {
    const v1::Dependency& d = member.depends_on(k);
    const std::string dep = At(Dot(at, "depends_on"), k);
    const std::string name_field = Dot(dep, "container");
    if (d.container() == c.name()) {
      return Invalid(name_field, "names the container itself; a container cannot wait for itself");
    }
    auto target = containers.find(d.container());
    if (target == containers.end()) {
      return Invalid(name_field, absl::StrCat(Quote(d.container()), " is not a container of group ",
                                              group, "; name a member of the group (short name)"));
    }
    if (auto [it, added] = listed.emplace(d.container(), k); !added) {
      return Invalid(name_field, absl::StrCat(Quote(d.container()), " is listed by depends_on[",
                                              it->second, "] already; list each dependency once"));
    }
    if (!v1::Dependency::Condition_IsValid(d.condition())) {
      return Invalid(Dot(dep, "condition"),
                     absl::StrCat(d.condition(),
                                  " is not a condition; use CONDITION_STARTED, "
                                  "CONDITION_HEALTHY or CONDITION_EXITED_OK"));
    }
    if (d.condition() == v1::Dependency::CONDITION_HEALTHY &&
        !spec.containers(target->second).spec().has_health_check()) {
      return Invalid(
          Dot(dep, "condition"),
          absl::StrCat("CONDITION_HEALTHY needs a health check, and ", Quote(d.container()),
                       " has none; add one to ", At("spec.containers", target->second),
                       ".spec.health_check or wait for CONDITION_STARTED"));
    }
  }
  return absl::OkStatus();
}

struct SignalEntry {
  absl::string_view name;
  int number;
};
// Canonical names first: SignalName takes the first entry of a number.
constexpr SignalEntry kSignals[] = {
    {"HUP", SIGHUP},
    {"INT", SIGINT},
    {"QUIT", SIGQUIT},
    {"ILL", SIGILL},
    {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT},
    {"BUS", SIGBUS},
    {"FPE", SIGFPE},
    {"KILL", SIGKILL},
    {"USR1", SIGUSR1},
    {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},
    {"ALRM", SIGALRM},
    {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},
    {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},
    {"URG", SIGURG},
    {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},
    {"IO", SIGIO},
    {"PWR", SIGPWR},
    {"SYS", SIGSYS},
    // Other names of the same signals.
    {"IOT", SIGIOT},
    {"CLD", SIGCHLD},
    {"POLL", SIGPOLL},
};

// "12" -> 12 for one to three digits only (SimpleAtoi would also take "+12" and " 12").
std::optional<int> SmallNumber(absl::string_view text) {
  int n = 0;
  if (text.empty() || text.size() > 3 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(text, &n)) {
    return std::nullopt;
  }
  return n;
}

}  // namespace

std::string MemberName(absl::string_view group, absl::string_view name) {
  return absl::StrCat(group, "-", name);
}

absl::Status ValidateLabels(const v1::Labels& labels, absl::string_view field) {
  // Sorted, so that the same labels always give the same first error.
  std::map<absl::string_view, absl::string_view> sorted;
  for (const auto& [key, value] : labels.labels()) sorted.emplace(key, value);
  for (const auto& [key, value] : sorted) {
    const std::string at = absl::StrCat(field, ".labels[", Quote(key), "]");
    const bool key_ok = !key.empty() && key.size() <= kMaxLabelKeyLength &&
                        std::all_of(key.begin(), key.end(), [](char c) {
                          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                                 c == '-' || c == '_' || c == '/';
                        });
    if (!key_ok) {
      return Invalid(
          at, absl::StrCat("key ", Quote(key), " is not a label key; use 1 to ", kMaxLabelKeyLength,
                           " characters of a-z, 0-9, '.', '-', '_' and '/'"));
    }
    MESH_RETURN_IF_ERROR(CheckText(value, at, kMaxLabelValueBytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateContainerSpec(const v1::ContainerSpec& spec, absl::string_view field) {
  MESH_RETURN_IF_ERROR(CheckName(NameKind::kContainer, spec.name(), Dot(field, "name")));
  const std::string image = Dot(field, "image");
  if (spec.image().empty()) {
    return Invalid(image, "is empty; name an image of the image store, such as \"busybox\"");
  }
  MESH_RETURN_IF_ERROR(CheckText(spec.image(), image, kMaxImageBytes));
  MESH_RETURN_IF_ERROR(CheckArgv(spec.entrypoint(), Dot(field, "entrypoint")));
  MESH_RETURN_IF_ERROR(CheckProgram(spec.entrypoint(), Dot(field, "entrypoint")));
  MESH_RETURN_IF_ERROR(CheckArgv(spec.args(), Dot(field, "args")));
  MESH_RETURN_IF_ERROR(CheckEnv(spec.env(), Dot(field, "env")));
  if (!spec.working_dir().empty()) {
    MESH_RETURN_IF_ERROR(CheckAbsolutePath(spec.working_dir(), Dot(field, "working_dir"), "/app"));
  }
  if (!spec.user().empty()) MESH_RETURN_IF_ERROR(CheckUser(spec.user(), Dot(field, "user")));
  if (!spec.hostname().empty()) {
    MESH_RETURN_IF_ERROR(CheckHostname(spec.hostname(), Dot(field, "hostname")));
  }
  MESH_RETURN_IF_ERROR(ValidateLabels(spec.labels(), Dot(field, "labels")));
  MESH_RETURN_IF_ERROR(CheckNetworks(spec.networks(), Dot(field, "networks")));
  if (!spec.network_from().empty()) {
    const std::string from = Dot(field, "network_from");
    MESH_RETURN_IF_ERROR(CheckName(NameKind::kContainer, spec.network_from(), from));
    if (spec.network_from() == spec.name()) {
      return Invalid(from,
                     "names the container itself; name the container whose network "
                     "namespace to share");
    }
    if (!spec.networks().empty()) {
      return Invalid(Dot(field, "networks"),
                     absl::StrCat("must be empty with network_from (the networks are those of ",
                                  Quote(spec.network_from()), "); remove them or network_from"));
    }
    if (!spec.ports().empty()) {
      return Invalid(Dot(field, "ports"),
                     absl::StrCat("must be empty with network_from (publish them on ",
                                  Quote(spec.network_from()), "); remove them or network_from"));
    }
  }
  MESH_RETURN_IF_ERROR(ToPortMappings(spec.ports(), Dot(field, "ports")).status());
  if (!spec.ports().empty() && spec.networks().empty()) {
    return Invalid(Dot(field, "ports"), "needs a network to forward to; add one to networks");
  }
  MESH_RETURN_IF_ERROR(ToStaticRoutes(spec.routes(), Dot(field, "routes")).status());
  if (!spec.routes().empty() && !spec.network_from().empty()) {
    return Invalid(Dot(field, "routes"),
                   absl::StrCat("the network namespace is ", Quote(spec.network_from()),
                                "'s (network_from); give the routes there"));
  }
  if (!spec.routes().empty() && spec.networks().empty()) {
    return Invalid(Dot(field, "routes"), "needs a network for the next hops; add one to networks");
  }
  MESH_RETURN_IF_ERROR(CheckMounts(spec.mounts(), Dot(field, "mounts")));
  MESH_RETURN_IF_ERROR(CheckResources(spec.resources(), Dot(field, "resources")));
  MESH_RETURN_IF_ERROR(CheckRestart(spec.restart(), Dot(field, "restart")));
  if (spec.has_health_check()) {
    MESH_RETURN_IF_ERROR(CheckHealthCheck(spec.health_check(), Dot(field, "health_check")));
  }
  MESH_RETURN_IF_ERROR(CheckCapabilities(spec.cap_add(), Dot(field, "cap_add")));
  MESH_RETURN_IF_ERROR(CheckCapabilities(spec.cap_drop(), Dot(field, "cap_drop")));
  if (spec.userns_host_base() > kMaxUsernsHostBase) {
    return Invalid(
        Dot(field, "userns_host_base"),
        absl::StrCat(spec.userns_host_base(), " + ", kUsernsSize,
                     " ids runs past host id 4294967294; give at most ", kMaxUsernsHostBase));
  }
  if (spec.has_stop_timeout()) {
    MESH_RETURN_IF_ERROR(CheckDurationAtLeast(spec.stop_timeout(), absl::ZeroDuration(),
                                              Dot(field, "stop_timeout"),
                                              "give 0 or more, or leave it unset for 10s"));
  }
  if (spec.log_max_files() > kMaxLogFiles) {
    return Invalid(Dot(field, "log_max_files"),
                   absl::StrCat(spec.log_max_files(), " is more than ", kMaxLogFiles,
                                "; keep at most ", kMaxLogFiles, " files, or 0 for 3"));
  }
  // Sorted, so that the same sysctls always give the same first error.
  const std::map<std::string, std::string> sysctls(spec.sysctls().begin(), spec.sysctls().end());
  for (const auto& [name, value] : sysctls) {
    const std::string at = absl::StrCat(field, ".sysctls[", Quote(name), "]");
    absl::StatusOr<runtime::SysctlNamespace> ns = runtime::ValidateSysctl(name, value);
    if (!ns.ok()) return Invalid(at, ns.status().message());
    if (*ns == runtime::SysctlNamespace::kNetwork && !spec.network_from().empty()) {
      return Invalid(at,
                     absl::StrCat("a net.* sysctl, but the network namespace is ",
                                  Quote(spec.network_from()), "'s (network_from); set it there"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateNetworkSpec(const v1::NetworkSpec& spec, absl::string_view field) {
  MESH_RETURN_IF_ERROR(CheckName(NameKind::kNetwork, spec.name(), Dot(field, "name")));
  std::optional<IpPrefix> subnet;
  if (!spec.subnet().empty()) {
    const std::string at = Dot(field, "subnet");
    absl::StatusOr<IpPrefix> parsed = IpPrefix::Parse(spec.subnet());
    if (!parsed.ok()) {
      return InvalidWithHint(at, parsed.status(), "give an IPv4 CIDR such as \"10.89.0.0/24\"");
    }
    if (parsed->family() != netplane::ipam::Family::kV4) {
      return Invalid(at, absl::StrCat(Quote(spec.subnet()),
                                      " is IPv6; networks are IPv4 for now, "
                                      "give a subnet such as \"10.89.0.0/24\""));
    }
    if (parsed->length() < kMinPrefixLength || parsed->length() > kMaxPrefixLength) {
      return Invalid(at,
                     absl::StrCat(Quote(spec.subnet()), " has prefix length ", parsed->length(),
                                  "; give one from ", kMinPrefixLength, " to ", kMaxPrefixLength));
    }
    subnet = *parsed;
  }
  if (!spec.gateway().empty()) {
    const std::string at = Dot(field, "gateway");
    if (!subnet) {
      return Invalid(at,
                     "needs a subnet to be inside of; set subnet too, or leave the gateway "
                     "empty for the subnet's first address");
    }
    MESH_ASSIGN_OR_RETURN(IpAddress gateway,
                          ParseIpv4(spec.gateway(), at, "give an IPv4 address of the subnet"));
    // netplane's own rule (inside the subnet, neither its network nor broadcast address).
    if (absl::Status pool = netplane::ipam::Pool::Create(*subnet, gateway).status(); !pool.ok()) {
      return InvalidWithHint(at, pool,
                             "give an address inside the subnet other than its first and last, "
                             "or leave it empty for the first host address");
    }
  }
  if (spec.mtu() != 0 && (spec.mtu() < kMinMtu || spec.mtu() > kMaxMtu)) {
    return Invalid(Dot(field, "mtu"),
                   absl::StrCat(spec.mtu(), " is outside ", kMinMtu, " to ", kMaxMtu,
                                "; give one in range, or 0 for ", kDefaultMtu));
  }
  return ValidateLabels(spec.labels(), Dot(field, "labels"));
}

absl::Status ValidateGroupSpec(const v1::GroupSpec& spec) {
  MESH_RETURN_IF_ERROR(CheckName(NameKind::kGroup, spec.name(), "spec.name"));
  MESH_RETURN_IF_ERROR(ValidateLabels(spec.labels(), "spec.labels"));
  // Short name -> index, for each kind; views into `spec`.
  std::map<absl::string_view, int> networks;
  for (int i = 0; i < spec.networks_size(); ++i) {
    const std::string at = At("spec.networks", i);
    MESH_RETURN_IF_ERROR(ValidateNetworkSpec(spec.networks(i), at));
    MESH_RETURN_IF_ERROR(AddMemberName(spec.name(), spec.networks(i).name(), NameKind::kNetwork,
                                       Dot(at, "name"), "spec.networks", i, networks));
  }
  std::map<absl::string_view, int> containers;
  for (int i = 0; i < spec.containers_size(); ++i) {
    const std::string at = Dot(At("spec.containers", i), "spec");
    // Routes through links are the links' (they need no network of the member's own).
    MESH_RETURN_IF_ERROR(
        ToStaticRoutes(spec.containers(i).spec().routes(), Dot(at, "routes")).status());
    MESH_RETURN_IF_ERROR(
        ValidateContainerSpec(WithoutLinkRoutes(spec, spec.containers(i).spec()), at));
    MESH_RETURN_IF_ERROR(AddMemberName(spec.name(), spec.containers(i).spec().name(),
                                       NameKind::kContainer, Dot(at, "name"), "spec.containers", i,
                                       containers));
  }
  for (int i = 0; i < spec.containers_size(); ++i) {
    MESH_RETURN_IF_ERROR(CheckMemberReferences(spec, i, networks, containers));
  }
  MESH_RETURN_IF_ERROR(CheckLinks(spec, containers));
  MESH_RETURN_IF_ERROR(CheckPolicy(spec, networks, containers));
  if (std::vector<int> cycle = FindCycle(DependencyGraph(spec)); !cycle.empty()) {
    // A long cycle is cut in the middle: its start and end say where to look.
    constexpr size_t kMaxShown = 16;
    std::vector<absl::string_view> names;
    for (size_t k = 0; k < cycle.size(); ++k) {
      if (cycle.size() > kMaxShown && k == kMaxShown - 2) {
        names.push_back("...");
        k = cycle.size() - 2;
      }
      names.push_back(spec.containers(cycle[k]).spec().name());
    }
    return Invalid(At("spec.containers", cycle.front()),
                   absl::StrCat("dependency cycle ", absl::StrJoin(names, " -> "),
                                " (depends_on and network_from); remove one of its "
                                "dependencies"));
  }
  return absl::OkStatus();
}

absl::Status ValidateExecStart(const v1::ExecStart& start, absl::string_view field) {
  const std::string args = Dot(field, "args");
  if (start.args().empty()) return Invalid(args, "is empty; give the command to run");
  MESH_RETURN_IF_ERROR(CheckArgv(start.args(), args));
  MESH_RETURN_IF_ERROR(CheckProgram(start.args(), args));
  MESH_RETURN_IF_ERROR(CheckEnv(start.env(), Dot(field, "env")));
  if (!start.working_dir().empty()) {
    MESH_RETURN_IF_ERROR(CheckAbsolutePath(start.working_dir(), Dot(field, "working_dir"), "/app"));
  }
  if (!start.user().empty()) MESH_RETURN_IF_ERROR(CheckUser(start.user(), Dot(field, "user")));
  return absl::OkStatus();
}

absl::Status ValidateConnectRequest(const v1::ConnectRequest& request) {
  if (!request.ip().empty()) {
    MESH_RETURN_IF_ERROR(ParseIpv4(request.ip(), "ip",
                                   "give an IPv4 address of the network's subnet "
                                   "(\"10.88.0.5\"), or leave it empty for the next free one")
                             .status());
  }
  for (int i = 0; i < request.aliases_size(); ++i) {
    MESH_RETURN_IF_ERROR(CheckDnsName(request.aliases(i), At("aliases", i)));
  }
  return absl::OkStatus();
}

absl::Status ValidateImportSource(const v1::ImportSource& source, absl::string_view field) {
  if (source.source_case() == v1::ImportSource::kHostPath) {
    MESH_RETURN_IF_ERROR(
        CheckAbsolutePath(source.host_path(), Dot(field, "host_path"), "/srv/images/app.tar"));
  }
  return absl::OkStatus();
}

std::vector<int> DependencyOrder(const v1::GroupSpec& spec) {
  const std::vector<std::vector<int>> deps = DependencyGraph(spec);
  const int n = static_cast<int>(deps.size());
  std::vector<size_t> waiting(n);
  std::vector<std::vector<int>> dependents(n);
  for (int i = 0; i < n; ++i) {
    waiting[i] = deps[i].size();
    for (int d : deps[i]) dependents[d].push_back(i);
  }
  // Kahn's algorithm taking the smallest ready index first: spec order wherever the
  // dependencies leave a choice.
  std::set<int> ready;
  for (int i = 0; i < n; ++i) {
    if (waiting[i] == 0) ready.insert(i);
  }
  std::vector<int> order;
  std::vector<bool> placed(n, false);
  while (!ready.empty()) {
    const int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    placed[i] = true;
    for (int d : dependents[i]) {
      if (--waiting[d] == 0) ready.insert(d);
    }
  }
  for (int i = 0; i < n; ++i) {
    if (!placed[i]) order.push_back(i);  // in or behind a cycle
  }
  return order;
}

absl::StatusOr<runtime::ContainerSpec> ToRuntimeSpec(const v1::ContainerSpec& spec,
                                                     const runtime::image::ImageConfig& image) {
  MESH_RETURN_IF_ERROR(ValidateContainerSpec(spec));
  runtime::ContainerSpec out;
  out.id = spec.name();
  out.hostname = spec.hostname().empty() ? spec.name() : spec.hostname();
  out.image = spec.image();

  // Docker's rule: an entrypoint of the spec replaces the image's and drops the image's cmd.
  std::vector<std::string>& args = out.process.args;
  if (!spec.entrypoint().empty()) {
    args.assign(spec.entrypoint().begin(), spec.entrypoint().end());
    args.insert(args.end(), spec.args().begin(), spec.args().end());
  } else {
    args = image.entrypoint;
    if (!spec.args().empty()) {
      args.insert(args.end(), spec.args().begin(), spec.args().end());
    } else {
      args.insert(args.end(), image.cmd.begin(), image.cmd.end());
    }
  }
  if (args.empty()) {
    return Invalid(
        "spec.args",
        absl::StrCat("no command: the spec has no entrypoint or args and image ",
                     Quote(spec.image()), " has no Entrypoint or Cmd; give the command to run"));
  }

  // Each key once, where it first appears (the image's order), with the last value given.
  std::map<absl::string_view, size_t> position;  // views into `image` and `spec`
  auto set_env = [&](const std::string& entry) {
    auto [it, added] = position.emplace(EnvKey(entry), out.process.env.size());
    if (added) {
      out.process.env.push_back(entry);
    } else {
      out.process.env[it->second] = entry;
    }
  };
  for (const std::string& e : image.env) set_env(e);
  for (const std::string& e : spec.env()) set_env(e);

  out.process.cwd = spec.working_dir().empty() ? image.working_dir : spec.working_dir();
  out.process.terminal = spec.tty();
  if (!spec.user().empty()) out.user = spec.user();
  out.readonly_root = spec.read_only_root();

  for (const v1::Mount& m : spec.mounts()) {
    runtime::Mount& mount = out.mounts.emplace_back();
    mount.destination = m.destination();
    if (m.type() == v1::Mount::TYPE_TMPFS) {
      mount.type = "tmpfs";
      mount.source = "tmpfs";
      if (m.tmpfs_size_bytes() > 0)
        mount.options.push_back(absl::StrCat("size=", m.tmpfs_size_bytes()));
    } else {
      // Recursive, as Docker binds: what is mounted below the source comes along.
      mount.type = "bind";
      mount.source = m.source();
      mount.options.push_back("rbind");
    }
    if (m.read_only()) mount.options.push_back("ro");
  }

  const v1::Resources& r = spec.resources();
  if (r.memory_bytes() > 0) out.resources.memory_limit = r.memory_bytes();
  if (r.cpus() > 0) {
    out.resources.cpu_period = kCpuPeriodUs;
    out.resources.cpu_quota = std::llround(r.cpus() * static_cast<double>(kCpuPeriodUs));
  }
  if (r.pids() > 0) out.resources.pids_limit = r.pids();

  const std::vector<std::string> cap_add(spec.cap_add().begin(), spec.cap_add().end());
  const std::vector<std::string> cap_drop(spec.cap_drop().begin(), spec.cap_drop().end());
  absl::StatusOr<runtime::CapabilitySets> caps =
      runtime::security::ContainerCapabilities(runtime::DefaultCapabilities(), cap_add, cap_drop);
  if (!caps.ok()) return Annotate(caps.status(), "spec");
  out.process.capabilities = *std::move(caps);
  out.privileged = spec.privileged();
  out.init = spec.init();

  if (spec.userns_host_base() != 0) {
    out.namespaces.push_back({runtime::NamespaceType::kUser, ""});
    const runtime::IdMapping map{
        .container_id = 0, .host_id = spec.userns_host_base(), .size = kUsernsSize};
    out.uid_mappings = {map};
    out.gid_mappings = {map};
  }

  if (spec.log_max_bytes() > 0) out.log.max_size = spec.log_max_bytes();
  if (spec.log_max_files() > 0) out.log.max_files = static_cast<int>(spec.log_max_files());
  out.sysctls.insert(spec.sysctls().begin(), spec.sysctls().end());
  return out;
}

absl::StatusOr<netplane::NetworkConfig> ToNetworkConfig(const v1::NetworkSpec& spec) {
  MESH_RETURN_IF_ERROR(ValidateNetworkSpec(spec));
  netplane::NetworkConfig config;
  config.name = spec.name();
  // Validated above: both parse.
  if (!spec.subnet().empty()) config.subnet = *IpPrefix::Parse(spec.subnet());
  if (!spec.gateway().empty()) config.gateway = *IpAddress::Parse(spec.gateway());
  config.mtu = spec.mtu() == 0 ? kDefaultMtu : static_cast<int>(spec.mtu());
  config.internal = spec.internal();
  config.nat = !spec.internal() && !spec.disable_nat();
  return config;
}

std::optional<netplane::EgressLimit> ToEgressLimit(uint64_t rate_bps, uint64_t burst_bytes) {
  if (rate_bps == 0) return std::nullopt;
  netplane::EgressLimit limit{rate_bps, burst_bytes};
  if (limit.burst_bytes == 0) {
    limit.burst_bytes = std::max<uint64_t>(limit.rate_bps / 8 / 50, 32768);
  }
  return limit;
}

std::optional<netplane::EgressLimit> ToEgressLimit(const v1::NetworkAttachment& attachment) {
  return ToEgressLimit(attachment.egress_rate_bps(), attachment.egress_burst_bytes());
}

std::string LinkName(const v1::Link& link) {
  std::vector<std::string> ends;
  for (const v1::LinkEndpoint& e : link.endpoints()) {
    ends.push_back(absl::StrCat(e.container(), ":", e.interface()));
  }
  return absl::StrJoin(ends, "--");
}

std::optional<std::pair<int, int>> LinkEndOfRoute(const v1::GroupSpec& spec,
                                                  absl::string_view member, const IpAddress& via) {
  for (int i = 0; i < spec.links_size(); ++i) {
    for (int e = 0; e < spec.links(i).endpoints_size(); ++e) {
      const v1::LinkEndpoint& end = spec.links(i).endpoints(e);
      if (end.container() != member) continue;
      for (const std::string& text : end.addresses()) {
        absl::StatusOr<netplane::ipam::InterfaceAddress> a =
            netplane::ipam::InterfaceAddress::Parse(text);
        if (a.ok() && a->subnet().Contains(via) && a->address != via) return std::make_pair(i, e);
      }
    }
  }
  return std::nullopt;
}

bool RoutesThroughLink(const v1::GroupSpec& spec, absl::string_view member,
                       const v1::Route& route) {
  absl::StatusOr<IpAddress> via = IpAddress::Parse(route.via());
  return via.ok() && LinkEndOfRoute(spec, member, *via).has_value();
}

v1::ContainerSpec WithoutLinkRoutes(const v1::GroupSpec& spec, const v1::ContainerSpec& member) {
  v1::ContainerSpec out = member;
  auto* routes = out.mutable_routes();
  routes->erase(
      std::remove_if(routes->begin(), routes->end(),
                     [&](const v1::Route& r) { return RoutesThroughLink(spec, member.name(), r); }),
      routes->end());
  return out;
}

std::string PolicyRuleText(const v1::GroupSpec& spec, int index) {
  const v1::PolicyRule& rule = spec.policy().rules(index);
  std::string text = rule.description();
  if (text.empty()) {
    text = absl::StrCat(rule.action() == v1::PolicyRule::ACTION_ALLOW ? "allow " : "deny ",
                        absl::StrJoin(rule.from(), ","), " -> ", absl::StrJoin(rule.to(), ","),
                        rule.ports().empty() ? "" : " ", absl::StrJoin(rule.ports(), ","));
  }
  return absl::StrCat("policy ", spec.name(), " rule ", index + 1, ": ", text);
}

std::set<std::string> PolicyGroups(const v1::GroupSpec& spec) {
  std::set<std::string> out;
  for (const v1::PolicyRule& rule : spec.policy().rules()) {
    for (const auto* list : {&rule.from(), &rule.to()}) {
      for (const std::string& who : *list) {
        absl::string_view group = who;
        if (absl::ConsumePrefix(&group, "group:") && group != spec.name()) {
          out.emplace(group);
        }
      }
    }
  }
  return out;
}

absl::StatusOr<netplane::nft::PolicyEntry> ToPolicy(const v1::GroupSpec& spec,
                                                    const MemberAddresses& addresses,
                                                    const GroupAddresses& groups) {
  netplane::nft::PolicyEntry out;
  out.group = spec.name();
  out.default_deny = spec.policy().default_action() == v1::Policy::DEFAULT_DENY;
  auto resolve = [&](const google::protobuf::RepeatedPtrField<std::string>& who) {
    std::vector<in_addr> list;
    auto add = [&list](absl::string_view ip) {
      absl::StatusOr<IpAddress> a = IpAddress::Parse(ip);
      if (a.ok() && a->is_v4()) list.push_back(netplane::ipam::ToInAddr(*a));
    };
    for (const std::string& w : who) {
      absl::string_view group = w;
      const bool by_group = absl::ConsumePrefix(&group, "group:");
      if (by_group && group != spec.name()) {
        if (auto it = groups.find(group); it != groups.end()) {
          for (const std::string& ip : it->second) add(ip);
        }
        continue;
      }
      absl::string_view network = w;
      const bool by_network = absl::ConsumePrefix(&network, "network:");
      for (const auto& [member, on] : addresses) {
        if (!by_network && !by_group && w != "*" && w != member) continue;
        for (const auto& [net, ip] : on) {
          if (by_network && net != network) continue;
          add(ip);
        }
      }
    }
    return list;
  };
  for (int i = 0; i < spec.policy().rules_size(); ++i) {
    const v1::PolicyRule& rule = spec.policy().rules(i);
    netplane::nft::PolicyRuleEntry& r = out.rules.emplace_back();
    r.allow = rule.action() == v1::PolicyRule::ACTION_ALLOW;
    r.from = resolve(rule.from());
    r.to = resolve(rule.to());
    for (int k = 0; k < rule.ports_size(); ++k) {
      MESH_ASSIGN_OR_RETURN(
          auto port,
          ParsePolicyPort(rule.ports(k), At(Dot(At("spec.policy.rules", i), "ports"), k)));
      if (port.second) {
        r.ports.emplace_back(port.first, *port.second);
      } else {
        r.protocols.push_back(port.first);
      }
    }
    // nftables keeps 128 bytes of a comment: cut there, not inside a UTF-8 character.
    const std::string text = PolicyRuleText(spec, i);
    size_t keep = std::min<size_t>(text.size(), 128);
    while (keep > 0 && keep < text.size() &&
           (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) {
      --keep;
    }
    r.comment = text.substr(0, keep);
  }
  if (out.default_deny) {
    google::protobuf::RepeatedPtrField<std::string> everyone;
    *everyone.Add() = "*";
    out.members = resolve(everyone);
  }
  return out;
}

absl::StatusOr<netplane::LinkConfig> ToLinkConfig(
    const v1::GroupSpec& spec, int index,
    const std::function<std::string(const std::string&)>& netns_of) {
  const v1::Link& link = spec.links(index);
  const std::string at = At("spec.links", index);
  if (link.endpoints_size() != 2) {
    return Invalid(Dot(at, "endpoints"), "a link has exactly two endpoints");
  }
  netplane::LinkConfig out;
  out.id = absl::StrCat(spec.name(), "/", LinkName(link));
  for (int e = 0; e < 2; ++e) {
    const v1::LinkEndpoint& end = link.endpoints(e);
    const std::string end_at = At(Dot(at, "endpoints"), e);
    netplane::LinkEnd& to = out.ends[static_cast<size_t>(e)];
    to.container_id = MemberName(spec.name(), end.container());
    to.netns_path = netns_of(to.container_id);
    to.ifname = end.interface();
    const uint32_t mtu = end.mtu() != 0 ? end.mtu() : link.mtu();
    to.mtu = mtu == 0 ? kDefaultMtu : static_cast<int>(mtu);
    for (int k = 0; k < end.addresses_size(); ++k) {
      absl::StatusOr<netplane::ipam::InterfaceAddress> a =
          netplane::ipam::InterfaceAddress::Parse(end.addresses(k));
      if (!a.ok()) {
        return InvalidWithHint(At(Dot(end_at, "addresses"), k), a.status(),
                               "give an address with its prefix length, e.g. \"10.0.12.1/30\"");
      }
      to.addresses.push_back(*a);
    }
    to.egress = ToEgressLimit(end.egress_rate_bps(), end.egress_burst_bytes());
  }
  // The members' routes through this link's ends.
  for (int i = 0; i < spec.containers_size(); ++i) {
    const v1::ContainerSpec& c = spec.containers(i).spec();
    for (const v1::Route& r : c.routes()) {
      absl::StatusOr<IpAddress> via = IpAddress::Parse(r.via());
      if (!via.ok()) continue;
      std::optional<std::pair<int, int>> owner = LinkEndOfRoute(spec, c.name(), *via);
      if (!owner || owner->first != index) continue;
      google::protobuf::RepeatedPtrField<v1::Route> one;
      *one.Add() = r;
      MESH_ASSIGN_OR_RETURN(std::vector<netplane::StaticRoute> routes,
                            ToStaticRoutes(one, Dot(At("spec.containers", i), "spec.routes")));
      out.ends[static_cast<size_t>(owner->second)].routes.push_back(routes[0]);
    }
  }
  return out;
}

absl::StatusOr<std::vector<netplane::StaticRoute>> ToStaticRoutes(
    const RepeatedPtrField<v1::Route>& routes, absl::string_view field) {
  std::vector<netplane::StaticRoute> out;
  std::map<IpPrefix, int> seen;
  for (int i = 0; i < routes.size(); ++i) {
    const v1::Route& r = routes[i];
    const std::string at = At(field, i);
    netplane::StaticRoute& route = out.emplace_back();
    if (r.destination() == "default") {
      route.destination = IpPrefix();  // 0.0.0.0/0
    } else {
      absl::StatusOr<IpPrefix> parsed = IpPrefix::Parse(r.destination());
      if (parsed.ok() && parsed->family() != netplane::ipam::Family::kV4) {
        parsed = absl::InvalidArgumentError(absl::StrCat(Quote(r.destination()), " is IPv6"));
      }
      if (!parsed.ok()) {
        return InvalidWithHint(Dot(at, "destination"), parsed.status(),
                               "give an IPv4 subnet such as \"10.77.2.0/24\", or \"default\"");
      }
      route.destination = *parsed;
    }
    MESH_ASSIGN_OR_RETURN(route.via,
                          ParseIpv4(r.via(), Dot(at, "via"),
                                    "give the IPv4 address of the next hop, on one of the "
                                    "container's networks"));
    if (auto [it, added] = seen.emplace(route.destination, i); !added) {
      return Invalid(Dot(at, "destination"),
                     absl::StrCat(Quote(r.destination()), " has a route already (",
                                  At(field, it->second), "); give each destination one route"));
    }
  }
  return out;
}

absl::StatusOr<std::vector<netplane::PortMapping>> ToPortMappings(
    const RepeatedPtrField<v1::PortMapping>& ports, absl::string_view field) {
  std::vector<netplane::PortMapping> out;
  out.reserve(ports.size());
  std::map<PortKey, PortUsers> users;
  for (int i = 0; i < ports.size(); ++i) {
    const v1::PortMapping& p = ports[i];
    const std::string at = At(field, i);
    netplane::PortMapping& m = out.emplace_back();
    switch (p.protocol()) {
      case v1::PROTOCOL_UNSPECIFIED:
      case v1::PROTOCOL_TCP:
        m.protocol = netplane::Protocol::kTcp;
        break;
      case v1::PROTOCOL_UDP:
        m.protocol = netplane::Protocol::kUdp;
        break;
      default:
        return Invalid(Dot(at, "protocol"), absl::StrCat(static_cast<int>(p.protocol()),
                                                         " is not a protocol; use PROTOCOL_TCP "
                                                         "or PROTOCOL_UDP"));
    }
    MESH_RETURN_IF_ERROR(CheckPort(p.host_port(), Dot(at, "host_port")));
    MESH_RETURN_IF_ERROR(CheckPort(p.container_port(), Dot(at, "container_port")));
    m.host_port = static_cast<uint16_t>(p.host_port());
    m.container_port = static_cast<uint16_t>(p.container_port());
    if (!p.host_ip().empty()) {
      MESH_ASSIGN_OR_RETURN(m.host_address,
                            ParseIpv4(p.host_ip(), Dot(at, "host_ip"),
                                      "give an IPv4 address of the host, or leave it empty for "
                                      "every address"));
    }
    PortUsers& same = users[PortKey{m.protocol, m.host_port}];
    std::optional<int> clash = same.any_address;
    if (!clash && !m.host_address && !same.addresses.empty()) {
      clash = same.addresses.begin()->second;
    }
    if (!clash && m.host_address) {
      if (auto it = same.addresses.find(*m.host_address); it != same.addresses.end()) {
        clash = it->second;
      }
    }
    if (clash) {
      return Invalid(at, absl::StrCat(m.ToString(), " uses the host port of ", At(field, *clash),
                                      " (", out[*clash].ToString(),
                                      "); publish each host port once per protocol and address"));
    }
    if (m.host_address) {
      same.addresses.emplace(*m.host_address, i);
    } else {
      same.any_address = i;
    }
  }
  return out;
}

absl::StatusOr<int> ParseSignal(absl::string_view name) {
  if (name.empty()) return SIGKILL;
  auto unknown = [name] {
    return absl::InvalidArgumentError(
        absl::StrCat("signal ", Quote(name),
                     " is not known; use a name (\"SIGTERM\", \"TERM\", "
                     "\"term\") or a number from 1 to ",
                     kMaxSignal));
  };
  if (std::optional<int> number = SmallNumber(name)) {
    if (*number < 1 || *number > kMaxSignal) return unknown();
    return *number;
  }
  const std::string upper = absl::AsciiStrToUpper(name);
  absl::string_view bare = upper;
  absl::ConsumePrefix(&bare, "SIG");
  for (const SignalEntry& s : kSignals) {
    if (s.name == bare) return s.number;
  }
  // RTMIN, RTMIN+n, RTMAX, RTMAX-n.
  for (const auto& [prefix, base, sign] :
       {std::tuple{"RTMIN", kRtMin, '+'}, std::tuple{"RTMAX", kRtMax, '-'}}) {
    absl::string_view rest = bare;
    if (!absl::ConsumePrefix(&rest, prefix)) continue;
    if (rest.empty()) return base;
    if (rest.front() != sign) return unknown();
    std::optional<int> offset = SmallNumber(rest.substr(1));
    if (!offset) return unknown();
    const int number = sign == '+' ? base + *offset : base - *offset;
    if (number < kRtMin || number > kRtMax) return unknown();
    return number;
  }
  return unknown();
}

std::string SignalName(int signal) {
  for (const SignalEntry& s : kSignals) {
    if (s.number == signal) return absl::StrCat("SIG", s.name);
  }
  if (signal == kRtMin) return "SIGRTMIN";
  if (signal == kRtMax) return "SIGRTMAX";
  if (signal > kRtMin && signal < kRtMax) {
    // As kill -l names them: RTMIN+1 to RTMIN+15, then RTMAX-14 to RTMAX-1.
    if (signal - kRtMin <= (kRtMax - kRtMin) / 2) return absl::StrCat("SIGRTMIN+", signal - kRtMin);
    return absl::StrCat("SIGRTMAX-", kRtMax - signal);
  }
  return absl::StrCat(signal);
}

absl::Status ValidateDuration(const google::protobuf::Duration& duration, absl::string_view field) {
  const int64_t seconds = duration.seconds();
  const int32_t nanos = duration.nanos();
  if (seconds < -kMaxDurationSeconds || seconds > kMaxDurationSeconds) {
    return Invalid(field, absl::StrCat("seconds ", seconds,
                                       " is out of range; a duration is at "
                                       "most ",
                                       kMaxDurationSeconds, " seconds (10000 years)"));
  }
  if (nanos < -kMaxNanos || nanos > kMaxNanos) {
    return Invalid(field, absl::StrCat("nanos ", nanos, " is out of range; give -", kMaxNanos,
                                       " to ", kMaxNanos, " and carry the rest into seconds"));
  }
  if ((seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
    return Invalid(field, absl::StrCat("seconds ", seconds, " and nanos ", nanos,
                                       " have different signs; give both with the same sign"));
  }
  return absl::OkStatus();
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

google::protobuf::Duration ToProtoDuration(absl::Duration duration) {
  const absl::Duration max = absl::Seconds(kMaxDurationSeconds) + absl::Nanoseconds(kMaxNanos);
  duration = std::clamp(duration, -max, max);
  absl::Duration rest;
  const int64_t seconds = absl::IDivDuration(duration, absl::Seconds(1), &rest);  // toward 0
  google::protobuf::Duration out;
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(rest)));
  return out;
}

absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

google::protobuf::Timestamp ToProtoTimestamp(absl::Time time) {
  time = std::clamp(time, absl::FromUnixSeconds(kMinTimestampSeconds),
                    absl::FromUnixSeconds(kMaxTimestampSeconds) + absl::Nanoseconds(kMaxNanos));
  const int64_t seconds = absl::ToUnixSeconds(time);  // rounded down: nanos are never negative
  google::protobuf::Timestamp out;
  out.set_seconds(seconds);
  out.set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
  return out;
}

}  // namespace mesh::agent
