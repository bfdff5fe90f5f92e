#include "agent/dns/resolv_conf.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace mesh::agent::dns {

ResolvConf ParseResolvConf(absl::string_view text) {
  ResolvConf conf;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = line.substr(0, line.find_first_of("#;"));
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.size() < 2) continue;
    const absl::string_view keyword = words[0];
    if (keyword == "nameserver") {
      conf.nameservers.emplace_back(words[1]);
    } else if (keyword == "search" || keyword == "domain") {
      conf.search.clear();
      const size_t end = keyword == "domain" ? 2 : words.size();
      for (size_t i = 1; i < end; ++i) conf.search.emplace_back(words[i]);
    } else if (keyword == "options") {
      for (size_t i = 1; i < words.size(); ++i) conf.options.emplace_back(words[i]);
    }
  }
  return conf;
}

std::string FormatResolvConf(const ResolvConf& conf, absl::string_view comment) {
  std::string out;
  if (!comment.empty()) {
    for (absl::string_view line : absl::StrSplit(comment, '\n')) {
      absl::StrAppend(&out, "# ", line, "\n");
    }
  }
  for (const std::string& nameserver : conf.nameservers) {
    absl::StrAppend(&out, "nameserver ", nameserver, "\n");
  }
  if (!conf.search.empty()) absl::StrAppend(&out, "search ", absl::StrJoin(conf.search, " "), "\n");
  if (!conf.options.empty()) {
    absl::StrAppend(&out, "options ", absl::StrJoin(conf.options, " "), "\n");
  }
  return out;
}

bool IsLoopbackNameserver(absl::string_view address) {
  return absl::StartsWith(address, "127.") || address == "::1";
}

}  // namespace mesh::agent::dns
