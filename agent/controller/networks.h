#pragma once

// Networks through the API: records in the store, kernel objects through netplane.

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/dns/server.h"
#include "agent/events/event_bus.h"
#include "agent/store/store.h"
#include "mesh/v1/networks.pb.h"
#include "netplane/network/network_manager.h"

namespace mesh::agent {

class NetworkController {
 public:
  // `dns`: meshd's DNS server, which answers on each network's gateway (null: DNS is off).
  NetworkController(Store& store, netplane::NetworkManager& netplane, EventBus& events,
                    dns::DnsServer* dns = nullptr)
      : store_(store), netplane_(netplane), events_(events), dns_(dns) {}

  // Recovery: the records of networks that are READY (others were rolled back).
  void Restore(const std::map<std::string, storev1::NetworkRecord>& records);
  // Recovery, once the containers' names are in the zone (a client the zone does not know yet
  // would be answered as a stranger): the DNS server listens on every network's gateway, also
  // before its bridge is back (netplane's reconcile brings it).
  void ServeDns();
  // What ServeDns could not do: one message per network whose gateway meshd cannot answer on.
  std::vector<std::string> DnsProblems() const;
  // netplane's view of every network the store has (for NetworkManager::Reconcile).
  std::vector<netplane::NetworkConfig> Desired() const;

  // `group`: the group that owns it ("" for none).
  absl::StatusOr<v1::Network> Create(const v1::NetworkSpec& spec, const std::string& group = "");
  absl::Status Remove(const std::string& name);
  absl::StatusOr<v1::Network> Get(const std::string& name) const;
  std::vector<v1::Network> List(const v1::LabelSelector& selector) const;
  // The record's spec (defaults filled in); NotFound naming the network.
  absl::StatusOr<storev1::NetworkRecord> Record(const std::string& name) const;
  size_t size() const;

 private:
  v1::Network ToApi(const storev1::NetworkRecord& record) const;
  v1::Network ToApi(const storev1::NetworkRecord& record,
                    const std::vector<netplane::AttachResult>& attachments) const;

  Store& store_;
  netplane::NetworkManager& netplane_;
  EventBus& events_;
  dns::DnsServer* const dns_;
  mutable absl::Mutex mu_;
  // READY networks, and those being created or removed (their phase says which).
  std::map<std::string, storev1::NetworkRecord> networks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> dns_problems_ ABSL_GUARDED_BY(mu_);  // network -> why
};

// NotFound for an unknown network, with what to do.
absl::Status NetworkNotFound(const std::string& name);

}  // namespace mesh::agent
