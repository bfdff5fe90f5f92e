#include "netplane/network/link_manager.h"

#include <sched.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/quote.h"
#include "base/rollback.h"
#include "base/status_macros.h"
#include "netplane/network/names.h"

namespace mesh::netplane {
namespace {

constexpr absl::string_view kAliasPrefix = "mesh link ";

std::string EndText(const LinkEnd& end) {
  std::string out =
      absl::StrCat(end.container_id, "|", end.netns_path, "|", end.ifname, "|", end.mtu, "|");
  for (const ipam::InterfaceAddress& a : end.addresses) absl::StrAppend(&out, a.ToString(), ",");
  if (end.egress) absl::StrAppend(&out, "|", end.egress->rate_bps, "/", end.egress->burst_bytes);
  for (const StaticRoute& r : end.routes) absl::StrAppend(&out, "|", r.ToString());
  return out;
}

std::string Where(const LinkConfig& link, const LinkEnd& end) {
  return absl::StrCat("link ", link.id, ": ", end.container_id, ":", end.ifname);
}

absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

}  // namespace

std::string LinkAlias(const LinkConfig& link) {
  const std::string text =
      absl::StrCat(link.id, "#", EndText(link.ends[0]), "#", EndText(link.ends[1]));
  return absl::StrFormat("%s%s %016x", kAliasPrefix, link.id, StableHash(text));
}

bool IsLinkAlias(absl::string_view alias) { return absl::StartsWith(alias, kAliasPrefix); }

std::string LinkIdOfAlias(absl::string_view alias) {
  if (!IsLinkAlias(alias)) return "";
  alias.remove_prefix(kAliasPrefix.size());
  const size_t space = alias.rfind(' ');
  return std::string(space == alias.npos ? alias : alias.substr(0, space));
}

absl::Status SetEgress(netlink::RtnlOps& ops, int ifindex, const EgressLimit& egress) {
  const uint64_t limit = egress.burst_bytes + egress.rate_bps / 8 / 50;
  return ops.SetEgressLimit(ifindex, egress.rate_bps, egress.burst_bytes, limit);
}

absl::Status LinkManager::Validate(const LinkConfig& link) {
  if (link.id.empty() || absl::StrContains(link.id, ' ')) {
    return absl::InvalidArgumentError(
        absl::StrCat("link id ", Quote(link.id), " must be non-empty, without spaces"));
  }
  for (const LinkEnd& end : link.ends) {
    const std::string where = Where(link, end);
    if (!IsValidIfname(end.ifname) || end.ifname == "lo") {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": interface name must be 1 to 15 bytes, not \"lo\", without '/', ':' or spaces"));
    }
    if (end.netns_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": no network namespace"));
    }
    if (end.mtu < 68 || end.mtu > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": mtu ", end.mtu, " is outside 68 to 65535"));
    }
    std::set<std::string> seen;
    for (const ipam::InterfaceAddress& a : end.addresses) {
      if (!seen.insert(a.ToString()).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": address ", a.ToString(), " is given twice"));
      }
    }
    for (const StaticRoute& route : end.routes) {
      bool on_link = false;
      for (const ipam::InterfaceAddress& a : end.addresses) {
        on_link = on_link || (a.subnet().Contains(route.via) && a.address != route.via);
      }
      if (!on_link) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": route ", route.ToString(),
                                                       ": the next hop is on none of the "
                                                       "interface's subnets"));
      }
    }
  }
  if (link.ends[0].netns_path == link.ends[1].netns_path &&
      link.ends[0].ifname == link.ends[1].ifname) {
    return absl::InvalidArgumentError(absl::StrCat("link ", link.id, ": both ends are ",
                                                   link.ends[0].ifname, " of ",
                                                   Quote(link.ends[0].container_id)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<netlink::RtnlOps>> LinkManager::OpenIn(const std::string& netns_path,
                                                                      NamespaceHandle* handle) {
  MESH_ASSIGN_OR_RETURN(*handle, NamespaceHandle::Open(netns_path, CLONE_NEWNET));
  return open_(*handle);
}

absl::Status LinkManager::ConfigureEnd(netlink::RtnlOps& ops, const LinkEnd& end) {
  bool v6 = false;
  for (const ipam::InterfaceAddress& a : end.addresses) v6 = v6 || !a.address.is_v4();
  if (!v6) MESH_RETURN_IF_ERROR(ops.DisableIpv6(end.ifname));
  MESH_RETURN_IF_ERROR(ops.SetLinkUp("lo"));
  MESH_RETURN_IF_ERROR(ops.SetLinkUp(end.ifname));
  MESH_ASSIGN_OR_RETURN(netlink::LinkInfo info, ops.GetLink(end.ifname));
  for (const ipam::InterfaceAddress& a : end.addresses) {
    MESH_RETURN_IF_ERROR(Annotate(ops.AddAddress(info.index, a.address, a.length),
                                  absl::StrCat("address ", a.ToString())));
  }
  if (end.egress) MESH_RETURN_IF_ERROR(SetEgress(ops, info.index, *end.egress));
  for (const StaticRoute& route : end.routes) {
    MESH_RETURN_IF_ERROR(Annotate(ops.AddRoute(route.destination, route.via, info.index),
                                  absl::StrCat("route ", route.ToString())));
  }
  return absl::OkStatus();
}

absl::Status LinkManager::Create(const LinkConfig& link) {
  MESH_RETURN_IF_ERROR(Validate(link));
  const LinkEnd& a = link.ends[0];
  const LinkEnd& b = link.ends[1];
  NamespaceHandle ns_a, ns_b;
  absl::StatusOr<std::unique_ptr<netlink::RtnlOps>> ops_a = OpenIn(a.netns_path, &ns_a);
  if (!ops_a.ok()) return Annotate(ops_a.status(), Where(link, a));
  absl::StatusOr<std::unique_ptr<netlink::RtnlOps>> ops_b = OpenIn(b.netns_path, &ns_b);
  if (!ops_b.ok()) return Annotate(ops_b.status(), Where(link, b));

  // One request makes both ends in their namespaces under their final names.
  netlink::VethSpec veth;
  veth.name = a.ifname;
  veth.mtu = a.mtu;
  veth.alias = LinkAlias(link);
  veth.peer_name = b.ifname;
  veth.peer_mtu = b.mtu;
  veth.peer_mac = ContainerMac(b.container_id, absl::StrCat("link ", b.ifname));
  veth.peer_netns_fd = ns_b.fd();
  absl::Status created = (*ops_a)->CreateVeth(veth);
  if (absl::IsAlreadyExists(created)) {
    return absl::AlreadyExistsError(absl::StrCat("link ", link.id, ": ", Quote(a.container_id),
                                                 " has an interface ", Quote(a.ifname),
                                                 " already, or ", Quote(b.container_id), " has ",
                                                 Quote(b.ifname), "; pick another interface name"));
  }
  MESH_RETURN_IF_ERROR(Annotate(created, absl::StrCat("link ", link.id)));
  Rollback undo;
  undo.Push([&ops_a, name = a.ifname] { (*ops_a)->DeleteLink(name).IgnoreError(); });
  MESH_RETURN_IF_ERROR(Annotate(ConfigureEnd(**ops_a, a), Where(link, a)));
  MESH_RETURN_IF_ERROR(Annotate(ConfigureEnd(**ops_b, b), Where(link, b)));
  undo.Commit();
  return absl::OkStatus();
}

absl::StatusOr<bool> LinkManager::Present(const LinkConfig& link) {
  NamespaceHandle ns;
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<netlink::RtnlOps> ops,
                        OpenIn(link.ends[0].netns_path, &ns));
  absl::StatusOr<netlink::LinkInfo> info = ops->GetLink(link.ends[0].ifname);
  if (absl::IsNotFound(info.status())) return false;
  if (!info.ok()) return info.status();
  return info->alias == LinkAlias(link);
}

absl::StatusOr<std::vector<PlumbedLink>> LinkManager::List(const std::string& netns_path) {
  NamespaceHandle ns;
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<netlink::RtnlOps> ops, OpenIn(netns_path, &ns));
  MESH_ASSIGN_OR_RETURN(std::vector<netlink::LinkInfo> links, ops->ListLinks());
  std::vector<PlumbedLink> out;
  for (const netlink::LinkInfo& l : links) {
    if (IsLinkAlias(l.alias)) out.push_back({l.name, l.alias});
  }
  return out;
}

absl::Status LinkManager::Remove(const std::string& netns_path, const std::string& ifname) {
  NamespaceHandle ns;
  absl::StatusOr<std::unique_ptr<netlink::RtnlOps>> ops = OpenIn(netns_path, &ns);
  if (absl::IsNotFound(ops.status())) return absl::OkStatus();  // the namespace took it along
  if (!ops.ok()) return ops.status();
  return (*ops)->DeleteLink(ifname);
}

}  // namespace mesh::netplane
