#pragma once

// meshd's configuration: defaults, then a YAML file (--config, normally
// /etc/mesh/meshd.yaml; deploy/meshd.yaml lists every key), then command-line flags.
//
// Nothing here touches the system beyond reading the config file: paths are checked to be
// absolute, not to exist, and socket_group is not looked up.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/image/busybox.h"

namespace mesh::agent {

// The API over TCP with mutual TLS (YAML `tls:`).
struct TlsConfig {
  std::string listen;          // "host:port", "[::1]:7443"; empty: no TCP listener
  std::string cert_file;       // the server's certificate chain (PEM)
  std::string key_file;        // its private key (PEM, unencrypted)
  std::string client_ca_file;  // the CA(s) that sign the clients' certificates (PEM)

  friend bool operator==(const TlsConfig&, const TlsConfig&) = default;
};

// The embedded DNS (YAML `dns:`): meshd answers containers' names on each network's gateway
// and forwards other names upstream (docs/agent.md, "Embedded DNS").
struct DnsConfig {
  // Off: containers get the host's resolvers in /etc/resolv.conf, and no names.
  bool enabled = true;
  // Resolvers for the names mesh does not know: "ADDRESS[:PORT]" separated by commas or
  // blanks. Empty: the host's (the nameservers of /etc/resolv.conf, loopback ones skipped;
  // systemd-resolved's upstreams when it is the only one). "none": no forwarding (SERVFAIL).
  std::string upstreams;
  std::string timeout = "2s";  // each upstream's, absl duration syntax; 100ms to 30s

  friend bool operator==(const DnsConfig&, const DnsConfig&) = default;
};

struct Config {
  std::string state_dir = "/var/lib/mesh";
  std::string run_dir = "/run/mesh";
  std::string socket = "/run/mesh/meshd.sock";
  std::string log_level = "info";  // debug|info|warning|error (base/log.h ParseLevel)
  std::string default_pool = "10.88.0.0/16";
  int default_prefix_length = 24;
  std::string shim_path;               // empty: mesh-shim next to the meshd binary
  std::string cgroup_parent = "mesh";  // containers' cgroups are <hierarchy>/<this>/<name>
  std::string busybox_path = runtime::image::kDefaultBusyboxPath;
  std::string socket_group = "mesh";  // allowed on the socket besides root, if it exists
  TlsConfig tls;
  DnsConfig dns;

  friend bool operator==(const Config&, const Config&) = default;
};

// Parses a config file's text. Keys left out keep their defaults (an empty document is the
// default config); `file_name` only prefixes the messages. Every problem is reported at once:
// one InvalidArgument whose message has one line per problem, each
// "file:line:column: problem", e.g.
//   meshd.yaml:3:1: unknown key "state-dir" (did you mean "state_dir"?)
//   meshd.yaml:7:18: default_prefix_length: must be a whole number, not "big"
// Problems: YAML syntax, unknown or repeated keys, a map or list or no value where a scalar
// belongs, and any value ValidateConfig rejects on its own (relative path, unknown log level,
// ...). Checks that relate two values (prefix length against the pool, the TLS files
// together) are left to ValidateConfig, since flags may still change either value.
absl::StatusOr<Config> ParseConfig(absl::string_view yaml, absl::string_view file_name);

// Reads `path` and parses it as above. NotFound/PermissionDenied (naming the file) if it
// cannot be read.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

// Checks a whole Config: absolute paths (shim_path may be empty), log level known,
// default_pool an IPv4 CIDR, default_prefix_length between the pool's length and 30,
// cgroup_parent a name as base/names.h allows, socket_group a group name or empty (root
// only), tls.listen empty or host:port, and the three TLS files either all set (with
// tls.listen) or none. InvalidArgument listing every problem, one per line, each naming the
// YAML key ("state_dir: ...").
absl::Status ValidateConfig(const Config& config);

// meshd's command line.
struct CommandLine {
  Config config;         // valid (ValidateConfig) unless `version` or `help`
  bool version = false;  // --version: print the version and exit 0; no config is loaded
  bool help = false;     // --help: print `help_text` and exit 0
  std::string help_text;
};

// Parses meshd's arguments with CLI11: --config FILE is loaded first, then --state-dir,
// --run-dir, --socket, --log-level, --default-pool, --default-prefix-length, --shim,
// --cgroup-parent, --tls-listen, --tls-cert, --tls-key, --tls-client-ca, --dns,
// --dns-upstreams and --dns-timeout override its
// values; the result is validated. --help and --version return at once (see CommandLine). Errors:
// InvalidArgument with CLI11's message for usage errors (unknown flag, missing value),
// "--flag: problem" lines for bad flag values, the file's errors (LoadConfigFile) as they are,
// then ValidateConfig's. No exception escapes.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv);

}  // namespace mesh::agent
