#pragma once

// DNS on the wire for tests of meshd's DNS, made and read by ldns (they link it through
// mesh_agent_dns): a query as a stub resolver sends it, an answer as tests look at it, a
// client socket in a namespace, and one UDP exchange.

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/dns/ldns.h"
#include "base/ns/namespace_handle.h"
#include "base/unique_fd.h"

namespace mesh::testing {

inline std::string QueryWire(const char* name, ldns_rr_type type, uint16_t id = 0x1234,
                             ldns_rr_class klass = LDNS_RR_CLASS_IN) {
  ldns_pkt* q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), type, klass, LDNS_RD);
  ldns_pkt_set_id(q, id);
  uint8_t* wire = nullptr;
  size_t size = 0;
  std::string out;
  if (ldns_pkt2wire(&wire, q, &size) == LDNS_STATUS_OK) {
    out.assign(reinterpret_cast<const char*>(wire), size);
  }
  std::free(wire);
  ldns_pkt_free(q);
  return out;
}

struct DnsAnswer {
  bool received = false;
  uint16_t id = 0;
  uint8_t rcode = 0;
  std::vector<std::string> records;  // the answer section's rdata as ldns prints it
};

inline DnsAnswer ReadDnsAnswer(const std::string& wire) {
  DnsAnswer a;
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) !=
      LDNS_STATUS_OK) {
    return a;
  }
  a.received = true;
  a.id = ldns_pkt_id(p);
  a.rcode = ldns_pkt_get_rcode(p);
  const ldns_rr_list* answers = ldns_pkt_answer(p);
  for (size_t i = 0; answers != nullptr && i < ldns_rr_list_rr_count(answers); ++i) {
    char* text = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(answers, i), 0));
    a.records.emplace_back(text);
    std::free(text);
  }
  ldns_pkt_free(p);
  return a;
}

// A UDP socket made in `netns`: what it sends comes from there (a member's address, when it
// is a member's namespace). Invalid if it could not be made.
inline UniqueFd UdpSocketIn(const NamespaceHandle& netns) {
  UniqueFd fd;
  (void)RunInNetns(netns, [&] {
    fd = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    return absl::OkStatus();
  });
  return fd;
}

// Port 53 of the IPv4 address `ip`.
inline sockaddr_in DnsAddress(const char* ip) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(53);
  inet_pton(AF_INET, ip, &sa.sin_addr);
  return sa;
}

// One query over UDP from the socket `fd` to `server` port 53; the answer, or none (received
// false) within `wait`.
inline DnsAnswer AskUdp(int fd, const char* server, const std::string& query,
                        absl::Duration wait = absl::Seconds(5)) {
  const sockaddr_in to = DnsAddress(server);
  if (::sendto(fd, query.data(), query.size(), 0, reinterpret_cast<const sockaddr*>(&to),
               sizeof(to)) < 0) {
    return {};
  }
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) != 1) return {};
  char buf[65536];
  const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  if (n <= 0) return {};
  return ReadDnsAnswer(std::string(buf, static_cast<size_t>(n)));
}

}  // namespace mesh::testing
