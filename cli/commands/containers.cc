// meshctl ps, inspect, logs, exec, start, stop, restart, rm, kill, wait (run: run.cc).
#include "cli/commands/containers.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/unique_fd.h"
#include "cli/cli.h"
#include "cli/signals.h"
#include "cli/spec/scalars.h"

namespace mesh::cli {
namespace {

std::string Lower(absl::string_view prefix, const std::string& enum_name) {
  absl::string_view view = enum_name;
  absl::ConsumePrefix(&view, prefix);
  return absl::AsciiStrToLower(view);
}

// docker ps's STATUS: "Up 5 minutes (healthy)", "Exited (3) 2 minutes ago".
std::string StatusText(const v1::Container& c, absl::Time now) {
  std::string text;
  switch (c.state()) {
    case v1::CONTAINER_STATE_RUNNING: {
      const absl::Time started = absl::FromUnixSeconds(c.started_at().seconds());
      text = absl::StrCat("Up ", HumanDuration(now - started));
      break;
    }
    case v1::CONTAINER_STATE_STOPPED:
    case v1::CONTAINER_STATE_RESTARTING: {
      const v1::Exit& e = c.last_exit();
      if (!c.has_last_exit()) {
        text = "Stopped";
        break;
      }
      text = absl::StrCat(c.state() == v1::CONTAINER_STATE_RESTARTING ? "Restarting" : "Exited",
                          " (", e.code(), ")", e.oom_killed() ? " OOM" : "",
                          e.error().empty() ? "" : absl::StrCat(" ", e.error()), " ",
                          Ago(e.finished_at(), now));
      break;
    }
    case v1::CONTAINER_STATE_CREATED:
      text = "Created";
      break;
    default:
      text = StateName(c.state());
  }
  if (c.health() != v1::HEALTH_UNSPECIFIED && c.state() == v1::CONTAINER_STATE_RUNNING) {
    absl::StrAppend(&text, " (", Lower("HEALTH_", v1::Health_Name(c.health())), ")");
  }
  return text;
}

std::string PortsText(const v1::ContainerSpec& spec) {
  std::vector<std::string> ports;
  for (const v1::PortMapping& p : spec.ports()) ports.push_back(PortText(p));
  return absl::StrJoin(ports, ", ");
}

std::string AddressesText(const v1::Container& c) {
  std::vector<std::string> addresses;
  for (const v1::ContainerAddress& a : c.addresses()) {
    addresses.push_back(absl::StrCat(a.network(), "=", a.ip()));
  }
  return absl::StrJoin(addresses, ", ");
}

// Restores the terminal's mode when it goes out of scope.
class RawTerminal {
 public:
  RawTerminal() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    cfmakeraw(&raw);
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

std::atomic<bool> window_changed{false};

v1::TerminalSize WindowSize() {
  winsize ws{};
  v1::TerminalSize size;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
    size.set_rows(ws.ws_row);
    size.set_cols(ws.ws_col);
  }
  return size;
}

void WriteOut(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

int RunExec(Cli& cli, const ExecOptions& options) {
  absl::StatusOr<Client*> c = cli.client();
  if (!c.ok()) {
    Cli::Error(c.status().message());
    return kExitExecFailed;
  }
  const bool tty = options.tty && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  if (options.tty && !tty) {
    Cli::Error("exec -t: stdin and stdout must be a terminal (leave out -t)");
    return kExitUsage;
  }
  auto context = (*c)->Context(absl::InfiniteDuration());
  auto stream = (*c)->containers().Exec(context.get());
  v1::ExecRequest first;
  v1::ExecStart& start = *first.mutable_start();
  start.set_container(options.container);
  for (const std::string& a : options.args) start.add_args(a);
  for (const std::string& e : options.env) start.add_env(e);
  start.set_working_dir(options.working_dir);
  start.set_user(options.user);
  start.set_tty(tty);
  start.set_stdin(options.interactive);
  if (tty) {
    v1::TerminalSize size = WindowSize();
    start.set_rows(size.rows());
    start.set_cols(size.cols());
  }
  if (!stream->Write(first)) {
    cli.Failed(stream->Finish());
    return kExitExecFailed;
  }
  // Nothing more to send without stdin or a terminal: half-close now, so meshd never waits
  // for us.
  const bool sends = options.interactive || tty;
  if (!sends) stream->WritesDone();

  std::unique_ptr<RawTerminal> raw;
  if (tty) raw = std::make_unique<RawTerminal>();
  // stdin (and window size changes) go to meshd from a second thread until the exit comes.
  UniqueFd stop(eventfd(0, EFD_CLOEXEC));
  std::thread pump;
  if (options.interactive || tty) {
    if (tty) {
      struct sigaction action {};
      action.sa_handler = [](int) { window_changed = true; };
      sigaction(SIGWINCH, &action, nullptr);
    }
    pump = std::thread([&] {
      bool stdin_open = options.interactive;
      char buf[32768];
      for (;;) {
        pollfd fds[2] = {{stop.get(), POLLIN, 0}, {stdin_open ? STDIN_FILENO : -1, POLLIN, 0}};
        int ready = poll(fds, 2, tty ? 200 : -1);
        if (ready < 0 && errno != EINTR) return;
        if (fds[0].revents) return;
        if (window_changed.exchange(false)) {
          v1::ExecRequest resize;
          *resize.mutable_resize() = WindowSize();
          if (!stream->Write(resize)) return;
        }
        if (stdin_open && fds[1].revents) {
          ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
          if (n < 0 && errno == EINTR) continue;
          v1::ExecRequest request;
          if (n <= 0) {
            request.set_close_stdin(true);
            stdin_open = false;
          } else {
            request.set_stdin(std::string(buf, static_cast<size_t>(n)));
          }
          if (!stream->Write(request)) return;
          if (!stdin_open && !tty) return;
        }
      }
    });
  }
  int code = kExitExecFailed;
  bool exited = false;
  for (v1::ExecResponse response; stream->Read(&response);) {
    if (response.has_stdout()) WriteOut(STDOUT_FILENO, response.stdout());
    if (response.has_stderr()) WriteOut(STDERR_FILENO, response.stderr());
    if (response.has_exit()) {
      code = response.exit().code();
      exited = true;
      break;
    }
  }
  if (pump.joinable()) {
    uint64_t one = 1;
    (void)!write(stop.get(), &one, sizeof(one));
    pump.join();
  }
  if (sends) stream->WritesDone();
  raw.reset();
  grpc::Status status = stream->Finish();
  if (!exited) {
    if (!status.ok()) {
      Cli::Error((*c)->Describe(status));
    } else {
      Cli::Error("exec: meshd ended the stream without an exit status");
    }
    return kExitExecFailed;
  }
  return code;
}

int FollowLogs(Cli& cli, const v1::LogsRequest& request, bool timestamps) {
  absl::StatusOr<Client*> c = cli.client();
  if (!c.ok()) {
    Cli::Error(c.status().message());
    return kExitFailed;
  }
  auto context = (*c)->Context(absl::InfiniteDuration());
  auto reader = (*c)->containers().Logs(context.get(), request);
  for (v1::LogEntry entry; reader->Read(&entry);) {
    std::string line;
    if (timestamps) {
      line = absl::StrCat(absl::FormatTime(
          "%Y-%m-%dT%H:%M:%E6SZ ",
          absl::FromUnixSeconds(entry.time().seconds()) + absl::Nanoseconds(entry.time().nanos()),
          absl::UTCTimeZone()));
    }
    absl::StrAppend(&line, entry.data(), entry.partial() ? "" : "\n");
    WriteOut(entry.stream() == v1::LOG_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO, line);
  }
  grpc::Status status = reader->Finish();
  return status.ok() ? kExitOk : cli.Failed(status);
}

void AddContainerCommands(CLI::App& app, Cli& cli) {
  // ps
  {
    CLI::App* ps = app.add_subcommand("ps", "List containers (running ones; -a: all)");
    struct Flags {
      bool all = false;
      std::string group;
      std::vector<std::string> labels;
      bool quiet = false;
    };
    auto f = std::make_shared<Flags>();
    ps->add_flag("-a,--all", f->all, "also containers that are not running");
    ps->add_option("-g,--group", f->group, "only members of this group");
    ps->add_option("-l,--label", f->labels, "only with this label (key or key=value)")
        ->allow_extra_args(false);
    ps->add_flag("-q,--quiet", f->quiet, "names only");
    cli.Action(ps, [&cli, f]() -> absl::StatusOr<int> {
      absl::StatusOr<Client*> c = cli.client();
      if (!c.ok()) return c.status();
      v1::ListContainersRequest request;
      request.set_all(f->all);
      request.set_group(f->group);
      for (const std::string& label : f->labels) {
        std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
        if (label.find('=') == std::string::npos) {
          request.mutable_selector()->add_has(label);
        } else {
          (*request.mutable_selector()->mutable_equals())[kv.first] = kv.second;
        }
      }
      v1::ListContainersResponse response;
      grpc::Status status = (*c)->containers().List((*c)->Context().get(), request, &response);
      if (!status.ok()) return cli.Failed(status);
      if (cli.format() != Format::kTable) {
        std::vector<const google::protobuf::Message*> list;
        for (const v1::Container& x : response.containers()) list.push_back(&x);
        std::printf("%s", RenderList(list, cli.format()).c_str());
        return kExitOk;
      }
      if (f->quiet) {
        for (const v1::Container& x : response.containers()) {
          std::printf("%s\n", x.spec().name().c_str());
        }
        return kExitOk;
      }
      Table table({"name", "image", "state", "status", "addresses", "ports", "group"});
      const absl::Time now = absl::Now();
      for (const v1::Container& x : response.containers()) {
        table.Add({x.spec().name(), x.spec().image(), StateName(x.state()), StatusText(x, now),
                   AddressesText(x), PortsText(x.spec()), x.group()});
      }
      std::printf("%s", table.Render().c_str());
      return kExitOk;
    });
  }
  // logs
  {
    CLI::App* logs = app.add_subcommand("logs", "Print a container's output");
    struct Flags {
      std::string name;
      bool follow = false;
      uint32_t tail = 0;
      std::string since;
      bool timestamps = false;
    };
    auto f = std::make_shared<Flags>();
    logs->add_option("container", f->name, "the container")->required();
    logs->add_flag("-f,--follow", f->follow, "keep printing new output until it ends");
    logs->add_option("-n,--tail", f->tail, "only the last N lines");
    logs->add_option("--since", f->since, "only output since: a duration back (10m) or a time");
    logs->add_flag("-t,--timestamps", f->timestamps, "prefix each line with its time");
    cli.Action(logs, [&cli, f]() -> absl::StatusOr<int> {
      v1::LogsRequest request;
      request.set_name(f->name);
      request.set_follow(f->follow);
      request.set_tail(f->tail);
      if (!f->since.empty()) {
        absl::StatusOr<google::protobuf::Timestamp> t = ParseSince("--since", f->since);
        if (!t.ok()) return t.status();
        *request.mutable_since() = *t;
      }
      return FollowLogs(cli, request, f->timestamps);
    });
  }
  // exec
  {
    CLI::App* exec = app.add_subcommand("exec", "Run a command in a running container");
    auto f = std::make_shared<ExecOptions>();
    exec->add_flag("-i,--interactive", f->interactive, "pass stdin to the command");
    exec->add_flag("-t,--tty", f->tty, "run it on a terminal (with -i: an interactive shell)");
    exec->add_option("-e,--env", f->env, "set an environment variable (KEY=VALUE)")
        ->allow_extra_args(false);
    exec->add_option("-w,--workdir", f->working_dir, "working directory inside the container");
    exec->add_option("-u,--user", f->user, "user[:group] to run as (name or id)");
    // Flags end at the container: what follows is the command's, its flags included
    // (`exec c ls -l`). So the container and command are not declared as options; they are
    // what parsing leaves.
    exec->prefix_command();
    exec->fallthrough(false);  // else an unknown word goes up to the root, which refuses it
    exec->footer("Usage: meshctl exec [flags] CONTAINER COMMAND [ARG...]");
    cli.Action(exec, [&cli, f, exec]() -> absl::StatusOr<int> {
      std::vector<std::string> rest = exec->remaining();
      if (!rest.empty() && rest.front() == "--") rest.erase(rest.begin());
      if (rest.size() < 2) {
        return absl::InvalidArgumentError(
            "exec: give the container, then the command to run (meshctl exec web ls -l)");
      }
      f->container = rest.front();
      f->args.assign(rest.begin() + 1, rest.end());
      return RunExec(cli, *f);
    });
  }
  // start, stop, restart, kill, rm: one or more containers each.
  {
    struct Flags {
      std::vector<std::string> names;
      int timeout = -1;
      std::string signal = "SIGKILL";
      bool force = false;
    };
    enum class Verb { kStart, kStop, kRestart, kKill, kRemove };
    auto add = [&](const char* command, const char* help, Verb verb) {
      CLI::App* cmd = app.add_subcommand(command, help);
      auto f = std::make_shared<Flags>();
      cmd->add_option("containers", f->names, "the containers")->required();
      if (verb == Verb::kStop || verb == Verb::kRestart) {
        cmd->add_option("-t,--time", f->timeout,
                        "seconds to wait after SIGTERM before SIGKILL (default: the "
                        "container's stop timeout, else 10)");
      }
      if (verb == Verb::kKill) {
        cmd->add_option("-s,--signal", f->signal, "the signal (name or number)");
      }
      if (verb == Verb::kRemove) {
        cmd->add_flag("-f,--force", f->force, "stop it first if it runs");
      }
      cli.Action(cmd, [&cli, f, verb]() -> absl::StatusOr<int> {
        absl::StatusOr<Client*> c = cli.client();
        if (!c.ok()) return c.status();
        Client& client = **c;
        int code = kExitOk;
        for (const std::string& name : f->names) {
          grpc::Status status;
          v1::Container out;
          auto stop = [&] {
            v1::StopContainerRequest request;
            request.set_name(name);
            if (f->timeout >= 0) request.mutable_timeout()->set_seconds(f->timeout);
            const absl::Duration grace =
                f->timeout >= 0 ? absl::Seconds(f->timeout) : absl::Minutes(5);
            return client.containers().Stop(client.Context(grace + absl::Seconds(60)).get(),
                                            request, &out);
          };
          auto start = [&] {
            v1::StartContainerRequest request;
            request.set_name(name);
            return client.containers().Start(client.Context().get(), request, &out);
          };
          switch (verb) {
            case Verb::kStart:
              status = start();
              break;
            case Verb::kStop:
              status = stop();
              break;
            case Verb::kRestart:
              status = stop();
              if (status.ok()) status = start();
              break;
            case Verb::kKill: {
              v1::KillContainerRequest request;
              request.set_name(name);
              request.set_signal(f->signal);
              status = client.containers().Kill(client.Context().get(), request, &out);
              break;
            }
            case Verb::kRemove: {
              v1::RemoveContainerRequest request;
              request.set_name(name);
              request.set_force(f->force);
              v1::RemoveContainerResponse response;
              status = client.containers().Remove(client.Context().get(), request, &response);
              break;
            }
          }
          if (status.ok()) {
            std::printf("%s\n", name.c_str());
          } else {
            code = cli.Failed(status);  // and on with the others, as docker does
          }
        }
        return code;
      });
    };
    add("start", "Start stopped containers", Verb::kStart);
    add("stop", "Stop running containers (SIGTERM, then SIGKILL after the grace period)",
        Verb::kStop);
    add("restart", "Stop, then start containers", Verb::kRestart);
    add("kill", "Send a signal to containers' main process", Verb::kKill);
    add("rm", "Remove containers", Verb::kRemove);
  }
  // wait
  {
    CLI::App* wait = app.add_subcommand("wait", "Wait for a container to end; print its exit code");
    auto name = std::make_shared<std::string>();
    wait->add_option("container", *name, "the container")->required();
    cli.Action(wait, [&cli, name]() -> absl::StatusOr<int> {
      absl::StatusOr<Client*> c = cli.client();
      if (!c.ok()) return c.status();
      v1::WaitContainerRequest request;
      request.set_name(*name);
      v1::WaitContainerResponse response;
      grpc::Status status = (*c)->containers().Wait((*c)->Context(absl::InfiniteDuration()).get(),
                                                    request, &response);
      if (!status.ok()) return cli.Failed(status);
      std::printf("%d\n", response.exit().code());
      return kExitOk;
    });
  }
  // capture
  {
    CLI::App* capture = app.add_subcommand(
        "capture", "Capture packets on an interface of a container into a pcap file");
    struct Flags {
      std::string name;
      std::string interface;
      std::vector<std::string> filter;
      std::string file;
      uint32_t count = 0;
      std::string duration;
      uint32_t snap_length = 0;
    };
    auto f = std::make_shared<Flags>();
    capture->add_option("container", f->name, "the container")->required();
    capture->add_option("interface", f->interface, "its interface (eth0, a link's end), or any")
        ->required();
    capture->add_option("filter", f->filter, "a pcap-filter expression (icmp, tcp port 80)");
    capture->add_option("-w,--write", f->file, "the pcap file to write; - for stdout")->required();
    capture->add_option("-c,--count", f->count, "stop after this many packets");
    capture->add_option("-d,--duration", f->duration, "stop after this long (30s, 2m)");
    capture->add_option("-s,--snaplen", f->snap_length, "bytes kept of each packet (default all)");
    capture->footer(
        "Runs tcpdump in the container's network namespace on meshd's host; Ctrl-C ends it with "
        "a complete file.\nExample: meshctl capture lab-r1 eth1 -w r1.pcap -c 10 icmp");
    cli.Action(capture, [&cli, f]() -> absl::StatusOr<int> {
      v1::CaptureRequest request;
      request.set_container(f->name);
      request.set_interface(f->interface);
      request.set_filter(absl::StrJoin(f->filter, " "));
      request.set_max_packets(f->count);
      request.set_snap_length(f->snap_length);
      if (!f->duration.empty()) {
        absl::StatusOr<google::protobuf::Duration> d = ParseDurationFlag("--duration", f->duration);
        if (!d.ok()) return d.status();
        *request.mutable_duration() = *d;
      }
      const bool to_stdout = f->file == "-";
      if (to_stdout && isatty(STDOUT_FILENO)) {
        return absl::InvalidArgumentError(
            "-w -: a pcap file is binary; redirect it (> file.pcap) or pipe it (| tcpdump -r -)");
      }
      absl::StatusOr<Client*> c = cli.client();
      if (!c.ok()) return c.status();
      UniqueFd file;
      if (!to_stdout) {
        file = UniqueFd(open(f->file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!file.valid()) {
          return absl::InvalidArgumentError(
              absl::StrCat("-w ", f->file, ": cannot write it: ", std::strerror(errno)));
        }
      }
      const int out = to_stdout ? STDOUT_FILENO : file.get();
      auto context = (*c)->Context(absl::InfiniteDuration());
      // Ctrl-C is how a capture without -c or -d ends: meshd stops tcpdump, and what it wrote
      // so far is a complete file (pcap has no trailer).
      OnInterrupt interrupt([&context](int) { context->TryCancel(); });
      auto reader = (*c)->containers().Capture(context.get(), request);
      uint64_t bytes = 0;
      for (v1::CaptureChunk chunk; reader->Read(&chunk);) {
        if (!chunk.data().empty()) {
          WriteOut(out, chunk.data());
          bytes += chunk.data().size();
        }
        if (!chunk.notice().empty()) std::fprintf(stderr, "%s\n", chunk.notice().c_str());
      }
      grpc::Status status = reader->Finish();
      if (interrupt.signal() != 0) {
        std::fprintf(stderr, "capture stopped: %llu bytes written to %s\n",
                     static_cast<unsigned long long>(bytes),
                     to_stdout ? "stdout" : f->file.c_str());
        return kExitOk;
      }
      return status.ok() ? kExitOk : cli.Failed(status);
    });
  }
}

}  // namespace mesh::cli
