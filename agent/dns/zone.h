#pragma once

// The names meshd's DNS answers, and who may see them. A container is found by its name
// ("tiers-web"), as NAME.GROUP ("web.tiers", which `search tiers` in its resolv.conf makes of
// "web"), and by the aliases of each of its networks; a client sees only the containers it
// shares a network with, at their addresses on those networks (Docker's rule). Reverse
// lookups (PTR) follow the same rule. A client's group is a domain of the names it sees:
// "www.lab." is "www." for a member of "lab" (`search lab` in its resolv.conf makes that of
// "www"). Other names are forwarded upstream, except for containers on internal networks only:
// an internal network has no way out, and DNS must not be one. Thread-safe.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "netplane/ipam/ip.h"

namespace mesh::agent::dns {

struct ZoneEntry {
  std::string container;  // "tiers-web"
  std::string group;      // "tiers"; "" outside a group
  std::string member;     // "web": its name in the group
  struct Address {
    std::string network;
    netplane::ipam::IpAddress ip;
    std::vector<std::string> aliases;  // names it also has on this network
    bool internal = false;             // the network is internal (no way out)
  };
  std::vector<Address> addresses;
};

struct Lookup {
  enum class Kind {
    kFound,    // answer with `addresses` / `names` (may be empty: the name has no such record)
    kHidden,   // a name of mesh's the client may not see: NXDOMAIN, never forwarded
    kUnknown,  // not a name of mesh: forward it upstream
    kRefused,  // not a name of mesh, and the client is on internal networks only: REFUSED,
               // never forwarded (a way out of the network, as Docker 26 decided too)
  };
  Kind kind = Kind::kUnknown;
  std::vector<netplane::ipam::IpAddress> addresses;
  std::vector<std::string> names;  // PTR: "tiers-web."
};

class Zone {
 public:
  // Adds or replaces the container's entry (its names and addresses now).
  void Put(ZoneEntry entry);
  void Remove(absl::string_view container);

  // `name`: lower case, fully qualified ("web.tiers.", "20.0.79.10.in-addr.arpa.");
  // `client`: the address the query came from.
  Lookup Find(absl::string_view name, const netplane::ipam::IpAddress& client) const;

  size_t size() const;

 private:
  struct Client {
    std::set<std::string, std::less<>> networks;
    std::set<std::string, std::less<>> groups;
    bool internal_only = false;  // a container whose every network is internal
  };
  Lookup FindLocked(absl::string_view name, const Client& who) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::set<std::string> NamesOf(const ZoneEntry& e);
  void UnindexLocked(const ZoneEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, ZoneEntry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
  // Indexes, so a query costs the same with 10 containers as with 1000: each name (fully
  // qualified, lower case) and each address, to the containers that have it.
  std::map<std::string, std::set<std::string>, std::less<>> names_ ABSL_GUARDED_BY(mu_);
  std::multimap<netplane::ipam::IpAddress, std::string> addresses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::agent::dns
