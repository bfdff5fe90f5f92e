// meshctl run: one container, as `docker run` makes one: create and start it, then (unless -d)
// print its output until it ends and exit with its code; --rm removes it afterwards.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/cli.h"
#include "cli/commands/containers.h"
#include "cli/signals.h"
#include "cli/spec/scalars.h"

namespace mesh::cli {
namespace {

struct RunFlags {
  std::string image;
  std::vector<std::string> command;
  std::string name;
  bool rm = false;
  bool detach = false;
  std::vector<std::string> publish;
  std::vector<std::string> networks;
  std::string ip;
  std::vector<std::string> env;
  std::vector<std::string> volumes;
  std::vector<std::string> tmpfs;
  std::vector<std::string> labels;
  std::string restart;
  std::string entrypoint;
  std::string workdir;
  std::string user;
  std::string hostname;
  std::string memory;
  std::string cpus;
  int64_t pids = 0;
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  bool privileged = false;
  bool init = false;
  bool read_only = false;
};

// "busybox-3f9a2c": the image's last path part, cut to a DNS label, and six random hex digits.
std::string GeneratedName(const std::string& image) {
  std::string base = image.substr(image.find_last_of('/') + 1);
  base = base.substr(0, base.find_first_of(":@"));
  std::string clean;
  for (char ch : absl::AsciiStrToLower(base)) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '-') clean += ch;
  }
  if (clean.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(clean[0]))) {
    clean = "c" + clean;
  }
  clean = clean.substr(0, 40);
  std::random_device random;
  return absl::StrFormat("%s-%06x", clean, random() & 0xffffff);
}

// The flags as a ContainerSpec; InvalidArgument naming the flag for a bad value (meshd checks
// the rest, and names the field).
absl::StatusOr<v1::ContainerSpec> SpecOf(const RunFlags& f) {
  v1::ContainerSpec spec;
  spec.set_name(f.name.empty() ? GeneratedName(f.image) : f.name);
  spec.set_image(f.image);
  for (const std::string& arg : f.command) spec.add_args(arg);
  if (!f.entrypoint.empty()) {
    absl::StatusOr<std::vector<std::string>> words = SplitCommandLine(f.entrypoint);
    if (!words.ok())
      return absl::InvalidArgumentError(absl::StrCat("--entrypoint: ", words.status().message()));
    for (const std::string& w : *words) spec.add_entrypoint(w);
  }
  for (const std::string& e : f.env) spec.add_env(e);
  spec.set_working_dir(f.workdir);
  spec.set_user(f.user);
  spec.set_hostname(f.hostname);
  for (const std::string& label : f.labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    (*spec.mutable_labels()->mutable_labels())[kv.first] = kv.second;
  }
  for (size_t i = 0; i < f.networks.size(); ++i) {
    v1::NetworkAttachment* a = spec.add_networks();
    a->set_network(f.networks[i]);
    if (i == 0) a->set_ip(f.ip);
  }
  if (!f.ip.empty() && f.networks.empty()) {
    return absl::InvalidArgumentError("--ip: give the network it is on with --network");
  }
  for (const std::string& p : f.publish) {
    absl::StatusOr<v1::PortMapping> port = ParsePortMapping(p);
    if (!port.ok())
      return absl::InvalidArgumentError(absl::StrCat("-p: ", port.status().message()));
    *spec.add_ports() = *port;
  }
  char cwd[4096];
  const std::string base_dir = getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : "/";
  for (const std::string& v : f.volumes) {
    absl::StatusOr<v1::Mount> mount = ParseBindMount(v, base_dir);
    if (!mount.ok())
      return absl::InvalidArgumentError(absl::StrCat("-v: ", mount.status().message()));
    *spec.add_mounts() = *mount;
  }
  for (const std::string& t : f.tmpfs) {
    v1::Mount* m = spec.add_mounts();
    m->set_type(v1::Mount::TYPE_TMPFS);
    m->set_destination(t);
  }
  if (!f.restart.empty()) {
    absl::StatusOr<v1::RestartPolicy> restart = ParseRestartPolicy(f.restart);
    if (!restart.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--restart: ", restart.status().message()));
    }
    *spec.mutable_restart() = *restart;
  }
  if (!f.memory.empty()) {
    absl::StatusOr<uint64_t> bytes = ParseSize(f.memory, uint64_t{1} << 50);
    if (!bytes.ok())
      return absl::InvalidArgumentError(absl::StrCat("-m: ", bytes.status().message()));
    spec.mutable_resources()->set_memory_bytes(static_cast<int64_t>(*bytes));
  }
  if (!f.cpus.empty()) {
    absl::StatusOr<double> cpus = ParseCpus(f.cpus);
    if (!cpus.ok())
      return absl::InvalidArgumentError(absl::StrCat("--cpus: ", cpus.status().message()));
    spec.mutable_resources()->set_cpus(*cpus);
  }
  spec.mutable_resources()->set_pids(f.pids);
  for (const std::string& c : f.cap_add) spec.add_cap_add(c);
  for (const std::string& c : f.cap_drop) spec.add_cap_drop(c);
  spec.set_privileged(f.privileged);
  spec.set_init(f.init);
  spec.set_read_only_root(f.read_only);
  return spec;
}

absl::StatusOr<int> Run(Cli& cli, const RunFlags& f) {
  if (f.rm && f.detach) {
    return absl::InvalidArgumentError(
        "--rm with -d: meshctl removes the container when it has watched it end, which a "
        "detached run does not; leave out one of them (meshctl rm NAME removes it later)");
  }
  absl::StatusOr<v1::ContainerSpec> spec = SpecOf(f);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<Client*> c = cli.client();
  if (!c.ok()) return c.status();
  Client& client = **c;
  const std::string name = spec->name();
  v1::CreateContainerRequest create;
  *create.mutable_spec() = *spec;
  create.set_start(true);
  v1::Container created;
  grpc::Status status = client.containers().Create(client.Context().get(), create, &created);
  auto remove = [&] {
    v1::RemoveContainerRequest request;
    request.set_name(name);
    request.set_force(true);
    v1::RemoveContainerResponse removed;
    grpc::Status s = client.containers().Remove(client.Context().get(), request, &removed);
    if (!s.ok()) Cli::Error(absl::StrCat("--rm: ", client.Describe(s)));
  };
  if (!status.ok()) {
    cli.Failed(status);
    // A container that was made but whose command could not start goes with --rm too.
    if (f.rm && status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) remove();
    // As docker run: 127 when the command is not there, 126 when it cannot be run.
    const std::string& message = status.error_message();
    if (message.find(": exec \"") != std::string::npos) {
      if (message.find("(ENOENT)") != std::string::npos) return 127;
      if (message.find("(EACCES)") != std::string::npos) return 126;
    }
    return kExitExecFailed;
  }
  if (f.detach) {
    std::printf("%s\n", name.c_str());
    return kExitOk;
  }
  // Ctrl-C and SIGTERM go on to the container (as docker run's signal proxy), whose end then
  // ends the log stream. A PID 1 without a handler ignores them: a second one kills it.
  std::atomic<int> signals = 0;
  OnInterrupt forward([&client, &name, &signals](int signal) {
    v1::KillContainerRequest kill;
    kill.set_name(name);
    kill.set_signal(++signals > 1 ? "SIGKILL" : signal == SIGINT ? "SIGINT" : "SIGTERM");
    v1::Container out;
    (void)client.containers().Kill(client.Context().get(), kill, &out);
  });
  v1::LogsRequest logs;
  logs.set_name(name);
  logs.set_follow(true);
  const int logs_code = FollowLogs(cli, logs, /*timestamps=*/false);
  v1::WaitContainerRequest wait;
  wait.set_name(name);
  v1::WaitContainerResponse waited;
  status = client.containers().Wait(client.Context(absl::InfiniteDuration()).get(), wait, &waited);
  int code = logs_code == kExitOk ? waited.exit().code() : kExitExecFailed;
  if (!status.ok()) {
    cli.Failed(status);
    code = kExitExecFailed;
  }
  if (f.rm) remove();
  return code;
}

}  // namespace

void AddRunCommand(CLI::App& app, Cli& cli) {
  CLI::App* run = app.add_subcommand(
      "run", "Create and start one container; print its output until it ends (-d: detach)");
  auto f = std::make_shared<RunFlags>();
  run->add_option("--name", f->name, "its name (default: the image's and a random suffix)");
  run->add_flag("--rm", f->rm, "remove it when it has ended");
  run->add_flag("-d,--detach", f->detach, "start it and print its name");
  run->add_option("-p,--publish", f->publish, "publish a port: [ip:]host:container[/tcp|udp]")
      ->allow_extra_args(false);
  run->add_option("--network", f->networks, "attach it to this network (repeat for more)")
      ->allow_extra_args(false);
  run->add_option("--ip", f->ip, "its address on the first --network");
  run->add_option("-e,--env", f->env, "an environment variable, KEY=VALUE")
      ->allow_extra_args(false);
  run->add_option("-v,--volume", f->volumes, "bind a host path: source:destination[:ro]")
      ->allow_extra_args(false);
  run->add_option("--tmpfs", f->tmpfs, "a tmpfs at this path")->allow_extra_args(false);
  run->add_option("-l,--label", f->labels, "a label, key=value")->allow_extra_args(false);
  run->add_option("--restart", f->restart, "no, on-failure[:N], always or unless-stopped");
  run->add_option("--entrypoint", f->entrypoint, "run this instead of the image's entrypoint");
  run->add_option("-w,--workdir", f->workdir, "working directory inside the container");
  run->add_option("-u,--user", f->user, "user[:group] to run as (name or id)");
  run->add_option("--hostname", f->hostname, "its host name (default: its name)");
  run->add_option("-m,--memory", f->memory, "memory limit (512m, 1g)");
  run->add_option("--cpus", f->cpus, "CPU limit (0.5, 2)");
  run->add_option("--pids-limit", f->pids, "most processes");
  run->add_option("--cap-add", f->cap_add, "add a capability (NET_ADMIN)")->allow_extra_args(false);
  run->add_option("--cap-drop", f->cap_drop, "drop a capability (ALL)")->allow_extra_args(false);
  run->add_flag("--privileged", f->privileged, "all capabilities, no seccomp filter");
  run->add_flag("--init", f->init, "run a tiny init as PID 1 (forwards signals, reaps)");
  run->add_flag("--read-only", f->read_only, "a read-only root filesystem");
  // Flags end at the image: what follows is the command's, its flags included.
  run->prefix_command();
  run->fallthrough(false);
  run->footer("Usage: meshctl run [flags] IMAGE [COMMAND [ARG...]]");
  cli.Action(run, [&cli, f, run]() -> absl::StatusOr<int> {
    std::vector<std::string> rest = run->remaining();
    if (!rest.empty() && rest.front() == "--") rest.erase(rest.begin());
    if (rest.empty()) {
      return absl::InvalidArgumentError("run: give the image (meshctl run busybox echo hi)");
    }
    f->image = rest.front();
    f->command.assign(rest.begin() + 1, rest.end());
    return Run(cli, *f);
  });
}

}  // namespace mesh::cli
