#include "agent/logs/log_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "agent/api/convert.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "runtime/shim/log_writer.h"

namespace mesh::agent {
namespace {

// Reads go in blocks of this size, forwards and backwards.
constexpr uint64_t kBlockBytes = 64 * 1024;
// A line longer than this is not a record; it is skipped without being held in memory. A record
// holds what LogWriter::Write completed in one call: up to kMaxLine bytes carried over plus one
// read of the shim (64 KiB), so about 80 KiB; far more than that is damage.
constexpr size_t kMaxLineBytes = 1024 * 1024;
// google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;
// What one Poll reads at most, so that a flood comes in bounded pieces.
constexpr uint64_t kPollBudgetBytes = 1024 * 1024;
// Without inotify, WaitForChange looks at the live file this often.
constexpr absl::Duration kStatInterval = absl::Milliseconds(50);
constexpr uint32_t kWatchMask =
    IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF;

int Index(runtime::LogStream stream) { return stream == runtime::LogStream::kStdout ? 0 : 1; }

// Which of stdout (0) and stderr (1) a query wants.
struct Streams {
  explicit Streams(const LogQuery& query) {
    if (query.streams.empty()) {
      want[0] = want[1] = true;
      return;
    }
    for (v1::LogStream s : query.streams) {
      if (s == v1::LOG_STREAM_STDOUT) want[0] = true;
      if (s == v1::LOG_STREAM_STDERR) want[1] = true;
    }
  }
  bool want[2] = {false, false};
};

// 0 for `base` itself, k for "<base>.<k>" (k >= 1), nullopt for any other name.
std::optional<int> RotationIndex(absl::string_view name, absl::string_view base) {
  if (name == base) return 0;
  if (!absl::ConsumePrefix(&name, base) || !absl::ConsumePrefix(&name, ".")) return std::nullopt;
  int k = 0;
  if (name.empty() || !std::all_of(name.begin(), name.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(name, &k) || k < 1) {
    return std::nullopt;
  }
  return k;
}

// One file of the log, held open.
struct LogFile {
  std::string name;
  UniqueFd fd;
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t size = 0;
  // The file at the log's own path (the one being written), as opposed to a rotated one.
  bool live = false;
};

// The files of the log, oldest first. The live file is opened first, then the rotated ones by
// index: a rotation in between only moves names up, and a file met twice (by identity) is taken
// once, so the set is consistent. No file (or no directory): an empty set.
absl::StatusOr<std::vector<LogFile>> OpenLogFiles(const std::string& path) {
  std::vector<LogFile> newest_first;
  auto add = [&](std::string name, bool live) -> absl::Status {
    UniqueFd fd(open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return absl::OkStatus();
      return ErrnoToStatus(errno, absl::StrCat("open log \"", name, "\""));
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("stat log \"", name, "\""));
    }
    for (const LogFile& f : newest_first) {
      if (f.dev == st.st_dev && f.ino == st.st_ino) return absl::OkStatus();
    }
    newest_first.push_back({.name = std::move(name),
                            .fd = std::move(fd),
                            .dev = st.st_dev,
                            .ino = st.st_ino,
                            .size = static_cast<uint64_t>(st.st_size),
                            .live = live});
    return absl::OkStatus();
  };
  MESH_RETURN_IF_ERROR(add(path, true));

  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  const std::string base = p.filename().string();
  std::vector<int> rotated;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::optional<int> k = RotationIndex(it->path().filename().string(), base);
    if (k.has_value() && *k > 0) rotated.push_back(*k);
  }
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory) {
    return ErrnoToStatus(ec.value(), absl::StrCat("list log directory \"", dir.string(), "\""));
  }
  std::sort(rotated.begin(), rotated.end());
  for (int k : rotated) MESH_RETURN_IF_ERROR(add(absl::StrCat(path, ".", k), false));
  std::reverse(newest_first.begin(), newest_first.end());
  return newest_first;
}

// Reads `n` bytes at `offset`. Bytes past the end of the file (it shrank under us) read as
// NULs, which make malformed lines rather than an error.
absl::Status ReadAt(int fd, const std::string& name, char* buf, uint64_t n, uint64_t offset,
                    uint64_t* bytes_read) {
  uint64_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("read log \"", name, "\""));
    }
    if (r == 0) {
      std::fill(buf + done, buf + n, '\0');
      break;
    }
    done += static_cast<uint64_t>(r);
  }
  *bytes_read += done;
  return absl::OkStatus();
}

// The offset just past the last newline before `size` (0 if none): the end of the complete
// records of a file that is still being written.
absl::StatusOr<uint64_t> LastLineEnd(int fd, const std::string& name, uint64_t size,
                                     uint64_t* bytes_read) {
  std::string block;
  for (uint64_t end = size; end > 0;) {
    const uint64_t n = std::min(kBlockBytes, end);
    block.resize(n);
    MESH_RETURN_IF_ERROR(ReadAt(fd, name, block.data(), n, end - n, bytes_read));
    size_t nl = block.rfind('\n');
    if (nl != std::string::npos) return end - n + nl + 1;
    end -= n;
  }
  return 0;
}

// Lines of a file from the last to the first, read in blocks from the end.
class ReverseLineReader {
 public:
  struct Line {
    absl::string_view text;  // without its newline; valid until the next call
    uint64_t end = 0;        // just past its newline
    bool overlong = false;   // longer than kMaxLineBytes: `text` is empty
  };

  // The lines of `file` before `end`.
  ReverseLineReader(const LogFile& file, uint64_t end, uint64_t* bytes_read)
      : file_(file), buf_pos_(end), rend_(end), bytes_read_(bytes_read) {}

  // The line before the one returned last; false at the beginning of the file.
  absl::StatusOr<bool> Previous(Line* line) {
    buf_.resize(rend_ - buf_pos_);  // buf_ now ends where the lines returned begin
    if (rend_ == 0) return false;
    if (buf_.empty()) MESH_RETURN_IF_ERROR(Fill());
    uint64_t text_end = rend_;
    if (buf_.back() == '\n') --text_end;
    bool overlong = false;
    size_t nl;
    while (true) {
      const uint64_t n = text_end - buf_pos_;
      nl = n == 0 ? std::string::npos : absl::string_view(buf_.data(), n).rfind('\n');
      if (nl != std::string::npos || buf_pos_ == 0) break;
      if (n > kMaxLineBytes) {
        // Only its start matters now: keep looking for the newline before it, holding nothing.
        overlong = true;
        buf_.clear();
        text_end = buf_pos_;
      }
      MESH_RETURN_IF_ERROR(Fill());
    }
    const uint64_t start = nl == std::string::npos ? 0 : buf_pos_ + nl + 1;
    line->end = rend_;
    line->overlong = overlong;
    line->text = overlong ? absl::string_view()
                          : absl::string_view(buf_).substr(start - buf_pos_, text_end - start);
    rend_ = start;
    return true;
  }

 private:
  // Puts the block before buf_pos_ in front of buf_.
  absl::Status Fill() {
    const uint64_t n = std::min(kBlockBytes, buf_pos_);
    std::string block(n, '\0');
    MESH_RETURN_IF_ERROR(
        ReadAt(file_.fd.get(), file_.name, block.data(), n, buf_pos_ - n, bytes_read_));
    buf_.insert(0, block);
    buf_pos_ -= n;
    return absl::OkStatus();
  }

  const LogFile& file_;
  std::string buf_;   // the file's bytes from buf_pos_ on
  uint64_t buf_pos_;  // file offset of buf_[0]
  uint64_t rend_;     // the lines from here on were returned
  uint64_t* bytes_read_;
};

// Turns records into entries (see the top of log_reader.h), filtered by a query.
class EntryAssembler {
 public:
  // `keep`: only the last `keep` entries are kept; 0: all.
  EntryAssembler(const LogQuery& query, size_t keep)
      : streams_(query), since_(query.since), keep_(keep) {}

  void Line(absl::string_view line) {
    absl::StatusOr<runtime::LogRecord> record = runtime::ParseLogRecord(line);
    if (!record.ok()) {
      ++malformed_;
      return;
    }
    const int s = Index(record->stream);
    if (!streams_.want[s]) return;
    Pending& p = pending_[s];
    p.text += record->text;
    p.time = record->time;
    p.seq = ++seq_;
    p.active = true;
    while (p.text.size() > kMaxEntryBytes) {
      Emit(s, p.text.substr(0, kMaxEntryBytes), p.time, true);
      p.text.erase(0, kMaxEntryBytes);
    }
    if (!record->partial) {
      Emit(s, std::move(p.text), p.time, false);
      p = Pending();
    }
  }
  void Malformed() { ++malformed_; }

  // Lines left unfinished become partial entries, in the order of their last records.
  void Finish() {
    int order[2] = {0, 1};
    if (pending_[1].seq < pending_[0].seq) std::swap(order[0], order[1]);
    for (int s : order) {
      Pending& p = pending_[s];
      if (p.active && !p.text.empty()) Emit(s, std::move(p.text), p.time, true);
      p = Pending();
    }
  }

  std::vector<v1::LogEntry> Take() {
    return std::vector<v1::LogEntry>(std::make_move_iterator(out_.begin()),
                                     std::make_move_iterator(out_.end()));
  }
  uint64_t malformed() const { return malformed_; }

 private:
  struct Pending {
    std::string text;
    absl::Time time;
    uint64_t seq = 0;
    bool active = false;
  };

  void Emit(int stream, std::string text, absl::Time time, bool partial) {
    if (time < since_) return;
    v1::LogEntry& entry = out_.emplace_back();
    *entry.mutable_time() = ToProtoTimestamp(time);
    entry.set_stream(stream == 0 ? v1::LOG_STREAM_STDOUT : v1::LOG_STREAM_STDERR);
    entry.set_data(std::move(text));
    entry.set_partial(partial);
    if (keep_ > 0 && out_.size() > keep_) out_.pop_front();
  }

  const Streams streams_;
  const absl::Time since_;
  const size_t keep_;
  Pending pending_[2];
  uint64_t seq_ = 0;
  std::deque<v1::LogEntry> out_;
  uint64_t malformed_ = 0;
};

struct ForwardResult {
  // Just past the last byte used (a line, or the skipped part of an overlong one).
  uint64_t consumed = 0;
  // Just past the last complete line.
  uint64_t line_end = 0;
};

// Feeds the lines of `fd` from `from` to `limit` (or its end) to `out`. The bytes after the last
// newline are a line only if `final` (the file is no longer written). *skipping: inside an
// overlong line (skipped up to its newline); carried from one call to the next.
absl::StatusOr<ForwardResult> ReadForward(int fd, const std::string& name, uint64_t from,
                                          uint64_t limit, bool final, bool* skipping,
                                          EntryAssembler& out, uint64_t* bytes_read) {
  ForwardResult result{.consumed = from, .line_end = from};
  std::string block(kBlockBytes, '\0');
  std::string carry;
  uint64_t pos = from;
  while (pos < limit) {
    const uint64_t want = std::min(kBlockBytes, limit - pos);
    ssize_t r = pread(fd, block.data(), want, static_cast<off_t>(pos));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("read log \"", name, "\""));
    }
    if (r == 0) break;
    *bytes_read += static_cast<uint64_t>(r);
    absl::string_view data(block.data(), static_cast<size_t>(r));
    size_t p = 0;
    for (size_t nl; (nl = data.find('\n', p)) != absl::string_view::npos; p = nl + 1) {
      if (*skipping) {
        *skipping = false;
        out.Malformed();
      } else if (carry.empty()) {
        out.Line(data.substr(p, nl - p));
      } else {
        carry.append(data.data() + p, nl - p);
        out.Line(carry);
        carry.clear();
      }
      result.line_end = pos + nl + 1;
    }
    if (!*skipping) {
      carry.append(data.data() + p, data.size() - p);
      if (carry.size() > kMaxLineBytes) {
        carry.clear();
        *skipping = true;
      }
    }
    pos += static_cast<uint64_t>(r);
  }
  result.consumed = *skipping ? pos : result.line_end;
  if (final) {
    if (*skipping) {
      *skipping = false;
      out.Malformed();
    } else if (!carry.empty()) {
      out.Line(carry);
    }
    result.consumed = result.line_end = pos;
  }
  return result;
}

struct Position {
  size_t file = 0;
  uint64_t offset = 0;
};

// Where reading forward must start to produce the last query.tail entries at or after
// query.since: reads the files backwards from the end, counting lines (a run of P records and
// its F record count once, found by their last record) until it has `tail` of them or meets one
// older than `since`, then goes on back to where the runs it counted begin. The start is a
// record boundary where no counted line is cut; a line that is cut there ends before every
// counted one, so it is not among the last `tail` entries.
absl::StatusOr<Position> FindStart(const std::vector<LogFile>& files, const LogQuery& query,
                                   uint64_t* bytes_read) {
  const Streams streams(query);
  bool counting = true;
  size_t count = 0;
  // Per stream: a counted line whose first record is not found yet.
  bool open[2] = {false, false};
  for (size_t i = files.size(); i-- > 0;) {
    const LogFile& file = files[i];
    uint64_t end = file.size;
    if (file.live) {
      MESH_ASSIGN_OR_RETURN(end, LastLineEnd(file.fd.get(), file.name, file.size, bytes_read));
    }
    ReverseLineReader reader(file, end, bytes_read);
    ReverseLineReader::Line line;
    while (true) {
      MESH_ASSIGN_OR_RETURN(bool more, reader.Previous(&line));
      if (!more) break;
      if (line.overlong) continue;
      absl::StatusOr<runtime::LogRecord> record = runtime::ParseLogRecord(line.text);
      if (!record.ok()) continue;
      const int s = Index(record->stream);
      if (!streams.want[s]) continue;
      // An F record ends the line before the open one: that one begins after it.
      if (!record->partial) open[s] = false;
      if (counting && !open[s]) {
        // The last record of a line (an F, or a P at the very end of the stream).
        if (record->time < query.since) {
          counting = false;
        } else {
          open[s] = true;
          if (++count == query.tail) counting = false;
        }
      }
      if (!counting && !open[0] && !open[1]) return Position{i, line.end};
    }
  }
  return Position{};
}

}  // namespace

absl::StatusOr<LogQuery> LogQueryFrom(const v1::LogsRequest& request) {
  LogQuery query;
  query.tail = request.tail();
  if (request.has_since()) {
    const google::protobuf::Timestamp& since = request.since();
    if (since.seconds() < kMinSeconds || since.seconds() > kMaxSeconds || since.nanos() < 0 ||
        since.nanos() > 999999999) {
      return absl::InvalidArgumentError(absl::StrCat(
          "since: {seconds: ", since.seconds(), ", nanos: ", since.nanos(),
          "} is not a valid timestamp (0001-01-01 to 9999-12-31, nanos 0 to 999999999)"));
    }
    query.since = FromProtoTimestamp(since);
  }
  for (int i = 0; i < request.streams_size(); ++i) {
    const v1::LogStream stream = request.streams(i);
    if (stream != v1::LOG_STREAM_STDOUT && stream != v1::LOG_STREAM_STDERR) {
      return absl::InvalidArgumentError(
          absl::StrCat("streams[", i, "]: ", static_cast<int>(stream),
                       " is not a log stream (LOG_STREAM_STDOUT or LOG_STREAM_STDERR)"));
    }
    query.streams.push_back(stream);
  }
  return query;
}

bool MatchesQuery(const LogQuery& query, const v1::LogEntry& entry) {
  const int s = entry.stream() == v1::LOG_STREAM_STDOUT   ? 0
                : entry.stream() == v1::LOG_STREAM_STDERR ? 1
                                                          : -1;
  if (s < 0 || !Streams(query).want[s]) return false;
  return FromProtoTimestamp(entry.time()) >= query.since;
}

absl::StatusOr<LogSnapshot> ReadLogSnapshot(const std::string& log_path, const LogQuery& query) {
  LogSnapshot snapshot;
  MESH_ASSIGN_OR_RETURN(std::vector<LogFile> files, OpenLogFiles(log_path));
  if (files.empty()) return snapshot;
  Position start;
  if (query.tail > 0 || query.since != absl::InfinitePast()) {
    MESH_ASSIGN_OR_RETURN(start, FindStart(files, query, &snapshot.bytes_read));
  }
  EntryAssembler out(query, query.tail);
  ForwardResult last;
  for (size_t i = start.file; i < files.size(); ++i) {
    const LogFile& file = files[i];
    bool skipping = false;
    MESH_ASSIGN_OR_RETURN(
        last, ReadForward(file.fd.get(), file.name, i == start.file ? start.offset : 0, file.size,
                          !file.live, &skipping, out, &snapshot.bytes_read));
  }
  out.Finish();
  snapshot.entries = out.Take();
  snapshot.malformed_lines = out.malformed();
  // A follower that starts at the last complete line takes an overlong tail up again (and skips
  // it then).
  snapshot.end = {
      .dev = files.back().dev, .ino = files.back().ino, .offset = last.line_end, .valid = true};
  return snapshot;
}

absl::StatusOr<std::vector<v1::LogEntry>> ReadLogs(const std::string& log_path,
                                                   const LogQuery& query) {
  MESH_ASSIGN_OR_RETURN(LogSnapshot snapshot, ReadLogSnapshot(log_path, query));
  return std::move(snapshot.entries);
}

LogFollower::LogFollower(std::string log_path, LogQuery query)
    : path_(std::move(log_path)), query_(std::move(query)) {
  last_stat_ = StatLive();
  Watch();
}

absl::StatusOr<LogFollower> LogFollower::Open(std::string log_path, LogQuery query) {
  LogFollower follower(std::move(log_path), std::move(query));
  MESH_ASSIGN_OR_RETURN(std::vector<LogFile> files, OpenLogFiles(follower.path_));
  if (files.empty()) return follower;
  LogFile& newest = files.back();
  uint64_t offset = newest.size;
  uint64_t bytes_read = 0;
  if (newest.live) {
    MESH_ASSIGN_OR_RETURN(offset,
                          LastLineEnd(newest.fd.get(), newest.name, newest.size, &bytes_read));
  }
  follower.file_ = std::move(newest.fd);
  follower.file_name_ = std::move(newest.name);
  follower.dev_ = newest.dev;
  follower.ino_ = newest.ino;
  follower.offset_ = offset;
  return follower;
}

absl::StatusOr<LogFollower> LogFollower::OpenAt(std::string log_path, LogQuery query,
                                                const LogCursor& from) {
  LogFollower follower(std::move(log_path), std::move(query));
  if (!from.valid) return follower;
  MESH_ASSIGN_OR_RETURN(std::vector<LogFile> files, OpenLogFiles(follower.path_));
  for (LogFile& file : files) {
    if (file.dev == from.dev && file.ino == from.ino) {
      follower.file_ = std::move(file.fd);
      follower.file_name_ = std::move(file.name);
      follower.dev_ = file.dev;
      follower.ino_ = file.ino;
      follower.offset_ = from.offset;
      break;
    }
  }
  // Not found: rotated out of the log; Poll starts at the oldest file.
  return follower;
}

absl::StatusOr<std::vector<v1::LogEntry>> LogFollower::Poll() {
  // Before reading: a change after this is one WaitForChange reports; the ones before, this
  // Poll reads.
  last_stat_ = StatLive();
  // Whether the events were about the log does not matter: this Poll looks anyway.
  if (watching_) (void)ReadEvents();
  more_ = false;
  EntryAssembler out(query_, 0);
  uint64_t budget = kPollBudgetBytes;
  uint64_t bytes_read = 0;
  // Reads the current file from offset_ on, within the budget; false when the budget ran out
  // first. `final`: the file is no longer written, so its last bytes are a line too.
  auto read_current = [&](bool final) -> absl::StatusOr<bool> {
    struct stat st;
    if (fstat(file_.get(), &st) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("stat log \"", file_name_, "\""));
    }
    uint64_t limit = std::max(static_cast<uint64_t>(st.st_size), offset_);
    const bool to_end = limit - offset_ <= budget;
    if (!to_end) limit = offset_ + budget;
    budget -= limit - offset_;
    MESH_ASSIGN_OR_RETURN(ForwardResult r,
                          ReadForward(file_.get(), file_name_, offset_, limit, final && to_end,
                                      &skipping_, out, &bytes_read));
    offset_ = r.consumed;
    return to_end;
  };

  struct stat live;
  const bool have_live = stat(path_.c_str(), &live) == 0;
  if (!have_live && errno != ENOENT) {
    return ErrnoToStatus(errno, absl::StrCat("stat log \"", path_, "\""));
  }
  const bool reading_live =
      file_.valid() && have_live && live.st_dev == dev_ && live.st_ino == ino_;
  if (reading_live) {
    // Truncated (a log of one file is truncated instead of rotated): shorter than what was
    // read, or no longer a newline where the last line read ended.
    bool truncated = static_cast<uint64_t>(live.st_size) < offset_;
    if (!truncated && !skipping_ && offset_ > 0) {
      char c = 0;
      MESH_RETURN_IF_ERROR(ReadAt(file_.get(), file_name_, &c, 1, offset_ - 1, &bytes_read));
      truncated = c != '\n';
    }
    if (truncated) {
      offset_ = 0;
      skipping_ = false;
    }
  }
  bool done = true;
  if (file_.valid()) {
    MESH_ASSIGN_OR_RETURN(done, read_current(!reading_live));
  }
  if (done && !reading_live) {
    // Rotated (or no file read yet): on with the files newer than the one read, oldest first.
    MESH_ASSIGN_OR_RETURN(std::vector<LogFile> files, OpenLogFiles(path_));
    size_t first = 0;
    for (size_t i = 0; file_.valid() && i < files.size(); ++i) {
      if (files[i].dev == dev_ && files[i].ino == ino_) first = i + 1;
    }
    for (size_t i = first; done && i < files.size(); ++i) {
      LogFile& file = files[i];
      const bool final = !(i + 1 == files.size() && file.live);
      file_ = std::move(file.fd);
      file_name_ = std::move(file.name);
      dev_ = file.dev;
      ino_ = file.ino;
      offset_ = 0;
      skipping_ = false;
      MESH_ASSIGN_OR_RETURN(done, read_current(final));
    }
  }
  more_ = !done;
  out.Finish();
  malformed_lines_ += out.malformed();
  return out.Take();
}

void LogFollower::Watch() {
  if (watching_) return;
  if (!inotify_.valid()) {
    inotify_.Reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_.valid()) return;  // EMFILE (max_user_instances): polling instead
  }
  const std::filesystem::path p(path_);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  watching_ = inotify_add_watch(inotify_.get(), dir.c_str(), kWatchMask) >= 0;
}

LogFollower::Stat LogFollower::StatLive() const {
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) return Stat();
  return Stat{.dev = st.st_dev,
              .ino = st.st_ino,
              .size = st.st_size,
              .mtime_ns = st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
}

bool LogFollower::WaitForChange(absl::Duration timeout) {
  if (std::exchange(first_wait_, false) || more_) return true;
  const absl::Time deadline = absl::Now() + timeout;
  if (!watching_) {
    Watch();
    // Whatever happened while nothing watched is unknown.
    if (watching_) return true;
  }
  if (watching_) return WaitForInotify(deadline);
  while (true) {
    Stat now = StatLive();
    if (now != last_stat_) {
      last_stat_ = now;
      return true;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    absl::SleepFor(std::min(left, kStatInterval));
  }
}

bool LogFollower::ReadEvents() {
  const std::string base = std::filesystem::path(path_).filename().string();
  alignas(struct inotify_event) char buf[4096];
  bool changed = false;
  bool lost_watch = false;
  ssize_t n;
  while ((n = read(inotify_.get(), buf, sizeof(buf))) > 0) {
    for (char* p = buf; p < buf + n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(p);
      if (event->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
        // The directory went (or moved): watch its path again at the next wait.
        changed = true;
        lost_watch = true;
      } else if (event->mask & IN_Q_OVERFLOW) {
        changed = true;
      } else if (event->len > 0 && RotationIndex(event->name, base).has_value()) {
        changed = true;
      }
      p += sizeof(struct inotify_event) + event->len;
    }
  }
  if (lost_watch) {
    inotify_.Reset();
    watching_ = false;
  }
  return changed;
}

bool LogFollower::WaitForInotify(absl::Time deadline) {
  while (true) {
    const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
    struct pollfd pfd = {.fd = inotify_.get(), .events = POLLIN, .revents = 0};
    // Rounded up, so that a wait does not end just before its deadline.
    const int ready =
        poll(&pfd, 1,
             static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)))));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return true;  // cannot wait: let the caller look
    if (ready == 0) return false;
    if (ReadEvents()) return true;
    if (absl::Now() >= deadline) return false;
  }
}

}  // namespace mesh::agent
