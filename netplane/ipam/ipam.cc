#include "netplane/ipam/ipam.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/names.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"

namespace mesh::netplane::ipam {
namespace {

using ::nlohmann::json;

constexpr int kFormatVersion = 1;
constexpr absl::string_view kPoolFileSuffix = ".json";
constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;

std::string QuoteNetwork(absl::string_view network) {
  return absl::StrCat("network \"", network, "\"");
}

absl::Status DataLoss(absl::string_view message) { return absl::DataLossError(message); }

// mkdir -p: each missing component is created with `mode`.
absl::Status MakeDirs(const std::string& dir, mode_t mode) {
  for (size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    std::string part = dir.substr(0, end);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, absl::StrCat("create directory \"", part, "\""));
    }
    if (end == std::string::npos) break;
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("stat \"", dir, "\""));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("\"", dir, "\" is not a directory"));
  }
  return absl::OkStatus();
}

// Makes a directory entry change (unlink) durable, as WriteFileAtomically does for renames.
absl::Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("fsync directory \"", dir, "\""));
  }
  return absl::OkStatus();
}

// The value of `key` in `object`, parsed as an address; DataLoss naming the key otherwise.
absl::StatusOr<IpAddress> AddressField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return DataLoss(absl::StrCat("\"", key, "\" must be a string holding an IP address"));
  }
  absl::StatusOr<IpAddress> address = IpAddress::Parse(it->get_ref<const std::string&>());
  if (!address.ok()) return DataLoss(absl::StrCat("\"", key, "\": ", address.status().message()));
  return address;
}

}  // namespace

std::string PoolToJson(const Pool& pool) {
  json leases = json::object();
  for (const auto& [address, owner] : pool.leases()) leases[address.ToString()] = owner;
  // nlohmann::json objects are std::maps, so keys come out sorted: the same pool always
  // serializes to the same bytes. Owners are printable ASCII (Pool checks), so dump() cannot
  // throw on invalid UTF-8.
  json root = json::object();
  root["version"] = kFormatVersion;
  root["subnet"] = pool.subnet().ToString();
  root["gateway"] = pool.gateway().ToString();
  if (pool.last().has_value()) root["last"] = pool.last()->ToString();
  root["leases"] = std::move(leases);
  return root.dump(2) + "\n";
}

absl::StatusOr<Pool> PoolFromJson(absl::string_view text) {
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return DataLoss(absl::StrCat("invalid JSON: ", e.what()));
  }
  if (!root.is_object()) return DataLoss("not a JSON object");
  for (const auto& [key, value] : root.items()) {
    // Refusing unknown keys (rather than dropping them on the next write) protects data a
    // newer mesh may have put there.
    if (key != "version" && key != "subnet" && key != "gateway" && key != "last" &&
        key != "leases") {
      return DataLoss(absl::StrCat("unknown key \"", key, "\""));
    }
  }
  auto version = root.find("version");
  if (version == root.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kFormatVersion) {
    return DataLoss(absl::StrCat("unsupported format version ",
                                 version == root.end() ? "(none)" : version->dump(),
                                 ", this mesh reads version ", kFormatVersion));
  }

  auto subnet_field = root.find("subnet");
  if (subnet_field == root.end() || !subnet_field->is_string()) {
    return DataLoss("\"subnet\" must be a string holding a subnet");
  }
  absl::StatusOr<IpPrefix> subnet = IpPrefix::Parse(subnet_field->get_ref<const std::string&>());
  if (!subnet.ok()) return DataLoss(absl::StrCat("\"subnet\": ", subnet.status().message()));
  MESH_ASSIGN_OR_RETURN(IpAddress gateway, AddressField(root, "gateway"));
  std::optional<IpAddress> last;
  if (root.contains("last")) {
    MESH_ASSIGN_OR_RETURN(last, AddressField(root, "last"));
  }

  auto leases_field = root.find("leases");
  if (leases_field == root.end() || !leases_field->is_object()) {
    return DataLoss("\"leases\" must be an object mapping addresses to owners");
  }
  std::map<IpAddress, std::string> leases;
  for (const auto& [key, value] : leases_field->items()) {
    absl::StatusOr<IpAddress> address = IpAddress::Parse(key);
    if (!address.ok()) return DataLoss(absl::StrCat("lease: ", address.status().message()));
    if (!value.is_string()) {
      return DataLoss(absl::StrCat("lease of ", key, ": the owner must be a string"));
    }
    // Two spellings of one IPv6 address ("fd00::1", "fd00:0::1") would be one lease.
    if (!leases.emplace(*address, value.get<std::string>()).second) {
      return DataLoss(absl::StrCat("address ", address->ToString(), " is leased twice"));
    }
  }
  absl::StatusOr<Pool> pool = Pool::Restore(*subnet, gateway, last, leases);
  if (!pool.ok()) return DataLoss(pool.status().message());
  return pool;
}

absl::StatusOr<std::unique_ptr<Ipam>> Ipam::Open(std::string dir) {
  if (dir.empty()) return absl::InvalidArgumentError("ipam directory must not be empty");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  MESH_RETURN_IF_ERROR(Annotate(MakeDirs(dir, kDirMode), "open ipam directory"));

  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("list ipam directory \"", dir, "\""));
  std::sort(names.begin(), names.end());  // load (and fail) in a stable order

  std::map<std::string, Pool, std::less<>> pools;
  for (const std::string& name : names) {
    std::string path = absl::StrCat(dir, "/", name);
    // WriteFileAtomically writes ".<name>.json.tmp.XXXXXX" next to the file; one still here
    // is from a crash mid-write, and the real file holds the old or the new state whole.
    if (absl::StartsWith(name, ".") && absl::StrContains(name, ".json.tmp.")) {
      // Best effort: a leftover that cannot be removed does no harm and is retried next time.
      ::unlink(path.c_str());
      continue;
    }
    if (!absl::EndsWith(name, kPoolFileSuffix)) continue;
    std::string context = absl::StrCat("load ipam pool file \"", path, "\"");
    absl::string_view network =
        absl::string_view(name).substr(0, name.size() - kPoolFileSuffix.size());
    MESH_RETURN_IF_ERROR(Annotate(ValidateName(NameKind::kNetwork, network), context));
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) return Annotate(text.status(), context);
    absl::StatusOr<Pool> pool = PoolFromJson(*text);
    if (!pool.ok()) return Annotate(pool.status(), context);
    pools.emplace(std::string(network), *std::move(pool));
  }
  std::unique_ptr<Ipam> ipam(new Ipam(std::move(dir)));
  {
    absl::MutexLock lock(&ipam->mu_);  // not shared yet; taken for the thread annotations
    ipam->pools_ = std::move(pools);
  }
  return ipam;
}

std::string Ipam::PathOf(absl::string_view network) const {
  return absl::StrCat(dir_, "/", network, kPoolFileSuffix);
}

absl::Status Ipam::Persist(absl::string_view network, const Pool& pool) const {
  return WriteFileAtomically(PathOf(network), PoolToJson(pool), kFileMode);
}

absl::Status Ipam::AddPool(absl::string_view network, const IpPrefix& subnet,
                           std::optional<IpAddress> gateway) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::StatusOr<Pool> pool = Pool::Create(subnet, gateway);
  if (!pool.ok()) return Annotate(pool.status(), QuoteNetwork(network));

  absl::MutexLock lock(&mu_);
  if (auto it = pools_.find(network); it != pools_.end()) {
    const Pool& existing = it->second;
    if (existing.subnet() == pool->subnet() && existing.gateway() == pool->gateway()) {
      return absl::OkStatus();
    }
    return absl::AlreadyExistsError(absl::StrCat(
        QuoteNetwork(network), " already has subnet ", existing.subnet().ToString(),
        " with gateway ", existing.gateway().ToString(), ", not ", pool->subnet().ToString(),
        " with gateway ", pool->gateway().ToString(), "; remove the pool to change it"));
  }
  for (const auto& [other_name, other] : pools_) {
    if (other.subnet().Overlaps(subnet)) {
      return absl::InvalidArgumentError(
          absl::StrCat(QuoteNetwork(network), ": subnet ", subnet.ToString(), " overlaps ",
                       QuoteNetwork(other_name), " (", other.subnet().ToString(), ")"));
    }
  }
  MESH_RETURN_IF_ERROR(Annotate(Persist(network, *pool), QuoteNetwork(network)));
  pools_.emplace(std::string(network), *std::move(pool));
  return absl::OkStatus();
}

absl::Status Ipam::RemovePool(absl::string_view network) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::MutexLock lock(&mu_);
  // The file goes first: if that fails the pool stays, in memory as on disk.
  std::string path = PathOf(network);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Annotate(ErrnoToStatus(errno, absl::StrCat("remove \"", path, "\"")),
                    QuoteNetwork(network));
  }
  if (auto it = pools_.find(network); it != pools_.end()) pools_.erase(it);
  return Annotate(SyncDir(dir_), QuoteNetwork(network));
}

absl::StatusOr<IpAddress> Ipam::Allocate(absl::string_view network, absl::string_view owner,
                                         std::optional<IpAddress> requested) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::MutexLock lock(&mu_);
  auto it = pools_.find(network);
  if (it == pools_.end()) {
    return absl::NotFoundError(absl::StrCat(QuoteNetwork(network), " has no address pool"));
  }
  Pool& pool = it->second;
  // An owner that already has what it asks for needs no write.
  if (std::optional<IpAddress> held = pool.Lookup(owner);
      held.has_value() && (!requested.has_value() || *requested == *held)) {
    return *held;
  }
  // Change a copy and keep it only once it is on disk, so a failed write changes nothing.
  // The copy costs about what serializing the pool costs anyway.
  Pool next = pool;
  absl::StatusOr<IpAddress> address =
      requested.has_value() ? next.AllocateStatic(*requested, owner) : next.Allocate(owner);
  if (!address.ok()) return Annotate(address.status(), QuoteNetwork(network));
  MESH_RETURN_IF_ERROR(Annotate(Persist(network, next), QuoteNetwork(network)));
  pool = std::move(next);
  return address;
}

absl::Status Ipam::Release(absl::string_view network, absl::string_view owner) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::MutexLock lock(&mu_);
  auto it = pools_.find(network);
  if (it == pools_.end() || !it->second.Lookup(owner).has_value()) return absl::OkStatus();
  Pool next = it->second;
  next.Release(owner);
  MESH_RETURN_IF_ERROR(Annotate(Persist(network, next), QuoteNetwork(network)));
  it->second = std::move(next);
  return absl::OkStatus();
}

std::optional<IpAddress> Ipam::Lookup(absl::string_view network, absl::string_view owner) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = pools_.find(network);
  if (it == pools_.end()) return std::nullopt;
  return it->second.Lookup(owner);
}

absl::StatusOr<PoolSnapshot> Ipam::Get(absl::string_view network) const {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::ReaderMutexLock lock(&mu_);
  auto it = pools_.find(network);
  if (it == pools_.end()) {
    return absl::NotFoundError(absl::StrCat(QuoteNetwork(network), " has no address pool"));
  }
  const Pool& pool = it->second;
  return PoolSnapshot{pool.subnet(), pool.gateway(), pool.leases()};
}

std::vector<std::string> Ipam::Networks() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> names;
  names.reserve(pools_.size());
  for (const auto& [name, pool] : pools_) names.push_back(name);
  return names;
}

absl::StatusOr<IpPrefix> Ipam::ChooseSubnet(const IpPrefix& default_pool, int prefix_length,
                                            const std::vector<IpPrefix>& in_use) {
  int bits = default_pool.network().bit_length();
  if (prefix_length < default_pool.length() || prefix_length > bits) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot choose a /", prefix_length, " subnet from default pool ", default_pool.ToString(),
        ": the length must be from ", default_pool.length(), " to ", bits));
  }
  MESH_ASSIGN_OR_RETURN(IpPrefix candidate,
                        IpPrefix::Containing(default_pool.network(), prefix_length));
  // Each round either returns or moves past every prefix in `in_use` that overlaps the
  // candidate, so there are at most in_use.size() + 1 rounds however large the pool is.
  for (;;) {
    std::optional<IpAddress> clash_end;
    for (const IpPrefix& used : in_use) {
      if (used.Overlaps(candidate))
        clash_end = std::max(clash_end.value_or(used.Last()), used.Last());
    }
    if (!clash_end.has_value()) return candidate;
    // Prefixes nest, so this end is the end of an aligned block at least as large as the
    // candidate: the address after it starts the next candidate.
    std::optional<IpAddress> next = std::max(*clash_end, candidate.Last()).Add(1);
    if (!next.has_value() || !default_pool.Contains(*next)) break;
    MESH_ASSIGN_OR_RETURN(candidate, IpPrefix::Containing(*next, prefix_length));
  }
  int doubling = prefix_length - default_pool.length();
  std::string count =
      doubling < 64 ? absl::StrCat(uint64_t{1} << doubling) : absl::StrCat("2^", doubling);
  return absl::ResourceExhaustedError(absl::StrCat("default pool ", default_pool.ToString(),
                                                   " has no free /", prefix_length, " left (",
                                                   count, " in use or overlapping routes)"));
}

absl::StatusOr<IpPrefix> Ipam::ChooseFreeSubnet(const IpPrefix& default_pool, int prefix_length,
                                                std::vector<IpPrefix> host_routes) const {
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, pool] : pools_) host_routes.push_back(pool.subnet());
  }
  return ChooseSubnet(default_pool, prefix_length, host_routes);
}

}  // namespace mesh::netplane::ipam
