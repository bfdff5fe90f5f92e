#include "netplane/testing/fake_rtnl.h"

#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace mesh::netplane::testing {

class FakeRtnlOps : public netlink::RtnlOps {
 public:
  FakeRtnlOps(FakeKernel* kernel, uint64_t ns) : k_(kernel), key_(ns) {}

  absl::StatusOr<netlink::LinkInfo> GetLink(absl::string_view name) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("GetLink"); !s.ok()) return s;
    auto& links = Ns().links;
    auto it = links.find(std::string(name));
    if (it == links.end()) {
      return absl::NotFoundError(absl::StrCat("get link \"", name, "\": no such link"));
    }
    return it->second;
  }
  absl::StatusOr<std::vector<netlink::LinkInfo>> ListLinks() override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("ListLinks"); !s.ok()) return s;
    std::vector<netlink::LinkInfo> out;
    for (const auto& [name, link] : Ns().links) out.push_back(link);
    return out;
  }
  absl::Status CreateBridge(absl::string_view name, int mtu, absl::string_view alias) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("CreateBridge"); !s.ok()) return s;
    netlink::LinkInfo link{.name = std::string(name),
                           .kind = "bridge",
                           .up = true,
                           .mtu = mtu,
                           .mac = "",
                           .alias = std::string(alias)};
    return AddLink(Ns(), link, absl::StrCat("create bridge \"", name, "\""));
  }
  absl::Status CreateVeth(const netlink::VethSpec& spec) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("CreateVeth"); !s.ok()) return s;
    const std::string what = absl::StrCat("create veth \"", spec.name, "\"");
    FakeKernel::Namespace& here = Ns();
    FakeKernel::Namespace& there =
        spec.peer_netns_fd >= 0 ? k_->namespaces_[FakeKernel::KeyOfFd(spec.peer_netns_fd)] : here;
    if (spec.master > 0 && !HasIndex(here, spec.master)) return mesh::ErrnoToStatus(ENODEV, what);
    if (here.links.contains(spec.name) || there.links.contains(spec.peer_name) ||
        spec.name == spec.peer_name) {
      return mesh::ErrnoToStatus(EEXIST, what);
    }
    if (spec.name.size() > 15 || spec.peer_name.size() > 15)
      return mesh::ErrnoToStatus(EINVAL, what);
    netlink::LinkInfo host{.name = spec.name,
                           .kind = "veth",
                           .master = spec.master,
                           .up = true,
                           .mtu = spec.mtu,
                           .mac = "",
                           .alias = spec.alias};
    netlink::LinkInfo peer{.name = spec.peer_name,
                           .kind = "veth",
                           .up = true,
                           .mtu = spec.peer_mtu > 0 ? spec.peer_mtu : spec.mtu,
                           .mac = "",
                           .alias = "peer:" + spec.name};
    char mac[32];
    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", spec.peer_mac[0], spec.peer_mac[1],
             spec.peer_mac[2], spec.peer_mac[3], spec.peer_mac[4], spec.peer_mac[5]);
    peer.mac = mac;
    host.index = k_->next_index_++;
    peer.index = k_->next_index_++;
    here.links[host.name] = host;
    there.links[peer.name] = peer;
    return absl::OkStatus();
  }
  absl::Status DeleteLink(absl::string_view name) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("DeleteLink"); !s.ok()) return s;
    DeleteLocked(std::string(name));
    return absl::OkStatus();
  }
  absl::Status RetireLink(absl::string_view name, uint32_t group, bool down) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("RetireLink"); !s.ok()) return s;
    auto it = Ns().links.find(std::string(name));
    if (it == Ns().links.end()) return absl::OkStatus();
    if (down) it->second.up = false;
    it->second.group = group;
    return absl::OkStatus();
  }
  absl::Status DeleteLinkGroup(uint32_t group) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("DeleteLinkGroup"); !s.ok()) return s;
    if (group == 0) return mesh::ErrnoToStatus(EPERM, "delete link group 0");
    std::vector<std::string> doomed;
    for (const auto& [name, link] : Ns().links) {
      if (link.group == group) doomed.push_back(name);
    }
    for (const std::string& name : doomed) DeleteLocked(name);
    return absl::OkStatus();
  }
  absl::Status SetLinkUp(absl::string_view name) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("SetLinkUp"); !s.ok()) return s;
    if (name == "lo") return absl::OkStatus();
    auto it = Ns().links.find(std::string(name));
    if (it == Ns().links.end()) return mesh::ErrnoToStatus(ENODEV, "set link up");
    it->second.up = true;
    return absl::OkStatus();
  }
  absl::Status SetHairpin(absl::string_view port, bool on) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("SetHairpin"); !s.ok()) return s;
    auto it = Ns().links.find(std::string(port));
    if (it == Ns().links.end()) return mesh::ErrnoToStatus(ENODEV, "set hairpin");
    if (it->second.master == 0) return mesh::ErrnoToStatus(EOPNOTSUPP, "set hairpin");
    if (on) {
      Ns().hairpin[it->second.index] = it->second.name;
    } else {
      Ns().hairpin.erase(it->second.index);
    }
    return absl::OkStatus();
  }
  absl::Status AddAddress(int ifindex, const ipam::IpAddress& address, int prefix_length) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("AddAddress"); !s.ok()) return s;
    const netlink::LinkInfo* link = ByIndex(Ns(), ifindex);
    if (link == nullptr) return mesh::ErrnoToStatus(ENODEV, "add address");
    Ns().addresses[link->name].insert(absl::StrCat(address.ToString(), "/", prefix_length));
    return absl::OkStatus();
  }
  absl::Status AddDefaultRoute(const ipam::IpAddress& gateway, int ifindex) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("AddDefaultRoute"); !s.ok()) return s;
    const netlink::LinkInfo* link = ByIndex(Ns(), ifindex);
    if (link == nullptr) return mesh::ErrnoToStatus(ENODEV, "add default route");
    if (!Ns().default_route.empty()) return mesh::ErrnoToStatus(EEXIST, "add default route");
    Ns().default_route[gateway.ToString()] = link->name;
    return absl::OkStatus();
  }
  absl::Status AddRoute(const ipam::IpPrefix& destination, const ipam::IpAddress& gateway,
                        int ifindex) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("AddRoute"); !s.ok()) return s;
    const netlink::LinkInfo* link = ByIndex(Ns(), ifindex);
    if (link == nullptr) return mesh::ErrnoToStatus(ENODEV, "add route");
    const std::string prefix = absl::StrCat(destination.ToString(), " via ");
    for (const auto& [route, dev] : Ns().static_routes) {
      if (absl::StartsWith(route, prefix)) return mesh::ErrnoToStatus(EEXIST, "add route");
    }
    if (destination.length() == 0 && !Ns().default_route.empty()) {
      return mesh::ErrnoToStatus(EEXIST, "add route");
    }
    Ns().static_routes[absl::StrCat(prefix, gateway.ToString())] = link->name;
    return absl::OkStatus();
  }
  absl::Status SetEgressLimit(int ifindex, uint64_t rate_bps, uint64_t burst_bytes,
                              uint64_t limit_bytes) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("SetEgressLimit"); !s.ok()) return s;
    const netlink::LinkInfo* link = ByIndex(Ns(), ifindex);
    if (link == nullptr) return mesh::ErrnoToStatus(ENODEV, "set egress limit");
    Ns().qdiscs[link->name] =
        absl::StrCat("tbf rate ", rate_bps, " burst ", burst_bytes, " limit ", limit_bytes);
    return absl::OkStatus();
  }
  absl::Status EnableIpv4Forwarding() override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("EnableIpv4Forwarding"); !s.ok()) return s;
    Ns().ip_forward = true;
    return absl::OkStatus();
  }
  absl::Status DisableIpv6(absl::string_view name) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("DisableIpv6"); !s.ok()) return s;
    if (!Ns().links.contains(std::string(name))) {
      return mesh::ErrnoToStatus(ENOENT, "disable ipv6");  // as the sysctl file would
    }
    Ns().ipv6_off.insert(std::string(name));
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<ipam::IpPrefix>> ListRouteDestinations(ipam::Family) override {
    absl::MutexLock lock(&k_->mu_);
    if (absl::Status s = k_->Enter("ListRouteDestinations"); !s.ok()) return s;
    std::vector<ipam::IpPrefix> out = Ns().routes;
    for (const auto& [name, cidrs] : Ns().addresses) {
      for (const std::string& cidr : cidrs) {
        absl::StatusOr<ipam::IpAddress> a = ipam::IpAddress::Parse(cidr.substr(0, cidr.find('/')));
        absl::StatusOr<ipam::IpPrefix> p =
            ipam::IpPrefix::Containing(*a, std::stoi(cidr.substr(cidr.find('/') + 1)));
        if (p.ok()) out.push_back(*p);
      }
    }
    return out;
  }

 private:
  FakeKernel::Namespace& Ns() ABSL_EXCLUSIVE_LOCKS_REQUIRED(k_->mu_) {
    return k_->namespaces_[key_];
  }
  // Deletes one link of this namespace (absent: nothing); a veth pair dies whole.
  void DeleteLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k_->mu_) {
    FakeKernel::Namespace& here = Ns();
    auto it = here.links.find(name);
    if (it == here.links.end()) return;
    if (it->second.kind == "veth") {  // the pair dies whole, wherever the peer lives
      const std::string tag = "peer:" + name;
      for (auto& [key, other] : k_->namespaces_) {
        for (auto peer = other.links.begin(); peer != other.links.end(); ++peer) {
          if (peer->second.alias == tag) {
            Forget(other, peer->first, peer->second.index);
            other.links.erase(peer);
            break;
          }
        }
      }
    }
    for (auto& [n, link] : here.links) {
      if (link.master == it->second.index) link.master = 0;
    }
    Forget(here, it->first, it->second.index);
    here.links.erase(it);
  }
  static bool HasIndex(const FakeKernel::Namespace& ns, int index) { return ByIndex(ns, index); }
  static const netlink::LinkInfo* ByIndex(const FakeKernel::Namespace& ns, int index) {
    for (const auto& [name, link] : ns.links) {
      if (link.index == index) return &link;
    }
    return nullptr;
  }
  static void Forget(FakeKernel::Namespace& ns, const std::string& name, int index) {
    ns.addresses.erase(name);
    ns.ipv6_off.erase(name);
    ns.hairpin.erase(index);
    for (auto it = ns.default_route.begin(); it != ns.default_route.end();) {
      it = it->second == name ? ns.default_route.erase(it) : std::next(it);
    }
    for (auto it = ns.static_routes.begin(); it != ns.static_routes.end();) {
      it = it->second == name ? ns.static_routes.erase(it) : std::next(it);
    }
    ns.qdiscs.erase(name);
  }
  absl::Status AddLink(FakeKernel::Namespace& ns, netlink::LinkInfo link, const std::string& what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(k_->mu_) {
    if (link.name.empty() || link.name.size() > 15) return mesh::ErrnoToStatus(EINVAL, what);
    if (ns.links.contains(link.name)) return mesh::ErrnoToStatus(EEXIST, what);
    link.index = k_->next_index_++;
    ns.links[link.name] = link;
    return absl::OkStatus();
  }

  FakeKernel* const k_;
  const uint64_t key_;
};

std::unique_ptr<netlink::RtnlOps> FakeKernel::Ops(uint64_t ns) {
  return std::make_unique<FakeRtnlOps>(this, ns);
}

uint64_t FakeKernel::KeyOfFd(int fd) {
  struct stat st {};
  fstat(fd, &st);
  return st.st_ino;
}

void FakeKernel::FailAt(const std::string& method, int nth, absl::Status status) {
  absl::MutexLock lock(&mu_);
  failures_[method] = Failure{calls_[method] + nth, std::move(status)};
}

std::map<std::string, int> FakeKernel::Calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

absl::Status FakeKernel::Enter(const std::string& method) {
  int n = ++calls_[method];
  auto it = failures_.find(method);
  if (it != failures_.end() && it->second.nth == n) {
    absl::Status s = it->second.status;
    failures_.erase(it);
    return s;
  }
  return absl::OkStatus();
}

std::string FakeKernel::Dump() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [key, ns] : namespaces_) {
    if (ns.links.empty() && ns.routes.empty()) continue;  // touched, never used
    absl::StrAppend(&out, "netns ", key, "\n");
    for (const auto& [name, link] : ns.links) {
      absl::StrAppend(&out, "  link ", name, " ", link.kind, " master=", link.master,
                      link.up ? " up" : " down", " mtu=", link.mtu, " mac=", link.mac,
                      " alias=", link.alias,
                      link.group != 0 ? absl::StrCat(" group=", link.group) : "",
                      ns.ipv6_off.contains(name) ? " noipv6" : "", "\n");
    }
    for (const auto& [name, cidrs] : ns.addresses) {
      for (const std::string& cidr : cidrs) absl::StrAppend(&out, "  addr ", name, " ", cidr, "\n");
    }
    for (const auto& [via, dev] : ns.default_route) {
      absl::StrAppend(&out, "  default via ", via, " dev ", dev, "\n");
    }
    for (const auto& [route, dev] : ns.static_routes) {
      absl::StrAppend(&out, "  route ", route, " dev ", dev, "\n");
    }
    for (const auto& [dev, qdisc] : ns.qdiscs) {
      absl::StrAppend(&out, "  qdisc ", dev, " ", qdisc, "\n");
    }
    for (const auto& [index, name] : ns.hairpin) absl::StrAppend(&out, "  hairpin ", name, "\n");
    if (ns.ip_forward) absl::StrAppend(&out, "  ip_forward 1\n");
  }
  return out;
}

}  // namespace mesh::netplane::testing
