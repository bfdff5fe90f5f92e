#include "agent/controller/networks.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/api/convert.h"
#include "agent/api/selector.h"
#include "agent/controller/faults.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace mesh::agent {

absl::Status NetworkNotFound(const std::string& name) {
  return absl::NotFoundError(
      absl::StrCat("network \"", name, "\" not found; `meshctl net ls` lists the networks"));
}

namespace {

// Where meshd's DNS answers for a network: port 53 of its gateway.
absl::Status ListenOnGateway(dns::DnsServer& dns, const storev1::NetworkRecord& record) {
  const std::string& gateway = record.spec().gateway();
  absl::StatusOr<netplane::ipam::IpAddress> address = netplane::ipam::IpAddress::Parse(gateway);
  absl::Status status = address.status();
  if (status.ok()) status = dns.Listen(*address);
  if (status.ok() || absl::IsAlreadyExists(status)) return absl::OkStatus();
  return absl::Status(
      status.code(),
      absl::StrCat("network \"", record.spec().name(), "\": cannot answer DNS on ", gateway,
                   " port 53: ", status.message(),
                   "; stop what else serves DNS there, or run meshd with dns.enabled: false"));
}

void UnlistenOnGateway(dns::DnsServer& dns, const storev1::NetworkRecord& record) {
  if (auto address = netplane::ipam::IpAddress::Parse(record.spec().gateway()); address.ok()) {
    dns.Unlisten(*address);
  }
}

}  // namespace

void NetworkController::Restore(const std::map<std::string, storev1::NetworkRecord>& records) {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, record] : records) {
    if (record.phase() == storev1::PHASE_READY) networks_[name] = record;
  }
}

void NetworkController::ServeDns() {
  if (dns_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, record] : networks_) {
    if (record.phase() != storev1::PHASE_READY) continue;
    if (absl::Status s = ListenOnGateway(*dns_, record); !s.ok()) {
      const std::string problem =
          absl::StrCat(s.message(),
                       " (its members' names do not resolve until the port is free and meshd "
                       "restarts)");
      MESH_LOG(Error) << problem;
      dns_problems_[name] = problem;
    }
  }
}

std::vector<std::string> NetworkController::DnsProblems() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> problems;
  for (const auto& [name, problem] : dns_problems_) problems.push_back(problem);
  return problems;
}

std::vector<netplane::NetworkConfig> NetworkController::Desired() const {
  std::vector<netplane::NetworkConfig> desired;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, record] : networks_) {
    if (record.phase() != storev1::PHASE_READY) continue;
    absl::StatusOr<netplane::NetworkConfig> config = ToNetworkConfig(record.spec());
    if (!config.ok()) {
      MESH_LOG(Error) << "network \"" << name << "\": stored spec is invalid: " << config.status();
      continue;
    }
    desired.push_back(*std::move(config));
  }
  return desired;
}

absl::StatusOr<v1::Network> NetworkController::Create(const v1::NetworkSpec& spec,
                                                      const std::string& group) {
  MESH_RETURN_IF_ERROR(ValidateNetworkSpec(spec));
  MESH_ASSIGN_OR_RETURN(netplane::NetworkConfig config, ToNetworkConfig(spec));
  storev1::NetworkRecord record;
  record.set_phase(storev1::PHASE_CREATING);
  *record.mutable_spec() = spec;
  record.set_group(group);
  {
    absl::MutexLock lock(&mu_);
    if (networks_.contains(spec.name())) {
      return absl::AlreadyExistsError(
          absl::StrCat("network \"", spec.name(), "\" already exists; pick another name"));
    }
    networks_[spec.name()] = record;
  }
  // From here on the name is ours; every failure path gives it back.
  auto give_back = [&](absl::Status status) {
    absl::MutexLock lock(&mu_);
    networks_.erase(spec.name());
    return status;
  };
  if (absl::Status s = store_.Put(spec.name(), record); !s.ok()) return give_back(s);
  FaultPoint("network.create.recorded");
  absl::StatusOr<netplane::NetworkInfo> info = netplane_.CreateNetwork(config);
  if (!info.ok()) {
    store_.DeleteNetwork(spec.name()).IgnoreError();  // recovery drops it if this fails too
    return give_back(info.status());
  }
  FaultPoint("network.create.kernel");
  v1::NetworkSpec* filled = record.mutable_spec();
  filled->set_subnet(info->config.subnet->ToString());
  filled->set_gateway(info->config.gateway->ToString());
  filled->set_mtu(static_cast<uint32_t>(info->config.mtu));
  record.set_bridge(info->bridge);
  record.set_phase(storev1::PHASE_READY);
  absl::Status status = dns_ != nullptr ? ListenOnGateway(*dns_, record) : absl::OkStatus();
  if (status.ok()) {
    status = store_.Put(spec.name(), record);
    if (!status.ok() && dns_ != nullptr) UnlistenOnGateway(*dns_, record);
  }
  if (!status.ok()) {
    netplane_.DeleteNetwork(spec.name()).IgnoreError();
    store_.DeleteNetwork(spec.name()).IgnoreError();
    return give_back(status);
  }
  {
    absl::MutexLock lock(&mu_);
    networks_[spec.name()] = record;
  }
  v1::Event event;
  event.set_kind(v1::Event::KIND_NETWORK_CREATED);
  event.set_object(spec.name());
  (*event.mutable_attributes())["subnet"] = filled->subnet();
  events_.Publish(std::move(event), spec.labels().labels());
  MESH_LOG(Info) << "network \"" << spec.name() << "\" created: " << filled->subnet() << " on "
                 << info->bridge;
  return ToApi(record);
}

absl::Status NetworkController::Remove(const std::string& name) {
  storev1::NetworkRecord record;
  {
    absl::MutexLock lock(&mu_);
    auto it = networks_.find(name);
    if (it == networks_.end()) return NetworkNotFound(name);
    if (it->second.phase() != storev1::PHASE_READY) {
      return absl::FailedPreconditionError(
          absl::StrCat("network \"", name, "\" is being created or removed; try again"));
    }
    std::vector<std::string> users;
    for (const netplane::AttachResult& a : netplane_.ListAttachments()) {
      if (a.network == name) users.push_back(a.container_id);
    }
    if (!users.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("network \"", name, "\" is in use by ", absl::StrJoin(users, ", "),
                       "; remove or disconnect those containers first"));
    }
    it->second.set_phase(storev1::PHASE_REMOVING);
    record = it->second;
  }
  auto restore = [&](absl::Status status) {
    absl::MutexLock lock(&mu_);
    networks_[name].set_phase(storev1::PHASE_READY);
    store_.Put(name, networks_[name]).IgnoreError();
    return status;
  };
  if (absl::Status s = store_.Put(name, record); !s.ok()) return restore(s);
  FaultPoint("network.remove.recorded");
  if (absl::Status s = netplane_.DeleteNetwork(name); !s.ok() && !absl::IsNotFound(s)) {
    return restore(s);
  }
  FaultPoint("network.remove.kernel");
  if (dns_ != nullptr) UnlistenOnGateway(*dns_, record);
  MESH_RETURN_IF_ERROR(store_.DeleteNetwork(name));
  {
    absl::MutexLock lock(&mu_);
    networks_.erase(name);
    dns_problems_.erase(name);
  }
  v1::Event event;
  event.set_kind(v1::Event::KIND_NETWORK_REMOVED);
  event.set_object(name);
  events_.Publish(std::move(event), record.spec().labels().labels());
  MESH_LOG(Info) << "network \"" << name << "\" removed";
  return absl::OkStatus();
}

v1::Network NetworkController::ToApi(const storev1::NetworkRecord& record) const {
  return ToApi(record, netplane_.ListAttachments());
}

v1::Network NetworkController::ToApi(const storev1::NetworkRecord& record,
                                     const std::vector<netplane::AttachResult>& attachments) const {
  v1::Network network;
  *network.mutable_spec() = record.spec();
  network.set_bridge(record.bridge());
  network.set_group(record.group());
  std::vector<std::string> containers;
  for (const netplane::AttachResult& a : attachments) {
    if (a.network == record.spec().name()) containers.push_back(a.container_id);
  }
  std::sort(containers.begin(), containers.end());
  for (std::string& c : containers) network.add_containers(std::move(c));
  return network;
}

absl::StatusOr<storev1::NetworkRecord> NetworkController::Record(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = networks_.find(name);
  if (it == networks_.end() || it->second.phase() != storev1::PHASE_READY) {
    return NetworkNotFound(name);
  }
  return it->second;
}

absl::StatusOr<v1::Network> NetworkController::Get(const std::string& name) const {
  MESH_ASSIGN_OR_RETURN(storev1::NetworkRecord record, Record(name));
  return ToApi(record);
}

std::vector<v1::Network> NetworkController::List(const v1::LabelSelector& selector) const {
  std::vector<storev1::NetworkRecord> records;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, record] : networks_) {
      if (record.phase() == storev1::PHASE_READY &&
          MatchesSelector(selector, record.spec().labels().labels())) {
        records.push_back(record);
      }
    }
  }
  // netplane's attachments once for all networks, not once per network.
  const std::vector<netplane::AttachResult> attachments = netplane_.ListAttachments();
  std::vector<v1::Network> out;
  for (const auto& record : records) out.push_back(ToApi(record, attachments));
  return out;
}

size_t NetworkController::size() const {
  absl::MutexLock lock(&mu_);
  return networks_.size();
}

}  // namespace mesh::agent
