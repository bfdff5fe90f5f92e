#include "agent/api/convert.h"

#include <arpa/inet.h>

#include <csignal>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/security/capabilities.h"
#include "runtime/spec/defaults.h"

namespace mesh::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

// `status` is INVALID_ARGUMENT, its message starts with "<field>: " and says `mentions`.
void ExpectInvalid(const absl::Status& status, absl::string_view field,
                   absl::string_view mentions = "") {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StartsWith(status.message(), absl::StrCat(field, ": ")))
      << "expected the field " << field << " first: " << status;
  if (!mentions.empty()) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(mentions)));
  }
}

google::protobuf::Duration Millis(int64_t ms) { return ToProtoDuration(absl::Milliseconds(ms)); }

// A container spec with every part set, and valid.
v1::ContainerSpec FullSpec() {
  v1::ContainerSpec s;
  s.set_name("web");
  s.set_image("busybox");
  s.add_entrypoint("/bin/httpd");
  s.add_args("-f");
  s.add_env("A=1");
  s.add_env("EMPTY=");
  s.set_working_dir("/srv");
  s.set_user("1000:1000");
  s.set_hostname("Web-1");
  (*s.mutable_labels()->mutable_labels())["app.kubernetes.io/name"] = "web";
  v1::NetworkAttachment* n = s.add_networks();
  n->set_network("front");
  n->set_ip("10.88.0.5");
  n->add_aliases("www.example");
  v1::PortMapping* p = s.add_ports();
  p->set_host_port(8080);
  p->set_container_port(80);
  v1::PortMapping* u = s.add_ports();
  u->set_protocol(v1::PROTOCOL_UDP);
  u->set_host_port(8080);
  u->set_container_port(80);
  v1::Mount* bind = s.add_mounts();
  bind->set_source("/srv/data");
  bind->set_destination("/data");
  bind->set_read_only(true);
  v1::Mount* tmp = s.add_mounts();
  tmp->set_type(v1::Mount::TYPE_TMPFS);
  tmp->set_destination("/data/cache");
  tmp->set_tmpfs_size_bytes(1 << 20);
  s.mutable_resources()->set_memory_bytes(int64_t{1} << 20);
  s.mutable_resources()->set_cpus(1.5);
  s.mutable_resources()->set_pids(100);
  s.mutable_restart()->set_mode(v1::RestartPolicy::MODE_ON_FAILURE);
  s.mutable_restart()->set_max_retries(3);
  v1::HealthCheck* h = s.mutable_health_check();
  h->add_command("wget");
  h->add_command("-q");
  *h->mutable_interval() = Millis(1);
  *h->mutable_timeout() = Millis(2000);
  *h->mutable_start_period() = Millis(0);
  s.add_cap_add("net_admin");
  s.add_cap_add("ALL");
  s.add_cap_drop("CAP_NET_RAW");
  s.set_userns_host_base(100000);
  *s.mutable_stop_timeout() = Millis(0);
  s.set_log_max_bytes(1 << 20);
  s.set_log_max_files(100);
  return s;
}

v1::ContainerSpec MinimalSpec() {
  v1::ContainerSpec s;
  s.set_name("web");
  s.set_image("busybox");
  return s;
}

// A change that makes a valid spec invalid, and where the error must point.
template <typename Spec>
struct BadCase {
  std::string name;
  std::function<void(Spec&)> change;
  std::string field;  // where the message starts
  std::string mentions = "";
};

// Applies each case to a fresh valid() and expects validate() to refuse it as the case says.
template <typename Spec>
void ExpectEachRefused(const std::vector<BadCase<Spec>>& cases, const std::function<Spec()>& valid,
                       const std::function<absl::Status(const Spec&)>& validate) {
  for (const BadCase<Spec>& c : cases) {
    SCOPED_TRACE(c.name);
    Spec spec = valid();
    c.change(spec);
    ExpectInvalid(validate(spec), c.field, c.mentions);
  }
}

std::vector<std::string> Many(size_t n, const std::string& value) {
  return std::vector<std::string>(n, value);
}

template <typename T>
void Assign(google::protobuf::RepeatedPtrField<std::string>* field, const T& values) {
  field->Clear();
  for (const std::string& v : values) field->Add(std::string(v));
}

TEST(ValidateContainerSpecTest, FullAndMinimalSpecsPass) {
  EXPECT_TRUE(ValidateContainerSpec(FullSpec()).ok()) << ValidateContainerSpec(FullSpec());
  EXPECT_TRUE(ValidateContainerSpec(MinimalSpec()).ok()) << ValidateContainerSpec(MinimalSpec());
}

void AddRoute(v1::ContainerSpec& spec, const std::string& destination, const std::string& via) {
  v1::Route* route = spec.add_routes();
  route->set_destination(destination);
  route->set_via(via);
}

TEST(ValidateContainerSpecTest, EveryRuleNamesItsField) {
  const std::string too_long_arg(size_t{128} << 10, 'x');
  const std::vector<BadCase<v1::ContainerSpec>> cases = {
      // Names and image.
      {"empty name", [](auto& s) { s.clear_name(); }, "spec.name", "must not be empty"},
      {"uppercase name", [](auto& s) { s.set_name("Web"); }, "spec.name", "uppercase"},
      {"empty image", [](auto& s) { s.clear_image(); }, "spec.image", "busybox"},
      {"long image", [](auto& s) { s.set_image(std::string(256, 'a')); }, "spec.image", "255"},
      {"image not UTF-8", [](auto& s) { s.set_image("bad\xff"); }, "spec.image", "UTF-8"},
      {"image with NUL", [](auto& s) { s.set_image(std::string("a\0b", 3)); }, "spec.image", "NUL"},
      {"overlong UTF-8", [](auto& s) { s.set_image("\xc0\xaf"); }, "spec.image", "UTF-8"},
      {"UTF-8 surrogate", [](auto& s) { s.set_image("\xed\xa0\x80"); }, "spec.image", "UTF-8"},
      {"truncated UTF-8", [](auto& s) { s.set_image("caf\xc3"); }, "spec.image", "UTF-8"},
      // Command and environment.
      {"empty program", [](auto& s) { s.set_entrypoint(0, ""); }, "spec.entrypoint[0]", "program"},
      {"too many args", [](auto& s) { Assign(s.mutable_args(), Many(4097, "x")); }, "spec.args",
       "4096"},
      {"arg too long", [&](auto& s) { s.add_args(too_long_arg); }, "spec.args[1]", "131071"},
      {"arg with NUL", [](auto& s) { s.set_args(0, std::string("a\0", 2)); }, "spec.args[0]",
       "NUL"},
      {"entrypoint not UTF-8", [](auto& s) { s.add_entrypoint("\x80"); }, "spec.entrypoint[1]",
       "UTF-8"},
      {"too many env", [](auto& s) { Assign(s.mutable_env(), Many(4097, "A=1")); }, "spec.env",
       "4096"},
      {"env without =", [](auto& s) { s.add_env("FOO"); }, "spec.env[2]", "KEY=VALUE"},
      // Egress limits.
      {"egress rate too low", [](auto& s) { s.mutable_networks(0)->set_egress_rate_bps(100); },
       "spec.networks[0].egress_rate_bps", "8000 (8 kbit/s) to 16000000000"},
      {"egress rate too high",
       [](auto& s) { s.mutable_networks(0)->set_egress_rate_bps(uint64_t{1} << 40); },
       "spec.networks[0].egress_rate_bps", "out of range"},
      {"burst without a rate", [](auto& s) { s.mutable_networks(0)->set_egress_burst_bytes(1); },
       "spec.networks[0].egress_burst_bytes", "needs a rate"},
      {"burst too big",
       [](auto& s) {
         s.mutable_networks(0)->set_egress_rate_bps(8000);
         s.mutable_networks(0)->set_egress_burst_bytes(uint64_t{1} << 31);
       },
       "spec.networks[0].egress_burst_bytes", "1 GiB"},
      // Static routes.
      {"route to a host address", [](auto& s) { AddRoute(s, "10.77.2.5/24", "10.88.0.254"); },
       "spec.routes[0].destination", "did you mean 10.77.2.0/24?"},
      {"route to an IPv6 subnet", [](auto& s) { AddRoute(s, "fd00::/64", "10.88.0.254"); },
       "spec.routes[0].destination", "IPv6"},
      {"route via a word", [](auto& s) { AddRoute(s, "default", "router"); }, "spec.routes[0].via",
       "next hop"},
      {"route without a via", [](auto& s) { AddRoute(s, "10.77.2.0/24", ""); },
       "spec.routes[0].via", ""},
      {"two routes to one place",
       [](auto& s) {
         AddRoute(s, "10.77.2.0/24", "10.88.0.254");
         AddRoute(s, "10.77.2.0/24", "10.88.0.253");
       },
       "spec.routes[1].destination", "spec.routes[0]"},
      {"routes without networks",
       [](auto& s) {
         s.clear_networks();
         s.clear_ports();
         AddRoute(s, "default", "10.88.0.254");
       },
       "spec.routes", "needs a network"},
      // Sysctls: of the container's own namespaces only.
      {"host sysctl", [](auto& s) { (*s.mutable_sysctls())["vm.swappiness"] = "1"; },
       "spec.sysctls[\"vm.swappiness\"]", "would change the host"},
      {"sysctl with slashes", [](auto& s) { (*s.mutable_sysctls())["net/ipv4/ip_forward"] = "1"; },
       "spec.sysctls[\"net/ipv4/ip_forward\"]", "net.ipv4.ip_forward"},
      {"sysctl on two lines", [](auto& s) { (*s.mutable_sysctls())["kernel.sem"] = "1\n2"; },
       "spec.sysctls[\"kernel.sem\"]", "one line"},
      {"net sysctl of a shared netns",
       [](auto& s) {
         s.clear_networks();
         s.clear_ports();
         s.set_network_from("other");
         (*s.mutable_sysctls())["net.ipv4.ip_forward"] = "1";
       },
       "spec.sysctls[\"net.ipv4.ip_forward\"]", "network_from"},
      {"env with empty key", [](auto& s) { s.set_env(0, "=1"); }, "spec.env[0]", "KEY=VALUE"},
      {"env too long", [&](auto& s) { s.set_env(0, "A=" + too_long_arg); }, "spec.env[0]",
       "bytes long"},
      {"relative working dir", [](auto& s) { s.set_working_dir("srv"); }, "spec.working_dir",
       "absolute"},
      {"working dir with NUL", [](auto& s) { s.set_working_dir(std::string("/a\0", 3)); },
       "spec.working_dir", "NUL"},
      // User and hostname.
      {"user with two colons", [](auto& s) { s.set_user("a:b:c"); }, "spec.user", "uid[:gid]"},
      {"user without gid", [](auto& s) { s.set_user("1000:"); }, "spec.user", "uid[:gid]"},
      {"user with a space", [](auto& s) { s.set_user("web user"); }, "spec.user"},
      {"hostname with dash first", [](auto& s) { s.set_hostname("-web"); }, "spec.hostname",
       "host name"},
      {"hostname with dot", [](auto& s) { s.set_hostname("web.local"); }, "spec.hostname"},
      {"hostname of 64", [](auto& s) { s.set_hostname(std::string(64, 'a')); }, "spec.hostname"},
      // Mounts.
      {"relative destination", [](auto& s) { s.mutable_mounts(0)->set_destination("data"); },
       "spec.mounts[0].destination", "absolute"},
      {"destination with ..", [](auto& s) { s.mutable_mounts(0)->set_destination("/data/../etc"); },
       "spec.mounts[0].destination", "\"..\""},
      {"destination not normal", [](auto& s) { s.mutable_mounts(0)->set_destination("/x//y/"); },
       "spec.mounts[0].destination", "write \"/x/y\""},
      {"destination with .", [](auto& s) { s.mutable_mounts(0)->set_destination("/x/./y"); },
       "spec.mounts[0].destination", "write \"/x/y\""},
      {"destination root", [](auto& s) { s.mutable_mounts(0)->set_destination("/"); },
       "spec.mounts[0].destination", "root"},
      {"empty destination", [](auto& s) { s.mutable_mounts(1)->clear_destination(); },
       "spec.mounts[1].destination", "empty"},
      {"relative bind source", [](auto& s) { s.mutable_mounts(0)->set_source("srv"); },
       "spec.mounts[0].source", "absolute"},
      {"empty bind source", [](auto& s) { s.mutable_mounts(0)->clear_source(); },
       "spec.mounts[0].source", "empty"},
      {"bind source with ..", [](auto& s) { s.mutable_mounts(0)->set_source("/srv/../etc"); },
       "spec.mounts[0].source", "\"..\""},
      {"duplicate destination", [](auto& s) { s.mutable_mounts(1)->set_destination("/data"); },
       "spec.mounts[1].destination", "spec.mounts[0]"},
      {"tmpfs size on a bind", [](auto& s) { s.mutable_mounts(0)->set_tmpfs_size_bytes(1); },
       "spec.mounts[0].tmpfs_size_bytes", "tmpfs"},
      {"unknown mount type",
       [](auto& s) { s.mutable_mounts(0)->set_type(static_cast<v1::Mount::Type>(9)); },
       "spec.mounts[0].type", "TYPE_BIND"},
      // Ports.
      {"host port too big", [](auto& s) { s.mutable_ports(0)->set_host_port(70000); },
       "spec.ports[0].host_port", "70000 is not a port (1-65535)"},
      {"host port zero", [](auto& s) { s.mutable_ports(0)->set_host_port(0); },
       "spec.ports[0].host_port", "1-65535"},
      {"container port zero", [](auto& s) { s.mutable_ports(1)->set_container_port(0); },
       "spec.ports[1].container_port", "1-65535"},
      {"unknown protocol",
       [](auto& s) { s.mutable_ports(0)->set_protocol(static_cast<v1::Protocol>(7)); },
       "spec.ports[0].protocol", "PROTOCOL_TCP"},
      {"bad host ip", [](auto& s) { s.mutable_ports(0)->set_host_ip("1.2.3"); },
       "spec.ports[0].host_ip", "not an IP address"},
      {"IPv6 host ip", [](auto& s) { s.mutable_ports(0)->set_host_ip("::1"); },
       "spec.ports[0].host_ip", "IPv6"},
      {"same host port twice", [](auto& s) { s.mutable_ports(1)->set_protocol(v1::PROTOCOL_TCP); },
       "spec.ports[1]", "spec.ports[0]"},
      {"unspecified protocol is tcp",
       [](auto& s) { s.mutable_ports(1)->set_protocol(v1::PROTOCOL_UNSPECIFIED); }, "spec.ports[1]",
       "spec.ports[0]"},
      {"ports without a network", [](auto& s) { s.clear_networks(); }, "spec.ports", "network"},
      // Resources.
      {"negative memory", [](auto& s) { s.mutable_resources()->set_memory_bytes(-1); },
       "spec.resources.memory_bytes", "negative"},
      {"tiny memory", [](auto& s) { s.mutable_resources()->set_memory_bytes(1000); },
       "spec.resources.memory_bytes", "1 MiB"},
      {"negative cpus", [](auto& s) { s.mutable_resources()->set_cpus(-1); },
       "spec.resources.cpus"},
      {"too many cpus", [](auto& s) { s.mutable_resources()->set_cpus(1024.5); },
       "spec.resources.cpus", "1024"},
      {"too few cpus", [](auto& s) { s.mutable_resources()->set_cpus(0.005); },
       "spec.resources.cpus", "0.01"},
      {"NaN cpus",
       [](auto& s) { s.mutable_resources()->set_cpus(std::numeric_limits<double>::quiet_NaN()); },
       "spec.resources.cpus"},
      {"infinite cpus",
       [](auto& s) { s.mutable_resources()->set_cpus(std::numeric_limits<double>::infinity()); },
       "spec.resources.cpus"},
      {"negative pids", [](auto& s) { s.mutable_resources()->set_pids(-1); }, "spec.resources.pids",
       "negative"},
      // Restart policy.
      {"unknown restart mode",
       [](auto& s) { s.mutable_restart()->set_mode(static_cast<v1::RestartPolicy::Mode>(9)); },
       "spec.restart.mode", "MODE_ON_FAILURE"},
      {"max_retries with ALWAYS",
       [](auto& s) { s.mutable_restart()->set_mode(v1::RestartPolicy::MODE_ALWAYS); },
       "spec.restart.max_retries", "MODE_ALWAYS"},
      {"max_retries without a mode", [](auto& s) { s.mutable_restart()->clear_mode(); },
       "spec.restart.max_retries", "MODE_ON_FAILURE"},
      // Health check.
      {"health check without command", [](auto& s) { s.mutable_health_check()->clear_command(); },
       "spec.health_check.command", "empty"},
      {"health check empty program", [](auto& s) { s.mutable_health_check()->set_command(0, ""); },
       "spec.health_check.command[0]", "program"},
      {"interval under 1ms",
       [](auto& s) {
         *s.mutable_health_check()->mutable_interval() = ToProtoDuration(absl::Microseconds(500));
       },
       "spec.health_check.interval", "1ms"},
      {"zero timeout", [](auto& s) { *s.mutable_health_check()->mutable_timeout() = Millis(0); },
       "spec.health_check.timeout", "1ms"},
      {"negative start period",
       [](auto& s) { *s.mutable_health_check()->mutable_start_period() = Millis(-1); },
       "spec.health_check.start_period", "negative"},
      {"malformed interval",
       [](auto& s) {
         s.mutable_health_check()->mutable_interval()->set_seconds(1);
         s.mutable_health_check()->mutable_interval()->set_nanos(-1);
       },
       "spec.health_check.interval", "different signs"},
      // Networks.
      {"network_from with networks", [](auto& s) { s.set_network_from("db"); }, "spec.networks",
       "network_from"},
      {"network_from with ports",
       [](auto& s) {
         s.clear_networks();
         s.set_network_from("db");
       },
       "spec.ports", "network_from"},
      {"network_from itself",
       [](auto& s) {
         s.clear_networks();
         s.clear_ports();
         s.set_network_from("web");
       },
       "spec.network_from", "itself"},
      {"network_from bad name",
       [](auto& s) {
         s.clear_networks();
         s.clear_ports();
         s.set_network_from("DB");
       },
       "spec.network_from", "container name"},
      {"bad network name", [](auto& s) { s.mutable_networks(0)->set_network("front_1"); },
       "spec.networks[0].network", "network name"},
      {"network twice", [](auto& s) { s.add_networks()->set_network("front"); },
       "spec.networks[1].network", "spec.networks[0]"},
      {"bad static ip", [](auto& s) { s.mutable_networks(0)->set_ip("10.88.0.300"); },
       "spec.networks[0].ip", "not an IP address"},
      {"IPv6 static ip", [](auto& s) { s.mutable_networks(0)->set_ip("fd00::5"); },
       "spec.networks[0].ip", "IPv6"},
      {"bad alias", [](auto& s) { s.mutable_networks(0)->add_aliases("db_1"); },
       "spec.networks[0].aliases[1]", "DNS name"},
      {"empty alias label", [](auto& s) { s.mutable_networks(0)->set_aliases(0, "a..b"); },
       "spec.networks[0].aliases[0]", "DNS name"},
      // Labels.
      {"uppercase label key", [](auto& s) { (*s.mutable_labels()->mutable_labels())["App"] = "x"; },
       "spec.labels.labels[\"App\"]", "a-z"},
      {"long label key",
       [](auto& s) { (*s.mutable_labels()->mutable_labels())[std::string(64, 'k')] = "x"; },
       absl::StrCat("spec.labels.labels[\"", std::string(64, 'k'), "\"]"), "1 to 63"},
      {"empty label key", [](auto& s) { (*s.mutable_labels()->mutable_labels())[""] = "x"; },
       "spec.labels.labels[\"\"]", "key"},
      {"long label value",
       [](auto& s) { (*s.mutable_labels()->mutable_labels())["k"] = std::string(256, 'v'); },
       "spec.labels.labels[\"k\"]", "255"},
      {"label value not UTF-8",
       [](auto& s) { (*s.mutable_labels()->mutable_labels())["k"] = "\xfe"; },
       "spec.labels.labels[\"k\"]", "UTF-8"},
      // Capabilities.
      {"unknown cap_add", [](auto& s) { s.set_cap_add(0, "NET_WIZARD"); }, "spec.cap_add[0]",
       "unknown capability"},
      {"unknown cap_drop", [](auto& s) { s.add_cap_drop("CAP_"); }, "spec.cap_drop[1]",
       "unknown capability"},
      // The rest.
      {"userns past the last id", [](auto& s) { s.set_userns_host_base(4294901760U); },
       "spec.userns_host_base", "4294901759"},
      {"negative stop timeout", [](auto& s) { *s.mutable_stop_timeout() = Millis(-5); },
       "spec.stop_timeout", "negative"},
      {"too many log files", [](auto& s) { s.set_log_max_files(101); }, "spec.log_max_files",
       "100"},
  };
  ExpectEachRefused<v1::ContainerSpec>(
      cases, FullSpec, [](const v1::ContainerSpec& s) { return ValidateContainerSpec(s); });
}

TEST(ValidateContainerSpecTest, EdgesThatPass) {
  const std::vector<std::pair<std::string, std::function<void(v1::ContainerSpec&)>>> cases = {
      {"4096 args", [](auto& s) { Assign(s.mutable_args(), Many(4096, "x")); }},
      {"an arg of 131071 bytes", [](auto& s) { s.add_args(std::string((128 << 10) - 1, 'x')); }},
      {"4096 env entries", [](auto& s) { Assign(s.mutable_env(), Many(4096, "A=1")); }},
      {"env value with =", [](auto& s) { s.add_env("A==b=c"); }},
      {"UTF-8 args", [](auto& s) { s.add_args("caf\xc3\xa9 \xf0\x9f\x90\xb3"); }},
      {"empty arg", [](auto& s) { s.add_args(""); }},
      {"highest userns base", [](auto& s) { s.set_userns_host_base(4294901759U); }},
      {"least cpus", [](auto& s) { s.mutable_resources()->set_cpus(0.01); }},
      {"most cpus", [](auto& s) { s.mutable_resources()->set_cpus(1024); }},
      {"no limits", [](auto& s) { s.clear_resources(); }},
      {"hostname of 63", [](auto& s) { s.set_hostname(std::string(63, 'a')); }},
      {"user name", [](auto& s) { s.set_user("nobody"); }},
      {"tmpfs without source", [](auto& s) { s.mutable_mounts(1)->clear_source(); }},
      {"same port on two addresses",
       [](auto& s) {
         s.mutable_ports(0)->set_host_ip("203.0.113.1");
         s.mutable_ports(1)->set_host_ip("203.0.113.2");
         s.mutable_ports(1)->set_protocol(v1::PROTOCOL_TCP);
       }},
      {"network_from with a hostname",
       [](auto& s) {
         s.clear_networks();
         s.clear_ports();
         s.set_network_from("db");
       }},
      {"label key of 63 with every character",
       [](auto& s) {
         (*s.mutable_labels()->mutable_labels())[std::string(59, 'a') + ".-_/"] = "";
       }},
      {"cap_drop ALL", [](auto& s) { s.add_cap_drop("all"); }},
      {"restart without retries",
       [](auto& s) {
         s.mutable_restart()->set_mode(v1::RestartPolicy::MODE_UNLESS_STOPPED);
         s.mutable_restart()->clear_max_retries();
       }},
      {"health check with defaults",
       [](auto& s) {
         s.mutable_health_check()->clear_interval();
         s.mutable_health_check()->clear_timeout();
         s.mutable_health_check()->clear_start_period();
       }},
  };
  for (const auto& [name, change] : cases) {
    SCOPED_TRACE(name);
    v1::ContainerSpec spec = FullSpec();
    change(spec);
    absl::Status status = ValidateContainerSpec(spec);
    EXPECT_TRUE(status.ok()) << status;
  }
}

TEST(ValidateContainerSpecTest, FieldPrefixIsTheCallers) {
  v1::ContainerSpec spec = FullSpec();
  spec.mutable_ports(0)->set_host_port(70000);
  EXPECT_EQ(ValidateContainerSpec(spec, "containers[2]").message(),
            "containers[2].ports[0].host_port: 70000 is not a port (1-65535)");
}

v1::NetworkSpec FullNetwork() {
  v1::NetworkSpec n;
  n.set_name("front");
  n.set_subnet("10.89.0.0/24");
  n.set_gateway("10.89.0.254");
  n.set_mtu(9000);
  (*n.mutable_labels()->mutable_labels())["tier"] = "front";
  return n;
}

TEST(ValidateNetworkSpecTest, EveryRuleNamesItsField) {
  const std::vector<BadCase<v1::NetworkSpec>> cases = {
      {"bad name", [](auto& n) { n.set_name("Front"); }, "spec.name", "network name"},
      {"no name", [](auto& n) { n.clear_name(); }, "spec.name", "empty"},
      {"host bits", [](auto& n) { n.set_subnet("10.89.0.1/24"); }, "spec.subnet",
       "did you mean 10.89.0.0/24"},
      {"no prefix length", [](auto& n) { n.set_subnet("10.89.0.0"); }, "spec.subnet",
       "prefix length"},
      {"garbage", [](auto& n) { n.set_subnet("ten/8"); }, "spec.subnet", "10.89.0.0/24"},
      {"IPv6", [](auto& n) { n.set_subnet("fd00::/64"); }, "spec.subnet", "IPv6"},
      {"prefix 7", [](auto& n) { n.set_subnet("10.0.0.0/7"); }, "spec.subnet", "8 to 30"},
      {"prefix 31", [](auto& n) { n.set_subnet("10.89.0.0/31"); }, "spec.subnet", "8 to 30"},
      {"gateway without subnet", [](auto& n) { n.clear_subnet(); }, "spec.gateway", "subnet"},
      {"gateway outside", [](auto& n) { n.set_gateway("10.90.0.1"); }, "spec.gateway", "outside"},
      {"gateway network address", [](auto& n) { n.set_gateway("10.89.0.0"); }, "spec.gateway",
       "network address"},
      {"gateway broadcast", [](auto& n) { n.set_gateway("10.89.0.255"); }, "spec.gateway",
       "broadcast"},
      {"gateway not an address", [](auto& n) { n.set_gateway("gw"); }, "spec.gateway",
       "not an IP address"},
      {"mtu 67", [](auto& n) { n.set_mtu(67); }, "spec.mtu", "68 to 65535"},
      {"mtu 65536", [](auto& n) { n.set_mtu(65536); }, "spec.mtu", "68 to 65535"},
      {"bad label", [](auto& n) { (*n.mutable_labels()->mutable_labels())["a b"] = ""; },
       "spec.labels.labels[\"a b\"]", "key"},
  };
  ExpectEachRefused<v1::NetworkSpec>(
      cases, FullNetwork, [](const v1::NetworkSpec& n) { return ValidateNetworkSpec(n); });
}

TEST(ValidateNetworkSpecTest, EdgesThatPass) {
  for (const auto& [subnet, gateway, mtu] :
       std::vector<std::tuple<std::string, std::string, uint32_t>>{
           {"", "", 0},
           {"10.0.0.0/8", "10.255.255.254", 68},
           {"10.89.0.0/30", "10.89.0.2", 65535},
           {"192.168.7.0/24", "", 1500}}) {
    v1::NetworkSpec n;
    n.set_name("net");
    n.set_subnet(subnet);
    n.set_gateway(gateway);
    n.set_mtu(mtu);
    absl::Status status = ValidateNetworkSpec(n);
    EXPECT_TRUE(status.ok()) << subnet << " " << gateway << ": " << status;
  }
}

TEST(ToNetworkConfigTest, Defaults) {
  v1::NetworkSpec n;
  n.set_name("front");
  absl::StatusOr<netplane::NetworkConfig> config = ToNetworkConfig(n);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "front");
  EXPECT_FALSE(config->subnet.has_value());
  EXPECT_FALSE(config->gateway.has_value());
  EXPECT_EQ(config->mtu, 1500);
  EXPECT_TRUE(config->nat);
  EXPECT_FALSE(config->internal);
}

TEST(ToNetworkConfigTest, EveryField) {
  absl::StatusOr<netplane::NetworkConfig> config = ToNetworkConfig(FullNetwork());
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->subnet.has_value());
  EXPECT_EQ(config->subnet->ToString(), "10.89.0.0/24");
  ASSERT_TRUE(config->gateway.has_value());
  EXPECT_EQ(config->gateway->ToString(), "10.89.0.254");
  EXPECT_EQ(config->mtu, 9000);

  v1::NetworkSpec internal = FullNetwork();
  internal.set_internal(true);
  config = ToNetworkConfig(internal);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->internal);
  EXPECT_FALSE(config->nat);

  v1::NetworkSpec no_nat = FullNetwork();
  no_nat.set_disable_nat(true);
  config = ToNetworkConfig(no_nat);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->internal);
  EXPECT_FALSE(config->nat);
}

TEST(ToNetworkConfigTest, RefusesInvalid) {
  v1::NetworkSpec n = FullNetwork();
  n.set_mtu(1);
  ExpectInvalid(ToNetworkConfig(n).status(), "spec.mtu");
}

v1::PortMapping Port(v1::Protocol protocol, const std::string& host_ip, uint32_t host_port,
                     uint32_t container_port) {
  v1::PortMapping p;
  p.set_protocol(protocol);
  p.set_host_ip(host_ip);
  p.set_host_port(host_port);
  p.set_container_port(container_port);
  return p;
}

google::protobuf::RepeatedPtrField<v1::PortMapping> Ports(std::vector<v1::PortMapping> list) {
  google::protobuf::RepeatedPtrField<v1::PortMapping> out;
  for (v1::PortMapping& p : list) *out.Add() = std::move(p);
  return out;
}

TEST(ToEgressLimitTest, BurstDefaultsToAFiftiethOfASecondAtLeast32KiB) {
  v1::NetworkAttachment a;
  EXPECT_EQ(ToEgressLimit(a), std::nullopt);
  a.set_egress_rate_bps(8'000'000);  // 1 MB/s: 20000 bytes a fiftieth of a second
  EXPECT_EQ(ToEgressLimit(a), (netplane::EgressLimit{8'000'000, 32768}));
  a.set_egress_rate_bps(1'000'000'000);  // 125 MB/s
  EXPECT_EQ(ToEgressLimit(a), (netplane::EgressLimit{1'000'000'000, 2'500'000}));
  a.set_egress_burst_bytes(4096);
  EXPECT_EQ(ToEgressLimit(a), (netplane::EgressLimit{1'000'000'000, 4096}));
}

TEST(ToPortMappingsTest, Converts) {
  absl::StatusOr<std::vector<netplane::PortMapping>> ports =
      ToPortMappings(Ports({Port(v1::PROTOCOL_UNSPECIFIED, "", 8080, 80),
                            Port(v1::PROTOCOL_UDP, "203.0.113.1", 53, 5353),
                            Port(v1::PROTOCOL_TCP, "", 65535, 1)}),
                     "ports");
  ASSERT_TRUE(ports.ok()) << ports.status();
  ASSERT_EQ(ports->size(), 3u);
  EXPECT_EQ((*ports)[0].protocol, netplane::Protocol::kTcp);
  EXPECT_FALSE((*ports)[0].host_address.has_value());
  EXPECT_EQ((*ports)[0].host_port, 8080);
  EXPECT_EQ((*ports)[0].container_port, 80);
  EXPECT_EQ((*ports)[1].protocol, netplane::Protocol::kUdp);
  ASSERT_TRUE((*ports)[1].host_address.has_value());
  EXPECT_EQ((*ports)[1].host_address->ToString(), "203.0.113.1");
  EXPECT_EQ((*ports)[1].host_port, 53);
  EXPECT_EQ((*ports)[1].container_port, 5353);
  EXPECT_EQ((*ports)[2].host_port, 65535);
  EXPECT_EQ((*ports)[2].container_port, 1);
}

TEST(ToPortMappingsTest, ClashesFollowNetplanesRule) {
  const v1::Protocol tcp = v1::PROTOCOL_TCP;
  // Same host port: fine on another protocol or on two distinct addresses.
  EXPECT_TRUE(
      ToPortMappings(Ports({Port(tcp, "", 80, 80), Port(v1::PROTOCOL_UDP, "", 80, 80)}), "p").ok());
  EXPECT_TRUE(
      ToPortMappings(Ports({Port(tcp, "10.0.0.1", 80, 80), Port(tcp, "10.0.0.2", 80, 81)}), "p")
          .ok());
  // A clash when either listens on every address, or both on the same one.
  ExpectInvalid(
      ToPortMappings(Ports({Port(tcp, "", 80, 80), Port(tcp, "10.0.0.1", 80, 81)}), "p").status(),
      "p[1]", "p[0]");
  ExpectInvalid(
      ToPortMappings(Ports({Port(tcp, "10.0.0.1", 80, 80), Port(tcp, "", 80, 81)}), "p").status(),
      "p[1]", "p[0]");
  ExpectInvalid(ToPortMappings(Ports({Port(tcp, "10.0.0.1", 80, 80), Port(tcp, "10.0.0.2", 81, 81),
                                      Port(tcp, "10.0.0.1", 80, 82)}),
                               "p")
                    .status(),
                "p[2]", "p[0]");
  ExpectInvalid(ToPortMappings(Ports({Port(tcp, "", 70000, 80)}), "containers[2].ports").status(),
                "containers[2].ports[0].host_port", "70000 is not a port (1-65535)");
}

TEST(ToRuntimeSpecTest, CommandFollowsDockersRule) {
  struct Case {
    std::vector<std::string> image_entrypoint, image_cmd, entrypoint, args, want;
  };
  const std::vector<Case> cases = {
      {{"/ep"}, {"cmd"}, {}, {}, {"/ep", "cmd"}},
      {{"/ep"}, {"cmd"}, {}, {"a1", "a2"}, {"/ep", "a1", "a2"}},
      {{"/ep"}, {"cmd"}, {"/mine"}, {}, {"/mine"}},  // the image's cmd is dropped
      {{"/ep"}, {"cmd"}, {"/mine"}, {"a"}, {"/mine", "a"}},
      {{}, {"/bin/sh"}, {}, {}, {"/bin/sh"}},
      {{}, {"/bin/sh"}, {}, {"/bin/true"}, {"/bin/true"}},
      {{}, {}, {}, {"/bin/true"}, {"/bin/true"}},
      {{}, {}, {"/x"}, {}, {"/x"}},
  };
  for (const Case& c : cases) {
    runtime::image::ImageConfig image;
    image.entrypoint = c.image_entrypoint;
    image.cmd = c.image_cmd;
    v1::ContainerSpec spec = MinimalSpec();
    Assign(spec.mutable_entrypoint(), c.entrypoint);
    Assign(spec.mutable_args(), c.args);
    absl::StatusOr<runtime::ContainerSpec> out = ToRuntimeSpec(spec, image);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->process.args, c.want);
  }
}

TEST(ToRuntimeSpecTest, NoCommandAnywhere) {
  ExpectInvalid(ToRuntimeSpec(MinimalSpec(), {}).status(), "spec.args", "no command");
}

TEST(ToRuntimeSpecTest, InvalidSpecComesBackAsIs) {
  v1::ContainerSpec spec = MinimalSpec();
  spec.set_name("-web");
  ExpectInvalid(ToRuntimeSpec(spec, {}).status(), "spec.name");
}

TEST(ToRuntimeSpecTest, EnvImageUnderSpec) {
  runtime::image::ImageConfig image;
  image.cmd = {"sh"};
  image.env = {"PATH=/usr/bin:/bin", "A=1", "B=2"};
  v1::ContainerSpec spec = MinimalSpec();
  Assign(spec.mutable_env(), std::vector<std::string>{"B=3", "C=4", "A=5", "C=6", "PATH="});
  absl::StatusOr<runtime::ContainerSpec> out = ToRuntimeSpec(spec, image);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->process.env, ElementsAre("PATH=", "A=5", "B=3", "C=6"));

  spec.clear_env();
  out = ToRuntimeSpec(spec, image);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->process.env, image.env);
}

TEST(ToRuntimeSpecTest, EveryField) {
  runtime::image::ImageConfig image;
  image.cmd = {"sh"};
  image.working_dir = "/image";
  v1::ContainerSpec spec = FullSpec();
  spec.clear_cap_add();
  spec.clear_cap_drop();
  spec.set_tty(true);
  spec.set_read_only_root(true);
  spec.set_privileged(true);
  spec.set_init(true);
  absl::StatusOr<runtime::ContainerSpec> out = ToRuntimeSpec(spec, image);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->id, "web");
  EXPECT_EQ(out->hostname, "Web-1");
  EXPECT_EQ(out->image, "busybox");
  EXPECT_EQ(out->process.args, (std::vector<std::string>{"/bin/httpd", "-f"}));
  EXPECT_EQ(out->process.cwd, "/srv");
  EXPECT_TRUE(out->process.terminal);
  EXPECT_EQ(out->user, "1000:1000");
  EXPECT_TRUE(out->readonly_root);
  EXPECT_TRUE(out->privileged);
  EXPECT_TRUE(out->init);
  EXPECT_EQ(out->seccomp, runtime::SeccompProfile::kDefault);  // privileged drops it later
  EXPECT_EQ(out->log.max_size, uint64_t{1} << 20);
  EXPECT_EQ(out->log.max_files, 100);
  EXPECT_THAT(out->etc_hosts, IsEmpty());
  EXPECT_THAT(out->etc_resolv_conf, IsEmpty());

  ASSERT_EQ(out->mounts.size(), 2u);
  EXPECT_EQ(out->mounts[0].type, "bind");
  EXPECT_EQ(out->mounts[0].source, "/srv/data");
  EXPECT_EQ(out->mounts[0].destination, "/data");
  EXPECT_THAT(out->mounts[0].options, ElementsAre("rbind", "ro"));
  EXPECT_EQ(out->mounts[1].type, "tmpfs");
  EXPECT_EQ(out->mounts[1].destination, "/data/cache");
  EXPECT_THAT(out->mounts[1].options, ElementsAre("size=1048576"));

  EXPECT_EQ(out->resources.memory_limit, int64_t{1} << 20);
  EXPECT_EQ(out->resources.cpu_quota, 150000);
  EXPECT_EQ(out->resources.cpu_period, 100000u);
  EXPECT_EQ(out->resources.pids_limit, 100);
  EXPECT_FALSE(out->resources.memory_swap.has_value());

  // A user namespace with both maps; no network namespace (the caller's).
  ASSERT_EQ(out->namespaces.size(), 1u);
  EXPECT_EQ(out->namespaces[0].type, runtime::NamespaceType::kUser);
  EXPECT_EQ(out->namespaces[0].path, "");
  ASSERT_EQ(out->uid_mappings.size(), 1u);
  EXPECT_EQ(out->uid_mappings[0].container_id, 0u);
  EXPECT_EQ(out->uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(out->uid_mappings[0].size, 65536u);
  ASSERT_EQ(out->gid_mappings.size(), 1u);
  EXPECT_EQ(out->gid_mappings[0].host_id, 100000u);
  EXPECT_EQ(out->gid_mappings[0].size, 65536u);
}

TEST(ToRuntimeSpecTest, DefaultsOfAMinimalSpec) {
  runtime::image::ImageConfig image;
  image.cmd = {"sh"};
  image.working_dir = "/image";
  image.user = "nobody";
  absl::StatusOr<runtime::ContainerSpec> out = ToRuntimeSpec(MinimalSpec(), image);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->hostname, "web");
  EXPECT_EQ(out->process.cwd, "/image");
  EXPECT_FALSE(out->user.has_value());  // the runtime falls back to the image's
  EXPECT_FALSE(out->process.terminal);
  EXPECT_FALSE(out->readonly_root);
  EXPECT_FALSE(out->privileged);
  EXPECT_THAT(out->mounts, IsEmpty());
  EXPECT_THAT(out->namespaces, IsEmpty());
  EXPECT_THAT(out->uid_mappings, IsEmpty());
  EXPECT_THAT(out->gid_mappings, IsEmpty());
  EXPECT_FALSE(out->resources.memory_limit.has_value());
  EXPECT_FALSE(out->resources.cpu_quota.has_value());
  EXPECT_FALSE(out->resources.cpu_period.has_value());
  EXPECT_FALSE(out->resources.pids_limit.has_value());
  EXPECT_EQ(out->log.max_size, runtime::LogOptions{}.max_size);
  EXPECT_EQ(out->log.max_files, runtime::LogOptions{}.max_files);
  ASSERT_TRUE(out->process.capabilities.has_value());
  EXPECT_THAT(out->process.capabilities->bounding,
              UnorderedElementsAreArray(runtime::DefaultCapabilities()));

  // No working directory anywhere: left for WithDefaults ("/").
  image.working_dir.clear();
  out = ToRuntimeSpec(MinimalSpec(), image);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->process.cwd, "");
}

TEST(ToRuntimeSpecTest, CpusToQuota) {
  runtime::image::ImageConfig image;
  image.cmd = {"sh"};
  for (const auto& [cpus, quota] : std::vector<std::pair<double, int64_t>>{
           {0.01, 1000}, {0.5, 50000}, {1, 100000}, {2.25, 225000}, {1024, 102400000}}) {
    v1::ContainerSpec spec = MinimalSpec();
    spec.mutable_resources()->set_cpus(cpus);
    absl::StatusOr<runtime::ContainerSpec> out = ToRuntimeSpec(spec, image);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->resources.cpu_quota, quota) << cpus;
    EXPECT_EQ(out->resources.cpu_period, 100000u) << cpus;
  }
}

TEST(ToRuntimeSpecTest, CapabilitiesAddAndDrop) {
  runtime::image::ImageConfig image;
  image.cmd = {"sh"};
  auto caps_of = [&](std::vector<std::string> add, std::vector<std::string> drop,
                     bool privileged = false) -> absl::StatusOr<runtime::CapabilitySets> {
    v1::ContainerSpec spec = MinimalSpec();
    Assign(spec.mutable_cap_add(), add);
    Assign(spec.mutable_cap_drop(), drop);
    spec.set_privileged(privileged);
    absl::StatusOr<runtime::ContainerSpec> out = ToRuntimeSpec(spec, image);
    if (!out.ok()) return out.status();
    // Always set: an unset value would mean "the runtime's defaults".
    if (!out->process.capabilities) return absl::InternalError("capabilities left unset");
    return *out->process.capabilities;
  };
  const std::vector<std::string> defaults = runtime::DefaultCapabilities();

  absl::StatusOr<runtime::CapabilitySets> caps =
      caps_of({"net_admin", "CAP_SYS_PTRACE"}, {"NET_RAW", "cap_mknod"});
  ASSERT_TRUE(caps.ok()) << caps.status();
  std::vector<std::string> want;
  for (const std::string& c : defaults) {
    if (c != "CAP_NET_RAW" && c != "CAP_MKNOD") want.push_back(c);
  }
  want.push_back("CAP_NET_ADMIN");
  want.push_back("CAP_SYS_PTRACE");
  EXPECT_THAT(caps->bounding, UnorderedElementsAreArray(want));
  EXPECT_EQ(caps->permitted, caps->bounding);
  EXPECT_EQ(caps->effective, caps->bounding);
  EXPECT_THAT(caps->inheritable, IsEmpty());
  EXPECT_THAT(caps->ambient, IsEmpty());

  // ALL in cap_add: every capability but those dropped.
  caps = caps_of({"ALL"}, {"sys_admin"});
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(caps->bounding.size(),
            static_cast<size_t>(runtime::security::LastKnownCapability() + 1 - 1));
  EXPECT_THAT(caps->bounding, Not(testing::Contains("CAP_SYS_ADMIN")));

  // ALL in cap_drop: exactly cap_add.
  caps = caps_of({"NET_BIND_SERVICE"}, {"all"});
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_THAT(caps->bounding, ElementsAre("CAP_NET_BIND_SERVICE"));

  // Nothing left: five empty sets, which the runtime applies as no capability at all.
  caps = caps_of({}, {"ALL"});
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_THAT(caps->bounding, IsEmpty());
  EXPECT_THAT(caps->permitted, IsEmpty());
  EXPECT_THAT(caps->effective, IsEmpty());
  EXPECT_THAT(caps->inheritable, IsEmpty());
  EXPECT_THAT(caps->ambient, IsEmpty());
  // Privileged containers get every capability from the runtime anyway.
  EXPECT_TRUE(caps_of({}, {"ALL"}, /*privileged=*/true).ok());

  // A non-root user gets the same sets (Docker's shape for every user).
  v1::ContainerSpec as_user = MinimalSpec();
  as_user.set_user("1000:1000");
  as_user.add_cap_add("NET_ADMIN");
  absl::StatusOr<runtime::ContainerSpec> out = ToRuntimeSpec(as_user, image);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->process.capabilities.has_value());
  EXPECT_THAT(out->process.capabilities->bounding, testing::Contains("CAP_NET_ADMIN"));
  EXPECT_EQ(out->process.capabilities->effective, out->process.capabilities->bounding);
  EXPECT_EQ(out->process.capabilities->permitted, out->process.capabilities->bounding);
  EXPECT_THAT(out->process.capabilities->ambient, IsEmpty());

  ExpectInvalid(caps_of({"CAP_FLY"}, {}).status(), "spec.cap_add[0]", "CAP_FLY");
}

// A group: networks front and back; db (health check), cache, web (depends on db healthy and
// cache), sidecar (in web's network namespace).
v1::GroupSpec Shop() {
  v1::GroupSpec g;
  g.set_name("shop");
  g.add_networks()->set_name("front");
  g.add_networks()->set_name("back");
  auto add = [&g](const std::string& name, std::vector<std::string> networks) {
    v1::GroupContainer* c = g.add_containers();
    c->mutable_spec()->set_name(name);
    c->mutable_spec()->set_image("busybox");
    for (const std::string& n : networks) c->mutable_spec()->add_networks()->set_network(n);
    return c;
  };
  v1::GroupContainer* web = add("web", {"front", "back"});
  add("db", {"back"})->mutable_spec()->mutable_health_check()->add_command("true");
  add("cache", {"back"});
  v1::GroupContainer* sidecar = add("sidecar", {});
  sidecar->mutable_spec()->set_network_from("web");
  v1::Dependency* d = web->add_depends_on();
  d->set_container("db");
  d->set_condition(v1::Dependency::CONDITION_HEALTHY);
  web->add_depends_on()->set_container("cache");
  return g;
}

v1::ContainerSpec* Member(v1::GroupSpec& g, int i) {
  return g.mutable_containers(i)->mutable_spec();
}

TEST(ValidateGroupSpecTest, ValidGroupPasses) {
  EXPECT_TRUE(ValidateGroupSpec(Shop()).ok()) << ValidateGroupSpec(Shop());
  EXPECT_TRUE(ValidateGroupSpec(v1::GroupSpec()).code() == absl::StatusCode::kInvalidArgument);
  v1::GroupSpec empty;
  empty.set_name("empty");
  EXPECT_TRUE(ValidateGroupSpec(empty).ok());
}

TEST(ValidateGroupSpecTest, EveryRuleNamesItsField) {
  const std::string long_name(40, 'g');
  const std::vector<BadCase<v1::GroupSpec>> cases = {
      {"bad group name", [](auto& g) { g.set_name("Shop"); }, "spec.name", "group name"},
      {"bad group label", [](auto& g) { (*g.mutable_labels()->mutable_labels())["A"] = ""; },
       "spec.labels.labels[\"A\"]"},
      {"bad network", [](auto& g) { g.mutable_networks(1)->set_mtu(1); }, "spec.networks[1].mtu"},
      {"bad member", [](auto& g) { Member(g, 2)->clear_image(); }, "spec.containers[2].spec.image"},
      {"bad member port",
       [](auto& g) {
         v1::PortMapping* p = Member(g, 0)->add_ports();
         p->set_host_port(70000);
         p->set_container_port(80);
       },
       "spec.containers[0].spec.ports[0].host_port", "70000 is not a port (1-65535)"},
      {"network twice", [](auto& g) { g.mutable_networks(1)->set_name("front"); },
       "spec.networks[1].name", "spec.networks[0]"},
      {"container twice", [](auto& g) { Member(g, 2)->set_name("db"); },
       "spec.containers[2].spec.name", "spec.containers[1]"},
      {"container name too long with the prefix",
       [&](auto& g) {
         g.set_name(long_name);
         Member(g, 0)->set_name(std::string(23, 'w'));
       },
       "spec.containers[0].spec.name", "63"},
      {"network name too long with the prefix",
       [&](auto& g) {
         g.set_name(long_name);
         g.mutable_networks(0)->set_name(std::string(23, 'n'));
       },
       "spec.networks[0].name", "63"},
      {"unknown network", [](auto& g) { Member(g, 0)->mutable_networks(1)->set_network("mid"); },
       "spec.containers[0].spec.networks[1].network", "\"mid\" is not a network of group"},
      {"unknown network_from", [](auto& g) { Member(g, 3)->set_network_from("proxy"); },
       "spec.containers[3].spec.network_from", "\"proxy\" is not a container of group"},
      {"network_from itself", [](auto& g) { Member(g, 3)->set_network_from("sidecar"); },
       "spec.containers[3].spec.network_from", "itself"},
      {"unknown dependency",
       [](auto& g) { g.mutable_containers(0)->mutable_depends_on(1)->set_container("queue"); },
       "spec.containers[0].depends_on[1].container", "\"queue\" is not a container of group"},
      {"depends on itself",
       [](auto& g) { g.mutable_containers(2)->add_depends_on()->set_container("cache"); },
       "spec.containers[2].depends_on[0].container", "itself"},
      {"dependency twice",
       [](auto& g) { g.mutable_containers(0)->add_depends_on()->set_container("db"); },
       "spec.containers[0].depends_on[2].container", "depends_on[0]"},
      {"unknown condition",
       [](auto& g) {
         g.mutable_containers(0)->mutable_depends_on(1)->set_condition(
             static_cast<v1::Dependency::Condition>(7));
       },
       "spec.containers[0].depends_on[1].condition", "CONDITION_STARTED"},
      {"healthy without a health check",
       [](auto& g) {
         g.mutable_containers(0)->mutable_depends_on(1)->set_condition(
             v1::Dependency::CONDITION_HEALTHY);
       },
       "spec.containers[0].depends_on[1].condition", "\"cache\" has none"},
      {"two-member cycle",
       [](auto& g) { g.mutable_containers(1)->add_depends_on()->set_container("web"); },
       "spec.containers[0]", "dependency cycle web -> db -> web"},
      {"cycle through network_from",
       [](auto& g) { g.mutable_containers(0)->add_depends_on()->set_container("sidecar"); },
       "spec.containers[0]", "dependency cycle web -> sidecar -> web"},
      {"three-member cycle",
       [](auto& g) {
         g.mutable_containers(1)->add_depends_on()->set_container("cache");
         g.mutable_containers(2)->add_depends_on()->set_container("sidecar");
       },
       "spec.containers[0]", "dependency cycle web -> db -> cache -> sidecar -> web"},
  };
  ExpectEachRefused<v1::GroupSpec>(cases, Shop, ValidateGroupSpec);
}

// Shop() with a link web:eth2 (10.0.12.1/30) -- cache:eth1 (10.0.12.2/30), and a route of
// db's that goes through a network (kept by db) and one of cache's through the link.
v1::GroupSpec Linked() {
  v1::GroupSpec g = Shop();
  v1::Link* link = g.add_links();
  link->set_mtu(9000);
  v1::LinkEndpoint* a = link->add_endpoints();
  a->set_container("web");
  a->set_interface("eth2");
  a->add_addresses("10.0.12.1/30");
  a->set_egress_rate_bps(8'000'000);
  v1::LinkEndpoint* b = link->add_endpoints();
  b->set_container("cache");
  b->set_interface("eth1");
  b->add_addresses("10.0.12.2/30");
  b->add_addresses("fd00:12::2/64");
  b->set_mtu(1400);
  AddRoute(*Member(g, 2), "10.0.1.0/24", "10.0.12.1");
  return g;
}

TEST(ValidateGroupSpecTest, LinksAreCheckedAtTheirFields) {
  EXPECT_TRUE(ValidateGroupSpec(Linked()).ok()) << ValidateGroupSpec(Linked());
  const std::vector<BadCase<v1::GroupSpec>> cases = {
      {"one end", [](auto& g) { g.mutable_links(0)->mutable_endpoints()->RemoveLast(); },
       "spec.links[0].endpoints", "has 1 endpoints; a link joins exactly two"},
      {"unknown member",
       [](auto& g) { g.mutable_links(0)->mutable_endpoints(1)->set_container("queue"); },
       "spec.links[0].endpoints[1].container", "\"queue\" is not a container of group"},
      {"member in another's namespace",
       [](auto& g) { g.mutable_links(0)->mutable_endpoints(1)->set_container("sidecar"); },
       "spec.links[0].endpoints[1].container", "link \"web\" instead"},
      {"interface of a network",
       [](auto& g) { g.mutable_links(0)->mutable_endpoints(0)->set_interface("eth1"); },
       "spec.links[0].endpoints[0].interface", "\"web\" has eth1 for network \"back\""},
      {"interface of another link",
       [](auto& g) {
         v1::Link* second = g.add_links();
         *second = g.links(0);
         second->mutable_endpoints(0)->set_interface("eth3");
       },
       "spec.links[1].endpoints[1].interface", "for spec.links[0] (web:eth2--cache:eth1)"},
      {"bad interface name",
       [](auto& g) { g.mutable_links(0)->mutable_endpoints(0)->set_interface("lo"); },
       "spec.links[0].endpoints[0].interface", "not an interface name"},
      {"address without length",
       [](auto& g) { g.mutable_links(0)->mutable_endpoints(0)->set_addresses(0, "10.0.12.1"); },
       "spec.links[0].endpoints[0].addresses[0]", "missing prefix length"},
      {"network address",
       [](auto& g) { g.mutable_links(0)->mutable_endpoints(0)->set_addresses(0, "10.0.12.0/30"); },
       "spec.links[0].endpoints[0].addresses[0]", "network address of 10.0.12.0/30"},
      {"address twice",
       [](auto& g) { g.mutable_links(0)->mutable_endpoints(1)->set_addresses(1, "10.0.12.2/29"); },
       "spec.links[0].endpoints[1].addresses[1]", "given twice"},
      {"link mtu", [](auto& g) { g.mutable_links(0)->set_mtu(20); }, "spec.links[0].mtu",
       "outside 68 to 65535"},
      {"end mtu", [](auto& g) { g.mutable_links(0)->mutable_endpoints(1)->set_mtu(70000); },
       "spec.links[0].endpoints[1].mtu", "outside 68 to 65535"},
      {"end rate",
       [](auto& g) { g.mutable_links(0)->mutable_endpoints(0)->set_egress_rate_bps(1); },
       "spec.links[0].endpoints[0].egress_rate_bps", "out of range"},
      {"default route through a link on a member with networks",
       [](auto& g) { AddRoute(*Member(g, 0), "default", "10.0.12.2"); },
       "spec.containers[0].spec.routes[0]", "a default route through a link"},
  };
  ExpectEachRefused<v1::GroupSpec>(cases, Linked, ValidateGroupSpec);
}

TEST(ToLinkConfigTest, FullNamesNamespacesMtusLimitsAndTheRoutesThroughIt) {
  const v1::GroupSpec g = Linked();
  absl::StatusOr<netplane::LinkConfig> link =
      ToLinkConfig(g, 0, [](const std::string& c) { return "/run/mesh/netns/" + c; });
  ASSERT_TRUE(link.ok()) << link.status();
  EXPECT_EQ(link->id, "shop/web:eth2--cache:eth1");
  EXPECT_EQ(LinkName(g.links(0)), "web:eth2--cache:eth1");
  const netplane::LinkEnd& web = link->ends[0];
  const netplane::LinkEnd& cache = link->ends[1];
  EXPECT_EQ(web.container_id, "shop-web");
  EXPECT_EQ(web.netns_path, "/run/mesh/netns/shop-web");
  EXPECT_EQ(web.mtu, 9000);
  EXPECT_EQ(cache.mtu, 1400);
  ASSERT_TRUE(web.egress.has_value());
  EXPECT_EQ(web.egress->burst_bytes, 32768u);  // the default bucket
  EXPECT_FALSE(cache.egress.has_value());
  ASSERT_EQ(cache.addresses.size(), 2u);
  EXPECT_EQ(cache.addresses[1].ToString(), "fd00:12::2/64");
  // cache's route through web's end of the link goes with cache's end.
  ASSERT_EQ(cache.routes.size(), 1u);
  EXPECT_EQ(cache.routes[0].ToString(), "10.0.1.0/24 via 10.0.12.1");
  EXPECT_TRUE(web.routes.empty());
  EXPECT_TRUE(netplane::LinkManager::Validate(*link).ok());

  EXPECT_TRUE(RoutesThroughLink(g, "cache", g.containers(2).spec().routes(0)));
  v1::Route elsewhere;
  elsewhere.set_destination("10.9.0.0/16");
  elsewhere.set_via("10.88.2.1");
  EXPECT_FALSE(RoutesThroughLink(g, "cache", elsewhere));
  EXPECT_FALSE(RoutesThroughLink(g, "db", g.containers(2).spec().routes(0))) << "db has no link";
}

// Shop() with a policy: default deny; web may reach db on tcp/5432 and ping it; cache is
// denied everything from the back network.
v1::GroupSpec Policed() {
  v1::GroupSpec g = Shop();
  v1::Policy* p = g.mutable_policy();
  p->set_default_action(v1::Policy::DEFAULT_DENY);
  v1::PolicyRule* allow = p->add_rules();
  allow->set_action(v1::PolicyRule::ACTION_ALLOW);
  allow->add_from("web");
  allow->add_to("db");
  allow->add_ports("tcp/5432");
  allow->add_ports("icmp");
  v1::PolicyRule* deny = p->add_rules();
  deny->set_action(v1::PolicyRule::ACTION_DENY);
  deny->add_from("network:back");
  deny->add_to("cache");
  deny->set_description("nobody talks to the cache");
  return g;
}

TEST(ValidateGroupSpecTest, PolicyRulesAreCheckedAtTheirFields) {
  EXPECT_TRUE(ValidateGroupSpec(Policed()).ok()) << ValidateGroupSpec(Policed());
  const std::vector<BadCase<v1::GroupSpec>> cases = {
      {"no action",
       [](auto& g) {
         g.mutable_policy()->mutable_rules(0)->set_action(v1::PolicyRule::ACTION_UNSPECIFIED);
       },
       "spec.policy.rules[0].action", "ACTION_ALLOW or ACTION_DENY"},
      {"unknown member", [](auto& g) { g.mutable_policy()->mutable_rules(0)->set_to(0, "queue"); },
       "spec.policy.rules[0].to[0]", "\"queue\" is not a container of group \"shop\""},
      {"unknown network",
       [](auto& g) { g.mutable_policy()->mutable_rules(1)->set_from(0, "network:mid"); },
       "spec.policy.rules[1].from[0]", "\"mid\" is not a network of group"},
      {"nobody", [](auto& g) { g.mutable_policy()->mutable_rules(1)->clear_to(); },
       "spec.policy.rules[1].to", "is empty"},
      {"a group by a name no group can have",
       [](auto& g) { g.mutable_policy()->mutable_rules(0)->set_from(0, "group:Front_End"); },
       "spec.policy.rules[0].from[0]", "group name"},
      {"a group without a name",
       [](auto& g) { g.mutable_policy()->mutable_rules(0)->set_to(0, "group:"); },
       "spec.policy.rules[0].to[0]", "group name"},
      {"bad port", [](auto& g) { g.mutable_policy()->mutable_rules(0)->set_ports(0, "tcp/0"); },
       "spec.policy.rules[0].ports[0]", "1 to 65535"},
      {"bad protocol", [](auto& g) { g.mutable_policy()->mutable_rules(0)->set_ports(1, "sctp"); },
       "spec.policy.rules[0].ports[1]", "write tcp/80, udp/53, tcp, udp or icmp"},
      {"icmp with a port",
       [](auto& g) { g.mutable_policy()->mutable_rules(0)->set_ports(1, "icmp/8"); },
       "spec.policy.rules[0].ports[1]", "is not a port"},
      {"bad default",
       [](auto& g) { g.mutable_policy()->set_default_action(static_cast<v1::Policy::Default>(9)); },
       "spec.policy.default_action", "DEFAULT_ALLOW or DEFAULT_DENY"},
  };
  ExpectEachRefused<v1::GroupSpec>(cases, Policed, ValidateGroupSpec);
}

// A policy's addresses as text, in order.
std::vector<std::string> Text(const std::vector<in_addr>& list) {
  std::vector<std::string> out;
  for (const in_addr& a : list) out.push_back(netplane::ipam::FromInAddr(a).ToString());
  return out;
}

TEST(ToPolicyTest, MembersBecomeTheirAddressesAndPortsTheirProtocols) {
  const v1::GroupSpec g = Policed();
  const MemberAddresses addresses = {
      {"web", {{"front", "10.88.1.2"}, {"back", "10.88.2.2"}}},
      {"db", {{"back", "10.88.2.3"}}},
      {"cache", {{"back", "10.88.2.4"}}}};  // sidecar: no addresses of its own
  absl::StatusOr<netplane::nft::PolicyEntry> p = ToPolicy(g, addresses);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->group, "shop");
  EXPECT_TRUE(p->default_deny);
  ASSERT_EQ(p->rules.size(), 2u);
  EXPECT_TRUE(p->rules[0].allow);
  EXPECT_THAT(Text(p->rules[0].from), ElementsAre("10.88.1.2", "10.88.2.2"));
  EXPECT_THAT(Text(p->rules[0].to), ElementsAre("10.88.2.3"));
  ASSERT_EQ(p->rules[0].ports.size(), 1u);
  EXPECT_EQ(p->rules[0].ports[0], (std::pair<uint8_t, uint16_t>{IPPROTO_TCP, 5432}));
  EXPECT_THAT(p->rules[0].protocols, ElementsAre(IPPROTO_ICMP));
  EXPECT_EQ(p->rules[0].comment, "policy shop rule 1: allow web -> db tcp/5432,icmp");
  EXPECT_FALSE(p->rules[1].allow);
  // network:back: every member's address on back.
  EXPECT_THAT(Text(p->rules[1].from),
              ::testing::UnorderedElementsAre("10.88.2.2", "10.88.2.3", "10.88.2.4"));
  EXPECT_EQ(p->rules[1].comment, "policy shop rule 2: nobody talks to the cache");
  EXPECT_THAT(Text(p->members),
              ::testing::UnorderedElementsAre("10.88.1.2", "10.88.2.2", "10.88.2.3", "10.88.2.4"));
}

// Rules may name whole groups: another group's members by the addresses it has now (none
// while it does not exist), the group itself as every member.
TEST(ToPolicyTest, GroupsBecomeTheirMembersAddresses) {
  v1::GroupSpec g = Policed();
  v1::PolicyRule* from_front = g.mutable_policy()->add_rules();
  from_front->set_action(v1::PolicyRule::ACTION_ALLOW);
  from_front->add_from("group:front");
  from_front->add_from("group:nosuch");
  from_front->add_to("group:shop");
  from_front->add_ports("tcp/443");
  ASSERT_TRUE(ValidateGroupSpec(g).ok()) << ValidateGroupSpec(g);
  EXPECT_THAT(PolicyGroups(g), ElementsAre("front", "nosuch"));
  const MemberAddresses addresses = {{"web", {{"front", "10.88.1.2"}}},
                                     {"db", {{"back", "10.88.2.3"}}}};
  const GroupAddresses groups = {{"front", {"10.90.0.2", "10.90.0.3"}}, {"nosuch", {}}};
  absl::StatusOr<netplane::nft::PolicyEntry> p = ToPolicy(g, addresses, groups);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->rules.size(), 3u);
  EXPECT_THAT(Text(p->rules[2].from), ElementsAre("10.90.0.2", "10.90.0.3"));
  EXPECT_THAT(Text(p->rules[2].to), ::testing::UnorderedElementsAre("10.88.1.2", "10.88.2.3"));
  EXPECT_EQ(p->rules[2].comment,
            "policy shop rule 3: allow group:front,group:nosuch -> group:shop tcp/443");
  // Without the other groups' addresses, the rule matches nobody from there.
  p = ToPolicy(g, addresses);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->rules[2].from.empty());
}

TEST(ValidateGroupSpecTest, LongestNamesThatFit) {
  v1::GroupSpec g = Shop();
  g.set_name(std::string(40, 'g'));
  Member(g, 0)->set_name(std::string(22, 'w'));  // 40 + 1 + 22 = 63
  Member(g, 3)->set_network_from(std::string(22, 'w'));
  g.mutable_containers(0)->clear_depends_on();
  g.mutable_networks(0)->set_name(std::string(22, 'n'));
  Member(g, 0)->mutable_networks(0)->set_network(std::string(22, 'n'));
  EXPECT_TRUE(ValidateGroupSpec(g).ok()) << ValidateGroupSpec(g);
  EXPECT_EQ(MemberName("shop", "web"), "shop-web");
}

// A group whose members depend on each other as `deps` says (member i waits for each name).
v1::GroupSpec Chain(const std::vector<std::pair<std::string, std::vector<std::string>>>& deps) {
  v1::GroupSpec g;
  g.set_name("g");
  for (const auto& [name, on] : deps) {
    v1::GroupContainer* c = g.add_containers();
    c->mutable_spec()->set_name(name);
    c->mutable_spec()->set_image("busybox");
    for (const std::string& d : on) c->add_depends_on()->set_container(d);
  }
  return g;
}

TEST(DependencyOrderTest, DependenciesFirstSpecOrderOtherwise) {
  EXPECT_THAT(DependencyOrder(v1::GroupSpec()), IsEmpty());
  EXPECT_THAT(DependencyOrder(Chain({{"a", {}}, {"b", {}}, {"c", {}}})), ElementsAre(0, 1, 2));
  EXPECT_THAT(DependencyOrder(Chain({{"web", {"db"}}, {"db", {}}, {"cache", {}}})),
              ElementsAre(1, 0, 2));
  EXPECT_THAT(DependencyOrder(Chain({{"a", {"b"}}, {"b", {"c"}}, {"c", {}}})),
              ElementsAre(2, 1, 0));
  // x waits for z; y may go first, being earlier in the spec than z.
  EXPECT_THAT(DependencyOrder(Chain({{"x", {"z"}}, {"y", {}}, {"z", {}}})), ElementsAre(1, 2, 0));
  // A diamond.
  EXPECT_THAT(DependencyOrder(Chain(
                  {{"app", {"db", "cache"}}, {"cache", {"vol"}}, {"db", {"vol"}}, {"vol", {}}})),
              ElementsAre(3, 1, 2, 0));
  // network_from counts as a dependency.
  EXPECT_THAT(DependencyOrder(Shop()), ElementsAre(1, 2, 0, 3));
}

TEST(DependencyOrderTest, NeverFailsOnInvalidGroups) {
  // Unknown and self references are ignored; a cycle's members come last, in spec order.
  EXPECT_THAT(DependencyOrder(Chain({{"a", {"a", "nope"}}, {"b", {}}})), ElementsAre(0, 1));
  EXPECT_THAT(DependencyOrder(Chain({{"a", {"b"}}, {"b", {"a"}}, {"c", {}}, {"d", {"a"}}})),
              ElementsAre(2, 0, 1, 3));
  // A long chain (no recursion to run out of stack).
  std::vector<std::pair<std::string, std::vector<std::string>>> chain;
  for (int i = 0; i < 20000; ++i) {
    chain.push_back({absl::StrCat("c", i), {absl::StrCat("c", i + 1)}});
  }
  chain.push_back({"c20000", {"c0"}});
  v1::GroupSpec g = Chain(chain);
  EXPECT_EQ(DependencyOrder(g).size(), 20001u);
  ExpectInvalid(ValidateGroupSpec(g), "spec.containers[0]", "dependency cycle c0 -> c1 -> c2");
}

TEST(SignalTest, Parse) {
  const std::vector<std::pair<std::string, int>> good = {
      {"", SIGKILL},        {"SIGTERM", SIGTERM},
      {"TERM", SIGTERM},    {"term", SIGTERM},
      {"sigterm", SIGTERM}, {"15", SIGTERM},
      {"SigKill", SIGKILL}, {"HUP", SIGHUP},
      {"usr1", SIGUSR1},    {"IOT", SIGABRT},
      {"CLD", SIGCHLD},     {"POLL", SIGIO},
      {"WINCH", SIGWINCH},  {"1", 1},
      {"64", 64},           {"RTMIN", 34},
      {"RTMIN+2", 36},      {"SIGRTMAX-1", 63},
      {"rtmax", 64},        {"SIGRTMIN+30", 64},
      {"RTMAX-30", 34},     {"STKFLT", 16},
      {"SYS", SIGSYS},      {"PWR", SIGPWR},
  };
  for (const auto& [name, number] : good) {
    absl::StatusOr<int> parsed = ParseSignal(name);
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status();
    EXPECT_EQ(*parsed, number) << name;
  }
  for (absl::string_view bad :
       {"0", "65", "-1", "+15", " 15", "15 ", "1234", "FOO", "SIGFOO", "SIG", "RTMIN+31",
        "RTMAX-31", "RTMIN-1", "RTMAX+1", "RTMIN+", "SIGSIGTERM", "TERM\n"}) {
    absl::StatusOr<int> parsed = ParseSignal(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("signal \"")) << bad;
  }
}

TEST(SignalTest, NameAndRoundTrip) {
  EXPECT_EQ(SignalName(SIGKILL), "SIGKILL");
  EXPECT_EQ(SignalName(SIGTERM), "SIGTERM");
  EXPECT_EQ(SignalName(SIGABRT), "SIGABRT");
  EXPECT_EQ(SignalName(SIGCHLD), "SIGCHLD");
  EXPECT_EQ(SignalName(SIGIO), "SIGIO");
  EXPECT_EQ(SignalName(34), "SIGRTMIN");
  EXPECT_EQ(SignalName(36), "SIGRTMIN+2");
  EXPECT_EQ(SignalName(49), "SIGRTMIN+15");
  EXPECT_EQ(SignalName(50), "SIGRTMAX-14");
  EXPECT_EQ(SignalName(63), "SIGRTMAX-1");
  EXPECT_EQ(SignalName(64), "SIGRTMAX");
  EXPECT_EQ(SignalName(32), "32");
  EXPECT_EQ(SignalName(0), "0");
  EXPECT_EQ(SignalName(65), "65");
  for (int n = 1; n <= 64; ++n) {
    absl::StatusOr<int> parsed = ParseSignal(SignalName(n));
    ASSERT_TRUE(parsed.ok()) << n << ": " << parsed.status();
    EXPECT_EQ(*parsed, n) << SignalName(n);
  }
}

TEST(DurationTest, Validate) {
  google::protobuf::Duration d;
  EXPECT_TRUE(ValidateDuration(d, "f").ok());
  d.set_seconds(-3);
  d.set_nanos(-5);
  EXPECT_TRUE(ValidateDuration(d, "f").ok());
  d.set_nanos(5);
  ExpectInvalid(ValidateDuration(d, "f"), "f", "different signs");
  d.set_seconds(0);
  d.set_nanos(1000000000);
  ExpectInvalid(ValidateDuration(d, "f"), "f", "nanos");
  d.set_nanos(0);
  d.set_seconds(315576000001);
  ExpectInvalid(ValidateDuration(d, "f"), "f", "seconds");
  d.set_seconds(-315576000000);
  EXPECT_TRUE(ValidateDuration(d, "f").ok());
}

TEST(DurationTest, Conversions) {
  google::protobuf::Duration d = ToProtoDuration(absl::Milliseconds(1500));
  EXPECT_EQ(d.seconds(), 1);
  EXPECT_EQ(d.nanos(), 500000000);
  EXPECT_EQ(FromProtoDuration(d), absl::Milliseconds(1500));
  d = ToProtoDuration(absl::Milliseconds(-1500));
  EXPECT_EQ(d.seconds(), -1);
  EXPECT_EQ(d.nanos(), -500000000);
  EXPECT_TRUE(ValidateDuration(d, "f").ok());
  EXPECT_EQ(FromProtoDuration(d), absl::Milliseconds(-1500));
  d = ToProtoDuration(absl::InfiniteDuration());
  EXPECT_EQ(d.seconds(), 315576000000);
  EXPECT_EQ(d.nanos(), 999999999);
  d = ToProtoDuration(-absl::InfiniteDuration());
  EXPECT_EQ(d.seconds(), -315576000000);
  EXPECT_EQ(d.nanos(), -999999999);
  EXPECT_EQ(FromProtoDuration(ToProtoDuration(absl::Nanoseconds(7))), absl::Nanoseconds(7));
}

TEST(TimestampTest, Conversions) {
  const absl::Time t = absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(123);
  google::protobuf::Timestamp ts = ToProtoTimestamp(t);
  EXPECT_EQ(ts.seconds(), 1700000000);
  EXPECT_EQ(ts.nanos(), 123);
  EXPECT_EQ(FromProtoTimestamp(ts), t);
  // Before the epoch, nanos stay positive.
  ts = ToProtoTimestamp(absl::UnixEpoch() - absl::Nanoseconds(1));
  EXPECT_EQ(ts.seconds(), -1);
  EXPECT_EQ(ts.nanos(), 999999999);
  EXPECT_EQ(FromProtoTimestamp(ts), absl::UnixEpoch() - absl::Nanoseconds(1));
  ts = ToProtoTimestamp(absl::InfiniteFuture());
  EXPECT_EQ(ts.seconds(), 253402300799);
  EXPECT_EQ(ts.nanos(), 999999999);
  ts = ToProtoTimestamp(absl::InfinitePast());
  EXPECT_EQ(ts.seconds(), -62135596800);
  EXPECT_EQ(ts.nanos(), 0);
}

}  // namespace
}  // namespace mesh::agent
