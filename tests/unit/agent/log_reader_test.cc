#include "agent/logs/log_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/api/convert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/shim/log_writer.h"
#include "tests/support/scoped_temp_dir.h"

namespace mesh::agent {
namespace {

using ::mesh::runtime::LogStream;
using ::mesh::runtime::LogWriter;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1796000000);
absl::Time At(int i) { return kT0 + absl::Seconds(i); }

std::vector<std::string> Data(const std::vector<v1::LogEntry>& entries) {
  std::vector<std::string> out;
  for (const v1::LogEntry& e : entries) out.push_back(e.data());
  return out;
}

// "line 0", "line 1", ... with a varying length, so that records do not line up by chance.
std::string Line(int i) { return absl::StrCat("line ", i, std::string(i % 7, '.')); }

std::vector<std::string> Lines(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(Line(i));
  return out;
}

// Long strings compared without printing them whole on a failure.
std::string Summary(const std::string& s) {
  if (s.size() <= 64) return s;
  return absl::StrCat(s.substr(0, 16), "...(", s.size(), " bytes)...", s.substr(s.size() - 16));
}
#define EXPECT_SAME(a, b)                         \
  do {                                            \
    EXPECT_EQ(Summary(a), Summary(b));            \
    EXPECT_TRUE((a) == (b)) << "contents differ"; \
  } while (0)

void AppendRaw(const std::string& path, absl::string_view data) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fd);
}

// Polls until `count` entries came or nothing more comes.
std::vector<v1::LogEntry> PollAll(LogFollower& follower, size_t count) {
  std::vector<v1::LogEntry> all;
  for (int idle = 0; all.size() < count && idle < 10;) {
    follower.WaitForChange(absl::Milliseconds(50));
    absl::StatusOr<std::vector<v1::LogEntry>> more = follower.Poll();
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok()) break;
    idle = more->empty() ? idle + 1 : 0;
    all.insert(all.end(), more->begin(), more->end());
  }
  return all;
}

class LogReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }

  LogWriter Writer(uint64_t max_size = 1 << 30, int max_files = 100) {
    absl::StatusOr<LogWriter> writer = LogWriter::Open(path_, max_size, max_files);
    EXPECT_TRUE(writer.ok()) << writer.status();
    return *std::move(writer);
  }
  // Lines [from, to) on stdout, line i at At(i).
  void WriteLines(LogWriter& writer, int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(writer.Write(LogStream::kStdout, Line(i) + "\n", At(i)).ok());
    }
  }
  uint64_t LogSize() const {
    uint64_t size = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      size += entry.file_size();
    }
    return size;
  }

  mesh::testing::ScopedTempDir dir_{"/tmp/mesh-test-logs-"};
  const std::string path_ = dir_.path() + "/container.log";
};

TEST_F(LogReaderTest, NoLogIsAnEmptyLog) {
  absl::StatusOr<LogSnapshot> snapshot = ReadLogSnapshot(path_, {});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_TRUE(snapshot->entries.empty());
  EXPECT_FALSE(snapshot->end.valid);
  absl::StatusOr<std::vector<v1::LogEntry>> in_missing_dir =
      ReadLogs(dir_.path() + "/not-yet/container.log", {.tail = 5});
  ASSERT_TRUE(in_missing_dir.ok()) << in_missing_dir.status();
  EXPECT_TRUE(in_missing_dir->empty());

  LogWriter writer = Writer();  // created, nothing written
  snapshot = ReadLogSnapshot(path_, {.tail = 3});
  ASSERT_TRUE(snapshot.ok());
  EXPECT_TRUE(snapshot->entries.empty());
  EXPECT_TRUE(snapshot->end.valid);
  EXPECT_EQ(snapshot->end.offset, 0u);
}

TEST_F(LogReaderTest, ReadsRotatedFilesOldestFirst) {
  LogWriter writer = Writer(512, 100);
  WriteLines(writer, 0, 100);
  ASSERT_TRUE(std::filesystem::exists(path_ + ".5"));
  absl::StatusOr<LogSnapshot> snapshot = ReadLogSnapshot(path_, {});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(Data(snapshot->entries), Lines(0, 100));
  const v1::LogEntry& last = snapshot->entries.back();
  EXPECT_EQ(FromProtoTimestamp(last.time()), At(99));
  EXPECT_EQ(last.stream(), v1::LOG_STREAM_STDOUT);
  EXPECT_FALSE(last.partial());
  EXPECT_EQ(snapshot->end.offset, std::filesystem::file_size(path_));
  EXPECT_EQ(snapshot->malformed_lines, 0u);
}

TEST_F(LogReaderTest, TailAcrossRotatedFilesReadsOnlyWhatItNeeds) {
  LogWriter writer = Writer(512, 150);  // about 100 files
  WriteLines(writer, 0, 1000);
  absl::StatusOr<LogSnapshot> tail = ReadLogSnapshot(path_, {.tail = 25});
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(Data(tail->entries), Lines(975, 1000));  // across 3 or 4 files
  EXPECT_LT(tail->bytes_read, LogSize() / 10);
  absl::StatusOr<std::vector<v1::LogEntry>> more_than_all = ReadLogs(path_, {.tail = 5000});
  ASSERT_TRUE(more_than_all.ok());
  EXPECT_EQ(Data(*more_than_all), Lines(0, 1000));
}

TEST_F(LogReaderTest, TailAndSinceOfABigLogReadOnlyItsEnd) {
  LogWriter writer = Writer(64 << 20, 1);
  const std::string text(64, 'x');
  int n = 0;
  while (LogSize() < (30u << 20)) {
    for (int i = 0; i < 10000; ++i, ++n) {
      ASSERT_TRUE(writer
                      .Write(i % 3 == 0 ? LogStream::kStderr : LogStream::kStdout,
                             absl::StrCat(n, " ", text, "\n"), kT0 + absl::Milliseconds(n))
                      .ok());
    }
  }
  absl::StatusOr<LogSnapshot> tail = ReadLogSnapshot(path_, {.tail = 10});
  ASSERT_TRUE(tail.ok()) << tail.status();
  ASSERT_EQ(tail->entries.size(), 10u);
  EXPECT_EQ(tail->entries.back().data(), absl::StrCat(n - 1, " ", text));
  EXPECT_EQ(tail->entries.front().data(), absl::StrCat(n - 10, " ", text));
  EXPECT_LT(tail->bytes_read, 256u << 10);

  absl::StatusOr<LogSnapshot> since =
      ReadLogSnapshot(path_, {.since = kT0 + absl::Milliseconds(n - 100)});
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(since->entries.size(), 100u);
  EXPECT_LT(since->bytes_read, 256u << 10);

  // stderr only: every third line.
  absl::StatusOr<LogSnapshot> errors =
      ReadLogSnapshot(path_, {.tail = 5, .streams = {v1::LOG_STREAM_STDERR}});
  ASSERT_TRUE(errors.ok());
  ASSERT_EQ(errors->entries.size(), 5u);
  for (const v1::LogEntry& e : errors->entries) EXPECT_EQ(e.stream(), v1::LOG_STREAM_STDERR);
  EXPECT_LT(errors->bytes_read, 256u << 10);
}

TEST_F(LogReaderTest, SinceAndTailTogether) {
  LogWriter writer = Writer(256, 100);
  WriteLines(writer, 0, 10);
  auto read = [&](LogQuery query) {
    absl::StatusOr<std::vector<v1::LogEntry>> entries = ReadLogs(path_, query);
    EXPECT_TRUE(entries.ok()) << entries.status();
    return entries.ok() ? Data(*entries) : std::vector<std::string>{};
  };
  EXPECT_EQ(read({.since = At(5)}), Lines(5, 10));  // inclusive
  EXPECT_EQ(read({.tail = 2, .since = At(5)}), Lines(8, 10));
  EXPECT_EQ(read({.tail = 8, .since = At(5)}), Lines(5, 10));
  EXPECT_EQ(read({.since = At(100)}), std::vector<std::string>{});
  EXPECT_EQ(read({.since = absl::UnixEpoch()}), Lines(0, 10));
}

TEST_F(LogReaderTest, StreamFilterCountsOnlyTheChosenStream) {
  LogWriter writer = Writer();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(writer
                    .Write(i % 2 == 0 ? LogStream::kStdout : LogStream::kStderr,
                           absl::StrCat(i % 2 == 0 ? "out " : "err ", i, "\n"), At(i))
                    .ok());
  }
  absl::StatusOr<std::vector<v1::LogEntry>> err =
      ReadLogs(path_, {.tail = 2, .streams = {v1::LOG_STREAM_STDERR}});
  ASSERT_TRUE(err.ok());
  EXPECT_THAT(Data(*err), ElementsAre("err 7", "err 9"));
  absl::StatusOr<std::vector<v1::LogEntry>> out =
      ReadLogs(path_, {.streams = {v1::LOG_STREAM_STDOUT}});
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(Data(*out), ElementsAre("out 0", "out 2", "out 4", "out 6", "out 8"));
  absl::StatusOr<std::vector<v1::LogEntry>> both = ReadLogs(path_, {.tail = 3});
  ASSERT_TRUE(both.ok());
  EXPECT_THAT(Data(*both), ElementsAre("err 7", "out 8", "err 9"));
  EXPECT_EQ((*both)[0].stream(), v1::LOG_STREAM_STDERR);
}

TEST_F(LogReaderTest, PartialRecordsJoinIntoLines) {
  LogWriter writer = Writer();
  const std::string forty_k(40 * 1024, 'a');
  // P (16 KiB), P (16 KiB), then stderr's line, then the F with the last 8 KiB.
  ASSERT_TRUE(writer.Write(LogStream::kStdout, forty_k, At(0)).ok());
  ASSERT_TRUE(writer.Write(LogStream::kStderr, "err\n", At(1)).ok());
  ASSERT_TRUE(writer.Write(LogStream::kStdout, "\n", At(2)).ok());

  absl::StatusOr<std::vector<v1::LogEntry>> all = ReadLogs(path_, {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].data(), "err");
  EXPECT_SAME((*all)[1].data(), forty_k);
  EXPECT_FALSE((*all)[1].partial());
  EXPECT_EQ(FromProtoTimestamp((*all)[1].time()), At(2));  // when the line was complete
  // A tail of one finds the whole line, back across stderr's record.
  absl::StatusOr<std::vector<v1::LogEntry>> last = ReadLogs(path_, {.tail = 1});
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->size(), 1u);
  EXPECT_SAME((*last)[0].data(), forty_k);
  absl::StatusOr<std::vector<v1::LogEntry>> err =
      ReadLogs(path_, {.tail = 1, .streams = {v1::LOG_STREAM_STDERR}});
  ASSERT_TRUE(err.ok());
  EXPECT_THAT(Data(*err), ElementsAre("err"));

  // Longer than 64 KiB: pieces of 64 KiB marked partial, then the rest. (Given to the writer at
  // once with its newline, it is a single F record.)
  const std::string hundred_k(100 * 1024, 'b');
  ASSERT_TRUE(writer.Write(LogStream::kStdout, hundred_k + "\n", At(3)).ok());
  // Unfinished when the container exits.
  ASSERT_TRUE(writer.Write(LogStream::kStdout, "half", At(4)).ok());
  ASSERT_TRUE(writer.Flush(At(4)).ok());
  absl::StatusOr<std::vector<v1::LogEntry>> tail = ReadLogs(path_, {.tail = 3});
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 3u);
  EXPECT_SAME((*tail)[0].data(), hundred_k.substr(0, kMaxEntryBytes));
  EXPECT_TRUE((*tail)[0].partial());
  EXPECT_SAME((*tail)[1].data(), hundred_k.substr(kMaxEntryBytes));
  EXPECT_FALSE((*tail)[1].partial());
  EXPECT_EQ((*tail)[2].data(), "half");
  EXPECT_TRUE((*tail)[2].partial());
}

TEST_F(LogReaderTest, MalformedLinesAreSkippedAndCounted) {
  {
    LogWriter writer = Writer();
    WriteLines(writer, 0, 3);
  }
  AppendRaw(path_, "garbage\n\n");
  AppendRaw(path_, std::string(200 * 1024, 'x') + "\n");  // longer than any record
  AppendRaw(path_, std::string("\0\0\0\n", 4));
  AppendRaw(path_, "2026-11-30T00:53:20Z stdout X bad tag\n");
  {
    LogWriter writer = Writer();
    WriteLines(writer, 3, 5);
  }
  absl::StatusOr<LogSnapshot> all = ReadLogSnapshot(path_, {});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Data(all->entries), Lines(0, 5));
  EXPECT_EQ(all->malformed_lines, 5u);
  // Backwards across the damage.
  absl::StatusOr<LogSnapshot> tail = ReadLogSnapshot(path_, {.tail = 4});
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(Data(tail->entries), Lines(1, 5));
  absl::StatusOr<LogSnapshot> last = ReadLogSnapshot(path_, {.tail = 2});
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(Data(last->entries), Lines(3, 5));
  absl::StatusOr<LogSnapshot> after = ReadLogSnapshot(path_, {.tail = 1});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Data(after->entries), Lines(4, 5));
  EXPECT_EQ(after->malformed_lines, 0u);  // the damage lies before line 3
}

TEST_F(LogReaderTest, AnUnfinishedRecordIsLeftForTheFollower) {
  LogWriter writer = Writer();
  WriteLines(writer, 0, 2);
  // A record caught in the middle of its write.
  AppendRaw(path_, "2026-11-30T00:53:22.000000000Z stdout F hal");
  absl::StatusOr<LogSnapshot> snapshot = ReadLogSnapshot(path_, {.tail = 5});
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(Data(snapshot->entries), Lines(0, 2));
  EXPECT_EQ(snapshot->malformed_lines, 0u);
  absl::StatusOr<LogFollower> follower = LogFollower::OpenAt(path_, {}, snapshot->end);
  ASSERT_TRUE(follower.ok()) << follower.status();
  AppendRaw(path_, "f\n");
  EXPECT_THAT(Data(PollAll(*follower, 1)), ElementsAre("half"));
}

TEST_F(LogReaderTest, FollowerContinuesWhereTheSnapshotEnded) {
  LogWriter writer = Writer();
  WriteLines(writer, 0, 3);
  absl::StatusOr<LogSnapshot> snapshot = ReadLogSnapshot(path_, {.tail = 1});
  ASSERT_TRUE(snapshot.ok());
  absl::StatusOr<LogFollower> follower = LogFollower::OpenAt(path_, {}, snapshot->end);
  ASSERT_TRUE(follower.ok()) << follower.status();
  WriteLines(writer, 3, 5);
  EXPECT_TRUE(follower->WaitForChange(absl::Seconds(5)));  // the first call: at once
  absl::StatusOr<std::vector<v1::LogEntry>> more = follower->Poll();
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(Data(*more), Lines(3, 5));
  EXPECT_FALSE(follower->WaitForChange(absl::Milliseconds(50)));
  more = follower->Poll();
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty());

  std::thread later([&] {
    absl::SleepFor(absl::Milliseconds(30));
    WriteLines(writer, 5, 6);
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(follower->WaitForChange(absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  later.join();
  EXPECT_EQ(Data(PollAll(*follower, 1)), Lines(5, 6));
}

TEST_F(LogReaderTest, FollowerFollowsRotations) {
  LogWriter writer = Writer(1024, 1000);
  WriteLines(writer, 0, 5);
  absl::StatusOr<LogSnapshot> snapshot = ReadLogSnapshot(path_, {});
  ASSERT_TRUE(snapshot.ok());
  absl::StatusOr<LogFollower> follower = LogFollower::OpenAt(path_, {}, snapshot->end);
  ASSERT_TRUE(follower.ok());
  // Several rotations between two polls, then one at a time.
  WriteLines(writer, 5, 205);
  std::vector<v1::LogEntry> got = PollAll(*follower, 200);
  for (int i = 205; i < 260; i += 5) {
    WriteLines(writer, i, i + 5);
    std::vector<v1::LogEntry> more = PollAll(*follower, 5);
    got.insert(got.end(), more.begin(), more.end());
  }
  EXPECT_EQ(Data(got), Lines(5, 260));
  EXPECT_TRUE(std::filesystem::exists(path_ + ".10"));
  EXPECT_EQ(follower->malformed_lines(), 0u);
}

TEST_F(LogReaderTest, FollowerCopesWithItsFileRotatedOutOfTheLog) {
  LogWriter writer = Writer(512, 2);
  WriteLines(writer, 0, 3);
  absl::StatusOr<LogFollower> follower = LogFollower::Open(path_);
  ASSERT_TRUE(follower.ok());
  WriteLines(writer, 3, 100);
  // The rest of the file it holds, then what is left of the log: each line once, in order,
  // up to the last.
  std::vector<std::string> got = Data(PollAll(*follower, 97));
  ASSERT_GE(got.size(), 2u);
  ASSERT_LT(got.size(), 97u);
  EXPECT_EQ(got.front(), Line(3));
  EXPECT_EQ(got.back(), Line(99));
  int previous = -1;
  for (const std::string& line : got) {
    int i = 0;
    // "line <i>" and i % 7 dots.
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(5, line.find('.') - 5), &i)) << line;
    EXPECT_EQ(line, Line(i));
    EXPECT_GT(i, previous);
    previous = i;
  }
}

TEST_F(LogReaderTest, FollowerCopesWithTruncation) {
  // One file: the writer truncates it instead of rotating.
  LogWriter writer = Writer(600, 1);
  absl::StatusOr<LogFollower> follower = LogFollower::Open(path_);
  ASSERT_TRUE(follower.ok());
  // Polled after every line: nothing is lost across the truncations.
  std::vector<std::string> got;
  for (int i = 0; i < 60; ++i) {
    WriteLines(writer, i, i + 1);
    absl::StatusOr<std::vector<v1::LogEntry>> more = follower->Poll();
    ASSERT_TRUE(more.ok());
    for (const auto& e : *more) got.push_back(e.data());
  }
  EXPECT_EQ(got, Lines(0, 60));
  EXPECT_LT(std::filesystem::file_size(path_), 600u);
}

TEST_F(LogReaderTest, FollowerSeesATruncationThatGrewBackPastItsOffset) {
  LogWriter writer = Writer();
  WriteLines(writer, 0, 3);
  absl::StatusOr<LogFollower> follower = LogFollower::Open(path_);
  ASSERT_TRUE(follower.ok());
  const uint64_t offset = std::filesystem::file_size(path_);
  // As the writer truncates a log of one file (its descriptor appends, so it writes at 0).
  ASSERT_EQ(truncate(path_.c_str(), 0), 0);
  WriteLines(writer, 10, 20);
  std::ifstream in(path_, std::ios::binary);
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(content.size(), offset);
  ASSERT_NE(content[offset - 1], '\n');  // what tells the follower
  EXPECT_EQ(Data(PollAll(*follower, 10)), Lines(10, 20));
}

TEST_F(LogReaderTest, FollowerStartsBeforeTheLogExists) {
  absl::StatusOr<LogSnapshot> snapshot = ReadLogSnapshot(path_, {});
  ASSERT_TRUE(snapshot.ok());
  absl::StatusOr<LogFollower> follower = LogFollower::OpenAt(path_, {}, snapshot->end);
  ASSERT_TRUE(follower.ok());
  EXPECT_TRUE(follower->WaitForChange(absl::Milliseconds(10)));
  absl::StatusOr<std::vector<v1::LogEntry>> none = follower->Poll();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(follower->WaitForChange(absl::Milliseconds(30)));
  LogWriter writer = Writer();
  WriteLines(writer, 0, 2);
  EXPECT_TRUE(follower->WaitForChange(absl::Seconds(5)));
  EXPECT_EQ(Data(PollAll(*follower, 2)), Lines(0, 2));
}

TEST_F(LogReaderTest, FollowerWithoutItsDirectoryPollsTheFile) {
  const std::string dir = dir_.path() + "/data";
  const std::string path = dir + "/container.log";
  absl::StatusOr<LogFollower> follower = LogFollower::Open(path);
  ASSERT_TRUE(follower.ok()) << follower.status();
  EXPECT_TRUE(follower->WaitForChange(absl::Milliseconds(10)));
  ASSERT_TRUE(follower->Poll().ok());
  EXPECT_FALSE(follower->WaitForChange(absl::Milliseconds(30)));
  std::filesystem::create_directory(dir);
  absl::StatusOr<LogWriter> writer = LogWriter::Open(path, 1 << 20, 2);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Write(LogStream::kStderr, "hello\n", At(0)).ok());
  EXPECT_TRUE(follower->WaitForChange(absl::Seconds(5)));
  EXPECT_THAT(Data(PollAll(*follower, 1)), ElementsAre("hello"));
}

TEST_F(LogReaderTest, OpenSkipsWhatIsStoredAndFiltersByQuery) {
  LogWriter writer = Writer();
  WriteLines(writer, 0, 3);
  absl::StatusOr<LogFollower> follower =
      LogFollower::Open(path_, {.since = At(4), .streams = {v1::LOG_STREAM_STDERR}});
  ASSERT_TRUE(follower.ok());
  ASSERT_TRUE(writer.Write(LogStream::kStderr, "early\n", At(3)).ok());
  ASSERT_TRUE(writer.Write(LogStream::kStdout, "out\n", At(4)).ok());
  ASSERT_TRUE(writer.Write(LogStream::kStderr, "err\n", At(5)).ok());
  EXPECT_THAT(Data(PollAll(*follower, 1)), ElementsAre("err"));
}

TEST_F(LogReaderTest, FollowerSendsUnfinishedLinesAsPartial) {
  LogWriter writer = Writer();
  absl::StatusOr<LogFollower> follower = LogFollower::Open(path_);
  ASSERT_TRUE(follower.ok());
  ASSERT_TRUE(writer.Write(LogStream::kStdout, "abc", At(0)).ok());
  ASSERT_TRUE(writer.Flush(At(0)).ok());  // the process exited mid-line
  std::vector<v1::LogEntry> first = PollAll(*follower, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].data(), "abc");
  EXPECT_TRUE(first[0].partial());
  ASSERT_TRUE(writer.Write(LogStream::kStdout, "def\n", At(1)).ok());
  std::vector<v1::LogEntry> second = PollAll(*follower, 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].data(), "def");
  EXPECT_FALSE(second[0].partial());
}

TEST_F(LogReaderTest, AFloodComesInPieces) {
  LogWriter writer = Writer();
  absl::StatusOr<LogFollower> follower = LogFollower::Open(path_);
  ASSERT_TRUE(follower.ok());
  ASSERT_TRUE(follower->WaitForChange(absl::ZeroDuration()));
  const std::string text(1000, 'z');
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(writer.Write(LogStream::kStdout, text + "\n", At(i)).ok());
  }
  absl::StatusOr<std::vector<v1::LogEntry>> first = follower->Poll();
  ASSERT_TRUE(first.ok());
  EXPECT_GT(first->size(), 0u);
  EXPECT_LT(first->size(), 1100u);                             // about 1 MiB of 3
  EXPECT_TRUE(follower->WaitForChange(absl::ZeroDuration()));  // more to read: at once
  std::vector<v1::LogEntry> rest = PollAll(*follower, 3000 - first->size());
  EXPECT_EQ(first->size() + rest.size(), 3000u);
}

TEST(LogQueryTest, FromRequestValidates) {
  v1::LogsRequest request;
  request.set_tail(7);
  *request.mutable_since() = ToProtoTimestamp(kT0);
  request.add_streams(v1::LOG_STREAM_STDERR);
  absl::StatusOr<LogQuery> query = LogQueryFrom(request);
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(query->tail, 7u);
  EXPECT_EQ(query->since, kT0);
  EXPECT_THAT(query->streams, ElementsAre(v1::LOG_STREAM_STDERR));

  v1::LogEntry entry;
  entry.set_stream(v1::LOG_STREAM_STDERR);
  *entry.mutable_time() = ToProtoTimestamp(kT0);
  EXPECT_TRUE(MatchesQuery(*query, entry));
  *entry.mutable_time() = ToProtoTimestamp(kT0 - absl::Nanoseconds(1));
  EXPECT_FALSE(MatchesQuery(*query, entry));
  *entry.mutable_time() = ToProtoTimestamp(kT0);
  entry.set_stream(v1::LOG_STREAM_STDOUT);
  EXPECT_FALSE(MatchesQuery(*query, entry));
  EXPECT_TRUE(MatchesQuery(LogQuery{}, entry));

  absl::StatusOr<LogQuery> none = LogQueryFrom(v1::LogsRequest());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->since, absl::InfinitePast());
  EXPECT_TRUE(none->streams.empty());

  request.add_streams(v1::LOG_STREAM_UNSPECIFIED);
  EXPECT_THAT(LogQueryFrom(request).status().message(), HasSubstr("streams[1]: 0 is not"));
  request.clear_streams();
  request.mutable_since()->set_nanos(-1);
  absl::StatusOr<LogQuery> bad_since = LogQueryFrom(request);
  EXPECT_EQ(bad_since.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_since.status().message(), HasSubstr("since: "));
}

}  // namespace
}  // namespace mesh::agent
