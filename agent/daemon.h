#pragma once

// meshd put together: store, runtime, netplane, controllers, recovery, and the gRPC server on
// the unix socket (and on TCP with mutual TLS when configured).

#include <memory>

#include "absl/status/statusor.h"
#include "agent/config/config.h"

namespace grpc {
class Server;
}

namespace mesh::agent {

class Daemon {
 public:
  // Opens the state, recovers (DESIGN.md decision 3: adopt live containers, reconcile the
  // kernel to the store, collect orphans), then serves. Returns once it serves.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const Config& config);
  ~Daemon();  // Shutdown()

  // Stops serving (calls in flight get up to 5 s). Containers keep running: they belong to
  // their shims, not to meshd.
  void Shutdown();

 private:
  struct Parts;
  explicit Daemon(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace mesh::agent
