#pragma once

// What the runtime and the shim know about one container, on disk:
//   <run_root>/containers/<id>/     config.json (the shim's input), state.json, control.sock,
//                                   shim.log (the shim's own diagnostics)
//   <data_root>/containers/<id>/    rootfs/ (mount point), upper/, work/, etc/, container.log*
// state.json is written by the shim (atomically) at every change of status, so any process
// can re-attach to a container from it alone.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/container/process_identity.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime {

struct ContainerPaths {
  std::string run_dir;   // <run_root>/containers/<id>
  std::string data_dir;  // <data_root>/containers/<id>

  static ContainerPaths For(const std::string& run_root, const std::string& data_root,
                            const std::string& id);
  std::string config() const { return run_dir + "/config.json"; }
  std::string state() const { return run_dir + "/state.json"; }
  std::string control() const { return run_dir + "/control.sock"; }
  std::string shim_log() const { return run_dir + "/shim.log"; }
  std::string rootfs() const { return data_dir + "/rootfs"; }
  std::string upper() const { return data_dir + "/upper"; }
  std::string work() const { return data_dir + "/work"; }
  std::string etc() const { return data_dir + "/etc"; }
  std::string log() const { return data_dir + "/container.log"; }
  // The id of the image the data belongs to, kept with the data (the config, in run_dir,
  // does not survive a reboot).
  std::string image_id() const { return data_dir + "/image"; }
};

// The shim's input: the spec plus what the runtime resolved for it.
struct ShimConfig {
  ContainerSpec spec;
  ContainerPaths paths;
  std::vector<std::string> lower_dirs;  // image layers, top first
  std::string cgroup_parent;            // e.g. "mesh"; the container's cgroup is <parent>/<id>
};
nlohmann::json ShimConfigToJson(const ShimConfig& config);

// User namespaces. True if the spec asks for one (NamespaceType::kUser).
bool HasUserNamespace(const ContainerSpec& spec);
// The text the shim writes to /proc/PID/uid_map or gid_map in one write(2): one
// "<container id> <host id> <size>\n" line per mapping (user_namespaces(7)).
std::string IdMapText(const std::vector<IdMapping>& mappings);
// The host id that `container_id` maps to; nullopt if no mapping holds it.
std::optional<uint32_t> HostIdOf(const std::vector<IdMapping>& mappings, uint32_t container_id);
absl::StatusOr<ShimConfig> ShimConfigFromJson(const nlohmann::json& json);

enum class Status { kCreated, kRunning, kStopped };
const char* StatusName(Status status);

struct ContainerState {
  std::string id;
  Status status = Status::kCreated;
  ProcessIdentity shim;
  ProcessIdentity init;  // the container's PID 1, as seen from the host
  absl::Time created = absl::InfinitePast();
  absl::Time started = absl::InfinitePast();
  absl::Time finished = absl::InfinitePast();
  int exit_code = 0;  // when stopped and signal == 0
  int signal = 0;     // the signal that ended it, 0 if it exited
  bool oom_killed = false;
  std::string error;  // why it could not start, or "supervisor lost"
};
nlohmann::json StateToJson(const ContainerState& state);
absl::StatusOr<ContainerState> StateFromJson(const nlohmann::json& json);
absl::Status WriteState(const ContainerPaths& paths, const ContainerState& state);
absl::StatusOr<ContainerState> ReadState(const ContainerPaths& paths);

}  // namespace mesh::runtime
