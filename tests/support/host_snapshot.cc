#include "tests/support/host_snapshot.h"

#include <regex>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/child_process.h"

namespace mesh::testing {

absl::StatusOr<std::string> TakeHostSnapshot(int netns_fd, int mntns_fd) {
  const std::vector<std::vector<std::string>> commands = {
      {"ip", "-d", "link", "show"},
      {"ip", "addr", "show"},
      {"ip", "-4", "route", "show", "table", "all"},
      {"ip", "-6", "route", "show", "table", "all"},
      {"ip", "-4", "rule", "show"},
      {"ip", "-6", "rule", "show"},
      {"nft", "list", "ruleset"},
      {"ip", "netns", "list"},
      {"cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"},
  };
  std::string out;
  for (const auto& argv : commands) {
    SpawnOptions options;
    options.argv = argv;
    options.netns_fd = netns_fd;
    options.mntns_fd = mntns_fd;
    absl::StatusOr<CommandResult> r = RunCommand(options, absl::Seconds(20));
    if (!r.ok()) return r.status();
    if (!r->status.ok()) {
      return absl::InternalError(absl::StrCat("host snapshot: \"", absl::StrJoin(argv, " "), "\" ",
                                              r->status.ToString(), ": ", r->err));
    }
    // Bridge timers (hello_timer, gc_timer, ...) tick by themselves: not state.
    static const std::regex kTimer(R"((\w+_timer)\s+[0-9.]+)");
    absl::StrAppend(&out, "### ", absl::StrJoin(argv, " "), "\n",
                    std::regex_replace(r->out, kTimer, "$1 -"));
  }
  return out;
}

std::string DiffLines(const std::string& before, const std::string& after) {
  std::vector<std::string> a = absl::StrSplit(before, '\n');
  std::vector<std::string> b = absl::StrSplit(after, '\n');
  std::multiset<std::string> in_a(a.begin(), a.end()), in_b(b.begin(), b.end());
  std::string out;
  for (const std::string& line : a) {
    if (auto it = in_b.find(line); it != in_b.end()) {
      in_b.erase(it);
    } else {
      absl::StrAppend(&out, "- ", line, "\n");
    }
  }
  for (const std::string& line : b) {
    if (auto it = in_a.find(line); it != in_a.end()) {
      in_a.erase(it);
    } else {
      absl::StrAppend(&out, "+ ", line, "\n");
    }
  }
  return out;
}

}  // namespace mesh::testing
