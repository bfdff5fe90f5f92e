#include "netplane/netlink/libnl_rtnl_ops.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "netplane/netlink/nl_error.h"
#include "netplane/netlink/sysctl.h"

namespace mesh::netplane::netlink {
namespace {

constexpr size_t kMaxIfName = IFNAMSIZ - 1;

int AfOf(ipam::Family family) { return family == ipam::Family::kV4 ? AF_INET : AF_INET6; }

absl::Status CheckIfName(absl::string_view name, absl::string_view what) {
  if (name.empty() || name.size() > kMaxIfName) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": interface name \"", name, "\" is ",
                                                   name.size(), " bytes; it must be 1 to ",
                                                   kMaxIfName));
  }
  return absl::OkStatus();
}

bool IsNotFound(int nl_error) {
  int err = NlErrorToErrno(nl_error);
  return err == ENODEV || err == ENOENT;
}

absl::StatusOr<NlPtr<nl_addr>> ParseNlAddr(const std::string& text, int family,
                                           absl::string_view what) {
  nl_addr* raw = nullptr;
  int err = nl_addr_parse(text.c_str(), family, &raw);
  if (err < 0) return NlErrorToStatus(err, absl::StrCat(what, ": address \"", text, "\""));
  return NlPtr<nl_addr>(raw);
}

LinkInfo ToInfo(rtnl_link* link) {
  LinkInfo info;
  info.index = rtnl_link_get_ifindex(link);
  if (const char* name = rtnl_link_get_name(link)) info.name = name;
  if (const char* kind = rtnl_link_get_type(link)) info.kind = kind;
  info.master = rtnl_link_get_master(link);
  info.up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
  info.mtu = static_cast<int>(rtnl_link_get_mtu(link));
  if (nl_addr* mac = rtnl_link_get_addr(link); mac != nullptr && nl_addr_get_len(mac) == 6) {
    char buf[64];
    info.mac = nl_addr2str(mac, buf, sizeof(buf));
  }
  if (const char* alias = rtnl_link_get_ifalias(link)) info.alias = alias;
  info.group = rtnl_link_get_group(link);
  return info;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LibnlRtnlOps>> LibnlRtnlOps::Open() {
  NlPtr<nl_sock> sock(nl_socket_alloc());
  if (!sock) return absl::ResourceExhaustedError("netlink: cannot allocate a socket");
  // libnl opens the socket with SOCK_CLOEXEC.
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return NlErrorToStatus(err, "netlink: connect NETLINK_ROUTE socket");
  }
  return std::unique_ptr<LibnlRtnlOps>(new LibnlRtnlOps(std::move(sock)));
}

absl::StatusOr<std::unique_ptr<LibnlRtnlOps>> LibnlRtnlOps::OpenIn(const NamespaceHandle& netns) {
  absl::StatusOr<std::unique_ptr<LibnlRtnlOps>> ops =
      absl::InternalError("netlink: socket not opened");
  MESH_RETURN_IF_ERROR(RunInNetns(netns, [&] {
    ops = Open();
    return ops.status();
  }));
  if (!ops.ok()) return ops;
  // Our own handle on the namespace (the caller's may close first), for sysctls.
  MESH_ASSIGN_OR_RETURN(
      NamespaceHandle own,
      NamespaceHandle::Open(absl::StrCat("/proc/self/fd/", netns.fd()), CLONE_NEWNET));
  (*ops)->netns_ = std::move(own);
  return ops;
}

absl::StatusOr<NlPtr<rtnl_link>> LibnlRtnlOps::GetLinkLocked(absl::string_view name) {
  const std::string what = absl::StrCat("get link \"", name, "\"");
  MESH_RETURN_IF_ERROR(CheckIfName(name, what));
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, std::string(name).c_str(), &raw);
  if (err < 0) {
    if (IsNotFound(err)) return absl::NotFoundError(absl::StrCat(what, ": no such link"));
    return NlErrorToStatus(err, what);
  }
  return NlPtr<rtnl_link>(raw);
}

absl::StatusOr<LinkInfo> LibnlRtnlOps::GetLink(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  MESH_ASSIGN_OR_RETURN(NlPtr<rtnl_link> link, GetLinkLocked(name));
  return ToInfo(link.get());
}

absl::StatusOr<std::vector<LinkInfo>> LibnlRtnlOps::ListLinks() {
  absl::MutexLock lock(&mu_);
  nl_cache* raw = nullptr;
  if (int err = rtnl_link_alloc_cache(sock_.get(), AF_UNSPEC, &raw); err < 0) {
    return NlErrorToStatus(err, "list links");
  }
  NlPtr<nl_cache> cache(raw);
  std::vector<LinkInfo> links;
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    links.push_back(ToInfo(reinterpret_cast<rtnl_link*>(obj)));
  }
  return links;
}

absl::Status LibnlRtnlOps::CreateBridge(absl::string_view name, int mtu, absl::string_view alias) {
  const std::string what = absl::StrCat("create bridge \"", name, "\"");
  MESH_RETURN_IF_ERROR(CheckIfName(name, what));
  // Built by hand: libnl's bridge type cannot set IFLA_BR_MCAST_SNOOPING. Snooping off: every
  // port state change (each attach and detach) otherwise re-arms the multicast timers of every
  // port of the bridge, which made attach cost grow with the number of containers. Multicast
  // is then flooded, as on a bridge without a querier, which container networks are.
  NlPtr<nl_msg> msg(
      nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL));
  if (!msg) return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  const std::string name_str(name), alias_str(alias);
  bool built = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0 &&
               nla_put_string(msg.get(), IFLA_IFNAME, name_str.c_str()) >= 0 &&
               nla_put_u32(msg.get(), IFLA_MTU, static_cast<uint32_t>(mtu)) >= 0;
  nlattr* info = built ? nla_nest_start(msg.get(), IFLA_LINKINFO) : nullptr;
  built = info != nullptr && nla_put_string(msg.get(), IFLA_INFO_KIND, "bridge") >= 0;
  nlattr* data = built ? nla_nest_start(msg.get(), IFLA_INFO_DATA) : nullptr;
  built = data != nullptr && nla_put_u8(msg.get(), IFLA_BR_MCAST_SNOOPING, 0) >= 0 &&
          nla_nest_end(msg.get(), data) >= 0 && nla_nest_end(msg.get(), info) >= 0;
  if (!built) return absl::InternalError(absl::StrCat(what, ": cannot build the request"));
  absl::MutexLock lock(&mu_);
  int err = nl_send_auto(sock_.get(), msg.get());
  if (err >= 0) err = nl_wait_for_ack(sock_.get());
  MESH_RETURN_IF_ERROR(NlErrorToStatus(err, what));
  return SetAliasAfterCreateLocked(name_str, alias_str, what);
}

absl::Status LibnlRtnlOps::SetAliasAfterCreateLocked(const std::string& name,
                                                     const std::string& alias,
                                                     const std::string& what) {
  // The kernel takes IFLA_IFALIAS only when it changes a link, never when it creates one (the
  // create path of rtnl_newlink does not look at it): a second request sets it. A link that
  // cannot get its alias goes again, so the call fails as a whole.
  if (alias.empty()) return absl::OkStatus();
  absl::StatusOr<NlPtr<rtnl_link>> orig = GetLinkLocked(name);
  int err = orig.ok() ? 0 : -NLE_OBJ_NOTFOUND;
  if (orig.ok()) {
    NlPtr<rtnl_link> change(rtnl_link_alloc());
    rtnl_link_set_ifalias(change.get(), alias.c_str());
    err = rtnl_link_change(sock_.get(), orig->get(), change.get(), 0);
  }
  if (err >= 0) return absl::OkStatus();
  NlPtr<rtnl_link> gone(rtnl_link_alloc());
  rtnl_link_set_name(gone.get(), name.c_str());
  rtnl_link_delete(sock_.get(), gone.get());  // best effort: the alias error is the one to report
  return NlErrorToStatus(err, absl::StrCat(what, ": set its alias"));
}

absl::Status LibnlRtnlOps::CreateVeth(const VethSpec& spec) {
  const std::string what =
      absl::StrCat("create veth \"", spec.name, "\" (peer \"", spec.peer_name, "\")");
  MESH_RETURN_IF_ERROR(CheckIfName(spec.name, what));
  MESH_RETURN_IF_ERROR(CheckIfName(spec.peer_name, what));
  NlPtr<rtnl_link> link(rtnl_link_veth_alloc());
  if (!link) return absl::ResourceExhaustedError(what);
  NlPtr<rtnl_link> peer(rtnl_link_veth_get_peer(link.get()));  // takes a reference
  rtnl_link_set_name(link.get(), spec.name.c_str());
  rtnl_link_set_mtu(link.get(), static_cast<unsigned>(spec.mtu));
  if (spec.master > 0) rtnl_link_set_master(link.get(), spec.master);
  rtnl_link_set_flags(link.get(), IFF_UP);

  // The peer is born in the target namespace with its final name and MAC: there is no moment
  // at which a half-configured interface sits in the host namespace under a temporary name.
  rtnl_link_set_name(peer.get(), spec.peer_name.c_str());
  rtnl_link_set_mtu(peer.get(),
                    static_cast<unsigned>(spec.peer_mtu > 0 ? spec.peer_mtu : spec.mtu));
  NlPtr<nl_addr> mac(nl_addr_build(AF_LLC, spec.peer_mac.data(), spec.peer_mac.size()));
  rtnl_link_set_addr(peer.get(), mac.get());
  if (spec.peer_netns_fd >= 0) rtnl_link_set_ns_fd(peer.get(), spec.peer_netns_fd);
  // Not IFF_UP on the peer: the kernel configures the peer before the pair is linked, and
  // opening a veth without its peer fails with ENOTCONN. The caller brings it up inside.

  absl::MutexLock lock(&mu_);
  MESH_RETURN_IF_ERROR(
      NlErrorToStatus(rtnl_link_add(sock_.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL), what));
  return SetAliasAfterCreateLocked(spec.name, spec.alias, what);
}

absl::Status LibnlRtnlOps::DeleteLink(absl::string_view name) {
  const std::string what = absl::StrCat("delete link \"", name, "\"");
  MESH_RETURN_IF_ERROR(CheckIfName(name, what));
  NlPtr<rtnl_link> link(rtnl_link_alloc());
  rtnl_link_set_name(link.get(), std::string(name).c_str());
  absl::MutexLock lock(&mu_);
  int err = rtnl_link_delete(sock_.get(), link.get());
  if (err < 0 && IsNotFound(err)) return absl::OkStatus();  // already gone
  return NlErrorToStatus(err, what);
}

absl::Status LibnlRtnlOps::SetLinkUp(absl::string_view name) {
  const std::string what = absl::StrCat("set link \"", name, "\" up");
  absl::MutexLock lock(&mu_);
  MESH_ASSIGN_OR_RETURN(NlPtr<rtnl_link> orig, GetLinkLocked(name));
  if (rtnl_link_get_flags(orig.get()) & IFF_UP) return absl::OkStatus();
  NlPtr<rtnl_link> change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  return NlErrorToStatus(rtnl_link_change(sock_.get(), orig.get(), change.get(), 0), what);
}

absl::Status LibnlRtnlOps::RetireLink(absl::string_view name, uint32_t group, bool down) {
  const std::string what = absl::StrCat("retire link \"", name, "\"");
  MESH_RETURN_IF_ERROR(CheckIfName(name, what));
  // No lookup first: with index 0 the kernel finds the link by the name in the change itself.
  NlPtr<rtnl_link> orig(rtnl_link_alloc());
  NlPtr<rtnl_link> change(rtnl_link_alloc());
  rtnl_link_set_name(change.get(), std::string(name).c_str());
  if (down) rtnl_link_unset_flags(change.get(), IFF_UP);
  rtnl_link_set_group(change.get(), group);
  absl::MutexLock lock(&mu_);
  int err = rtnl_link_change(sock_.get(), orig.get(), change.get(), 0);
  if (err < 0 && IsNotFound(err)) return absl::OkStatus();  // already gone
  return NlErrorToStatus(err, what);
}

absl::Status LibnlRtnlOps::DeleteLinkGroup(uint32_t group) {
  const std::string what = absl::StrCat("delete the links of group ", group);
  if (group == 0) return absl::InvalidArgumentError(absl::StrCat(what, ": group 0 is every link"));
  // libnl's delete request needs a name or an index; a group delete is a bare RTM_DELLINK with
  // IFLA_GROUP (rtnl_group_dellink in the kernel).
  NlPtr<nl_msg> msg(nlmsg_alloc_simple(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK));
  if (!msg) return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
      nla_put_u32(msg.get(), IFLA_GROUP, group) < 0) {
    return absl::InternalError(absl::StrCat(what, ": cannot build the request"));
  }
  absl::MutexLock lock(&mu_);
  int err = nl_send_auto(sock_.get(), msg.get());
  if (err >= 0) err = nl_wait_for_ack(sock_.get());
  if (err < 0 && IsNotFound(err)) return absl::OkStatus();  // no link in the group
  return NlErrorToStatus(err, what);
}

absl::Status LibnlRtnlOps::SetHairpin(absl::string_view port, bool on) {
  const std::string what = absl::StrCat("set hairpin mode of bridge port \"", port, "\"");
  MESH_RETURN_IF_ERROR(CheckIfName(port, what));
  // By name, as `ip link set dev PORT type bridge_slave hairpin on` does: the port's bridge
  // options as IFLA_INFO_SLAVE_DATA, so no lookup of its index is needed first. libnl has no
  // setter for IFLA_BRPORT_MODE, so the request is built by hand.
  NlPtr<nl_msg> msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK));
  if (!msg) return absl::ResourceExhaustedError(what);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  const std::string name(port);
  bool built = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0 &&
               nla_put_string(msg.get(), IFLA_IFNAME, name.c_str()) >= 0;
  nlattr* info = built ? nla_nest_start(msg.get(), IFLA_LINKINFO) : nullptr;
  built = info != nullptr && nla_put_string(msg.get(), IFLA_INFO_SLAVE_KIND, "bridge") >= 0;
  nlattr* data = built ? nla_nest_start(msg.get(), IFLA_INFO_SLAVE_DATA) : nullptr;
  built = data != nullptr && nla_put_u8(msg.get(), IFLA_BRPORT_MODE, on ? 1 : 0) >= 0 &&
          nla_nest_end(msg.get(), data) >= 0 && nla_nest_end(msg.get(), info) >= 0;
  if (!built) return absl::InternalError(absl::StrCat(what, ": cannot build the request"));
  absl::MutexLock lock(&mu_);
  int err = nl_send_auto(sock_.get(), msg.get());
  if (err >= 0) err = nl_wait_for_ack(sock_.get());
  return NlErrorToStatus(err, what);
}

absl::Status LibnlRtnlOps::AddAddress(int ifindex, const ipam::IpAddress& address,
                                      int prefix_length) {
  const std::string cidr = absl::StrCat(address.ToString(), "/", prefix_length);
  const std::string what = absl::StrCat("add address ", cidr, " to link ", ifindex);
  MESH_ASSIGN_OR_RETURN(NlPtr<nl_addr> local, ParseNlAddr(cidr, AfOf(address.family()), what));
  NlPtr<rtnl_addr> addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  // Addresses mesh gives are its own to give: no duplicate address detection, so an IPv6
  // address works at once instead of after a second of "tentative" (as Docker does).
  if (!address.is_v4()) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) {
    return NlErrorToStatus(err, what);
  }
  absl::MutexLock lock(&mu_);
  int err = rtnl_addr_add(sock_.get(), addr.get(), 0);
  if (err < 0 && NlErrorToErrno(err) == EEXIST) return absl::OkStatus();
  return NlErrorToStatus(err, what);
}

absl::Status LibnlRtnlOps::AddDefaultRoute(const ipam::IpAddress& gateway, int ifindex) {
  absl::StatusOr<ipam::IpPrefix> any = ipam::IpPrefix::Containing(gateway, 0);
  if (!any.ok()) return any.status();
  return AddRouteAs(*any, gateway, ifindex,
                    absl::StrCat("add default route via ", gateway.ToString(), " dev ", ifindex));
}

absl::Status LibnlRtnlOps::AddRoute(const ipam::IpPrefix& destination,
                                    const ipam::IpAddress& gateway, int ifindex) {
  return AddRouteAs(destination, gateway, ifindex,
                    absl::StrCat("add route ", destination.ToString(), " via ", gateway.ToString(),
                                 " dev ", ifindex));
}

absl::Status LibnlRtnlOps::AddRouteAs(const ipam::IpPrefix& destination,
                                      const ipam::IpAddress& gateway, int ifindex,
                                      const std::string& what) {
  const int af = AfOf(gateway.family());
  if (destination.family() != gateway.family()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the gateway is of another family"));
  }
  MESH_ASSIGN_OR_RETURN(NlPtr<nl_addr> dst, ParseNlAddr(destination.ToString(), af, what));
  MESH_ASSIGN_OR_RETURN(NlPtr<nl_addr> via, ParseNlAddr(gateway.ToString(), af, what));
  NlPtr<rtnl_route> route(rtnl_route_alloc());
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(af));
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
  rtnl_route_set_protocol(route.get(), RTPROT_STATIC);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  if (int err = rtnl_route_set_dst(route.get(), dst.get()); err < 0) {
    return NlErrorToStatus(err, what);
  }
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (nh == nullptr) return absl::ResourceExhaustedError(what);
  rtnl_route_nh_set_ifindex(nh, ifindex);
  rtnl_route_nh_set_gateway(nh, via.get());
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns the nexthop from here
  absl::MutexLock lock(&mu_);
  return NlErrorToStatus(rtnl_route_add(sock_.get(), route.get(), NLM_F_EXCL), what);
}

absl::Status LibnlRtnlOps::SetEgressLimit(int ifindex, uint64_t rate_bps, uint64_t burst_bytes,
                                          uint64_t limit_bytes) {
  const std::string what = absl::StrCat("set egress limit ", rate_bps, " bit/s, burst ",
                                        burst_bytes, " bytes on link ", ifindex);
  // libnl's tbf takes bytes per second and sizes as int.
  constexpr uint64_t kMaxInt = 0x7fffffff;
  if (rate_bps / 8 > kMaxInt || burst_bytes > kMaxInt || limit_bytes > kMaxInt) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": too large for tc"));
  }
  NlPtr<rtnl_qdisc> qdisc(rtnl_qdisc_alloc());
  if (qdisc == nullptr) return absl::ResourceExhaustedError(what);
  rtnl_tc* tc = TC_CAST(qdisc.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, TC_H_ROOT);
  rtnl_tc_set_handle(tc, TC_HANDLE(1, 0));
  if (int err = rtnl_tc_set_kind(tc, "tbf"); err < 0) return NlErrorToStatus(err, what);
  rtnl_qdisc_tbf_set_limit(qdisc.get(), static_cast<int>(limit_bytes));
  rtnl_qdisc_tbf_set_rate(qdisc.get(), static_cast<int>(rate_bps / 8),
                          static_cast<int>(burst_bytes), 0);
  absl::MutexLock lock(&mu_);
  return NlErrorToStatus(rtnl_qdisc_add(sock_.get(), qdisc.get(), NLM_F_CREATE | NLM_F_REPLACE),
                         what);
}

absl::Status LibnlRtnlOps::EnableIpv4Forwarding() {
  // /proc/sys/net belongs to the namespace of the thread that opens it.
  if (!netns_) return WriteSysctl("net/ipv4/ip_forward", "1");
  return RunInNetns(*netns_, [] { return WriteSysctl("net/ipv4/ip_forward", "1"); });
}

absl::Status LibnlRtnlOps::DisableIpv6(absl::string_view name) {
  MESH_RETURN_IF_ERROR(CheckIfName(name, absl::StrCat("disable IPv6 on link \"", name, "\"")));
  const std::string key = absl::StrCat("net/ipv6/conf/", name, "/disable_ipv6");
  auto write = [&key] {
    absl::Status s = WriteSysctl(key, "1");
    // No such file: a kernel without IPv6 (ipv6.disable=1), nothing to turn off.
    return absl::IsNotFound(s) && access("/proc/sys/net/ipv6", F_OK) != 0 ? absl::OkStatus() : s;
  };
  if (!netns_) return write();
  return RunInNetns(*netns_, write);
}

absl::StatusOr<std::vector<ipam::IpPrefix>> LibnlRtnlOps::ListRouteDestinations(
    ipam::Family family) {
  const int af = AfOf(family);
  absl::MutexLock lock(&mu_);
  nl_cache* raw = nullptr;
  if (int err = rtnl_route_alloc_cache(sock_.get(), af, 0, &raw); err < 0) {
    return NlErrorToStatus(err, "list routes");
  }
  NlPtr<nl_cache> cache(raw);
  std::vector<ipam::IpPrefix> out;
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    auto* route = reinterpret_cast<rtnl_route*>(obj);
    if (rtnl_route_get_table(route) != RT_TABLE_MAIN) continue;
    nl_addr* dst = rtnl_route_get_dst(route);
    if (dst == nullptr || nl_addr_get_prefixlen(dst) == 0) continue;  // default route
    char text[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(af, nl_addr_get_binary_addr(dst), text, sizeof(text)) == nullptr) continue;
    absl::StatusOr<ipam::IpPrefix> prefix =
        ipam::IpPrefix::Parse(absl::StrCat(text, "/", nl_addr_get_prefixlen(dst)));
    if (prefix.ok()) out.push_back(*prefix);
  }
  return out;
}

}  // namespace mesh::netplane::netlink
