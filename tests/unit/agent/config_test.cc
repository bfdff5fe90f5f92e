#include "agent/config/config.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/image/busybox.h"
#include "tests/support/scoped_temp_dir.h"

namespace mesh::agent {
namespace {

using ::testing::HasSubstr;

// The message of a failed parse of `yaml` as "f.yaml"; "" if it parsed.
std::string ParseError(const std::string& yaml) {
  absl::StatusOr<Config> config = ParseConfig(yaml, "f.yaml");
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

// The message of ValidateConfig(config); "" if valid.
std::string ValidationError(const Config& config) {
  absl::Status status = ValidateConfig(config);
  if (status.ok()) return "";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

absl::StatusOr<CommandLine> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "meshd");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

// Tests that read a config file from a temp dir.
class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  // Writes `yaml` to meshd.yaml in the temp dir; returns its path.
  std::string Write(const std::string& yaml) {
    std::string path = dir_.path() + "/meshd.yaml";
    EXPECT_TRUE(WriteFileAtomically(path, yaml).ok());
    return path;
  }
  testing::ScopedTempDir dir_{"/tmp/mesh-config-test-"};
};

Config ValidTls() {
  Config config;
  config.tls = {.listen = "0.0.0.0:7443",
                .cert_file = "/etc/mesh/tls/server.pem",
                .key_file = "/etc/mesh/tls/server.key",
                .client_ca_file = "/etc/mesh/tls/ca.pem"};
  return config;
}

TEST(ConfigTest, DefaultsAreValid) {
  Config config;
  EXPECT_EQ(config.busybox_path, runtime::image::kDefaultBusyboxPath);
  EXPECT_TRUE(ValidateConfig(config).ok());
  EXPECT_TRUE(ValidateConfig(ValidTls()).ok());
}

TEST(ConfigTest, EmptyOrCommentOnlyFileIsTheDefaults) {
  EXPECT_EQ(*ParseConfig("", "f.yaml"), Config{});
  EXPECT_EQ(*ParseConfig("# nothing set\n\n", "f.yaml"), Config{});
  EXPECT_EQ(*ParseConfig("tls:\n  # listen: 0.0.0.0:7443\n", "f.yaml"), Config{});
}

TEST(ConfigTest, ShippedConfigFileHasEveryKeyAtItsDefault) {
  const std::string path = MESH_SOURCE_DIR "/deploy/meshd.yaml";
  absl::StatusOr<Config> config = LoadConfigFile(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, Config{});

  absl::StatusOr<std::string> text = ReadFile(path);
  ASSERT_TRUE(text.ok());
  for (const char* key : {"state_dir:", "run_dir:", "socket:", "log_level:", "default_pool:",
                          "default_prefix_length:", "shim_path:", "cgroup_parent:", "busybox_path:",
                          "socket_group:", "tls:", "listen:", "cert:", "key:", "client_ca:", "dns:",
                          "enabled:", "upstreams:", "timeout:"}) {
    EXPECT_THAT(*text, HasSubstr(key));
  }
}

TEST(ConfigTest, EveryKey) {
  absl::StatusOr<Config> config = ParseConfig(R"(
state_dir: /srv/mesh/state
run_dir: /srv/mesh/run
socket: /srv/mesh/run/api.sock
log_level: debug
default_pool: 10.200.0.0/14
default_prefix_length: 26
shim_path: /opt/mesh/libexec/mesh-shim
cgroup_parent: mesh-test
busybox_path: /opt/busybox/busybox
socket_group: meshusers
tls:
  listen: "[::]:7443"
  cert: /etc/mesh/tls/server.pem
  key: /etc/mesh/tls/server.key
  client_ca: /etc/mesh/tls/ca.pem
dns:
  enabled: false
  upstreams: 203.0.113.53, 198.51.100.53:5353
  timeout: 500ms
)",
                                              "f.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  Config want{
      .state_dir = "/srv/mesh/state",
      .run_dir = "/srv/mesh/run",
      .socket = "/srv/mesh/run/api.sock",
      .log_level = "debug",
      .default_pool = "10.200.0.0/14",
      .default_prefix_length = 26,
      .shim_path = "/opt/mesh/libexec/mesh-shim",
      .cgroup_parent = "mesh-test",
      .busybox_path = "/opt/busybox/busybox",
      .socket_group = "meshusers",
      .tls = {.listen = "[::]:7443",
              .cert_file = "/etc/mesh/tls/server.pem",
              .key_file = "/etc/mesh/tls/server.key",
              .client_ca_file = "/etc/mesh/tls/ca.pem"},
      .dns = {
          .enabled = false, .upstreams = "203.0.113.53, 198.51.100.53:5353", .timeout = "500ms"}};
  EXPECT_EQ(*config, want);
  EXPECT_TRUE(ValidateConfig(*config).ok());
}

TEST(ConfigTest, KeysLeftOutKeepTheirDefaults) {
  absl::StatusOr<Config> config = ParseConfig("log_level: warning\n", "f.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  Config want;
  want.log_level = "warning";
  EXPECT_EQ(*config, want);
}

TEST(ConfigTest, UnknownKeysSuggestTheNearestKnownOne) {
  EXPECT_EQ(ParseError("state-dir: /x\n"),
            "f.yaml:1:1: unknown key \"state-dir\" (did you mean \"state_dir\"?)");
  EXPECT_EQ(ParseError("\nlogLevel: info\n"),
            "f.yaml:2:1: unknown key \"logLevel\" (did you mean \"log_level\"?)");
  EXPECT_EQ(ParseError("shim: /x\n"),
            "f.yaml:1:1: unknown key \"shim\" (did you mean \"shim_path\"?)");
  EXPECT_EQ(ParseError("tls:\n  listen: \"\"\n  cer: /x\n"),
            "f.yaml:3:3: unknown key \"tls.cer\" (did you mean \"tls.cert\"?)");
  EXPECT_EQ(ParseError("tls:\n  ca: /x\n"),
            "f.yaml:2:3: unknown key \"tls.ca\" (known keys: tls.listen, tls.cert, tls.key, "
            "tls.client_ca)");
  EXPECT_EQ(ParseError("networks: []\n"),
            "f.yaml:1:1: unknown key \"networks\" (known keys: state_dir, run_dir, socket, "
            "log_level, default_pool, default_prefix_length, shim_path, cgroup_parent, "
            "busybox_path, socket_group, tls, dns)");
}

TEST(ConfigTest, WrongTypesNameTheirPosition) {
  EXPECT_EQ(ParseError("state_dir: [/a, /b]\n"),
            "f.yaml:1:12: state_dir: must be a single value, not a list");
  EXPECT_EQ(ParseError("socket:\n  path: /x\n"),
            "f.yaml:2:3: socket: must be a single value, not a map");
  EXPECT_EQ(ParseError("run_dir:\n"),
            "f.yaml:1:1: run_dir: has no value (leave the key out for the default)");
  EXPECT_EQ(ParseError("default_prefix_length: big\n"),
            "f.yaml:1:24: default_prefix_length: must be a whole number, not \"big\"");
  EXPECT_EQ(ParseError("tls: yes\n"),
            "f.yaml:1:6: tls must be a map (tls.listen, tls.cert, tls.key, tls.client_ca), not "
            "a string");
  EXPECT_EQ(ParseError("- state_dir\n"),
            "f.yaml:1:1: the config must be a map (state_dir, run_dir, socket, log_level, "
            "default_pool, default_prefix_length, shim_path, cgroup_parent, busybox_path, "
            "socket_group, tls, dns), not a list");
  EXPECT_EQ(ParseError("[a]: 1\n"), "f.yaml:1:1: a key must be a string, not a list");
}

TEST(ConfigTest, BadValuesNameTheirPosition) {
  EXPECT_EQ(ParseError("state_dir: var/lib/mesh\n"),
            "f.yaml:1:12: state_dir: \"var/lib/mesh\" is not an absolute path");
  EXPECT_EQ(ParseError("socket: \"\"\n"), "f.yaml:1:9: socket: is empty; give an absolute path");
  EXPECT_EQ(ParseError("log_level: verbose\n"),
            "f.yaml:1:12: log_level: log level \"verbose\" is not known; use one of debug, info, "
            "warning, error");
  EXPECT_EQ(ParseError("default_pool: 10.88.0.0\n"),
            "f.yaml:1:15: default_pool: subnet \"10.88.0.0\": missing prefix length (write "
            "address/length, e.g. 10.88.0.0/16)");
  EXPECT_EQ(ParseError("default_pool: fd00:88::/64\n"),
            "f.yaml:1:15: default_pool: \"fd00:88::/64\" is not an IPv4 subnet");
  EXPECT_EQ(ParseError("default_prefix_length: 31\n"),
            "f.yaml:1:24: default_prefix_length: 31 is not between 0 and 30 (a network needs "
            "room for a gateway and a container)");
  EXPECT_EQ(ParseError("shim_path: mesh-shim\n"),
            "f.yaml:1:12: shim_path: \"mesh-shim\" is not an absolute path");
  EXPECT_EQ(ParseError("cgroup_parent: ../escape\n"),
            "f.yaml:1:16: cgroup_parent: \"../escape\" is not a cgroup name (1-63 of a-z, 0-9 and "
            "'-')");
  EXPECT_EQ(ParseError("socket_group: \"mesh users\"\n"),
            "f.yaml:1:15: socket_group: \"mesh users\" is not a group name (letters, digits, "
            "'.', '_', '-'; at most 32)");
  EXPECT_EQ(ParseError("tls:\n  listen: 7443\n"),
            "f.yaml:2:11: tls.listen: \"7443\" is not host:port, e.g. \"0.0.0.0:7443\"");
  EXPECT_EQ(ParseError("tls:\n  key: key.pem\n"),
            "f.yaml:2:8: tls.key: \"key.pem\" is not an absolute path");
}

TEST(ConfigTest, RepeatedKeysAreErrors) {
  EXPECT_EQ(ParseError("socket: /a.sock\nlog_level: info\nsocket: /b.sock\n"),
            "f.yaml:3:1: duplicate key \"socket\" (first at line 1)");
}

TEST(ConfigTest, SyntaxErrorsNameTheirPosition) {
  EXPECT_THAT(ParseError("state_dir: [/a\nlog_level: info\n"), ::testing::StartsWith("f.yaml:"));
  EXPECT_THAT(ParseError("a: b: c\n"), ::testing::MatchesRegex("f\\.yaml:1:[0-9]+: .+"));
}

TEST(ConfigTest, EveryProblemIsReportedAtOnce) {
  EXPECT_EQ(ParseError(R"(state_dir: relative
statedir: /x
log_level: loud
tls:
  listen: ":7443"
  cert: [a]
default_prefix_length: -1
)"),
            "f.yaml:1:12: state_dir: \"relative\" is not an absolute path\n"
            "f.yaml:2:1: unknown key \"statedir\" (did you mean \"state_dir\"?)\n"
            "f.yaml:3:12: log_level: log level \"loud\" is not known; use one of debug, info, "
            "warning, error\n"
            "f.yaml:5:11: tls.listen: \":7443\" has no host; \"0.0.0.0:7443\" listens on every "
            "IPv4 address\n"
            "f.yaml:6:9: tls.cert: must be a single value, not a list\n"
            "f.yaml:7:24: default_prefix_length: -1 is not between 0 and 30 (a network needs "
            "room for a gateway and a container)");
}

TEST_F(ConfigFileTest, LoadConfigFileReadsTheFileAndNamesIt) {
  std::string path = Write("socket: /tmp/x.sock\nsocket_grop: mesh\n");
  absl::StatusOr<Config> config = LoadConfigFile(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            path + ":2:1: unknown key \"socket_grop\" (did you mean \"socket_group\"?)");

  config = LoadConfigFile(Write("socket: /tmp/x.sock\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->socket, "/tmp/x.sock");

  config = LoadConfigFile(dir_.path() + "/missing.yaml");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("load config file: read \"" + dir_.path() +
                                                   "/missing.yaml\": No such file"));
}

TEST(ValidateConfigTest, EachValueIsChecked) {
  Config config;
  config.state_dir = "state";
  config.run_dir = "";
  config.socket = "meshd.sock";
  config.log_level = "trace";
  config.default_pool = "10.88.0.0/33";
  config.default_prefix_length = 40;
  config.shim_path = "shim";
  config.busybox_path = "busybox";
  config.socket_group = "-mesh";
  EXPECT_EQ(ValidationError(config),
            "state_dir: \"state\" is not an absolute path\n"
            "run_dir: is empty; give an absolute path\n"
            "socket: \"meshd.sock\" is not an absolute path\n"
            "log_level: log level \"trace\" is not known; use one of debug, info, warning, error\n"
            "default_pool: subnet \"10.88.0.0/33\": prefix length \"33\" is not a number from 0 to "
            "32 (IPv4)\n"
            "default_prefix_length: 40 is not between 0 and 30 (a network needs room for a "
            "gateway and a container)\n"
            "shim_path: \"shim\" is not an absolute path\n"
            "busybox_path: \"busybox\" is not an absolute path\n"
            "socket_group: \"-mesh\" is not a group name (letters, digits, '.', '_', '-'; at most "
            "32)");
}

TEST(ValidateConfigTest, PrefixLengthMustFitThePool) {
  Config config;
  config.default_pool = "10.88.0.0/16";
  config.default_prefix_length = 16;
  EXPECT_EQ(ValidationError(config), "");
  config.default_prefix_length = 30;
  EXPECT_EQ(ValidationError(config), "");
  config.default_prefix_length = 12;
  EXPECT_EQ(ValidationError(config),
            "default_prefix_length: /12 is shorter than default_pool 10.88.0.0/16; subnets are "
            "taken from the pool, so use /16 to /30");
}

TEST(ValidateConfigTest, TlsNeedsAllThreeFilesAndAListener) {
  Config config = ValidTls();
  config.tls.key_file = "";
  EXPECT_EQ(ValidationError(config), "tls: cert, key and client_ca go together; missing: key");
  config.tls.listen = "";
  config.tls.client_ca_file = "";
  EXPECT_EQ(ValidationError(config),
            "tls: cert, key and client_ca go together; missing: key, client_ca");

  config = ValidTls();
  config.tls.listen = "";
  EXPECT_EQ(ValidationError(config),
            "tls: cert, key and client_ca are set but tls.listen is empty");

  config = Config{};
  config.tls.listen = "127.0.0.1:7443";
  EXPECT_EQ(ValidationError(config),
            "tls.listen: \"127.0.0.1:7443\" needs tls.cert, tls.key and tls.client_ca (the API "
            "is served over TCP with mutual TLS only)");

  config = ValidTls();
  config.tls.cert_file = "server.pem";
  EXPECT_EQ(ValidationError(config), "tls.cert: \"server.pem\" is not an absolute path");
}

TEST(ValidateConfigTest, ListenIsHostAndPort) {
  for (const char* good : {"0.0.0.0:7443", "127.0.0.1:1", "localhost:65535", "[::]:7443",
                           "[fd00::1]:7443", "mesh.example.com:443"}) {
    Config config = ValidTls();
    config.tls.listen = good;
    EXPECT_EQ(ValidationError(config), "") << good;
  }
  struct Case {
    const char* listen;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {"7443", "\"7443\" is not host:port, e.g. \"0.0.0.0:7443\""},
           {":7443", "\":7443\" has no host; \"0.0.0.0:7443\" listens on every IPv4 address"},
           {"::1:7443", "\"::1:7443\" has an IPv6 address without brackets; write \"[::1]:7443\""},
           {"[::1]", "\"[::1]\" is not [address]:port, e.g. \"[::1]:7443\""},
           {"host:0", "\"host:0\" has port \"0\"; use a number from 1 to 65535"},
           {"host:65536", "\"host:65536\" has port \"65536\"; use a number from 1 to 65535"},
           {"host:", "\"host:\" has port \"\"; use a number from 1 to 65535"},
           {"host:+80", "\"host:+80\" has port \"+80\"; use a number from 1 to 65535"},
           {"host:https", "\"host:https\" has port \"https\"; use a number from 1 to 65535"},
       }) {
    Config config = ValidTls();
    config.tls.listen = c.listen;
    EXPECT_EQ(ValidationError(config), std::string("tls.listen: ") + c.error) << c.listen;
  }
}

TEST(ConfigTest, DnsValuesAreChecked) {
  EXPECT_EQ(ParseError("dns:\n  enabled: yes\n"),
            "f.yaml:2:12: dns.enabled: \"yes\" is not true or false");
  EXPECT_EQ(ParseError("dns:\n  upstreams: 203.0.113.53, dns.example.org\n"),
            "f.yaml:2:14: dns.upstreams: \"203.0.113.53, dns.example.org\" is not a list of "
            "upstreams: upstream \"dns.example.org\" is not an IPv4 address with an optional "
            "port (\"203.0.113.53\" or \"203.0.113.53:5353\")");
  EXPECT_THAT(ParseError("dns:\n  upstreams: 203.0.113.53:0\n"),
              HasSubstr("the port must be a number from 1 to 65535"));
  EXPECT_EQ(ParseError("dns:\n  timeout: 2\n"),
            "f.yaml:2:12: dns.timeout: \"2\" is not a duration (\"2s\", \"500ms\")");
  EXPECT_EQ(ParseError("dns:\n  timeout: 1m\n"),
            "f.yaml:2:12: dns.timeout: \"1m\" is out of range; use 100ms to 30s");
  EXPECT_EQ(ParseError("dns:\n  enable: true\n"),
            "f.yaml:2:3: unknown key \"dns.enable\" (did you mean \"dns.enabled\"?)");
  absl::StatusOr<Config> none = ParseConfig("dns:\n  upstreams: none\n", "f.yaml");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->dns.upstreams, "none");
}

TEST(ValidateConfigTest, EmptyGroupMeansRootOnly) {
  Config config;
  config.socket_group = "";
  EXPECT_EQ(ValidationError(config), "");
  config.socket_group = std::string(33, 'g');
  EXPECT_THAT(ValidationError(config), HasSubstr("is not a group name"));
}

TEST(CommandLineTest, NoArgumentsIsTheDefaultConfig) {
  absl::StatusOr<CommandLine> line = Parse({});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->config, Config{});
  EXPECT_FALSE(line->version);
  EXPECT_FALSE(line->help);
}

TEST_F(ConfigFileTest, FlagsOverrideTheFile) {
  std::string path = Write(R"(state_dir: /from/file/state
run_dir: /from/file/run
log_level: warning
default_pool: 10.0.0.0/8
default_prefix_length: 16
busybox_path: /from/file/busybox
tls:
  listen: 0.0.0.0:7443
  cert: /from/file/cert.pem
  key: /from/file/key.pem
  client_ca: /from/file/ca.pem
)");
  absl::StatusOr<CommandLine> line = Parse({"--config",
                                            path.c_str(),
                                            "--state-dir",
                                            "/from/flag/state",
                                            "--socket=/from/flag/s.sock",
                                            "--log-level",
                                            "debug",
                                            "--default-pool",
                                            "172.20.0.0/16",
                                            "--default-prefix-length",
                                            "28",
                                            "--shim",
                                            "/from/flag/mesh-shim",
                                            "--cgroup-parent",
                                            "flag",
                                            "--tls-listen",
                                            "127.0.0.1:8443",
                                            "--tls-cert",
                                            "/from/flag/cert.pem",
                                            "--tls-key",
                                            "/from/flag/key.pem",
                                            "--tls-client-ca",
                                            "/from/flag/ca.pem",
                                            "--dns=false",
                                            "--dns-upstreams",
                                            "none",
                                            "--dns-timeout",
                                            "1s"});
  ASSERT_TRUE(line.ok()) << line.status();
  Config want{.state_dir = "/from/flag/state",
              .run_dir = "/from/file/run",
              .socket = "/from/flag/s.sock",
              .log_level = "debug",
              .default_pool = "172.20.0.0/16",
              .default_prefix_length = 28,
              .shim_path = "/from/flag/mesh-shim",
              .cgroup_parent = "flag",
              .busybox_path = "/from/file/busybox",
              .tls = {.listen = "127.0.0.1:8443",
                      .cert_file = "/from/flag/cert.pem",
                      .key_file = "/from/flag/key.pem",
                      .client_ca_file = "/from/flag/ca.pem"},
              .dns = {.enabled = false, .upstreams = "none", .timeout = "1s"}};
  EXPECT_EQ(line->config, want);
}

TEST_F(ConfigFileTest, FlagsCanMakeTheFileValid) {
  std::string path = Write("default_pool: 10.0.0.0/8\ndefault_prefix_length: 8\n");
  absl::StatusOr<CommandLine> line =
      Parse({"--config", path.c_str(), "--default-pool", "10.0.0.0/8"});
  EXPECT_TRUE(line.ok()) << line.status();
  line = Parse({"--config", path.c_str(), "--default-pool", "10.88.0.0/16"});
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(line.status().message(),
              HasSubstr("default_prefix_length: /8 is shorter than default_pool 10.88.0.0/16"));
}

TEST(CommandLineTest, BadFlagValuesAreAllReported) {
  absl::StatusOr<CommandLine> line =
      Parse({"--state-dir", "relative", "--default-prefix-length", "x", "--tls-listen", "7443"});
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(line.status().message(),
            "--state-dir: \"relative\" is not an absolute path\n"
            "--default-prefix-length: must be a whole number, not \"x\"\n"
            "--tls-listen: \"7443\" is not host:port, e.g. \"0.0.0.0:7443\"");
}

TEST(CommandLineTest, CombinationsAreValidated) {
  absl::StatusOr<CommandLine> line = Parse({"--tls-listen", "0.0.0.0:7443"});
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(line.status().message(), HasSubstr("tls.listen: \"0.0.0.0:7443\" needs tls.cert"));
}

TEST(CommandLineTest, UsageErrorsCarryCli11sMessage) {
  absl::StatusOr<CommandLine> line = Parse({"--stat-dir", "/x"});
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(line.status().message(), HasSubstr("--stat-dir"));

  line = Parse({"--socket"});
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(line.status().message(), HasSubstr("--socket"));

  line = Parse({"serve"});
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(line.status().message(), HasSubstr("serve"));
}

TEST(CommandLineTest, FileErrorsComeBackAsTheyAre) {
  absl::StatusOr<CommandLine> line = Parse({"--config", "/nonexistent/meshd.yaml"});
  EXPECT_EQ(line.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(line.status().message(), HasSubstr("/nonexistent/meshd.yaml"));
}

TEST(CommandLineTest, VersionNeitherLoadsNorValidates) {
  absl::StatusOr<CommandLine> line =
      Parse({"--version", "--config", "/nonexistent/meshd.yaml", "--state-dir", "relative"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_TRUE(line->version);
  EXPECT_FALSE(line->help);
}

TEST(CommandLineTest, HelpListsEveryFlag) {
  absl::StatusOr<CommandLine> line = Parse({"--help"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_TRUE(line->help);
  for (const char* flag : {"--config", "--version", "--state-dir", "--run-dir", "--socket",
                           "--log-level", "--default-pool", "--default-prefix-length", "--shim",
                           "--cgroup-parent", "--tls-listen", "--tls-cert", "--tls-key",
                           "--tls-client-ca", "--dns", "--dns-upstreams", "--dns-timeout"}) {
    EXPECT_THAT(line->help_text, HasSubstr(flag));
  }
  EXPECT_THAT(line->help_text, HasSubstr("/var/lib/mesh"));  // defaults are shown
}

}  // namespace
}  // namespace mesh::agent
