#pragma once

// A DNS query as a stub resolver sends it, made by ldns (for tests of meshd's DNS; they link
// ldns through mesh_agent_dns).

#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/dns/ldns.h"

namespace mesh::testing {

inline std::string QueryWire(const char* name, ldns_rr_type type, uint16_t id = 0x1234) {
  ldns_pkt* q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), type, LDNS_RR_CLASS_IN, LDNS_RD);
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

}  // namespace mesh::testing
