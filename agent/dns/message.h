#pragma once

// DNS messages for meshd's embedded server, read and written with ldns (Debian's libldns):
// nothing here parses or lays out wire format by hand. Pure functions; safe on any bytes.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netplane/ipam/ip.h"

namespace mesh::agent::dns {

// The one question of a standard query.
struct Query {
  uint16_t id = 0;
  std::string name;   // lower case, fully qualified ("web.tiers.")
  uint16_t type = 0;  // LDNS_RR_TYPE_A, _AAAA, _PTR, ...
  uint16_t klass = 0;
  bool recursion_desired = false;
  uint16_t udp_size = 512;  // what the client takes over UDP (EDNS0), at least 512
};

// A query as it came: InvalidArgument for what is not a standard query with one question (a
// response, another opcode, no or several questions, truncated or garbled bytes).
absl::StatusOr<Query> ParseQuery(absl::string_view wire);

// What meshd answers for a query's name.
struct Reply {
  uint8_t rcode = 0;  // LDNS_RCODE_NOERROR, _NXDOMAIN, _SERVFAIL, _REFUSED
  std::vector<netplane::ipam::IpAddress> addresses;  // A (IPv4) and AAAA (IPv6) answers
  std::vector<std::string> names;                    // PTR answers ("web.tiers.")
  uint32_t ttl = 0;
};

// The response to `query`: its id and question, QR, AA (mesh's own names) and RA set, the
// answers of `reply` that match the question's type. Over UDP, with `max_size` (the client's
// udp_size), answers that do not fit are left out and TC is set.
absl::StatusOr<std::string> BuildResponse(const Query& query, const Reply& reply,
                                          size_t max_size = 65535);

// The id of a message, whatever else it holds: for matching forwarded answers. 0 if it has
// fewer than 2 bytes.
uint16_t MessageId(absl::string_view wire);
// The same bytes with another id (the first two bytes).
std::string WithId(absl::string_view wire, uint16_t id);

// "10.79.0.20" -> "20.0.79.10.in-addr.arpa." (IPv4: mesh's networks); and back (nullopt for
// another name).
std::string ReverseName(const netplane::ipam::IpAddress& address);
std::optional<netplane::ipam::IpAddress> AddressOfReverseName(absl::string_view name);

}  // namespace mesh::agent::dns
