#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "netplane/nft/nft_table.h"
#include "netplane/nft/transaction.h"

namespace mesh::netplane::nft {

// An in-memory nf_tables for unit tests (STYLE.md rule 5), enforcing the kernel's rules with
// the kernel's errors and KernelNftTable's messages:
//   - adding an existing table, chain, set or element with Verb::kAdd: AlreadyExists (EEXIST);
//     with Verb::kEnsure: a no-op, unless it differs (an element with another value, a set
//     with other types, a base chain on another hook): AlreadyExists;
//   - deleting or flushing something absent, or adding into a missing table, chain or set:
//     NotFound (ENOENT); a rule looking up a missing set: NotFound;
//   - deleting a set a rule looks up: FailedPrecondition (EBUSY); an element whose shape does
//     not match its set's types, a value lookup (dreg) on a plain set: InvalidArgument;
//   - atomicity: a failing command leaves the whole state as it was before the transaction.
// Deleting a table or chain takes what is inside with it, as in the kernel. Not modelled:
// overlapping intervals (IPAM keeps subnets apart), rule semantics, other object types.
class FakeNftTable : public NftTable {
 public:
  absl::Status Apply(const Transaction& transaction) override;

  // Every table (by family, then name), its sets and maps (by name, elements sorted, IPv4
  // ranges shown as prefixes), then its chains (by name, rules in order, one expression per
  // line), comments on their own lines:
  //   table inet mesh
  //     comment "..."
  //     set bridges { type ifname }
  //       comment "..."
  //       "mbr-front" comment "front"
  //     chain forward { type filter hook forward priority 0; policy accept }
  //       rule comment "replies and related traffic"
  //         [ ct load state => reg 1 ]
  std::string Dump() const;

  bool HasTable(Family family, absl::string_view table) const;
  // Rules in all chains of the table; 0 if it does not exist.
  size_t RuleCount(Family family, absl::string_view table) const;
  // Elements of a set or map (an interval counts as its start and end elements); nullopt if
  // it does not exist.
  std::optional<size_t> ElementCount(Family family, absl::string_view table,
                                     absl::string_view set) const;
  // Structural access for tests; empty/nullopt when absent. Rules carry their handles.
  std::optional<Set> GetSet(Family family, absl::string_view table, absl::string_view set) const;
  std::vector<Element> GetElements(Family family, absl::string_view table,
                                   absl::string_view set) const;
  std::optional<Chain> GetChain(Family family, absl::string_view table,
                                absl::string_view chain) const;
  std::vector<Rule> GetRules(Family family, absl::string_view table, absl::string_view chain) const;

  // Applies attempted so far, failed ones included.
  int apply_count() const;
  // The next Apply fails with `status` and changes nothing.
  void FailNextApplyForTest(absl::Status status);

 private:
  // Elements by (key bytes, interval end): the kernel tells an interval's end from the next
  // interval's start at the same address by that flag.
  using ElementMap = std::map<std::pair<std::string, bool>, Element>;
  struct FakeSet {
    Set spec;
    ElementMap elements;
  };
  struct FakeChain {
    Chain spec;
    std::vector<Rule> rules;
  };
  struct FakeTable {
    Table spec;
    std::map<std::string, FakeSet> sets;
    std::map<std::string, FakeChain> chains;
  };
  struct State {
    std::map<std::pair<Family, std::string>, FakeTable> tables;
    uint64_t next_handle = 1;
  };
  class Applier;  // applies one command to a State
  static std::vector<std::string> IntervalLines(const ElementMap& elements);

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
  int apply_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Status> fail_next_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::netplane::nft
