#pragma once

// `meshctl check`: the probe syntax and how results read (pure; tests/unit/cli/check_test.cc).

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mesh/v1/networks.pb.h"

namespace mesh::cli {

// "icmp" (or "ping"), "8080/tcp", "53/udp", "tcp/8080" (a policy's spelling), or a bare port
// ("8080": TCP). InvalidArgument quoting the text.
absl::StatusOr<v1::Probe> ParseProbe(absl::string_view text);
// "icmp", "8080/tcp", "53/udp".
std::string ProbeText(const v1::Probe& probe);

// One check, for people:
//   tiers-web -> tiers-app (10.79.0.20) 8080/tcp: reachable, connected in 0.4 ms
//     accepted by rule "policy tiers rule 1: web calls the app" (inet mesh forward, handle 9)
std::string FormatCheck(const v1::CheckResult& result);

// The matrix: a row per sender, a column per receiver, each cell the probes that reached it
// ("-": none). Names lose their common "<group>-" prefix.
std::string FormatMatrix(const v1::CheckGroupResponse& response, absl::string_view group);
// `--why`: each probe of the matrix on a line, with what decided it:
//   web -> db   5432/tcp  blocked    dropped by "policy tiers: default deny inside a network"
std::string FormatWhy(const v1::CheckGroupResponse& response, absl::string_view group);

}  // namespace mesh::cli
