#include "netplane/netfilter/nft_trace.h"

#include <libmnl/libmnl.h>
#include <libnftnl/rule.h>
#include <libnftnl/trace.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "netplane/netfilter/group_socket.h"
#include "netplane/nft/nftnl_ptr.h"

namespace mesh::netplane::netfilter {
namespace {

using nft::NftnlPtr;

struct TraceDeleter {
  void operator()(nftnl_trace* p) const { nftnl_trace_free(p); }
};

std::string DataOf(const nftnl_trace* t, uint16_t attr) {
  if (!nftnl_trace_is_set(t, attr)) return "";
  uint32_t len = 0;
  const void* data = nftnl_trace_get_data(t, attr, &len);
  if (data == nullptr) return "";
  return std::string(static_cast<const char*>(data), len);
}

uint16_t Be16At(const std::string& bytes, size_t offset) {
  return static_cast<uint16_t>((static_cast<uint8_t>(bytes[offset]) << 8) |
                               static_cast<uint8_t>(bytes[offset + 1]));
}

bool IsMessage(const nlmsghdr* nlh, int msg) {
  return (nlh->nlmsg_type >> 8) == NFNL_SUBSYS_NFTABLES && (nlh->nlmsg_type & 0xff) == msg;
}

// The filter chains of mesh's tables (nft/ruleset.h): where a rule accepts or drops. Its nat
// chains and its trace chain only pass packets on.
bool IsFilterChainOf(const TraceEvent& e, absl::string_view table) {
  if (e.table != table) return false;
  if (e.family == NFPROTO_INET) return e.chain == "forward" || e.chain == "input";
  return e.family == NFPROTO_BRIDGE;
}

}  // namespace

absl::StatusOr<TraceEvent> ParseTraceEvent(const nlmsghdr* message) {
  if (!IsMessage(message, NFT_MSG_TRACE)) {
    return absl::InvalidArgumentError(
        absl::StrCat("nftables trace: message type ", message->nlmsg_type, " is not a trace"));
  }
  std::unique_ptr<nftnl_trace, TraceDeleter> t(nftnl_trace_alloc());
  if (t == nullptr) return absl::ResourceExhaustedError("nftables trace: out of memory");
  if (nftnl_trace_nlmsg_parse(message, t.get()) < 0) {
    return absl::InvalidArgumentError("nftables trace: malformed trace message");
  }
  TraceEvent e;
  e.id = nftnl_trace_get_u32(t.get(), NFTNL_TRACE_ID);
  e.type = nftnl_trace_get_u32(t.get(), NFTNL_TRACE_TYPE);
  e.family = static_cast<uint8_t>(nftnl_trace_get_u32(t.get(), NFTNL_TRACE_FAMILY));
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_TABLE)) {
    e.table = nftnl_trace_get_str(t.get(), NFTNL_TRACE_TABLE);
  }
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_CHAIN)) {
    e.chain = nftnl_trace_get_str(t.get(), NFTNL_TRACE_CHAIN);
  }
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_RULE_HANDLE)) {
    e.rule_handle = nftnl_trace_get_u64(t.get(), NFTNL_TRACE_RULE_HANDLE);
  }
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_VERDICT)) {
    e.verdict = static_cast<int32_t>(nftnl_trace_get_u32(t.get(), NFTNL_TRACE_VERDICT));
  }
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_JUMP_TARGET)) {
    e.jump_target = nftnl_trace_get_str(t.get(), NFTNL_TRACE_JUMP_TARGET);
  }
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_POLICY)) {
    e.policy = nftnl_trace_get_u32(t.get(), NFTNL_TRACE_POLICY);
  }
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_IIF)) {
    e.iif = nftnl_trace_get_u32(t.get(), NFTNL_TRACE_IIF);
  }
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_OIF)) {
    e.oif = nftnl_trace_get_u32(t.get(), NFTNL_TRACE_OIF);
  }
  e.network_header = DataOf(t.get(), NFTNL_TRACE_NETWORK_HEADER);
  e.transport_header = DataOf(t.get(), NFTNL_TRACE_TRANSPORT_HEADER);
  return e;
}

bool IsProbePacket(const TraceEvent& event, const ProbePacket& probe) {
  const std::string& ip = event.network_header;
  if (ip.size() < 20 || (static_cast<uint8_t>(ip[0]) >> 4) != 4) return false;
  if (static_cast<uint8_t>(ip[9]) != probe.proto) return false;
  if (std::memcmp(ip.data() + 12, &probe.source.s_addr, 4) != 0 ||
      std::memcmp(ip.data() + 16, &probe.destination.s_addr, 4) != 0) {
    return false;
  }
  const std::string& l4 = event.transport_header;
  const bool ports = l4.size() >= 4 && Be16At(l4, 0) == probe.source_port &&
                     Be16At(l4, 2) == probe.destination_port;
  if (probe.proto == IPPROTO_TCP) {
    // The SYN alone: the handshake's last ACK and the closing reset are of the same flow, but
    // established by then, so another rule accepts them.
    constexpr uint8_t kSyn = 0x02, kAck = 0x10;
    return ports && l4.size() >= 14 && (static_cast<uint8_t>(l4[13]) & (kSyn | kAck)) == kSyn;
  }
  if (probe.proto == IPPROTO_UDP) return ports;
  if (probe.proto == IPPROTO_ICMP) {
    return l4.size() >= 6 && static_cast<uint8_t>(l4[0]) == 8 /* echo request */ &&
           Be16At(l4, 4) == probe.icmp_id;
  }
  return true;
}

TraceDecision DecideFromTrace(const std::vector<TraceEvent>& events, const ProbePacket& probe,
                              absl::string_view table) {
  TraceDecision d;
  auto take = [&d](const TraceEvent& e, TraceDecision::Verdict verdict, bool by_policy) {
    d.verdict = verdict;
    d.by_policy = by_policy;
    d.family = e.family;
    d.table = e.table;
    d.chain = e.chain;
    d.rule_handle = by_policy ? 0 : e.rule_handle;
  };
  const TraceEvent* mesh_accept = nullptr;
  const TraceEvent* any_accept = nullptr;
  const TraceEvent* last_policy = nullptr;
  // The kernel puts the packet's headers in the first event of each base chain it passes, and
  // ids may repeat for later packets of the flow (the id hashes the skb's address, its flow
  // hash and input interface): an event belongs to the probe when the last event with headers
  // of its id was the probe's.
  std::map<uint32_t, bool> probe_pass;  // trace id -> the chain pass under way is the probe's
  for (const TraceEvent& e : events) {
    if (!e.network_header.empty()) probe_pass[e.id] = IsProbePacket(e, probe);
    if (!probe_pass[e.id]) continue;
    ++d.events;
    if (e.type == NFT_TRACETYPE_RULE && e.verdict == NF_DROP) {
      take(e, TraceDecision::Verdict::kDropped, false);
      return d;
    }
    if (e.type == NFT_TRACETYPE_POLICY && e.policy == NF_DROP) {
      take(e, TraceDecision::Verdict::kDropped, true);
      return d;
    }
    if (e.type == NFT_TRACETYPE_RULE && e.verdict == NF_ACCEPT) {
      any_accept = &e;
      if (IsFilterChainOf(e, table)) mesh_accept = &e;
    }
    // A chain policy decides in a filter chain; mesh's other chains only pass packets on.
    if (e.type == NFT_TRACETYPE_POLICY && (e.table != table || IsFilterChainOf(e, table))) {
      last_policy = &e;
    }
  }
  if (d.events == 0) return d;  // not traced
  if (mesh_accept != nullptr) {
    take(*mesh_accept, TraceDecision::Verdict::kAccepted, false);
  } else if (any_accept != nullptr) {
    take(*any_accept, TraceDecision::Verdict::kAccepted, false);
  } else if (last_policy != nullptr) {
    take(*last_policy, TraceDecision::Verdict::kAccepted, true);
  } else {
    d.verdict = TraceDecision::Verdict::kNoFilter;
  }
  return d;
}

absl::StatusOr<std::unique_ptr<TraceListener>> TraceListener::Open() {
  MESH_ASSIGN_OR_RETURN(nft::NftnlPtr<mnl_socket> nl,
                        OpenGroupSocket(NFNLGRP_NFTRACE, "nftables trace"));
  // A probe's path is a few dozen events; room for many concurrent checks besides.
  int size = 1 << 20;
  (void)setsockopt(mnl_socket_get_fd(nl.get()), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  return std::unique_ptr<TraceListener>(new TraceListener(nl.release()));
}

TraceListener::~TraceListener() { mnl_socket_close(socket_); }

int TraceListener::fd() const { return mnl_socket_get_fd(socket_); }

absl::StatusOr<std::vector<TraceEvent>> TraceListener::Drain() {
  std::vector<TraceEvent> out;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(socket_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return out;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        return absl::DataLossError(
            "nftables trace: events were lost (the listener's receive queue overflowed)");
      }
      return mesh::ErrnoToStatus(errno, "nftables trace: read events");
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (!IsMessage(nlh, NFT_MSG_TRACE)) continue;
      absl::StatusOr<TraceEvent> e = ParseTraceEvent(nlh);
      if (e.ok()) out.push_back(*std::move(e));
    }
  }
}

absl::StatusOr<RuleComments> ListRuleComments(uint8_t family, const std::string& table) {
  const std::string what = absl::StrCat("list the rules of nftables table ", table);
  NftnlPtr<mnl_socket> nl(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (nl == nullptr) return mesh::ErrnoToStatus(errno, what);
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) return mesh::ErrnoToStatus(errno, what);
  const uint32_t portid = mnl_socket_get_portid(nl.get());

  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  const uint32_t seq = 1;
  nlmsghdr* nlh =
      nftnl_rule_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, family, NLM_F_DUMP | NLM_F_ACK, seq);
  NftnlPtr<nftnl_rule> filter(nftnl_rule_alloc());
  nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_nlmsg_build_payload(nlh, filter.get());
  if (mnl_socket_sendto(nl.get(), nlh, nlh->nlmsg_len) < 0) return mesh::ErrnoToStatus(errno, what);

  RuleComments out;
  auto on_rule = [](const nlmsghdr* m, void* data) -> int {
    NftnlPtr<nftnl_rule> r(nftnl_rule_alloc());
    if (nftnl_rule_nlmsg_parse(m, r.get()) < 0) return MNL_CB_OK;
    std::string comment;
    if (nftnl_rule_is_set(r.get(), NFTNL_RULE_USERDATA)) {
      uint32_t len = 0;
      const void* ud = nftnl_rule_get_data(r.get(), NFTNL_RULE_USERDATA, &len);
      const nftnl_udata* attrs[NFTNL_UDATA_RULE_MAX + 1] = {};
      nftnl_udata_parse(
          ud, len,
          [](const nftnl_udata* attr, void* tb) -> int {
            uint8_t type = nftnl_udata_type(attr);
            if (type <= NFTNL_UDATA_RULE_MAX) static_cast<const nftnl_udata**>(tb)[type] = attr;
            return 0;
          },
          attrs);
      if (const nftnl_udata* c = attrs[NFTNL_UDATA_RULE_COMMENT]; c != nullptr) {
        comment.assign(static_cast<const char*>(nftnl_udata_get(c)),
                       strnlen(static_cast<const char*>(nftnl_udata_get(c)), nftnl_udata_len(c)));
      }
    }
    (*static_cast<RuleComments*>(data))[{nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN),
                                         nftnl_rule_get_u64(r.get(), NFTNL_RULE_HANDLE)}] =
        std::move(comment);
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
    if (n < 0) return mesh::ErrnoToStatus(errno, what);
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, on_rule, &out);
    if (r < 0) {
      if (errno == ENOENT) return out;  // no such table: no rules
      return mesh::ErrnoToStatus(errno, what);
    }
    if (r == MNL_CB_STOP) return out;
  }
}

}  // namespace mesh::netplane::netfilter
