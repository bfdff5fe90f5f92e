#pragma once

// The runtime's entry point: containers from specs, each under its own mesh-shim, with their
// state on disk so that any process (a restarted agent, a test) can pick them up again.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/child_process.h"
#include "runtime/container/exec_spec.h"
#include "runtime/container/state.h"
#include "runtime/image/image_store.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime {

struct RuntimeOptions {
  std::string run_root = "/run/mesh";
  std::string data_root = "/var/lib/mesh";
  std::string shim_path;  // the mesh-shim binary
  std::string cgroup_parent = "mesh";
  // Where images come from: spec.image is looked up here, its config fills what the spec
  // leaves unset (image_config.h), and the image is marked in use until Delete.
  image::ImageStore* images = nullptr;
  // Instead of `images`: the layer directories (top first) for an image reference, and no
  // image config. For tests that need a root filesystem no image import would accept.
  std::function<absl::StatusOr<std::vector<std::string>>(const std::string& image)> layers;
  absl::Duration create_timeout = absl::Seconds(30);
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options) : options_(std::move(options)) {}

  // Validates `spec` (hardened defaults filled in for what it leaves unset: WithDefaults),
  // prepares the container's directories and starts its shim, which sets up namespaces,
  // cgroup and rootfs and leaves the process waiting to exec. Returns the "created" state; on
  // error nothing is left. InvalidArgument for a bad spec, AlreadyExists for a taken id.
  absl::StatusOr<ContainerState> Create(ContainerSpec spec);
  // Create for an id that may exist already, as `docker start` of an exited container: a
  // stopped container of that id (or the data a reboot left without its runtime state) keeps
  // its writable layer, its log and its data directory; /etc files are written from `spec`;
  // state, cgroup and shim are new. FailedPrecondition while it runs or is created. On error
  // the data is still kept (Delete removes it).
  absl::StatusOr<ContainerState> Recreate(ContainerSpec spec);
  // Execs the container's command. FailedPrecondition with the reason if the exec fails.
  absl::Status Start(const std::string& id);
  // Sets the size of the container's terminal (spec.process.terminal). FailedPrecondition if
  // it has none.
  absl::Status Resize(const std::string& id, uint16_t rows, uint16_t cols);
  // Sends `signal` to the container's PID 1 (through a pidfd checked against the recorded
  // start time, so a recycled pid is never hit).
  absl::Status Kill(const std::string& id, int signal);
  // SIGTERM, up to `grace` for it to end, then SIGKILL. The final state.
  absl::StatusOr<ContainerState> Stop(const std::string& id, absl::Duration grace);
  // Blocks until the container has stopped (and its exit is recorded). DeadlineExceeded after
  // `timeout`.
  absl::StatusOr<ContainerState> Wait(const std::string& id,
                                      absl::Duration timeout = absl::InfiniteDuration());
  // The recorded state; a container whose shim vanished without recording an exit reads as
  // stopped with error "supervisor lost".
  absl::StatusOr<ContainerState> State(const std::string& id) const;
  // For a container whose shim is gone ("supervisor lost"): kills what is left in its cgroup
  // and removes the cgroup. Its state (stopped) and data stay, for Recreate or Delete.
  absl::Status Reap(const std::string& id);
  // Every container id with runtime state or data on disk.
  std::vector<std::string> List() const;
  // Where an exec'd process's stdin/stdout/stderr go (borrowed fds; -1: /dev/null). With
  // a terminal, all three are relayed through the pty.
  struct ExecIo {
    int stdin_fd = -1;
    int stdout_fd = -1;
    int stderr_fd = -1;
    // With a terminal: the read end of a pipe of TerminalSize records (borrowed); each one
    // resizes the exec's pty while it runs (its process gets SIGWINCH). -1: the size stays.
    int resize_fd = -1;
    // Readable (an eventfd, the read end of a pipe; borrowed): the caller gave up on the
    // process; it is killed (SIGKILL to the exec helper, whose process dies with it:
    // PR_SET_PDEATHSIG) and Exec returns its end. -1: Exec waits for the process however long.
    int cancel_fd = -1;
  };
  // Runs one more process in the running container `id` (same namespaces, cgroup,
  // capabilities, no_new_privs and seccomp) and waits for it. Its exit status; exit code 126
  // or 127 with the reason on its stderr when it cannot be started.
  absl::StatusOr<ExitStatus> Exec(const std::string& id, const ExecSpec& exec, const ExecIo& io);

  // Removes a stopped container's cgroup, directories and state (also the data left of one
  // whose runtime state is gone). FailedPrecondition while it runs unless `force` (which kills
  // it first). NotFound if nothing of it exists.
  absl::Status Delete(const std::string& id, bool force = false);

  ContainerPaths PathsOf(const std::string& id) const {
    return ContainerPaths::For(options_.run_root, options_.data_root, id);
  }

 private:
  absl::StatusOr<std::string> Control(const std::string& id, const std::string& command) const;
  absl::Status SpawnShim(const ContainerPaths& paths, std::string* report) const;
  absl::StatusOr<ContainerState> Make(ContainerSpec requested, bool keep_data);
  // Removes what a stopped container `id` has besides its data: waits for its shim (of
  // `state`, if any) to end, then removes its cgroup and run directory. The id of the image
  // it used ("" if unknown).
  absl::StatusOr<std::string> Retire(const std::string& id, const ContainerState* state);
  // What container data at `paths` was made with: its cgroup parent and image id.
  struct MadeWith {
    std::string cgroup_parent;
    std::string image_id;
  };
  MadeWith MadeWithOf(const ContainerPaths& paths) const;

  const RuntimeOptions options_;
};

}  // namespace mesh::runtime
