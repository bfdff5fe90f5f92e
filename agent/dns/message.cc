#include "agent/dns/message.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <span>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/dns/ldns.h"

namespace mesh::agent::dns {
namespace {

using netplane::ipam::IpAddress;

struct LdnsDeleter {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
  void operator()(ldns_rr* p) const { ldns_rr_free(p); }
  void operator()(ldns_rdf* p) const { ldns_rdf_deep_free(p); }
};
template <typename T>
using LdnsPtr = std::unique_ptr<T, LdnsDeleter>;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("DNS message: ", what));
}

// A dname as ldns prints it, lower case ("web.tiers.").
std::string NameText(const ldns_rdf* name) {
  char* text = ldns_rdf2str(name);
  if (text == nullptr) return "";
  std::string out = absl::AsciiStrToLower(text);
  std::free(text);
  return out;
}

// One answer record of `owner`, or nullptr when ldns refuses the data.
LdnsPtr<ldns_rr> Record(const ldns_rdf* owner, ldns_rr_type type, uint32_t ttl, ldns_rdf* data) {
  if (data == nullptr) return nullptr;
  LdnsPtr<ldns_rr> rr(ldns_rr_new());
  ldns_rdf* owner_copy = ldns_rdf_clone(owner);
  if (rr == nullptr || owner_copy == nullptr) {
    ldns_rdf_deep_free(data);
    if (owner_copy != nullptr) ldns_rdf_deep_free(owner_copy);
    return nullptr;
  }
  ldns_rr_set_owner(rr.get(), owner_copy);
  ldns_rr_set_type(rr.get(), type);
  ldns_rr_set_ttl(rr.get(), ttl);
  ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
  if (!ldns_rr_push_rdf(rr.get(), data)) {
    ldns_rdf_deep_free(data);
    return nullptr;
  }
  return rr;
}

// The wire form of `query`'s response with the first `answers` of `records`.
absl::StatusOr<std::string> Wire(const Query& query, const Reply& reply, const ldns_rdf* qname,
                                 const std::vector<LdnsPtr<ldns_rr>>& records, size_t answers,
                                 bool truncated) {
  LdnsPtr<ldns_pkt> pkt(ldns_pkt_new());
  if (pkt == nullptr) return absl::ResourceExhaustedError("DNS message: out of memory");
  ldns_pkt_set_id(pkt.get(), query.id);
  ldns_pkt_set_qr(pkt.get(), true);
  ldns_pkt_set_aa(pkt.get(),
                  reply.rcode == LDNS_RCODE_NOERROR || reply.rcode == LDNS_RCODE_NXDOMAIN);
  ldns_pkt_set_rd(pkt.get(), query.recursion_desired);
  ldns_pkt_set_ra(pkt.get(), true);
  ldns_pkt_set_tc(pkt.get(), truncated);
  ldns_pkt_set_opcode(pkt.get(), LDNS_PACKET_QUERY);
  ldns_pkt_set_rcode(pkt.get(), reply.rcode);
  ldns_rr* question = ldns_rr_new();
  ldns_rdf* qname_copy = ldns_rdf_clone(qname);
  if (question == nullptr || qname_copy == nullptr) {
    if (question != nullptr) ldns_rr_free(question);
    if (qname_copy != nullptr) ldns_rdf_deep_free(qname_copy);
    return absl::ResourceExhaustedError("DNS message: out of memory");
  }
  ldns_rr_set_owner(question, qname_copy);
  ldns_rr_set_type(question, static_cast<ldns_rr_type>(query.type));
  ldns_rr_set_class(question, static_cast<ldns_rr_class>(query.klass));
  ldns_rr_set_question(question, true);
  ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_QUESTION, question);
  for (size_t i = 0; i < answers; ++i) {
    ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER, ldns_rr_clone(records[i].get()));
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_status s = ldns_pkt2wire(&wire, pkt.get(), &size); s != LDNS_STATUS_OK) {
    return Invalid(ldns_get_errorstr_by_id(s));
  }
  std::string out(reinterpret_cast<const char*>(wire), size);
  std::free(wire);
  return out;
}

}  // namespace

absl::StatusOr<Query> ParseQuery(absl::string_view wire) {
  ldns_pkt* raw = nullptr;
  if (ldns_status s =
          ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
      s != LDNS_STATUS_OK) {
    return Invalid(ldns_get_errorstr_by_id(s));
  }
  LdnsPtr<ldns_pkt> pkt(raw);
  if (ldns_pkt_qr(pkt.get())) return Invalid("is a response, not a query");
  if (ldns_pkt_get_opcode(pkt.get()) != LDNS_PACKET_QUERY) {
    return Invalid(absl::StrCat("opcode ", ldns_pkt_get_opcode(pkt.get()), " is not QUERY"));
  }
  const ldns_rr_list* questions = ldns_pkt_question(pkt.get());
  if (questions == nullptr || ldns_rr_list_rr_count(questions) != 1) {
    return Invalid("a query has exactly one question");
  }
  const ldns_rr* q = ldns_rr_list_rr(questions, 0);
  Query out;
  out.id = ldns_pkt_id(pkt.get());
  out.name = NameText(ldns_rr_owner(q));
  if (out.name.empty()) return Invalid("the question has no name");
  out.type = static_cast<uint16_t>(ldns_rr_get_type(q));
  out.klass = static_cast<uint16_t>(ldns_rr_get_class(q));
  out.recursion_desired = ldns_pkt_rd(pkt.get());
  if (ldns_pkt_edns(pkt.get())) {
    out.udp_size = std::max<uint16_t>(512, ldns_pkt_edns_udp_size(pkt.get()));
  }
  return out;
}

absl::StatusOr<std::string> BuildResponse(const Query& query, const Reply& reply, size_t max_size) {
  LdnsPtr<ldns_rdf> qname(ldns_dname_new_frm_str(query.name.c_str()));
  if (qname == nullptr) return Invalid(absl::StrCat("\"", query.name, "\" is not a name"));
  std::vector<LdnsPtr<ldns_rr>> records;
  const bool in = query.klass == LDNS_RR_CLASS_IN || query.klass == LDNS_RR_CLASS_ANY;
  const bool any = query.type == LDNS_RR_TYPE_ANY;
  if (in && reply.rcode == LDNS_RCODE_NOERROR) {
    for (const IpAddress& a : reply.addresses) {
      const bool v4 = a.is_v4();
      if (!any && query.type != (v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA)) continue;
      const std::span<const uint8_t> bytes = a.bytes();
      ldns_rdf* data = v4 ? ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, bytes.data())
                          : ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, bytes.data());
      if (LdnsPtr<ldns_rr> rr =
              Record(qname.get(), v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA, reply.ttl, data)) {
        records.push_back(std::move(rr));
      }
    }
    if (any || query.type == LDNS_RR_TYPE_PTR) {
      for (const std::string& name : reply.names) {
        if (LdnsPtr<ldns_rr> rr = Record(qname.get(), LDNS_RR_TYPE_PTR, reply.ttl,
                                         ldns_dname_new_frm_str(name.c_str()))) {
          records.push_back(std::move(rr));
        }
      }
    }
  }
  size_t answers = records.size();
  absl::StatusOr<std::string> wire = Wire(query, reply, qname.get(), records, answers, false);
  while (wire.ok() && wire->size() > max_size && answers > 0) {
    --answers;  // what does not fit is left out, and the client told so (TC)
    wire = Wire(query, reply, qname.get(), records, answers, true);
  }
  return wire;
}

uint16_t MessageId(absl::string_view wire) {
  if (wire.size() < 2) return 0;
  return static_cast<uint16_t>(static_cast<uint8_t>(wire[0]) << 8 | static_cast<uint8_t>(wire[1]));
}

std::string WithId(absl::string_view wire, uint16_t id) {
  std::string out(wire);
  if (out.size() >= 2) {
    out[0] = static_cast<char>(id >> 8);
    out[1] = static_cast<char>(id & 0xff);
  }
  return out;
}

std::string ReverseName(const IpAddress& address) {
  const std::span<const uint8_t> b = address.bytes();
  return absl::StrCat(b[3], ".", b[2], ".", b[1], ".", b[0], ".in-addr.arpa.");
}

std::optional<IpAddress> AddressOfReverseName(absl::string_view name) {
  name = absl::StripSuffix(name, ".");
  if (!absl::ConsumeSuffix(&name, ".in-addr.arpa")) return std::nullopt;
  std::vector<absl::string_view> parts = absl::StrSplit(name, '.');
  if (parts.size() != 4) return std::nullopt;
  uint32_t host_order = 0;
  for (int i = 3; i >= 0; --i) {
    uint32_t octet = 0;
    const absl::string_view p = parts[static_cast<size_t>(i)];
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &octet) || octet > 255) {
      return std::nullopt;
    }
    host_order = host_order << 8 | octet;
  }
  return IpAddress::V4(host_order);
}

}  // namespace mesh::agent::dns
