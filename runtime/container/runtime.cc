#include "runtime/container/runtime.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/names.h"
#include "base/rollback.h"
#include "base/status_macros.h"
#include "base/wait.h"
#include "runtime/cgroups/cgroup.h"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/image_config.h"
#include "runtime/spec/defaults.h"
#include "runtime/spec/spec_json.h"
#include "runtime/spec/sysctl.h"

namespace mesh::runtime {
namespace {

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

absl::Status MakeDir(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return mesh::ErrnoToStatus(ec.value(), absl::StrCat("create ", Quote(path)));
  if (chmod(path.c_str(), mode) != 0) return mesh::ErrnoToStatus(errno, Quote(path));
  return absl::OkStatus();
}

// OCI uidMappings/gidMappings as the kernel will take them (user_namespaces(7)): at most 340
// lines, written in one write of under 4096 bytes; sizes above 0; no range past 4294967294
// (4294967295 is "no id"); ranges overlapping neither inside nor outside.
absl::Status ValidateIdMappings(const std::string& what, const char* kind,
                                const std::vector<IdMapping>& mappings) {
  constexpr size_t kMaxLines = 340;
  constexpr uint64_t kIdLimit = 4294967295ULL;  // exclusive
  const std::string field = absl::StrCat(kind, "_mappings");
  if (mappings.size() > kMaxLines) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", field, " has ", mappings.size(),
                                                   " lines, the kernel takes at most ", kMaxLines,
                                                   "; merge adjacent ranges"));
  }
  for (size_t i = 0; i < mappings.size(); ++i) {
    const IdMapping& m = mappings[i];
    const std::string line =
        absl::StrCat(field, "[", i, "] (", m.container_id, " ", m.host_id, " ", m.size, ")");
    if (m.size == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", line, " has size 0; give the number of ids to map"));
    }
    if (uint64_t{m.container_id} + m.size > kIdLimit || uint64_t{m.host_id} + m.size > kIdLimit) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": ", line, " runs past id 4294967294 (4294967295 is not an id); shrink it"));
    }
    for (size_t j = 0; j < i; ++j) {
      const IdMapping& o = mappings[j];
      const bool inside = m.container_id < uint64_t{o.container_id} + o.size &&
                          o.container_id < uint64_t{m.container_id} + m.size;
      const bool outside =
          m.host_id < uint64_t{o.host_id} + o.size && o.host_id < uint64_t{m.host_id} + m.size;
      if (inside || outside) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": ", line, " overlaps ", field, "[", j, "] (", o.container_id, " ",
                         o.host_id, " ", o.size, ") on the ", inside ? "container" : "host",
                         " side; each id may be mapped once"));
      }
    }
  }
  if (IdMapText(mappings).size() >= 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", field, " is 4096 bytes or more as text, more than the kernel takes in its ",
        "one write; use fewer, larger ranges"));
  }
  return absl::OkStatus();
}

absl::Status ValidateUserNamespace(const std::string& what, const ContainerSpec& spec) {
  if (!HasUserNamespace(spec)) {
    if (!spec.uid_mappings.empty() || !spec.gid_mappings.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": uid/gid mappings are set but the container has no user namespace; add a ",
          "user namespace to its namespaces, or drop the mappings"));
    }
    return absl::OkStatus();
  }
  if (spec.uid_mappings.empty() || spec.gid_mappings.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": a user namespace needs both uid_mappings and gid_mappings (for example ",
        "container 0, host 100000, size 65536)"));
  }
  MESH_RETURN_IF_ERROR(ValidateIdMappings(what, "uid", spec.uid_mappings));
  MESH_RETURN_IF_ERROR(ValidateIdMappings(what, "gid", spec.gid_mappings));
  // mesh builds the rootfs as the container's root: uid 0 and gid 0 must exist inside.
  if (!HostIdOf(spec.uid_mappings, 0) || !HostIdOf(spec.gid_mappings, 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": the user namespace must map container uid 0 and gid 0 (its root sets up the ",
        "rootfs); add a mapping that starts at container id 0"));
  }
  const User& user = spec.process.user;
  if (!HostIdOf(spec.uid_mappings, user.uid)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the process's uid ", user.uid,
                                                   " is not in uid_mappings; map it or run as a ",
                                                   "mapped user"));
  }
  std::vector<uint32_t> gids = user.additional_gids;
  gids.push_back(user.gid);
  for (uint32_t gid : gids) {
    if (!HostIdOf(spec.gid_mappings, gid)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": the process's gid ", gid,
                                                     " is not in gid_mappings; map it or drop it"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const ContainerSpec& spec) {
  const std::string what = absl::StrCat("container ", Quote(spec.id));
  MESH_RETURN_IF_ERROR(Annotate(ValidateName(NameKind::kContainer, spec.id), "create container"));
  if (spec.process.args.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": no command (process.args is empty and the image has none)"));
  }
  for (const std::string& e : spec.process.env) {
    if (e.find('=') == std::string::npos || e[0] == '=' || e.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": environment entry ", Quote(e), " is not KEY=VALUE"));
    }
  }
  if (spec.process.cwd.empty() || spec.process.cwd[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": working directory ", Quote(spec.process.cwd), " must be an absolute path"));
  }
  if (spec.hostname.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": hostname is longer than 64 bytes"));
  }
  for (const NamespaceSpec& ns : spec.namespaces) {
    if (ns.type == NamespaceType::kUser && !ns.path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": joining an existing user namespace by path (", Quote(ns.path),
                       ") is not supported; leave the path empty to give the container a new one"));
    }
    if (!ns.path.empty() && ns.type != NamespaceType::kNetwork && ns.type != NamespaceType::kIpc &&
        ns.type != NamespaceType::kUts) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": joining an existing namespace by path works for network, ipc and uts only"));
    }
  }
  MESH_RETURN_IF_ERROR(ValidateUserNamespace(what, spec));
  const bool user_namespace =
      std::any_of(spec.namespaces.begin(), spec.namespaces.end(),
                  [](const NamespaceSpec& ns) { return ns.type == NamespaceType::kUser; });
  if (user_namespace && !spec.sysctls.empty()) {
    // The child, root only in its own user namespace, may not write the sysctls of namespaces
    // the host's user namespace owns (the network namespace it joins).
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": sysctls and a user namespace do not go together yet; drop one of them"));
  }
  for (const auto& [name, value] : spec.sysctls) {
    MESH_RETURN_IF_ERROR(Annotate(ValidateSysctl(name, value).status(), what));
  }
  const Resources& r = spec.resources;
  if ((r.memory_limit && *r.memory_limit <= 0) || (r.pids_limit && *r.pids_limit <= 0) ||
      (r.cpu_quota && *r.cpu_quota <= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": memory, pids and cpu quota limits must be positive"));
  }
  // Every limit and device rule against what the kernel takes, before the shim starts.
  MESH_RETURN_IF_ERROR(Annotate(ValidateResources(r), what));
  return absl::OkStatus();
}

}  // namespace

absl::Status Runtime::SpawnShim(const ContainerPaths& paths, std::string* report) const {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return mesh::ErrnoToStatus(errno, "pipe");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // Everything the children need is made before fork: only async-signal-safe calls follow.
  const std::string shim = options_.shim_path;
  const std::string run_dir = paths.run_dir;
  char* const argv[] = {const_cast<char*>("mesh-shim"), const_cast<char*>(run_dir.c_str()),
                        nullptr};
  const int report_fd = write_end.get();
  pid_t middle = fork();
  if (middle < 0) return mesh::ErrnoToStatus(errno, "fork the shim");
  if (middle == 0) {
    // A new session, then a second fork: the shim is nobody's child but init's, so it
    // outlives whoever asked for the container.
    setsid();
    pid_t shim_pid = fork();
    if (shim_pid != 0) _exit(shim_pid < 0 ? 1 : 0);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
        dup2(report_fd, 3) < 0) {
      _exit(126);
    }
    syscall(SYS_close_range, 4, ~0U, 0);
    execv(shim.c_str(), argv);
    _exit(127);
  }
  write_end.Reset();
  int status = 0;
  while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WaitReadable(read_end.get(), options_.create_timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("the shim did not report within ",
                                                    absl::FormatDuration(options_.create_timeout)));
  }
  // One line ("ok" or "error <message>"), or EOF if the shim died first.
  char buf[4096];
  std::string text;
  while (text.find('\n') == std::string::npos) {
    ssize_t n = read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  *report = text;
  return absl::OkStatus();
}

absl::StatusOr<ContainerState> Runtime::Create(ContainerSpec spec) {
  return Make(std::move(spec), /*keep_data=*/false);
}

absl::StatusOr<ContainerState> Runtime::Recreate(ContainerSpec spec) {
  return Make(std::move(spec), /*keep_data=*/true);
}

absl::StatusOr<std::string> Runtime::Retire(const std::string& id, const ContainerState* state) {
  // The shim records the end and then exits: wait for that, so that nothing of the
  // container outlives its state.
  if (state != nullptr) {
    if (absl::StatusOr<UniqueFd> shim = state->shim.Open();
        shim.ok() && !WaitReadable(shim->get(), absl::Seconds(10))) {
      // A new shim must not start beside it (it would remove the new one's socket when it
      // goes).
      return absl::UnavailableError("its previous shim has not ended after 10 s; try again");
    }
  }
  const ContainerPaths paths = PathsOf(id);
  const MadeWith made = MadeWithOf(paths);
  MESH_RETURN_IF_ERROR(DestroyContainerCgroup(made.cgroup_parent, id));
  std::error_code ec;
  std::filesystem::remove_all(paths.run_dir, ec);
  if (ec) return mesh::ErrnoToStatus(ec.value(), absl::StrCat("remove ", Quote(paths.run_dir)));
  return made.image_id;
}

Runtime::MadeWith Runtime::MadeWithOf(const ContainerPaths& paths) const {
  // The options may have changed since: the container's own config says.
  MadeWith made{.cgroup_parent = options_.cgroup_parent};
  if (absl::StatusOr<std::string> text = ReadFile(paths.image_id()); text.ok()) {
    made.image_id = std::string(absl::StripAsciiWhitespace(*text));
  }
  if (absl::StatusOr<std::string> text = ReadFile(paths.config()); text.ok()) {
    absl::StatusOr<ShimConfig> config =
        ShimConfigFromJson(nlohmann::json::parse(*text, nullptr, false));
    if (config.ok()) {
      made.cgroup_parent = config->cgroup_parent;
      made.image_id = config->spec.image;
    }
  }
  return made;
}

absl::StatusOr<ContainerState> Runtime::Make(ContainerSpec requested, bool keep_data) {
  const std::string what = absl::StrCat("create container ", Quote(requested.id));
  MESH_RETURN_IF_ERROR(Annotate(ValidateName(NameKind::kContainer, requested.id), what));
  std::vector<std::string> layers;
  std::string image_id;
  if (options_.images != nullptr) {
    // A container made again keeps the image it was made from, whatever its reference names
    // now (untagged, or moved to another image), as Docker's containers keep their image id.
    std::string ref = requested.image;
    if (keep_data) {
      if (std::string before = MadeWithOf(PathsOf(requested.id)).image_id; !before.empty()) {
        ref = std::move(before);
      }
    }
    absl::StatusOr<image::ImageInfo> info = options_.images->Inspect(ref);
    if (!info.ok()) return Annotate(info.status(), what);
    layers = info->layer_dirs;
    image_id = info->id;
    MESH_RETURN_IF_ERROR(ApplyImageConfig(info->config, layers, requested));
  } else if (options_.layers) {
    absl::StatusOr<std::vector<std::string>> dirs = options_.layers(requested.image);
    if (!dirs.ok()) return Annotate(dirs.status(), what);
    layers = *std::move(dirs);
  } else {
    return absl::FailedPreconditionError(absl::StrCat(what, ": the runtime has no image store"));
  }
  ContainerSpec spec = WithDefaults(std::move(requested));
  MESH_RETURN_IF_ERROR(ValidateSpec(spec));

  const ContainerPaths paths = PathsOf(spec.id);
  struct stat st;
  const bool had_data = stat(paths.data_dir.c_str(), &st) == 0;
  const bool had_run_dir = stat(paths.run_dir.c_str(), &st) == 0;
  std::string old_image_id;
  if (!keep_data) {
    if (had_run_dir || had_data) {
      return absl::AlreadyExistsError(absl::StrCat(what, ": a container of that id exists"));
    }
  } else {
    absl::StatusOr<ContainerState> old = State(spec.id);
    if (old.ok() && old->status != Status::kStopped) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": it is ", StatusName(old->status), "; stop it first"));
    }
    if (!old.ok() && !absl::IsNotFound(old.status())) return Annotate(old.status(), what);
    if (had_run_dir || had_data) {
      absl::StatusOr<std::string> retired = Retire(spec.id, old.ok() ? &*old : nullptr);
      if (!retired.ok()) return Annotate(retired.status(), what);
      old_image_id = *std::move(retired);
    }
  }
  // What is kept on error: the data of a container made again stays for its Delete.
  const bool keeps_data = keep_data && had_data;
  Rollback undo;
  undo.Push([paths, what, keeps_data] {
    std::vector<std::string> dirs = {paths.run_dir};
    if (!keeps_data) dirs.push_back(paths.data_dir);
    for (const std::string& dir : dirs) {
      std::error_code ec;
      // A second pass catches what appeared during the first (nothing may write there, but
      // a failed create must not fail silently either).
      for (int pass = 0; pass < 2 && std::filesystem::exists(dir, ec); ++pass) {
        std::filesystem::remove_all(dir, ec);
      }
      if (std::filesystem::exists(dir, ec)) {
        MESH_LOG(Warning) << what << ": could not remove " << dir << " while undoing ("
                          << (ec ? ec.message() : "it came back") << "); remove it by hand";
      }
    }
  });
  MESH_RETURN_IF_ERROR(MakeDir(paths.run_dir, 0700));
  MESH_RETURN_IF_ERROR(MakeDir(paths.data_dir, 0700));
  for (const std::string& dir : {paths.rootfs(), paths.upper(), paths.work(), paths.etc()}) {
    MESH_RETURN_IF_ERROR(MakeDir(dir, 0755));
  }
  MESH_RETURN_IF_ERROR(WriteFileAtomically(paths.etc() + "/hostname", spec.hostname + "\n", 0644));
  if (!spec.etc_hosts.empty()) {
    MESH_RETURN_IF_ERROR(WriteFileAtomically(paths.etc() + "/hosts", spec.etc_hosts, 0644));
  }
  if (!spec.etc_resolv_conf.empty()) {
    MESH_RETURN_IF_ERROR(
        WriteFileAtomically(paths.etc() + "/resolv.conf", spec.etc_resolv_conf, 0644));
  }
  if (!image_id.empty()) {
    // Recorded by id: the name may move to another image later.
    MESH_RETURN_IF_ERROR(Annotate(options_.images->AddUser(image_id, spec.id).status(), what));
    spec.image = image_id;
    if (!keeps_data || old_image_id != image_id) {
      undo.Push([images = options_.images, image_id, id = spec.id] {
        images->RemoveUser(image_id, id).IgnoreError();
      });
    }
  }
  ShimConfig config{spec, paths, layers, options_.cgroup_parent};
  MESH_RETURN_IF_ERROR(
      WriteFileAtomically(paths.config(), ShimConfigToJson(config).dump(2) + "\n", 0600));

  std::string report;
  MESH_RETURN_IF_ERROR(Annotate(SpawnShim(paths, &report), what));
  if (!absl::StartsWith(report, "ok")) {
    std::string message = absl::StartsWith(report, "error ") ? report.substr(6) : report;
    while (!message.empty() && message.back() == '\n') message.pop_back();
    if (message.empty()) message = "the shim exited without a word (see its shim.log)";
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", message));
  }
  MESH_ASSIGN_OR_RETURN(ContainerState state, ReadState(paths));
  undo.Commit();
  // The image of the data, for a Delete after a reboot; written once the container stands, so
  // that a failed make leaves the old one (whose in-use mark is still there) recorded.
  if (!image_id.empty()) {
    if (absl::Status s = WriteFileAtomically(paths.image_id(), image_id + "\n", 0600); !s.ok()) {
      MESH_LOG(Warning) << what << ": " << s;
    }
  }
  if (options_.images != nullptr && !old_image_id.empty() && old_image_id != image_id) {
    options_.images->RemoveUser(old_image_id, spec.id).IgnoreError();
  }
  MESH_LOG(Info) << "container " << Quote(spec.id) << (had_data ? " made again" : " created")
                 << " (pid " << state.init.pid << ")";
  return state;
}

absl::StatusOr<std::string> Runtime::Control(const std::string& id,
                                             const std::string& command) const {
  const ContainerPaths paths = PathsOf(id);
  const std::string what = absl::StrCat("container ", Quote(id), ": ", command);
  UniqueFd sock(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = paths.control();
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": socket path too long"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (!sock.valid() || connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": its shim does not answer (", strerror(errno), ")"));
  }
  if (send(sock.get(), command.data(), command.size(), MSG_NOSIGNAL) < 0) {
    return mesh::ErrnoToStatus(errno, what);
  }
  if (!WaitReadable(sock.get(), absl::Seconds(30))) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": no answer from its shim"));
  }
  char buf[65536];
  ssize_t n = recv(sock.get(), buf, sizeof(buf), 0);
  if (n <= 0) return absl::UnavailableError(absl::StrCat(what, ": its shim hung up"));
  std::string reply(buf, static_cast<size_t>(n));
  if (absl::StartsWith(reply, "error ")) {
    return absl::FailedPreconditionError(reply.substr(6));
  }
  return reply;
}

absl::Status Runtime::Resize(const std::string& id, uint16_t rows, uint16_t cols) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kContainer, id));
  return Control(id, absl::StrCat("resize ", rows, " ", cols)).status();
}

absl::Status Runtime::Start(const std::string& id) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kContainer, id));
  return Control(id, "start").status();
}

absl::Status Runtime::Kill(const std::string& id, int signal) {
  MESH_ASSIGN_OR_RETURN(ContainerState state, State(id));
  if (state.status == Status::kStopped) return absl::OkStatus();
  absl::StatusOr<UniqueFd> pidfd = state.init.Open();
  if (absl::IsNotFound(pidfd.status())) return absl::OkStatus();  // ended meanwhile
  MESH_RETURN_IF_ERROR(pidfd.status());
  if (syscall(SYS_pidfd_send_signal, pidfd->get(), signal, nullptr, 0) != 0 && errno != ESRCH) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("signal container ", Quote(id)));
  }
  return absl::OkStatus();
}

absl::StatusOr<ContainerState> Runtime::Wait(const std::string& id, absl::Duration timeout) {
  MESH_ASSIGN_OR_RETURN(ContainerState state, State(id));
  if (state.status == Status::kStopped) return state;
  absl::StatusOr<UniqueFd> shim = state.shim.Open();
  if (shim.ok() && !WaitReadable(shim->get(), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("container ", Quote(id), " still runs after ", absl::FormatDuration(timeout)));
  }
  return State(id);
}

absl::StatusOr<ContainerState> Runtime::Stop(const std::string& id, absl::Duration grace) {
  MESH_RETURN_IF_ERROR(Kill(id, SIGTERM));
  absl::StatusOr<ContainerState> state = Wait(id, grace);
  if (!absl::IsDeadlineExceeded(state.status())) return state;
  MESH_RETURN_IF_ERROR(Kill(id, SIGKILL));
  return Wait(id, absl::Seconds(30));
}

absl::StatusOr<ContainerState> Runtime::State(const std::string& id) const {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kContainer, id));
  const ContainerPaths paths = PathsOf(id);
  absl::StatusOr<ContainerState> state = ReadState(paths);
  if (absl::IsNotFound(state.status())) {
    return absl::NotFoundError(absl::StrCat("container ", Quote(id), ": no such container"));
  }
  MESH_RETURN_IF_ERROR(state.status());
  if (state->status != Status::kStopped && !state->shim.Open().ok()) {
    // The shim died without recording an end (killed). Its death took the container's PID 1
    // with it (PDEATHSIG), or will in a moment; make sure.
    if (absl::StatusOr<UniqueFd> init = state->init.Open(); init.ok()) {
      syscall(SYS_pidfd_send_signal, init->get(), SIGKILL, nullptr, 0);
    }
    // The shim may have recorded the end just before it went.
    absl::StatusOr<ContainerState> again = ReadState(paths);
    if (again.ok() && again->status == Status::kStopped) return again;
    state->status = Status::kStopped;
    state->signal = SIGKILL;
    state->exit_code = 128 + SIGKILL;
    state->error = "supervisor lost";
  }
  return state;
}

std::vector<std::string> Runtime::List() const {
  std::set<std::string> ids;
  for (const std::string& root : {options_.run_root, options_.data_root}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(root + "/containers", ec)) {
      ids.insert(entry.path().filename().string());
    }
  }
  return {ids.begin(), ids.end()};
}

absl::StatusOr<ExitStatus> Runtime::Exec(const std::string& id, const ExecSpec& exec,
                                         const ExecIo& io) {
  const std::string what = absl::StrCat("exec in container ", Quote(id));
  if (exec.args.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no command"));
  MESH_ASSIGN_OR_RETURN(ContainerState state, State(id));
  if (state.status != Status::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": it is ", StatusName(state.status)));
  }
  const ContainerPaths paths = PathsOf(id);
  std::string file = absl::StrCat(paths.run_dir, "/exec-XXXXXX");
  UniqueFd fd(mkstemp(file.data()));
  if (!fd.valid()) return mesh::ErrnoToStatus(errno, what);
  fd.Reset();
  auto remove = [&file] { unlink(file.c_str()); };
  if (absl::Status s = WriteFileAtomically(file, ExecSpecToJson(exec).dump(), 0600); !s.ok()) {
    remove();
    return Annotate(s, what);
  }
  SpawnOptions spawn{.argv = {options_.shim_path, "exec", paths.run_dir, file},
                     .stdin_fd = io.stdin_fd,
                     .stdout_fd = io.stdout_fd,
                     .stderr_fd = io.stderr_fd};
  if (exec.terminal && io.resize_fd >= 0) {
    spawn.argv.push_back("--resize-fd=3");
    spawn.fd3 = io.resize_fd;
  }
  absl::StatusOr<ChildProcess> helper = ChildProcess::Spawn(spawn);
  if (!helper.ok()) {
    remove();
    return Annotate(helper.status(), what);
  }
  while (true) {
    absl::StatusOr<ExitStatus> status =
        helper->Wait(io.cancel_fd >= 0 ? absl::Milliseconds(100) : absl::InfiniteDuration());
    if (!absl::IsDeadlineExceeded(status.status())) {
      remove();
      return status;
    }
    if (WaitReadable(io.cancel_fd, absl::ZeroDuration())) {
      if (absl::Status s = helper->Signal(SIGKILL); !s.ok()) {
        remove();
        return Annotate(s, what);
      }
    }
  }
}

absl::Status Runtime::Reap(const std::string& id) {
  const std::string what = absl::StrCat("reap container ", Quote(id));
  MESH_ASSIGN_OR_RETURN(ContainerState state, State(id));
  if (state.status != Status::kStopped) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": it is ", StatusName(state.status)));
  }
  return Annotate(DestroyContainerCgroup(MadeWithOf(PathsOf(id)).cgroup_parent, id), what);
}

absl::Status Runtime::Delete(const std::string& id, bool force) {
  const std::string what = absl::StrCat("delete container ", Quote(id));
  absl::StatusOr<ContainerState> state = State(id);
  const ContainerPaths paths = PathsOf(id);
  if (state.ok() && state->status != Status::kStopped) {
    if (!force && state->status == Status::kRunning) {
      return absl::FailedPreconditionError(absl::StrCat(what, ": it is running; stop it first"));
    }
    MESH_RETURN_IF_ERROR(Kill(id, SIGKILL));
    MESH_RETURN_IF_ERROR(Wait(id, absl::Seconds(30)).status());
  } else if (!state.ok()) {
    // Data (or a half-made run directory) without runtime state: what is left goes too.
    struct stat st;
    if (!absl::IsNotFound(state.status()) ||
        (stat(paths.run_dir.c_str(), &st) != 0 && stat(paths.data_dir.c_str(), &st) != 0)) {
      return state.status();
    }
  }
  absl::StatusOr<std::string> image_id = Retire(id, state.ok() ? &*state : nullptr);
  if (!image_id.ok()) return Annotate(image_id.status(), what);
  if (options_.images != nullptr && !image_id->empty()) {
    MESH_RETURN_IF_ERROR(Annotate(options_.images->RemoveUser(*image_id, id), what));
  }
  std::error_code ec;
  std::filesystem::remove_all(paths.data_dir, ec);
  if (ec) return mesh::ErrnoToStatus(ec.value(), absl::StrCat("remove ", Quote(paths.data_dir)));
  MESH_LOG(Info) << "container " << Quote(id) << " deleted";
  return absl::OkStatus();
}

}  // namespace mesh::runtime
