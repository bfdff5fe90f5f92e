// ContainerService: lifecycle calls, logs (server stream) and exec (bidirectional stream).
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "agent/api/convert.h"
#include "agent/capture/capture.h"
#include "agent/logs/log_reader.h"
#include "agent/server/parse_errors.h"
#include "agent/service/services.h"
#include "base/atomic_file.h"
#include "base/quote.h"
#include "base/unique_fd.h"
#include "runtime/container/exec_spec.h"

namespace mesh::agent {
namespace {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
  static absl::StatusOr<Pipe> Make() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
  }
};

class ContainerServiceImpl final : public v1::ContainerService::Service {
 public:
  explicit ContainerServiceImpl(const Services& s) : s_(s) {}

  grpc::Status Create(grpc::ServerContext*, const v1::CreateContainerRequest* request,
                      v1::Container* response) override {
    return Reply(s_.containers->Create(*request), response);
  }
  grpc::Status Start(grpc::ServerContext*, const v1::StartContainerRequest* request,
                     v1::Container* response) override {
    return Reply(s_.containers->Start(request->name()), response);
  }
  grpc::Status Stop(grpc::ServerContext*, const v1::StopContainerRequest* request,
                    v1::Container* response) override {
    std::optional<absl::Duration> timeout;
    if (request->has_timeout()) {
      if (absl::Status s = ValidateDuration(request->timeout(), "timeout"); !s.ok()) {
        return ToGrpc(s);
      }
      timeout = FromProtoDuration(request->timeout());
      if (*timeout < absl::ZeroDuration()) {
        return ToGrpc(absl::InvalidArgumentError(absl::StrCat(
            "stop container ", Quote(request->name()), ": timeout: negative; give 0 or more")));
      }
    }
    return Reply(s_.containers->Stop(request->name(), timeout), response);
  }
  grpc::Status Kill(grpc::ServerContext*, const v1::KillContainerRequest* request,
                    v1::Container* response) override {
    return Reply(s_.containers->Kill(request->name(), request->signal()), response);
  }
  grpc::Status Remove(grpc::ServerContext*, const v1::RemoveContainerRequest* request,
                      v1::RemoveContainerResponse*) override {
    return ToGrpc(s_.containers->Remove(request->name(), request->force()));
  }
  grpc::Status Get(grpc::ServerContext*, const v1::GetContainerRequest* request,
                   v1::Container* response) override {
    return Reply(s_.containers->Get(request->name()), response);
  }
  grpc::Status List(grpc::ServerContext*, const v1::ListContainersRequest* request,
                    v1::ListContainersResponse* response) override {
    for (v1::Container& c : s_.containers->List(*request)) {
      *response->add_containers() = std::move(c);
    }
    return grpc::Status::OK;
  }
  grpc::Status Wait(grpc::ServerContext* context, const v1::WaitContainerRequest* request,
                    v1::WaitContainerResponse* response) override {
    absl::StatusOr<v1::Exit> exit = s_.containers->Wait(
        request->name(), request->until_removed(), [context] { return context->IsCancelled(); });
    if (!exit.ok()) return ToGrpc(exit.status());
    *response->mutable_exit() = *std::move(exit);
    return grpc::Status::OK;
  }
  grpc::Status Stats(grpc::ServerContext*, const v1::StatsRequest* request,
                     v1::ContainerStats* response) override {
    return Reply(s_.containers->Stats(request->name()), response);
  }

  grpc::Status Logs(grpc::ServerContext* context, const v1::LogsRequest* request,
                    grpc::ServerWriter<v1::LogEntry>* writer) override;
  grpc::Status Capture(grpc::ServerContext* context, const v1::CaptureRequest* request,
                       grpc::ServerWriter<v1::CaptureChunk>* writer) override;
  grpc::Status Exec(grpc::ServerContext* context,
                    grpc::ServerReaderWriter<v1::ExecResponse, v1::ExecRequest>* stream) override;

 private:
  template <typename T>
  static grpc::Status Reply(absl::StatusOr<T> result, T* response) {
    if (!result.ok()) return ToGrpc(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }

  const Services s_;
};

grpc::Status ContainerServiceImpl::Capture(grpc::ServerContext* context,
                                           const v1::CaptureRequest* request,
                                           grpc::ServerWriter<v1::CaptureChunk>* writer) {
  CaptureOptions options;
  options.container = request->container();
  options.interface = request->interface();
  options.filter = request->filter();
  options.max_packets = request->max_packets();
  options.snap_length = request->snap_length();
  if (request->has_duration()) {
    if (absl::Status s = ValidateDuration(request->duration(), "duration"); !s.ok()) {
      return ToGrpc(s);
    }
    options.duration = FromProtoDuration(request->duration());
    if (options.duration < absl::ZeroDuration()) {
      return ToGrpc(absl::InvalidArgumentError("duration: is negative; give 0 for no limit"));
    }
  }
  if (absl::Status s = ValidateCapture(options); !s.ok()) return ToGrpc(s);
  absl::StatusOr<std::string> netns = s_.containers->NetworkNamespace(request->container());
  if (!netns.ok()) return ToGrpc(netns.status());
  options.netns_path = *netns;
  auto send = [writer](v1::CaptureChunk chunk) { return writer->Write(chunk); };
  absl::Status done = RunCapture(
      options,
      [&send](absl::string_view data) {
        v1::CaptureChunk chunk;
        chunk.set_data(std::string(data));
        return send(std::move(chunk));
      },
      [&send](const std::string& notice) {
        v1::CaptureChunk chunk;
        chunk.set_notice(notice);
        return send(std::move(chunk));
      },
      [context] { return context->IsCancelled(); });
  return ToGrpc(done);
}

grpc::Status ContainerServiceImpl::Logs(grpc::ServerContext* context,
                                        const v1::LogsRequest* request,
                                        grpc::ServerWriter<v1::LogEntry>* writer) {
  absl::StatusOr<std::string> path = s_.containers->LogPath(request->name());
  if (!path.ok()) return ToGrpc(path.status());
  absl::StatusOr<LogQuery> query = LogQueryFrom(*request);
  if (!query.ok()) return ToGrpc(query.status());
  absl::StatusOr<LogSnapshot> snapshot = ReadLogSnapshot(*path, *query);
  if (!snapshot.ok()) return ToGrpc(snapshot.status());
  for (const v1::LogEntry& entry : snapshot->entries) {
    if (!writer->Write(entry)) return grpc::Status::CANCELLED;
  }
  if (!request->follow()) return grpc::Status::OK;
  // From exactly where the snapshot ended: nothing lost or repeated in between.
  absl::StatusOr<LogFollower> follower = LogFollower::OpenAt(*path, *query, snapshot->end);
  if (!follower.ok()) return ToGrpc(follower.status());
  // Follow until the container is no longer running (then a last read) or the client goes.
  while (!context->IsCancelled()) {
    absl::StatusOr<v1::Container> c = s_.containers->Get(request->name());
    const bool running = c.ok() && (c->state() == v1::CONTAINER_STATE_RUNNING ||
                                    c->state() == v1::CONTAINER_STATE_CREATED ||
                                    c->state() == v1::CONTAINER_STATE_RESTARTING);
    follower->WaitForChange(absl::Milliseconds(200));
    absl::StatusOr<std::vector<v1::LogEntry>> more = follower->Poll();
    if (!more.ok()) return ToGrpc(more.status());
    for (const v1::LogEntry& entry : *more) {
      if (!writer->Write(entry)) return grpc::Status::CANCELLED;
    }
    if (!running) return grpc::Status::OK;
  }
  return grpc::Status::CANCELLED;
}

grpc::Status ContainerServiceImpl::Exec(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ExecResponse, v1::ExecRequest>* stream) {
  v1::ExecRequest first;
  if (!stream->Read(&first) || !first.has_start()) {
    return ToGrpc(absl::InvalidArgumentError(
        absl::StrCat("start: the first message of an exec must carry `start` (container and "
                     "command); ",
                     kFirstMessageMissingHint)));
  }
  const v1::ExecStart& start = first.start();
  if (absl::Status s = ValidateExecStart(start); !s.ok()) return ToGrpc(s);
  // A container that is not there or not running is refused before any thread starts, so the
  // refusal comes back at once (a client half-closes only once it has the exit).
  absl::StatusOr<v1::Container> target = s_.containers->Get(start.container());
  if (!target.ok()) return ToGrpc(target.status());
  if (target->state() != v1::CONTAINER_STATE_RUNNING) {
    return ToGrpc(absl::FailedPreconditionError(absl::StrCat(
        "exec: container ", Quote(start.container()), " is not running; start it first")));
  }
  absl::StatusOr<Pipe> in = Pipe::Make(), out = Pipe::Make(), err = Pipe::Make(),
                       resize = Pipe::Make();
  if (!in.ok() || !out.ok() || !err.ok() || !resize.ok()) {
    return ToGrpc(absl::ResourceExhaustedError("exec: out of file descriptors for its pipes"));
  }
  runtime::Runtime::ExecIo io;
  io.stdin_fd = start.stdin() ? in->read.get() : -1;
  io.stdout_fd = out->write.get();
  io.stderr_fd = err->write.get();
  io.resize_fd = start.tty() ? resize->read.get() : -1;
  UniqueFd cancel(eventfd(0, EFD_CLOEXEC));
  if (!cancel.valid()) {
    return ToGrpc(absl::ResourceExhaustedError("exec: out of file descriptors for its pipes"));
  }
  io.cancel_fd = cancel.get();

  // The process runs on its own thread; this one relays its output; a third takes the
  // client's stdin, resizes and close_stdin.
  absl::StatusOr<ExitStatus> result = absl::UnknownError("exec did not run");
  std::atomic<bool> exec_done = false;
  std::thread runner([&] {
    result = s_.containers->Exec(start, io);
    // The process has ended: our copies of its ends go, so the relay sees end of file.
    out->write.Reset();
    err->write.Reset();
    exec_done = true;
  });
  absl::Mutex stdin_mu;
  std::thread reader([&] {
    v1::ExecRequest request;
    while (stream->Read(&request)) {
      absl::MutexLock lock(&stdin_mu);
      if (request.has_stdin() && in->write.valid()) {
        if (!WriteAll(in->write.get(), request.stdin(), "exec stdin").ok()) in->write.Reset();
      } else if (request.has_close_stdin()) {
        in->write.Reset();
      } else if (request.has_resize() && start.tty()) {
        runtime::TerminalSize size{
            static_cast<uint16_t>(std::min(request.resize().rows(), 65535u)),
            static_cast<uint16_t>(std::min(request.resize().cols(), 65535u))};
        if (write(resize->write.get(), &size, sizeof(size)) < 0) {
          // The process has ended; nothing to resize.
        }
      }
    }
    // The client has half-closed (or gone): no more stdin.
    absl::MutexLock lock(&stdin_mu);
    in->write.Reset();
  });

  std::array<pollfd, 2> fds = {pollfd{out->read.get(), POLLIN, 0},
                               pollfd{err->read.get(), POLLIN, 0}};
  int open_streams = 2;
  bool client_gone = false;
  bool cancel_sent = false;
  char buffer[32 * 1024];
  while (open_streams > 0) {
    const int ready = poll(fds.data(), fds.size(), 200);
    if (ready < 0 && errno != EINTR) break;
    // Ended, and a quiet pipe: what is still open belongs to a process it left behind.
    if (ready == 0 && exec_done) break;
    if (context->IsCancelled()) client_gone = true;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        fds[i].fd = -1;
        --open_streams;
        continue;
      }
      v1::ExecResponse response;
      if (i == 0) {
        response.set_stdout(buffer, static_cast<size_t>(n));
      } else {
        response.set_stderr(buffer, static_cast<size_t>(n));
      }
      if (!client_gone && !stream->Write(response)) client_gone = true;
    }
    if (client_gone && !cancel_sent) {
      // Nobody is listening: the process is killed (its end closes the pipes).
      const uint64_t one = 1;
      cancel_sent = write(cancel.get(), &one, sizeof(one)) == sizeof(one);
    }
  }
  runner.join();
  grpc::Status status = grpc::Status::OK;
  if (!result.ok()) {
    status = ToGrpc(result.status());
  } else if (!client_gone) {
    v1::ExecResponse last;
    v1::Exit* exit = last.mutable_exit();
    exit->set_code(result->signal != 0 ? 128 + result->signal : result->code);
    if (result->signal != 0) exit->set_signal(SignalName(result->signal));
    stream->Write(last);
  }
  // The client half-closes once it has the exit; one that does not is cut off after 5 s.
  absl::Notification reader_done;
  std::thread watchdog([&] {
    if (!reader_done.WaitForNotificationWithTimeout(absl::Seconds(5))) context->TryCancel();
  });
  reader.join();
  reader_done.Notify();
  watchdog.join();
  return status;
}

}  // namespace

std::unique_ptr<v1::ContainerService::Service> MakeContainerService(const Services& s) {
  return std::make_unique<ContainerServiceImpl>(s);
}

}  // namespace mesh::agent
