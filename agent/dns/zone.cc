#include "agent/dns/zone.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/dns/message.h"

namespace mesh::agent::dns {
namespace {

using netplane::ipam::IpAddress;

std::string Fqdn(absl::string_view name) { return absl::StrCat(absl::AsciiStrToLower(name), "."); }

// Whether `name` (fully qualified, lower case) is "<first>." or "<first>.<second>.", in any
// case, without making that string: this runs for every candidate of every query.
bool IsFqdnOf(absl::string_view name, absl::string_view first, absl::string_view second = {}) {
  if (!absl::ConsumeSuffix(&name, ".")) return false;
  if (!second.empty()) {
    if (!absl::EndsWithIgnoreCase(name, second)) return false;
    name.remove_suffix(second.size());
    if (!absl::ConsumeSuffix(&name, ".")) return false;
  }
  return absl::EqualsIgnoreCase(name, first);
}

}  // namespace

// Every name of the entry, fully qualified: its container name, NAME.GROUP, its aliases.
std::set<std::string> Zone::NamesOf(const ZoneEntry& e) {
  std::set<std::string> names = {Fqdn(e.container)};
  if (!e.group.empty() && !e.member.empty())
    names.insert(Fqdn(absl::StrCat(e.member, ".", e.group)));
  for (const ZoneEntry::Address& a : e.addresses) {
    for (const std::string& alias : a.aliases) names.insert(Fqdn(alias));
  }
  return names;
}

void Zone::UnindexLocked(const ZoneEntry& e) {
  for (const std::string& name : NamesOf(e)) {
    auto it = names_.find(name);
    if (it == names_.end()) continue;
    it->second.erase(e.container);
    if (it->second.empty()) names_.erase(it);
  }
  for (const ZoneEntry::Address& a : e.addresses) {
    auto [first, last] = addresses_.equal_range(a.ip);
    for (auto it = first; it != last; ++it) {
      if (it->second == e.container) {
        addresses_.erase(it);
        break;
      }
    }
  }
}

void Zone::Put(ZoneEntry entry) {
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(entry.container); it != entries_.end()) UnindexLocked(it->second);
  for (const std::string& name : NamesOf(entry)) names_[name].insert(entry.container);
  for (const ZoneEntry::Address& a : entry.addresses) addresses_.emplace(a.ip, entry.container);
  std::string key = entry.container;
  entries_[key] = std::move(entry);
}

void Zone::Remove(absl::string_view container) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(container);
  if (it == entries_.end()) return;
  UnindexLocked(it->second);
  entries_.erase(it);
}

size_t Zone::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

Lookup Zone::Find(absl::string_view name, const IpAddress& client) const {
  absl::MutexLock lock(&mu_);
  // The client's networks and groups: those of the container that has its address.
  Client who;
  auto [first, last] = addresses_.equal_range(client);
  who.internal_only = first != last;
  for (auto it = first; it != last; ++it) {
    const ZoneEntry& e = entries_.find(it->second)->second;
    for (const ZoneEntry::Address& a : e.addresses) {
      who.networks.insert(a.network);
      who.internal_only = who.internal_only && a.internal;
    }
    if (!e.group.empty()) who.groups.insert(e.group);
  }
  Lookup out = FindLocked(name, who);
  if (out.kind != Lookup::Kind::kUnknown) return out;
  // The client's group is a domain holding every name it sees: "www.lab." is "www." for a
  // member of "lab". So is "lab-web.lab.": resolvers append the search domain to names without
  // dots, and some (busybox's nslookup) never try the bare name. Other names under the
  // group's domain ("google.dev." for a member of a group "dev") are not mesh's, and go
  // upstream.
  for (const std::string& group : who.groups) {
    const std::string suffix = absl::StrCat(".", group, ".");
    if (name.size() <= suffix.size() || !absl::EndsWith(name, suffix)) continue;
    const std::string stripped = absl::StrCat(name.substr(0, name.size() - suffix.size()), ".");
    Lookup within = FindLocked(stripped, who);
    if (within.kind != Lookup::Kind::kUnknown) return within;
  }
  if (who.internal_only) out.kind = Lookup::Kind::kRefused;
  return out;
}

Lookup Zone::FindLocked(absl::string_view name, const Client& who) const {
  Lookup out;
  // A name of mesh's the client may not see is NXDOMAIN unless it sees it elsewhere.
  auto visible = [&](const ZoneEntry::Address& a) {
    if (who.networks.contains(a.network)) {
      out.kind = Lookup::Kind::kFound;
      return true;
    }
    if (out.kind == Lookup::Kind::kUnknown) out.kind = Lookup::Kind::kHidden;
    return false;
  };
  if (std::optional<IpAddress> reverse = AddressOfReverseName(name)) {
    auto [first, last] = addresses_.equal_range(*reverse);
    for (auto it = first; it != last; ++it) {
      const ZoneEntry& e = entries_.find(it->second)->second;
      for (const ZoneEntry::Address& a : e.addresses) {
        if (a.ip == *reverse && visible(a)) out.names.push_back(Fqdn(e.container));
      }
    }
    return out;
  }
  auto named = names_.find(name);
  if (named == names_.end()) return out;
  for (const std::string& container : named->second) {
    const ZoneEntry& e = entries_.find(container)->second;
    const bool by_name = IsFqdnOf(name, e.container) || (!e.group.empty() && !e.member.empty() &&
                                                         IsFqdnOf(name, e.member, e.group));
    for (const ZoneEntry::Address& a : e.addresses) {
      bool matches = by_name;
      for (const std::string& alias : a.aliases) matches = matches || IsFqdnOf(name, alias);
      if (matches && visible(a)) out.addresses.push_back(a.ip);
    }
  }
  // A container without an address (on no network now) is still mesh's: never forwarded.
  if (out.kind == Lookup::Kind::kUnknown) out.kind = Lookup::Kind::kHidden;
  return out;
}

}  // namespace mesh::agent::dns
