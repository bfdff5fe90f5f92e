#include "tests/support/layering.h"

#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"

namespace mesh::testing {
namespace {

// Which modules each module may include (itself included).
const std::map<std::string, std::set<std::string>>& AllowedIncludes() {
  static const auto* allowed = new std::map<std::string, std::set<std::string>>{
      {"base", {"base"}},
      {"netplane", {"base", "netplane"}},
      {"runtime", {"base", "runtime"}},
      {"agent", {"base", "netplane", "runtime", "agent", "proto"}},
      {"cli", {"base", "cli", "proto"}},
  };
  return *allowed;
}

// The module an include path belongs to, or "" for something that is not ours.
std::string ModuleOfInclude(const std::string& include) {
  if (include.starts_with("mesh/v1/")) return "proto";
  size_t slash = include.find('/');
  if (slash == std::string::npos) return "";
  std::string top = include.substr(0, slash);
  return AllowedIncludes().contains(top) ? top : "";
}

}  // namespace

std::vector<std::string> FindLayerViolations(const std::filesystem::path& root) {
  static const std::regex kInclude(R"re(^\s*#\s*include\s*"([^"]+)")re");
  std::vector<std::string> violations;
  for (const auto& [module, allowed] : AllowedIncludes()) {
    std::filesystem::path dir = root / module;
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
      std::string ext = entry.path().extension();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cc" && ext != ".in")) continue;
      std::ifstream in(entry.path());
      std::string line;
      int line_number = 0;
      while (std::getline(in, line)) {
        ++line_number;
        std::smatch m;
        if (!std::regex_search(line, m, kInclude)) continue;
        std::string target = ModuleOfInclude(m[1]);
        if (target.empty() || allowed.contains(target)) continue;
        violations.push_back(absl::StrCat(
            std::filesystem::relative(entry.path(), root).string(), ":", line_number, ": ", module,
            " may not include \"", m[1].str(), "\" (", target, " is ",
            module == "cli" ? "reached through the gRPC API only" : "a layer above or beside it",
            ")"));
      }
    }
  }
  return violations;
}

}  // namespace mesh::testing
