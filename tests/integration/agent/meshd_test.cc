// meshd end to end through its API (issue 5): the real binary in the sandbox, a real gRPC
// client on the unix socket, containers reached from wan through published ports.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/controller/faults.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "base/unique_fd.h"
#include "base/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/container/cgroup_access.h"
#include "tests/support/busybox_layer.h"
#include "tests/support/host_traces.h"
#include "tests/support/meshd_api_test.h"
#include "tests/support/meshd_fixture.h"
#include "tests/support/sandbox.h"

namespace mesh::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using MeshdTest = MeshdApiTest;

TEST_F(MeshdTest, ContainerLifecycleWithPublishedPortLogsExecAndStats) {
  CreateNetwork("front", "10.88.1.0/24");
  v1::ContainerSpec spec =
      Spec("web",
           "mkdir -p /www && echo hello-mesh > /www/index.html && echo started && "
           "exec httpd -f -p 80 -h /www");
  v1::PortMapping* port = spec.add_ports();
  port->set_host_port(8080);
  port->set_container_port(80);
  v1::Container web = MustCreate(spec);
  ASSERT_EQ(web.state(), v1::CONTAINER_STATE_RUNNING) << web.DebugString();
  ASSERT_EQ(web.addresses_size(), 1);
  EXPECT_EQ(web.addresses(0).interface(), "eth0");
  EXPECT_TRUE(absl::StartsWith(web.addresses(0).ip(), "10.88.1.")) << web.addresses(0).ip();
  EXPECT_GT(web.pid(), 0);

  // Reached from the outside through the published port, and from the host by address.
  ASSERT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).ok());
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).value_or("?"),
            "hello-mesh\n");
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kHost, web.addresses(0).ip(), 80).value_or("?"),
            "hello-mesh\n");

  // Logs.
  {
    v1::LogsRequest request;
    request.set_name("web");
    auto context = Ctx();
    auto reader = meshd().containers().Logs(context.get(), request);
    std::string text;
    for (v1::LogEntry entry; reader->Read(&entry);) text += entry.data() + "\n";
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(text, "started\n");
  }
  // Logs followed until the container ends.
  {
    MustCreate(Spec("talker", "for i in 1 2 3; do echo line$i; sleep 0.2; done", ""));
    v1::LogsRequest request;
    request.set_name("talker");
    request.set_follow(true);
    auto context = Ctx(absl::Seconds(20));
    auto reader = meshd().containers().Logs(context.get(), request);
    std::vector<std::string> lines;
    for (v1::LogEntry entry; reader->Read(&entry);) lines.push_back(entry.data());
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << StatusText(status);
    EXPECT_THAT(lines, ::testing::ElementsAre("line1", "line2", "line3"));
  }

  // Exec: output, exit codes, stdin, a terminal.
  ExecResult hostname = Exec("web", {"cat", "/etc/hostname"});
  EXPECT_TRUE(hostname.status.ok()) << StatusText(hostname.status);
  EXPECT_EQ(hostname.out, "web\n");
  EXPECT_EQ(hostname.code, 0);
  ExecResult failing = Exec("web", {"sh", "-c", "echo oops >&2; exit 3"});
  EXPECT_EQ(failing.err, "oops\n");
  EXPECT_EQ(failing.code, 3);
  ExecResult cat = Exec("web", {"cat"}, "from stdin");
  EXPECT_EQ(cat.out, "from stdin");
  EXPECT_EQ(cat.code, 0);
  ExecResult tty = Exec("web", {"tty"}, std::nullopt, /*tty=*/true);
  EXPECT_THAT(tty.out, HasSubstr("/dev/pts/"));
  EXPECT_EQ(tty.code, 0);
  ExecResult missing = Exec("web", {"/no/such/program"});
  EXPECT_EQ(missing.code, 127);

  // Stats.
  v1::StatsRequest stats_request;
  stats_request.set_name("web");
  v1::ContainerStats stats;
  grpc::Status stats_status = meshd().containers().Stats(Ctx().get(), stats_request, &stats);
  ASSERT_TRUE(stats_status.ok()) << StatusText(stats_status);
  EXPECT_GT(stats.memory_bytes(), 0u);
  EXPECT_GE(stats.pids(), 1u);

  // Removal: refused while it runs, then stop and remove; nothing of it is left.
  v1::RemoveContainerRequest remove;
  remove.set_name("web");
  v1::RemoveContainerResponse removed;
  grpc::Status refused = meshd().containers().Remove(Ctx().get(), remove, &removed);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << StatusText(refused);
  v1::StopContainerRequest stop;
  stop.set_name("web");
  stop.mutable_timeout()->set_seconds(2);
  v1::Container stopped;
  ASSERT_TRUE(meshd().containers().Stop(Ctx().get(), stop, &stopped).ok());
  EXPECT_EQ(stopped.state(), v1::CONTAINER_STATE_STOPPED);
  ASSERT_TRUE(meshd().containers().Remove(Ctx().get(), remove, &removed).ok());
  EXPECT_EQ(Get("web").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists("/run/mesh/netns/web"));
  EXPECT_FALSE(
      sandbox()
          .WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080, absl::Milliseconds(300))
          .ok());
}

TEST_F(MeshdTest, ServesHealthAndReflectionAndRefusesNobodyOnTheSocket) {
  const std::string target = absl::StrCat("unix:", meshd().options().socket);
  EXPECT_TRUE(HealthCheckServes(target));
  absl::StatusOr<std::string> services = ReflectionListServices(target);
  ASSERT_TRUE(services.ok()) << services.status();
  for (const char* service :
       {"mesh.v1.ContainerService", "mesh.v1.NetworkService", "mesh.v1.GroupService",
        "mesh.v1.ImageService", "mesh.v1.SystemService", "grpc.health.v1.Health"}) {
    EXPECT_THAT(*services, HasSubstr(service));
  }
  struct stat st {};
  ASSERT_EQ(stat(meshd().options().socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  // A client that is neither root nor in group mesh cannot even connect (TESTING.md #21; the
  // peer credential check behind it is ListenerTest's). Only raw syscalls after fork: this
  // process runs gRPC threads.
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, meshd().options().socket.c_str(), sizeof(address.sun_path) - 1);
  const pid_t child = fork();
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) _exit(1);
    _exit(errno == EACCES ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "nobody: exit " << WEXITSTATUS(status) << " (1: connected, 3: another error)";
}

TEST_F(MeshdTest, ContainersSurviveKill9AndAreAdoptedAfterRestart) {
  CreateNetwork("front", "10.88.1.0/24");
  std::map<std::string, v1::Container> before;
  for (int i = 0; i < 3; ++i) {
    v1::ContainerSpec spec =
        Spec(absl::StrCat("web", i), "echo hi > /index.html && exec httpd -f -p 80 -h /");
    if (i == 0) {
      v1::PortMapping* port = spec.add_ports();
      port->set_host_port(8080);
      port->set_container_port(80);
    }
    before[spec.name()] = MustCreate(spec);
  }
  for (const auto& [name, c] : before) {
    ASSERT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kHost, c.addresses(0).ip(), 80).ok()) << name;
  }
  const std::string ruleset =
      sandbox().Check(Sandbox::Ns::kHost, {"nft", "list", "ruleset"}).value_or("?");

  meshd().Kill9();
  // They keep running and serving while meshd is gone.
  for (const auto& [name, c] : before) {
    EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kHost, c.addresses(0).ip(), 80).value_or("?"), "hi\n")
        << name;
  }
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).value_or("?"),
            "hi\n");

  ASSERT_TRUE(meshd().Restart().ok());
  v1::ListContainersRequest list;
  v1::ListContainersResponse listed;
  ASSERT_TRUE(meshd().containers().List(Ctx().get(), list, &listed).ok());
  ASSERT_EQ(listed.containers_size(), 3);
  for (const v1::Container& c : listed.containers()) {
    const v1::Container& old = before[c.spec().name()];
    EXPECT_EQ(c.state(), v1::CONTAINER_STATE_RUNNING);
    EXPECT_EQ(c.pid(), old.pid()) << "restarted: " << c.spec().name();
    EXPECT_EQ(c.addresses(0).ip(), old.addresses(0).ip());
    EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kHost, c.addresses(0).ip(), 80).value_or("?"), "hi\n");
  }
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).value_or("?"),
            "hi\n");
  EXPECT_EQ(sandbox().Check(Sandbox::Ns::kHost, {"nft", "list", "ruleset"}).value_or("?"), ruleset);
}

TEST_F(MeshdTest, FiftyConcurrentCreatesGetDistinctReachableAddresses) {
  CreateNetwork("front", "10.88.1.0/24");
  constexpr int kCount = 50;
  std::vector<v1::Container> created(kCount);
  std::vector<grpc::Status> statuses(kCount);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCount; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] =
          Create(Spec(absl::StrCat("c", i), "echo ok > /index.html && exec httpd -f -p 80 -h /"),
                 &created[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> addresses;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << StatusText(statuses[i]);
    addresses.insert(created[i].addresses(0).ip());
  }
  EXPECT_EQ(addresses.size(), static_cast<size_t>(kCount));
  for (const std::string& ip : addresses) {
    ASSERT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kHost, ip, 80).ok()) << ip;
  }
}

TEST_F(MeshdTest, BadRequestsGetTheRightCodeAndChangeNothing) {
  CreateNetwork("front", "10.88.1.0/24");
  v1::ContainerSpec taken = Spec("taken", "exec httpd -f -p 80 -h /");
  v1::PortMapping* port = taken.add_ports();
  port->set_host_port(8080);
  port->set_container_port(80);
  MustCreate(taken);
  const std::string before = Traces();

  struct Case {
    std::string what;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    std::string message;
  };
  auto container = [this](v1::ContainerSpec spec) {
    return [this, spec] {
      v1::Container c;
      return Create(spec, &c);
    };
  };
  auto network = [this](const std::string& name, const std::string& subnet) {
    return [this, name, subnet] {
      v1::CreateNetworkRequest request;
      request.mutable_spec()->set_name(name);
      request.mutable_spec()->set_subnet(subnet);
      v1::Network n;
      return meshd().networks().Create(Ctx().get(), request, &n);
    };
  };
  v1::ContainerSpec empty_name = Spec("", "true");
  v1::ContainerSpec long_name = Spec(std::string(4096, 'a'), "true");
  v1::ContainerSpec unknown_image = Spec("x", "true");
  unknown_image.set_image("nosuchimage");
  v1::ContainerSpec unknown_network = Spec("x", "true", "nosuchnet");
  v1::ContainerSpec port_in_use = Spec("x", "true");
  *port_in_use.add_ports() = *port;
  v1::ContainerSpec bad_port = Spec("x", "true");
  bad_port.add_ports()->set_host_port(70000);
  v1::ContainerSpec duplicate = Spec("taken", "true");
  v1::ContainerSpec outside_subnet = Spec("x", "true");
  outside_subnet.mutable_networks(0)->set_ip("10.99.0.5");
  std::vector<Case> cases = {
      {"empty name", container(empty_name), grpc::StatusCode::INVALID_ARGUMENT, "spec.name"},
      {"4 KiB name", container(long_name), grpc::StatusCode::INVALID_ARGUMENT, "spec.name"},
      {"unknown image", container(unknown_image), grpc::StatusCode::NOT_FOUND, "nosuchimage"},
      {"unknown network", container(unknown_network), grpc::StatusCode::NOT_FOUND, "nosuchnet"},
      {"port in use", container(port_in_use), grpc::StatusCode::ALREADY_EXISTS, "8080"},
      {"port 70000", container(bad_port), grpc::StatusCode::INVALID_ARGUMENT, "spec.ports[0]"},
      {"name taken", container(duplicate), grpc::StatusCode::ALREADY_EXISTS, "taken"},
      {"address outside the subnet", container(outside_subnet), grpc::StatusCode::INVALID_ARGUMENT,
       "10.99.0.5"},
      {"overlapping subnet", network("back", "10.88.0.0/16"), grpc::StatusCode::INVALID_ARGUMENT,
       "10.88.1.0/24"},
      {"bad CIDR", network("back", "10.88.300.0/24"), grpc::StatusCode::INVALID_ARGUMENT,
       "spec.subnet"},
      {"network name taken", network("front", ""), grpc::StatusCode::ALREADY_EXISTS, "front"},
  };
  for (const Case& c : cases) {
    grpc::Status status = c.call();
    EXPECT_EQ(status.error_code(), c.code) << c.what << ": " << StatusText(status);
    EXPECT_THAT(status.error_message(), HasSubstr(c.message)) << c.what;
    EXPECT_EQ(Traces(), before) << c.what << " changed the host";
  }
}

TEST_F(MeshdTest, OnFailureRestartsWithBackoffAndStopsAtItsMax) {
  v1::ContainerSpec spec = Spec("crasher", "exit 1", "");
  spec.mutable_restart()->set_mode(v1::RestartPolicy::MODE_ON_FAILURE);
  spec.mutable_restart()->set_max_retries(2);
  v1::Container c;
  ASSERT_TRUE(Create(spec, &c).ok());
  absl::StatusOr<v1::Container> done = WaitFor("crasher", [](const v1::Container& x) {
    return x.restart_count() == 2 && x.state() == v1::CONTAINER_STATE_STOPPED;
  });
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->last_exit().code(), 1);
  absl::SleepFor(absl::Seconds(1));  // the longest back-off it would use is 200 ms
  absl::StatusOr<v1::Container> later = Get("crasher");
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->restart_count(), 2u);
  EXPECT_EQ(later->state(), v1::CONTAINER_STATE_STOPPED);
}

// A container's writable layer and log outlive its runs, as Docker's: `stop` then `start`, and a
// restart by the policy, each see the files of the runs before and append to one log.
TEST_F(MeshdTest, RunsOfAContainerShareItsWritableLayerAndLog) {
  const std::string count = "echo run >> /runs; echo run $(wc -l < /runs)";
  v1::ContainerSpec spec = Spec("keeper", count + "; exec sleep 1000", "");
  MustCreate(spec);
  ASSERT_TRUE(WaitFor_([&] { return Exec("keeper", {"cat", "/runs"}).out == "run\n"; }).ok());
  v1::StopContainerRequest stop;
  stop.set_name("keeper");
  stop.mutable_timeout()->set_seconds(0);
  v1::Container c;
  ASSERT_TRUE(meshd().containers().Stop(Ctx().get(), stop, &c).ok());
  v1::StartContainerRequest start;
  start.set_name("keeper");
  ASSERT_TRUE(meshd().containers().Start(Ctx().get(), start, &c).ok());
  ExecResult second;
  ASSERT_TRUE(WaitFor_([&] {
                second = Exec("keeper", {"cat", "/runs"});
                return second.out == "run\nrun\n";
              }).ok())
      << second.out;

  // The policy's restarts too: a command that fails twice, then finds two more lines.
  v1::ContainerSpec flaky = Spec("flaky", count + "; test $(wc -l < /runs) -ge 3", "");
  flaky.mutable_restart()->set_mode(v1::RestartPolicy::MODE_ON_FAILURE);
  MustCreate(flaky);
  absl::StatusOr<v1::Container> done = WaitFor("flaky", [](const v1::Container& x) {
    return x.state() == v1::CONTAINER_STATE_STOPPED && x.last_exit().code() == 0;
  });
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->restart_count(), 2u);
  v1::LogsRequest request;
  request.set_name("flaky");
  auto context = Ctx();
  auto reader = meshd().containers().Logs(context.get(), request);
  std::string text;
  for (v1::LogEntry entry; reader->Read(&entry);) text += entry.data() + "\n";
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(text, "run 1\nrun 2\nrun 3\n");
}

// At meshd's start, as at dockerd's: an `always` container runs again even after a user's stop;
// an `unless-stopped` one stopped by its user stays stopped.
TEST_F(MeshdTest, AlwaysContainersStartAgainWithMeshd) {
  for (const auto& [name, mode] : {std::pair{"always", v1::RestartPolicy::MODE_ALWAYS},
                                   std::pair{"unless", v1::RestartPolicy::MODE_UNLESS_STOPPED}}) {
    v1::ContainerSpec spec = Spec(name, "exec sleep 1000", "");
    spec.mutable_restart()->set_mode(mode);
    MustCreate(spec);
    v1::StopContainerRequest stop;
    stop.set_name(name);
    stop.mutable_timeout()->set_seconds(0);
    v1::Container c;
    ASSERT_TRUE(meshd().containers().Stop(Ctx().get(), stop, &c).ok());
    EXPECT_EQ(c.state(), v1::CONTAINER_STATE_STOPPED);
  }
  absl::SleepFor(absl::Milliseconds(300));  // longer than a first back-off: no restart
  EXPECT_EQ(Get("always")->state(), v1::CONTAINER_STATE_STOPPED);
  meshd().Kill9();
  ASSERT_TRUE(meshd().Restart().ok());
  absl::StatusOr<v1::Container> always = WaitFor(
      "always", [](const v1::Container& x) { return x.state() == v1::CONTAINER_STATE_RUNNING; });
  ASSERT_TRUE(always.ok()) << always.status();
  EXPECT_EQ(always->restart_count(), 1u);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(Get("unless")->state(), v1::CONTAINER_STATE_STOPPED);
}

// A second meshd on the same socket refuses before it touches anything: no recovery beside a
// serving meshd (its orphan collection would take the first one's containers).
TEST_F(MeshdTest, ASecondMeshdOnTheSameSocketRefusesAndTouchesNothing) {
  v1::Container first = MustCreate(Spec("first", "exec sleep 1000", ""));
  const std::string before = Traces();
  const MeshdOptions& o = meshd().options();
  const std::string log_path = o.log_file + ".second";
  UniqueFd log(open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_TRUE(log.valid());
  absl::StatusOr<ChildProcess> second = ChildProcess::Spawn(
      {.argv = {o.meshd_path, "--state-dir", o.state_dir, "--run-dir", o.run_dir, "--socket",
                o.socket, "--shim", o.shim_path, "--cgroup-parent", cgroup_parent_},
       .env = std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
       .stdout_fd = log.get(),
       .stderr_fd = log.get()});
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<ExitStatus> exit = second->Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_FALSE(exit->ok());
  EXPECT_THAT(ReadFile(log_path).value_or(""), HasSubstr("another meshd is serving there"));
  unlink(log_path.c_str());
  EXPECT_EQ(Traces(), before);
  absl::StatusOr<v1::Container> still = Get("first");
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->state(), v1::CONTAINER_STATE_RUNNING);
  EXPECT_EQ(still->pid(), first.pid());
}

TEST_F(MeshdTest, KilledShimIsReportedAsSupervisorLostAndCleanedUp) {
  v1::Container c = MustCreate(Spec("victim", "echo run; exec sleep 1000", ""));
  auto logs = [this] {
    v1::LogsRequest request;
    request.set_name("victim");
    auto context = Ctx();
    auto reader = meshd().containers().Logs(context.get(), request);
    std::string text;
    for (v1::LogEntry entry; reader->Read(&entry);) text += entry.data() + "\n";
    reader->Finish();
    return text;
  };
  // Its shim has logged the first run before it is killed.
  ASSERT_TRUE(WaitFor_([&] { return logs() == "run\n"; }).ok()) << logs();
  ASSERT_GT(c.pid(), 0);
  absl::StatusOr<std::string> state = ReadFile("/run/mesh/containers/victim/state.json");
  ASSERT_TRUE(state.ok()) << state.status();
  const int shim = nlohmann::json::parse(*state).at("shim").at("pid").get<int>();
  ASSERT_EQ(kill(shim, SIGKILL), 0);
  absl::StatusOr<v1::Container> lost = WaitFor("victim", [](const v1::Container& x) {
    return x.state() == v1::CONTAINER_STATE_STOPPED && !x.last_exit().error().empty();
  });
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_EQ(lost->last_exit().error(), "supervisor lost");
  // Its init is gone too (killed with the cgroup).
  for (int i = 0; i < 100 && kill(c.pid(), 0) == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_NE(kill(c.pid(), 0), 0) << "the container's init survived its shim";
  // Its log (and writable layer) stay: started again, it adds to the same log.
  v1::StartContainerRequest start;
  start.set_name("victim");
  v1::Container again;
  ASSERT_TRUE(meshd().containers().Start(Ctx().get(), start, &again).ok());
  ASSERT_TRUE(WaitFor_([&] { return logs() == "run\nrun\n"; }).ok()) << logs();
}

TEST_F(MeshdTest, ExitWhileMeshdIsDownIsRecordedAfterRestart) {
  MustCreate(Spec("short", "sleep 1; exit 7", ""));
  meshd().Kill9();
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(meshd().Restart().ok());
  absl::StatusOr<v1::Container> c = WaitFor(
      "short", [](const v1::Container& x) { return x.state() == v1::CONTAINER_STATE_STOPPED; });
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->last_exit().code(), 7);
}

TEST_F(MeshdTest, OrphansWithoutRecordsAreCollectedAtStart) {
  CreateNetwork("front", "10.88.1.0/24");
  const std::string empty = Traces();
  MustCreate(Spec("keep", "exec sleep 1000"));
  MustCreate(Spec("orphan", "exec sleep 1000"));
  ASSERT_TRUE(sandbox()
                  .Check(Sandbox::Ns::kHost, {"ip", "link", "add", "foreign0", "type", "veth",
                                              "peer", "name", "foreign1"})
                  .ok());
  meshd().Kill9();
  // The orphan's record goes behind meshd's back: its container, veth, netns and cgroup
  // have no owner now.
  ASSERT_EQ(unlink("/var/lib/mesh/store/containers/orphan.pb"), 0);
  ASSERT_TRUE(meshd().Restart().ok());
  EXPECT_EQ(Get("orphan").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists("/run/mesh/netns/orphan"));
  EXPECT_FALSE(std::filesystem::exists("/run/mesh/containers/orphan"));
  absl::StatusOr<v1::Container> keep = Get("keep");
  ASSERT_TRUE(keep.ok());
  EXPECT_EQ(keep->state(), v1::CONTAINER_STATE_RUNNING);
  const std::string traces = Traces();
  EXPECT_THAT(traces, HasSubstr("link foreign0"));
  EXPECT_THAT(traces, Not(HasSubstr("orphan")));
}

TEST_F(MeshdTest, EveryFaultPointLeavesACompleteOrAbsentObject) {
  CreateNetwork("base", "10.88.1.0/24");
  // Warm up, so that what stays once made (nftables tables, the bridge) is in the baseline.
  v1::ContainerSpec spec =
      Spec("probe", "echo ok > /index.html && exec httpd -f -p 80 -h /", "base");
  v1::PortMapping* port = spec.add_ports();
  port->set_host_port(8080);
  port->set_container_port(80);
  auto remove_all = [&] {
    v1::RemoveContainerRequest remove;
    remove.set_name("probe");
    remove.set_force(true);
    v1::RemoveContainerResponse r;
    meshd().containers().Remove(Ctx().get(), remove, &r);
    v1::RemoveNetworkRequest net;
    net.set_name("extra");
    v1::RemoveNetworkResponse nr;
    meshd().networks().Remove(Ctx().get(), net, &nr);
  };
  MustCreate(spec);
  remove_all();
  const std::string baseline = Traces();

  int points = 0;
  for (absl::string_view point : agent::kFaultPoints) {
    if (absl::StartsWith(point, "group.")) continue;  // GroupApplyConvergesAfterFaults
    SCOPED_TRACE(std::string(point));
    const bool removal = absl::StrContains(point, ".remove.");
    const bool network_point = absl::StartsWith(point, "network.");
    if (removal) {
      if (network_point) {
        CreateNetwork("extra", "10.88.2.0/24");
      } else {
        MustCreate(spec);
      }
    }
    ASSERT_TRUE(meshd().Restart({absl::StrCat("MESH_FAULT_AFTER=", point)}).ok());
    grpc::Status status;
    if (network_point) {
      if (removal) {
        v1::RemoveNetworkRequest request;
        request.set_name("extra");
        v1::RemoveNetworkResponse response;
        status = meshd().networks().Remove(Ctx().get(), request, &response);
      } else {
        v1::CreateNetworkRequest request;
        request.mutable_spec()->set_name("extra");
        request.mutable_spec()->set_subnet("10.88.2.0/24");
        v1::Network response;
        status = meshd().networks().Create(Ctx().get(), request, &response);
      }
    } else if (removal) {
      v1::RemoveContainerRequest request;
      request.set_name("probe");
      request.set_force(true);
      v1::RemoveContainerResponse response;
      status = meshd().containers().Remove(Ctx().get(), request, &response);
    } else {
      v1::Container response;
      status = Create(spec, &response);
    }
    EXPECT_FALSE(status.ok()) << "meshd did not die at " << point;
    absl::StatusOr<ExitStatus> exit = meshd().WaitExit();
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(exit->signal, SIGKILL);
    ASSERT_TRUE(meshd().Restart().ok());

    // Complete or absent: a container that exists works; one that does not left nothing.
    absl::StatusOr<v1::Container> probe = Get("probe");
    if (probe.ok()) {
      if (probe->state() == v1::CONTAINER_STATE_CREATED) {
        v1::StartContainerRequest start;
        start.set_name("probe");
        v1::Container started;
        ASSERT_TRUE(meshd().containers().Start(Ctx().get(), start, &started).ok());
      }
      EXPECT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).ok());
    }
    remove_all();
    EXPECT_EQ(Traces(), baseline) << "leaked after a fault at " << point;
    // A retry succeeds.
    if (!network_point) {
      MustCreate(spec);
      EXPECT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).ok());
      remove_all();
    }
    ++points;
  }
  EXPECT_EQ(points, 13);
}

TEST_F(MeshdTest, HealthCheckGoesHealthyThenUnhealthyWithEvents) {
  v1::EventsRequest events_request;
  events_request.add_kinds(v1::Event::KIND_CONTAINER_HEALTH);
  auto events_context = Ctx(absl::Seconds(30));
  auto events = meshd().system().Events(events_context.get(), events_request);

  v1::ContainerSpec spec = Spec("checked", "touch /ok && exec sleep 1000", "");
  v1::HealthCheck* check = spec.mutable_health_check();
  check->add_command("test");
  check->add_command("-e");
  check->add_command("/ok");
  check->mutable_interval()->set_nanos(100'000'000);
  check->mutable_timeout()->set_seconds(2);
  check->set_retries(2);
  MustCreate(spec);
  ASSERT_TRUE(WaitFor("checked", [](const v1::Container& x) {
                return x.health() == v1::HEALTH_HEALTHY;
              }).ok());
  ExecResult rm = Exec("checked", {"rm", "/ok"});
  ASSERT_EQ(rm.code, 0);
  ASSERT_TRUE(WaitFor("checked", [](const v1::Container& x) {
                return x.health() == v1::HEALTH_UNHEALTHY;
              }).ok());
  std::vector<std::string> seen;
  for (v1::Event event; seen.size() < 3 && events->Read(&event);) {
    EXPECT_EQ(event.object(), "checked");
    seen.push_back(event.attributes().at("health"));
  }
  EXPECT_THAT(seen, ::testing::ElementsAre("starting", "healthy", "unhealthy"));
  events_context->TryCancel();
}

TEST_F(MeshdTest, EventsStreamTellsTheLifecycle) {
  // From a second back: what happens before the stream is subscribed is replayed.
  v1::EventsRequest request;
  request.mutable_since()->set_seconds(absl::ToUnixSeconds(absl::Now()) - 1);
  auto context = Ctx(absl::Seconds(30));
  auto events = meshd().system().Events(context.get(), request);
  CreateNetwork("front", "10.88.1.0/24");
  MustCreate(Spec("brief", "exit 4"));
  ASSERT_TRUE(WaitFor("brief", [](const v1::Container& x) {
                return x.state() == v1::CONTAINER_STATE_STOPPED;
              }).ok());
  v1::RemoveContainerRequest remove;
  remove.set_name("brief");
  v1::RemoveContainerResponse removed;
  ASSERT_TRUE(meshd().containers().Remove(Ctx().get(), remove, &removed).ok());
  std::vector<v1::Event::Kind> kinds;
  for (v1::Event event; kinds.size() < 5 && events->Read(&event);) {
    kinds.push_back(event.kind());
    if (event.kind() == v1::Event::KIND_CONTAINER_DIED) {
      EXPECT_EQ(event.attributes().at("exit_code"), "4");
    }
  }
  EXPECT_THAT(kinds, ::testing::ElementsAre(
                         v1::Event::KIND_NETWORK_CREATED, v1::Event::KIND_CONTAINER_CREATED,
                         v1::Event::KIND_CONTAINER_STARTED, v1::Event::KIND_CONTAINER_DIED,
                         v1::Event::KIND_CONTAINER_REMOVED));
  context->TryCancel();
}

TEST_F(MeshdTest, ForcedRemovalOfARunningContainerTellsItsDeathFirst) {
  CreateNetwork("front", "10.88.1.0/24");
  MustCreate(Spec("long", "exec sleep 1000"));
  ASSERT_TRUE(WaitFor("long", [](const v1::Container& x) {
                return x.state() == v1::CONTAINER_STATE_RUNNING;
              }).ok());
  v1::EventsRequest request;
  request.mutable_since()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  request.add_kinds(v1::Event::KIND_CONTAINER_DIED);
  request.add_kinds(v1::Event::KIND_CONTAINER_REMOVED);
  request.add_kinds(v1::Event::KIND_CONTAINER_RESTARTING);
  auto context = Ctx(absl::Seconds(30));
  auto events = meshd().system().Events(context.get(), request);
  v1::RemoveContainerRequest remove;
  remove.set_name("long");
  remove.set_force(true);
  v1::RemoveContainerResponse removed;
  ASSERT_TRUE(meshd().containers().Remove(Ctx().get(), remove, &removed).ok());
  std::vector<v1::Event> seen(2);
  ASSERT_TRUE(events->Read(&seen[0]));
  ASSERT_TRUE(events->Read(&seen[1]));
  EXPECT_EQ(seen[0].kind(), v1::Event::KIND_CONTAINER_DIED);
  EXPECT_EQ(seen[0].object(), "long");
  EXPECT_EQ(seen[0].attributes().at("exit_code"), "137");
  EXPECT_EQ(seen[0].attributes().at("signal"), "SIGKILL");
  EXPECT_EQ(seen[1].kind(), v1::Event::KIND_CONTAINER_REMOVED);
  context->TryCancel();
}

TEST_F(MeshdTest, TablesFlushedBehindItsBackAreRestoredForeignOnesLeftAlone) {
  CreateNetwork("front", "10.88.1.0/24");
  v1::ContainerSpec spec = Spec("web", "echo hi > /index.html && exec httpd -f -p 80 -h /");
  v1::PortMapping* port = spec.add_ports();
  port->set_host_port(8080);
  port->set_container_port(80);
  MustCreate(spec);
  ASSERT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).ok());
  ASSERT_TRUE(sandbox()
                  .Check(Sandbox::Ns::kHost, {"nft",
                                              "add table inet foreign; add chain inet foreign c "
                                              "{ type filter hook input priority 10; }"})
                  .ok());
  const std::string foreign =
      sandbox()
          .Check(Sandbox::Ns::kHost, {"nft", "list", "table", "inet", "foreign"})
          .value_or("?");
  auto mesh_table = [&] {
    return sandbox()
        .Check(Sandbox::Ns::kHost, {"nft", "list", "table", "inet", "mesh"})
        .value_or("");
  };
  const std::string ours = mesh_table();
  ASSERT_TRUE(sandbox().Check(Sandbox::Ns::kHost, {"nft", "delete", "table", "inet", "mesh"}).ok());
  ASSERT_TRUE(WaitFor_([&] { return mesh_table() == ours; }).ok()) << mesh_table() << "\nwas:\n"
                                                                   << ours;
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).value_or("?"),
            "hi\n");
  EXPECT_EQ(sandbox()
                .Check(Sandbox::Ns::kHost, {"nft", "list", "table", "inet", "foreign"})
                .value_or("?"),
            foreign);
}

// A group of 3 containers on 2 networks, applied, applied again unchanged, changed in one
// member, deleted.
class GroupTest : public MeshdTest {
 protected:
  static v1::GroupSpec Shop(const std::string& app_env = "MODE=a") {
    v1::GroupSpec spec;
    spec.set_name("shop");
    spec.add_networks()->set_name("front");
    spec.mutable_networks(0)->set_subnet("10.88.1.0/24");
    spec.add_networks()->set_name("back");
    spec.mutable_networks(1)->set_subnet("10.88.2.0/24");
    auto member = [&](const std::string& name, std::vector<std::string> networks,
                      const std::string& depends) {
      v1::GroupContainer* c = spec.add_containers();
      c->mutable_spec()->set_name(name);
      c->mutable_spec()->set_image("busybox");
      for (const char* a :
           {"sh", "-c", "echo $HOSTNAME > /index.html && exec httpd -f -p 80 -h /"}) {
        c->mutable_spec()->add_args(a);
      }
      for (const std::string& n : networks) c->mutable_spec()->add_networks()->set_network(n);
      if (!depends.empty()) c->add_depends_on()->set_container(depends);
      return c;
    };
    member("db", {"back"}, "");
    member("app", {"front", "back"}, "db")->mutable_spec()->add_env(app_env);
    v1::GroupContainer* web = member("web", {"front"}, "app");
    v1::PortMapping* port = web->mutable_spec()->add_ports();
    port->set_host_port(8080);
    port->set_container_port(80);
    return spec;
  }
  std::map<std::string, int> Pids(const std::string& group = "shop") {
    v1::ListContainersRequest request;
    request.set_group(group);
    v1::ListContainersResponse response;
    EXPECT_TRUE(meshd().containers().List(Ctx().get(), request, &response).ok());
    std::map<std::string, int> pids;
    for (const v1::Container& c : response.containers()) pids[c.spec().name()] = c.pid();
    return pids;
  }
};

TEST_F(GroupTest, ApplyReapplyChangeOneAndDelete) {
  const std::string empty = Traces();
  v1::Group group;
  EXPECT_THAT(Apply(Shop(), &group),
              ::testing::ElementsAre("front:MEMBER_ACTION_CREATED", "back:MEMBER_ACTION_CREATED",
                                     "db:MEMBER_ACTION_CREATED", "app:MEMBER_ACTION_CREATED",
                                     "web:MEMBER_ACTION_CREATED"));
  ASSERT_EQ(group.members_size(), 5);
  const std::map<std::string, int> first = Pids();
  ASSERT_EQ(first.size(), 3u);
  ASSERT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).ok());
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).value_or("?"),
            "web\n");

  // Unchanged: nothing happens, nothing is written.
  const auto store_time = std::filesystem::last_write_time("/var/lib/mesh/store/groups/shop.pb");
  EXPECT_THAT(Apply(Shop()), ::testing::IsEmpty());
  EXPECT_EQ(Pids(), first);
  EXPECT_EQ(std::filesystem::last_write_time("/var/lib/mesh/store/groups/shop.pb"), store_time);

  // One member changed: only it is made again.
  EXPECT_THAT(Apply(Shop("MODE=b")), ::testing::ElementsAre("app:MEMBER_ACTION_RECREATED"));
  const std::map<std::string, int> second = Pids();
  EXPECT_EQ(second.at("shop-db"), first.at("shop-db"));
  EXPECT_EQ(second.at("shop-web"), first.at("shop-web"));
  EXPECT_NE(second.at("shop-app"), first.at("shop-app"));

  v1::DeleteGroupRequest request;
  request.set_name("shop");
  v1::DeleteGroupResponse response;
  ASSERT_TRUE(meshd().groups().Delete(Ctx().get(), request, &response).ok());
  EXPECT_EQ(response.removed_size(), 5);
  EXPECT_EQ(Traces(), empty);
}

// A new group whose Apply fails before any member is made leaves nothing: no record, and no
// policy in mesh's table (it goes in before the first member). The group has no network of
// its own (a network made would be a member made); "lan" only makes mesh's table exist.
TEST_F(GroupTest, AFailedFirstApplyLeavesNoPolicyBehind) {
  v1::CreateNetworkRequest lan;
  lan.mutable_spec()->set_name("lan");
  lan.mutable_spec()->set_subnet("10.88.9.0/24");
  v1::Network network;
  ASSERT_TRUE(meshd().networks().Create(Ctx().get(), lan, &network).ok());
  v1::GroupSpec spec;
  spec.set_name("doomed");
  v1::GroupContainer* a = spec.add_containers();
  a->mutable_spec()->set_name("a");
  a->mutable_spec()->set_image("nosuchimage");
  spec.mutable_policy()->set_default_action(v1::Policy::DEFAULT_DENY);
  v1::ApplyGroupRequest request;
  *request.mutable_spec() = spec;
  auto context = Ctx(absl::Seconds(60));
  auto reader = meshd().groups().Apply(context.get(), request);
  for (v1::ApplyGroupProgress progress; reader->Read(&progress);) {
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << StatusText(status);
  v1::GetGroupRequest get;
  get.set_name("doomed");
  v1::Group group;
  EXPECT_EQ(meshd().groups().Get(Ctx().get(), get, &group).error_code(),
            grpc::StatusCode::NOT_FOUND);
  absl::StatusOr<std::string> table =
      sandbox().Check(Sandbox::Ns::kHost, {"nft", "list", "table", "inet", "mesh"});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_THAT(*table, Not(HasSubstr("policy doomed"))) << *table;
  v1::RemoveNetworkRequest remove;
  remove.set_name("lan");
  v1::RemoveNetworkResponse removed;
  EXPECT_TRUE(meshd().networks().Remove(Ctx().get(), remove, &removed).ok());
}

TEST_F(GroupTest, ApplyKilledAtRandomPointsConvergesToOneCleanApply) {
  // TESTING.md #16: an Apply killed at 200 random moments, then one clean Apply.
  const std::string empty = Traces();
  Apply(Shop());
  const std::map<std::string, int> clean = Pids();
  const std::string clean_traces = Traces();
  v1::DeleteGroupRequest del;
  del.set_name("shop");
  v1::DeleteGroupResponse deleted;
  ASSERT_TRUE(meshd().groups().Delete(Ctx().get(), del, &deleted).ok());
  ASSERT_EQ(Traces(), empty);

  std::mt19937 random(20261204);
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    // A kill -9 at a random moment of an Apply.
    v1::ApplyGroupRequest request;
    *request.mutable_spec() = Shop();
    auto context = Ctx(absl::Seconds(10));
    auto reader = meshd().groups().Apply(context.get(), request);
    absl::SleepFor(absl::Microseconds(std::uniform_int_distribution<int>(0, 150'000)(random)));
    meshd().Kill9();
    for (v1::ApplyGroupProgress progress; reader->Read(&progress);) {
    }
    reader->Finish();
    ASSERT_TRUE(meshd().Restart().ok());
  }
  Apply(Shop());
  EXPECT_EQ(Pids().size(), clean.size());
  EXPECT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).ok());
  // The same kernel objects as one clean Apply: names and counts (addresses may differ).
  auto shape = [](const std::string& traces) {
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(traces, '\n')) {
      if (absl::StartsWith(line, "link") || absl::StartsWith(line, "/")) lines.emplace_back(line);
    }
    return lines;
  };
  EXPECT_EQ(shape(Traces()).size(), shape(clean_traces).size()) << Traces() << "\nclean:\n"
                                                                << clean_traces;
  ASSERT_TRUE(meshd().groups().Delete(Ctx().get(), del, &deleted).ok());
  EXPECT_EQ(Traces(), empty);
}

TEST_F(MeshdTest, ConnectAndDisconnectASecondNetwork) {
  CreateNetwork("front", "10.88.1.0/24");
  CreateNetwork("back", "10.88.2.0/24");
  MustCreate(Spec("multi", "exec sleep 1000"));
  v1::ConnectRequest connect;
  connect.set_container("multi");
  connect.set_network("back");
  connect.set_ip("10.88.2.50");
  v1::ConnectResponse connected;
  grpc::Status status = meshd().networks().Connect(Ctx().get(), connect, &connected);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(connected.address().interface(), "eth1");
  EXPECT_EQ(connected.address().ip(), "10.88.2.50");
  EXPECT_THAT(Exec("multi", {"ip", "-o", "-4", "addr", "show", "eth1"}).out,
              HasSubstr("10.88.2.50/24"));
  EXPECT_THAT(Exec("multi", {"cat", "/etc/hosts"}).out, HasSubstr("10.88.2.50\tmulti"));
  EXPECT_TRUE(
      sandbox()
          .Check(Sandbox::Ns::kHost, {"busybox", "ping", "-c", "1", "-W", "2", "10.88.2.50"})
          .ok());
  // Connecting twice is refused; the network cannot go while in use.
  EXPECT_EQ(meshd().networks().Connect(Ctx().get(), connect, &connected).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  v1::RemoveNetworkRequest remove_back;
  remove_back.set_name("back");
  v1::RemoveNetworkResponse removed;
  grpc::Status in_use = meshd().networks().Remove(Ctx().get(), remove_back, &removed);
  EXPECT_EQ(in_use.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(in_use.error_message(), HasSubstr("multi"));

  v1::DisconnectRequest disconnect;
  disconnect.set_container("multi");
  disconnect.set_network("back");
  v1::DisconnectResponse disconnected;
  ASSERT_TRUE(meshd().networks().Disconnect(Ctx().get(), disconnect, &disconnected).ok());
  // Traffic stops at once; the interface itself is deleted in the background (netplane's
  // LinkReaper), within milliseconds.
  EXPECT_TRUE(WaitFor_([&] {
                return Exec("multi", {"ip", "link", "show", "eth1"}).code != 0;
              }).ok());
  absl::StatusOr<v1::Container> c = Get("multi");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->addresses_size(), 1);
  EXPECT_TRUE(meshd().networks().Remove(Ctx().get(), remove_back, &removed).ok());
}

// Static routes of the spec: a router between two networks, a client routing one subnet
// through it and a client routing everything through it; they survive meshd's kill -9, and a
// network connected later does not take the client's own default route.
TEST_F(MeshdTest, StaticRoutesThroughARouterMember) {
  CreateNetwork("front", "10.88.1.0/24");
  CreateNetwork("back", "10.88.2.0/24");
  CreateNetwork("side", "10.88.3.0/24");
  v1::ContainerSpec router = Spec("router", "exec sleep 1000");
  router.mutable_networks(0)->set_ip("10.88.1.254");
  router.add_networks()->set_network("back");
  router.mutable_networks(1)->set_ip("10.88.2.254");
  (*router.mutable_sysctls())["net.ipv4.ip_forward"] = "1";
  MustCreate(router);
  auto route = [](v1::ContainerSpec& spec, const std::string& destination, const std::string& via) {
    v1::Route* r = spec.add_routes();
    r->set_destination(destination);
    r->set_via(via);
  };
  v1::ContainerSpec one = Spec("one", "exec sleep 1000");
  route(one, "10.88.2.0/24", "10.88.1.254");
  one.mutable_networks(0)->set_egress_rate_bps(5'000'000);  // and what it sends, shaped
  MustCreate(one);
  absl::StatusOr<std::string> qdisc = sandbox().Check(
      Sandbox::Ns::kHost,
      {"nsenter", "--net=/run/mesh/netns/one", "tc", "qdisc", "show", "dev", "eth0"});
  ASSERT_TRUE(qdisc.ok()) << qdisc.status();
  EXPECT_THAT(*qdisc, HasSubstr("rate 5Mbit"));
  v1::ContainerSpec all = Spec("all", "exec sleep 1000", "back");
  route(all, "default", "10.88.2.254");
  MustCreate(all);
  MustCreate(Spec("plain", "exec sleep 1000"));
  auto ip = [this](const std::string& name) {
    absl::StatusOr<v1::Container> c = Get(name);
    return c.ok() && c->addresses_size() > 0 ? c->addresses(0).ip() : std::string("?");
  };
  auto pings = [this](const std::string& from, const std::string& to) {
    for (int i = 0; i < 3; ++i) {
      if (Exec(from, {"ping", "-c", "1", "-W", "1", to}).code == 0) return true;
    }
    return false;
  };
  EXPECT_THAT(Exec("one", {"ip", "route"}).out, HasSubstr("10.88.2.0/24 via 10.88.1.254 dev eth0"));
  EXPECT_THAT(Exec("all", {"ip", "route"}).out, HasSubstr("default via 10.88.2.254 dev eth0"));
  EXPECT_TRUE(pings("one", ip("all")));
  EXPECT_TRUE(pings("all", ip("one")));
  // Without a route the other network is not reachable (its gateway route leads to the host,
  // which keeps networks apart).
  EXPECT_FALSE(Exec("plain", {"ping", "-c", "1", "-W", "1", ip("all")}).code == 0);

  meshd().Kill9();
  ASSERT_TRUE(meshd().Restart().ok());
  EXPECT_TRUE(pings("one", ip("all")));

  v1::ConnectRequest connect;
  connect.set_container("all");
  connect.set_network("side");
  v1::ConnectResponse connected;
  grpc::Status status = meshd().networks().Connect(Ctx().get(), connect, &connected);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_THAT(Exec("all", {"ip", "route"}).out, HasSubstr("default via 10.88.2.254 dev eth0"));
  EXPECT_THAT(Exec("all", {"ip", "route"}).out, Not(HasSubstr("default via 10.88.3.1")));
}

// A capture through the API: a pcap of the container's own traffic, made by the host's
// tcpdump in the container's namespace; errors name the interface or the filter.
TEST_F(MeshdTest, CaptureStreamsAPcapOfTheContainersInterface) {
  CreateNetwork("front", "10.88.1.0/24");
  MustCreate(Spec("a", "exec sleep 1000"));
  const v1::Container b = MustCreate(Spec("b", "exec sleep 1000"));
  ASSERT_GT(b.addresses_size(), 0);
  // Capture 2 echo requests on a's eth0 while a pings b until the capture ends.
  v1::CaptureRequest request;
  request.set_container("a");
  request.set_interface("eth0");
  request.set_filter("icmp[icmptype] == icmp-echo");
  request.set_max_packets(2);
  request.mutable_duration()->set_seconds(30);
  auto context = Ctx(absl::Seconds(60));
  auto reader = meshd().containers().Capture(context.get(), request);
  std::string pcap;
  std::vector<std::string> notices;
  for (v1::CaptureChunk chunk; reader->Read(&chunk);) {
    pcap += chunk.data();
    if (chunk.notice().empty()) continue;
    notices.push_back(chunk.notice());
    if (absl::StartsWith(chunk.notice(), "listening on")) {
      // Every packet from now on is caught.
      EXPECT_EQ(Exec("a", {"ping", "-c", "3", "-i", "0.2", b.addresses(0).ip()}).code, 0);
    }
  }
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << StatusText(status);
  ASSERT_THAT(notices, ::testing::Contains(HasSubstr("listening on eth0, link-type EN10MB")));
  EXPECT_THAT(notices, ::testing::Contains("2 packets captured"));
  // A pcap file (little-endian magic), readable by tcpdump itself.
  ASSERT_GE(pcap.size(), 24u);
  EXPECT_EQ(pcap.substr(0, 4), std::string("\xd4\xc3\xb2\xa1", 4));
  ASSERT_TRUE(WriteFileAtomically("/tmp/mesh-capture-test.pcap", pcap).ok());
  absl::StatusOr<std::string> read =
      sandbox().Check(Sandbox::Ns::kHost, {"tcpdump", "-n", "-r", "/tmp/mesh-capture-test.pcap"});
  std::filesystem::remove("/tmp/mesh-capture-test.pcap");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(std::count(read->begin(), read->end(), '\n'), 2) << *read;
  EXPECT_THAT(*read, HasSubstr(absl::StrCat("> ", b.addresses(0).ip(), ": ICMP echo request")));

  // A duration with nothing to catch: a file with its header only, and the stream ends.
  request.set_filter("udp port 9");
  request.set_max_packets(0);
  request.mutable_duration()->set_seconds(1);
  auto quiet = Ctx(absl::Seconds(30));
  reader = meshd().containers().Capture(quiet.get(), request);
  pcap.clear();
  for (v1::CaptureChunk chunk; reader->Read(&chunk);) pcap += chunk.data();
  status = reader->Finish();
  EXPECT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(pcap.size(), 24u);

  // Errors: an interface the container does not have, a filter tcpdump refuses, a bad name.
  auto refused = [this](v1::CaptureRequest r) {
    auto c = Ctx(absl::Seconds(30));
    auto s = meshd().containers().Capture(c.get(), r);
    for (v1::CaptureChunk chunk; s->Read(&chunk);) {
    }
    return s->Finish();
  };
  request.set_interface("eth9");
  status = refused(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << StatusText(status);
  EXPECT_THAT(status.error_message(), HasSubstr("capture on \"eth9\" of container \"a\""));
  request.set_interface("eth0");
  request.set_filter("port port port");
  status = refused(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << StatusText(status);
  EXPECT_THAT(status.error_message(), HasSubstr("syntax error"));
  request.set_interface("-i");
  EXPECT_EQ(refused(request).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  request.set_container("nobody");
  request.set_interface("eth0");
  EXPECT_EQ(refused(request).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A lab of links only: h1 -- r1 -- r2, no networks. h1's default route and r2's route back go
// with the links (their next hops are on them).
v1::GroupSpec LinkLab(const std::string& r2_address = "10.0.12.2/30") {
  v1::GroupSpec spec;
  spec.set_name("lab");
  for (const char* name : {"r1", "r2", "h1"}) {
    v1::ContainerSpec* c = spec.add_containers()->mutable_spec();
    c->set_name(name);
    c->set_image("busybox");
    c->add_args("sh");
    c->add_args("-c");
    c->add_args("exec sleep 1000");
  }
  (*spec.mutable_containers(0)->mutable_spec()->mutable_sysctls())["net.ipv4.ip_forward"] = "1";
  auto route = [&](int member, const std::string& destination, const std::string& via) {
    v1::Route* r = spec.mutable_containers(member)->mutable_spec()->add_routes();
    r->set_destination(destination);
    r->set_via(via);
  };
  route(1, "10.0.1.0/24", "10.0.12.1");
  route(2, "default", "10.0.1.1");
  auto link = [&](const std::string& a, const std::string& a_if, const std::string& a_ip,
                  const std::string& b, const std::string& b_if, const std::string& b_ip) {
    v1::Link* l = spec.add_links();
    v1::LinkEndpoint* end = l->add_endpoints();
    end->set_container(a);
    end->set_interface(a_if);
    end->add_addresses(a_ip);
    end = l->add_endpoints();
    end->set_container(b);
    end->set_interface(b_if);
    end->add_addresses(b_ip);
    return l;
  };
  link("r1", "eth1", "10.0.12.1/30", "r2", "eth1", r2_address)->set_mtu(9000);
  link("h1", "eth0", "10.0.1.2/24", "r1", "eth2", "10.0.1.1/24");
  return spec;
}

TEST_F(GroupTest, LinksSurviveKill9AndAreMadeAgainAndGoWithTheGroup) {
  const std::string empty = Traces();
  v1::Group group;
  EXPECT_THAT(
      Apply(LinkLab(), &group),
      ::testing::ElementsAre("r1:MEMBER_ACTION_CREATED", "r2:MEMBER_ACTION_CREATED",
                             "r1:eth1--r2:eth1:MEMBER_ACTION_CREATED", "h1:MEMBER_ACTION_CREATED",
                             "h1:eth0--r1:eth2:MEMBER_ACTION_CREATED"));
  ASSERT_EQ(group.members_size(), 5);
  EXPECT_EQ(group.members(3).kind(), v1::MemberStatus::KIND_LINK);
  EXPECT_EQ(group.members(3).action(), v1::MEMBER_ACTION_UNCHANGED);
  auto pings = [this](const std::string& from, const std::string& to) {
    for (int i = 0; i < 3; ++i) {
      if (Exec(from, {"ping", "-c", "1", "-W", "1", to}).code == 0) return true;
    }
    return false;
  };
  // h1 reaches r2 through r1, and r2 answers through its route back.
  EXPECT_TRUE(pings("lab-h1", "10.0.12.2"));
  EXPECT_TRUE(pings("lab-r2", "10.0.1.2"));
  EXPECT_THAT(Exec("lab-r2", {"ip", "link", "show", "eth1"}).out, HasSubstr("mtu 9000"));
  EXPECT_THAT(Exec("lab-h1", {"ip", "route"}).out, HasSubstr("default via 10.0.1.1 dev eth0"));
  // The spec's routes through links are the links' own, not the containers'.
  absl::StatusOr<v1::Container> r2 = Get("lab-r2");
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->spec().routes_size(), 0);

  // kill -9 and a restart: the links are as they were, nothing is made again.
  const std::map<std::string, int> pids = Pids("lab");
  meshd().Kill9();
  ASSERT_TRUE(meshd().Restart().ok());
  EXPECT_EQ(Pids("lab"), pids);
  EXPECT_TRUE(pings("lab-h1", "10.0.12.2"));
  EXPECT_THAT(Apply(LinkLab()), ::testing::IsEmpty());

  // A link deleted behind meshd's back is made again at start-up.
  ASSERT_TRUE(sandbox()
                  .Check(Sandbox::Ns::kHost,
                         {"nsenter", "--net=/run/mesh/netns/lab-r2", "ip", "link", "del", "eth1"})
                  .ok());
  EXPECT_FALSE(pings("lab-h1", "10.0.12.2"));
  meshd().Kill9();
  ASSERT_TRUE(meshd().Restart().ok());
  EXPECT_TRUE(pings("lab-h1", "10.0.12.2"));
  EXPECT_EQ(Pids("lab"), pids);

  // A changed link is made again; its members stay.
  EXPECT_THAT(Apply(LinkLab("10.0.12.2/29")),
              ::testing::ElementsAre("r1:eth1--r2:eth1:MEMBER_ACTION_RECREATED"));
  EXPECT_EQ(Pids("lab"), pids);
  EXPECT_THAT(Exec("lab-r2", {"ip", "addr", "show", "eth1"}).out, HasSubstr("10.0.12.2/29"));
  EXPECT_TRUE(pings("lab-h1", "10.0.12.2"));

  // Down: links first, then members; nothing is left.
  v1::DeleteGroupRequest request;
  request.set_name("lab");
  v1::DeleteGroupResponse response;
  ASSERT_TRUE(meshd().groups().Delete(Ctx().get(), request, &response).ok());
  ASSERT_EQ(response.removed_size(), 5);
  EXPECT_EQ(response.removed(0).kind(), v1::MemberStatus::KIND_LINK);
  EXPECT_EQ(response.removed(1).kind(), v1::MemberStatus::KIND_LINK);
  EXPECT_EQ(Traces(), empty);
}

// A published port on an internal network could never answer: refused, naming the network,
// and nothing is made. Behind a network that is not internal, the same ports are fine.
TEST_F(MeshdTest, PortsOnAnInternalFirstNetworkAreRefused) {
  v1::CreateNetworkRequest internal;
  internal.mutable_spec()->set_name("lab");
  internal.mutable_spec()->set_subnet("10.88.5.0/24");
  internal.mutable_spec()->set_internal(true);
  v1::Network network;
  ASSERT_TRUE(meshd().networks().Create(Ctx().get(), internal, &network).ok());
  CreateNetwork("front", "10.88.1.0/24");
  v1::ContainerSpec spec = Spec("web", "exec sleep 1000", "lab");
  v1::PortMapping* port = spec.add_ports();
  port->set_host_port(8080);
  port->set_container_port(80);
  v1::Container created;
  grpc::Status status = Create(spec, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << StatusText(status);
  EXPECT_THAT(status.error_message(),
              HasSubstr("spec.ports: they would go to network \"lab\", which is internal"));
  EXPECT_FALSE(Get("web").ok());
  spec.add_networks()->set_network("front");
  std::swap(*spec.mutable_networks(0), *spec.mutable_networks(1));
  status = Create(spec, &created);
  EXPECT_TRUE(status.ok()) << StatusText(status);
}

TEST_F(MeshdTest, ImageStreamedInIsUsedAndRemovedOnlyWhenFree) {
  // A `docker save` archive made by hand: one busybox layer, tagged mybox:1.
  absl::StatusOr<std::string> path =
      MakeBusyboxArchive("/run/scratch/image", "mybox:1", "from-mybox");
  ASSERT_TRUE(path.ok()) << path.status();
  absl::StatusOr<std::string> archive = ReadFile(*path);
  ASSERT_TRUE(archive.ok());
  v1::ImportImageResponse imported;
  auto context = Ctx();
  auto writer = meshd().images().Import(context.get(), &imported);
  v1::ImportImageRequest first;
  first.mutable_source()->set_streamed(true);
  ASSERT_TRUE(writer->Write(first));
  for (size_t offset = 0; offset < archive->size(); offset += 1 << 20) {
    v1::ImportImageRequest chunk;
    chunk.set_chunk(archive->substr(offset, 1 << 20));
    ASSERT_TRUE(writer->Write(chunk));
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << StatusText(status);
  ASSERT_EQ(imported.images_size(), 1);
  EXPECT_THAT(imported.images(0).references(), ::testing::Contains("mybox:1"));

  v1::ContainerSpec spec;
  spec.set_name("user");
  spec.set_image("mybox:1");
  MustCreate(spec);
  ASSERT_TRUE(WaitFor("user", [](const v1::Container& x) {
                return x.state() == v1::CONTAINER_STATE_STOPPED;
              }).ok());
  v1::LogsRequest logs;
  logs.set_name("user");
  auto logs_context = Ctx();
  auto reader = meshd().containers().Logs(logs_context.get(), logs);
  v1::LogEntry entry;
  ASSERT_TRUE(reader->Read(&entry));
  EXPECT_EQ(entry.data(), "from-mybox");

  v1::RemoveImageRequest remove;
  remove.set_image("mybox:1");
  v1::RemoveImageResponse removed;
  grpc::Status busy = meshd().images().Remove(Ctx().get(), remove, &removed);
  EXPECT_EQ(busy.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << StatusText(busy);
  v1::RemoveContainerRequest remove_user;
  remove_user.set_name("user");
  v1::RemoveContainerResponse gone;
  ASSERT_TRUE(meshd().containers().Remove(Ctx().get(), remove_user, &gone).ok());
  status = meshd().images().Remove(Ctx().get(), remove, &removed);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(removed.deleted_layers_size(), 1);
}
}  // namespace
}  // namespace mesh::testing
