// The group spec loader (docs/spec.md): every key into its API field, every kind of problem at
// its line and column, several at once, env files, relative paths, the examples, and meshd's
// errors put back at their place in the file.
#include "cli/spec/spec_loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/scoped_temp_dir.h"

namespace mesh::cli {
namespace {

using ::testing::HasSubstr;

constexpr char kBase[] = "/home/ann/shop";

absl::StatusOr<LoadedSpec> Load(const std::string& yaml, const std::string& base = kBase) {
  return ParseSpec(yaml, "f.yaml", {.base_dir = base});
}

// The problems of `yaml`, or "OK".
std::string Problems(const std::string& yaml) {
  absl::StatusOr<LoadedSpec> spec = Load(yaml);
  if (spec.ok()) return "OK";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

// A spec with one container "web" whose keys are `body` (indented by 4).
std::string Web(const std::string& body) {
  return "name: shop\ncontainers:\n  web:\n    image: busybox\n" + body;
}

// "line:column" of the `nth` (0-based) occurrence of `needle` in `text`.
std::string PositionOf(const std::string& text, const std::string& needle, int nth = 0) {
  size_t at = text.find(needle);
  for (int k = 0; k < nth && at != std::string::npos; ++k) at = text.find(needle, at + 1);
  if (at == std::string::npos) return "not found";
  const size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
  const size_t column = line_start == std::string::npos || at == 0 ? at + 1 : at - line_start;
  return absl::StrCat(std::count(text.begin(), text.begin() + at, '\n') + 1, ":", column);
}

// "line:column" of what follows the first `prefix` in `text`.
std::string PositionAfter(const std::string& text, const std::string& prefix) {
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return "not found";
  const size_t after = at + prefix.size();
  const size_t line_start = text.rfind('\n', after - 1);
  return absl::StrCat(std::count(text.begin(), text.begin() + after, '\n') + 1, ":",
                      line_start == std::string::npos ? after + 1 : after - line_start);
}

std::string PositionString(const std::optional<SourcePosition>& p) {
  if (!p) return "none";
  return absl::StrCat(p->line, ":", p->column);
}

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(MESH_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every key of the format, with the GroupSpec it must give.
constexpr char kFullSpec[] = R"(# every key
name: shop
labels:
  team: web
  tier: "1"
networks:
  front:
    subnet: 10.89.0.0/24
    gateway: 10.89.0.1
    nat: true
    mtu: 1400
    labels: {zone: dmz}
  back:
    subnet: 10.89.1.0/24
    nat: false
    internal: true
  scratch:
containers:
  db:
    image: busybox
    command: sh -c 'echo "ready" && exec sleep 1000'
    entrypoint: [/bin/env, --]
    env_file: db.env
    environment:
      MODE: primary
      EMPTY: ""
      PORT: 5432
    working_dir: /data
    user: "1000:1000"
    hostname: database
    networks:
      back:
        ipv4_address: 10.89.1.5
        aliases: [db, primary]
      scratch:
    volumes:
      - ./data:/data
      - ../shared/conf:/etc/app:ro
      - /srv/backup:/backup:rw
    tmpfs:
      /run: {size: 64m}
      /tmp:
    resources:
      memory: 512m
      cpus: 1.5
      pids: 200
    restart: on-failure:5
    healthcheck:
      test: [CMD, test, -f, /run/ready]
      interval: 1m30s
      timeout: 500ms
      retries: 4
      start_period: 10s
    init: true
    privileged: false
    read_only: true
    tty: true
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD, NET_RAW]
    labels: [role=db, "note=a=b"]
    stop_grace_period: 1m
    logging: {max_size: 10MiB, max_files: 5}
    userns_host_base: 100000
  web:
    image: web:1.2
    command: [httpd, -f, -p, "80"]
    environment: [A=1, B=two=2, C=]
    networks: [front, back]
    ports:
      - 8080:80
      - 127.0.0.1:8443:443/tcp
      - "53/udp"
    tmpfs: [/cache]
    depends_on:
      db: {condition: healthy}
      job:
        condition: completed_successfully
    restart: always
    healthcheck:
      test: wget -q -O- http://localhost/
  job:
    image: busybox
    command: ["true"]
    restart: no
  sidecar:
    image: busybox
    network_mode: container:web
    depends_on: [web]
    restart: unless-stopped
    healthcheck:
      test: [CMD-SHELL, "test -e /tmp/ok", "&&", "true"]
      retries: 0
)";

constexpr char kDbEnv[] = R"(# the database's settings
DB_USER=admin
MODE=from-file

  QUOTED="a b"
SINGLE='c d'
)";

constexpr char kFullSpecProto[] = R"pb(
  name: "shop"
  labels {
    labels { key: "team" value: "web" }
    labels { key: "tier" value: "1" }
  }
  networks {
    name: "front"
    subnet: "10.89.0.0/24"
    gateway: "10.89.0.1"
    mtu: 1400
    labels { labels { key: "zone" value: "dmz" } }
  }
  networks { name: "back" subnet: "10.89.1.0/24" internal: true disable_nat: true }
  networks { name: "scratch" }
  containers {
    spec {
      name: "db"
      image: "busybox"
      entrypoint: [ "/bin/env", "--" ]
      args: [ "sh", "-c", "echo \"ready\" && exec sleep 1000" ]
      env: [ "DB_USER=admin", "MODE=primary", "QUOTED=a b", "SINGLE=c d", "EMPTY=", "PORT=5432" ]
      working_dir: "/data"
      user: "1000:1000"
      hostname: "database"
      labels {
        labels { key: "role" value: "db" }
        labels { key: "note" value: "a=b" }
      }
      networks {
        network: "back"
        ip: "10.89.1.5"
        aliases: [ "db", "primary" ]
      }
      networks { network: "scratch" }
      mounts { type: TYPE_BIND source: "BASE/data" destination: "/data" }
      mounts {
        type: TYPE_BIND
        source: "PARENT/shared/conf"
        destination: "/etc/app"
        read_only: true
      }
      mounts { type: TYPE_BIND source: "/srv/backup" destination: "/backup" }
      mounts { type: TYPE_TMPFS destination: "/run" tmpfs_size_bytes: 67108864 }
      mounts { type: TYPE_TMPFS destination: "/tmp" }
      resources { memory_bytes: 536870912 cpus: 1.5 pids: 200 }
      restart { mode: MODE_ON_FAILURE max_retries: 5 }
      health_check {
        command: [ "test", "-f", "/run/ready" ]
        interval { seconds: 90 }
        timeout { nanos: 500000000 }
        retries: 4
        start_period { seconds: 10 }
      }
      init: true
      tty: true
      read_only_root: true
      cap_add: [ "NET_ADMIN" ]
      cap_drop: [ "MKNOD", "NET_RAW" ]
      userns_host_base: 100000
      stop_timeout { seconds: 60 }
      log_max_bytes: 10485760
      log_max_files: 5
    }
  }
  containers {
    spec {
      name: "web"
      image: "web:1.2"
      args: [ "httpd", "-f", "-p", "80" ]
      env: [ "A=1", "B=two=2", "C=" ]
      networks { network: "front" }
      networks { network: "back" }
      ports { host_port: 8080 container_port: 80 }
      ports { protocol: PROTOCOL_TCP host_ip: "127.0.0.1" host_port: 8443 container_port: 443 }
      ports { protocol: PROTOCOL_UDP host_port: 53 container_port: 53 }
      mounts { type: TYPE_TMPFS destination: "/cache" }
      restart { mode: MODE_ALWAYS }
      health_check { command: [ "/bin/sh", "-c", "wget -q -O- http://localhost/" ] }
    }
    depends_on { container: "db" condition: CONDITION_HEALTHY }
    depends_on { container: "job" condition: CONDITION_EXITED_OK }
  }
  containers {
    spec {
      name: "job"
      image: "busybox"
      args: [ "true" ]
      restart { mode: MODE_NO }
    }
  }
  containers {
    spec {
      name: "sidecar"
      image: "busybox"
      network_from: "web"
      restart { mode: MODE_UNLESS_STOPPED }
      health_check { command: [ "/bin/sh", "-c", "test -e /tmp/ok && true" ] }
    }
    depends_on { container: "web" condition: CONDITION_STARTED }
  }
)pb";

class FullSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    std::ofstream(dir_.path() + "/db.env") << kDbEnv;
  }
  mesh::testing::ScopedTempDir dir_{"/tmp/mesh-spec-test-"};
};

TEST_F(FullSpecTest, EveryKeyGoesIntoItsApiField) {
  absl::StatusOr<LoadedSpec> loaded = Load(kFullSpec, dir_.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  v1::GroupSpec want;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      absl::StrReplaceAll(kFullSpecProto,
                          {{"BASE", dir_.path()},
                           {"PARENT", std::filesystem::path(dir_.path()).parent_path().string()}}),
      &want));
  google::protobuf::util::MessageDifferencer differencer;
  std::string diff;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(want, loaded->spec)) << diff;
}

TEST_F(FullSpecTest, EveryFieldSetHasItsPosition) {
  absl::StatusOr<LoadedSpec> loaded = Load(kFullSpec, dir_.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const SourceMap& map = loaded->sources;
  const std::string yaml = kFullSpec;
  auto at = [&](const std::string& path) { return PositionString(map.Find(path)); };
  EXPECT_EQ(at("spec.name"), PositionOf(yaml, "shop"));
  EXPECT_EQ(at("spec.labels"), PositionOf(yaml, "labels:"));
  EXPECT_EQ(at("spec.labels.labels[\"tier\"]"), PositionOf(yaml, "tier"));
  EXPECT_EQ(at("spec.networks[0]"), PositionOf(yaml, "front:"));
  EXPECT_EQ(at("spec.networks[0].name"), PositionOf(yaml, "front:"));
  EXPECT_EQ(at("spec.networks[0].subnet"), PositionOf(yaml, "10.89.0.0/24"));
  EXPECT_EQ(at("spec.networks[0].gateway"), PositionOf(yaml, "10.89.0.1\n"));
  EXPECT_EQ(at("spec.networks[0].disable_nat"), PositionOf(yaml, "true"));
  EXPECT_EQ(at("spec.networks[0].mtu"), PositionOf(yaml, "1400"));
  EXPECT_EQ(at("spec.networks[0].labels.labels[\"zone\"]"), PositionOf(yaml, "zone"));
  EXPECT_EQ(at("spec.networks[1].internal"), PositionOf(yaml, "true", 1));
  EXPECT_EQ(at("spec.networks[2]"), PositionOf(yaml, "scratch:"));
  EXPECT_EQ(at("spec.containers[0]"), PositionOf(yaml, "db:"));
  EXPECT_EQ(at("spec.containers[0].spec"), PositionOf(yaml, "db:"));
  EXPECT_EQ(at("spec.containers[0].spec.name"), PositionOf(yaml, "db:"));
  EXPECT_EQ(at("spec.containers[0].spec.image"), PositionOf(yaml, "busybox"));
  EXPECT_EQ(at("spec.containers[0].spec.args"), PositionOf(yaml, "sh -c"));
  EXPECT_EQ(at("spec.containers[0].spec.args[2]"), PositionOf(yaml, "sh -c"));
  EXPECT_EQ(at("spec.containers[0].spec.entrypoint[1]"), PositionOf(yaml, "--]"));
  EXPECT_EQ(at("spec.containers[0].spec.env"), PositionOf(yaml, "env_file"));
  EXPECT_EQ(map.Find("spec.containers[0].spec.env[0]"),
            (SourcePosition{dir_.path() + "/db.env", 2, 1}));
  EXPECT_EQ(map.Find("spec.containers[0].spec.env[2]"),
            (SourcePosition{dir_.path() + "/db.env", 5, 3}));
  EXPECT_EQ(at("spec.containers[0].spec.env[1]"), PositionOf(yaml, "MODE"));  // the override
  EXPECT_EQ(at("spec.containers[0].spec.env[5]"), PositionOf(yaml, "PORT"));
  EXPECT_EQ(at("spec.containers[0].spec.working_dir"), PositionOf(yaml, "/data\n"));
  EXPECT_EQ(at("spec.containers[0].spec.user"), PositionOf(yaml, "\"1000:1000\""));
  EXPECT_EQ(at("spec.containers[0].spec.hostname"), PositionOf(yaml, "database"));
  EXPECT_EQ(at("spec.containers[0].spec.networks"), PositionOf(yaml, "networks:", 1));
  EXPECT_EQ(at("spec.containers[0].spec.networks[0].network"), PositionOf(yaml, "back:", 1));
  EXPECT_EQ(at("spec.containers[0].spec.networks[0].ip"), PositionOf(yaml, "10.89.1.5"));
  EXPECT_EQ(at("spec.containers[0].spec.networks[0].aliases[1]"), PositionOf(yaml, "primary]"));
  EXPECT_EQ(at("spec.containers[0].spec.networks[1]"), PositionOf(yaml, "scratch:", 1));
  EXPECT_EQ(at("spec.containers[0].spec.mounts"), PositionOf(yaml, "volumes:"));
  EXPECT_EQ(at("spec.containers[0].spec.mounts[1].source"), PositionOf(yaml, "../shared"));
  EXPECT_EQ(at("spec.containers[0].spec.mounts[3].destination"), PositionOf(yaml, "/run:"));
  EXPECT_EQ(at("spec.containers[0].spec.mounts[3].tmpfs_size_bytes"), PositionOf(yaml, "64m"));
  EXPECT_EQ(at("spec.containers[0].spec.resources"), PositionOf(yaml, "resources:"));
  EXPECT_EQ(at("spec.containers[0].spec.resources.memory_bytes"), PositionOf(yaml, "512m"));
  EXPECT_EQ(at("spec.containers[0].spec.resources.cpus"), PositionAfter(yaml, "cpus: "));
  EXPECT_EQ(at("spec.containers[0].spec.resources.pids"), PositionOf(yaml, "200"));
  EXPECT_EQ(at("spec.containers[0].spec.restart.max_retries"), PositionOf(yaml, "on-failure:5"));
  EXPECT_EQ(at("spec.containers[0].spec.health_check"), PositionOf(yaml, "healthcheck:"));
  EXPECT_EQ(at("spec.containers[0].spec.health_check.command[0]"), PositionOf(yaml, "test, -f"));
  EXPECT_EQ(at("spec.containers[0].spec.health_check.interval"), PositionOf(yaml, "1m30s"));
  EXPECT_EQ(at("spec.containers[0].spec.health_check.timeout"), PositionOf(yaml, "500ms"));
  EXPECT_EQ(at("spec.containers[0].spec.health_check.retries"), PositionAfter(yaml, "retries: "));
  EXPECT_EQ(at("spec.containers[0].spec.health_check.start_period"), PositionOf(yaml, "10s"));
  EXPECT_EQ(at("spec.containers[0].spec.init"), PositionOf(yaml, "true\n    privileged"));
  EXPECT_EQ(at("spec.containers[0].spec.privileged"), PositionOf(yaml, "false\n    read"));
  EXPECT_EQ(at("spec.containers[0].spec.read_only_root"), PositionOf(yaml, "true\n    tty"));
  EXPECT_EQ(at("spec.containers[0].spec.cap_drop[1]"), PositionOf(yaml, "NET_RAW"));
  EXPECT_EQ(at("spec.containers[0].spec.labels.labels[\"note\"]"), PositionOf(yaml, "\"note"));
  EXPECT_EQ(at("spec.containers[0].spec.stop_timeout"), PositionOf(yaml, "1m\n"));
  EXPECT_EQ(at("spec.containers[0].spec.log_max_bytes"), PositionOf(yaml, "10MiB"));
  EXPECT_EQ(at("spec.containers[0].spec.log_max_files"), PositionOf(yaml, "5}"));
  EXPECT_EQ(at("spec.containers[0].spec.userns_host_base"), PositionOf(yaml, "100000"));
  EXPECT_EQ(at("spec.containers[1].spec.args[3]"), PositionOf(yaml, "\"80\""));
  EXPECT_EQ(at("spec.containers[1].spec.env[2]"), PositionOf(yaml, "C="));
  EXPECT_EQ(at("spec.containers[1].spec.ports[1]"), PositionOf(yaml, "127.0.0.1"));
  EXPECT_EQ(at("spec.containers[1].spec.ports[1].host_port"), PositionOf(yaml, "127.0.0.1"));
  EXPECT_EQ(at("spec.containers[1].spec.ports[2].protocol"), PositionOf(yaml, "\"53/udp\""));
  EXPECT_EQ(at("spec.containers[1].depends_on"), PositionOf(yaml, "depends_on:"));
  EXPECT_EQ(at("spec.containers[1].depends_on[1].container"), PositionOf(yaml, "job:"));
  EXPECT_EQ(at("spec.containers[1].depends_on[1].condition"), PositionOf(yaml, "completed_"));
  EXPECT_EQ(at("spec.containers[1].depends_on[0].condition"), PositionOf(yaml, "healthy"));
  EXPECT_EQ(at("spec.containers[3].spec.network_from"), PositionOf(yaml, "container:web"));
  EXPECT_EQ(at("spec.containers[3].depends_on[0]"), PositionOf(yaml, "web]"));
  EXPECT_EQ(at("spec.containers[3].spec.health_check.command[2]"), PositionOf(yaml, "[CMD-S"));
  EXPECT_EQ(at("spec.containers[3].spec.health_check.retries"),
            PositionAfter(yaml, "\"true\"]\n      retries: "));
}

TEST(SpecLoaderTest, TheSmallestSpec) {
  absl::StatusOr<LoadedSpec> loaded = Load("name: one\ncontainers:\n  app: {image: busybox}\n");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->spec.name(), "one");
  ASSERT_EQ(loaded->spec.containers_size(), 1);
  EXPECT_EQ(loaded->spec.containers(0).spec().name(), "app");
  EXPECT_EQ(loaded->spec.containers(0).spec().image(), "busybox");
  EXPECT_FALSE(loaded->spec.containers(0).spec().has_restart());
  // A group of networks only, and one with nothing at all, are specs too (meshd judges them).
  EXPECT_EQ(Problems("name: nets\nnetworks:\n  a:\n"), "OK");
  EXPECT_EQ(Problems("name: empty\n"), "OK");
}

TEST(SpecLoaderTest, MergeKeysAndExtensionKeys) {
  absl::StatusOr<LoadedSpec> loaded = Load(R"(name: shop
x-common: &common
  image: busybox
  restart: always
  environment: &env
    A: "1"
containers:
  a:
    <<: *common
    restart: "no"
  b:
    <<: [*common]
    x-note: ignored
    environment:
      <<: *env
      B: "2"
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::ContainerSpec& a = loaded->spec.containers(0).spec();
  EXPECT_EQ(a.image(), "busybox");
  EXPECT_EQ(a.restart().mode(), v1::RestartPolicy::MODE_NO);  // the map's own key wins
  EXPECT_THAT(a.env(), ::testing::ElementsAre("A=1"));
  const v1::ContainerSpec& b = loaded->spec.containers(1).spec();
  EXPECT_EQ(b.restart().mode(), v1::RestartPolicy::MODE_ALWAYS);
  EXPECT_THAT(b.env(), ::testing::ElementsAre("A=1", "B=2"));
  // The merged value's position is where it is written.
  EXPECT_EQ(PositionString(loaded->sources.Find("spec.containers[0].spec.image")), "3:10");
}

// --- One test per kind of problem, each at its line and column ---

TEST(SpecLoaderErrorsTest, YamlSyntax) {
  EXPECT_EQ(Problems("name: shop\ncontainers:\n  web:\n    image: [busybox\n  db: {}\n"),
            "f.yaml:5:5: YAML syntax error: end of sequence flow not found; check the "
            "indentation and the quoting here and on the lines above");
  EXPECT_EQ(Problems("name: shop\ncontainers:\n\tweb: {}\n"),
            "f.yaml:3:5: YAML syntax error: illegal map value; indent with spaces, not tabs "
            "(YAML forbids tabs in indentation)");
  EXPECT_EQ(Problems("name: a\n---\nname: b\n"),
            "f.yaml:3:1: a second YAML document starts here; a spec file holds one document "
            "(remove the '---' line, or split the file)");
}

TEST(SpecLoaderErrorsTest, TheWholeDocument) {
  EXPECT_EQ(Problems(""),
            "f.yaml:1:1: the spec is empty; give at least the group's name (name: shop) and its "
            "containers (docs/spec.md)");
  EXPECT_EQ(Problems("- name: shop\n"),
            "f.yaml:1:1: a spec must be a map (name, labels, networks, containers), not a list");
  EXPECT_EQ(Problems("containers: {}\n"),
            "f.yaml:1:1: the spec has no name; add the group's name at the top (name: shop)");
}

TEST(SpecLoaderErrorsTest, UnknownKeysSuggestTheNearestOne) {
  EXPECT_EQ(Problems(Web("    comand: [ls]\n")),
            "f.yaml:5:5: unknown key \"comand\" in container \"web\" (did you mean \"command\"?)");
  EXPECT_EQ(Problems(Web("    cap-add: [NET_ADMIN]\n")),
            "f.yaml:5:5: unknown key \"cap-add\" in container \"web\" (did you mean \"cap_add\"?)");
  EXPECT_EQ(Problems("name: shop\nnetwork:\n  front: {}\n"),
            "f.yaml:2:1: unknown key \"network\" in the spec (did you mean \"networks\"?)");
  EXPECT_EQ(Problems("name: shop\nnetworks:\n  front: {subnt: 10.0.0.0/24}\n"),
            "f.yaml:3:11: unknown key \"subnt\" in network \"front\" (did you mean \"subnet\"?)");
  EXPECT_EQ(Problems(Web("    resources: {memroy: 1g}\n")),
            "f.yaml:5:17: unknown key \"memroy\" in resources (did you mean \"memory\"?)");
  EXPECT_EQ(Problems(Web("    healthcheck: {test: [CMD, x], intervall: 1s}\n")),
            "f.yaml:5:35: unknown key \"intervall\" in healthcheck of \"web\" (did you mean "
            "\"interval\"?)");
  EXPECT_EQ(Problems("name: shop\nowner: ann\n"),
            "f.yaml:2:1: unknown key \"owner\" in the spec; known keys: name, labels, networks, "
            "containers, links, policy");
}

TEST(SpecLoaderTest, SysctlsAsAMapOrAList) {
  const std::string yaml =
      Web("    sysctls:\n      net.ipv4.ip_forward: 1\n      kernel.shmmax: 4096\n");
  absl::StatusOr<LoadedSpec> loaded = Load(yaml);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const auto& sysctls = loaded->spec.containers(0).spec().sysctls();
  EXPECT_EQ(sysctls.size(), 2u);
  EXPECT_EQ(sysctls.at("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(sysctls.at("kernel.shmmax"), "4096");
  // meshd names an entry the way the loader records it.
  EXPECT_EQ(loaded->sources.Locate(
                "spec.containers[0].spec.sysctls[\"kernel.shmmax\"]: not of the container's own"),
            absl::StrCat("f.yaml:", PositionOf(yaml, "kernel.shmmax"),
                         ": spec.containers[0].spec.sysctls[\"kernel.shmmax\"]: not of the "
                         "container's own"));
  loaded = Load(Web("    sysctls: [net.ipv4.ip_forward=1, \"fs.mqueue.msg_max=20\"]\n"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->spec.containers(0).spec().sysctls().at("fs.mqueue.msg_max"), "20");
}

TEST(SpecLoaderTest, RoutesAsIpRouteWords) {
  const std::string yaml = Web(
      "    routes:\n      - 10.77.2.0/24 via 10.77.1.254\n      - \"default  via 10.77.1.1\"\n");
  absl::StatusOr<LoadedSpec> loaded = Load(yaml);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const auto& routes = loaded->spec.containers(0).spec().routes();
  ASSERT_EQ(routes.size(), 2);
  EXPECT_EQ(routes[0].destination(), "10.77.2.0/24");
  EXPECT_EQ(routes[0].via(), "10.77.1.254");
  EXPECT_EQ(routes[1].destination(), "default");
  EXPECT_EQ(routes[1].via(), "10.77.1.1");
  // meshd's verdict on an address lands on its line.
  EXPECT_EQ(loaded->sources.Locate("spec.containers[0].spec.routes[1].via: not on a network"),
            absl::StrCat("f.yaml:", PositionOf(yaml, "\"default"),
                         ": spec.containers[0].spec.routes[1].via: not on a network"));
  EXPECT_THAT(Problems(Web("    routes: [10.77.2.0/24 10.77.1.254]\n")),
              HasSubstr("routes: \"10.77.2.0/24 10.77.1.254\" is not a route; write DESTINATION "
                        "via NEXTHOP"));
}

TEST(SpecLoaderTest, LinksInShortAndLongForm) {
  const std::string yaml =
      "name: lab\ncontainers:\n  r1: {image: busybox}\n  r2: {image: busybox}\n"
      "links:\n"
      "  - endpoints: [r1:eth1, \"r2:eth1\"]\n"
      "    mtu: 9000\n"
      "  - endpoints:\n"
      "      - {container: r1, interface: eth2, addresses: [10.0.13.1/30, \"fd00::1/64\"],\n"
      "         mtu: 1400, egress_rate: 10mbit, egress_burst: 64k}\n"
      "      - r2:eth2\n";
  absl::StatusOr<LoadedSpec> loaded = Load(yaml);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::GroupSpec& spec = loaded->spec;
  ASSERT_EQ(spec.links_size(), 2);
  EXPECT_EQ(spec.links(0).mtu(), 9000u);
  EXPECT_EQ(spec.links(0).endpoints(0).container(), "r1");
  EXPECT_EQ(spec.links(0).endpoints(0).interface(), "eth1");
  EXPECT_EQ(spec.links(0).endpoints(1).container(), "r2");
  const v1::LinkEndpoint& long_form = spec.links(1).endpoints(0);
  EXPECT_EQ(long_form.interface(), "eth2");
  ASSERT_EQ(long_form.addresses_size(), 2);
  EXPECT_EQ(long_form.addresses(1), "fd00::1/64");
  EXPECT_EQ(long_form.mtu(), 1400u);
  EXPECT_EQ(long_form.egress_rate_bps(), 10'000'000u);
  EXPECT_EQ(long_form.egress_burst_bytes(), 65536u);
  EXPECT_EQ(spec.links(1).endpoints(1).interface(), "eth2");
  // meshd's verdicts land on their lines.
  EXPECT_EQ(loaded->sources.Locate("spec.links[1].endpoints[0].addresses[1]: bad"),
            absl::StrCat("f.yaml:", PositionOf(yaml, "\"fd00::1/64\""),
                         ": spec.links[1].endpoints[0].addresses[1]: bad"));
  EXPECT_EQ(loaded->sources.Locate("spec.links[0].endpoints[1].interface: taken"),
            absl::StrCat("f.yaml:", PositionOf(yaml, "\"r2:eth1\""),
                         ": spec.links[0].endpoints[1].interface: taken"));

  auto lab = [](const std::string& links) {
    return "name: lab\ncontainers:\n  r1: {image: busybox}\n  r2: {image: busybox}\nlinks:\n" +
           links;
  };
  EXPECT_THAT(Problems(lab("  - endpoints: [r1:eth1, r3:eth1]\n")),
              HasSubstr("\"r3\" is not a container of this spec"));
  EXPECT_THAT(Problems(lab("  - endpoints: [r1, r2:eth1]\n")),
              HasSubstr("\"r1\" is not member:interface; write it as r1:eth1"));
  EXPECT_THAT(Problems(lab("  - {mtu: 1500}\n")), HasSubstr("links[0]: has no endpoints"));
  EXPECT_THAT(Problems(lab("  - endpoints: [{node: r1, interface: e1}, r2:e1]\n")),
              HasSubstr("containerlab's name for it; write container:"));
  EXPECT_THAT(Problems(lab("  - endpoints: [r1:e1, r2:e1]\n    speed: 10\n")), HasSubstr("speed"));
}

TEST(SpecLoaderTest, PolicyWithADefaultAndRules) {
  const std::string yaml =
      "name: shop\nnetworks:\n  net: {}\ncontainers:\n"
      "  web: {image: busybox, networks: [net]}\n  app: {image: busybox, networks: [net]}\n"
      "policy:\n"
      "  default: deny\n"
      "  rules:\n"
      "    - {action: allow, from: web, to: app, ports: [tcp/8080, icmp]}\n"
      "    - action: deny\n"
      "      from: [\"*\"]\n"
      "      to: [network:net]\n"
      "      description: nothing else\n";
  absl::StatusOr<LoadedSpec> loaded = Load(yaml);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::Policy& policy = loaded->spec.policy();
  EXPECT_EQ(policy.default_action(), v1::Policy::DEFAULT_DENY);
  ASSERT_EQ(policy.rules_size(), 2);
  EXPECT_EQ(policy.rules(0).action(), v1::PolicyRule::ACTION_ALLOW);
  EXPECT_THAT(policy.rules(0).from(), ::testing::ElementsAre("web"));
  EXPECT_THAT(policy.rules(0).ports(), ::testing::ElementsAre("tcp/8080", "icmp"));
  EXPECT_EQ(policy.rules(1).action(), v1::PolicyRule::ACTION_DENY);
  EXPECT_THAT(policy.rules(1).to(), ::testing::ElementsAre("network:net"));
  EXPECT_EQ(policy.rules(1).description(), "nothing else");
  EXPECT_EQ(
      loaded->sources.Locate("spec.policy.rules[0].ports[1]: bad"),
      absl::StrCat("f.yaml:", PositionOf(yaml, "icmp"), ": spec.policy.rules[0].ports[1]: bad"));

  auto with = [](const std::string& text) {
    return "name: shop\ncontainers:\n  web: {image: busybox}\npolicy:\n" + text;
  };
  EXPECT_THAT(Problems(with("  default: block\n")),
              HasSubstr("\"block\" is not a default; write allow or deny"));
  EXPECT_THAT(Problems(with("  rules: [{from: web, to: web}]\n")),
              HasSubstr("has no action; add action: allow (or deny)"));
  EXPECT_THAT(Problems(with("  rules: [{action: permit, from: web, to: web}]\n")),
              HasSubstr("\"permit\" is not an action"));
  EXPECT_THAT(Problems(with("  rules: [{action: allow, form: web}]\n")), HasSubstr("\"form\""));
}

TEST(SpecLoaderTest, EgressLimitOfAnAttachment) {
  const std::string yaml =
      "name: shop\nnetworks:\n  front: {}\ncontainers:\n  web:\n    image: busybox\n"
      "    networks:\n      front: {egress_rate: 10mbit, egress_burst: 64k}\n";
  absl::StatusOr<LoadedSpec> loaded = Load(yaml);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::NetworkAttachment& a = loaded->spec.containers(0).spec().networks(0);
  EXPECT_EQ(a.egress_rate_bps(), 10'000'000u);
  EXPECT_EQ(a.egress_burst_bytes(), 65536u);
  EXPECT_EQ(
      PositionString(loaded->sources.Find("spec.containers[0].spec.networks[0].egress_rate_bps")),
      PositionOf(yaml, "10mbit"));
  EXPECT_THAT(Problems("name: shop\nnetworks:\n  front: {}\ncontainers:\n  web:\n    image: "
                       "busybox\n    networks:\n      front: {egress_rate: 10MB}\n"),
              HasSubstr("f.yaml:8:28: egress_rate: \"10MB\" is not a rate"));
}

TEST(SpecLoaderErrorsTest, KeysWithoutAnApiField) {
  EXPECT_THAT(Problems(Web("    sysctls: [net.ipv4.ip_forward]\n")),
              HasSubstr("f.yaml:5:15: sysctls: \"net.ipv4.ip_forward\" is not name=value"));
  EXPECT_EQ(Problems("name: shop\nnetworks:\n  front: {external: true}\n"),
            "f.yaml:3:11: key \"external\" in network \"front\": is not supported by this meshd "
            "API: a group's containers attach to networks of the group only; define the network "
            "here (it is created as <group>-<name>)");
  EXPECT_EQ(Problems("name: shop\nservices: {}\n"),
            "f.yaml:2:1: key \"services\" in the spec: a group's members are listed under "
            "containers:, not services:; rename the key");
}

TEST(SpecLoaderErrorsTest, DuplicateKeys) {
  EXPECT_EQ(Problems(Web("    image: alpine\n")),
            "f.yaml:5:5: duplicate key \"image\" in container \"web\" (first at line 4); remove "
            "one");
  EXPECT_EQ(Problems("name: shop\ncontainers:\n  web: {image: a}\n  web: {image: b}\n"),
            "f.yaml:4:3: duplicate key \"web\" in containers (first at line 3); remove one");
  EXPECT_EQ(Problems(Web("    environment:\n      A: 1\n      A: 2\n")),
            "f.yaml:7:7: duplicate key \"A\" in environment (first at line 6); remove one");
  EXPECT_EQ(Problems(Web("    environment: [A=1, A=2]\n")),
            "f.yaml:5:24: environment: \"A\" is set twice (first at line 5); keep one");
  EXPECT_EQ(Problems(Web("    labels: [a=1, a=2]\n")),
            "f.yaml:5:19: labels: label \"a\" is set twice; keep one");
  EXPECT_EQ(Problems(Web("    networks: [front, front]\nnetworks: {front: {}}\n")),
            "f.yaml:5:23: networks: network \"front\" is listed twice (first at line 5); list "
            "each network once");
  EXPECT_EQ(Problems(Web("    depends_on: [db, db]\n  db: {image: busybox}\n")),
            "f.yaml:5:22: depends_on: \"db\" is listed twice (first at line 5); list each "
            "dependency once");
}

TEST(SpecLoaderErrorsTest, WrongKinds) {
  EXPECT_EQ(Problems("name: shop\ncontainers: [web]\n"),
            "f.yaml:2:13: containers: must be a map of member names to containers, not a list");
  EXPECT_EQ(Problems(Web("    ports: \"80:80\"\n")),
            "f.yaml:5:12: ports: must be a list of port mappings such as \"8080:80\", not the "
            "string \"80:80\"");
  EXPECT_EQ(Problems("name: shop\ncontainers:\n  web:\n    image: [busybox]\n"),
            "f.yaml:4:12: image: must be a single value, not a list; name an image of the store, "
            "such as busybox");
  EXPECT_EQ(Problems(Web("    environment: 5\n")),
            "f.yaml:5:18: environment: must be a map of names to values, or a list of KEY=VALUE, "
            "not the string \"5\"");
  EXPECT_EQ(Problems(Web("    command: {a: b}\n")),
            "f.yaml:5:14: command: must be a list of the program and its arguments, such as "
            "[sleep, \"60\"], not a map");
  EXPECT_EQ(Problems(Web("    cap_add: [[NET_ADMIN]]\n")),
            "f.yaml:5:15: cap_add[0]: must be a single value, not a list; give capability names "
            "such as NET_ADMIN");
  EXPECT_EQ(Problems("name: shop\ncontainers:\n  web: busybox\n"),
            "f.yaml:3:8: container \"web\" must be a map (image, command, ...), not the string "
            "\"busybox\"");
  EXPECT_EQ(Problems("name: shop\nnetworks:\n  front: 10.0.0.0/24\n"),
            "f.yaml:3:10: network \"front\" must be a map (subnet, gateway, nat, internal, mtu, "
            "labels) or empty, not the string \"10.0.0.0/24\"");
  EXPECT_EQ(Problems("name: shop\n[a]: 1\n"), "f.yaml:2:1: a key must be a string, not a list");
}

TEST(SpecLoaderErrorsTest, MissingValues) {
  EXPECT_EQ(Problems("name: shop\ncontainers:\n  web:\n    command: [ls]\n"),
            "f.yaml:3:3: container \"web\" has no image; add one (image: busybox)");
  EXPECT_EQ(Problems("name: shop\ncontainers:\n  web:\n"),
            "f.yaml:3:3: container \"web\" is empty; give it at least an image (image: busybox)");
  EXPECT_EQ(Problems("name:\n"),
            "f.yaml:1:1: name: has no value; give the group's name, such as \"shop\"");
  EXPECT_EQ(Problems(Web("    user:\n")),
            "f.yaml:5:5: user: has no value; give uid[:gid] or name[:group], such as 1000:1000");
  EXPECT_EQ(Problems(Web("    environment:\n      HOME:\n")),
            "f.yaml:6:7: environment: \"HOME\" has no value; write \"\" for an empty one (values "
            "are not taken from meshctl's environment)");
  EXPECT_EQ(Problems(Web("    healthcheck: {interval: 5s}\n")),
            "f.yaml:5:5: healthcheck: has no test; give the command to run, such as test: [CMD, "
            "wget, -q, -O-, http://localhost/] (exit code 0 is healthy)");
  EXPECT_EQ(Problems(Web("    healthcheck: {test: [CMD]}\n")),
            "f.yaml:5:25: test: has no command; give the command as a list ([CMD, program, "
            "args...]) or a shell command line, or [NONE] for no health check");
  EXPECT_EQ(Problems(Web("    command: \"  \"\n")),
            "f.yaml:5:14: command: is empty; give the program and its arguments, or leave the "
            "key out for the image's");
}

TEST(SpecLoaderErrorsTest, BadScalars) {
  EXPECT_EQ(Problems(Web("    ports:\n      - 8080:80\n      - 70000:80\n")),
            "f.yaml:7:9: ports: \"70000:80\" has \"70000\" where a port (1-65535) belongs; write "
            "[host_ip:]host_port:container_port[/tcp|udp], such as \"8080:80\", "
            "\"127.0.0.1:8080:80\" or \"53:53/udp\"");
  EXPECT_EQ(Problems(Web("    stop_grace_period: 10\n")),
            "f.yaml:5:24: stop_grace_period: \"10\" is not a duration; write numbers with units "
            "(h, m, s, ms, us, ns), such as 30s, 1m30s, 1.5s or 500ms");
  EXPECT_EQ(Problems(Web("    resources:\n      memory: 512 MB\n")),
            "f.yaml:6:15: memory: \"512 MB\" is not a size; write a number of bytes with an "
            "optional unit k, m, g or t (binary: 1k = 1024), such as 512m, 1.5g or 64MiB");
  EXPECT_EQ(Problems(Web("    resources: {cpus: -1}\n")),
            "f.yaml:5:23: cpus: \"-1\" is not a number of CPUs; write a positive decimal number "
            "such as 0.5 or 2 (leave the key out for no limit)");
  EXPECT_EQ(Problems(Web("    resources: {pids: many}\n")),
            "f.yaml:5:23: pids: \"many\" is not a whole number from 0 to 9223372036854775807");
  EXPECT_EQ(Problems(Web("    init: yes\n")),
            "f.yaml:5:11: init: \"yes\" is not a boolean; write true or false");
  EXPECT_EQ(Problems(Web("    restart: on_failure\n")),
            "f.yaml:5:14: restart: \"on_failure\" is not a restart policy; did you mean "
            "\"on-failure\"? (use no, on-failure[:max_retries], always or unless-stopped)");
  EXPECT_EQ(Problems(Web("    command: echo 'hi\n")),
            "f.yaml:5:14: command: \"echo \\'hi\" has a ' at offset 5 that is never closed; "
            "close it, or write \\' for a quote character");
  EXPECT_EQ(Problems(Web("    logging: {max_size: big}\n")),
            "f.yaml:5:25: max_size: \"big\" is not a size; write a number of bytes with an "
            "optional unit k, m, g or t (binary: 1k = 1024), such as 512m, 1.5g or 64MiB");
  EXPECT_EQ(Problems("name: shop\nnetworks:\n  front: {mtu: 1500.5}\n"),
            "f.yaml:3:16: mtu: \"1500.5\" is not a whole number from 0 to 4294967295");
  EXPECT_EQ(Problems(Web("    network_mode: host\n")),
            "f.yaml:5:19: network_mode: \"host\" is not supported; write container:<member> to "
            "share the network namespace of another member, or list networks under networks:");
  EXPECT_EQ(Problems(Web("    depends_on:\n      db: {condition: service_healthyy}\n"
                         "  db: {image: busybox}\n")),
            "f.yaml:6:23: condition: \"service_healthyy\" is not a condition; did you mean "
            "\"healthy\"? (use started, healthy or completed_successfully)");
  EXPECT_EQ(Problems(Web("    environment: [PATH]\n")),
            "f.yaml:5:19: environment: \"PATH\" is not KEY=VALUE; write it as NAME=value (NAME= "
            "for an empty value)");
  EXPECT_EQ(Problems(Web("    labels: [app]\n")),
            "f.yaml:5:14: labels: \"app\" is not key=value; write it as app=web, or make labels "
            "a map");
  EXPECT_EQ(Problems(Web("    tmpfs: [\"/run:size=64m\"]\n")),
            "f.yaml:5:13: tmpfs: \"/run:size=64m\" has a ':'; give only the destination, and a "
            "size in the map form (tmpfs: {/run: {size: 64m}})");
}

TEST(SpecLoaderErrorsTest, Volumes) {
  const std::string form =
      "; write source:destination[:ro], such as ./html:/www:ro or /srv/data:/data";
  EXPECT_EQ(Problems(Web("    volumes: [data:/data]\n")),
            "f.yaml:5:15: volumes: \"data:/data\" names \"data\", a named volume: mesh has none, "
            "give a host path (start it with / or ./)" +
                form);
  EXPECT_EQ(
      Problems(Web("    volumes: [/data]\n")),
      "f.yaml:5:15: volumes: \"/data\" has no destination (mesh has no anonymous volumes)" + form);
  EXPECT_EQ(Problems(Web("    volumes: [\"./a:/b:z\"]\n")),
            "f.yaml:5:15: volumes: \"./a:/b:z\" has the option \"z\"; use ro or rw" + form);
  EXPECT_EQ(Problems(Web("    volumes: [\"~/a:/b\"]\n")),
            "f.yaml:5:15: volumes: \"~/a:/b\" starts with ~, which is not expanded; write the "
            "full path" +
                form);
  EXPECT_EQ(Problems(Web("    volumes: [\"./a:/b:ro:x\"]\n")),
            "f.yaml:5:15: volumes: \"./a:/b:ro:x\" has too many ':'" + form);
}

TEST(SpecLoaderErrorsTest, References) {
  EXPECT_EQ(Problems("name: shop\nnetworks: {front: {}}\ncontainers:\n  web:\n    image: busybox\n"
                     "    networks: [fornt]\n"),
            "f.yaml:6:16: networks: network \"fornt\" is not defined in this spec; add it under "
            "networks: at the top (did you mean \"front\"?)");
  EXPECT_EQ(Problems(Web("    depends_on: [dbb]\n  db: {image: busybox}\n")),
            "f.yaml:5:18: depends_on[0]: \"dbb\" is not a container of this spec (did you mean "
            "\"db\"?)");
  EXPECT_EQ(Problems(Web("    depends_on:\n      web: {condition: started}\n")),
            "f.yaml:6:7: depends_on[0]: \"web\" is the container itself; a container cannot wait "
            "for itself");
  EXPECT_EQ(Problems(Web("    network_mode: container:api\n")),
            "f.yaml:5:19: network_mode: \"api\" is not a container of this spec");
  EXPECT_EQ(Problems(Web("    network_mode: container:web\n")),
            "f.yaml:5:19: network_mode: \"web\" is the container itself; name another member "
            "whose network namespace to share");
}

TEST(SpecLoaderErrorsTest, DependencyCyclesAreNamed) {
  EXPECT_EQ(Problems("name: shop\ncontainers:\n"
                     "  a: {image: busybox, depends_on: [b]}\n"
                     "  b: {image: busybox, depends_on: [c]}\n"
                     "  c: {image: busybox, network_mode: \"container:a\"}\n"
                     "  d: {image: busybox, depends_on: [d2]}\n"
                     "  d2: {image: busybox, depends_on: {d: {condition: healthy}}}\n"),
            "f.yaml:5:37: network_mode: dependency cycle a -> b -> c -> a (depends_on and "
            "network_mode); remove one of these dependencies\n"
            "f.yaml:7:37: depends_on[0]: dependency cycle d -> d2 -> d (depends_on and "
            "network_mode); remove one of these dependencies");
}

TEST(SpecLoaderErrorsTest, EveryProblemAtOnceInDocumentOrder) {
  const std::string yaml = R"(name: shop
containers:
  web:
    imag: busybox
    ports: ["80:80", "x"]
    depends_on: [nope]
    restart: sometimes
  db:
    image: busybox
    resources: {memory: lots, cpus: 0}
networks:
  front: {mtu: big, nat: maybe}
)";
  EXPECT_EQ(Problems(yaml),
            "f.yaml:3:3: container \"web\" has no image; add one (image: busybox)\n"
            "f.yaml:4:5: unknown key \"imag\" in container \"web\" (did you mean \"image\"?)\n"
            "f.yaml:5:22: ports: \"x\" has \"x\" where a port (1-65535) belongs; write "
            "[host_ip:]host_port:container_port[/tcp|udp], such as \"8080:80\", "
            "\"127.0.0.1:8080:80\" or \"53:53/udp\"\n"
            "f.yaml:6:18: depends_on[0]: \"nope\" is not a container of this spec\n"
            "f.yaml:7:14: restart: \"sometimes\" is not a restart policy; use no, "
            "on-failure[:max_retries], always or unless-stopped\n"
            "f.yaml:10:25: memory: \"lots\" is not a size; write a number of bytes with an "
            "optional unit k, m, g or t (binary: 1k = 1024), such as 512m, 1.5g or 64MiB\n"
            "f.yaml:10:37: cpus: \"0\" is not a number of CPUs; write a positive decimal number "
            "such as 0.5 or 2 (leave the key out for no limit)\n"
            "f.yaml:12:16: mtu: \"big\" is not a whole number from 0 to 4294967295\n"
            "f.yaml:12:26: nat: \"maybe\" is not a boolean; write true or false");
}

TEST(SpecLoaderErrorsTest, AProblemInAnAliasedNodeIsReportedOnce) {
  EXPECT_EQ(Problems("name: shop\nx-base: &base {image: busybox, init: maybe}\ncontainers:\n"
                     "  a: *base\n  b: *base\n"),
            "f.yaml:2:38: init: \"maybe\" is not a boolean; write true or false");
}

// --- env files and relative paths ---

TEST(SpecLoaderFilesTest, EnvFilesAreReadRelativeToTheSpec) {
  mesh::testing::ScopedTempDir dir("/tmp/mesh-spec-env-");
  ASSERT_FALSE(dir.path().empty());
  std::filesystem::create_directory(dir.path() + "/conf");
  std::ofstream(dir.path() + "/conf/a.env") << "A=1\r\nB=from-a\n";
  std::ofstream(dir.path() + "/b.env")
      << "B=from-b\n# C=commented\nexport D=1\n =x\nE=\"unclosed\n";
  std::ofstream(dir.path() + "/spec.yaml")
      << "name: shop\ncontainers:\n  web:\n    image: busybox\n    env_file: [conf/a.env]\n"
         "    volumes: [./conf:/conf:ro, ../up:/up]\n";
  absl::StatusOr<LoadedSpec> loaded = LoadSpecFile(dir.path() + "/spec.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::ContainerSpec& web = loaded->spec.containers(0).spec();
  EXPECT_THAT(web.env(), ::testing::ElementsAre("A=1", "B=from-a"));
  ASSERT_EQ(web.mounts_size(), 2);
  EXPECT_EQ(web.mounts(0).source(), dir.path() + "/conf");
  EXPECT_TRUE(web.mounts(0).read_only());
  EXPECT_EQ(web.mounts(1).source(),
            std::filesystem::path(dir.path()).parent_path().string() + "/up");
  EXPECT_EQ(loaded->sources.Find("spec.containers[0].spec.env[1]"),
            (SourcePosition{dir.path() + "/conf/a.env", 2, 1}));

  // Later files win; environment wins over them all; problems name the env file's line.
  const std::string yaml =
      "name: shop\ncontainers:\n  web:\n    image: busybox\n    env_file:\n"
      "      - conf/a.env\n      - b.env\n      - missing.env\n    environment: {A: \"2\"}\n";
  absl::StatusOr<LoadedSpec> bad = Load(yaml, dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            absl::StrCat(dir.path(),
                         "/b.env:3:1: \"export D=1\" is not KEY=VALUE; write "
                         "NAME=value, or start the line with # for a comment (read for env_file "
                         "at f.yaml:7:9)\n",
                         dir.path(),
                         "/b.env:4:2: \"=x\" is not KEY=VALUE; write NAME=value, or "
                         "start the line with # for a comment (read for env_file at f.yaml:7:9)\n"
                         "f.yaml:8:9: env_file: open \"",
                         dir.path(),
                         "/missing.env\": No such "
                         "file or directory (ENOENT)"));
  std::ofstream(dir.path() + "/b.env") << "B=from-b\nC=\"quoted\"\n";
  absl::StatusOr<LoadedSpec> good = Load(
      "name: shop\ncontainers:\n  web:\n    image: busybox\n    environment: {A: \"2\"}\n"
      "    env_file: [conf/a.env, b.env]\n",
      dir.path());
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_THAT(good->spec.containers(0).spec().env(),
              ::testing::ElementsAre("A=2", "B=from-b", "C=quoted"));
}

TEST(SpecLoaderFilesTest, EnvFilesMustBeRegularFiles) {
  mesh::testing::ScopedTempDir dir("/tmp/mesh-spec-env-");
  ASSERT_FALSE(dir.path().empty());
  ASSERT_EQ(::mkfifo((dir.path() + "/fifo.env").c_str(), 0600), 0);
  std::filesystem::create_directory(dir.path() + "/dir.env");
  // A FIFO with no writer would block a plain open(2) for reading.
  EXPECT_EQ(
      Load(Web("    env_file: [fifo.env, dir.env]\n"), dir.path()).status().message(),
      absl::StrCat("f.yaml:5:16: env_file: \"", dir.path(),
                   "/fifo.env\" is not a regular file; name a file of KEY=VALUE lines\n"
                   "f.yaml:5:26: env_file: \"",
                   dir.path(), "/dir.env\" is not a regular file; name a file of KEY=VALUE lines"));
}

TEST(SpecLoaderFilesTest, LoadSpecFileErrors) {
  absl::StatusOr<LoadedSpec> missing = LoadSpecFile("/nonexistent/spec.yaml");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "load spec: open \"/nonexistent/spec.yaml\": No such file or directory (ENOENT)");

  mesh::testing::ScopedTempDir dir("/tmp/mesh-spec-file-");
  ASSERT_FALSE(dir.path().empty());
  std::ofstream(dir.path() + "/big.yaml") << std::string(5 << 20, '#');
  absl::StatusOr<LoadedSpec> big = LoadSpecFile(dir.path() + "/big.yaml");
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("is larger than 4194304 bytes"));

  std::ofstream(dir.path() + "/bad.yaml") << "name: shop\nnetworks: {a: {mtu: x}}\n";
  absl::StatusOr<LoadedSpec> bad = LoadSpecFile(dir.path() + "/bad.yaml");
  EXPECT_EQ(bad.status().message(),
            dir.path() + "/bad.yaml:2:21: mtu: \"x\" is not a whole number from 0 to 4294967295");
}

// --- meshd's errors at their place in the file ---

TEST(SpecLoaderLocateTest, MeshdMessagesPointIntoTheFile) {
  const std::string yaml = R"(name: shop
labels: {Bad Key: x}
networks:
  front:
    subnet: 10.89.0.0/33
containers:
  web:
    image: busybox
    cap_add: [NET_ADMIN, NOT_A_CAP]
    ports: ["8080:80", "8080:81"]
    resources: {memory: 100}
    depends_on:
      db: {condition: healthy}
    labels: {app: web}
  db:
    image: busybox
)";
  absl::StatusOr<LoadedSpec> loaded = Load(yaml);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const SourceMap& map = loaded->sources;
  // Messages as agent/api/convert.cc words them.
  EXPECT_EQ(map.Locate("spec.networks[0].subnet: \"10.89.0.0/33\" is not a CIDR; give an IPv4 "
                       "CIDR such as \"10.89.0.0/24\""),
            "f.yaml:5:13: spec.networks[0].subnet: \"10.89.0.0/33\" is not a CIDR; give an IPv4 "
            "CIDR such as \"10.89.0.0/24\"");
  EXPECT_EQ(map.Locate("spec.containers[0].spec.cap_add[1]: unknown capability \"NOT_A_CAP\""),
            "f.yaml:9:26: spec.containers[0].spec.cap_add[1]: unknown capability \"NOT_A_CAP\"");
  EXPECT_THAT(map.Locate("spec.containers[0].spec.ports[1]: tcp 8080 -> 81 uses the host port of "
                         "spec.containers[0].spec.ports[0]"),
              ::testing::StartsWith("f.yaml:10:24: "));
  EXPECT_THAT(map.Locate("spec.containers[0].spec.resources.memory_bytes: 100 bytes is less than "
                         "the smallest limit"),
              ::testing::StartsWith("f.yaml:11:25: "));
  EXPECT_THAT(map.Locate("spec.containers[0].depends_on[0].condition: CONDITION_HEALTHY needs a "
                         "health check, and \"db\" has none"),
              ::testing::StartsWith("f.yaml:13:23: "));
  EXPECT_THAT(map.Locate("spec.labels.labels[\"Bad Key\"]: key \"Bad Key\" is not a label key"),
              ::testing::StartsWith("f.yaml:2:10: "));
  EXPECT_THAT(map.Locate("spec.containers[1]: dependency cycle db -> web -> db"),
              ::testing::StartsWith("f.yaml:15:3: "));
  EXPECT_THAT(map.Locate("spec.containers[0].spec.name: with the group's prefix: container name "
                         "\"shop-web\" is too long"),
              ::testing::StartsWith("f.yaml:7:3: "));
  // A field the file does not set: the nearest one that it does.
  EXPECT_THAT(map.Locate("spec.containers[1].spec.stop_timeout: seconds -1 is negative"),
              ::testing::StartsWith("f.yaml:15:3: "));
  EXPECT_EQ(map.Locate("container \"shop-web\" exists and is not a member of group \"shop\""),
            "container \"shop-web\" exists and is not a member of group \"shop\"");
}

// --- The files in the source tree ---

TEST(SpecExamplesTest, DeployExamplesLoad) {
  for (const char* example : {"deploy/examples/web.yaml", "deploy/examples/lab.yaml",
                              "deploy/examples/ring.yaml", "deploy/examples/three-tier.yaml"}) {
    absl::StatusOr<LoadedSpec> loaded = LoadSpecFile(std::string(MESH_SOURCE_DIR) + "/" + example);
    ASSERT_TRUE(loaded.ok()) << example << ": " << loaded.status();
  }
  absl::StatusOr<LoadedSpec> web =
      LoadSpecFile(std::string(MESH_SOURCE_DIR) + "/deploy/examples/web.yaml");
  ASSERT_TRUE(web.ok());
  EXPECT_EQ(web->spec.name(), "web");
  ASSERT_EQ(web->spec.containers_size(), 2);
  ASSERT_EQ(web->spec.containers(0).spec().ports_size(), 1);
  EXPECT_EQ(web->spec.containers(0).spec().ports(0).host_port(), 8080u);
  EXPECT_EQ(web->spec.containers(0).spec().image(), "busybox");

  absl::StatusOr<LoadedSpec> lab =
      LoadSpecFile(std::string(MESH_SOURCE_DIR) + "/deploy/examples/lab.yaml");
  ASSERT_TRUE(lab.ok());
  EXPECT_EQ(lab->spec.networks_size(), 2);
  ASSERT_EQ(lab->spec.containers_size(), 5);
  EXPECT_EQ(lab->spec.containers(0).spec().networks_size(), 2);  // the router
  for (int i = 1; i < 5; ++i) {
    const v1::GroupContainer& client = lab->spec.containers(i);
    EXPECT_TRUE(client.spec().cap_add().empty());  // routes: meshd sets them
    ASSERT_EQ(client.spec().routes_size(), 1);
    EXPECT_EQ(client.spec().routes(0).via(), i <= 2 ? "10.77.1.254" : "10.77.2.254");
    ASSERT_EQ(client.depends_on_size(), 1);
    EXPECT_EQ(client.depends_on(0).condition(), v1::Dependency::CONDITION_HEALTHY);
  }

  absl::StatusOr<LoadedSpec> ring =
      LoadSpecFile(std::string(MESH_SOURCE_DIR) + "/deploy/examples/ring.yaml");
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->spec.networks_size(), 0);
  EXPECT_EQ(ring->spec.links_size(), 4);
  ASSERT_EQ(ring->spec.containers_size(), 4);
  for (const v1::GroupContainer& router : ring->spec.containers()) {
    EXPECT_EQ(router.spec().networks_size(), 0) << router.spec().name();
    EXPECT_EQ(router.spec().routes_size(), 2) << router.spec().name();
    EXPECT_EQ(router.spec().sysctls().at("net.ipv4.ip_forward"), "1");
    int ends = 0;
    for (const v1::Link& link : ring->spec.links()) {
      for (const v1::LinkEndpoint& end : link.endpoints()) {
        if (end.container() == router.spec().name()) ++ends;
      }
    }
    EXPECT_EQ(ends, 2) << router.spec().name();
  }
}

// docs/spec.md's full example (the ```yaml block after "<!-- full example -->") loads, so the
// reference cannot drift from the loader.
TEST(SpecExamplesTest, TheDocumentedExampleLoads) {
  const std::string doc = ReadSource("docs/spec.md");
  const size_t marker = doc.find("<!-- full example -->");
  ASSERT_NE(marker, std::string::npos);
  const size_t start = doc.find("```yaml\n", marker);
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc.find("```\n", start + 8);
  ASSERT_NE(end, std::string::npos);
  const std::string yaml = doc.substr(start + 8, end - start - 8);
  mesh::testing::ScopedTempDir dir("/tmp/mesh-spec-doc-");
  ASSERT_FALSE(dir.path().empty());
  std::ofstream(dir.path() + "/shop.env") << "SHOP_CURRENCY=EUR\n";
  absl::StatusOr<LoadedSpec> loaded = Load(yaml, dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->spec.name(), "shop");
}

}  // namespace
}  // namespace mesh::cli
