#pragma once

// The pure half of the API layer: validation of mesh.v1 specs, and their conversion into the
// runtime's and netplane's own types. No kernel, no files, no root, no state: every function
// here depends on its arguments only and is safe to call from any thread (a gRPC handler
// validates with these before it records intent, STYLE.md rule 15).
//
// Errors are INVALID_ARGUMENT with a message that starts with the field path, says what is
// wrong and how to fix it: `spec.ports[0].host_port: 70000 is not a port (1-65535)`. The first
// problem found is reported. The rules follow what runtime and netplane check themselves (so
// a spec that passes here is not refused there for the same field), and add what only the API
// can check: field paths, references between group members, sizes.

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "mesh/v1/common.pb.h"
#include "mesh/v1/containers.pb.h"
#include "mesh/v1/groups.pb.h"
#include "mesh/v1/images.pb.h"
#include "mesh/v1/networks.pb.h"
#include "netplane/network/link_manager.h"
#include "netplane/network/network_manager.h"
#include "netplane/nft/ruleset.h"
#include "runtime/image/manifest.h"
#include "runtime/spec/spec.h"

namespace mesh::agent {

// A container spec on its own: names (base/names.h), image, command, environment, paths,
// mounts, ports, networks, resources, restart policy, health check, capabilities, labels, user
// namespace, log options. `field` is the path of `spec` in the request ("spec",
// "spec.containers[2].spec"); messages start with it. References to other objects (networks,
// network_from) are checked for form only: whether they exist is the controller's business.
absl::Status ValidateContainerSpec(const v1::ContainerSpec& spec, absl::string_view field = "spec");

// A network spec: name; subnet (empty: chosen by netplane) an IPv4 CIDR with no host bits and
// a prefix length of 8 to 30; gateway (needs a subnet) inside it and neither its network nor
// its broadcast address; mtu 0 (1500) or 68 to 65535; labels.
absl::Status ValidateNetworkSpec(const v1::NetworkSpec& spec, absl::string_view field = "spec");

// Labels: keys of 1 to 63 characters of [a-z0-9._/-], values of at most 255 bytes of UTF-8.
// `field` is the path of the Labels message; entries are named `<field>.labels["key"]`.
absl::Status ValidateLabels(const v1::Labels& labels, absl::string_view field);

// A group as a whole: its name; each network and container as above (field paths
// "spec.networks[1]", "spec.containers[2].spec"); member names unique per kind; every member's
// full name "<group>-<name>" (MemberName) still a valid name of at most 63 characters;
// networks, network_from and depends_on naming members of the group (short names), never the
// member itself; no dependency cycle (named: "a -> b -> a"; network_from counts as a
// dependency, since the container that owns the network namespace has to run first);
// CONDITION_HEALTHY only on a member that has a health check.
absl::Status ValidateGroupSpec(const v1::GroupSpec& spec);

// The first message of an Exec: args (a program, then at most 4096 arguments, as in a
// container spec), env ("KEY=VALUE"), working_dir (absolute, no ".."), user ("uid[:gid]" or
// "name[:group]"). The container is looked up by the controller (NOT_FOUND, not checked here).
// `field` is the path of `start` ("start").
absl::Status ValidateExecStart(const v1::ExecStart& start, absl::string_view field = "start");

// A Connect request: ip empty or an IPv4 address, aliases DNS names. The container and the
// network are looked up by the controller.
absl::Status ValidateConnectRequest(const v1::ConnectRequest& request);

// The source of an image import: host_path, when given, an absolute path of at most 4095 bytes
// of UTF-8 without NUL or ".." components (so the file imported is the one the path names, not
// a prefix of it or a path that climbs out of the directory it names). `field`: "source".
absl::Status ValidateImportSource(const v1::ImportSource& source,
                                  absl::string_view field = "source");

// The name a group member runs under: "<group>-<name>" ("shop" and "web": "shop-web").
std::string MemberName(absl::string_view group, absl::string_view name);

// The group's containers in the order to start them (reverse: to stop them): every container
// after the containers it depends on (depends_on and network_from), otherwise in spec order
// (the smallest index first whenever several could go next). Indexes into spec.containers().
// Never fails: references to unknown members and to the member itself are ignored, and the
// members of a cycle (which ValidateGroupSpec refuses), with those waiting for them, come last
// in spec order.
std::vector<int> DependencyOrder(const v1::GroupSpec& spec);

// The runtime spec for a valid container spec (ValidateContainerSpec is called first: its
// errors come back unchanged). `image` is the config of the spec's image and supplies what
// the spec leaves out, as Docker does:
//   - command: (spec.entrypoint, else image entrypoint) followed by (spec.args, else the
//     image's cmd, but the image's cmd only when spec.entrypoint is empty); INVALID_ARGUMENT
//     if that leaves no command at all;
//   - env: the image's entries with the spec's on top (the spec wins per key, a later entry
//     over an earlier one; each key once, where it first appeared);
//   - cwd: spec.working_dir, else the image's (empty: WithDefaults makes it "/");
//   - user: spec.user into runtime spec.user when set (the runtime resolves it, or the image's
//     user, against the image's /etc/passwd).
// Also: id = name, hostname (default: the name), terminal, readonly_root, mounts ("bind" with
// "rbind", or "tmpfs" with "size=N"; "ro" when read-only), resources (cpus as a CFS quota per
// 100 ms period), capabilities (runtime/security ContainerCapabilities over
// DefaultCapabilities() with cap_add and cap_drop: bounding = permitted = effective, for any
// user, as Docker does; always set, so cap_drop ALL with nothing added is an empty set, no
// capability at all), privileged, init, a user namespace with uid and gid maps
// 0 -> userns_host_base (65536 ids) when that is set, log options. Namespaces: only the user
// namespace; the network namespace is the caller's to add (a new one, or a path), the rest
// WithDefaults fills. etc_hosts and etc_resolv_conf are left empty for the caller.
absl::StatusOr<runtime::ContainerSpec> ToRuntimeSpec(const v1::ContainerSpec& spec,
                                                     const runtime::image::ImageConfig& image);

// netplane's config for a valid network spec (ValidateNetworkSpec first): mtu 0 -> 1500,
// nat = !disable_nat && !internal; an empty subnet or gateway stays unset (netplane chooses).
absl::StatusOr<netplane::NetworkConfig> ToNetworkConfig(const v1::NetworkSpec& spec);

// Published ports, validated: protocol known (UNSPECIFIED is TCP), both ports 1 to 65535,
// host_ip empty (every host address) or IPv4, and no two mappings on the same protocol and
// host port where either listens on every address or both on the same one (netplane's rule).
// `field` is the path of the list ("spec.ports"); messages name "<field>[i].<member>".
absl::StatusOr<std::vector<netplane::PortMapping>> ToPortMappings(
    const google::protobuf::RepeatedPtrField<v1::PortMapping>& ports, absl::string_view field);

// The egress limit of a valid attachment (ValidateContainerSpec first); nullopt without a
// rate. A burst left at 0 is a fiftieth of a second at the rate, at least 32 KiB (a TBF
// bucket smaller than a few packets drops what it should only delay).
std::optional<netplane::EgressLimit> ToEgressLimit(const v1::NetworkAttachment& attachment);
std::optional<netplane::EgressLimit> ToEgressLimit(uint64_t rate_bps, uint64_t burst_bytes);

// A link's name among its group's members: "r1:eth1--r2:eth1".
std::string LinkName(const v1::Link& link);
// The link (index into spec.links) and end whose subnet holds `via`, for member `member`
// (short name): a route of the member through that next hop goes with that link. The first
// link in spec order wins. nullopt: the route is the member's own (through a network).
std::optional<std::pair<int, int>> LinkEndOfRoute(const v1::GroupSpec& spec,
                                                  absl::string_view member,
                                                  const netplane::ipam::IpAddress& via);
bool RoutesThroughLink(const v1::GroupSpec& spec, absl::string_view member, const v1::Route& route);
// A member's addresses by network: short member name -> (short network name, IPv4 address).
using MemberAddresses = std::map<std::string, std::vector<std::pair<std::string, std::string>>>;
// "policy shop rule 2: allow web -> app tcp/8080" (the rule's description if it has one): the
// comment of the rule's nftables rules, which `meshctl check` shows.
std::string PolicyRuleText(const v1::GroupSpec& spec, int index);

// A policy rule's port: "tcp/80", "udp/53", "tcp", "udp", "icmp" -> IPPROTO_* and the port,
// if any. InvalidArgument starting with `at`.
absl::StatusOr<std::pair<uint8_t, std::optional<uint16_t>>> ParsePolicyPort(absl::string_view text,
                                                                            absl::string_view at);
// Other groups' members' IPv4 addresses: group name -> addresses.
using GroupAddresses = std::map<std::string, std::vector<std::string>, std::less<>>;
// The other groups a policy names ("group:NAME" in a rule's from or to, NAME not the group
// itself): whose members' addresses ToPolicy needs, and whose changes change the policy.
std::set<std::string> PolicyGroups(const v1::GroupSpec& spec);
// The group's policy for netplane, for a valid spec: each rule's senders and receivers as the
// addresses members have now ("*" and "group:<itself>": every member; "network:N": members'
// addresses on N; "group:OTHER": `groups`' addresses of OTHER, none if it has none), "tcp/80"
// as protocol . port, "tcp" and "icmp" as protocols; with DEFAULT_DENY, every member address.
absl::StatusOr<netplane::nft::PolicyEntry> ToPolicy(const v1::GroupSpec& spec,
                                                    const MemberAddresses& addresses,
                                                    const GroupAddresses& groups = {});
// `member` (of `spec`) without the routes that go through its links (RoutesThroughLink):
// what the container itself is made with.
v1::ContainerSpec WithoutLinkRoutes(const v1::GroupSpec& spec, const v1::ContainerSpec& member);
// netplane's link for link `index` of a valid group spec: id "<group>/<LinkName>", member names
// made full, each end's network namespace from `netns_of` (full container name -> pinned
// netns path), MTU (the end's, else the link's, else 1500), egress limit (as ToEgressLimit),
// and the routes of the members that go through it (LinkEndOfRoute).
absl::StatusOr<netplane::LinkConfig> ToLinkConfig(
    const v1::GroupSpec& spec, int index,
    const std::function<std::string(const std::string&)>& netns_of);

// Static routes, validated: destination an IPv4 subnet without host bits, or "default"
// (0.0.0.0/0); via an IPv4 address; each destination once. `field` is the path of the list
// ("spec.routes"); messages name "<field>[i].<member>". Which network each next hop is on is
// the controller's to find (it knows the subnets).
absl::StatusOr<std::vector<netplane::StaticRoute>> ToStaticRoutes(
    const google::protobuf::RepeatedPtrField<v1::Route>& routes, absl::string_view field);

// A signal as KillContainerRequest.signal and an image's StopSignal give it: a name with or
// without "SIG", any case ("SIGTERM", "TERM", "term"), "RTMIN+n" / "RTMAX-n" (Docker's
// numbering: RTMIN is 34), or a number from 1 to 64 ("15"). Empty: SIGKILL. INVALID_ARGUMENT
// quoting the text otherwise (callers put the field path in front).
absl::StatusOr<int> ParseSignal(absl::string_view name);

// The canonical name: 9 -> "SIGKILL", 36 -> "SIGRTMIN+2"; a number with no name as decimal
// text ("32"). ParseSignal(SignalName(n)) == n for 1 to 64.
std::string SignalName(int signal);

// google.protobuf.Duration / Timestamp and absl. A Duration is valid when its seconds are
// within +-315576000000 (10000 years) and its nanos within +-999999999 with the sign of the
// seconds (duration.proto); INVALID_ARGUMENT naming `field` otherwise.
absl::Status ValidateDuration(const google::protobuf::Duration& duration, absl::string_view field);
// Exact for valid durations.
absl::Duration FromProtoDuration(const google::protobuf::Duration& duration);
// Clamped to the range a Duration holds (InfiniteDuration() gives the largest).
google::protobuf::Duration ToProtoDuration(absl::Duration duration);
absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp);
// Clamped to the range a Timestamp holds, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z
// (InfinitePast() and InfiniteFuture() give its ends).
google::protobuf::Timestamp ToProtoTimestamp(absl::Time time);

}  // namespace mesh::agent
