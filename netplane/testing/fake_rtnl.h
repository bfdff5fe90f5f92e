#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "base/ns/namespace_handle.h"
#include "netplane/netlink/rtnl_ops.h"

namespace mesh::netplane::testing {

// A stateful in-memory model of rtnetlink across several network namespaces, for unit tests
// (STYLE.md rule 5). It enforces the kernel rules mesh relies on: 15-byte names, EEXIST for a
// taken name, ENODEV for an unknown link or master, one default route per namespace, a veth
// pair dying whole, addresses and routes dying with their link, one route per destination.
class FakeKernel {
 public:
  // The namespace key for a handle (its inode), and a readable dump of one namespace.
  struct Address {
    std::string cidr;
    bool operator<(const Address& o) const { return cidr < o.cidr; }
  };
  struct Namespace {
    std::map<std::string, netlink::LinkInfo> links;          // by name
    std::map<std::string, std::set<std::string>> addresses;  // link name -> "a.b.c.d/len"
    std::map<std::string, std::string> default_route;        // "via" -> link name (0 or 1 entry)
    std::map<std::string, std::string> static_routes;        // "dst via gw" -> link name
    std::map<std::string, std::string> qdiscs;               // link name -> "tbf rate .."
    std::map<int, std::string> hairpin;                      // ifindex -> link name
    std::vector<ipam::IpPrefix> routes;                      // other routes, for ListRoutes
    std::set<std::string> ipv6_off;                          // links with IPv6 disabled
    bool ip_forward = false;
  };

  // rtnetlink bound to namespace `ns` (any key; the host uses 0). Objects share this kernel.
  std::unique_ptr<netlink::RtnlOps> Ops(uint64_t ns);
  static uint64_t KeyOf(const NamespaceHandle& handle) { return handle.inode(); }
  static uint64_t KeyOfFd(int fd);

  // The next call of `method` ("CreateVeth", "AddAddress", ...) whose 1-based count reaches
  // `nth` fails with `status` and changes nothing. Counts start at the call of FailAt.
  void FailAt(const std::string& method, int nth, absl::Status status);
  // Calls so far of each method (for "fail at every step" loops).
  std::map<std::string, int> Calls() const;

  // Deterministic text of every namespace's links, addresses, routes and hairpin flags.
  std::string Dump() const;
  Namespace& ns(uint64_t key) ABSL_NO_THREAD_SAFETY_ANALYSIS { return namespaces_[key]; }

 private:
  friend class FakeRtnlOps;
  absl::Status Enter(const std::string& method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<uint64_t, Namespace> namespaces_ ABSL_GUARDED_BY(mu_);
  int next_index_ ABSL_GUARDED_BY(mu_) = 2;  // 1 is lo everywhere
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  struct Failure {
    int nth;
    absl::Status status;
  };
  std::map<std::string, Failure> failures_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::netplane::testing
