#pragma once

#include <cstdint>
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
#include "base/unique_fd.h"
#include "netplane/ipam/ip.h"
#include "netplane/ipam/pool.h"

namespace mesh::netplane::ipam {

// A copy of one pool's state.
struct PoolSnapshot {
  IpPrefix subnet;
  IpAddress gateway;
  std::map<IpAddress, std::string> leases;  // address -> owner
};

// The on-disk form of a pool is two files per network, a snapshot and a journal.
//
// `<network>.json`, the snapshot: a JSON object, indented by 2 spaces, with a final newline,
// and keys sorted so the same pool always gives the same bytes:
//   {"gateway":"10.88.1.1","last":"10.88.1.5","leases":{"10.88.1.2":"web-1/eth0"},
//    "seq":7,"subnet":"10.88.1.0/24","version":2}
// "last" (the allocation cursor) is left out while Allocate has never handed out an address.
// "seq" is the sequence number of the last journal record the snapshot already contains (0:
// none). Version 1 files (written before the journal existed) have no "seq" and read as seq 0;
// version 2 says "this file alone is not the pool", so a mesh that knows no journal refuses it.
//
// `<network>.journal`, the changes since (or shortly before) the snapshot: one compact JSON
// object per line, keys sorted, each line ending in '\n':
//   {"address":"10.88.1.6","last":"10.88.1.6","op":"allocate","owner":"web-2/eth0","seq":8}
//   {"address":"10.88.1.2","op":"release","owner":"web-1/eth0","seq":9}
// "seq" counts up by one per record and never restarts while the pool exists; "last" is
// present on allocations made by Allocate (which move the cursor to the address) and absent
// on static ones. The pool is the snapshot with the records of seq > the snapshot's replayed
// in order.

// The snapshot of `pool` holding the journal records up to `seq`.
std::string PoolToJson(const Pool& pool, uint64_t seq = 0);
// DataLoss if `json` is not a snapshot of that form (version 1 or 2) or breaks a pool rule
// (Pool::Restore). Sets `*seq` (if not null) to the snapshot's "seq", 0 for version 1.
absl::StatusOr<Pool> PoolFromJson(absl::string_view json, uint64_t* seq = nullptr);

// The address pools of all networks, each persisted in `<dir>/<network>.json` and
// `<dir>/<network>.journal` (format above).
//
// Thread-safe: every method may be called from any thread at once. One mutex covers the
// pools and their files, so a change is on disk (its journal record written and fdatasynced)
// before the method returns and before any other caller sees it; if the write fails, the change
// is not made in memory either, and the part of the record that reached the file is cut off
// again (should even that fail, the pool's changes fail until it succeeds). Only one Ipam may
// use a directory at a time.
//
// Cost of a change (Allocate, Release): O(log n) CPU for n leases (plus Pool::Allocate's scan)
// and one append of about 100 bytes plus one fdatasync, whatever n is. Once the journal holds
// more than max(64, n) records, the change also rewrites the snapshot (atomically, O(n)) and
// empties the journal: amortized O(1) bytes per change, and the journal never outgrows the
// snapshot by much. A failed compaction is not the change's error (the record is durable and
// the journal still complete): it is retried on the next change. Open reads every file, O(n).
//
// Network names must pass ValidateName(NameKind::kNetwork, ...) (they become file names);
// every method returns InvalidArgument for one that does not.
class Ipam {
 public:
  // Creates `dir` if missing (and its parents, mode 0700) and loads every `<network>.json`
  // in it with its journal. Cleans up what a crash left behind: temp files of a snapshot
  // write, a journal whose snapshot is gone (a RemovePool or AddPool cut short), and a torn
  // last journal line (an append that never returned), which is ignored and cut off. Creates
  // a missing journal (version 1 directories have none). An unreadable or corrupt pool file,
  // or a `.json` file whose name is not a network name, is an error naming the file (DataLoss
  // for bad contents); a bad journal record other than the last, a gap in the seq numbers, or
  // a record that breaks a pool rule is DataLoss naming the journal and the line.
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
  // Forgets `network`'s pool and all its leases, and deletes its files: the snapshot first,
  // since a journal alone is a leftover that Open deletes. If deleting the journal (or syncing
  // the directory) fails the pool is gone all the same and the error says what is left; a
  // second call removes it. Idempotent: OK if there is no such pool.
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
  // One pool with its open journal.
  struct PoolState {
    Pool pool;
    uint64_t seq = 0;  // of the last change made (in the snapshot or the journal)
    UniqueFd journal;  // O_RDWR | O_APPEND
    // Bytes of whole, acknowledged records in the journal, and how many records that is.
    uint64_t journal_size = 0;
    uint64_t journal_records = 0;
    // A failed append left bytes past journal_size that could not be cut off yet. No record
    // may follow them, so the next append cuts them off first or fails.
    bool journal_dirty = false;
  };

  explicit Ipam(std::string dir) : dir_(std::move(dir)) {}

  std::string SnapshotPathOf(absl::string_view network) const;
  std::string JournalPathOf(absl::string_view network) const;
  // Loads `network`'s snapshot and replays its journal (opened, created if missing: then
  // `*created` is set).
  static absl::StatusOr<PoolState> Load(const std::string& dir, absl::string_view network,
                                        bool* created);
  // Appends `line` (one record with its newline) to the journal and fdatasyncs it. On error
  // the file is cut back to state.journal_size (or marked dirty if even that fails).
  absl::Status Append(absl::string_view network, PoolState& state, absl::string_view line)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rewrites the snapshot and empties the journal once the journal is long enough. Errors are
  // dropped: the journal is still complete, and the next change tries again.
  void MaybeCompact(absl::string_view network, PoolState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  mutable absl::Mutex mu_;
  std::map<std::string, PoolState, std::less<>> pools_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::netplane::ipam
