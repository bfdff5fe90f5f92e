#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netplane/nft/nftnl_ptr.h"

namespace mesh::netplane::netfilter {

// A non-blocking, close-on-exec NETLINK_NETFILTER socket of the calling thread's network
// namespace that has joined multicast group `group` (NFNLGRP_NFTABLES, NFNLGRP_NFTRACE).
// Joining needs CAP_NET_ADMIN there. Errors start with `what` ("nftables trace").
absl::StatusOr<nft::NftnlPtr<mnl_socket>> OpenGroupSocket(unsigned group, absl::string_view what);

}  // namespace mesh::netplane::netfilter
