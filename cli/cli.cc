#include "cli/cli.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/quote.h"
#include "base/suggest.h"

namespace mesh::cli {

absl::StatusOr<Client*> Cli::client() {
  if (client_ == nullptr) {
    absl::StatusOr<std::unique_ptr<Client>> made = Client::Connect(host);
    if (!made.ok()) return made.status();
    client_ = *std::move(made);
  }
  return client_.get();
}

absl::Status Cli::ResolveFormat() {
  absl::StatusOr<Format> format = ParseFormat(output);
  if (!format.ok()) return format.status();
  format_ = *format;
  return absl::OkStatus();
}

void Cli::Action(CLI::App* command, std::function<absl::StatusOr<int>()> action, bool own_formats) {
  command->callback([this, action = std::move(action), own_formats] {
    if (absl::Status s = own_formats ? absl::OkStatus() : ResolveFormat(); !s.ok()) {
      Error(s.message());
      exit_code = kExitUsage;
      return;
    }
    absl::StatusOr<int> code = action();
    if (!code.ok()) {
      Error(code.status().message());
      exit_code = absl::IsInvalidArgument(code.status()) ? kExitUsage : kExitFailed;
      return;
    }
    exit_code = *code;
  });
}

void Cli::Error(absl::string_view message) {
  std::fprintf(stderr, "meshctl: %s\n", std::string(message).c_str());
}

int Cli::Failed(const grpc::Status& status) {
  Error(client_ != nullptr ? client_->Describe(status) : status.error_message());
  return kExitFailed;
}

namespace {

template <typename Request, typename Response, typename Call>
Getter MakeGetter(Call call) {
  return [call](Client& client, const std::string& name,
                std::unique_ptr<google::protobuf::Message>& out) {
    Request request;
    if constexpr (std::is_same_v<Request, v1::GetImageRequest>) {
      request.set_image(name);
    } else {
      request.set_name(name);
    }
    auto response = std::make_unique<Response>();
    grpc::Status status = call(client, client.Context().get(), request, response.get());
    if (status.ok()) out = std::move(response);
    return status;
  };
}

}  // namespace

Getter ContainerGetter() {
  return MakeGetter<v1::GetContainerRequest, v1::Container>(
      [](Client& c, grpc::ClientContext* ctx, const auto& req, auto* out) {
        return c.containers().Get(ctx, req, out);
      });
}
Getter NetworkGetter() {
  return MakeGetter<v1::GetNetworkRequest, v1::Network>(
      [](Client& c, grpc::ClientContext* ctx, const auto& req, auto* out) {
        return c.networks().Get(ctx, req, out);
      });
}
Getter GroupGetter() {
  return MakeGetter<v1::GetGroupRequest, v1::Group>(
      [](Client& c, grpc::ClientContext* ctx, const auto& req, auto* out) {
        return c.groups().Get(ctx, req, out);
      });
}
Getter ImageGetter() {
  return MakeGetter<v1::GetImageRequest, v1::Image>(
      [](Client& c, grpc::ClientContext* ctx, const auto& req, auto* out) {
        return c.images().Get(ctx, req, out);
      });
}

absl::StatusOr<int> InspectEach(Cli& cli, const std::vector<std::string>& names,
                                const std::vector<Getter>& getters, absl::string_view kinds) {
  absl::StatusOr<Client*> c = cli.client();
  if (!c.ok()) return c.status();
  std::vector<std::unique_ptr<google::protobuf::Message>> found;
  for (const std::string& name : names) {
    std::unique_ptr<google::protobuf::Message> out;
    for (const Getter& get : getters) {
      grpc::Status status = get(**c, name, out);
      if (status.ok()) break;
      if (status.error_code() != grpc::StatusCode::NOT_FOUND) return cli.Failed(status);
    }
    if (out == nullptr) {
      Cli::Error(absl::StrCat("no ", kinds, " named \"", name, "\""));
      return kExitFailed;
    }
    found.push_back(std::move(out));
  }
  std::vector<const google::protobuf::Message*> list;
  for (const auto& m : found) list.push_back(m.get());
  // For people too the full object reads best as JSON (as docker inspect).
  std::printf(
      "%s",
      RenderList(list, cli.format() == Format::kYaml ? Format::kYaml : Format::kJson).c_str());
  return kExitOk;
}

std::optional<std::string> UnknownCommandMessage(const CLI::App& app) {
  // The deepest command the parse got into.
  const CLI::App* at = &app;
  std::string path = app.get_name();
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const CLI::App* sub : at->get_subcommands({})) {
      if (sub->parsed()) {
        at = sub;
        absl::StrAppend(&path, " ", sub->get_name());
        deeper = true;
        break;
      }
    }
  }
  const std::vector<const CLI::App*> subs = at->get_subcommands({});
  // With fallthrough, a word no command takes may land at any level: all of them.
  const std::vector<std::string> rest = app.remaining(/*recurse=*/true);
  if (subs.empty()) return std::nullopt;
  std::vector<std::string> names;
  for (const CLI::App* sub : subs) {
    names.push_back(sub->get_name());
    for (const std::string& alias : sub->get_aliases()) names.push_back(alias);
  }
  if (rest.empty() && at != &app && at->get_require_subcommand_min() > 0) {
    std::vector<std::string> commands;
    for (const CLI::App* sub : subs) commands.push_back(sub->get_name());
    return absl::StrCat(path, ": a command is needed: ", absl::StrJoin(commands, ", "), "\nRun '",
                        path, " --help' for more.");
  }
  if (rest.empty() || rest.front().empty() || rest.front()[0] == '-') return std::nullopt;
  std::string message =
      absl::StrCat(path, ": ", mesh::Quote(rest.front()), " is not a ", path, " command");
  if (std::optional<std::string> near = mesh::ClosestMatch(rest.front(), names)) {
    absl::StrAppend(&message, "; did you mean ", mesh::Quote(*near), "?");
  }
  absl::StrAppend(&message, "\nRun '", path, " --help' for the commands.");
  return message;
}

}  // namespace mesh::cli
