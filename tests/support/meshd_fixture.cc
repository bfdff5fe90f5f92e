#include "tests/support/meshd_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"
#include "grpcpp/generic/generic_stub.h"

namespace mesh::testing {

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  return context;
}

namespace {

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes;
}

// Waits for the next event of `cq`; true if it came and succeeded.
bool Next(grpc::CompletionQueue& cq) {
  void* tag = nullptr;
  bool ok = false;
  return cq.Next(&tag, &ok) && ok;
}

}  // namespace

bool HealthCheckServes(const std::string& target) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  auto context = Ctx(absl::Seconds(5));
  grpc::CompletionQueue cq;
  // HealthCheckRequest{service: ""}, with the empty field written out (the default service
  // refuses a request of zero bytes).
  grpc::Slice field("\x0a\x00", 2);
  grpc::ByteBuffer request(&field, 1);
  auto call = stub.PrepareUnaryCall(context.get(), "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  if (!Next(cq) || !status.ok()) return false;
  return Bytes(response) == std::string("\x08\x01", 2);  // status: SERVING
}

absl::StatusOr<std::string> ReflectionListServices(const std::string& target) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  auto context = Ctx(absl::Seconds(5));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      context.get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  if (!Next(cq)) return absl::UnavailableError("reflection: the call did not start");
  // ServerReflectionRequest{list_services: ""} (field 7).
  grpc::Slice field("\x3a\x00", 2);
  grpc::ByteBuffer request(&field, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  if (!Next(cq)) return absl::UnavailableError("reflection: the request was not sent");
  call->WritesDone(reinterpret_cast<void*>(3));
  Next(cq);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  if (!Next(cq)) return absl::UnavailableError("reflection: no answer");
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  Next(cq);
  return Bytes(response);
}

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(static_cast<int>(status.error_code()), ": ", status.error_message());
}

absl::StatusOr<std::unique_ptr<Meshd>> Meshd::Start(MeshdOptions options, absl::Duration timeout) {
  std::unique_ptr<Meshd> meshd(new Meshd(std::move(options)));
  if (absl::Status s = meshd->Launch(timeout); !s.ok()) return s;
  return meshd;
}

Meshd::~Meshd() {
  // Our connection goes first: gRPC's shutdown waits seconds for idle clients to hang up.
  containers_.reset();
  networks_.reset();
  groups_.reset();
  images_.reset();
  system_.reset();
  channel_.reset();
  if (process_.running()) process_.Stop(absl::Seconds(10)).IgnoreError();
}

void Meshd::Kill9() {
  process_.Signal(SIGKILL).IgnoreError();
  process_.Wait().IgnoreError();
}

absl::Status Meshd::Restart(std::vector<std::string> extra_env, absl::Duration timeout) {
  if (process_.running()) Kill9();
  options_.extra_env = std::move(extra_env);
  return Launch(timeout);
}

absl::StatusOr<ExitStatus> Meshd::WaitExit(absl::Duration timeout) {
  return process_.Wait(timeout);
}

std::string Meshd::Log() const { return ReadFile(options_.log_file).value_or(""); }

absl::Status Meshd::Launch(absl::Duration timeout) {
  // A socket left by a killed meshd would take our first connection (refused, then gRPC backs
  // off for a second): meshd replaces it anyway, so it goes now.
  unlink(options_.socket.c_str());
  UniqueFd log(open(options_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log.valid()) return ErrnoToStatus(errno, absl::StrCat("open ", options_.log_file));
  std::vector<std::string> argv = {options_.meshd_path,
                                   "--state-dir",
                                   options_.state_dir,
                                   "--run-dir",
                                   options_.run_dir,
                                   "--socket",
                                   options_.socket,
                                   "--shim",
                                   options_.shim_path,
                                   "--default-pool",
                                   options_.default_pool,
                                   "--log-level",
                                   "debug",
                                   "--dns-upstreams",
                                   options_.dns_upstreams};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  env.insert(env.end(), options_.extra_env.begin(), options_.extra_env.end());
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(
      {.argv = argv, .env = env, .stdout_fd = log.get(), .stderr_fd = log.get()});
  if (!child.ok()) return child.status();
  process_ = *std::move(child);

  // Ready when it answers: meshd takes its socket first and serves it after its recovery. The
  // channel is made once the socket exists (a channel that failed to connect backs off for
  // seconds).
  const absl::Time deadline = absl::Now() + timeout;
  auto exited = [this] { return !process_.running() || process_.Wait(absl::ZeroDuration()).ok(); };
  struct stat st;
  while (stat(options_.socket.c_str(), &st) != 0 && absl::Now() < deadline && !exited()) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  channel_ = grpc::CreateChannel(absl::StrCat("unix:", options_.socket),
                                 grpc::InsecureChannelCredentials());
  containers_ = v1::ContainerService::NewStub(channel_);
  networks_ = v1::NetworkService::NewStub(channel_);
  groups_ = v1::GroupService::NewStub(channel_);
  images_ = v1::ImageService::NewStub(channel_);
  system_ = v1::SystemService::NewStub(channel_);
  while (absl::Now() < deadline) {
    if (exited()) {
      return absl::InternalError(absl::StrCat("meshd exited during start-up; its log:\n", Log()));
    }
    auto context = Ctx(absl::Seconds(1));
    context->set_wait_for_ready(true);
    v1::VersionResponse version;
    if (system_->Version(context.get(), v1::VersionRequest(), &version).ok()) {
      return absl::OkStatus();
    }
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "meshd did not answer within ", absl::FormatDuration(timeout), "; its log:\n", Log()));
}

}  // namespace mesh::testing
