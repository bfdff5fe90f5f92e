#pragma once

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "netplane/nft/nft_table.h"
#include "netplane/nft/nftnl_ptr.h"

namespace mesh::netplane::nft {

// Programs nf_tables through one long-lived NETLINK_NETFILTER socket (libmnl + libnftnl).
//
// The socket is opened by Create() in the network namespace the calling thread is in at that
// moment, and stays bound to it for its lifetime: Apply() changes that namespace's ruleset
// whatever namespace later callers run in. Needs CAP_NET_ADMIN in that namespace (Apply fails
// with PermissionDenied otherwise). The socket joins no multicast group, so it only ever
// receives answers to its own requests.
class KernelNftTable : public NftTable {
 public:
  static absl::StatusOr<std::unique_ptr<KernelNftTable>> Create();

  KernelNftTable(const KernelNftTable&) = delete;
  KernelNftTable& operator=(const KernelNftTable&) = delete;
  ~KernelNftTable() override = default;

  // Sends the transaction as one batch and waits for the kernel's answer to every message.
  absl::Status Apply(const Transaction& transaction) override;

  // The socket's netlink port id. nftables change notifications carry the port id of the
  // socket that made the change (nlmsg_pid), so a monitor can tell mesh's own changes apart.
  uint32_t portid() const { return portid_; }

 private:
  explicit KernelNftTable(NftnlPtr<mnl_socket> socket);
  // Grows the socket's buffers so a batch of `bytes` fits in one send and the answers to
  // `messages` messages fit in the receive queue.
  void SizeBuffers(size_t bytes, size_t messages) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  const NftnlPtr<mnl_socket> socket_;
  const uint32_t portid_;
  uint32_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace mesh::netplane::nft
