#include "tests/support/host_traces.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace mesh::testing {

std::string MeshTracesNow(const Sandbox& sandbox, absl::string_view cgroup_parent) {
  std::vector<std::string> lines;
  absl::StatusOr<std::string> links = sandbox.Check(Sandbox::Ns::kHost, {"ip", "-o", "link"});
  for (absl::string_view line : absl::StrSplit(links.value_or("?"), '\n')) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(": ", 2));
    if (parts.size() >= 2) lines.push_back("link " + parts[1].substr(0, parts[1].find('@')));
  }
  for (const char* dir : {"/run/mesh/netns", "/run/mesh/containers", "/var/lib/mesh/containers"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      lines.push_back(absl::StrCat(dir, "/", entry.path().filename().string()));
    }
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator("/sys/fs/cgroup", ec)) {
    if (entry.is_directory(ec) && entry.path().parent_path().filename().string() == cgroup_parent) {
      lines.push_back("cgroup " + entry.path().string());
    }
  }
  absl::StatusOr<std::string> nft = sandbox.Check(Sandbox::Ns::kHost, {"nft", "list", "ruleset"});
  // Set elements only (the tables themselves stay once made).
  bool in_elements = false;
  for (absl::string_view line : absl::StrSplit(nft.value_or("?"), '\n')) {
    if (absl::StrContains(line, "elements = {")) in_elements = true;
    if (in_elements) lines.push_back(absl::StrCat("nft ", absl::StripAsciiWhitespace(line)));
    if (absl::StrContains(line, "}")) in_elements = false;
  }
  std::sort(lines.begin(), lines.end());
  return absl::StrJoin(lines, "\n");
}

std::string MeshTraces(const Sandbox& sandbox, absl::string_view cgroup_parent) {
  // Settled: no cut-off entries (pairs being deleted) and the same twice 100 ms apart (a pair
  // whose namespace went is deleted by the kernel a moment later).
  std::string traces = MeshTracesNow(sandbox, cgroup_parent);
  for (int i = 0; i < 30; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    std::string again = MeshTracesNow(sandbox, cgroup_parent);
    if (again == traces && !absl::StrContains(traces, "\"mve-")) break;
    traces = std::move(again);
  }
  return traces;
}

}  // namespace mesh::testing
