#include "netplane/netfilter/conntrack.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"

namespace mesh::netplane::netfilter {
namespace {

struct MnlSocketDeleter {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};
using MnlSocket = std::unique_ptr<mnl_socket, MnlSocketDeleter>;

nlmsghdr* PutHeader(char* buf, uint16_t type, uint16_t flags, uint32_t seq) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | type);
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_INET;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  return nlh;
}

// Attributes by type (up to CTA_MAX), filled by mnl_attr_parse*.
struct AttrTable {
  const nlattr* by_type[CTA_MAX + 1] = {};
};
int CollectAttr(const nlattr* attr, void* data) {
  auto* table = static_cast<AttrTable*>(data);
  uint16_t type = mnl_attr_get_type(attr);
  if (type <= CTA_MAX) table->by_type[type] = attr;
  return MNL_CB_OK;
}

// One nested attribute of `parent` by type, or nullptr.
const nlattr* Nested(const nlattr* parent, uint16_t type) {
  AttrTable table;
  if (mnl_attr_parse_nested(parent, CollectAttr, &table) < 0) return nullptr;
  return table.by_type[type];
}

struct DumpState {
  const std::vector<ProtoPort>* ports;
  // Raw CTA_TUPLE_ORIG (and CTA_ZONE, if any) of every matching entry, to send back in a
  // delete request as they came.
  std::vector<std::string> matches;
};

int OnEntry(const nlmsghdr* nlh, void* data) {
  auto* state = static_cast<DumpState*>(data);
  AttrTable table;
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), CollectAttr, &table) < 0) return MNL_CB_OK;
  const nlattr* orig = table.by_type[CTA_TUPLE_ORIG];
  const nlattr* zone = table.by_type[CTA_ZONE];
  if (orig == nullptr) return MNL_CB_OK;
  const nlattr* proto = Nested(orig, CTA_TUPLE_PROTO);
  if (proto == nullptr) return MNL_CB_OK;
  const nlattr* num = Nested(proto, CTA_PROTO_NUM);
  const nlattr* dport = Nested(proto, CTA_PROTO_DST_PORT);
  if (num == nullptr || dport == nullptr) return MNL_CB_OK;
  const int entry_proto = mnl_attr_get_u8(num);
  const uint16_t entry_port = ntohs(mnl_attr_get_u16(dport));
  if (std::none_of(state->ports->begin(), state->ports->end(), [&](const ProtoPort& p) {
        return p.proto == entry_proto && p.port == entry_port;
      })) {
    return MNL_CB_OK;
  }
  std::string raw(reinterpret_cast<const char*>(orig), mnl_attr_get_len(orig));
  raw.resize(MNL_ALIGN(raw.size()), '\0');
  if (zone != nullptr) {
    std::string z(reinterpret_cast<const char*>(zone), mnl_attr_get_len(zone));
    z.resize(MNL_ALIGN(z.size()), '\0');
    raw += z;
  }
  state->matches.push_back(std::move(raw));
  return MNL_CB_OK;
}

constexpr char kCountPath[] = "/proc/sys/net/netfilter/nf_conntrack_count";

// Whether the namespace tracks no connection at all; `count_fd` < 0: open the file now.
bool TracksNothing(int count_fd) {
  if (count_fd < 0) {
    absl::StatusOr<std::string> count = ReadFile(kCountPath);
    return count.ok() && absl::StripAsciiWhitespace(*count) == "0";
  }
  char buf[32];
  ssize_t n = pread(count_fd, buf, sizeof(buf), 0);
  return n > 0 && absl::StripAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))) == "0";
}

absl::StatusOr<int> Flush(const std::vector<ProtoPort>& ports, int count_fd);

}  // namespace

ConntrackFlusher ConntrackFlusher::Open() {
  return ConntrackFlusher(UniqueFd(open(kCountPath, O_RDONLY | O_CLOEXEC)));
}

absl::StatusOr<int> ConntrackFlusher::Flush(const std::vector<ProtoPort>& ports) const {
  return netfilter::Flush(ports, count_ ? count_.get() : -1);
}

namespace {

absl::StatusOr<int> Flush(const std::vector<ProtoPort>& ports, int count_fd) {
  if (ports.empty()) return 0;
  std::vector<std::string> names;
  for (const ProtoPort& p : ports) {
    names.push_back(absl::StrCat(p.proto == IPPROTO_UDP ? "udp" : "tcp", "/", p.port));
  }
  const std::string what = absl::StrCat("flush conntrack entries for ", absl::StrJoin(names, ", "));
  // A dump walks every bucket of the kernel's conntrack hash, whatever is in it (about 9 ms
  // for 262144 buckets): skip it when this namespace tracks nothing at all.
  if (TracksNothing(count_fd)) return 0;
  MnlSocket nl(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (!nl) return mesh::ErrnoToStatus(errno, what);
  if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) return mesh::ErrnoToStatus(errno, what);
  const uint32_t portid = mnl_socket_get_portid(nl.get());

  // Dump all IPv4 entries and pick the matches (the kernel's CTA_FILTER cannot select on the
  // port alone on every kernel we support).
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  uint32_t seq = 1;
  nlmsghdr* dump = PutHeader(buf.data(), IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq);
  if (mnl_socket_sendto(nl.get(), dump, dump->nlmsg_len) < 0) {
    return mesh::ErrnoToStatus(errno, what);
  }
  DumpState state{&ports, {}};
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
    if (n < 0) return mesh::ErrnoToStatus(errno, what);
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, OnEntry, &state);
    if (r == MNL_CB_ERROR) return mesh::ErrnoToStatus(errno, what);
    if (r == MNL_CB_STOP) break;
  }

  int deleted = 0;
  for (const std::string& tuple : state.matches) {
    nlmsghdr* nlh = PutHeader(buf.data(), IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, ++seq);
    std::memcpy(static_cast<char*>(mnl_nlmsg_get_payload_tail(nlh)), tuple.data(), tuple.size());
    nlh->nlmsg_len += static_cast<uint32_t>(tuple.size());
    if (mnl_socket_sendto(nl.get(), nlh, nlh->nlmsg_len) < 0)
      return mesh::ErrnoToStatus(errno, what);
    ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
    if (n < 0) return mesh::ErrnoToStatus(errno, what);
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, nullptr, nullptr);
    if (r == MNL_CB_ERROR && errno != ENOENT) return mesh::ErrnoToStatus(errno, what);
    ++deleted;  // ENOENT: it expired meanwhile, which is just as good
  }
  return deleted;
}

}  // namespace
}  // namespace mesh::netplane::netfilter
