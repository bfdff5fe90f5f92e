#pragma once

// How group members are shown (group status, up's progress).

#include <string>
#include <vector>

#include "mesh/v1/groups.pb.h"

namespace mesh::cli {

std::string MemberKindName(v1::MemberStatus::Kind kind);
std::string MemberActionName(v1::MemberAction action);
// kind, name, action, state (health), message.
std::vector<std::string> MemberRow(const v1::MemberStatus& m);

}  // namespace mesh::cli
