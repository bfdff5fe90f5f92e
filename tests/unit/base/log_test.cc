#include "base/log.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace mesh::log {
namespace {

const absl::Time kTime =
    absl::FromCivil(absl::CivilSecond(2026, 11, 29, 0, 0, 0), absl::UTCTimeZone()) +
    absl::Microseconds(123456);

TEST(LogTest, JournalFormatCarriesSyslogPriorityAndNoTimestamp) {
  EXPECT_EQ(FormatLine(Format::kJournal, Level::kError, kTime, "/src/agent/main.cc", 42, "boom"),
            "<3>main.cc:42] boom\n");
  EXPECT_EQ(FormatLine(Format::kJournal, Level::kWarning, kTime, "a.cc", 1, "w"), "<4>a.cc:1] w\n");
  EXPECT_EQ(FormatLine(Format::kJournal, Level::kInfo, kTime, "a.cc", 1, "i"), "<6>a.cc:1] i\n");
  EXPECT_EQ(FormatLine(Format::kJournal, Level::kDebug, kTime, "a.cc", 1, "d"), "<7>a.cc:1] d\n");
}

TEST(LogTest, TextFormatHasUtcTimestampAndLevelLetter) {
  EXPECT_EQ(FormatLine(Format::kText, Level::kInfo, kTime, "x/y.cc", 7, "hello"),
            "2026-11-29T00:00:00.123456Z I y.cc:7] hello\n");
}

TEST(LogTest, NewlinesAreEscapedSoOneRecordIsOneLine) {
  EXPECT_EQ(FormatLine(Format::kJournal, Level::kInfo, kTime, "a.cc", 1, "two\nlines"),
            "<6>a.cc:1] two\\nlines\n");
}

TEST(LogTest, LevelThresholdDropsLowerMessagesWithoutEvaluatingThem) {
  std::vector<std::string> lines;
  SetSinkForTest([&](absl::string_view line) { lines.emplace_back(line); });
  SetFormat(Format::kJournal);
  SetLevel(Level::kWarning);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  MESH_LOG(Info) << "dropped " << count();
  MESH_LOG(Error) << "kept " << count();
  SetLevel(Level::kInfo);
  SetSinkForTest(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("<3>"), std::string::npos);
  EXPECT_NE(lines[0].find("kept 1"), std::string::npos);
  EXPECT_EQ(evaluated, 1);
}

TEST(LogTest, ParseLevel) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("INFO"), Level::kInfo);
  EXPECT_EQ(*ParseLevel("warn"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("error"), Level::kError);
  absl::StatusOr<Level> bad = ParseLevel("loud");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("\"loud\""), std::string::npos);
  EXPECT_EQ(LevelName(Level::kWarning), "warning");
}

}  // namespace
}  // namespace mesh::log
