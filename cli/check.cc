#include "cli/check.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/quote.h"

namespace mesh::cli {
namespace {

bool ParsePort(absl::string_view digits, uint32_t& port) {
  return !digits.empty() && digits.size() <= 5 &&
         std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) &&
         absl::SimpleAtoi(digits, &port) && port >= 1 && port <= 65535;
}

std::string Milliseconds(const google::protobuf::Duration& d) {
  const double ms = static_cast<double>(d.seconds()) * 1e3 + static_cast<double>(d.nanos()) / 1e6;
  return ms < 10 ? absl::StrFormat("%.2f ms", ms) : absl::StrFormat("%.0f ms", ms);
}

std::string OutcomeWord(const v1::CheckResult& r) {
  switch (r.outcome()) {
    case v1::CheckResult::OUTCOME_OPEN:
    case v1::CheckResult::OUTCOME_CLOSED:
      return "reachable";
    case v1::CheckResult::OUTCOME_BLOCKED:
      return "blocked";
    case v1::CheckResult::OUTCOME_UNREACHABLE:
      return "unreachable";
    default:
      return "no answer";
  }
}

// A member's name without its group's prefix ("tiers-web" of group "tiers": "web").
std::string ShortName(absl::string_view name, absl::string_view group) {
  absl::string_view out = name;
  if (absl::ConsumePrefix(&out, group)) {
    if (absl::ConsumePrefix(&out, "-")) return std::string(out);
  }
  return std::string(name);
}

// Rows as columns left-aligned two spaces apart, the last column unpadded.
std::string AlignColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

// "dropped by \"policy tiers: ...\"", "accepted by the policy of chain forward", "not traced".
std::string DecisionText(const v1::RuleDecision& d) {
  switch (d.verdict()) {
    case v1::RuleDecision::VERDICT_ACCEPTED:
    case v1::RuleDecision::VERDICT_DROPPED:
      return absl::StrCat(d.verdict() == v1::RuleDecision::VERDICT_DROPPED ? "dropped" : "accepted",
                          " by ", d.rule_handle() != 0 ? Quote(d.rule()) : d.rule(),
                          d.mesh() ? "" : absl::StrCat(" (", d.table(), ")"));
    case v1::RuleDecision::VERDICT_NO_FILTER:
      return "no filter rule met it";
    default:
      return "not traced";
  }
}

}  // namespace

absl::StatusOr<v1::Probe> ParseProbe(absl::string_view text) {
  v1::Probe probe;
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "icmp" || lower == "ping") {
    probe.set_protocol(v1::Probe::PROTOCOL_ICMP);
    return probe;
  }
  absl::string_view rest = lower;
  std::string proto = "tcp";
  absl::string_view digits = rest;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    absl::string_view a = rest.substr(0, slash), b = rest.substr(slash + 1);
    if (a == "tcp" || a == "udp") {  // tcp/8080
      proto = std::string(a);
      digits = b;
    } else {  // 8080/tcp
      proto = std::string(b);
      digits = a;
    }
  }
  uint32_t port = 0;
  if ((proto != "tcp" && proto != "udp") || !ParsePort(digits, port)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " is not a probe; write icmp, PORT/tcp or PORT/udp (8080/tcp)"));
  }
  probe.set_protocol(proto == "udp" ? v1::Probe::PROTOCOL_UDP : v1::Probe::PROTOCOL_TCP);
  probe.set_port(port);
  return probe;
}

std::string ProbeText(const v1::Probe& probe) {
  switch (probe.protocol()) {
    case v1::Probe::PROTOCOL_TCP:
      return absl::StrCat(probe.port(), "/tcp");
    case v1::Probe::PROTOCOL_UDP:
      return absl::StrCat(probe.port(), "/udp");
    default:
      return "icmp";
  }
}

std::string FormatCheck(const v1::CheckResult& r) {
  std::string out = absl::StrCat(r.from(), " -> ", r.to());
  if (r.to() != r.destination()) absl::StrAppend(&out, " (", r.destination(), ")");
  absl::StrAppend(&out, " ", ProbeText(r.probe()), ": ", OutcomeWord(r));
  if (!r.detail().empty()) absl::StrAppend(&out, ", ", r.detail());
  if (r.has_elapsed()) {
    absl::StrAppend(&out, r.outcome() == v1::CheckResult::OUTCOME_NO_ANSWER ? " after " : " in ",
                    Milliseconds(r.elapsed()));
  }
  absl::StrAppend(&out, "\n");
  const v1::RuleDecision& d = r.decision();
  switch (d.verdict()) {
    case v1::RuleDecision::VERDICT_ACCEPTED:
    case v1::RuleDecision::VERDICT_DROPPED: {
      const bool by_rule = d.rule_handle() != 0;
      absl::StrAppend(&out, "  ",
                      d.verdict() == v1::RuleDecision::VERDICT_DROPPED ? "dropped" : "accepted",
                      " by ", by_rule ? absl::StrCat("rule ", Quote(d.rule())) : d.rule(), " (",
                      d.table(), " ", d.chain());
      if (by_rule) absl::StrAppend(&out, ", handle ", d.rule_handle());
      absl::StrAppend(&out, d.mesh() ? "" : "; not a table of mesh", ")\n");
      break;
    }
    case v1::RuleDecision::VERDICT_NO_FILTER:
      absl::StrAppend(&out,
                      "  no filter rule of the host met it (it ended in the host's routing: no "
                      "route there?)\n");
      break;
    case v1::RuleDecision::VERDICT_NOT_TRACED:
      if (!r.source().empty()) {
        absl::StrAppend(&out,
                        "  no rule of the host saw it (a link between two containers, or an "
                        "address of the sender itself)\n");
      }
      break;
    default:
      break;
  }
  return out;
}

std::string FormatWhy(const v1::CheckGroupResponse& response, absl::string_view group) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::CheckResult& r : response.results()) {
    rows.push_back({absl::StrCat(ShortName(r.from(), group), " -> ", ShortName(r.to(), group)),
                    ProbeText(r.probe()), OutcomeWord(r), DecisionText(r.decision())});
  }
  return AlignColumns(rows);
}

std::string FormatMatrix(const v1::CheckGroupResponse& response, absl::string_view group) {
  auto short_name = [group](const std::string& name) { return ShortName(name, group); };
  std::vector<std::string> names;
  for (const std::string& c : response.containers()) names.push_back(short_name(c));
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> reached;
  for (const v1::CheckResult& r : response.results()) {
    std::vector<std::string>& cell = reached[{short_name(r.from()), short_name(r.to())}];
    if (r.reachable()) cell.push_back(ProbeText(r.probe()));
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"FROM \\ TO"});
  for (const std::string& n : names) rows[0].push_back(n);
  for (const std::string& from : names) {
    std::vector<std::string>& row = rows.emplace_back();
    row.push_back(from);
    for (const std::string& to : names) {
      if (from == to) {
        row.push_back("\\");
        continue;
      }
      const std::vector<std::string>& cell = reached[{from, to}];
      row.push_back(cell.empty() ? "-" : absl::StrJoin(cell, ","));
    }
  }
  std::string out = AlignColumns(rows);
  std::vector<std::string> probes;
  for (const v1::Probe& p : response.probes()) probes.push_back(ProbeText(p));
  absl::StrAppend(&out, "probes: ", absl::StrJoin(probes, " "),
                  "; a cell lists those that reached TO (answered or refused), - none\n");
  return out;
}

}  // namespace mesh::cli
