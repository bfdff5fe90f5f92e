#include "tests/support/sandbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/rollback.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "base/wait.h"
#include "tests/support/host_snapshot.h"

namespace mesh::testing {
namespace {

constexpr char kWanNetnsName[] = "wan";
constexpr char kWanNetnsPath[] = "/run/netns/wan";

int EnvFd(const char* name) {
  const char* value = std::getenv(name);
  int fd = -1;
  if (value == nullptr || !absl::SimpleAtoi(value, &fd)) return -1;
  return fd;
}

// Tries one TCP connection to address:port with a short timeout; true if accepted.
bool TryConnect(const std::string& address, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) return false;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd pfd{fd.get(), POLLOUT, 0};
  if (::poll(&pfd, 1, 200) != 1) return false;
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

}  // namespace

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && (absl::string_view(ci) == "true" || absl::string_view(ci) == "1");
}

bool InSandbox() {
  const char* v = std::getenv("MESH_SANDBOX");
  return v != nullptr && absl::string_view(v) == "1";
}

absl::StatusOr<std::string> TakeRealHostSnapshot() {
  int netns = EnvFd("MESH_REAL_NETNS_FD"), mntns = EnvFd("MESH_REAL_MNTNS_FD");
  if (netns < 0 || mntns < 0) {
    return absl::FailedPreconditionError(
        "real host snapshot: no handles on the real host's namespaces (run through "
        "sandbox_main.cc as root)");
  }
  return TakeHostSnapshot(netns, mntns);
}

absl::StatusOr<std::unique_ptr<Sandbox>> Sandbox::Create() {
  if (!InSandbox()) {
    return absl::FailedPreconditionError(
        "not inside the test sandbox: integration tests must link tests/support/sandbox_main.cc "
        "and run as root, so they never touch the real host's network");
  }
  MESH_ASSIGN_OR_RETURN(NamespaceHandle host, NamespaceHandle::Current(CLONE_NEWNET));
  auto run_host = [&](std::vector<std::string> argv) -> absl::Status {
    SpawnOptions o;
    o.argv = std::move(argv);
    MESH_ASSIGN_OR_RETURN(CommandResult r, RunCommand(o));
    if (!r.status.ok()) {
      return absl::InternalError(absl::StrCat("sandbox: \"", absl::StrJoin(o.argv, " "), "\" ",
                                              r.status.ToString(), ": ", r.err));
    }
    return absl::OkStatus();
  };

  // What a crashed earlier Sandbox in this process may have left (a new sandbox process starts
  // with none: its /run/netns is a fresh tmpfs and its netns is new).
  if (access(kWanNetnsPath, F_OK) == 0) {
    MESH_RETURN_IF_ERROR(run_host({"ip", "netns", "delete", kWanNetnsName}));
  }
  {
    SpawnOptions o;
    o.argv = {"ip", "link", "delete", kHostLink};
    RunCommand(o).IgnoreError();  // Absent is the normal case.
  }

  Rollback undo;
  MESH_RETURN_IF_ERROR(run_host({"ip", "link", "set", "lo", "up"}));
  MESH_RETURN_IF_ERROR(run_host({"ip", "netns", "add", kWanNetnsName}));
  undo.Push([&] { run_host({"ip", "netns", "delete", kWanNetnsName}).IgnoreError(); });
  MESH_ASSIGN_OR_RETURN(NamespaceHandle wan, NamespaceHandle::Open(kWanNetnsPath, CLONE_NEWNET));
  MESH_RETURN_IF_ERROR(run_host({"ip", "link", "add", kHostLink, "type", "veth", "peer", "name",
                                 kWanLink, "netns", kWanNetnsName}));
  undo.Push([&] { run_host({"ip", "link", "delete", kHostLink}).IgnoreError(); });
  const std::string host_cidr = absl::StrCat(kHostAddress, "/", kPrefixLength);
  const std::string wan_cidr = absl::StrCat(kWanAddress, "/", kPrefixLength);
  MESH_RETURN_IF_ERROR(run_host({"ip", "addr", "add", host_cidr, "dev", kHostLink}));
  MESH_RETURN_IF_ERROR(run_host({"ip", "link", "set", kHostLink, "up"}));
  MESH_RETURN_IF_ERROR(
      run_host({"ip", "-n", kWanNetnsName, "addr", "add", wan_cidr, "dev", kWanLink}));
  MESH_RETURN_IF_ERROR(run_host({"ip", "-n", kWanNetnsName, "link", "set", kWanLink, "up"}));
  MESH_RETURN_IF_ERROR(run_host({"ip", "-n", kWanNetnsName, "link", "set", "lo", "up"}));
  MESH_RETURN_IF_ERROR(run_host({"ip", "route", "add", "default", "via", kWanAddress}));
  undo.Commit();
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(host), std::move(wan)));
}

Sandbox::~Sandbox() {
  // Teardown order: the veth (both ends go together), then the wan namespace. Collect errors.
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"ip", "link", "delete", kHostLink},
        std::vector<std::string>{"ip", "netns", "delete", kWanNetnsName}}) {
    absl::StatusOr<CommandResult> r = Run(Ns::kHost, argv);
    if (!r.ok() || !r->status.ok()) {
      std::cerr << "sandbox teardown: \"" << absl::StrJoin(argv, " ")
                << "\" failed: " << (r.ok() ? r->err : r.status().ToString()) << "\n";
    }
  }
}

int Sandbox::FdOf(Where where) const {
  if (const Ns* ns = std::get_if<Ns>(&where)) return *ns == Ns::kHost ? host_.fd() : wan_.fd();
  return std::get<const NamespaceHandle*>(where)->fd();
}

absl::StatusOr<CommandResult> Sandbox::Run(Where where, std::vector<std::string> argv,
                                           absl::Duration timeout) const {
  SpawnOptions o;
  o.argv = std::move(argv);
  o.netns_fd = FdOf(where);
  return RunCommand(o, timeout);
}

absl::StatusOr<std::string> Sandbox::Check(Where where, std::vector<std::string> argv,
                                           absl::Duration timeout) const {
  std::string shown = absl::StrJoin(argv, " ");
  MESH_ASSIGN_OR_RETURN(CommandResult r, Run(where, std::move(argv), timeout));
  if (!r.status.ok()) {
    return absl::InternalError(
        absl::StrCat("\"", shown, "\" ", r.status.ToString(), "; stderr: ", r.err));
  }
  return r.out;
}

absl::StatusOr<ChildProcess> Sandbox::Start(Where where, std::vector<std::string> argv) const {
  SpawnOptions o;
  o.argv = std::move(argv);
  o.netns_fd = FdOf(where);
  o.stderr_fd = STDERR_FILENO;  // A server that fails to start should say why in the test log.
  return ChildProcess::Spawn(o);
}

absl::StatusOr<ChildProcess> Sandbox::StartHttpServer(Where where, const std::string& address,
                                                      int port, const std::string& dir) const {
  MESH_ASSIGN_OR_RETURN(
      ChildProcess server,
      Start(where, {"busybox", "httpd", "-f", "-p", absl::StrCat(address, ":", port), "-h", dir}));
  MESH_RETURN_IF_ERROR(WaitForPort(where, address, port));
  return server;
}

absl::StatusOr<ChildProcess> Sandbox::StartEchoServer(Where where, const std::string& proto,
                                                      const std::string& address, int port) const {
  if (proto == "tcp") {
    MESH_ASSIGN_OR_RETURN(
        ChildProcess server,
        Start(where,
              {"socat", absl::StrCat("TCP-LISTEN:", port, ",bind=", address, ",reuseaddr,fork"),
               "PIPE"}));
    MESH_RETURN_IF_ERROR(WaitForPort(where, address, port));
    return server;
  }
  if (proto == "udp") {
    return Start(
        where, {"socat", absl::StrCat("UDP-RECVFROM:", port, ",bind=", address, ",fork"), "PIPE"});
  }
  return absl::InvalidArgumentError(
      absl::StrCat("echo server: protocol \"", proto, "\" is not tcp or udp"));
}

absl::Status Sandbox::WaitForPort(Where where, const std::string& address, int port,
                                  absl::Duration timeout) const {
  NamespaceHandle const* ns = nullptr;
  if (const Ns* which = std::get_if<Ns>(&where)) {
    ns = *which == Ns::kHost ? &host_ : &wan_;
  } else {
    ns = std::get<const NamespaceHandle*>(where);
  }
  return WaitFor(
      [&] {
        bool up = false;
        RunInNetns(*ns, [&] {
          up = TryConnect(address, port);
          return absl::OkStatus();
        }).IgnoreError();  // A failed setns shows up as the port never answering.
        return up;
      },
      timeout, absl::StrCat("tcp ", address, ":", port, " to accept connections"));
}

absl::StatusOr<std::string> Sandbox::HttpGet(Where where, const std::string& address, int port,
                                             const std::string& path) const {
  // busybox 1.35's `wget -T` segfaults (NOTES.md): bound it with timeout(1) instead.
  return Check(where, {"timeout", "10", "busybox", "wget", "-q", "-O", "-",
                       absl::StrCat("http://", address, ":", port, path)});
}

void SandboxTest::SetUp() {
  MESH_REQUIRE_ROOT();
  absl::StatusOr<std::unique_ptr<Sandbox>> sandbox = Sandbox::Create();
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  sandbox_ = std::move(*sandbox);
}

}  // namespace mesh::testing
