#include "base/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mesh::log {
namespace internal {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
}  // namespace internal

namespace {

// True when $JOURNAL_STREAM ("DEV:INODE") names the file behind fd 2 (systemd.exec(5)).
bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(env, ':');
  uint64_t dev = 0, ino = 0;
  if (!absl::SimpleAtoi(parts.first, &dev) || !absl::SimpleAtoi(parts.second, &ino)) return false;
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

std::atomic<Format> g_format{StderrIsJournal() ? Format::kJournal : Format::kText};

std::mutex g_sink_mu;
std::function<void(absl::string_view)> g_sink;  // guarded by g_sink_mu

void WriteStderr(absl::string_view line) {
  while (!line.empty()) {
    ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // Nowhere left to report a logging failure.
    line.remove_prefix(static_cast<size_t>(n));
  }
}

// syslog(3) priorities: LOG_DEBUG 7, LOG_INFO 6, LOG_WARNING 4, LOG_ERR 3.
int SyslogPriority(Level level) {
  switch (level) {
    case Level::kDebug:
      return 7;
    case Level::kInfo:
      return 6;
    case Level::kWarning:
      return 4;
    case Level::kError:
      return 3;
  }
  return 6;
}

absl::string_view Basename(absl::string_view file) {
  size_t slash = file.rfind('/');
  return slash == absl::string_view::npos ? file : file.substr(slash + 1);
}

}  // namespace

absl::StatusOr<Level> ParseLevel(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warning" || lower == "warn") return Level::kWarning;
  if (lower == "error") return Level::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      "log level \"", name, "\" is not known; use one of debug, info, warning, error"));
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

void SetLevel(Level level) { internal::g_level.store(static_cast<int>(level)); }
Level GetLevel() { return static_cast<Level>(internal::g_level.load()); }
void SetFormat(Format format) { g_format.store(format); }

std::string FormatLine(Format format, Level level, absl::Time time, absl::string_view file,
                       int line, absl::string_view message) {
  std::string out;
  if (format == Format::kJournal) {
    absl::StrAppend(&out, "<", SyslogPriority(level), ">");
  } else {
    static constexpr char kLetters[] = {'D', 'I', 'W', 'E'};
    absl::StrAppend(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone()), " ",
                    absl::string_view(&kLetters[static_cast<int>(level)], 1), " ");
  }
  absl::StrAppend(&out, Basename(file), ":", line, "] ");
  for (char c : message) {
    if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '\n';
  return out;
}

void SetSinkForTest(std::function<void(absl::string_view)> sink) {
  std::lock_guard lock(g_sink_mu);
  g_sink = std::move(sink);
}

Message::~Message() {
  std::string line = FormatLine(g_format.load(), level_, absl::Now(), file_, line_, stream_.str());
  std::lock_guard lock(g_sink_mu);
  if (g_sink) {
    g_sink(line);
  } else {
    WriteStderr(line);
  }
}

}  // namespace mesh::log
