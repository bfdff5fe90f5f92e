// meshctl up, down, group ls|status.
#include "cli/commands/groups.h"

#include <cstdio>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/cli.h"

namespace mesh::cli {

std::string MemberKindName(v1::MemberStatus::Kind kind) {
  return kind == v1::MemberStatus::KIND_NETWORK ? "network" : "container";
}

std::string MemberActionName(v1::MemberAction action) {
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

void AddGroupCommands(CLI::App& app, Cli& cli) {
  CLI::App* group = app.add_subcommand("group", "Inspect groups")->alias("groups");
  group->require_subcommand(1);

  CLI::App* ls = group->add_subcommand("ls", "List groups")->alias("list");
  cli.Action(ls, [&cli]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::ListGroupsResponse response;
    grpc::Status status = (*c)->groups().List((*c)->Context().get(), {}, &response);
    if (!status.ok()) return cli.Failed(status);
    return PrintItems(cli, response.groups(),
                      {"name", "networks", "containers", "running", "applied"},
                      [](const v1::Group& g) -> std::vector<std::string> {
                        int running = 0;
                        for (const v1::MemberStatus& m : g.members()) {
                          if (m.state() == v1::CONTAINER_STATE_RUNNING) ++running;
                        }
                        return {g.spec().name(), absl::StrCat(g.spec().networks_size()),
                                absl::StrCat(g.spec().containers_size()), absl::StrCat(running),
                                Ago(g.applied_at())};
                      });
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
