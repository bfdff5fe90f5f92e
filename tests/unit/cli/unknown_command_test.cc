#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "cli/cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::cli {
namespace {

using ::testing::Optional;

// The shape of meshctl's tree: fallthrough, a required command at every level.
std::optional<std::string> MessageFor(std::vector<std::string> args) {
  CLI::App app{"test", "meshctl"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("-o,--output", "format");
  CLI::App* net = app.add_subcommand("net", "")->alias("network");
  net->require_subcommand(1);
  net->add_subcommand("ls", "");
  net->add_subcommand("create", "")->add_option("name", "");
  app.add_subcommand("ps", "")->add_flag("-a");
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::ParseError&) {
    return UnknownCommandMessage(app);
  }
  ADD_FAILURE() << "parsed";
  return std::nullopt;
}

TEST(UnknownCommand, NamesTheWordAndTheNearestCommand) {
  EXPECT_THAT(MessageFor({"pss"}),
              Optional(std::string("meshctl: \"pss\" is not a meshctl command; did you mean "
                                   "\"ps\"?\nRun 'meshctl --help' for the commands.")));
  EXPECT_THAT(MessageFor({"net", "lss"}),
              Optional(std::string("meshctl net: \"lss\" is not a meshctl net command; did you "
                                   "mean \"ls\"?\nRun 'meshctl net --help' for the commands.")));
  EXPECT_THAT(MessageFor({"-o", "json", "network", "craete"}),
              Optional(::testing::HasSubstr("did you mean \"create\"?")));
  EXPECT_THAT(MessageFor({"zzzzzz"}),
              Optional(std::string("meshctl: \"zzzzzz\" is not a meshctl command\nRun 'meshctl "
                                   "--help' for the commands.")));
}

TEST(UnknownCommand, AGroupWithoutACommandListsItsCommands) {
  EXPECT_THAT(MessageFor({"net"}),
              Optional(std::string("meshctl net: a command is needed: ls, create\nRun 'meshctl "
                                   "net --help' for more.")));
}

TEST(UnknownCommand, OtherErrorsKeepCli11sMessage) {
  EXPECT_EQ(MessageFor({"ps", "--bogus"}), std::nullopt);
  EXPECT_EQ(MessageFor({"ps", "extra"}), std::nullopt);
  EXPECT_EQ(MessageFor({"--bogus"}), std::nullopt);
}

}  // namespace
}  // namespace mesh::cli
