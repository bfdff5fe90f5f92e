// meshctl check FROM TO [PROBE] | meshctl check GROUP --matrix [-p PROBE]...
#include "cli/check.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/cli.h"
#include "cli/spec/scalars.h"

namespace mesh::cli {
void AddCheckCommand(CLI::App& app, Cli& cli) {
  CLI::App* check = app.add_subcommand(
      "check", "Probe whether one container reaches another, and which rule decided");
  struct Flags {
    std::vector<std::string> args;  // FROM TO [PROBE], or GROUP with --matrix
    bool matrix = false;
    bool why = false;
    std::vector<std::string> probes;
    std::string timeout;
  };
  auto f = std::make_shared<Flags>();
  check->add_option("args", f->args, "FROM TO [PROBE], or GROUP with --matrix")->required();
  check->add_flag("--matrix", f->matrix, "every pair of the group's running containers");
  check->add_flag("--why", f->why,
                  "with --matrix: then each probe on a line, with the rule that decided it");
  check->add_option("-p,--probe", f->probes,
                    "with --matrix: a probe to send (icmp, 8080/tcp, 53/udp); repeatable");
  check->add_option("-t,--timeout", f->timeout, "how long to wait for an answer (default 1s)");
  check->footer(
      "Sends a real probe (ICMP echo, TCP connect or UDP datagram) from FROM's network namespace "
      "and reads the kernel's nftables trace of it to name the rule that let it through or "
      "dropped it. TO is a container or an IPv4 address; PROBE defaults to icmp.\n"
      "Exit code: 0 when TO was reached (answered, or refused the port), 1 when not.\n"
      "Examples:\n  meshctl check tiers-web tiers-app 8080/tcp\n  meshctl check tiers --matrix "
      "--why");
  cli.Action(check, [&cli, f]() -> absl::StatusOr<int> {
    absl::StatusOr<google::protobuf::Duration> timeout;
    if (!f->timeout.empty()) {
      timeout = ParseDurationFlag("--timeout", f->timeout);
      if (!timeout.ok()) return timeout.status();
    }
    if (f->matrix) {
      if (f->args.size() != 1) {
        return absl::InvalidArgumentError(
            "check --matrix: give the group alone (meshctl check GROUP --matrix)");
      }
      v1::CheckGroupRequest request;
      request.set_group(f->args[0]);
      for (const std::string& text : f->probes) {
        absl::StatusOr<v1::Probe> p = ParseProbe(text);
        if (!p.ok())
          return absl::InvalidArgumentError(absl::StrCat("--probe ", p.status().message()));
        *request.add_probes() = *std::move(p);
      }
      if (!f->timeout.empty()) *request.mutable_timeout() = *timeout;
      absl::StatusOr<Client*> c = cli.client();
      if (!c.ok()) return c.status();
      v1::CheckGroupResponse response;
      grpc::Status status = (*c)->networks().CheckGroup(
          (*c)->Context(absl::InfiniteDuration()).get(), request, &response);
      if (!status.ok()) return cli.Failed(status);
      if (cli.format() != Format::kTable) {
        std::printf("%s", Render(response, cli.format()).c_str());
      } else {
        std::printf("%s", FormatMatrix(response, f->args[0]).c_str());
        if (f->why) std::printf("\n%s", FormatWhy(response, f->args[0]).c_str());
      }
      return kExitOk;
    }
    if (!f->probes.empty() || f->why) {
      return absl::InvalidArgumentError(
          "check: --probe and --why go with --matrix; for one pair give the probe after TO "
          "(meshctl check FROM TO 8080/tcp)");
    }
    if (f->args.size() < 2 || f->args.size() > 3) {
      return absl::InvalidArgumentError(
          "check: give FROM TO [PROBE] (meshctl check web app 8080/tcp), or GROUP --matrix");
    }
    v1::CheckRequest request;
    request.set_from(f->args[0]);
    request.set_to(f->args[1]);
    if (f->args.size() == 3) {
      absl::StatusOr<v1::Probe> p = ParseProbe(f->args[2]);
      if (!p.ok()) return p.status();
      *request.mutable_probe() = *std::move(p);
    }
    if (!f->timeout.empty()) *request.mutable_timeout() = *timeout;
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::CheckResult result;
    grpc::Status status =
        (*c)->networks().Check((*c)->Context(absl::InfiniteDuration()).get(), request, &result);
    if (!status.ok()) return cli.Failed(status);
    if (cli.format() != Format::kTable) {
      std::printf("%s", Render(result, cli.format()).c_str());
    } else {
      std::printf("%s", FormatCheck(result).c_str());
    }
    return result.reachable() ? kExitOk : kExitFailed;
  });
}

}  // namespace mesh::cli
