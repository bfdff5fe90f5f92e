// libFuzzer target for meshd's DNS messages (TESTING.md #20): any bytes are a query or
// INVALID_ARGUMENT; a query's response builds, within the size asked, and reads back as a
// response with the query's id; the zone answers any name. Built with clang only:
//
//   cmake --preset asan -DMESH_BUILD_FUZZERS=ON && cmake --build build/asan --target
//   dns_message_fuzz && build/asan/tests/dns_message_fuzz -max_total_time=300 -max_len=4096
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/dns/message.h"
#include "agent/dns/zone.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mesh::agent::dns::Query;
  using mesh::netplane::ipam::IpAddress;
  const absl::string_view wire(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Query> query = mesh::agent::dns::ParseQuery(wire);
  if (!query.ok()) {
    if (query.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  static mesh::agent::dns::Zone* zone = [] {
    auto* z = new mesh::agent::dns::Zone();  // NOLINT: lives for the process
    z->Put({"tiers-web", "tiers", "web", {{"tiers", IpAddress::V4(0x0a4f000a), {"www"}}}});
    return z;
  }();
  mesh::agent::dns::Lookup found = zone->Find(query->name, IpAddress::V4(0x0a4f000a));
  mesh::agent::dns::Reply reply;
  reply.addresses = found.addresses;
  reply.names = found.names;
  absl::StatusOr<std::string> response = mesh::agent::dns::BuildResponse(*query, reply, 512);
  if (!response.ok()) return 0;  // a name ldns reads but will not write back
  if (response->size() > 512 || mesh::agent::dns::MessageId(*response) != query->id) std::abort();
  return 0;
}
