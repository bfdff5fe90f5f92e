#pragma once

#include <netlink/addr.h>
#include <netlink/msg.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include <memory>

namespace mesh::netplane::netlink {

// Owning pointers for libnl objects (STYLE.md rule 2): no *_put/*_free outside these.
struct NlDeleter {
  void operator()(nl_sock* p) const { nl_socket_free(p); }
  void operator()(rtnl_link* p) const { rtnl_link_put(p); }
  void operator()(rtnl_addr* p) const { rtnl_addr_put(p); }
  void operator()(rtnl_route* p) const { rtnl_route_put(p); }
  void operator()(rtnl_qdisc* p) const { rtnl_qdisc_put(p); }
  void operator()(nl_addr* p) const { nl_addr_put(p); }
  void operator()(nl_msg* p) const { nlmsg_free(p); }
  void operator()(nl_cache* p) const { nl_cache_free(p); }
};
template <typename T>
using NlPtr = std::unique_ptr<T, NlDeleter>;

}  // namespace mesh::netplane::netlink
