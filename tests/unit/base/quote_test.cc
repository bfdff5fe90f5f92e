#include "base/quote.h"

#include <string>

#include "gtest/gtest.h"

namespace mesh {
namespace {

TEST(QuoteTest, EscapesAndCuts) {
  EXPECT_EQ(Quote("web"), "\"web\"");
  EXPECT_EQ(Quote("a\"b\n"), "\"a\\\"b\\n\"");
  // A hex digit after an escape is escaped too, so the text reads back unambiguously.
  EXPECT_EQ(Quote(std::string("a\0b", 3)), "\"a\\x00\\x62\"");
  EXPECT_EQ(Quote("b\xff"), "\"b\\xff\"");
  EXPECT_EQ(Quote(std::string(100, 'x')), "\"" + std::string(80, 'x') + "\"... (100 bytes)");
  EXPECT_EQ(Quote("abcdef", 3), "\"abc\"... (6 bytes)");
}

}  // namespace
}  // namespace mesh
