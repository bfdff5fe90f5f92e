#pragma once

// ContainerService.Capture: tcpdump from the host, run in a container's network namespace
// (ChildProcess joins it between fork and exec; no meshd thread ever switches), writing a
// pcap file to a pipe that is streamed as it comes. tcpdump is Debian's; mesh does not parse
// packets itself.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mesh::agent {

struct CaptureOptions {
  std::string netns_path;                          // the container's pinned namespace
  std::string container;                           // for messages
  std::string interface;                           // inside it; "any" for all
  std::string filter;                              // pcap-filter(7); empty: everything
  uint32_t max_packets = 0;                        // 0: no limit
  absl::Duration duration = absl::ZeroDuration();  // 0: no limit
  uint32_t snap_length = 0;                        // 0: tcpdump's default (whole packets)
  std::string tcpdump = "tcpdump";                 // the program (tests point elsewhere)
};

// tcpdump's command line for `options` (pure; for tests).
std::vector<std::string> CaptureCommand(const CaptureOptions& options);

// Checks what can be checked before starting: an interface name (1 to 15 bytes, no '/' or
// spaces) and a filter of at most 1024 bytes without NUL. InvalidArgument naming the field.
absl::Status ValidateCapture(const CaptureOptions& options);

// Runs the capture until tcpdump ends (max_packets reached, an error), `duration` passes, or
// `cancelled` returns true (polled every 100 ms; then tcpdump is asked to stop and finishes
// its file). `on_data` gets the file's bytes in order, `on_notice` each line tcpdump writes to
// stderr; either returning false (the client went away) stops it as a cancel does. Errors:
// FailedPrecondition without tcpdump ("apt install tcpdump"), NotFound for an interface
// tcpdump cannot find, InvalidArgument for a filter it refuses, Internal for anything else it
// says; each names the container and the interface, with tcpdump's own words.
absl::Status RunCapture(const CaptureOptions& options,
                        const std::function<bool(absl::string_view)>& on_data,
                        const std::function<bool(const std::string&)>& on_notice,
                        const std::function<bool()>& cancelled);

}  // namespace mesh::agent
