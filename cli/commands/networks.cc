// meshctl net ls|create|rm|inspect|connect|disconnect.
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/cli.h"

namespace mesh::cli {

void AddNetworkCommands(CLI::App& app, Cli& cli) {
  CLI::App* net = app.add_subcommand("net", "Manage networks")->alias("network");
  net->require_subcommand(1);

  CLI::App* ls = net->add_subcommand("ls", "List networks")->alias("list");
  auto quiet = std::make_shared<bool>(false);
  ls->add_flag("-q,--quiet", *quiet, "names only");
  cli.Action(ls, [&cli, quiet]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::ListNetworksResponse response;
    grpc::Status status = (*c)->networks().List((*c)->Context().get(), {}, &response);
    if (!status.ok()) return cli.Failed(status);
    return PrintItems(
        cli, response.networks(),
        {"name", "subnet", "gateway", "bridge", "nat", "containers", "group"},
        [](const v1::Network& n) -> std::vector<std::string> {
          return {n.spec().name(),
                  n.spec().subnet(),
                  n.spec().gateway(),
                  n.bridge(),
                  n.spec().internal()      ? "internal"
                  : n.spec().disable_nat() ? "off"
                                           : "on",
                  absl::StrCat(n.containers_size()),
                  n.group()};
        },
        *quiet);
  });

  CLI::App* create = net->add_subcommand("create", "Create a network");
  struct CreateFlags {
    std::string name, subnet, gateway;
    uint32_t mtu = 0;
    bool internal = false, no_nat = false;
    std::vector<std::string> labels;
  };
  auto cf = std::make_shared<CreateFlags>();
  create->add_option("name", cf->name, "the network's name")->required();
  create->add_option("--subnet", cf->subnet,
                     "IPv4 subnet (default: the next free one from the "
                     "pool)");
  create->add_option("--gateway", cf->gateway, "gateway address (default: the subnet's first)");
  create->add_option("--mtu", cf->mtu, "MTU of the bridge and the containers' interfaces");
  create->add_flag("--internal", cf->internal, "no route to the outside world");
  create->add_flag("--no-nat", cf->no_nat, "route to the outside without masquerading");
  create->add_option("-l,--label", cf->labels, "a label (key=value)")->allow_extra_args(false);
  cli.Action(create, [&cli, cf]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::CreateNetworkRequest request;
    v1::NetworkSpec& spec = *request.mutable_spec();
    spec.set_name(cf->name);
    spec.set_subnet(cf->subnet);
    spec.set_gateway(cf->gateway);
    spec.set_mtu(cf->mtu);
    spec.set_internal(cf->internal);
    spec.set_disable_nat(cf->no_nat);
    for (const std::string& label : cf->labels) {
      std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
      (*spec.mutable_labels()->mutable_labels())[kv.first] = kv.second;
    }
    v1::Network network;
    grpc::Status status = (*c)->networks().Create((*c)->Context().get(), request, &network);
    if (!status.ok()) return cli.Failed(status);
    if (cli.format() != Format::kTable) {
      std::printf("%s", Render(network, cli.format()).c_str());
    } else {
      std::printf("%s %s\n", network.spec().name().c_str(), network.spec().subnet().c_str());
    }
    return kExitOk;
  });

  CLI::App* rm = net->add_subcommand("rm", "Remove networks")->alias("remove");
  auto names = std::make_shared<std::vector<std::string>>();
  rm->add_option("networks", *names, "the networks")->required();
  cli.Action(rm, [&cli, names]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    int code = kExitOk;
    for (const std::string& name : *names) {
      v1::RemoveNetworkRequest request;
      request.set_name(name);
      v1::RemoveNetworkResponse response;
      grpc::Status status = (*c)->networks().Remove((*c)->Context().get(), request, &response);
      if (status.ok()) {
        std::printf("%s\n", name.c_str());
      } else {
        code = cli.Failed(status);
      }
    }
    return code;
  });

  CLI::App* inspect = net->add_subcommand("inspect", "Show networks in full (JSON or YAML)");
  auto inspect_names = std::make_shared<std::vector<std::string>>();
  inspect->add_option("networks", *inspect_names, "the networks")->required();
  cli.Action(inspect, [&cli, inspect_names]() -> absl::StatusOr<int> {
    return InspectEach(cli, *inspect_names, {NetworkGetter()}, "network");
  });

  CLI::App* connect = net->add_subcommand("connect", "Attach a container to a network");
  struct ConnectFlags {
    std::string network, container, ip;
    std::vector<std::string> aliases;
  };
  auto kf = std::make_shared<ConnectFlags>();
  connect->add_option("network", kf->network, "the network")->required();
  connect->add_option("container", kf->container, "the container")->required();
  connect->add_option("--ip", kf->ip, "its address there (default: the next free one)");
  connect->add_option("--alias", kf->aliases, "another name for it on that network")
      ->allow_extra_args(false);
  cli.Action(connect, [&cli, kf]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::ConnectRequest request;
    request.set_network(kf->network);
    request.set_container(kf->container);
    request.set_ip(kf->ip);
    for (const std::string& a : kf->aliases) request.add_aliases(a);
    v1::ConnectResponse response;
    grpc::Status status = (*c)->networks().Connect((*c)->Context().get(), request, &response);
    if (!status.ok()) return cli.Failed(status);
    if (cli.format() != Format::kTable) {
      std::printf("%s", Render(response, cli.format()).c_str());
    } else {
      std::printf("%s %s/%u on %s\n", kf->container.c_str(), response.address().ip().c_str(),
                  response.address().prefix_length(), response.address().interface().c_str());
    }
    return kExitOk;
  });

  CLI::App* disconnect = net->add_subcommand("disconnect", "Detach a container from a network");
  auto df = std::make_shared<std::pair<std::string, std::string>>();
  disconnect->add_option("network", df->first, "the network")->required();
  disconnect->add_option("container", df->second, "the container")->required();
  cli.Action(disconnect, [&cli, df]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::DisconnectRequest request;
    request.set_network(df->first);
    request.set_container(df->second);
    v1::DisconnectResponse response;
    grpc::Status status = (*c)->networks().Disconnect((*c)->Context().get(), request, &response);
    return status.ok() ? kExitOk : cli.Failed(status);
  });
}

}  // namespace mesh::cli
