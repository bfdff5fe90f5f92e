#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/string_view.h"
#include "cli/cli.h"

namespace mesh::cli {

// The completion script for `shell` ("bash" or "zsh") of the command tree under `app`.
std::string CompletionScript(const CLI::App& app, absl::string_view shell);
// `meshctl completion bash|zsh`; add it last (it walks the commands added before).
void AddCompletionCommand(CLI::App& app, Cli& cli);

}  // namespace mesh::cli
