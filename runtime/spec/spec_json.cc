#include "runtime/spec/spec_json.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mesh::runtime {
namespace {

using nlohmann::json;

constexpr struct {
  NamespaceType type;
  const char* name;
} kNamespaceNames[] = {{NamespaceType::kPid, "pid"},         {NamespaceType::kMount, "mount"},
                       {NamespaceType::kNetwork, "network"}, {NamespaceType::kUts, "uts"},
                       {NamespaceType::kIpc, "ipc"},         {NamespaceType::kCgroup, "cgroup"},
                       {NamespaceType::kUser, "user"}};

const char* NamespaceName(NamespaceType type) {
  for (const auto& n : kNamespaceNames) {
    if (n.type == type) return n.name;
  }
  return "?";
}

json IdMappings(const std::vector<IdMapping>& mappings) {
  json out = json::array();
  for (const IdMapping& m : mappings) {
    out.push_back({{"containerID", m.container_id}, {"hostID", m.host_id}, {"size", m.size}});
  }
  return out;
}

template <typename T>
void Optional(json& out, const char* key, const std::optional<T>& value) {
  if (value) out[key] = *value;
}

}  // namespace

json SpecToJson(const ContainerSpec& spec) {
  const Process& p = spec.process;
  json rlimits = json::array();
  for (const Rlimit& r : p.rlimits) {
    rlimits.push_back({{"type", r.type}, {"soft", r.soft}, {"hard", r.hard}});
  }
  json process = {
      {"terminal", p.terminal},
      {"args", p.args},
      {"env", p.env},
      {"cwd", p.cwd},
      {"user",
       {{"uid", p.user.uid}, {"gid", p.user.gid}, {"additionalGids", p.user.additional_gids}}},
      {"rlimits", rlimits},
      {"noNewPrivileges", p.no_new_privileges}};
  if (p.capabilities) {
    process["capabilities"] = {{"bounding", p.capabilities->bounding},
                               {"effective", p.capabilities->effective},
                               {"inheritable", p.capabilities->inheritable},
                               {"permitted", p.capabilities->permitted},
                               {"ambient", p.capabilities->ambient}};
  }
  Optional(process, "oomScoreAdj", p.oom_score_adj);
  json mounts = json::array();
  for (const Mount& m : spec.mounts) {
    mounts.push_back({{"destination", m.destination},
                      {"type", m.type},
                      {"source", m.source},
                      {"options", m.options}});
  }
  json namespaces = json::array();
  for (const NamespaceSpec& n : spec.namespaces) {
    json entry = {{"type", NamespaceName(n.type)}};
    if (!n.path.empty()) entry["path"] = n.path;
    namespaces.push_back(entry);
  }
  json memory = json::object(), cpu = json::object(), pids = json::object();
  Optional(memory, "limit", spec.resources.memory_limit);
  Optional(memory, "swap", spec.resources.memory_swap);
  Optional(cpu, "quota", spec.resources.cpu_quota);
  Optional(cpu, "period", spec.resources.cpu_period);
  Optional(cpu, "shares", spec.resources.cpu_shares);
  Optional(pids, "limit", spec.resources.pids_limit);
  json devices = json::array();
  for (const DeviceRule& d : spec.resources.devices) {
    json rule = {{"allow", d.allow}, {"type", std::string(1, d.type)}, {"access", d.access}};
    Optional(rule, "major", d.major);
    Optional(rule, "minor", d.minor);
    devices.push_back(rule);
  }
  json linux = {
      {"namespaces", namespaces},
      {"uidMappings", IdMappings(spec.uid_mappings)},
      {"gidMappings", IdMappings(spec.gid_mappings)},
      {"resources", {{"memory", memory}, {"cpu", cpu}, {"pids", pids}, {"devices", devices}}},
      {"maskedPaths", spec.masked_paths},
      {"readonlyPaths", spec.readonly_paths},
      {"sysctl", spec.sysctls}};
  return {{"ociVersion", "1.0.2"},
          {"hostname", spec.hostname},
          {"process", process},
          {"root", {{"readonly", spec.readonly_root}}},
          {"mounts", mounts},
          {"linux", linux},
          {"mesh",
           {{"id", spec.id},
            {"image", spec.image},
            {"user", spec.user ? nlohmann::json(*spec.user) : nlohmann::json()},
            {"seccomp", spec.seccomp == SeccompProfile::kDefault ? "default" : "unconfined"},
            {"privileged", spec.privileged},
            {"init", spec.init},
            {"etcHosts", spec.etc_hosts},
            {"etcResolvConf", spec.etc_resolv_conf},
            {"log", {{"maxSize", spec.log.max_size}, {"maxFiles", spec.log.max_files}}}}}};
}

absl::StatusOr<ContainerSpec> SpecFromJson(const json& j) {
  // nlohmann throws on a wrong type; one try block turns any of those into a clear error.
  try {
    ContainerSpec spec;
    const json& mesh = j.at("mesh");
    spec.id = mesh.at("id").get<std::string>();
    spec.image = mesh.at("image").get<std::string>();
    if (mesh.contains("user") && !mesh.at("user").is_null()) {
      spec.user = mesh.at("user").get<std::string>();
    }
    const std::string seccomp = mesh.at("seccomp").get<std::string>();
    if (seccomp == "default") {
      spec.seccomp = SeccompProfile::kDefault;
    } else if (seccomp == "unconfined") {
      spec.seccomp = SeccompProfile::kUnconfined;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("mesh.seccomp: \"", seccomp, "\" is not default or unconfined"));
    }
    spec.privileged = mesh.at("privileged").get<bool>();
    spec.init = mesh.at("init").get<bool>();
    spec.etc_hosts = mesh.at("etcHosts").get<std::string>();
    spec.etc_resolv_conf = mesh.at("etcResolvConf").get<std::string>();
    spec.log.max_size = mesh.at("log").at("maxSize").get<uint64_t>();
    spec.log.max_files = mesh.at("log").at("maxFiles").get<int>();

    spec.hostname = j.at("hostname").get<std::string>();
    const json& p = j.at("process");
    spec.process.terminal = p.at("terminal").get<bool>();
    spec.process.args = p.at("args").get<std::vector<std::string>>();
    spec.process.env = p.at("env").get<std::vector<std::string>>();
    spec.process.cwd = p.at("cwd").get<std::string>();
    spec.process.user.uid = p.at("user").at("uid").get<uint32_t>();
    spec.process.user.gid = p.at("user").at("gid").get<uint32_t>();
    spec.process.user.additional_gids =
        p.at("user").at("additionalGids").get<std::vector<uint32_t>>();
    if (p.contains("capabilities") && !p.at("capabilities").is_null()) {
      const json& caps = p.at("capabilities");
      CapabilitySets& sets = spec.process.capabilities.emplace();
      using Set = std::pair<const char*, std::vector<std::string>*>;
      for (const Set& set : {Set{"bounding", &sets.bounding}, Set{"effective", &sets.effective},
                             Set{"inheritable", &sets.inheritable},
                             Set{"permitted", &sets.permitted}, Set{"ambient", &sets.ambient}}) {
        if (caps.contains(set.first)) {
          *set.second = caps.at(set.first).get<std::vector<std::string>>();
        }
      }
    }
    for (const json& r : p.at("rlimits")) {
      spec.process.rlimits.push_back({r.at("type").get<std::string>(), r.at("soft").get<uint64_t>(),
                                      r.at("hard").get<uint64_t>()});
    }
    spec.process.no_new_privileges = p.at("noNewPrivileges").get<bool>();
    if (p.contains("oomScoreAdj")) spec.process.oom_score_adj = p.at("oomScoreAdj").get<int>();

    spec.readonly_root = j.at("root").at("readonly").get<bool>();
    for (const json& m : j.at("mounts")) {
      spec.mounts.push_back({m.at("destination").get<std::string>(),
                             m.at("type").get<std::string>(), m.at("source").get<std::string>(),
                             m.at("options").get<std::vector<std::string>>()});
    }
    const json& linux = j.at("linux");
    for (const json& n : linux.at("namespaces")) {
      const std::string type = n.at("type").get<std::string>();
      NamespaceSpec ns{NamespaceType::kPid,
                       n.contains("path") ? n.at("path").get<std::string>() : ""};
      bool known = false;
      for (const auto& entry : kNamespaceNames) {
        if (type == entry.name) {
          ns.type = entry.type;
          known = true;
        }
      }
      if (!known) {
        return absl::InvalidArgumentError(
            absl::StrCat("linux.namespaces: unknown type \"", type, "\""));
      }
      spec.namespaces.push_back(ns);
    }
    for (const char* key : {"uidMappings", "gidMappings"}) {
      auto& out = std::string(key) == "uidMappings" ? spec.uid_mappings : spec.gid_mappings;
      for (const json& m : linux.at(key)) {
        out.push_back({m.at("containerID").get<uint32_t>(), m.at("hostID").get<uint32_t>(),
                       m.at("size").get<uint32_t>()});
      }
    }
    const json& res = linux.at("resources");
    auto opt = [](const json& obj, const char* key, auto& out) {
      if (obj.contains(key))
        out = obj.at(key).get<typename std::decay_t<decltype(out)>::value_type>();
    };
    opt(res.at("memory"), "limit", spec.resources.memory_limit);
    opt(res.at("memory"), "swap", spec.resources.memory_swap);
    opt(res.at("cpu"), "quota", spec.resources.cpu_quota);
    opt(res.at("cpu"), "period", spec.resources.cpu_period);
    opt(res.at("cpu"), "shares", spec.resources.cpu_shares);
    opt(res.at("pids"), "limit", spec.resources.pids_limit);
    if (res.contains("devices")) {
      // OCI: "type" defaults to "a" (every device), "access" to "rwm", major/minor to any.
      for (const json& d : res.at("devices")) {
        DeviceRule rule;
        rule.allow = d.at("allow").get<bool>();
        const std::string type = d.value("type", std::string("a"));
        if (type.size() != 1) {
          return absl::InvalidArgumentError(absl::StrCat("linux.resources.devices: type \"", type,
                                                         "\" is not \"a\", \"c\" or \"b\""));
        }
        rule.type = type[0];
        opt(d, "major", rule.major);
        opt(d, "minor", rule.minor);
        if (d.contains("access")) rule.access = d.at("access").get<std::string>();
        spec.resources.devices.push_back(std::move(rule));
      }
    }
    spec.masked_paths = linux.at("maskedPaths").get<std::vector<std::string>>();
    spec.readonly_paths = linux.at("readonlyPaths").get<std::vector<std::string>>();
    if (linux.contains("sysctl")) {
      spec.sysctls = linux.at("sysctl").get<std::map<std::string, std::string>>();
    }
    return spec;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("container spec: ", e.what()));
  }
}

}  // namespace mesh::runtime
