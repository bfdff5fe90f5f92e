#include "cli/output.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace mesh::cli {
namespace {

nlohmann::json ToJsonValue(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;  // pid 0, exit code 0: scripts see them
  std::string text;
  // Only fails for messages with unresolvable Any types, which the API has none of.
  (void)google::protobuf::util::MessageToJsonString(message, &text, options);
  return nlohmann::json::parse(text, nullptr, false);
}

void EmitYaml(YAML::Emitter& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      if (value.empty()) out << YAML::Flow;  // {} rather than an empty block
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key << key << YAML::Value;
        EmitYaml(out, item);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      if (value.empty()) out << YAML::Flow;  // []
      out << YAML::BeginSeq;
      for (const auto& item : value) EmitYaml(out, item);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      // Quoted when YAML would read it as something else ("true", "1.5", "").
      out << (value.get<std::string>().empty() ? YAML::DoubleQuoted : YAML::Auto)
          << value.get<std::string>();
      break;
    case nlohmann::json::value_t::boolean:
      out << value.get<bool>();
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:  // numbers
      out << value.dump();
  }
}

std::string RenderJson(const nlohmann::json& value, Format format) {
  if (format == Format::kJson) return value.dump(2) + "\n";
  YAML::Emitter out;
  EmitYaml(out, value);
  return std::string(out.c_str()) + "\n";
}

}  // namespace

absl::StatusOr<Format> ParseFormat(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower.empty() || lower == "table") return Format::kTable;
  if (lower == "json") return Format::kJson;
  if (lower == "yaml") return Format::kYaml;
  return absl::InvalidArgumentError(
      absl::StrCat("-o ", text, ": unknown output format; use table, json or yaml"));
}

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  measure(headers_);
  for (const auto& row : rows_) measure(row);
  std::string out;
  auto line = [&](const std::vector<std::string>& row, bool upper) {
    std::string text;
    for (size_t i = 0; i < widths.size(); ++i) {
      std::string cell = i < row.size() ? row[i] : "";
      if (upper) cell = absl::AsciiStrToUpper(cell);
      if (i + 1 < widths.size()) cell.resize(widths[i] + 2, ' ');
      text += cell;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    absl::StrAppend(&out, text, "\n");
  };
  line(headers_, true);
  for (const auto& row : rows_) line(row, false);
  return out;
}

std::string Render(const google::protobuf::Message& message, Format format) {
  return RenderJson(ToJsonValue(message), format);
}

std::string RenderList(const std::vector<const google::protobuf::Message*>& messages,
                       Format format) {
  nlohmann::json list = nlohmann::json::array();
  for (const google::protobuf::Message* m : messages) list.push_back(ToJsonValue(*m));
  return RenderJson(list, format);
}

std::string RenderObject(
    const std::vector<std::pair<std::string, const google::protobuf::Message*>>& fields,
    Format format) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [name, m] : fields) object[name] = ToJsonValue(*m);
  return RenderJson(object, format);
}

std::string HumanDuration(absl::Duration d) {
  const int64_t seconds = absl::ToInt64Seconds(d);
  auto plural = [](int64_t n, const char* unit) {
    return absl::StrCat(n, " ", unit, n == 1 ? "" : "s");
  };
  if (seconds < 60) return plural(std::max<int64_t>(seconds, 0), "second");
  if (seconds < 3600) return plural(seconds / 60, "minute");
  if (seconds < 86400) return plural(seconds / 3600, "hour");
  return plural(seconds / 86400, "day");
}

std::string Ago(const google::protobuf::Timestamp& t, absl::Time now) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  const absl::Time then = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::StrCat(HumanDuration(now - then), " ago");
}

absl::StatusOr<google::protobuf::Timestamp> ParseSince(absl::string_view flag,
                                                       absl::string_view text, absl::Time now) {
  absl::Time when;
  absl::Duration back;
  std::string error;
  if (absl::ParseDuration(text, &back) && back >= absl::ZeroDuration()) {
    when = now - back;
  } else if (!absl::ParseTime(absl::RFC3339_full, text, &when, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " ", text, ": give a duration back from now (10m, 1h30m) or a time (RFC 3339, ",
        "2026-12-04T10:00:00Z)"));
  }
  google::protobuf::Timestamp t;
  const int64_t nanos = absl::ToUnixNanos(when);
  t.set_seconds(nanos / 1000000000);
  t.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return t;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? absl::StrCat(bytes, " B") : absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string StateName(v1::ContainerState state) {
  absl::string_view name = v1::ContainerState_Name(state);
  absl::ConsumePrefix(&name, "CONTAINER_STATE_");
  return absl::AsciiStrToLower(name);
}

std::string PortText(const v1::PortMapping& port) {
  return absl::StrCat(port.host_ip().empty() ? "0.0.0.0" : port.host_ip(), ":", port.host_port(),
                      "->", port.container_port(), "/",
                      port.protocol() == v1::PROTOCOL_UDP ? "udp" : "tcp");
}

}  // namespace mesh::cli
