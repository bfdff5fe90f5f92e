#pragma once

// Reading a container's log for ContainerService.Logs: what is stored (ReadLogs), then what
// comes (LogFollower). The log is what mesh-shim writes (runtime/shim/log_writer.h): CRI
// records in container.log, rotated to container.log.1, .2, ... (the highest is the oldest).
//
// Entries: the records of a stream are joined into lines, a run of "P" records with the "F"
// record that ends it making one entry. A joined line longer than kMaxEntryBytes comes as
// entries of kMaxEntryBytes with partial=true, then the rest with partial=false. A line still
// unfinished where the reading stops (the container exited in the middle of one, or is writing
// it) comes as an entry with partial=true; its continuation, if any, comes later as its own
// entry. An entry's time is that of the last record in it (when the line was complete).
// Lines that are not records (a damaged file) are skipped and counted, never an error.
//
// No log file at all (a container that was created but never started: mesh-shim creates the
// log when it starts the container) is an empty log, not an error. Files are found by name and
// then held by descriptor, so a rotation while reading neither loses nor repeats a file.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "mesh/v1/containers.pb.h"

namespace mesh::agent {

inline constexpr size_t kMaxEntryBytes = 64 * 1024;

struct LogQuery {
  // Only the last `tail` entries that pass the other filters; 0: all.
  size_t tail = 0;
  // Only entries whose time is at or after `since`.
  absl::Time since = absl::InfinitePast();
  // Only these streams; empty: both. LOG_STREAM_UNSPECIFIED matches nothing.
  std::vector<v1::LogStream> streams;
};

// The query of a Logs request (tail, since when set, streams). INVALID_ARGUMENT naming the
// field for a since outside what a Timestamp holds or a stream other than stdout and stderr.
absl::StatusOr<LogQuery> LogQueryFrom(const v1::LogsRequest& request);

// Whether `entry` passes the stream and since filters of `query` (tail is not a per-entry
// filter).
bool MatchesQuery(const LogQuery& query, const v1::LogEntry& entry);

// A position in the log: a file by identity (so that a rotation does not move it) and the
// offset just past the last complete record read from it.
struct LogCursor {
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t offset = 0;
  // False when no log file existed: a follower then starts at the first one that appears.
  bool valid = false;
};

struct LogSnapshot {
  std::vector<v1::LogEntry> entries;
  // Lines skipped because they are not records.
  uint64_t malformed_lines = 0;
  // Bytes read from the files (a tail reads from the end and stops early).
  uint64_t bytes_read = 0;
  // Where `entries` end, for LogFollower::OpenAt.
  LogCursor end;
};

// The entries of the log at `log_path` ("<data dir>/container.log") that match `query`, oldest
// first: the rotated files from the oldest, then the live one up to its last complete record.
// A tail or a since reads the files backwards in blocks from the end and stops as soon as it
// has what it needs, so its cost follows what it returns, not the size of the log. Errors: the
// files exist but cannot be opened or read.
absl::StatusOr<LogSnapshot> ReadLogSnapshot(const std::string& log_path, const LogQuery& query);

// ReadLogSnapshot's entries.
absl::StatusOr<std::vector<v1::LogEntry>> ReadLogs(const std::string& log_path,
                                                   const LogQuery& query);

// Follows a log as it grows, through rotations (finishes the file it reads, then goes on with
// the files that replaced it, oldest first) and truncations (starts the file again from its
// beginning). Move-only; one thread at a time. Holds at most one log file and one inotify
// instance open; without inotify (the per-user limit of instances is reached, or the
// directory does not exist yet) WaitForChange polls the live file's stat every 50 ms instead.
//
// Use, in a Logs handler:
//   MESH_ASSIGN_OR_RETURN(LogSnapshot snapshot, ReadLogSnapshot(path, query));
//   ... send snapshot.entries ...
//   MESH_ASSIGN_OR_RETURN(LogFollower follower, LogFollower::OpenAt(path, query, snapshot.end));
//   while (!context->IsCancelled()) {
//     if (!follower.WaitForChange(absl::Milliseconds(200))) continue;
//     MESH_ASSIGN_OR_RETURN(std::vector<v1::LogEntry> more, follower.Poll());
//     ... send more ...
//   }
class LogFollower {
 public:
  // From the current end of the log: what is stored now is not returned. Entries are filtered
  // by `query`'s streams and since (not tail).
  static absl::StatusOr<LogFollower> Open(std::string log_path, LogQuery query = {});
  // From `from` (a snapshot's end), so that nothing is lost or repeated between the snapshot
  // and the follower. If that file is gone by now (rotated out of the log), from the oldest
  // file there is.
  static absl::StatusOr<LogFollower> OpenAt(std::string log_path, LogQuery query,
                                            const LogCursor& from);

  LogFollower(LogFollower&&) = default;
  LogFollower& operator=(LogFollower&&) = default;

  // The entries written since the last call (or since the start position), from at most 1 MiB
  // of the files (a flood comes in pieces: WaitForChange then returns at once). A line that is
  // unfinished when Poll runs comes as a partial entry (see the top of this file). Errors: a
  // file of the log cannot be opened or read; the follower stays usable.
  absl::StatusOr<std::vector<v1::LogEntry>> Poll();

  // Waits at most `timeout` for the log to change: true when it may have (Poll has something
  // to do), false when nothing happened in time. The first call returns true at once.
  bool WaitForChange(absl::Duration timeout);

  // Lines skipped so far because they are not records.
  uint64_t malformed_lines() const { return malformed_lines_; }

 private:
  struct Stat {
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t size = -1;
    int64_t mtime_ns = 0;
    friend bool operator==(const Stat&, const Stat&) = default;
  };

  LogFollower(std::string log_path, LogQuery query);
  void Watch();
  // Consumes the pending inotify events; true if one is about the log.
  bool ReadEvents();
  bool WaitForInotify(absl::Time deadline);
  Stat StatLive() const;

  std::string path_;
  LogQuery query_;
  // The file being read (invalid until one exists), by identity, and how far it was read.
  UniqueFd file_;
  std::string file_name_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  uint64_t offset_ = 0;
  // In the middle of a line too long to be a record: skip to its end.
  bool skipping_ = false;
  uint64_t malformed_lines_ = 0;

  UniqueFd inotify_;
  bool watching_ = false;
  bool first_wait_ = true;
  // The last Poll stopped at its budget: there is more to read now.
  bool more_ = false;
  Stat last_stat_;  // for polling without inotify
};

}  // namespace mesh::agent
