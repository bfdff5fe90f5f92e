#include "netplane/netfilter/group_socket.h"

#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace mesh::netplane::netfilter {

absl::StatusOr<nft::NftnlPtr<mnl_socket>> OpenGroupSocket(unsigned group, absl::string_view what) {
  nft::NftnlPtr<mnl_socket> nl(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (nl == nullptr) return ErrnoToStatus(errno, absl::StrCat(what, ": open netlink socket"));
  if (mnl_socket_bind(nl.get(), 1U << (group - 1), MNL_SOCKET_AUTOPID) < 0) {
    return ErrnoToStatus(errno, absl::StrCat(what, ": join netlink group ", group));
  }
  return nl;
}

}  // namespace mesh::netplane::netfilter
