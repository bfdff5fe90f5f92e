#include "agent/config/config.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <iterator>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agent/dns/server.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/names.h"
#include "base/status_macros.h"
#include "base/suggest.h"
#include "netplane/ipam/ip.h"
#include "netplane/ipam/pool.h"
#include "yaml-cpp/yaml.h"

namespace mesh::agent {
namespace {

using netplane::ipam::Family;
using netplane::ipam::IpPrefix;
using netplane::ipam::Pool;

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

absl::Status Invalid(absl::string_view text, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(Quote(text), " ", problem));
}

// Checks of one value. Each takes the value as text, the form both a YAML scalar and a flag
// have, so the file, the flags and ValidateConfig share them. Messages do not name the key:
// callers put it (or the flag) in front.

absl::Status CheckAbsolutePath(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("is empty; give an absolute path");
  if (text.front() != '/') return Invalid(text, "is not an absolute path");
  return absl::OkStatus();
}

absl::Status CheckAbsolutePathOrEmpty(absl::string_view text) {
  return text.empty() ? absl::OkStatus() : CheckAbsolutePath(text);
}

absl::Status CheckLogLevel(absl::string_view text) { return log::ParseLevel(text).status(); }

absl::Status CheckPool(absl::string_view text) {
  absl::StatusOr<IpPrefix> pool = IpPrefix::Parse(text);
  if (!pool.ok()) return pool.status();
  if (pool->family() != Family::kV4) return Invalid(text, "is not an IPv4 subnet");
  return absl::OkStatus();
}

absl::Status CheckPrefixLength(absl::string_view text) {
  // Digits only, as IpPrefix::Parse takes them: SimpleAtoi alone would also take "+24" and
  // " 24". A minus sign gets through to the range message.
  absl::string_view digits = absl::StripPrefix(text, "-");
  int length = 0;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(text, &length)) {
    return absl::InvalidArgumentError(absl::StrCat("must be a whole number, not ", Quote(text)));
  }
  if (length < 0 || length > Pool::kMaxV4PrefixLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(length, " is not between 0 and ", Pool::kMaxV4PrefixLength,
                     " (a network needs room for a gateway and a container)"));
  }
  return absl::OkStatus();
}

// Empty: only root may use the socket. Otherwise the portable name set groupadd accepts by
// default (letters, digits, '.', '_', '-', not starting with '-', at most 32 characters).
absl::Status CheckGroupName(absl::string_view text) {
  if (text.empty()) return absl::OkStatus();
  bool valid =
      text.size() <= 32 && text.front() != '-' && std::all_of(text.begin(), text.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
      });
  if (!valid) {
    return Invalid(text, "is not a group name (letters, digits, '.', '_', '-'; at most 32)");
  }
  return absl::OkStatus();
}

// The cgroup (under each hierarchy's root) that containers' cgroups go in: one name, as
// mesh names its objects (base/names.h), so it can never climb out of the hierarchy.
absl::Status CheckCgroupParent(absl::string_view text) {
  if (!ValidateName(NameKind::kGroup, text).ok()) {
    return Invalid(text, "is not a cgroup name (1-63 of a-z, 0-9 and '-')");
  }
  return absl::OkStatus();
}

// "host:port" as gRPC takes it: "0.0.0.0:7443", "localhost:7443", "[::1]:7443".
absl::Status CheckListen(absl::string_view text) {
  if (text.empty()) return absl::OkStatus();
  absl::string_view host;
  absl::string_view port;
  if (text.front() == '[') {
    size_t close = text.find("]:");
    if (close == absl::string_view::npos) {
      return Invalid(text, "is not [address]:port, e.g. \"[::1]:7443\"");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return Invalid(text, "is not host:port, e.g. \"0.0.0.0:7443\"");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (absl::StrContains(host, ':')) {
      return Invalid(text, "has an IPv6 address without brackets; write \"[::1]:7443\"");
    }
  }
  if (host.empty()) {
    return Invalid(
        text, absl::StrCat("has no host; \"0.0.0.0:", port, "\" listens on every IPv4 address"));
  }
  int number = 0;
  if (port.empty() || !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) {
    return Invalid(text, absl::StrCat("has port ", Quote(port), "; use a number from 1 to 65535"));
  }
  return absl::OkStatus();
}

absl::Status CheckBool(absl::string_view text) {
  if (text == "true" || text == "false") return absl::OkStatus();
  return Invalid(text, "is not true or false");
}

// "none", or upstreams as dns::ParseUpstreams takes them ("" is the host's).
absl::Status CheckUpstreams(absl::string_view text) {
  if (text == "none") return absl::OkStatus();
  absl::Status status = dns::ParseUpstreams(text).status();
  if (!status.ok())
    return Invalid(text, absl::StrCat("is not a list of upstreams: ", status.message()));
  return absl::OkStatus();
}

absl::Status CheckDnsTimeout(absl::string_view text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d)) {
    return Invalid(text, "is not a duration (\"2s\", \"500ms\")");
  }
  if (d < absl::Milliseconds(100) || d > absl::Seconds(30)) {
    return Invalid(text, "is out of range; use 100ms to 30s");
  }
  return absl::OkStatus();
}

// One configuration value: its YAML key, its flag and where it lives in Config.
struct Field {
  absl::string_view key;        // "tls.cert" is `cert:` inside `tls:`
  absl::string_view flag;       // empty: the file only
  absl::string_view type_name;  // for --help
  absl::string_view help;
  absl::Status (*check)(absl::string_view text);
  // Exactly one of these three says where the value lives.
  std::string* (*text)(Config& config) = nullptr;
  int* (*number)(Config& config) = nullptr;
  bool* (*boolean)(Config& config) = nullptr;
};

constexpr Field kFields[] = {
    {.key = "state_dir",
     .flag = "--state-dir",
     .type_name = "DIR",
     .help = "Crash-safe state (containers, networks, leases, images)",
     .check = CheckAbsolutePath,
     .text = [](Config& c) { return &c.state_dir; }},
    {.key = "run_dir",
     .flag = "--run-dir",
     .type_name = "DIR",
     .help = "Runtime files, gone after a reboot",
     .check = CheckAbsolutePath,
     .text = [](Config& c) { return &c.run_dir; }},
    {.key = "socket",
     .flag = "--socket",
     .type_name = "PATH",
     .help = "The API's unix socket",
     .check = CheckAbsolutePath,
     .text = [](Config& c) { return &c.socket; }},
    {.key = "log_level",
     .flag = "--log-level",
     .type_name = "LEVEL",
     .help = "debug, info, warning or error",
     .check = CheckLogLevel,
     .text = [](Config& c) { return &c.log_level; }},
    {.key = "default_pool",
     .flag = "--default-pool",
     .type_name = "CIDR",
     .help = "IPv4 pool that networks without a subnet get theirs from",
     .check = CheckPool,
     .text = [](Config& c) { return &c.default_pool; }},
    {.key = "default_prefix_length",
     .flag = "--default-prefix-length",
     .type_name = "N",
     .help = "Prefix length of the subnets taken from the default pool",
     .check = CheckPrefixLength,
     .number = [](Config& c) { return &c.default_prefix_length; }},
    {.key = "shim_path",
     .flag = "--shim",
     .type_name = "PATH",
     .help = "mesh-shim binary (default: next to meshd)",
     .check = CheckAbsolutePathOrEmpty,
     .text = [](Config& c) { return &c.shim_path; }},
    {.key = "cgroup_parent",
     .flag = "--cgroup-parent",
     .type_name = "NAME",
     .help = "cgroup the containers' cgroups are made in",
     .check = CheckCgroupParent,
     .text = [](Config& c) { return &c.cgroup_parent; }},
    {.key = "busybox_path",
     .check = CheckAbsolutePath,
     .text = [](Config& c) { return &c.busybox_path; }},
    {.key = "socket_group",
     .check = CheckGroupName,
     .text = [](Config& c) { return &c.socket_group; }},
    {.key = "tls.listen",
     .flag = "--tls-listen",
     .type_name = "HOST:PORT",
     .help = "Also serve the API over TCP with mutual TLS",
     .check = CheckListen,
     .text = [](Config& c) { return &c.tls.listen; }},
    {.key = "tls.cert",
     .flag = "--tls-cert",
     .type_name = "FILE",
     .help = "Server certificate chain (PEM)",
     .check = CheckAbsolutePathOrEmpty,
     .text = [](Config& c) { return &c.tls.cert_file; }},
    {.key = "tls.key",
     .flag = "--tls-key",
     .type_name = "FILE",
     .help = "Server private key (PEM)",
     .check = CheckAbsolutePathOrEmpty,
     .text = [](Config& c) { return &c.tls.key_file; }},
    {.key = "tls.client_ca",
     .flag = "--tls-client-ca",
     .type_name = "FILE",
     .help = "CA certificates that sign client certificates (PEM)",
     .check = CheckAbsolutePathOrEmpty,
     .text = [](Config& c) { return &c.tls.client_ca_file; }},
    {.key = "dns.enabled",
     .flag = "--dns",
     .type_name = "BOOL",
     .help = "Answer containers' names on each network's gateway",
     .check = CheckBool,
     .boolean = [](Config& c) { return &c.dns.enabled; }},
    {.key = "dns.upstreams",
     .flag = "--dns-upstreams",
     .type_name = "LIST",
     .help = "Resolvers for other names: ADDR[:PORT],... or none (default: the host's)",
     .check = CheckUpstreams,
     .text = [](Config& c) { return &c.dns.upstreams; }},
    {.key = "dns.timeout",
     .flag = "--dns-timeout",
     .type_name = "DURATION",
     .help = "How long each upstream is given",
     .check = CheckDnsTimeout,
     .text = [](Config& c) { return &c.dns.timeout; }},
};

std::string FieldText(const Field& field, Config& config) {
  if (field.text != nullptr) return *field.text(config);
  if (field.boolean != nullptr) return *field.boolean(config) ? "true" : "false";
  return absl::StrCat(*field.number(config));
}

absl::Status SetField(const Field& field, absl::string_view text, Config& config) {
  MESH_RETURN_IF_ERROR(field.check(text));
  if (field.text != nullptr) {
    *field.text(config) = std::string(text);
  } else if (field.boolean != nullptr) {
    *field.boolean(config) = text == "true";
  } else if (!absl::SimpleAtoi(text, field.number(config))) {
    return absl::InternalError(absl::StrCat("checked number ", Quote(text), " did not parse"));
  }
  return absl::OkStatus();
}

const Field* FindField(absl::string_view key) {
  for (const Field& field : kFields) {
    if (field.key == key) return &field;
  }
  return nullptr;
}

// True for "tls": a key that holds a map of fields.
bool IsGroup(absl::string_view key) {
  return std::any_of(std::begin(kFields), std::end(kFields), [&](const Field& field) {
    return absl::StartsWith(field.key, key) && field.key.size() > key.size() &&
           field.key[key.size()] == '.';
  });
}

// The keys a map at `prefix` ("" or "tls.") may hold, with the prefix, in table order.
std::vector<std::string> KeysUnder(absl::string_view prefix) {
  std::vector<std::string> keys;
  for (const Field& field : kFields) {
    if (!absl::StartsWith(field.key, prefix)) continue;
    absl::string_view rest = field.key.substr(prefix.size());
    std::string key = absl::StrCat(prefix, rest.substr(0, rest.find('.')));
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
  }
  return keys;
}

std::string UnknownKeyMessage(absl::string_view key, absl::string_view prefix) {
  std::vector<std::string> known = KeysUnder(prefix);
  std::vector<std::string> bare;
  bare.reserve(known.size());
  for (const std::string& candidate : known) bare.push_back(candidate.substr(prefix.size()));
  if (std::optional<std::string> best = ClosestMatch(key.substr(prefix.size()), bare)) {
    return absl::StrCat("unknown key ", Quote(key), " (did you mean ",
                        Quote(absl::StrCat(prefix, *best)), "?)");
  }
  return absl::StrCat("unknown key ", Quote(key), " (known keys: ", absl::StrJoin(known, ", "),
                      ")");
}

absl::string_view KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "map";
    case YAML::NodeType::Sequence:
      return "list";
    case YAML::NodeType::Null:
      return "null";
    default:
      return "string";
  }
}

absl::Status ErrorList(const std::vector<std::string>& errors) {
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

// Walks the YAML document into a Config, collecting every problem with its position.
class YamlReader {
 public:
  explicit YamlReader(absl::string_view file_name) : file_name_(file_name) {}

  void Error(const YAML::Mark& mark, absl::string_view message) {
    if (mark.is_null()) {
      errors_.push_back(absl::StrCat(file_name_, ": ", message));
    } else {
      errors_.push_back(
          absl::StrCat(file_name_, ":", mark.line + 1, ":", mark.column + 1, ": ", message));
    }
  }

  // `prefix` is "" for the document, "tls." for the map under `tls`.
  void ReadMap(const YAML::Node& map, const std::string& prefix, Config& config) {
    if (!map.IsMap()) {
      std::string what =
          prefix.empty() ? "the config" : std::string(prefix.substr(0, prefix.size() - 1));
      Error(map.Mark(),
            absl::StrCat(what, " must be a map (", absl::StrJoin(KeysUnder(prefix), ", "),
                         "), not a ", KindName(map)));
      return;
    }
    std::map<std::string, int> first_line;
    for (const auto& entry : map) {
      const YAML::Node& key_node = entry.first;
      const YAML::Node& value = entry.second;
      if (!key_node.IsScalar()) {
        Error(key_node.Mark(), absl::StrCat("a key must be a string, not a ", KindName(key_node)));
        continue;
      }
      std::string key = absl::StrCat(prefix, key_node.Scalar());
      auto [seen, inserted] = first_line.emplace(key, key_node.Mark().line + 1);
      if (!inserted) {
        Error(key_node.Mark(),
              absl::StrCat("duplicate key ", Quote(key), " (first at line ", seen->second, ")"));
        continue;
      }
      if (IsGroup(key)) {
        // `tls:` with every entry commented out is no TLS.
        if (!value.IsNull()) ReadMap(value, absl::StrCat(key, "."), config);
        continue;
      }
      const Field* field = FindField(key);
      if (field == nullptr) {
        Error(key_node.Mark(), UnknownKeyMessage(key, prefix));
        continue;
      }
      if (value.IsNull()) {
        Error(key_node.Mark(),
              absl::StrCat(key, ": has no value (leave the key out for the default)"));
        continue;
      }
      if (!value.IsScalar()) {
        Error(value.Mark(), absl::StrCat(key, ": must be a single value, not a ", KindName(value)));
        continue;
      }
      if (absl::Status status = SetField(*field, value.Scalar(), config); !status.ok()) {
        Error(value.Mark(), absl::StrCat(key, ": ", status.message()));
      }
    }
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string file_name_;
  std::vector<std::string> errors_;
};

}  // namespace

absl::StatusOr<Config> ParseConfig(absl::string_view yaml, absl::string_view file_name) {
  YamlReader reader(file_name);
  YAML::Node document;
  try {
    document = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    reader.Error(e.mark, e.msg);
    return ErrorList(reader.errors());
  }
  Config config;
  // An empty file, or one of comments only, is the default config.
  if (!document.IsNull()) {
    try {
      reader.ReadMap(document, "", config);
    } catch (const YAML::Exception& e) {
      reader.Error(e.mark, e.msg);
    }
  }
  MESH_RETURN_IF_ERROR(ErrorList(reader.errors()));
  return config;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return Annotate(text.status(), "load config file");
  return ParseConfig(*text, path);
}

absl::Status ValidateConfig(const Config& config) {
  Config copy = config;  // the field accessors take a mutable Config
  std::vector<std::string> errors;
  for (const Field& field : kFields) {
    if (absl::Status status = field.check(FieldText(field, copy)); !status.ok()) {
      errors.push_back(absl::StrCat(field.key, ": ", status.message()));
    }
  }

  absl::StatusOr<IpPrefix> pool = IpPrefix::Parse(config.default_pool);
  if (pool.ok() && pool->family() == Family::kV4 && config.default_prefix_length < pool->length()) {
    errors.push_back(absl::StrCat("default_prefix_length: /", config.default_prefix_length,
                                  " is shorter than default_pool ", pool->ToString(),
                                  "; subnets are taken from the pool, so use /", pool->length(),
                                  " to /", Pool::kMaxV4PrefixLength));
  }

  const std::pair<absl::string_view, const std::string*> tls_files[] = {
      {"cert", &config.tls.cert_file},
      {"key", &config.tls.key_file},
      {"client_ca", &config.tls.client_ca_file}};
  std::vector<absl::string_view> missing;
  for (const auto& [name, file] : tls_files) {
    if (file->empty()) missing.push_back(name);
  }
  if (!missing.empty() && missing.size() < std::size(tls_files)) {
    errors.push_back(absl::StrCat("tls: cert, key and client_ca go together; missing: ",
                                  absl::StrJoin(missing, ", ")));
  } else if (!config.tls.listen.empty() && !missing.empty()) {
    errors.push_back(absl::StrCat("tls.listen: ", Quote(config.tls.listen),
                                  " needs tls.cert, tls.key and tls.client_ca (the API is served "
                                  "over TCP with mutual TLS only)"));
  } else if (config.tls.listen.empty() && missing.empty()) {
    errors.push_back("tls: cert, key and client_ca are set but tls.listen is empty");
  }
  return ErrorList(errors);
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CLI::App app{"meshd: the mesh agent (containers and networks for one Linux host)", "meshd"};
  std::string config_file;
  bool version = false;
  app.add_option("--config", config_file,
                 "YAML config file (every key: deploy/meshd.yaml); the flags below override it")
      ->type_name("FILE");
  app.add_flag("--version", version, "Print version information and exit");

  Config defaults;
  std::array<std::string, std::size(kFields)> values;
  std::array<CLI::Option*, std::size(kFields)> options{};
  for (size_t i = 0; i < std::size(kFields); ++i) {
    const Field& field = kFields[i];
    if (field.flag.empty()) continue;
    options[i] = app.add_option(std::string(field.flag), values[i],
                                absl::StrCat(field.help, " (", field.key, ")"))
                     ->type_name(std::string(field.type_name))
                     ->default_str(FieldText(field, defaults));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success&) {  // --help
    return CommandLine{.help = true, .help_text = app.help()};
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (version) return CommandLine{.version = true};

  CommandLine result;
  if (!config_file.empty()) {
    MESH_ASSIGN_OR_RETURN(result.config, LoadConfigFile(config_file));
  }
  std::vector<std::string> errors;
  for (size_t i = 0; i < std::size(kFields); ++i) {
    if (options[i] == nullptr || options[i]->count() == 0) continue;
    if (absl::Status status = SetField(kFields[i], values[i], result.config); !status.ok()) {
      errors.push_back(absl::StrCat(kFields[i].flag, ": ", status.message()));
    }
  }
  MESH_RETURN_IF_ERROR(ErrorList(errors));
  MESH_RETURN_IF_ERROR(ValidateConfig(result.config));
  return result;
}

}  // namespace mesh::agent
