#include "netplane/ipam/pool.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::netplane::ipam {
namespace {

std::string QuoteOwner(absl::string_view owner) {
  return absl::StrCat("\"", absl::CEscape(owner), "\"");
}

absl::Status CheckOwner(absl::string_view owner) {
  // Owners end up in JSON and log lines: printable ASCII keeps both simple and exact (JSON
  // would reject invalid UTF-8, and control characters make confusing messages).
  if (owner.empty() || owner.size() > Pool::kMaxOwnerLength) {
    return absl::InvalidArgumentError(absl::StrCat("lease owner ", QuoteOwner(owner.substr(0, 80)),
                                                   " must be 1 to ", Pool::kMaxOwnerLength,
                                                   " characters long"));
  }
  for (char c : owner) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(absl::StrCat(
          "lease owner ", QuoteOwner(owner), " may hold only printable ASCII without spaces"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Pool::Pool(const IpPrefix& subnet, const IpAddress& gateway) : subnet_(subnet), gateway_(gateway) {
  const IpAddress& network = subnet_.network();
  int host_bits = subnet_.host_bits();  // >= 2, checked by Create
  uint64_t last_offset;
  if (subnet_.family() == Family::kV4) {
    last_offset = (uint64_t{1} << host_bits) - 2;  // skip the broadcast address
  } else {
    last_offset = host_bits >= 64 ? UINT64_MAX : (uint64_t{1} << host_bits) - 1;
  }
  // Neither Add can overflow: both offsets stay inside the subnet.
  first_host_ = *network.Add(1);
  last_host_ = *network.Add(last_offset);
  capacity_ = last_offset;  // offsets 1 to last_offset
  if (first_host_ <= gateway_ && gateway_ <= last_host_) --capacity_;
}

absl::StatusOr<Pool> Pool::Create(const IpPrefix& subnet, std::optional<IpAddress> gateway) {
  int max_length = subnet.family() == Family::kV4 ? kMaxV4PrefixLength : kMaxV6PrefixLength;
  if (subnet.length() > max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat("subnet ", subnet.ToString(), " is too small: ", FamilyName(subnet.family()),
                     " subnets need a prefix length of ", max_length,
                     " or less, to hold a gateway and at least one container"));
  }
  if (!gateway.has_value()) {
    gateway = *subnet.network().Add(1);
  } else if (!subnet.Contains(*gateway)) {
    return absl::InvalidArgumentError(
        absl::StrCat("gateway ", gateway->ToString(), " is outside subnet ", subnet.ToString()));
  } else if (*gateway == subnet.network()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gateway ", gateway->ToString(), " is the network address of subnet ", subnet.ToString()));
  } else if (subnet.family() == Family::kV4 && *gateway == subnet.Last()) {
    return absl::InvalidArgumentError(absl::StrCat("gateway ", gateway->ToString(),
                                                   " is the broadcast address of subnet ",
                                                   subnet.ToString()));
  }
  return Pool(subnet, *gateway);
}

absl::StatusOr<Pool> Pool::Restore(const IpPrefix& subnet, const IpAddress& gateway,
                                   std::optional<IpAddress> last,
                                   const std::map<IpAddress, std::string>& leases) {
  MESH_ASSIGN_OR_RETURN(Pool pool, Create(subnet, gateway));
  MESH_RETURN_IF_ERROR(pool.SetLast(last));
  for (const auto& [address, owner] : leases) {
    std::string what = absl::StrCat("lease of ", address.ToString(), " to ", QuoteOwner(owner));
    MESH_RETURN_IF_ERROR(Annotate(CheckOwner(owner), what));
    MESH_RETURN_IF_ERROR(Annotate(pool.CheckLeasable(address), what));
    if (auto [it, inserted] = pool.by_owner_.emplace(owner, address); !inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": the owner also holds ", it->second.ToString(), " (one address per owner)"));
    }
    pool.leases_.emplace(address, owner);
  }
  return pool;
}

std::optional<IpAddress> Pool::Lookup(absl::string_view owner) const {
  auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<IpAddress> Pool::Allocate(absl::string_view owner) {
  MESH_RETURN_IF_ERROR(CheckOwner(owner));
  if (std::optional<IpAddress> held = Lookup(owner)) return *held;
  if (leases_.size() >= capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat("no free address in ", subnet_.ToString(),
                                                     " (", leases_.size(), " of ", capacity_,
                                                     " leased)"));
  }
  // Next fit: continue after the cursor, then wrap around to the start of the range.
  std::optional<IpAddress> found;
  if (last_.has_value() && *last_ < last_host_) {
    found = FindFree(*last_->Add(1), last_host_);
    if (!found) found = FindFree(first_host_, *last_);
  } else {
    found = FindFree(first_host_, last_host_);
  }
  if (!found) {
    // Unreachable while capacity_ is right: fewer leases than capacity means a free address.
    return absl::InternalError(absl::StrCat("no free address found in ", subnet_.ToString(),
                                            " although only ", leases_.size(), " of ", capacity_,
                                            " are leased"));
  }
  leases_.emplace(*found, owner);
  by_owner_.emplace(owner, *found);
  last_ = found;
  return *found;
}

absl::StatusOr<IpAddress> Pool::AllocateStatic(const IpAddress& address, absl::string_view owner) {
  MESH_RETURN_IF_ERROR(CheckOwner(owner));
  MESH_RETURN_IF_ERROR(CheckLeasable(address));
  if (auto it = leases_.find(address); it != leases_.end()) {
    if (it->second == owner) return address;
    return absl::AlreadyExistsError(absl::StrCat("address ", address.ToString(),
                                                 " is already leased to ", QuoteOwner(it->second)));
  }
  if (std::optional<IpAddress> held = Lookup(owner)) {
    return absl::AlreadyExistsError(
        absl::StrCat(QuoteOwner(owner), " already holds ", held->ToString(), " in subnet ",
                     subnet_.ToString(), "; release it before asking for ", address.ToString()));
  }
  leases_.emplace(address, owner);
  by_owner_.emplace(owner, address);
  return address;
}

std::optional<IpAddress> Pool::Release(absl::string_view owner) {
  auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return std::nullopt;
  IpAddress address = it->second;
  leases_.erase(address);
  by_owner_.erase(it);
  return address;
}

absl::Status Pool::SetLast(std::optional<IpAddress> last) {
  if (last.has_value()) {
    MESH_RETURN_IF_ERROR(Annotate(CheckLeasable(*last), "last allocated address"));
  }
  last_ = last;
  return absl::OkStatus();
}

absl::Status Pool::CheckLeasable(const IpAddress& address) const {
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("address ", address.ToString(), " ", what));
  };
  std::string subnet = subnet_.ToString();
  if (!subnet_.Contains(address)) return error(absl::StrCat("is outside subnet ", subnet));
  if (address == subnet_.network()) {
    return error(absl::StrCat("is the network address of subnet ", subnet));
  }
  if (subnet_.family() == Family::kV4 && address == subnet_.Last()) {
    return error(absl::StrCat("is the broadcast address of subnet ", subnet));
  }
  if (address == gateway_) return error(absl::StrCat("is the gateway of subnet ", subnet));
  if (address > last_host_) {
    return error(absl::StrCat("is not among the first 2^64 addresses of subnet ", subnet,
                              ", the only ones mesh allocates from"));
  }
  return absl::OkStatus();
}

std::optional<IpAddress> Pool::FindFree(const IpAddress& from, const IpAddress& to) const {
  // Walk addresses and leases in step: each iteration either finds a free address or skips
  // one that is leased (or the gateway), so the cost is the length of the leased run.
  IpAddress candidate = from;
  auto it = leases_.lower_bound(candidate);
  for (;;) {
    bool leased = it != leases_.end() && it->first == candidate;
    if (!leased && candidate != gateway_) return candidate;
    if (leased) ++it;
    if (candidate == to) return std::nullopt;
    candidate = *candidate.Add(1);  // candidate < to, so this stays in range
  }
}

}  // namespace mesh::netplane::ipam
