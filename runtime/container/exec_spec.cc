#include "runtime/container/exec_spec.h"

#include "absl/strings/str_cat.h"

namespace mesh::runtime {

nlohmann::json ExecSpecToJson(const ExecSpec& s) {
  nlohmann::json j = {{"args", s.args},         {"env", s.env},   {"cwd", s.cwd},
                      {"terminal", s.terminal}, {"rows", s.rows}, {"cols", s.cols}};
  if (s.user) {
    j["user"] = {
        {"uid", s.user->uid}, {"gid", s.user->gid}, {"additionalGids", s.user->additional_gids}};
  }
  return j;
}

absl::StatusOr<ExecSpec> ExecSpecFromJson(const nlohmann::json& j) {
  try {
    ExecSpec s;
    s.args = j.at("args").get<std::vector<std::string>>();
    s.env = j.at("env").get<std::vector<std::string>>();
    s.cwd = j.at("cwd").get<std::string>();
    s.terminal = j.at("terminal").get<bool>();
    s.rows = j.at("rows").get<uint16_t>();
    s.cols = j.at("cols").get<uint16_t>();
    if (j.contains("user")) {
      s.user = User{j["user"].at("uid").get<uint32_t>(), j["user"].at("gid").get<uint32_t>(),
                    j["user"].at("additionalGids").get<std::vector<uint32_t>>()};
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("exec spec: ", e.what()));
  }
}

}  // namespace mesh::runtime
