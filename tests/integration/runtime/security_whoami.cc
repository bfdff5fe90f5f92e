// Test-only helper of security_test.cc: prints the real and effective uid, so that a setuid-root
// copy of it shows whether the setuid bit took effect. (busybox cannot serve: as a setuid binary
// it drops the privilege itself for applets such as id.)
#include <unistd.h>

#include <cstdio>

int main() {
  uid_t ruid = 0, euid = 0, suid = 0;
  if (getresuid(&ruid, &euid, &suid) != 0) return 2;
  std::printf("ruid=%u euid=%u\n", ruid, euid);
  return 0;
}
