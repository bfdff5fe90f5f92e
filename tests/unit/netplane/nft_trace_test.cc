#include "netplane/netfilter/nft_trace.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::netplane::netfilter {
namespace {

in_addr Addr(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return a;
}

// An IPv4 header (20 bytes) and the first 8 bytes of the transport header.
std::string Ipv4Header(const char* from, const char* to, uint8_t proto) {
  std::string h(20, '\0');
  h[0] = 0x45;
  h[9] = static_cast<char>(proto);
  in_addr s = Addr(from), d = Addr(to);
  std::memcpy(h.data() + 12, &s.s_addr, 4);
  std::memcpy(h.data() + 16, &d.s_addr, 4);
  return h;
}
std::string Ports(uint16_t source, uint16_t destination) {
  return {static_cast<char>(source >> 8),
          static_cast<char>(source & 0xff),
          static_cast<char>(destination >> 8),
          static_cast<char>(destination & 0xff),
          0,
          0,
          0,
          0};
}
// A TCP header of 20 bytes with the given flags (SYN: 0x02, ACK: 0x10).
std::string Tcp(uint16_t source, uint16_t destination, uint8_t flags = 0x02) {
  std::string h = Ports(source, destination);
  h.resize(20, '\0');
  h[12] = 0x50;
  h[13] = static_cast<char>(flags);
  return h;
}
std::string Echo(uint16_t id) {
  return {8, 0, 0, 0, static_cast<char>(id >> 8), static_cast<char>(id & 0xff), 0, 1};
}

ProbePacket TcpProbe() {
  ProbePacket p;
  p.source = Addr("10.79.0.10");
  p.destination = Addr("10.79.0.30");
  p.proto = IPPROTO_TCP;
  p.source_port = 40000;
  p.destination_port = 5432;
  return p;
}

TraceEvent Event(uint32_t id, const char* chain, uint32_t type, int32_t verdict,
                 uint64_t handle = 0, const char* table = "mesh", uint8_t family = NFPROTO_INET) {
  TraceEvent e;
  e.id = id;
  e.type = type;
  e.family = family;
  e.table = table;
  e.chain = chain;
  e.verdict = verdict;
  e.rule_handle = handle;
  return e;
}
TraceEvent WithHeaders(TraceEvent e, std::string ip, std::string l4) {
  e.network_header = std::move(ip);
  e.transport_header = std::move(l4);
  return e;
}

TEST(IsProbePacketTest, MatchesAddressesProtocolAndPorts) {
  const ProbePacket p = TcpProbe();
  const std::string ip = Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_TCP);
  EXPECT_TRUE(IsProbePacket(WithHeaders({}, ip, Tcp(40000, 5432)), p));
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, ip, Tcp(40001, 5432)), p));  // another flow
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, ip, Tcp(5432, 40000)), p));  // the reply
  // The same flow after the SYN: the handshake's ACK, the reset that closes it.
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, ip, Tcp(40000, 5432, 0x10)), p));
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, ip, Tcp(40000, 5432, 0x14)), p));
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, ip, Ports(40000, 5432)), p));  // no flags seen
  ProbePacket udp = p;
  udp.proto = IPPROTO_UDP;
  EXPECT_TRUE(IsProbePacket(
      WithHeaders({}, Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_UDP), Ports(40000, 5432)),
      udp));
  EXPECT_FALSE(IsProbePacket(
      WithHeaders({}, Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_UDP), Tcp(40000, 5432)), p));
  EXPECT_FALSE(IsProbePacket(
      WithHeaders({}, Ipv4Header("10.79.0.11", "10.79.0.30", IPPROTO_TCP), Tcp(40000, 5432)), p));
  EXPECT_FALSE(IsProbePacket({}, p));  // an event without headers
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, ip.substr(0, 19), Tcp(40000, 5432)), p));
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, ip, "\x9c\x40"), p));  // transport cut short

  ProbePacket echo;
  echo.source = Addr("10.77.1.11");
  echo.destination = Addr("10.77.2.11");
  echo.proto = IPPROTO_ICMP;
  echo.icmp_id = 0x1234;
  const std::string icmp_ip = Ipv4Header("10.77.1.11", "10.77.2.11", IPPROTO_ICMP);
  EXPECT_TRUE(IsProbePacket(WithHeaders({}, icmp_ip, Echo(0x1234)), echo));
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, icmp_ip, Echo(0x1235)), echo));
  std::string reply = Echo(0x1234);
  reply[0] = 0;  // an echo reply is not the probe
  EXPECT_FALSE(IsProbePacket(WithHeaders({}, icmp_ip, reply), echo));
}

// The path of a SYN dropped by a policy: the trace chain (nftrace set, then its policy), the
// nat chain, then forward: established (no match, no event), the default deny.
TEST(DecideFromTraceTest, TheFirstDropDecides) {
  const std::string ip = Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_TCP);
  std::vector<TraceEvent> events = {
      WithHeaders(Event(7, "trace", NFT_TRACETYPE_RULE, NFT_CONTINUE, 3), ip, Tcp(40000, 5432)),
      Event(7, "trace", NFT_TRACETYPE_POLICY, 0),
      WithHeaders(Event(7, "prerouting", NFT_TRACETYPE_POLICY, 0), ip, Tcp(40000, 5432)),
      WithHeaders(Event(7, "forward", NFT_TRACETYPE_RULE, NF_DROP, 27), ip, Tcp(40000, 5432)),
  };
  events[1].policy = NF_ACCEPT;
  events[2].policy = NF_ACCEPT;
  TraceDecision d = DecideFromTrace(events, TcpProbe(), "mesh");
  EXPECT_EQ(d.verdict, TraceDecision::Verdict::kDropped);
  EXPECT_FALSE(d.by_policy);
  EXPECT_EQ(d.table, "mesh");
  EXPECT_EQ(d.chain, "forward");
  EXPECT_EQ(d.rule_handle, 27u);
  EXPECT_EQ(d.events, 4);
}

TEST(DecideFromTraceTest, MeshsFilterAcceptWinsOverOtherAccepts) {
  const std::string ip = Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_TCP);
  std::vector<TraceEvent> events = {
      WithHeaders(Event(9, "trace", NFT_TRACETYPE_RULE, NFT_CONTINUE, 3), ip, Tcp(40000, 5432)),
      Event(9, "forward", NFT_TRACETYPE_RULE, NF_ACCEPT, 25),
      // Another program's table, later on the path, accepting too.
      Event(9, "fw", NFT_TRACETYPE_RULE, NF_ACCEPT, 4, "filter", NFPROTO_IPV4),
      // Another packet altogether: ignored.
      WithHeaders(Event(10, "forward", NFT_TRACETYPE_RULE, NF_DROP, 27),
                  Ipv4Header("10.79.0.20", "10.79.0.30", IPPROTO_TCP), Tcp(40000, 5432)),
  };
  TraceDecision d = DecideFromTrace(events, TcpProbe(), "mesh");
  EXPECT_EQ(d.verdict, TraceDecision::Verdict::kAccepted);
  EXPECT_EQ(d.chain, "forward");
  EXPECT_EQ(d.rule_handle, 25u);
  EXPECT_EQ(d.events, 3);
}

TEST(DecideFromTraceTest, EveryPassOfTheProbeCounts) {
  // Bridged into a router container, then routed by it back through the host: a second trace
  // id with the same headers, dropped there.
  const std::string ip = Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_TCP);
  std::vector<TraceEvent> events = {
      WithHeaders(Event(1, "forward", NFT_TRACETYPE_RULE, NF_ACCEPT, 18), ip, Tcp(40000, 5432)),
      WithHeaders(Event(2, "forward", NFT_TRACETYPE_RULE, NF_DROP, 12), ip, Tcp(40000, 5432)),
  };
  TraceDecision d = DecideFromTrace(events, TcpProbe(), "mesh");
  EXPECT_EQ(d.verdict, TraceDecision::Verdict::kDropped);
  EXPECT_EQ(d.rule_handle, 12u);
}

// The handshake's ACK came back with the SYN's trace id (the kernel reused the skb): its
// events, headers first, are not the probe's.
TEST(DecideFromTraceTest, LaterPacketsOfTheFlowWithTheSameIdAreNotTheProbe) {
  const std::string ip = Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_TCP);
  std::vector<TraceEvent> events = {
      WithHeaders(Event(5, "forward", NFT_TRACETYPE_RULE, NF_ACCEPT, 25), ip, Tcp(40000, 5432)),
      WithHeaders(Event(5, "trace", NFT_TRACETYPE_RULE, NFT_CONTINUE, 3), ip,
                  Tcp(40000, 5432, 0x10)),
      Event(5, "forward", NFT_TRACETYPE_RULE, NF_ACCEPT, 1),  // established: no headers
  };
  TraceDecision d = DecideFromTrace(events, TcpProbe(), "mesh");
  EXPECT_EQ(d.verdict, TraceDecision::Verdict::kAccepted);
  EXPECT_EQ(d.rule_handle, 25u);
  EXPECT_EQ(d.events, 1);
}

TEST(DecideFromTraceTest, PoliciesOfFilterChainsDecideWhenNoRuleDid) {
  const std::string ip = Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_TCP);
  TraceEvent trace_policy =
      WithHeaders(Event(3, "trace", NFT_TRACETYPE_POLICY, 0), ip, Tcp(40000, 5432));
  trace_policy.policy = NF_ACCEPT;
  TraceEvent forward_policy = Event(3, "forward", NFT_TRACETYPE_POLICY, 0);
  forward_policy.policy = NF_ACCEPT;

  // Only mesh's trace and nat chains: no filter chain met the packet.
  TraceDecision d = DecideFromTrace({trace_policy}, TcpProbe(), "mesh");
  EXPECT_EQ(d.verdict, TraceDecision::Verdict::kNoFilter);

  d = DecideFromTrace({trace_policy, forward_policy}, TcpProbe(), "mesh");
  EXPECT_EQ(d.verdict, TraceDecision::Verdict::kAccepted);
  EXPECT_TRUE(d.by_policy);
  EXPECT_EQ(d.chain, "forward");
  EXPECT_EQ(d.rule_handle, 0u);

  // Another table whose chain drops by policy.
  TraceEvent drop_policy = Event(3, "input", NFT_TRACETYPE_POLICY, 0, 0, "filter", NFPROTO_IPV4);
  drop_policy.policy = NF_DROP;
  d = DecideFromTrace({trace_policy, drop_policy}, TcpProbe(), "mesh");
  EXPECT_EQ(d.verdict, TraceDecision::Verdict::kDropped);
  EXPECT_TRUE(d.by_policy);
  EXPECT_EQ(d.table, "filter");

  EXPECT_EQ(DecideFromTrace({}, TcpProbe(), "mesh").verdict, TraceDecision::Verdict::kNotTraced);
}

// A trace message as the kernel sends it (nf_tables_trace.c), read back through libnftnl.
TEST(ParseTraceEventTest, ReadsWhatTheKernelSends) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = NFPROTO_INET;
  nfg->version = NFNETLINK_V0;
  mnl_attr_put_strz(nlh, NFTA_TRACE_TABLE, "mesh");
  mnl_attr_put_strz(nlh, NFTA_TRACE_CHAIN, "forward");
  mnl_attr_put_u64(nlh, NFTA_TRACE_RULE_HANDLE, htobe64(27));
  mnl_attr_put_u32(nlh, NFTA_TRACE_TYPE, htonl(NFT_TRACETYPE_RULE));
  nlattr* verdict = mnl_attr_nest_start(nlh, NFTA_TRACE_VERDICT);
  mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl(static_cast<uint32_t>(NF_DROP)));
  mnl_attr_nest_end(nlh, verdict);
  mnl_attr_put_u32(nlh, NFTA_TRACE_ID, htonl(0xabcd));
  const std::string ip = Ipv4Header("10.79.0.10", "10.79.0.30", IPPROTO_TCP);
  const std::string l4 = Tcp(40000, 5432);
  mnl_attr_put(nlh, NFTA_TRACE_NETWORK_HEADER, ip.size(), ip.data());
  mnl_attr_put(nlh, NFTA_TRACE_TRANSPORT_HEADER, l4.size(), l4.data());
  mnl_attr_put_u32(nlh, NFTA_TRACE_IIF, htonl(5));
  mnl_attr_put_u32(nlh, NFTA_TRACE_OIF, htonl(6));
  mnl_attr_put_u32(nlh, NFTA_TRACE_NFPROTO, htonl(NFPROTO_IPV4));

  absl::StatusOr<TraceEvent> e = ParseTraceEvent(nlh);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->id, 0xabcdu);
  EXPECT_EQ(e->type, static_cast<uint32_t>(NFT_TRACETYPE_RULE));
  EXPECT_EQ(e->family, NFPROTO_INET);
  EXPECT_EQ(e->table, "mesh");
  EXPECT_EQ(e->chain, "forward");
  EXPECT_EQ(e->rule_handle, 27u);
  EXPECT_EQ(e->verdict, NF_DROP);
  EXPECT_EQ(e->iif, 5u);
  EXPECT_EQ(e->oif, 6u);
  EXPECT_EQ(e->network_header, ip);
  EXPECT_EQ(e->transport_header, l4);
  EXPECT_TRUE(IsProbePacket(*e, TcpProbe()));

  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE;
  EXPECT_EQ(ParseTraceEvent(nlh).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mesh::netplane::netfilter
