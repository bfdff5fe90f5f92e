#pragma once

// meshctl's output: tables for people, JSON or YAML of the API's messages for scripts
// (`-o json|yaml`: the messages as proto3 JSON with the .proto field names).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "mesh/v1/common.pb.h"
#include "mesh/v1/containers.pb.h"

namespace mesh::cli {

enum class Format { kTable, kJson, kYaml };
// "table" (or ""), "json", "yaml".
absl::StatusOr<Format> ParseFormat(absl::string_view text);

// Columns left-aligned, two spaces apart, upper-case headers (as docker ps).
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// One message as JSON (indented) or YAML.
std::string Render(const google::protobuf::Message& message, Format format);
// A list of messages as one JSON array or one YAML sequence.
std::string RenderList(const std::vector<const google::protobuf::Message*>& messages,
                       Format format);

// Named messages as one JSON object or YAML map ({"client": {...}, "server": {...}}).
std::string RenderObject(
    const std::vector<std::pair<std::string, const google::protobuf::Message*>>& fields,
    Format format);

// "3 seconds", "5 minutes", "2 hours", "4 days" (as docker ps's "Up 5 minutes").
std::string HumanDuration(absl::Duration d);
// "2 minutes ago", or "-" for an unset timestamp.
std::string Ago(const google::protobuf::Timestamp& t, absl::Time now = absl::Now());
// A --since value: a duration back from now ("10m", "1h30m") or an RFC 3339 time.
absl::StatusOr<google::protobuf::Timestamp> ParseSince(absl::string_view flag,
                                                       absl::string_view text,
                                                       absl::Time now = absl::Now());
// "1.5 MiB".
std::string HumanBytes(uint64_t bytes);

// "running", "stopped", ... (the enum name, lower case, without its prefix).
std::string StateName(v1::ContainerState state);
// A published port as docker shows it: "0.0.0.0:8080->80/tcp".
std::string PortText(const v1::PortMapping& port);

}  // namespace mesh::cli
