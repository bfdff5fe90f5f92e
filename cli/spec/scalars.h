#pragma once

// The scalar notations of the group spec (docs/spec.md): ports, sizes, durations, CPUs,
// restart policies, booleans, whole numbers and command lines. Pure functions of their text.
// Errors are INVALID_ARGUMENT with a message that quotes the text, says what it is not and how
// to write it; they do not name the key (the caller puts it, and the position, in front).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "mesh/v1/common.pb.h"
#include "mesh/v1/containers.pb.h"

namespace mesh::cli {

// true, True, TRUE, false, False, FALSE (YAML 1.2's booleans; "yes" and "on" are not).
absl::StatusOr<bool> ParseBool(absl::string_view text);

// Decimal digits only, at most `max`.
absl::StatusOr<uint64_t> ParseWholeNumber(absl::string_view text, uint64_t max);

// Bytes: a decimal number ("512", "1.5") with an optional unit, case-insensitive: b, k/kb/kib,
// m/mb/mib, g/gb/gib, t/tb/tib, all binary (1k = 1024, as Docker reads them). A fraction of a
// byte is dropped. At most `max`.
absl::StatusOr<uint64_t> ParseSize(absl::string_view text, uint64_t max);

// A rate in bits per second, tc's way: a decimal number with an optional unit bit, kbit, mbit
// or gbit, case-insensitive, decimal (1mbit = 1000000), such as 10mbit or 1.5gbit; no unit:
// bit/s. Byte units (tc's bps) are refused as ambiguous. At most `max`.
absl::StatusOr<uint64_t> ParseRate(absl::string_view text, uint64_t max);

// Go's notation, as Docker Compose uses it: one or more decimal numbers each with a unit (ns,
// us, ms, s, m, h), such as "30s", "1m30s", "1.5s", "500ms"; or "0". Not negative; at most
// 10000 years (what a google.protobuf.Duration holds).
absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text);
// A duration as the API carries it (seconds and nanoseconds).
google::protobuf::Duration ToProtoDuration(absl::Duration d);
// A command-line flag's duration ("--timeout", "2s"): ParseDurationText, errors starting with
// the flag.
absl::StatusOr<google::protobuf::Duration> ParseDurationFlag(absl::string_view flag,
                                                             absl::string_view text);

// A positive decimal number of CPUs ("0.5", "2").
absl::StatusOr<double> ParseCpus(absl::string_view text);

// "[host_ip:]host_port:container_port[/tcp|udp]", or "container_port[/tcp|udp]" (published on
// the same host port). Ports are 1-65535; host_ip "0.0.0.0" is every address (left empty).
// The address itself is checked by meshd.
absl::StatusOr<v1::PortMapping> ParsePortMapping(absl::string_view text);

// "source:destination[:ro|rw]" (`volumes:` of the spec, -v of `meshctl run`): a bind mount.
// The source is a host path, absolute or starting with "." (relative to `base_dir`, made
// absolute and normal); named volumes, "~" and anonymous volumes are refused. The message of
// an error quotes the text and says how to write it.
absl::StatusOr<v1::Mount> ParseBindMount(absl::string_view text, absl::string_view base_dir);

// "DESTINATION via NEXTHOP" (`ip route` order): "10.77.2.0/24 via 10.77.1.254", or
// "default via 10.77.1.254". The words only; meshd checks the addresses.
absl::StatusOr<v1::Route> ParseRoute(absl::string_view text);

// "no", "always", "unless-stopped", "on-failure" or "on-failure:N" (N: most restarts, 0 for no
// limit).
absl::StatusOr<v1::RestartPolicy> ParseRestartPolicy(absl::string_view text);

// Splits a command line into words the way a POSIX shell splits them, without a shell: words
// are separated by blanks and newlines; '...' keeps everything literally; "..." keeps
// everything but \" \\ \$ \` and backslash-newline; a backslash outside quotes escapes the next
// character. Nothing is expanded ($VAR, *, ~ stay as they are) and operators (|, &&, >) are
// ordinary words. Refuses an unterminated quote or a trailing backslash.
absl::StatusOr<std::vector<std::string>> SplitCommandLine(absl::string_view text);

}  // namespace mesh::cli
