#pragma once

#include "mesh/v1/system.pb.h"

namespace mesh::agent {

// What SystemService.Version answers, and what `meshd --version` prints.
mesh::v1::VersionResponse CurrentVersion();

}  // namespace mesh::agent
