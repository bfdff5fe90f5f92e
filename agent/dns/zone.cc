#include "agent/dns/zone.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "agent/dns/message.h"

namespace mesh::agent::dns {
namespace {

using netplane::ipam::IpAddress;

std::string Fqdn(absl::string_view name) { return absl::StrCat(absl::AsciiStrToLower(name), "."); }

}  // namespace

void Zone::Put(ZoneEntry entry) {
  absl::MutexLock lock(&mu_);
  std::string key = entry.container;
  entries_[key] = std::move(entry);
}

void Zone::Remove(absl::string_view container) {
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(container); it != entries_.end()) entries_.erase(it);
}

size_t Zone::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

Lookup Zone::Find(absl::string_view name, const IpAddress& client) const {
  absl::MutexLock lock(&mu_);
  // The client's networks: those of the container that has its address.
  std::set<std::string, std::less<>> shared;
  for (const auto& [container, e] : entries_) {
    for (const ZoneEntry::Address& a : e.addresses) {
      if (a.ip == client) {
        for (const ZoneEntry::Address& b : e.addresses) shared.insert(b.network);
      }
    }
  }
  Lookup out;
  if (std::optional<IpAddress> reverse = AddressOfReverseName(name)) {
    for (const auto& [container, e] : entries_) {
      for (const ZoneEntry::Address& a : e.addresses) {
        if (a.ip != *reverse) continue;
        if (!shared.contains(a.network)) {
          if (out.kind == Lookup::Kind::kUnknown) out.kind = Lookup::Kind::kHidden;
          continue;
        }
        out.kind = Lookup::Kind::kFound;
        out.names.push_back(Fqdn(e.container));
      }
    }
    return out;
  }
  for (const auto& [container, e] : entries_) {
    const bool by_name =
        name == Fqdn(e.container) || (!e.group.empty() && !e.member.empty() &&
                                      name == Fqdn(absl::StrCat(e.member, ".", e.group)));
    for (const ZoneEntry::Address& a : e.addresses) {
      bool matches = by_name;
      for (const std::string& alias : a.aliases) matches = matches || name == Fqdn(alias);
      if (!matches) continue;
      if (!shared.contains(a.network)) {
        if (out.kind == Lookup::Kind::kUnknown) out.kind = Lookup::Kind::kHidden;
        continue;
      }
      out.kind = Lookup::Kind::kFound;
      out.addresses.push_back(a.ip);
    }
  }
  return out;
}

}  // namespace mesh::agent::dns
