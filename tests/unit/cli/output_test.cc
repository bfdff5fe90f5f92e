// meshctl's pieces that need no meshd: where --host points, output formats and tables, time
// and size texts, --since, and the completion script.
#include "cli/output.h"

#include <cstdlib>
#include <filesystem>

#include "base/atomic_file.h"
#include "base/child_process.h"
#include "cli/client.h"
#include "cli/commands/completion.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mesh/v1/containers.pb.h"

namespace mesh::cli {
namespace {

using ::testing::HasSubstr;

TEST(ResolveHost, UnixSocketsTcpAndTheDefault) {
  unsetenv("MESH_HOST");
  absl::StatusOr<Endpoint> e = ResolveHost({});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->target, "unix:/run/mesh/meshd.sock");
  EXPECT_FALSE(e->tls);
  setenv("MESH_HOST", "unix:///tmp/x.sock", 1);
  EXPECT_EQ(ResolveHost({})->target, "unix:/tmp/x.sock");
  EXPECT_EQ(ResolveHost({.host = "/run/other.sock"})->target, "unix:/run/other.sock");
  unsetenv("MESH_HOST");
  e = ResolveHost({.host = "tcp://meshd.lab:7443"});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->target, "meshd.lab:7443");
  EXPECT_TRUE(e->tls);
  for (const char* bad : {"unix://relative.sock", "tcp://", "tcp://hostonly", "http://x:1", "x"}) {
    absl::StatusOr<Endpoint> refused = ResolveHost({.host = bad});
    EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << bad;
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr(bad));
  }
}

TEST(Connect, TcpNeedsAllThreeTlsFilesAndUnixNone) {
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect({.host = "tcp://h:1"});
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("--tls-cert, --tls-key and --tls-ca"));
  c = Client::Connect(
      {.host = "tcp://h:1", .tls_cert = "/nope/c", .tls_key = "/nope/k", .tls_ca = "/nope/ca"});
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("--tls-cert: "));
  c = Client::Connect({.host = "unix:///x.sock", .tls_ca = "/ca.pem"});
  EXPECT_TRUE(absl::IsInvalidArgument(c.status()));
  EXPECT_TRUE(Client::Connect({.host = "unix:///x.sock"}).ok());
}

TEST(Output, FormatsTablesAndMessages) {
  EXPECT_EQ(*ParseFormat(""), Format::kTable);
  EXPECT_EQ(*ParseFormat("JSON"), Format::kJson);
  EXPECT_EQ(*ParseFormat("yaml"), Format::kYaml);
  EXPECT_THAT(std::string(ParseFormat("xml").status().message()), HasSubstr("table, json or yaml"));

  Table table({"name", "state"});
  table.Add({"web", "running"});
  table.Add({"a-much-longer-name", ""});
  EXPECT_EQ(table.Render(),
            "NAME                STATE\n"
            "web                 running\n"
            "a-much-longer-name\n");

  v1::Container c;
  c.mutable_spec()->set_name("web");
  c.set_state(v1::CONTAINER_STATE_RUNNING);
  const std::string json = Render(c, Format::kJson);
  EXPECT_THAT(json, HasSubstr("\"name\": \"web\""));
  EXPECT_THAT(json, HasSubstr("\"state\": \"CONTAINER_STATE_RUNNING\""));
  EXPECT_THAT(json, HasSubstr("\"pid\": 0"));  // zero values are shown for scripts
  const std::string yaml = Render(c, Format::kYaml);
  EXPECT_THAT(yaml, HasSubstr("name: web"));
  EXPECT_THAT(yaml, HasSubstr("state: CONTAINER_STATE_RUNNING"));
  EXPECT_EQ(RenderList({}, Format::kJson), "[]\n");
  EXPECT_THAT(RenderList({&c, &c}, Format::kYaml), HasSubstr("  spec:\n    args: []\n"));
  EXPECT_THAT(RenderObject({{"client", &c}}, Format::kJson), HasSubstr("\"client\": {"));
}

TEST(Output, TimesSizesAndSince) {
  EXPECT_EQ(HumanDuration(absl::Seconds(1)), "1 second");
  EXPECT_EQ(HumanDuration(absl::Seconds(59)), "59 seconds");
  EXPECT_EQ(HumanDuration(absl::Minutes(5)), "5 minutes");
  EXPECT_EQ(HumanDuration(absl::Hours(1)), "1 hour");
  EXPECT_EQ(HumanDuration(absl::Hours(50)), "2 days");
  const absl::Time now = absl::FromUnixSeconds(1'000'000);
  google::protobuf::Timestamp t;
  EXPECT_EQ(Ago(t, now), "-");
  t.set_seconds(1'000'000 - 120);
  EXPECT_EQ(Ago(t, now), "2 minutes ago");
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(2u << 20), "2.0 MiB");

  absl::StatusOr<google::protobuf::Timestamp> since = ParseSince("--since", "10m", now);
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(since->seconds(), 1'000'000 - 600);
  since = ParseSince("--since", "2026-12-04T10:00:00Z", now);
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(since->seconds(), 1796378400);
  for (const char* bad : {"yesterday", "-5m", "10"}) {
    absl::StatusOr<google::protobuf::Timestamp> refused = ParseSince("--since", bad, now);
    EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << bad;
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--since"));
  }
}

TEST(Completion, ScriptListsTheCommandTree) {
  CLI::App app{"test", "meshctl"};
  app.add_option("-o,--output", "format");
  CLI::App* net = app.add_subcommand("net", "")->alias("network");
  CLI::App* create = net->add_subcommand("create", "");
  create->add_option("--subnet", "");
  app.add_subcommand("logs", "");
  for (const char* shell : {"bash", "zsh"}) {
    const std::string script = CompletionScript(app, shell);
    EXPECT_THAT(script, HasSubstr("_meshctl_subs[\"meshctl\"]=\"net network logs\""));
    EXPECT_THAT(script, HasSubstr("_meshctl_subs[\"meshctl net\"]=\"create\""));
    EXPECT_THAT(script, HasSubstr("_meshctl_opts[\"meshctl net create\"]=\"--help -h --subnet\""));
    EXPECT_THAT(script, HasSubstr("_meshctl_alias[\"meshctl network\"]=\"meshctl net\""));
    EXPECT_THAT(script, HasSubstr("_meshctl_args[\"meshctl logs\"]=\"container\""));
    EXPECT_THAT(script, HasSubstr("complete -F _meshctl meshctl"));
  }
  EXPECT_THAT(CompletionScript(app, "zsh"), HasSubstr("bashcompinit"));
}

// The script run by bash: commands, aliases, flags, and names from a stand-in `meshctl` on
// PATH (as the real one would list them).
TEST(Completion, BashCompletesCommandsFlagsAndNames) {
  CLI::App app{"test", "meshctl"};
  app.add_option("-o,--output", "format");
  CLI::App* net = app.add_subcommand("net", "")->alias("network");
  net->add_subcommand("create", "")->add_option("--subnet", "");
  net->add_subcommand("connect", "");
  app.add_subcommand("logs", "");
  char dir_template[] = "/tmp/mesh-completion-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  ASSERT_TRUE(WriteFileAtomically(dir + "/meshctl.bash", CompletionScript(app, "bash")).ok());
  ASSERT_TRUE(WriteFileAtomically(dir + "/meshctl",
                                  "#!/bin/sh\n"
                                  "case \"$*\" in\n"
                                  "  'ps -aq') echo web; echo db ;;\n"
                                  "  'net ls -q') echo front ;;\n"
                                  "esac\n",
                                  0755)
                  .ok());
  const std::string script =
      "source " + dir +
      "/meshctl.bash\n"
      "c() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); "
      "_meshctl; echo \"${COMPREPLY[*]}\"; }\n"
      "c meshctl ne\n"
      "c meshctl network c\n"
      "c meshctl -o json net create --s\n"
      "c meshctl logs ''\n"
      "c meshctl logs w\n";
  absl::StatusOr<CommandResult> run =
      RunCommand({.argv = {"bash", "-c", script},
                  .env = std::vector<std::string>{"PATH=" + dir + ":/usr/bin:/bin"}},
                 absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_TRUE(run->status.ok()) << run->status.ToString() << ": " << run->err;
  EXPECT_EQ(run->out, "net network\ncreate connect\n--subnet\nweb db\nweb\n");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mesh::cli
