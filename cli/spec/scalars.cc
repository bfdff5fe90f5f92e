#include "cli/spec/scalars.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/quote.h"
#include "base/suggest.h"

namespace mesh::cli {
namespace {

// google/protobuf/duration.proto: +-315,576,000,000 seconds (10000 years).
constexpr int64_t kMaxDurationSeconds = 315576000000;

absl::Status Invalid(absl::string_view text, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(Quote(text), " ", problem));
}

bool AllDigits(absl::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "1", "1.5", ".5", "1." as integer part and fraction digits; nullopt if it is not that.
struct Decimal {
  absl::string_view whole;
  absl::string_view fraction;
};
std::optional<Decimal> SplitDecimal(absl::string_view text) {
  const size_t dot = text.find('.');
  Decimal d{text.substr(0, dot), dot == text.npos ? absl::string_view() : text.substr(dot + 1)};
  const bool whole_ok = d.whole.empty() || AllDigits(d.whole);
  const bool fraction_ok = d.fraction.empty() || AllDigits(d.fraction);
  if (!whole_ok || !fraction_ok || (d.whole.empty() && d.fraction.empty())) return std::nullopt;
  return d;
}

std::optional<uint32_t> ParsePort(absl::string_view text) {
  uint32_t port = 0;
  if (!AllDigits(text) || text.size() > 5 || !absl::SimpleAtoi(text, &port)) return std::nullopt;
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}

constexpr absl::string_view kPortForm =
    "write [host_ip:]host_port:container_port[/tcp|udp], such as \"8080:80\", "
    "\"127.0.0.1:8080:80\" or \"53:53/udp\"";

}  // namespace

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return Invalid(text, "is not a boolean; write true or false");
}

absl::StatusOr<uint64_t> ParseWholeNumber(absl::string_view text, uint64_t max) {
  uint64_t value = 0;
  if (!AllDigits(text) || !absl::SimpleAtoi(text, &value) || value > max) {
    return Invalid(text, absl::StrCat("is not a whole number from 0 to ", max));
  }
  return value;
}

absl::StatusOr<uint64_t> ParseRate(absl::string_view text, uint64_t max) {
  auto bad = [&] {
    return Invalid(text,
                   "is not a rate; write bits per second with an optional unit kbit, mbit or "
                   "gbit (1mbit = 1000000), such as 10mbit or 1.5gbit");
  };
  size_t unit_at = 0;
  while (unit_at < text.size() && (absl::ascii_isdigit(text[unit_at]) || text[unit_at] == '.')) {
    ++unit_at;
  }
  std::optional<Decimal> number = SplitDecimal(text.substr(0, unit_at));
  if (!number || number->whole.size() > 19 || number->fraction.size() > 9) return bad();
  const std::string unit = absl::AsciiStrToLower(text.substr(unit_at));
  long double multiplier = 0;
  if (unit.empty() || unit == "bit") multiplier = 1;
  if (unit == "kbit") multiplier = 1e3L;
  if (unit == "mbit") multiplier = 1e6L;
  if (unit == "gbit") multiplier = 1e9L;
  if (multiplier == 0) return bad();
  const long double value =
      std::strtold(std::string(text.substr(0, unit_at)).c_str(), nullptr) * multiplier;
  if (value > static_cast<long double>(max)) {
    return Invalid(text, absl::StrCat("is more than the largest rate here, ", max, " bit/s"));
  }
  return static_cast<uint64_t>(value);
}

absl::StatusOr<uint64_t> ParseSize(absl::string_view text, uint64_t max) {
  auto bad = [&] {
    return Invalid(text,
                   "is not a size; write a number of bytes with an optional unit k, m, g or t "
                   "(binary: 1k = 1024), such as 512m, 1.5g or 64MiB");
  };
  size_t unit_at = 0;
  while (unit_at < text.size() && (absl::ascii_isdigit(text[unit_at]) || text[unit_at] == '.')) {
    ++unit_at;
  }
  std::optional<Decimal> number = SplitDecimal(text.substr(0, unit_at));
  if (!number) return bad();
  const std::string unit = absl::AsciiStrToLower(text.substr(unit_at));
  int shift = -1;
  for (const auto& [shift_of_unit, names] :
       {std::pair{0, std::vector<absl::string_view>{"", "b"}},
        std::pair{10, std::vector<absl::string_view>{"k", "kb", "kib"}},
        std::pair{20, std::vector<absl::string_view>{"m", "mb", "mib"}},
        std::pair{30, std::vector<absl::string_view>{"g", "gb", "gib"}},
        std::pair{40, std::vector<absl::string_view>{"t", "tb", "tib"}}}) {
    if (std::find(names.begin(), names.end(), unit) != names.end()) shift = shift_of_unit;
  }
  if (shift < 0) return bad();
  const uint64_t multiplier = uint64_t{1} << shift;
  auto too_big = [&] {
    return Invalid(text, absl::StrCat("is more than the largest size here, ", max, " bytes"));
  };
  uint64_t whole = 0;
  if (!number->whole.empty() &&
      (number->whole.size() > 20 || !absl::SimpleAtoi(number->whole, &whole))) {
    return too_big();
  }
  if (whole > max / multiplier) return too_big();
  uint64_t bytes = whole * multiplier;
  if (!number->fraction.empty()) {
    // At most 12 digits count: finer than a byte of a terabyte.
    const absl::string_view digits = number->fraction.substr(0, 12);
    uint64_t fraction = 0;
    (void)absl::SimpleAtoi(digits, &fraction);  // all digits, at most 12: cannot fail
    const long double part = static_cast<long double>(fraction) /
                             std::pow(10.0L, static_cast<long double>(digits.size())) *
                             static_cast<long double>(multiplier);
    const uint64_t extra = static_cast<uint64_t>(std::floor(part));
    if (extra > max - bytes) return too_big();
    bytes += extra;
  }
  return bytes;
}

absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text) {
  auto bad = [&] {
    return Invalid(text,
                   "is not a duration; write numbers with units (h, m, s, ms, us, ns), such as "
                   "30s, 1m30s, 1.5s or 500ms");
  };
  if (text == "0") return absl::ZeroDuration();
  // absl::ParseDuration reads Go's notation, and more: a sign, "inf", a bare "0".
  if (text.empty() || !(absl::ascii_isdigit(text[0]) || text[0] == '.')) return bad();
  if (absl::ascii_isdigit(text.back())) return bad();  // "30": a number without its unit
  absl::Duration d;
  if (!absl::ParseDuration(text, &d)) return bad();
  if (d > absl::Seconds(kMaxDurationSeconds)) {
    return Invalid(text, "is longer than 10000 years, the longest duration");
  }
  return d;
}

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  absl::Duration rest;
  google::protobuf::Duration out;
  out.set_seconds(absl::IDivDuration(d, absl::Seconds(1), &rest));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(rest)));
  return out;
}

absl::StatusOr<google::protobuf::Duration> ParseDurationFlag(absl::string_view flag,
                                                             absl::string_view text) {
  absl::StatusOr<absl::Duration> d = ParseDurationText(text);
  if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat(flag, ": ", d.status().message()));
  return ToProtoDuration(*d);
}

absl::StatusOr<double> ParseCpus(absl::string_view text) {
  double cpus = 0;
  if (!SplitDecimal(text) || !absl::SimpleAtod(text, &cpus) || !std::isfinite(cpus) || cpus <= 0) {
    return Invalid(text,
                   "is not a number of CPUs; write a positive decimal number such as 0.5 or 2 "
                   "(leave the key out for no limit)");
  }
  return cpus;
}

absl::StatusOr<v1::PortMapping> ParsePortMapping(absl::string_view text) {
  v1::PortMapping mapping;
  absl::string_view rest = text;
  if (size_t slash = rest.rfind('/'); slash != rest.npos) {
    const std::string protocol = absl::AsciiStrToLower(rest.substr(slash + 1));
    if (protocol == "tcp") {
      mapping.set_protocol(v1::PROTOCOL_TCP);
    } else if (protocol == "udp") {
      mapping.set_protocol(v1::PROTOCOL_UDP);
    } else {
      return Invalid(text, absl::StrCat("has protocol ", Quote(rest.substr(slash + 1)),
                                        "; use tcp or udp (or leave \"/tcp\" out)"));
    }
    rest = rest.substr(0, slash);
  }
  if (!rest.empty() && rest[0] == '[') {
    return Invalid(text,
                   "has an IPv6 host address; networks are IPv4 for now, give an IPv4 address "
                   "or none (every address)");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, ':');
  if (parts.size() > 3) {
    return Invalid(text, absl::StrCat("is not a port mapping (", parts.size(),
                                      " parts separated by ':'); ", kPortForm));
  }
  for (absl::string_view part : parts) {
    if (part.empty()) return Invalid(text, absl::StrCat("has an empty part; ", kPortForm));
  }
  const absl::string_view container = parts.back();
  const absl::string_view host = parts.size() >= 2 ? parts[parts.size() - 2] : container;
  for (absl::string_view port : {host, container}) {
    if (port.find('-') != port.npos && AllDigits(port.substr(0, port.find('-')))) {
      return Invalid(text,
                     "has a port range; ranges are not supported, publish each port in an item "
                     "of its own");
    }
    if (!ParsePort(port)) {
      return Invalid(
          text, absl::StrCat("has ", Quote(port), " where a port (1-65535) belongs; ", kPortForm));
    }
  }
  mapping.set_host_port(*ParsePort(host));
  mapping.set_container_port(*ParsePort(container));
  if (parts.size() == 3 && parts[0] != "0.0.0.0") mapping.set_host_ip(std::string(parts[0]));
  return mapping;
}

absl::StatusOr<v1::Route> ParseRoute(absl::string_view text) {
  std::vector<absl::string_view> words = absl::StrSplit(text, ' ', absl::SkipWhitespace());
  if (words.size() != 3 || words[1] != "via") {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text),
                     " is not a route; write DESTINATION via NEXTHOP, such as "
                     "\"10.77.2.0/24 via 10.77.1.254\" or \"default via 10.77.1.254\""));
  }
  v1::Route route;
  route.set_destination(std::string(words[0]));
  route.set_via(std::string(words[2]));
  return route;
}

absl::StatusOr<v1::Mount> ParseBindMount(absl::string_view text, absl::string_view base_dir) {
  constexpr absl::string_view kForm =
      "write source:destination[:ro], such as ./html:/www:ro or /srv/data:/data";
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(Quote(text), " ", why, "; ", kForm));
  };
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() == 1) return bad("has no destination (mesh has no anonymous volumes)");
  if (parts.size() > 3) return bad("has too many ':'");
  const absl::string_view source = parts[0];
  bool read_only = false;
  if (parts.size() == 3) {
    if (parts[2] == "ro") {
      read_only = true;
    } else if (parts[2] != "rw") {
      return bad(absl::StrCat("has the option ", Quote(parts[2]), "; use ro or rw"));
    }
  }
  if (source.empty() || parts[1].empty()) return bad("has an empty part");
  if (source[0] == '~') return bad("starts with ~, which is not expanded; write the full path");
  if (source[0] != '/' && source[0] != '.') {
    return bad(absl::StrCat("names ", Quote(source),
                            ", a named volume: mesh has none, give a host path (start it with / "
                            "or ./)"));
  }
  std::string resolved(source);
  if (source[0] != '/') {
    resolved = (std::filesystem::path(std::string(base_dir)) / std::string(source))
                   .lexically_normal()
                   .string();
    if (resolved.size() > 1 && resolved.back() == '/') resolved.pop_back();
  }
  v1::Mount mount;
  mount.set_type(v1::Mount::TYPE_BIND);
  mount.set_source(resolved);
  mount.set_destination(std::string(parts[1]));
  mount.set_read_only(read_only);
  return mount;
}

absl::StatusOr<v1::RestartPolicy> ParseRestartPolicy(absl::string_view text) {
  v1::RestartPolicy policy;
  absl::string_view mode = text;
  absl::string_view retries;
  if (size_t colon = text.find(':'); colon != text.npos) {
    mode = text.substr(0, colon);
    retries = text.substr(colon + 1);
    if (mode != "on-failure") {
      return Invalid(text,
                     "is not a restart policy; only on-failure takes a number "
                     "(on-failure:5)");
    }
  }
  if (mode == "no") {
    policy.set_mode(v1::RestartPolicy::MODE_NO);
  } else if (mode == "always") {
    policy.set_mode(v1::RestartPolicy::MODE_ALWAYS);
  } else if (mode == "unless-stopped") {
    policy.set_mode(v1::RestartPolicy::MODE_UNLESS_STOPPED);
  } else if (mode == "on-failure") {
    policy.set_mode(v1::RestartPolicy::MODE_ON_FAILURE);
    if (mode.size() < text.size()) {
      uint32_t n = 0;
      if (!AllDigits(retries) || !absl::SimpleAtoi(retries, &n)) {
        return Invalid(text, absl::StrCat("has ", Quote(retries),
                                          " as the most restarts; write a whole number, "
                                          "such as on-failure:5 (0: no limit)"));
      }
      policy.set_max_retries(n);
    }
  } else {
    const std::vector<std::string> known = {"no", "on-failure", "always", "unless-stopped"};
    std::string hint = "use no, on-failure[:max_retries], always or unless-stopped";
    if (std::optional<std::string> near = ClosestMatch(mode, known)) {
      hint = absl::StrCat("did you mean ", Quote(*near), "? (", hint, ")");
    }
    return Invalid(text, absl::StrCat("is not a restart policy; ", hint));
  }
  return policy;
}

absl::StatusOr<std::vector<std::string>> SplitCommandLine(absl::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // a word has started (it may be empty: '')
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
      continue;
    }
    if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
      i += 2;  // a line continuation joins, it does not start a word
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (i + 1 == text.size()) {
        return Invalid(text, "ends with a backslash; remove it, or write \\\\ for one");
      }
      word += text[i + 1];
      i += 2;
    } else if (c == '\'') {
      const size_t end = text.find('\'', i + 1);
      if (end == text.npos) {
        return Invalid(text, absl::StrCat("has a ' at offset ", i,
                                          " that is never closed; close "
                                          "it, or write \\' for a quote character"));
      }
      const absl::string_view quoted = text.substr(i + 1, end - i - 1);
      word.append(quoted.data(), quoted.size());
      i = end + 1;
    } else if (c == '"') {
      const size_t open = i++;
      bool closed = false;
      while (i < text.size()) {
        const char d = text[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < text.size() &&
            absl::string_view("\"\\$`\n").find(text[i + 1]) != absl::string_view::npos) {
          if (text[i + 1] != '\n') word += text[i + 1];
          i += 2;
          continue;
        }
        word += d;
        ++i;
      }
      if (!closed) {
        return Invalid(text, absl::StrCat("has a \" at offset ", open,
                                          " that is never closed; close it, or write \\\" "
                                          "for a quote character"));
      }
    } else {
      word += c;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace mesh::cli
