#include "runtime/container/image_config.h"

#include <sys/stat.h>

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/status_macros.h"

namespace mesh::runtime {
namespace {

// The file at `relative` in the merged image: the topmost layer that has it as a regular file
// wins; a whiteout (0/0 character device) above hides it.
std::string ReadFromLayers(const std::vector<std::string>& layer_dirs,
                           const std::string& relative) {
  for (const std::string& dir : layer_dirs) {
    const std::string path = dir + relative;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (!S_ISREG(st.st_mode)) return "";  // a whiteout, or not a file
    absl::StatusOr<std::string> text = ReadFile(path);
    return text.ok() ? *text : "";
  }
  return "";
}

std::string KeyOf(absl::string_view env) { return std::string(env.substr(0, env.find('='))); }

}  // namespace

absl::StatusOr<User> ResolveUser(const std::string& user, const std::string& passwd,
                                 const std::string& group) {
  std::vector<std::string> parts = absl::StrSplit(user, absl::MaxSplits(':', 1));
  const std::string& who = parts[0];
  User out;
  std::string name;
  bool gid_known = false;
  if (absl::SimpleAtoi(who, &out.uid)) {
    for (absl::string_view line : absl::StrSplit(passwd, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      uint32_t uid = 0;
      if (f.size() >= 4 && absl::SimpleAtoi(f[2], &uid) && uid == out.uid) {
        name = f[0];
        gid_known = absl::SimpleAtoi(f[3], &out.gid);
        break;
      }
    }
  } else {
    bool found = false;
    for (absl::string_view line : absl::StrSplit(passwd, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      if (f.size() >= 4 && f[0] == who && absl::SimpleAtoi(f[2], &out.uid) &&
          absl::SimpleAtoi(f[3], &out.gid)) {
        name = who;
        found = gid_known = true;
        break;
      }
    }
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat("user \"", who, "\" is not in the image's /etc/passwd"));
    }
  }
  if (parts.size() == 2) {
    const std::string& g = parts[1];
    if (!absl::SimpleAtoi(g, &out.gid)) {
      bool found = false;
      for (absl::string_view line : absl::StrSplit(group, '\n', absl::SkipEmpty())) {
        std::vector<std::string> f = absl::StrSplit(line, ':');
        if (f.size() >= 3 && f[0] == g && absl::SimpleAtoi(f[2], &out.gid)) {
          found = true;
          break;
        }
      }
      if (!found) {
        return absl::NotFoundError(
            absl::StrCat("group \"", g, "\" is not in the image's /etc/group"));
      }
    }
    gid_known = true;
  }
  if (!gid_known) out.gid = 0;
  if (!name.empty()) {
    std::set<uint32_t> extra;
    for (absl::string_view line : absl::StrSplit(group, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      uint32_t gid = 0;
      if (f.size() < 4 || !absl::SimpleAtoi(f[2], &gid) || gid == out.gid) continue;
      for (absl::string_view member : absl::StrSplit(f[3], ',', absl::SkipEmpty())) {
        if (member == name) extra.insert(gid);
      }
    }
    out.additional_gids.assign(extra.begin(), extra.end());
  }
  return out;
}

absl::Status ApplyImageConfig(const image::ImageConfig& config,
                              const std::vector<std::string>& layer_dirs, ContainerSpec& spec) {
  if (spec.process.args.empty()) {
    spec.process.args = config.entrypoint;
    spec.process.args.insert(spec.process.args.end(), config.cmd.begin(), config.cmd.end());
  }
  // The image's environment first; the spec's entries replace those of the same name.
  std::set<std::string> keys;
  for (const std::string& e : spec.process.env) keys.insert(KeyOf(e));
  std::vector<std::string> env;
  for (const std::string& e : config.env) {
    if (!keys.contains(KeyOf(e))) env.push_back(e);
  }
  env.insert(env.end(), spec.process.env.begin(), spec.process.env.end());
  spec.process.env = std::move(env);
  if (spec.process.cwd.empty()) spec.process.cwd = config.working_dir;
  const std::string user = spec.user.value_or(config.user);
  if (!user.empty()) {
    absl::StatusOr<User> resolved = ResolveUser(user, ReadFromLayers(layer_dirs, "/etc/passwd"),
                                                ReadFromLayers(layer_dirs, "/etc/group"));
    if (!resolved.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("container \"", spec.id, "\": ", resolved.status().message()));
    }
    spec.process.user = *resolved;
  }
  return absl::OkStatus();
}

}  // namespace mesh::runtime
