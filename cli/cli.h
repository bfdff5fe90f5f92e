#pragma once

// What every meshctl command shares: the global flags, the connection to meshd (made on first
// use), the output format, and how an action's outcome becomes output and an exit code.

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cli/client.h"
#include "cli/output.h"

namespace mesh::cli {

// Exit codes scripts can rely on (docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // meshd (or meshctl) refused or failed the operation
inline constexpr int kExitUsage = 2;   // bad flags or arguments
// exec and run: the command's own exit code, and Docker's codes for what is not the
// command's: 125 meshctl/meshd failed, 126 it could not be run, 127 it was not found.
inline constexpr int kExitExecFailed = 125;

class Cli {
 public:
  HostOptions host;
  std::string output = "table";
  int exit_code = kExitOk;

  // The client, connected on first use.
  absl::StatusOr<Client*> client();
  // The -o format (validated once parsing is done).
  Format format() const { return format_; }
  absl::Status ResolveFormat();

  // Registers `action` to run when `command` was given: its value is the exit code; an error
  // is printed as "meshctl: <message>" and exits kExitFailed (InvalidArgument: kExitUsage).
  // `own_formats`: the command reads `output` itself (graph: dot, mermaid, svg).
  void Action(CLI::App* command, std::function<absl::StatusOr<int>()> action,
              bool own_formats = false);

  // "meshctl: <message>" on stderr.
  static void Error(absl::string_view message);
  // Prints a failed call (status and what to do) and returns kExitFailed.
  int Failed(const grpc::Status& status);

 private:
  std::unique_ptr<Client> client_;
  Format format_ = Format::kTable;
};

// Prints `items` as a table (one row each from `row`) or, with -o json|yaml, as a list of the
// messages; `quiet` (ls -q): the first column of each row alone, for scripts. kExitOk.
template <typename T, typename RowFn>
int PrintItems(const Cli& cli, const google::protobuf::RepeatedPtrField<T>& items,
               std::vector<std::string> headers, RowFn row, bool quiet = false) {
  if (cli.format() != Format::kTable) {
    std::vector<const google::protobuf::Message*> list;
    for (const T& item : items) list.push_back(&item);
    std::printf("%s", RenderList(list, cli.format()).c_str());
    return kExitOk;
  }
  if (quiet) {
    for (const T& item : items) std::printf("%s\n", row(item).front().c_str());
    return kExitOk;
  }
  Table table(std::move(headers));
  for (const T& item : items) table.Add(row(item));
  std::printf("%s", table.Render().c_str());
  return kExitOk;
}

// Looks an object up by name: OK with `out` set, NOT_FOUND, or another failure.
using Getter = std::function<grpc::Status(Client& client, const std::string& name,
                                          std::unique_ptr<google::protobuf::Message>& out)>;
Getter ContainerGetter();
Getter NetworkGetter();
Getter GroupGetter();
Getter ImageGetter();
// `inspect`: each name through the first getter that knows it, all printed as one JSON list
// (YAML with -o yaml). `kinds` names what was looked for, for the not-found message.
absl::StatusOr<int> InspectEach(Cli& cli, const std::vector<std::string>& names,
                                const std::vector<Getter>& getters, absl::string_view kinds);

// After a failed parse: when a command group got no command (`meshctl net`: its commands
// listed), or the word where a command was expected names none (`meshctl pss`, `meshctl net
// lss`: the nearest one suggested), the message for it; nullopt otherwise.
std::optional<std::string> UnknownCommandMessage(const CLI::App& app);

// Each adds its commands to `app`.
void AddContainerCommands(CLI::App& app, Cli& cli);
void AddRunCommand(CLI::App& app, Cli& cli);
void AddNetworkCommands(CLI::App& app, Cli& cli);
void AddImageCommands(CLI::App& app, Cli& cli);
void AddGroupCommands(CLI::App& app, Cli& cli);
void AddSystemCommands(CLI::App& app, Cli& cli);
void AddCheckCommand(CLI::App& app, Cli& cli);

}  // namespace mesh::cli
