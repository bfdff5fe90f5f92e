#include "runtime/container/state.h"

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/status_macros.h"
#include "runtime/spec/spec_json.h"

namespace mesh::runtime {
namespace {

using nlohmann::json;

std::string TimeText(absl::Time t) {
  return t == absl::InfinitePast() ? ""
                                   : absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

absl::Time ParseTime(const std::string& text) {
  absl::Time t = absl::InfinitePast();
  if (!text.empty()) absl::ParseTime(absl::RFC3339_full, text, &t, nullptr);
  return t;
}

json Identity(const ProcessIdentity& p) { return {{"pid", p.pid}, {"startTime", p.start_time}}; }
ProcessIdentity IdentityFrom(const json& j) {
  return {j.at("pid").get<pid_t>(), j.at("startTime").get<uint64_t>()};
}

}  // namespace

ContainerPaths ContainerPaths::For(const std::string& run_root, const std::string& data_root,
                                   const std::string& id) {
  return {absl::StrCat(run_root, "/containers/", id), absl::StrCat(data_root, "/containers/", id)};
}

bool HasUserNamespace(const ContainerSpec& spec) {
  for (const NamespaceSpec& ns : spec.namespaces) {
    if (ns.type == NamespaceType::kUser) return true;
  }
  return false;
}

std::string IdMapText(const std::vector<IdMapping>& mappings) {
  std::string text;
  for (const IdMapping& m : mappings) {
    absl::StrAppend(&text, m.container_id, " ", m.host_id, " ", m.size, "\n");
  }
  return text;
}

std::optional<uint32_t> HostIdOf(const std::vector<IdMapping>& mappings, uint32_t container_id) {
  for (const IdMapping& m : mappings) {
    if (container_id >= m.container_id &&
        static_cast<uint64_t>(container_id) < static_cast<uint64_t>(m.container_id) + m.size) {
      return m.host_id + (container_id - m.container_id);
    }
  }
  return std::nullopt;
}

json ShimConfigToJson(const ShimConfig& c) {
  return {{"spec", SpecToJson(c.spec)},
          {"runDir", c.paths.run_dir},
          {"dataDir", c.paths.data_dir},
          {"lowerDirs", c.lower_dirs},
          {"cgroupParent", c.cgroup_parent}};
}

absl::StatusOr<ShimConfig> ShimConfigFromJson(const json& j) {
  try {
    ShimConfig c;
    MESH_ASSIGN_OR_RETURN(c.spec, SpecFromJson(j.at("spec")));
    c.paths.run_dir = j.at("runDir").get<std::string>();
    c.paths.data_dir = j.at("dataDir").get<std::string>();
    c.lower_dirs = j.at("lowerDirs").get<std::vector<std::string>>();
    c.cgroup_parent = j.at("cgroupParent").get<std::string>();
    return c;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("shim config: ", e.what()));
  }
}

const char* StatusName(Status status) {
  switch (status) {
    case Status::kCreated:
      return "created";
    case Status::kRunning:
      return "running";
    case Status::kStopped:
      return "stopped";
  }
  return "?";
}

json StateToJson(const ContainerState& s) {
  return {{"id", s.id},
          {"status", StatusName(s.status)},
          {"shim", Identity(s.shim)},
          {"init", Identity(s.init)},
          {"created", TimeText(s.created)},
          {"started", TimeText(s.started)},
          {"finished", TimeText(s.finished)},
          {"exitCode", s.exit_code},
          {"signal", s.signal},
          {"oomKilled", s.oom_killed},
          {"error", s.error}};
}

absl::StatusOr<ContainerState> StateFromJson(const json& j) {
  try {
    ContainerState s;
    s.id = j.at("id").get<std::string>();
    const std::string status = j.at("status").get<std::string>();
    if (status == "created") {
      s.status = Status::kCreated;
    } else if (status == "running") {
      s.status = Status::kRunning;
    } else if (status == "stopped") {
      s.status = Status::kStopped;
    } else {
      return absl::DataLossError(absl::StrCat("state: unknown status \"", status, "\""));
    }
    s.shim = IdentityFrom(j.at("shim"));
    s.init = IdentityFrom(j.at("init"));
    s.created = ParseTime(j.at("created").get<std::string>());
    s.started = ParseTime(j.at("started").get<std::string>());
    s.finished = ParseTime(j.at("finished").get<std::string>());
    s.exit_code = j.at("exitCode").get<int>();
    s.signal = j.at("signal").get<int>();
    s.oom_killed = j.at("oomKilled").get<bool>();
    s.error = j.at("error").get<std::string>();
    return s;
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("state: ", e.what()));
  }
}

absl::Status WriteState(const ContainerPaths& paths, const ContainerState& state) {
  return WriteFileAtomically(paths.state(), StateToJson(state).dump(2) + "\n", 0600);
}

absl::StatusOr<ContainerState> ReadState(const ContainerPaths& paths) {
  MESH_ASSIGN_OR_RETURN(std::string text, ReadFile(paths.state()));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::DataLossError(absl::StrCat(paths.state(), ": not JSON"));
  absl::StatusOr<ContainerState> state = StateFromJson(j);
  if (!state.ok())
    return absl::DataLossError(absl::StrCat(paths.state(), ": ", state.status().message()));
  return state;
}

}  // namespace mesh::runtime
