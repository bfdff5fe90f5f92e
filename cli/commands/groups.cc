// meshctl up, down, group ls|status.
#include "cli/commands/groups.h"

#include <cstdio>
#include <functional>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/quote.h"
#include "base/status_macros.h"
#include "cli/cli.h"
#include "cli/graph.h"
#include "cli/signals.h"
#include "cli/spec/spec_loader.h"

namespace mesh::cli {

std::string MemberKindName(v1::MemberStatus::Kind kind) {
  switch (kind) {
    case v1::MemberStatus::KIND_NETWORK:
      return "network";
    case v1::MemberStatus::KIND_LINK:
      return "link";
    default:
      return "container";
  }
}

std::string MemberActionName(v1::MemberAction action) {
  // Progress without a change yet ("waiting for server to be healthy").
  if (action == v1::MEMBER_ACTION_UNSPECIFIED) return "waiting";
  absl::string_view name = v1::MemberAction_Name(action);
  absl::ConsumePrefix(&name, "MEMBER_ACTION_");
  return absl::AsciiStrToLower(name);
}

std::vector<std::string> MemberRow(const v1::MemberStatus& m) {
  std::string state;
  if (m.kind() == v1::MemberStatus::KIND_CONTAINER) {
    absl::string_view s = v1::ContainerState_Name(m.state());
    absl::ConsumePrefix(&s, "CONTAINER_STATE_");
    state = absl::AsciiStrToLower(s);
    if (m.health() != v1::HEALTH_UNSPECIFIED) {
      absl::string_view h = v1::Health_Name(m.health());
      absl::ConsumePrefix(&h, "HEALTH_");
      absl::StrAppend(&state, " (", absl::AsciiStrToLower(h), ")");
    }
  }
  return {MemberKindName(m.kind()), m.name(), MemberActionName(m.action()), state, m.message()};
}

namespace {

// Whether every member of `g` is where `up --wait` waits for it: running (and healthy, if it
// has a health check), or ended with code 0 (a setup job). `exit_code` looks a stopped
// member's last exit up. Otherwise `waiting_for` names the first member that is not.
bool Settled(const v1::Group& g, const std::function<int(const std::string&)>& exit_code,
             std::string* waiting_for) {
  for (const v1::MemberStatus& m : g.members()) {
    if (m.kind() != v1::MemberStatus::KIND_CONTAINER) continue;
    const bool healthy = m.health() == v1::HEALTH_UNSPECIFIED || m.health() == v1::HEALTH_HEALTHY;
    const bool done = m.state() == v1::CONTAINER_STATE_RUNNING
                          ? healthy
                          : m.state() == v1::CONTAINER_STATE_STOPPED && exit_code(m.name()) == 0;
    if (!done) {
      *waiting_for = m.name();
      return false;
    }
  }
  return true;
}

absl::StatusOr<int> Up(Cli& cli, const std::string& file, bool wait, int timeout_seconds) {
  absl::StatusOr<LoadedSpec> loaded = LoadSpecFile(file);
  if (!loaded.ok()) {
    // Every problem at once, one per line, each at its place in the file.
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return kExitFailed;
  }
  absl::StatusOr<Client*> c = cli.client();
  if (!c.ok()) return c.status();
  v1::ApplyGroupRequest request;
  *request.mutable_spec() = loaded->spec;
  auto context = (*c)->Context(absl::InfiniteDuration());
  // Ctrl-C cancels the stream: meshd finishes the member at hand; the group stays as far as it
  // got and a second `up` completes it.
  OnInterrupt interrupt([&context](int) { context->TryCancel(); });
  auto reader = (*c)->groups().Apply(context.get(), request);
  const bool table = cli.format() == Format::kTable;
  v1::Group done;
  bool finished = false;
  std::set<std::string> reported;  // "kind/name" of members with a progress line
  for (v1::ApplyGroupProgress progress; reader->Read(&progress);) {
    if (progress.has_member() && table) {
      const v1::MemberStatus& m = progress.member();
      reported.insert(absl::StrCat(MemberKindName(m.kind()), "/", m.name()));
      // "container server  created", or while it waits: "container client  waiting for ...".
      const std::string what =
          m.action() == v1::MEMBER_ACTION_UNSPECIFIED && !m.message().empty()
              ? m.message()
              : absl::StrCat(MemberActionName(m.action()),
                             m.message().empty() ? "" : " (" + m.message() + ")");
      std::printf("%-9s %-24s %s\n", MemberKindName(m.kind()).c_str(), m.name().c_str(),
                  what.c_str());
      std::fflush(stdout);
    }
    if (progress.has_done()) {
      done = progress.done();
      finished = true;
    }
  }
  grpc::Status status = reader->Finish();
  if (interrupt.signal() != 0 && !finished) {
    Cli::Error(absl::StrCat("interrupted: group \"", loaded->spec.name(),
                            "\" stays as far as it got; `meshctl up -f ", file,
                            "` finishes it, `meshctl down ", loaded->spec.name(), "` removes it"));
    return 130;
  }
  if (!status.ok()) {
    // meshd's message names an API field; show it at its place in the file.
    Cli::Error(status.error_code() == grpc::StatusCode::UNAVAILABLE
                   ? (*c)->Describe(status)
                   : loaded->sources.Locate(status.error_message()));
    return kExitFailed;
  }
  if (!finished) {
    Cli::Error("apply: meshd ended the stream without the applied group");
    return kExitFailed;
  }
  // meshd reports changes only: the members it kept as they were are named here.
  if (table) {
    for (const v1::MemberStatus& m : done.members()) {
      if (reported.contains(absl::StrCat(MemberKindName(m.kind()), "/", m.name()))) continue;
      std::printf("%-9s %-24s unchanged\n", MemberKindName(m.kind()).c_str(), m.name().c_str());
    }
  }
  if (wait) {
    const absl::Time deadline = absl::Now() + absl::Seconds(timeout_seconds);
    v1::GetGroupRequest get;
    get.set_name(loaded->spec.name());
    std::string waiting_for;
    for (;;) {
      grpc::Status got = (*c)->groups().Get((*c)->Context().get(), get, &done);
      if (!got.ok()) return cli.Failed(got);
      auto exit_code = [&](const std::string& member) {
        v1::GetContainerRequest get_member;
        get_member.set_name(absl::StrCat(loaded->spec.name(), "-", member));
        v1::Container container;
        return (*c)->containers().Get((*c)->Context().get(), get_member, &container).ok()
                   ? container.last_exit().code()
                   : -1;
      };
      if (Settled(done, exit_code, &waiting_for)) break;
      if (absl::Now() >= deadline) {
        Cli::Error(absl::StrCat("up --wait: ", waiting_for, " is not running and healthy after ",
                                timeout_seconds, " s (meshctl group status ", loaded->spec.name(),
                                ", meshctl logs ", waiting_for, ")"));
        return kExitFailed;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  if (!table) {
    std::printf("%s", Render(done, cli.format()).c_str());
  } else {
    std::printf("group %s is up\n", loaded->spec.name().c_str());
  }
  return kExitOk;
}

// `graph NAME`: the group's topology in the format -o names (dot by default).
absl::StatusOr<int> PrintGraph(Cli& cli, const std::string& name) {
  const std::string format = cli.output == "table" || cli.output.empty() ? "dot" : cli.output;
  if (format != "dot" && format != "mermaid" && format != "svg") {
    return absl::InvalidArgumentError(absl::StrCat(
        "graph: -o ", Quote(cli.output), ": the graph is printed as dot, mermaid or svg"));
  }
  absl::StatusOr<Client*> c = cli.client();
  if (!c.ok()) return c.status();
  v1::GetGroupRequest get;
  get.set_name(name);
  v1::Group group;
  if (grpc::Status s = (*c)->groups().Get((*c)->Context().get(), get, &group); !s.ok()) {
    return cli.Failed(s);
  }
  v1::ListNetworksResponse networks;
  if (grpc::Status s = (*c)->networks().List((*c)->Context().get(), {}, &networks); !s.ok()) {
    return cli.Failed(s);
  }
  v1::ListContainersRequest list;
  list.set_all(true);
  list.set_group(name);
  v1::ListContainersResponse containers;
  if (grpc::Status s = (*c)->containers().List((*c)->Context().get(), list, &containers); !s.ok()) {
    return cli.Failed(s);
  }
  std::vector<v1::Network> group_networks;
  for (const v1::Network& n : networks.networks()) {
    if (n.group() == name) group_networks.push_back(n);
  }
  const Graph graph = BuildGraph(group, group_networks,
                                 {containers.containers().begin(), containers.containers().end()});
  if (format == "mermaid") {
    std::printf("%s", ToMermaid(graph).c_str());
    return kExitOk;
  }
  if (format == "dot") {
    std::printf("%s", ToDot(graph).c_str());
    return kExitOk;
  }
  MESH_ASSIGN_OR_RETURN(std::string svg, RenderSvg(ToDot(graph)));
  std::printf("%s", svg.c_str());
  return kExitOk;
}

}  // namespace

void AddGroupCommands(CLI::App& app, Cli& cli) {
  CLI::App* up = app.add_subcommand("up", "Create or update a group from a spec file");
  struct UpFlags {
    std::string file;
    bool wait = false;
    int timeout = 120;
  };
  auto uf = std::make_shared<UpFlags>();
  up->add_option("-f,--file", uf->file, "the group spec (YAML, docs/spec.md), or - for stdin")
      ->required();
  up->add_flag("--wait", uf->wait,
               "return once every container runs (and is healthy, if it has a health check)");
  up->add_option("--timeout", uf->timeout, "seconds --wait waits at most")->default_val(120);
  cli.Action(up, [&cli, uf]() { return Up(cli, uf->file, uf->wait, uf->timeout); });

  CLI::App* graph = app.add_subcommand(
      "graph",
      "Print a group's topology: Graphviz DOT (the default), -o mermaid, or -o svg (needs dot)");
  auto graph_name = std::make_shared<std::string>();
  graph->add_option("group", *graph_name, "the group")->required();
  cli.Action(
      graph, [&cli, graph_name]() { return PrintGraph(cli, *graph_name); }, /*own_formats=*/true);

  CLI::App* group = app.add_subcommand("group", "Inspect groups")->alias("groups");
  group->require_subcommand(1);

  CLI::App* ls = group->add_subcommand("ls", "List groups")->alias("list");
  auto quiet = std::make_shared<bool>(false);
  ls->add_flag("-q,--quiet", *quiet, "names only");
  cli.Action(ls, [&cli, quiet]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::ListGroupsResponse response;
    grpc::Status status = (*c)->groups().List((*c)->Context().get(), {}, &response);
    if (!status.ok()) return cli.Failed(status);
    return PrintItems(
        cli, response.groups(), {"name", "networks", "containers", "running", "applied"},
        [](const v1::Group& g) -> std::vector<std::string> {
          int running = 0;
          for (const v1::MemberStatus& m : g.members()) {
            if (m.state() == v1::CONTAINER_STATE_RUNNING) ++running;
          }
          return {g.spec().name(), absl::StrCat(g.spec().networks_size()),
                  absl::StrCat(g.spec().containers_size()), absl::StrCat(running),
                  Ago(g.applied_at())};
        },
        *quiet);
  });

  CLI::App* status_cmd = group->add_subcommand("status", "Show a group's members and state");
  auto name = std::make_shared<std::string>();
  status_cmd->add_option("group", *name, "the group")->required();
  cli.Action(status_cmd, [&cli, name]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::GetGroupRequest request;
    request.set_name(*name);
    v1::Group g;
    grpc::Status status = (*c)->groups().Get((*c)->Context().get(), request, &g);
    if (!status.ok()) return cli.Failed(status);
    if (cli.format() != Format::kTable) {
      std::printf("%s", Render(g, cli.format()).c_str());
      return kExitOk;
    }
    std::printf("group %s, applied %s\n", g.spec().name().c_str(), Ago(g.applied_at()).c_str());
    return PrintItems(cli, g.members(), {"kind", "name", "action", "state", "message"}, MemberRow);
  });

  CLI::App* down = app.add_subcommand("down", "Remove a group and everything it owns");
  auto down_name = std::make_shared<std::string>();
  down->add_option("group", *down_name, "the group")->required();
  cli.Action(down, [&cli, down_name]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::DeleteGroupRequest request;
    request.set_name(*down_name);
    v1::DeleteGroupResponse response;
    grpc::Status status =
        (*c)->groups().Delete((*c)->Context(absl::Minutes(10)).get(), request, &response);
    if (!status.ok()) return cli.Failed(status);
    if (cli.format() != Format::kTable) {
      std::printf("%s", Render(response, cli.format()).c_str());
      return kExitOk;
    }
    for (const v1::MemberStatus& m : response.removed()) {
      std::printf("removed %s %s\n", MemberKindName(m.kind()).c_str(), m.name().c_str());
    }
    return kExitOk;
  });
}

}  // namespace mesh::cli
