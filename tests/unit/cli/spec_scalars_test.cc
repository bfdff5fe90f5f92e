// The scalar notations of the group spec, its source map, and the YAML tree under the loader.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/spec/scalars.h"
#include "cli/spec/source_map.h"
#include "cli/spec/yaml_tree.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string ErrorOf(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(ParseBoolTest, TrueAndFalseOnly) {
  for (const char* t : {"true", "True", "TRUE"}) EXPECT_EQ(ParseBool(t).value(), true) << t;
  for (const char* f : {"false", "False", "FALSE"}) EXPECT_EQ(ParseBool(f).value(), false) << f;
  EXPECT_EQ(ErrorOf(ParseBool("yes").status()), "\"yes\" is not a boolean; write true or false");
  for (const char* bad : {"on", "1", "", "tru"}) EXPECT_FALSE(ParseBool(bad).ok()) << bad;
}

TEST(ParseWholeNumberTest, DigitsWithinTheMaximum) {
  EXPECT_EQ(ParseWholeNumber("0", 10).value(), 0u);
  EXPECT_EQ(ParseWholeNumber("10", 10).value(), 10u);
  EXPECT_EQ(ErrorOf(ParseWholeNumber("11", 10).status()),
            "\"11\" is not a whole number from 0 to 10");
  for (const char* bad : {"-1", "+1", "1.0", " 1", "", "99999999999999999999999"}) {
    EXPECT_FALSE(ParseWholeNumber(bad, ~uint64_t{0}).ok()) << bad;
  }
}

TEST(ParseSizeTest, BinaryUnits) {
  const uint64_t max = ~uint64_t{0};
  EXPECT_EQ(ParseSize("0", max).value(), 0u);
  EXPECT_EQ(ParseSize("512", max).value(), 512u);
  EXPECT_EQ(ParseSize("512b", max).value(), 512u);
  EXPECT_EQ(ParseSize("1k", max).value(), 1024u);
  EXPECT_EQ(ParseSize("1KB", max).value(), 1024u);
  EXPECT_EQ(ParseSize("64MiB", max).value(), 64u << 20);
  EXPECT_EQ(ParseSize("512m", max).value(), 512u << 20);
  EXPECT_EQ(ParseSize("1g", max).value(), 1u << 30);
  EXPECT_EQ(ParseSize("1.5g", max).value(), 3u << 29);
  EXPECT_EQ(ParseSize(".5k", max).value(), 512u);
  EXPECT_EQ(ParseSize("2t", max).value(), uint64_t{2} << 40);
  EXPECT_EQ(ParseSize("1.0000000001k", max).value(), 1024u);  // a fraction of a byte is dropped
}

TEST(ParseSizeTest, RefusesOtherText) {
  const uint64_t max = ~uint64_t{0};
  EXPECT_EQ(ErrorOf(ParseSize("12x", max).status()),
            "\"12x\" is not a size; write a number of bytes with an optional unit k, m, g or t "
            "(binary: 1k = 1024), such as 512m, 1.5g or 64MiB");
  for (const char* bad : {"", "m", "-1m", "1 m", "1..2m", "1e6", "1mm", "0x10"}) {
    EXPECT_FALSE(ParseSize(bad, max).ok()) << bad;
  }
  EXPECT_EQ(ErrorOf(ParseSize("8t", uint64_t{1} << 42).status()),
            "\"8t\" is more than the largest size here, 4398046511104 bytes");
  EXPECT_FALSE(ParseSize("99999999999999999999999", max).ok());
  EXPECT_FALSE(ParseSize("16777216t", max).ok());  // 2^64
  EXPECT_EQ(ParseSize("16777215t", max).value(), uint64_t{16777215} << 40);
}

TEST(ParseRateTest, DecimalBitUnits) {
  const uint64_t max = ~uint64_t{0} >> 1;
  EXPECT_EQ(ParseRate("8000", max).value(), 8000u);
  EXPECT_EQ(ParseRate("64bit", max).value(), 64u);
  EXPECT_EQ(ParseRate("500kbit", max).value(), 500'000u);
  EXPECT_EQ(ParseRate("10mbit", max).value(), 10'000'000u);
  EXPECT_EQ(ParseRate("10Mbit", max).value(), 10'000'000u);
  EXPECT_EQ(ParseRate("1.5gbit", max).value(), 1'500'000'000u);
  EXPECT_EQ(ErrorOf(ParseRate("10mbps", max).status()),
            "\"10mbps\" is not a rate; write bits per second with an optional unit kbit, mbit or "
            "gbit (1mbit = 1000000), such as 10mbit or 1.5gbit");
  for (const char* bad : {"", "mbit", "-1mbit", "1 mbit", "1..2mbit", "1e6", "10m", "10MB"}) {
    EXPECT_FALSE(ParseRate(bad, max).ok()) << bad;
  }
  EXPECT_EQ(ErrorOf(ParseRate("20gbit", 16'000'000'000).status()),
            "\"20gbit\" is more than the largest rate here, 16000000000 bit/s");
}

TEST(ParseDurationTextTest, GoNotation) {
  EXPECT_EQ(ParseDurationText("30s").value(), absl::Seconds(30));
  EXPECT_EQ(ParseDurationText("1m30s").value(), absl::Seconds(90));
  EXPECT_EQ(ParseDurationText("500ms").value(), absl::Milliseconds(500));
  EXPECT_EQ(ParseDurationText("1.5s").value(), absl::Milliseconds(1500));
  EXPECT_EQ(ParseDurationText("2h").value(), absl::Hours(2));
  EXPECT_EQ(ParseDurationText("100us").value(), absl::Microseconds(100));
  EXPECT_EQ(ParseDurationText("0").value(), absl::ZeroDuration());
}

TEST(ParseDurationTextTest, RefusesOtherText) {
  EXPECT_EQ(ErrorOf(ParseDurationText("30").status()),
            "\"30\" is not a duration; write numbers with units (h, m, s, ms, us, ns), such as "
            "30s, 1m30s, 1.5s or 500ms");
  for (const char* bad : {"", "-1s", "+1s", "inf", "1d", "s", "1 s", "1m30", "1x"}) {
    EXPECT_FALSE(ParseDurationText(bad).ok()) << bad;
  }
  EXPECT_EQ(ErrorOf(ParseDurationText("100000000h").status()),
            "\"100000000h\" is longer than 10000 years, the longest duration");
}

TEST(ParseCpusTest, PositiveDecimals) {
  EXPECT_EQ(ParseCpus("0.5").value(), 0.5);
  EXPECT_EQ(ParseCpus("2").value(), 2.0);
  EXPECT_EQ(ParseCpus(".25").value(), 0.25);
  EXPECT_EQ(ErrorOf(ParseCpus("0").status()),
            "\"0\" is not a number of CPUs; write a positive decimal number such as 0.5 or 2 "
            "(leave the key out for no limit)");
  for (const char* bad : {"", "-1", "1e3", "nan", "inf", "50%", "1,5", "0.0"}) {
    EXPECT_FALSE(ParseCpus(bad).ok()) << bad;
  }
}

TEST(ParsePortMappingTest, AllForms) {
  v1::PortMapping p = ParsePortMapping("8080:80").value();
  EXPECT_EQ(p.host_port(), 8080u);
  EXPECT_EQ(p.container_port(), 80u);
  EXPECT_EQ(p.protocol(), v1::PROTOCOL_UNSPECIFIED);
  EXPECT_EQ(p.host_ip(), "");

  p = ParsePortMapping("127.0.0.1:8443:443/tcp").value();
  EXPECT_EQ(p.host_ip(), "127.0.0.1");
  EXPECT_EQ(p.host_port(), 8443u);
  EXPECT_EQ(p.container_port(), 443u);
  EXPECT_EQ(p.protocol(), v1::PROTOCOL_TCP);

  p = ParsePortMapping("53/udp").value();
  EXPECT_EQ(p.host_port(), 53u);
  EXPECT_EQ(p.container_port(), 53u);
  EXPECT_EQ(p.protocol(), v1::PROTOCOL_UDP);

  p = ParsePortMapping("80").value();
  EXPECT_EQ(p.host_port(), 80u);
  EXPECT_EQ(p.container_port(), 80u);

  p = ParsePortMapping("0.0.0.0:80:8080/UDP").value();
  EXPECT_EQ(p.host_ip(), "");  // every address
  EXPECT_EQ(p.protocol(), v1::PROTOCOL_UDP);

  EXPECT_EQ(ParsePortMapping("65535:1").value().host_port(), 65535u);
}

TEST(ParsePortMappingTest, RefusesWithTheReason) {
  EXPECT_EQ(ErrorOf(ParsePortMapping("70000:80").status()),
            "\"70000:80\" has \"70000\" where a port (1-65535) belongs; write "
            "[host_ip:]host_port:container_port[/tcp|udp], such as \"8080:80\", "
            "\"127.0.0.1:8080:80\" or \"53:53/udp\"");
  EXPECT_THAT(ErrorOf(ParsePortMapping("0:80").status()), HasSubstr("has \"0\" where a port"));
  EXPECT_THAT(ErrorOf(ParsePortMapping("80:80/sctp").status()),
              HasSubstr("has protocol \"sctp\"; use tcp or udp"));
  EXPECT_THAT(ErrorOf(ParsePortMapping("8000-8010:8000-8010").status()),
              HasSubstr("has a port range; ranges are not supported"));
  EXPECT_THAT(ErrorOf(ParsePortMapping("[::1]:80:80").status()),
              HasSubstr("has an IPv6 host address"));
  EXPECT_THAT(ErrorOf(ParsePortMapping("1:2:3:4").status()),
              HasSubstr("is not a port mapping (4 parts separated by ':')"));
  EXPECT_THAT(ErrorOf(ParsePortMapping(":80").status()), HasSubstr("has an empty part"));
  for (const char* bad : {"", "/tcp", "http", "80:", "a:80", "1.2.3.4::80", "-1:80", "+80:80"}) {
    EXPECT_FALSE(ParsePortMapping(bad).ok()) << bad;
  }
}

TEST(ParseRestartPolicyTest, DockerPolicies) {
  EXPECT_EQ(ParseRestartPolicy("no").value().mode(), v1::RestartPolicy::MODE_NO);
  EXPECT_EQ(ParseRestartPolicy("always").value().mode(), v1::RestartPolicy::MODE_ALWAYS);
  EXPECT_EQ(ParseRestartPolicy("unless-stopped").value().mode(),
            v1::RestartPolicy::MODE_UNLESS_STOPPED);
  v1::RestartPolicy p = ParseRestartPolicy("on-failure").value();
  EXPECT_EQ(p.mode(), v1::RestartPolicy::MODE_ON_FAILURE);
  EXPECT_EQ(p.max_retries(), 0u);
  p = ParseRestartPolicy("on-failure:5").value();
  EXPECT_EQ(p.max_retries(), 5u);
}

TEST(ParseRestartPolicyTest, RefusesWithASuggestion) {
  EXPECT_EQ(ErrorOf(ParseRestartPolicy("unless_stopped").status()),
            "\"unless_stopped\" is not a restart policy; did you mean \"unless-stopped\"? (use "
            "no, on-failure[:max_retries], always or unless-stopped)");
  EXPECT_EQ(ErrorOf(ParseRestartPolicy("sometimes").status()),
            "\"sometimes\" is not a restart policy; use no, on-failure[:max_retries], always or "
            "unless-stopped");
  EXPECT_THAT(ErrorOf(ParseRestartPolicy("always:3").status()),
              HasSubstr("only on-failure takes a number"));
  EXPECT_THAT(ErrorOf(ParseRestartPolicy("on-failure:x").status()),
              HasSubstr("has \"x\" as the most restarts"));
  EXPECT_FALSE(ParseRestartPolicy("on-failure:").ok());
  EXPECT_FALSE(ParseRestartPolicy("on-failure:99999999999").ok());
}

TEST(SplitCommandLineTest, SplitsLikeAShellWithoutOne) {
  EXPECT_THAT(SplitCommandLine("sleep 60").value(), ElementsAre("sleep", "60"));
  EXPECT_THAT(SplitCommandLine("  a\t b\nc  ").value(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(SplitCommandLine("sh -c 'echo \"hi\" && exit 1'").value(),
              ElementsAre("sh", "-c", "echo \"hi\" && exit 1"));
  EXPECT_THAT(SplitCommandLine("echo \"a \\\"b\\\" \\$HOME \\n\"").value(),
              ElementsAre("echo", "a \"b\" $HOME \\n"));
  EXPECT_THAT(SplitCommandLine("a\\ b c\\\\d").value(), ElementsAre("a b", "c\\d"));
  EXPECT_THAT(SplitCommandLine("'' \"\" x").value(), ElementsAre("", "", "x"));
  EXPECT_THAT(SplitCommandLine("a'b'\"c\"d").value(), ElementsAre("abcd"));
  EXPECT_THAT(SplitCommandLine("a \\\n b").value(), ElementsAre("a", "b"));
  EXPECT_THAT(SplitCommandLine("a\\\nb").value(), ElementsAre("ab"));
  EXPECT_THAT(SplitCommandLine("echo $HOME *.txt | wc > x").value(),
              ElementsAre("echo", "$HOME", "*.txt", "|", "wc", ">", "x"));
  EXPECT_THAT(SplitCommandLine("   ").value(), IsEmpty());
}

TEST(SplitCommandLineTest, RefusesUnterminatedQuotes) {
  EXPECT_EQ(ErrorOf(SplitCommandLine("echo 'hi").status()),
            "\"echo \\'hi\" has a ' at offset 5 that is never closed; close it, or write \\' for "
            "a quote character");
  EXPECT_THAT(ErrorOf(SplitCommandLine("echo \"hi").status()),
              HasSubstr("has a \" at offset 5 that is never closed"));
  EXPECT_THAT(ErrorOf(SplitCommandLine("echo \\").status()), HasSubstr("ends with a backslash"));
}

TEST(SourceMapTest, FindsTheNearestRecordedField) {
  SourceMap map;
  map.Add("spec.containers[0]", {"f.yaml", 5, 3});
  map.Add("spec.containers[0].spec", {"f.yaml", 5, 3});
  map.Add("spec.containers[0].spec.ports[1].host_port", {"f.yaml", 9, 9});
  map.Add("spec.containers[0].spec.labels.labels[\"a.b[1]\"]", {"f.yaml", 12, 7});
  map.Add("spec.containers[0].spec.labels.labels[\"a.b[1]\"]", {"f.yaml", 99, 1});  // first stays
  EXPECT_EQ(map.size(), 4u);

  EXPECT_EQ(map.Find("spec.containers[0]"), (SourcePosition{"f.yaml", 5, 3}));
  EXPECT_EQ(map.Find("spec.containers[1]"), std::nullopt);
  EXPECT_EQ(map.FindNearest("spec.containers[0].spec.ports[1].host_port"),
            (SourcePosition{"f.yaml", 9, 9}));
  EXPECT_EQ(map.FindNearest("spec.containers[0].spec.ports[1]"), (SourcePosition{"f.yaml", 5, 3}));
  EXPECT_EQ(map.FindNearest("spec.containers[0].spec.labels.labels[\"a.b[1]\"]"),
            (SourcePosition{"f.yaml", 12, 7}));
  EXPECT_EQ(map.FindNearest("spec.containers[0].spec.labels.labels[\"x.y\"]"),
            (SourcePosition{"f.yaml", 5, 3}));
  EXPECT_EQ(map.FindNearest("spec.containers[0]x"), std::nullopt);  // not a field boundary
  EXPECT_EQ(map.FindNearest("spec.networks[0]"), std::nullopt);
}

TEST(SourceMapTest, LocatesMessagesThatNameAField) {
  SourceMap map;
  map.Add("spec.name", {"f.yaml", 1, 7});
  map.Add("spec.containers[0].spec", {"f.yaml", 5, 3});
  map.Add("spec.containers[0].spec.ports[0].host_port", {"f.yaml", 8, 9});
  EXPECT_EQ(map.Locate("spec.containers[0].spec.ports[0].host_port: 70000 is not a port"),
            "f.yaml:8:9: spec.containers[0].spec.ports[0].host_port: 70000 is not a port");
  EXPECT_EQ(map.Locate("spec.containers[0].spec.stop_timeout: seconds 1 is out of range"),
            "f.yaml:5:3: spec.containers[0].spec.stop_timeout: seconds 1 is out of range");
  EXPECT_EQ(map.Locate("apply group \"shop\": spec.name: \"Shop\" is not a name"),
            "f.yaml:1:7: apply group \"shop\": spec.name: \"Shop\" is not a name");
  // The first path that is known counts; "spec" alone is no field.
  EXPECT_EQ(map.Locate("bad spec: spec.name: empty"), "f.yaml:1:7: bad spec: spec.name: empty");
  EXPECT_EQ(map.Locate("network \"x\" exists"), "network \"x\" exists");
  EXPECT_EQ(map.Locate("inspect.name: x"), "inspect.name: x");
  EXPECT_EQ(map.Locate("respec.name: x"), "respec.name: x");
  EXPECT_EQ(map.Locate(""), "");
}

TEST(YamlTreeTest, KeepsPositionsOrderDuplicatesAndQuoting) {
  ParsedYaml parsed = ParseYaml("a: 1\nb:\n  - x\n  - 'y'\na: ~\nc: \"null\"\n", YamlLimits());
  ASSERT_NE(parsed.root, nullptr) << parsed.error.message;
  const YamlNode& root = *parsed.root;
  ASSERT_EQ(root.kind, YamlNode::Kind::kMap);
  ASSERT_EQ(root.entries.size(), 4u);
  EXPECT_EQ(root.entries[0].first->value, "a");
  EXPECT_EQ(root.entries[0].second->value, "1");
  EXPECT_EQ(root.entries[0].second->line, 1);
  EXPECT_EQ(root.entries[0].second->column, 4);
  const YamlNode& list = *root.entries[1].second;
  ASSERT_EQ(list.kind, YamlNode::Kind::kList);
  ASSERT_EQ(list.items.size(), 2u);
  EXPECT_TRUE(list.items[0]->plain);
  EXPECT_FALSE(list.items[1]->plain);
  EXPECT_EQ(list.items[1]->line, 4);
  EXPECT_EQ(list.items[1]->column, 5);
  EXPECT_EQ(root.entries[2].first->value, "a");  // the duplicate is kept
  EXPECT_EQ(root.entries[2].second->kind, YamlNode::Kind::kNull);
  EXPECT_EQ(root.entries[3].second->kind, YamlNode::Kind::kScalar);  // a quoted "null"
  EXPECT_EQ(root.entries[3].second->value, "null");
  EXPECT_EQ(root.expanded_size, 11u);
}

TEST(YamlTreeTest, AliasesShareTheirAnchorsNode) {
  ParsedYaml parsed = ParseYaml("a: &x [1, 2]\nb: *x\n", YamlLimits());
  ASSERT_NE(parsed.root, nullptr) << parsed.error.message;
  EXPECT_EQ(parsed.root->entries[0].second, parsed.root->entries[1].second);
  EXPECT_EQ(parsed.root->expanded_size, 1u + 2 * (1 + 3));
}

TEST(YamlTreeTest, EmptyDocumentsAreNull) {
  for (const char* text : {"", "# just a comment\n", "\n\n"}) {
    ParsedYaml parsed = ParseYaml(text, YamlLimits());
    ASSERT_NE(parsed.root, nullptr) << text;
    EXPECT_EQ(parsed.root->kind, YamlNode::Kind::kNull);
  }
}

TEST(YamlTreeTest, ReportsSyntaxErrorsAndSecondDocuments) {
  ParsedYaml parsed = ParseYaml("a: [1, 2\nb: 3\n", YamlLimits());
  EXPECT_EQ(parsed.root, nullptr);
  EXPECT_THAT(parsed.error.message, HasSubstr("YAML syntax error: "));
  EXPECT_GT(parsed.error.line, 0);

  parsed = ParseYaml("a: 1\n---\nb: 2\n", YamlLimits());
  EXPECT_EQ(parsed.root, nullptr);
  EXPECT_EQ(parsed.error.line, 3);
  EXPECT_EQ(parsed.error.column, 1);
  EXPECT_THAT(parsed.error.message, HasSubstr("a second YAML document starts here"));

  parsed = ParseYaml("a: &x [*x]\n", YamlLimits());
  EXPECT_EQ(parsed.root, nullptr);
  EXPECT_EQ(parsed.error.line, 1);
  EXPECT_EQ(parsed.error.column, 8);
  EXPECT_THAT(parsed.error.message, HasSubstr("refers to a node that contains it"));

  parsed = ParseYaml("a: *nothing\n", YamlLimits());
  EXPECT_EQ(parsed.root, nullptr);
  EXPECT_THAT(parsed.error.message, HasSubstr("YAML syntax error: "));
}

}  // namespace
}  // namespace mesh::cli
