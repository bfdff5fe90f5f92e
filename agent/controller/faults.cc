#include "agent/controller/faults.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "base/log.h"

namespace mesh::agent {

void FaultPoint(absl::string_view point) {
  // meshd never changes its environment, so the pointer stays valid.
  static const char* const armed = std::getenv("MESH_FAULT_AFTER");
  if (armed == nullptr || point != armed) return;
  MESH_LOG(Warning) << "fault injection: killed after " << point << " (MESH_FAULT_AFTER)";
  kill(getpid(), SIGKILL);
}

}  // namespace mesh::agent
