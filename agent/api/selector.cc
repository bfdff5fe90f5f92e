#include "agent/api/selector.h"

namespace mesh::agent {

bool MatchesSelector(const v1::LabelSelector& selector,
                     const google::protobuf::Map<std::string, std::string>& labels) {
  for (const auto& [key, value] : selector.equals()) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const std::string& key : selector.has()) {
    if (!labels.contains(key)) return false;
  }
  return true;
}

}  // namespace mesh::agent
