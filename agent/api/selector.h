#pragma once

#include <string>

#include "google/protobuf/map.h"
#include "mesh/v1/common.pb.h"

namespace mesh::agent {

// True if `labels` satisfy every entry of `selector` (an empty selector matches everything).
bool MatchesSelector(const v1::LabelSelector& selector,
                     const google::protobuf::Map<std::string, std::string>& labels);

}  // namespace mesh::agent
