#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "netplane/ipam/ip.h"
#include "netplane/ipam/pool.h"

namespace mesh::netplane::ipam {

// A copy of one pool's state.
struct PoolSnapshot {
  IpPrefix subnet;
  IpAddress gateway;
  std::map<IpAddress, std::string> leases;  // address -> owner
};

// The on-disk form of a pool (one file per network): a JSON object, indented by 2 spaces, with
// a final newline, and keys sorted so the same pool always gives the same bytes:
//   {"gateway":"10.88.1.1","last":"10.88.1.5","leases":{"10.88.1.2":"web-1/eth0"},
//    "subnet":"10.88.1.0/24","version":1}
// "last" (the allocation cursor) is left out while Allocate has never handed out an address.
std::string PoolToJson(const Pool& pool);
// DataLoss if `json` is not valid JSON of that form or breaks a pool rule (Pool::Restore).
absl::StatusOr<Pool> PoolFromJson(absl::string_view json);

// The address pools of all networks, each persisted in `<dir>/<network>.json`.
//
// Thread-safe: every method may be called from any thread at once. One mutex covers the
// pools and their files, so a change is written to disk (atomically, fsynced) before the
// method returns and before any other caller sees it; if the write fails, the change is not
// made in memory either. Only one Ipam may use a directory at a time.
//
// Network names must pass ValidateName(NameKind::kNetwork, ...) (they become file names);
// every method returns InvalidArgument for one that does not.
class Ipam {
 public:
  // Creates `dir` if missing (and its parents, mode 0700) and loads every `<network>.json`
  // in it. Removes temp files a crash during a write left behind. An unreadable or corrupt
  // pool file, or a `.json` file whose name is not a network name, is an error naming the
  // file (DataLoss for bad contents).
  static absl::StatusOr<std::unique_ptr<Ipam>> Open(std::string dir);

  Ipam(const Ipam&) = delete;
  Ipam& operator=(const Ipam&) = delete;

  const std::string& dir() const { return dir_; }

  // Adds the pool of `network` (see Pool::Create for the rules and the default gateway).
  // Idempotent: OK if `network` already has this subnet and gateway; AlreadyExists if it has
  // a different one. InvalidArgument if `subnet` overlaps another network's:
  // `network "front": subnet 10.88.1.0/24 overlaps network "back" (10.88.0.0/16)`.
  absl::Status AddPool(absl::string_view network, const IpPrefix& subnet,
                       std::optional<IpAddress> gateway);
  // Forgets `network`'s pool and all its leases, and deletes its file. Idempotent: OK if
  // there is no such pool.
  absl::Status RemovePool(absl::string_view network);

  // Leases an address on `network` to `owner`: `requested` if given (Pool::AllocateStatic),
  // else the next free one (Pool::Allocate). Idempotent for an owner that already holds the
  // address it asks for (or any address, when it asks for none). NotFound if `network` has
  // no pool.
  absl::StatusOr<IpAddress> Allocate(absl::string_view network, absl::string_view owner,
                                     std::optional<IpAddress> requested);
  // Ends `owner`'s lease on `network`. Idempotent: OK if there is no such lease or no such
  // pool (teardown after the network is gone succeeds).
  absl::Status Release(absl::string_view network, absl::string_view owner);

  // The address `owner` holds on `network`; nullopt if none, also when there is no such pool
  // or the name is invalid.
  std::optional<IpAddress> Lookup(absl::string_view network, absl::string_view owner) const;
  // NotFound if `network` has no pool.
  absl::StatusOr<PoolSnapshot> Get(absl::string_view network) const;
  // Names of the networks with a pool, sorted.
  std::vector<std::string> Networks() const;

  // The first subnet of `prefix_length` bits inside `default_pool`, in address order, that
  // overlaps none of `in_use`: the destinations of the host's routes (leave the default route
  // out, it overlaps everything) and other networks' subnets. Prefixes of the other family are
  // ignored. InvalidArgument if `prefix_length` is shorter than the pool's or longer than the
  // address; ResourceExhausted if none is free:
  // `default pool 10.88.0.0/16 has no free /24 left (256 in use or overlapping routes)`.
  // Cost: O(in_use^2), whatever the size of the pool.
  static absl::StatusOr<IpPrefix> ChooseSubnet(const IpPrefix& default_pool, int prefix_length,
                                               const std::vector<IpPrefix>& in_use);
  // ChooseSubnet with every existing pool's subnet added to `host_routes`. The answer is not
  // reserved: a concurrent AddPool may take it first, and then AddPool of the answer fails
  // with InvalidArgument (overlap) rather than sharing a subnet.
  absl::StatusOr<IpPrefix> ChooseFreeSubnet(const IpPrefix& default_pool, int prefix_length,
                                            std::vector<IpPrefix> host_routes) const;

 private:
  explicit Ipam(std::string dir) : dir_(std::move(dir)) {}

  std::string PathOf(absl::string_view network) const;
  // Writes `pool` to `network`'s file.
  absl::Status Persist(absl::string_view network, const Pool& pool) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  mutable absl::Mutex mu_;
  std::map<std::string, Pool, std::less<>> pools_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::netplane::ipam
