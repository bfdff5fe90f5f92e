#include "agent/capture/capture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/child_process.h"
#include "base/errno_status.h"
#include "base/quote.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "netplane/network/names.h"

namespace mesh::agent {
namespace {

constexpr size_t kMaxFilterBytes = 1024;
// How long tcpdump has to finish its file after it was asked to stop.
constexpr absl::Duration kStopGrace = absl::Seconds(2);

absl::StatusOr<std::array<UniqueFd, 2>> Pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "capture: make a pipe");
  return std::array<UniqueFd, 2>{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

std::vector<std::string> CaptureCommand(const CaptureOptions& o) {
  // -n: no name lookups (nothing leaves the namespace); -U: each packet is written as it comes;
  // -w -: the pcap file on stdout.
  std::vector<std::string> argv = {o.tcpdump, "-n", "-U", "-i", o.interface, "-w", "-"};
  if (o.max_packets > 0) {
    argv.push_back("-c");
    argv.push_back(absl::StrCat(o.max_packets));
  }
  if (o.snap_length > 0) {
    argv.push_back("-s");
    argv.push_back(absl::StrCat(o.snap_length));
  }
  if (!o.filter.empty()) {
    argv.push_back("--");
    argv.push_back(o.filter);
  }
  return argv;
}

absl::Status ValidateCapture(const CaptureOptions& o) {
  // Not '-' first: tcpdump would read it as an option.
  if (!netplane::IsValidIfname(o.interface) || o.interface[0] == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("interface: ", Quote(o.interface),
                     " is not an interface name; give one of the container's (\"eth0\"), or "
                     "\"any\""));
  }
  if (o.filter.size() > kMaxFilterBytes || o.filter.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("filter: must be at most ", kMaxFilterBytes,
                                                   " bytes of text (a pcap-filter expression)"));
  }
  return absl::OkStatus();
}

absl::Status RunCapture(const CaptureOptions& o,
                        const std::function<bool(absl::string_view)>& on_data,
                        const std::function<bool(const std::string&)>& on_notice,
                        const std::function<bool()>& cancelled) {
  MESH_RETURN_IF_ERROR(ValidateCapture(o));
  const std::string what =
      absl::StrCat("capture on ", Quote(o.interface), " of container ", Quote(o.container));
  UniqueFd netns(open(o.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns.valid()) {
    return ErrnoToStatus(errno, absl::StrCat(what, ": open its network namespace"));
  }
  MESH_ASSIGN_OR_RETURN(auto out, Pipe());
  MESH_ASSIGN_OR_RETURN(auto err, Pipe());
  SpawnOptions spawn;
  spawn.argv = CaptureCommand(o);
  spawn.netns_fd = netns.get();
  spawn.stdout_fd = out[1].get();
  spawn.stderr_fd = err[1].get();
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(spawn);
  if (absl::IsNotFound(child.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": the host running meshd has no tcpdump; install it (apt install tcpdump)"));
  }
  if (!child.ok()) return Annotate(child.status(), what);
  out[1].Reset();
  err[1].Reset();

  std::string said;     // everything tcpdump wrote to stderr, for an error
  std::string partial;  // a stderr line not finished yet
  bool client_gone = false;
  bool stopping = false;
  const absl::Time started = absl::Now();
  absl::Time kill_at = absl::InfiniteFuture();
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    child->Signal(SIGINT).IgnoreError();  // tcpdump finishes its file and says its counts
    kill_at = absl::Now() + kStopGrace;
  };
  std::array<pollfd, 2> fds = {pollfd{out[0].get(), POLLIN, 0}, pollfd{err[0].get(), POLLIN, 0}};
  char buffer[65536];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (!stopping && (cancelled() || client_gone ||
                      (o.duration > absl::ZeroDuration() && absl::Now() - started >= o.duration))) {
      stop();
    }
    if (absl::Now() >= kill_at) {
      child->Signal(SIGKILL).IgnoreError();
      kill_at = absl::InfiniteFuture();
    }
    const int n = poll(fds.data(), fds.size(), 100);
    if (n < 0 && errno != EINTR) return ErrnoToStatus(errno, absl::StrCat(what, ": poll"));
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t got = read(fds[i].fd, buffer, sizeof(buffer));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fds[i].fd = -1;  // end of that stream
        continue;
      }
      const absl::string_view bytes(buffer, static_cast<size_t>(got));
      if (i == 0) {
        if (!client_gone && !on_data(bytes)) client_gone = true;
        continue;
      }
      said.append(bytes.data(), bytes.size());
      partial.append(bytes.data(), bytes.size());
      for (size_t eol; (eol = partial.find('\n')) != std::string::npos;) {
        std::string line = partial.substr(0, eol);
        partial.erase(0, eol + 1);
        absl::string_view notice = line;
        absl::ConsumePrefix(&notice, "tcpdump: ");
        if (!notice.empty() && !client_gone && !on_notice(std::string(notice))) client_gone = true;
      }
    }
  }
  absl::StatusOr<ExitStatus> exit = child->Wait(kStopGrace);
  if (!exit.ok()) return Annotate(exit.status(), what);
  if (exit->ok() || stopping) return absl::OkStatus();
  std::string words(absl::StripAsciiWhitespace(said));
  if (words.empty()) words = exit->ToString();
  const std::string message = absl::StrCat(what, ": tcpdump: ", words);
  if (absl::StrContains(said, "No such device") || absl::StrContains(said, "doesn't exist")) {
    return absl::NotFoundError(
        absl::StrCat(message, "; `meshctl exec ", o.container, " ip link` lists its interfaces"));
  }
  if (absl::StrContains(said, "syntax error") || absl::StrContains(said, "filter")) {
    return absl::InvalidArgumentError(message);
  }
  return absl::InternalError(message);
}

}  // namespace mesh::agent
