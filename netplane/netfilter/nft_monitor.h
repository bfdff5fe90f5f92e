#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

struct mnl_socket;

namespace mesh::netplane::netfilter {

// Watches nftables change notifications (the NFNLGRP_NFTABLES netlink group) of the network
// namespace it was started in, and calls `on_change` when another program (any netlink socket
// but `own_portid`) changed or deleted one of `tables`: `nft flush ruleset`, a firewall reload,
// an operator's `nft delete table inet mesh`. Changes come in bursts (one event per object), so
// the call comes once, `debounce` after the last event of a burst. `on_change` runs on the
// monitor's own thread and gets a short reason for the log. The destructor stops the thread.
class NftMonitor {
 public:
  struct Options {
    std::vector<std::string> tables;  // names, e.g. {"mesh"}
    uint32_t own_portid = 0;          // the netlink port id whose changes are ours
    absl::Duration debounce = absl::Milliseconds(50);
  };
  using Callback = std::function<void(const std::string& reason)>;

  static absl::StatusOr<std::unique_ptr<NftMonitor>> Start(Options options, Callback on_change);
  ~NftMonitor();
  NftMonitor(const NftMonitor&) = delete;
  NftMonitor& operator=(const NftMonitor&) = delete;

 private:
  NftMonitor(Options options, Callback on_change, mnl_socket* socket, UniqueFd stop);
  void Run();

  const Options options_;
  const Callback on_change_;
  mnl_socket* const socket_;  // owned; closed in the destructor after the thread ends
  UniqueFd stop_;             // eventfd: written to stop the thread
  std::thread thread_;
};

}  // namespace mesh::netplane::netfilter
