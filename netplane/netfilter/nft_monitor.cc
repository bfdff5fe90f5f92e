#include "netplane/netfilter/nft_monitor.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "netplane/netfilter/group_socket.h"

namespace mesh::netplane::netfilter {
namespace {

const char* EventName(int msg) {
  switch (msg) {
    case NFT_MSG_NEWTABLE:
      return "table added";
    case NFT_MSG_DELTABLE:
      return "table deleted";
    case NFT_MSG_NEWCHAIN:
      return "chain added";
    case NFT_MSG_DELCHAIN:
      return "chain deleted";
    case NFT_MSG_NEWRULE:
      return "rule added";
    case NFT_MSG_DELRULE:
      return "rule deleted";
    case NFT_MSG_NEWSET:
      return "set added";
    case NFT_MSG_DELSET:
      return "set deleted";
    case NFT_MSG_NEWSETELEM:
      return "element added";
    case NFT_MSG_DELSETELEM:
      return "element deleted";
    default:
      return "changed";
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<NftMonitor>> NftMonitor::Start(Options options, Callback on_change) {
  MESH_ASSIGN_OR_RETURN(nft::NftnlPtr<mnl_socket> socket,
                        OpenGroupSocket(NFNLGRP_NFTABLES, "nftables monitor"));
  UniqueFd stop(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) return mesh::ErrnoToStatus(errno, "nftables monitor: eventfd");
  std::unique_ptr<NftMonitor> monitor(
      new NftMonitor(std::move(options), std::move(on_change), socket.release(), std::move(stop)));
  monitor->thread_ = std::thread([m = monitor.get()] { m->Run(); });
  return monitor;
}

NftMonitor::NftMonitor(Options options, Callback on_change, mnl_socket* socket, UniqueFd stop)
    : options_(std::move(options)),
      on_change_(std::move(on_change)),
      socket_(socket),
      stop_(std::move(stop)) {}

NftMonitor::~NftMonitor() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  mnl_socket_close(socket_);
}

void NftMonitor::Run() {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  std::string pending;  // reason of the burst being debounced; "" when none
  for (;;) {
    pollfd fds[2] = {{mnl_socket_get_fd(socket_), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    int timeout =
        pending.empty() ? -1 : static_cast<int>(absl::ToInt64Milliseconds(options_.debounce));
    int r = ::poll(fds, 2, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (fds[1].revents != 0) return;
    if (r == 0) {  // the burst is over
      std::string reason = std::move(pending);
      pending.clear();
      on_change_(reason);
      continue;
    }
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(socket_, buf.data(), buf.size());
      if (n < 0) {
        if (errno == ENOBUFS) {  // events were lost: assume the worst
          pending = "nftables events were lost (receive queue overflow)";
          continue;
        }
        break;  // EAGAIN: drained
      }
      int len = static_cast<int>(n);
      for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
           nlh = mnl_nlmsg_next(nlh, &len)) {
        if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES) continue;
        if (nlh->nlmsg_pid == options_.own_portid) continue;  // our own transaction
        int msg = nlh->nlmsg_type & 0xff;
        if (msg == NFT_MSG_NEWGEN) continue;
        // Table, chain, rule, set and element messages all carry the table name as
        // attribute 1 (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, ...).
        std::string table;
        mnl_attr_parse(
            nlh, sizeof(nfgenmsg),
            [](const nlattr* attr, void* data) {
              if (mnl_attr_get_type(attr) == 1 &&
                  mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
                *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
              }
              return MNL_CB_OK;
            },
            &table);
        if (std::find(options_.tables.begin(), options_.tables.end(), table) ==
            options_.tables.end()) {
          continue;
        }
        if (pending.empty()) {
          pending = absl::StrCat("table \"", table, "\": ", EventName(msg),
                                 " by another program (netlink port ", nlh->nlmsg_pid, ")");
        }
      }
    }
  }
}

}  // namespace mesh::netplane::netfilter
