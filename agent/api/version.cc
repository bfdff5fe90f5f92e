#include "agent/api/version.h"

#include <sys/utsname.h>

#include "base/version.h"

namespace mesh::agent {

mesh::v1::VersionResponse CurrentVersion() {
  mesh::v1::VersionResponse v;
  v.set_version(kVersion);
  v.set_git_commit(kGitCommit);
  v.set_api_version(kApiVersion);
  struct utsname u;
  if (uname(&u) == 0) v.set_kernel(u.release);
  return v;
}

}  // namespace mesh::agent
