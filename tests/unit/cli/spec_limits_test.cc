// TESTING.md #19 and #20 for the group spec loader: documents built to cost too much (alias
// bombs, deep nesting, huge texts, token floods) are refused quickly with a clear message, and
// thousands of random mutations of a real spec never crash it.
#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/spec/spec_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Every refusal here must come well within this; the loader's own work is milliseconds.
constexpr absl::Duration kFast = absl::Seconds(3);

struct Timed {
  absl::Status status;
  absl::Duration took;
};

Timed Load(const std::string& yaml) {
  const absl::Time start = absl::Now();
  absl::StatusOr<LoadedSpec> spec = ParseSpec(yaml, "bomb.yaml", {.base_dir = "/nonexistent"});
  return Timed{spec.status(), absl::Now() - start};
}

void ExpectRefused(const std::string& yaml, const std::string& message) {
  Timed t = Load(yaml);
  EXPECT_EQ(t.status.code(), absl::StatusCode::kInvalidArgument) << t.status;
  EXPECT_THAT(std::string(t.status.message()), HasSubstr(message));
  EXPECT_LT(t.took, kFast);
}

TEST(SpecLimitsTest, BillionLaughsIsRefused) {
  // Nine levels of ten aliases each: 10^9 nodes once expanded, 100 in the text.
  std::string yaml = "name: lol\nx-0: &l0 [lol]\n";
  for (int level = 1; level <= 9; ++level) {
    absl::StrAppend(&yaml, "x-", level, ": &l", level, " [");
    for (int k = 0; k < 10; ++k) absl::StrAppend(&yaml, k ? ", " : "", "*l", level - 1);
    absl::StrAppend(&yaml, "]\n");
  }
  absl::StrAppend(&yaml, "containers:\n  web:\n    image: busybox\n    command: *l9\n");
  ExpectRefused(yaml, "more than 100000 nodes (aliases expanded), more than a spec may have");
  // Refused while the anchors are defined: x-5 alone expands to 10^5 nodes.
  EXPECT_THAT(std::string(Load(yaml).status.message()), StartsWith("bomb.yaml:7:"));
}

TEST(SpecLimitsTest, AliasesWithinTheBudgetAreFine) {
  std::string yaml =
      "name: ok\nx-env: &env {A: \"1\", B: \"2\"}\ncontainers:\n"
      "  a: {image: busybox, environment: *env}\n  b: {image: busybox, environment: *env}\n";
  EXPECT_TRUE(Load(yaml).status.ok()) << Load(yaml).status;
}

TEST(SpecLimitsTest, DeepBlockNestingIsRefused) {
  std::string yaml = "name: deep\nlabels:\n";
  for (int depth = 1; depth <= 200; ++depth) {
    absl::StrAppend(&yaml, std::string(2 * depth, ' '), "k", depth, ":\n");
  }
  ExpectRefused(yaml, "lists and maps are nested more than 64 levels deep here");
}

TEST(SpecLimitsTest, DeepFlowNestingIsRefused) {
  ExpectRefused("name: deep\nlabels: " + std::string(1000, '[') + std::string(1000, ']') + "\n",
                "bomb.yaml:2:");
  ExpectRefused("name: deep\nlabels: " + std::string(1000, '['), "nested more than 64 levels deep");
  // Deeper than yaml-cpp's own guard (2000) and big enough to overflow a stack if it recursed.
  ExpectRefused(std::string(1 << 20, '['), "more than 20000 '[' and '{' characters");
  ExpectRefused(std::string(1 << 20, '{'), "more than 20000 '[' and '{' characters");
}

TEST(SpecLimitsTest, DeepListsOfListsAreRefused) {
  std::string yaml;
  for (int depth = 0; depth < 100; ++depth) yaml += "- ";
  yaml += "x\n";
  ExpectRefused(yaml, "nested more than 64 levels deep");
}

TEST(SpecLimitsTest, HugeDocumentsAreRefusedBeforeParsing) {
  std::string yaml = "name: big\n";
  while (yaml.size() <= (size_t{4} << 20)) yaml += "# padding padding padding padding padding\n";
  ExpectRefused(yaml, absl::StrCat("bomb.yaml: the document is ", yaml.size(),
                                   " bytes long, more than the 4194304 a spec may have"));
}

TEST(SpecLimitsTest, TokenFloodsAreRefused) {
  // Each would make yaml-cpp hold hundreds of megabytes of tokens before the first event.
  ExpectRefused("[" + std::string(3 << 20, ',') + "]", "more than 200000 of the characters");
  std::string colons = "[";
  for (int k = 0; k < 1000000; ++k) colons += ": ";
  ExpectRefused(colons, "more than 200000 of the characters");
  std::string anchors = "[";
  for (int k = 0; k < 1000000; ++k) anchors += "&a ";
  ExpectRefused(anchors, "more than 200000 of the characters");
}

TEST(SpecLimitsTest, ManyNodesAreRefused) {
  std::string yaml = "name: many\ncontainers:\n  web:\n    image: busybox\n    command:\n";
  for (int k = 0; k < 150000; ++k) yaml += "      - x\n";
  ExpectRefused(yaml, "more than 100000 nodes");
}

TEST(SpecLimitsTest, ManyProblemsAreCut) {
  std::string yaml = "name: noisy\n";
  for (int k = 0; k < 500; ++k) absl::StrAppend(&yaml, "bad", k, ": 1\n");
  Timed t = Load(yaml);
  ASSERT_FALSE(t.status.ok());
  const std::string message(t.status.message());
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 100);
  EXPECT_THAT(message, HasSubstr("\nbomb.yaml: ... and 400 more problems"));
}

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(MESH_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// TESTING.md #20, the part that runs in every unit test run: random mutations of a real spec
// (bytes flipped, YAML's indicator characters inserted, lines deleted, duplicated and
// re-indented) give a spec or INVALID_ARGUMENT, never a crash or another code.
TEST(SpecFuzzTest, MutationsOfTheExamplesNeverCrash) {
  const std::string seeds[] = {ReadSource("deploy/examples/web.yaml"),
                               ReadSource("deploy/examples/lab.yaml")};
  ASSERT_FALSE(seeds[0].empty());
  ASSERT_FALSE(seeds[1].empty());
  std::mt19937 random(20261204);
  const std::string alphabet = ":-[]{},&*!|>'\"#?%@` \n\t\\x0aZ.~<=/\xff\xc3";
  int specs = 0;
  int errors = 0;
  const absl::Time start = absl::Now();
  for (int round = 0; round < 4000; ++round) {
    std::string text = seeds[round % 2];
    const int mutations = 1 + static_cast<int>(random() % 8);
    for (int m = 0; m < mutations; ++m) {
      if (text.empty()) text = "x";
      const size_t at = random() % text.size();
      switch (random() % 7) {
        case 0:  // flip a byte
          text[at] = static_cast<char>(random() % 256);
          break;
        case 1:  // insert an indicator
          text.insert(at, 1, alphabet[random() % alphabet.size()]);
          break;
        case 2:  // delete a run
          text.erase(at, 1 + random() % 16);
          break;
        case 3: {  // duplicate a line
          const size_t begin = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at);
          const size_t end = text.find('\n', at);
          text.insert(end == std::string::npos ? text.size() : end,
                      text.substr(begin, (end == std::string::npos ? text.size() : end) - begin));
          break;
        }
        case 4:  // indent or dedent a line
          if (size_t nl = text.rfind('\n', at); nl != std::string::npos) {
            if (random() % 2) {
              text.insert(nl + 1, 2, ' ');
            } else if (text.compare(nl + 1, 2, "  ") == 0) {
              text.erase(nl + 1, 2);
            }
          }
          break;
        case 5:  // an alias or anchor
          text.insert(at, random() % 2 ? " *client " : " &a ");
          break;
        case 6:  // truncate
          text.resize(at);
          break;
      }
    }
    absl::StatusOr<LoadedSpec> spec = ParseSpec(text, "fuzz.yaml", {.base_dir = "/nonexistent"});
    if (spec.ok()) {
      ++specs;
    } else {
      ++errors;
      ASSERT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << text;
      ASSERT_FALSE(spec.status().message().empty()) << text;
      // Every line says where: the file first.
      for (absl::string_view line : absl::StrSplit(spec.status().message(), '\n')) {
        ASSERT_TRUE(absl::StartsWith(line, "fuzz.yaml:") || absl::StartsWith(line, "/"))
            << line << "\n--- for ---\n"
            << text;
      }
    }
  }
  EXPECT_EQ(specs + errors, 4000);
  EXPECT_GT(specs, 0);
  EXPECT_GT(errors, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
}

}  // namespace
}  // namespace mesh::cli
