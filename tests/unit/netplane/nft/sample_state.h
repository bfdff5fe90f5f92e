#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "netplane/nft/ruleset.h"

namespace mesh::netplane::nft::sample {

inline in_addr Addr(const char* text) {
  in_addr a{};
  if (inet_pton(AF_INET, text, &a) != 1) std::abort();
  return a;
}

inline NetworkEntry Front() { return {"front", "mbr-front", Addr("10.88.0.0"), 24, true, false}; }
// Internal, so without NAT (as the network manager builds it).
inline NetworkEntry Lab() { return {"lab", "mbr-lab", Addr("10.88.1.0"), 24, false, true}; }

inline PortEntry WebPort() {
  return {IPPROTO_TCP, std::nullopt, 8080, Addr("10.88.0.2"), 80, "web-1/front"};
}
// Bound to one host address.
inline PortEntry DnsPort() {
  return {IPPROTO_UDP, Addr("203.0.113.1"), 5353, Addr("10.88.1.3"), 53, "dns/lab"};
}

// Two networks (one with NAT, one internal) and two published ports (one bound to a host
// address): the state the reports and goldens use.
inline DesiredState State() { return {{Front(), Lab()}, {WebPort(), DnsPort()}}; }

// `n` NAT networks 10.(n / 256).(n % 256).0/24 and `n` published tcp ports.
inline DesiredState Scaled(int n) {
  DesiredState state;
  for (int i = 0; i < n; ++i) {
    const std::string subnet = absl::StrCat("10.", 100 + i / 256, ".", i % 256, ".0");
    state.networks.push_back(
        {absl::StrCat("net", i), absl::StrCat("mbr-", i), Addr(subnet.c_str()), 24, true, false});
    const std::string container = absl::StrCat("10.", 100 + i / 256, ".", i % 256, ".2");
    state.ports.push_back({IPPROTO_TCP, std::nullopt, static_cast<uint16_t>(10000 + i),
                           Addr(container.c_str()), 80, absl::StrCat("c", i)});
  }
  return state;
}

}  // namespace mesh::netplane::nft::sample
