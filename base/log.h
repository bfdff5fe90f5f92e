#pragma once

#include <atomic>
#include <functional>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mesh::log {

// Levels, lowest first. Each maps to a syslog priority for journald.
enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning" (or "warn"), "error"; case-insensitive.
absl::StatusOr<Level> ParseLevel(absl::string_view name);
absl::string_view LevelName(Level level);

// Messages below the threshold are dropped before they are formatted. Default: kInfo.
void SetLevel(Level level);
Level GetLevel();
inline bool Enabled(Level level);

enum class Format {
  // "<6>file.cc:12] message": the syslog priority prefix journald reads from a stream, and
  // no timestamp (the journal adds its own).
  kJournal,
  // "2026-11-29T05:00:00.123456Z I file.cc:12] message" for a terminal or a file.
  kText,
};
// Default: kJournal when stderr is connected to the journal ($JOURNAL_STREAM names stderr's
// device and inode, as systemd sets it), kText otherwise.
void SetFormat(Format format);

// Formats one record as a single line ending in '\n'. Newlines inside `message` are escaped
// as "\n" so one record is always one journal entry.
std::string FormatLine(Format format, Level level, absl::Time time, absl::string_view file,
                       int line, absl::string_view message);

// Where formatted lines go; default writes each line to stderr with one write(2) so lines from
// concurrent threads never interleave. Tests capture with a custom sink; nullptr restores
// the default.
void SetSinkForTest(std::function<void(absl::string_view line)> sink);

// One record; emitted when destroyed. Use through MESH_LOG.
class Message {
 public:
  Message(Level level, const char* file, int line) : level_(level), file_(file), line_(line) {}
  ~Message();
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  Level level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

namespace internal {
extern std::atomic<int> g_level;  // Written only through SetLevel.
}
inline bool Enabled(Level level) {
  return static_cast<int>(level) >= internal::g_level.load(std::memory_order_relaxed);
}

}  // namespace mesh::log

// MESH_LOG(Info) << "started " << name;   Levels: Debug, Info, Warning, Error.
#define MESH_LOG(severity)                                      \
  if (!::mesh::log::Enabled(::mesh::log::Level::k##severity)) { \
  } else                                                        \
    ::mesh::log::Message(::mesh::log::Level::k##severity, __FILE__, __LINE__).stream()
