// meshctl version, info, events.
#include <csignal>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "base/version.h"
#include "cli/cli.h"
#include "nlohmann/json.hpp"

namespace mesh::cli {
namespace {

std::string EventKind(v1::Event::Kind kind) {
  std::string name = v1::Event::Kind_Name(kind);
  absl::string_view view = name;
  if (absl::ConsumePrefix(&view, "KIND_")) return absl::AsciiStrToLower(view);
  return name;
}

std::string Time(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()),
                          absl::UTCTimeZone());
}

}  // namespace

void AddSystemCommands(CLI::App& app, Cli& cli) {
  CLI::App* version = app.add_subcommand("version", "Print meshctl's and meshd's versions");
  cli.Action(version, [&cli]() -> absl::StatusOr<int> {
    v1::VersionResponse client;
    client.set_version(mesh::kVersion);
    client.set_git_commit(mesh::kGitCommit);
    client.set_api_version(mesh::kApiVersion);
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::VersionResponse server;
    grpc::Status status =
        (*c)->system().Version((*c)->Context(absl::Seconds(10)).get(), {}, &server);
    if (cli.format() != Format::kTable) {
      std::vector<std::pair<std::string, const google::protobuf::Message*>> fields = {
          {"client", &client}};
      if (status.ok()) fields.push_back({"server", &server});
      std::printf("%s", RenderObject(fields, cli.format()).c_str());
    } else {
      std::printf("meshctl %s (commit %s, API %s)\n", client.version().c_str(),
                  client.git_commit().c_str(), client.api_version().c_str());
      if (status.ok()) {
        std::printf("meshd   %s (commit %s, API %s, kernel %s)\n", server.version().c_str(),
                    server.git_commit().c_str(), server.api_version().c_str(),
                    server.kernel().c_str());
      }
    }
    return status.ok() ? kExitOk : cli.Failed(status);
  });

  CLI::App* info = app.add_subcommand("info", "Show what meshd runs and how it is set up");
  cli.Action(info, [&cli]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::InfoResponse response;
    grpc::Status status = (*c)->system().Info((*c)->Context().get(), {}, &response);
    if (!status.ok()) return cli.Failed(status);
    if (cli.format() != Format::kTable) {
      std::printf("%s", Render(response, cli.format()).c_str());
      return kExitOk;
    }
    const v1::VersionResponse& v = response.version();
    std::printf(
        "Server version:  %s (commit %s, API %s)\nKernel:          %s\n"
        "Containers:      %u running, %u stopped\nNetworks:        %u\nGroups:          %u\n"
        "Images:          %u\nState dir:       %s\nRun dir:         %s\nCgroups:         %s\n"
        "Default pool:    %s (/%u per network)\n",
        v.version().c_str(), v.git_commit().c_str(), v.api_version().c_str(), v.kernel().c_str(),
        response.containers_running(), response.containers_stopped(), response.networks(),
        response.groups(), response.images(), response.state_dir().c_str(),
        response.run_dir().c_str(), response.cgroup_version().c_str(),
        response.default_subnet_pool().c_str(), response.default_subnet_prefix_length());
    if (!response.has_dns()) {
      std::printf("DNS:             off (containers use the host's resolvers)\n");
      return kExitOk;
    }
    const v1::DnsInfo& dns = response.dns();
    const absl::Duration timeout = absl::Seconds(dns.upstream_timeout().seconds()) +
                                   absl::Nanoseconds(dns.upstream_timeout().nanos());
    std::printf(
        "DNS:             on %s (port 53)\nDNS upstreams:   %s\n"
        "DNS queries:     %lu (%lu answered by mesh, %lu forwarded, %lu SERVFAIL, %lu malformed "
        "dropped)\n",
        dns.listening().empty() ? "no network yet" : absl::StrJoin(dns.listening(), ", ").c_str(),
        dns.upstreams().empty() ? "none (names mesh does not know get SERVFAIL)"
                                : absl::StrCat(absl::StrJoin(dns.upstreams(), ", "), ", ",
                                               absl::FormatDuration(timeout), " each")
                                      .c_str(),
        static_cast<unsigned long>(dns.queries()), static_cast<unsigned long>(dns.answered()),
        static_cast<unsigned long>(dns.forwarded()), static_cast<unsigned long>(dns.servfail()),
        static_cast<unsigned long>(dns.malformed()));
    for (const std::string& problem : dns.problems()) {
      std::printf("DNS problem:     %s\n", problem.c_str());
    }
    return kExitOk;
  });

  CLI::App* inspect = app.add_subcommand(
      "inspect", "Show containers, networks, groups or images in full (JSON, or YAML with -o)");
  auto names = std::make_shared<std::vector<std::string>>();
  auto type = std::make_shared<std::string>();
  inspect->add_option("names", *names, "what to show")->required();
  inspect->add_option("--type", *type, "only look for this kind: container, network, group, image")
      ->check(CLI::IsMember({"container", "network", "group", "image"}));
  cli.Action(inspect, [&cli, names, type]() -> absl::StatusOr<int> {
    if (*type == "container") return InspectEach(cli, *names, {ContainerGetter()}, "container");
    if (*type == "network") return InspectEach(cli, *names, {NetworkGetter()}, "network");
    if (*type == "group") return InspectEach(cli, *names, {GroupGetter()}, "group");
    if (*type == "image") return InspectEach(cli, *names, {ImageGetter()}, "image");
    return InspectEach(cli, *names,
                       {ContainerGetter(), NetworkGetter(), GroupGetter(), ImageGetter()},
                       "container, network, group or image");
  });

  CLI::App* events = app.add_subcommand("events", "Follow meshd's events (Ctrl-C to stop)");
  auto since = std::make_shared<std::string>();
  events->add_option("--since", *since,
                     "replay kept events since then: a duration back (10m) or a time (RFC 3339)");
  cli.Action(events, [&cli, since]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::EventsRequest request;
    if (!since->empty()) {
      absl::StatusOr<google::protobuf::Timestamp> t = ParseSince("--since", *since);
      if (!t.ok()) return t.status();
      *request.mutable_since() = *t;
    }
    auto context = (*c)->Context(absl::InfiniteDuration());
    auto reader = (*c)->system().Events(context.get(), request);
    for (v1::Event event; reader->Read(&event);) {
      if (cli.format() != Format::kTable) {
        // One document per event: a JSON line, or a YAML document after "---".
        std::string text = Render(event, cli.format());
        if (cli.format() == Format::kJson) {
          text = nlohmann::json::parse(text).dump() + "\n";
        } else {
          text = "---\n" + text;
        }
        std::printf("%s", text.c_str());
      } else {
        std::vector<std::string> attributes;
        for (const auto& [k, v] : event.attributes()) attributes.push_back(absl::StrCat(k, "=", v));
        std::sort(attributes.begin(), attributes.end());
        std::printf("%s %s %s%s%s\n", Time(event.time()).c_str(), EventKind(event.kind()).c_str(),
                    event.object().c_str(), attributes.empty() ? "" : " ",
                    absl::StrJoin(attributes, " ").c_str());
      }
      std::fflush(stdout);
    }
    grpc::Status status = reader->Finish();
    return status.ok() ? kExitOk : cli.Failed(status);
  });
}

}  // namespace mesh::cli
