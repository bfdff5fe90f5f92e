#pragma once

// resolv.conf(5), the parts mesh reads and writes: the host's file tells meshd's DNS where to
// forward and what containers inherit (search domains, options); a container's file names the
// resolver it asks.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace mesh::agent::dns {

struct ResolvConf {
  std::vector<std::string> nameservers;  // as written: "10.0.0.2", "::1"
  std::vector<std::string> search;       // `search` domains (or the `domain` one)
  std::vector<std::string> options;      // "ndots:2", "edns0"
};

// Lines other than nameserver, search, domain and options are skipped, as are comments ('#'
// or ';' to the end of the line). The last search or domain line wins, as in glibc.
ResolvConf ParseResolvConf(absl::string_view text);

// The file's text: `comment` first (each line prefixed "# "), then the nameservers, the search
// line and the options line.
std::string FormatResolvConf(const ResolvConf& conf, absl::string_view comment = "");

// True for 127.0.0.0/8 and ::1: a resolver on the host's loopback, which means nothing inside a
// container (nor to a query meshd forwards on a container's behalf when it is the host's stub).
bool IsLoopbackNameserver(absl::string_view address);

}  // namespace mesh::agent::dns
