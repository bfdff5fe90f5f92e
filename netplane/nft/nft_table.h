#pragma once

#include "absl/status/status.h"
#include "netplane/nft/transaction.h"

namespace mesh::netplane::nft {

// nftables behind an intent-level interface (STYLE.md rule 5): KernelNftTable programs the
// kernel of one network namespace, FakeNftTable models it in memory for unit tests.
class NftTable {
 public:
  virtual ~NftTable() = default;

  // Applies every command of `transaction` atomically: on success all of them took effect, on
  // any error none did. The error names the first failing command and keeps the kernel's
  // errno as the code, e.g. AlreadyExists with `nftables: add element to map "published4" in
  // table inet mesh (tcp . 8080 : 10.88.0.2 . 80): File exists (EEXIST)`. InvalidArgument,
  // before anything is sent, if the transaction does not Validate(). An empty transaction is a
  // no-op. Safe to call from several threads; calls are serialized.
  virtual absl::Status Apply(const Transaction& transaction) = 0;
};

}  // namespace mesh::netplane::nft
