#pragma once

// The runtime's container spec. Field meanings follow the OCI runtime spec (config.json:
// process, root, hostname, mounts, linux.namespaces, linux.uidMappings/gidMappings,
// linux.resources, linux.seccomp, linux.maskedPaths/readonlyPaths), so an OCI bundle can be
// loaded into it later without a second model. mesh additions are marked "mesh:".

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mesh::runtime {

// OCI "mounts[]" entry.
struct Mount {
  std::string destination;           // absolute path inside the container
  std::string type;                  // "bind" or "tmpfs" (others are refused for now)
  std::string source;                // host path for "bind"; ignored for "tmpfs"
  std::vector<std::string> options;  // "ro", "rw", "nosuid", "nodev", "noexec", "rbind",
                                     // "size=64m", "mode=1777" (tmpfs)
};

// OCI "process.user".
struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
};

// OCI "process.rlimits[]": type is the name ("RLIMIT_NOFILE").
struct Rlimit {
  std::string type;
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// OCI "process.capabilities": names with the CAP_ prefix ("CAP_NET_RAW").
struct CapabilitySets {
  std::vector<std::string> bounding;
  std::vector<std::string> effective;
  std::vector<std::string> inheritable;
  std::vector<std::string> permitted;
  std::vector<std::string> ambient;
};

// OCI "process".
struct Process {
  bool terminal = false;  // a pty as stdin/stdout/stderr
  std::vector<std::string> args;
  std::vector<std::string> env;  // "KEY=VALUE"
  std::string cwd;               // inside the container; "" = the image's WorkingDir, else "/"
  User user;
  // Unset: WithDefaults fills in Docker's 14 (runtime/spec/defaults.h). Set: exactly these
  // sets, as OCI applies them; all five empty means no capability at all.
  std::optional<CapabilitySets> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = true;
  // OCI "oomScoreAdj".
  std::optional<int> oom_score_adj;
};

// OCI "linux.namespaces[]".
enum class NamespaceType { kPid, kMount, kNetwork, kUts, kIpc, kCgroup, kUser };
struct NamespaceSpec {
  NamespaceType type;
  std::string path;  // "" creates a new namespace; else joins this one (/proc/PID/ns/net, ...)
};

// OCI "linux.uidMappings[]" / "gidMappings[]".
struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

// OCI "linux.resources.devices[]": one rule of the device cgroup (v1 devices.allow/deny, a BPF
// device program on v2). mesh's rules: the first one is for every device (type 'a') and sets
// the default; the others are exceptions of the opposite kind (runtime/cgroups/devices.h).
struct DeviceRule {
  bool allow = false;
  char type = 'a';               // 'a' (every device), 'c' (character) or 'b' (block)
  std::optional<int64_t> major;  // unset: any ("*")
  std::optional<int64_t> minor;  // unset: any ("*")
  std::string access = "rwm";    // some of 'r' (read), 'w' (write), 'm' (mknod)
};

// OCI "linux.resources" (the parts mesh supports).
struct Resources {
  std::optional<int64_t> memory_limit;  // bytes; memory.max / memory.limit_in_bytes
  std::optional<int64_t> memory_swap;   // bytes of memory+swap; unset: same as memory_limit
  std::optional<int64_t> cpu_quota;     // microseconds per period; cpu.max / cfs_quota_us
  std::optional<uint64_t> cpu_period;   // microseconds; default 100000
  std::optional<uint64_t> cpu_shares;   // v1 cpu.shares (v2 cpu.weight is derived)
  std::optional<int64_t> pids_limit;    // pids.max
  // Device access; empty: left as it is. WithDefaults fills in mesh's allow-list.
  std::vector<DeviceRule> devices;
};

// OCI "linux.seccomp", reduced to what mesh offers: its default profile (Docker's shape) or
// none (only with privileged, or explicitly).
enum class SeccompProfile { kDefault, kUnconfined };

// mesh: the container's log file (the shim writes stdout/stderr there).
struct LogOptions {
  uint64_t max_size = 10 << 20;  // bytes per file before rotation
  int max_files = 3;             // rotated files kept, the live one included
};

struct ContainerSpec {
  std::string id;  // ValidateName(kContainer)
  std::string hostname;
  Process process;
  // OCI "root": mesh builds the rootfs from `image` (overlayfs over its layers with a
  // per-container upper dir); `readonly_root` is OCI "root.readonly".
  std::string image;  // mesh: an image reference of the image store ("busybox")
  // mesh: the user to run as, "uid[:gid]" or "name[:group]" looked up in the image's
  // /etc/passwd and /etc/group; unset: the image's User, else process.user as given.
  std::optional<std::string> user;
  bool readonly_root = false;
  std::vector<Mount> mounts;  // besides the standard ones (/proc, /dev, /sys, ...)
  std::vector<NamespaceSpec> namespaces;
  std::vector<IdMapping> uid_mappings;  // with a user namespace only
  std::vector<IdMapping> gid_mappings;
  Resources resources;
  std::vector<std::string> masked_paths;    // OCI "linux.maskedPaths"
  std::vector<std::string> readonly_paths;  // OCI "linux.readonlyPaths"
  // OCI "linux.sysctl": of the container's own namespaces only (runtime/spec/sysctl.h); set
  // before its root filesystem is made.
  std::map<std::string, std::string> sysctls;
  SeccompProfile seccomp = SeccompProfile::kDefault;
  // mesh: all capabilities, no seccomp, no masked or read-only paths, host devices. An
  // explicit opt-in, never a default.
  bool privileged = false;
  // mesh: a tiny init runs as PID 1, reaps zombies and forwards signals to the command.
  bool init = false;
  // mesh: contents of /etc/hostname is `hostname`; /etc/hosts and /etc/resolv.conf come from
  // the caller (the agent knows the networks and DNS). Empty: the image's files stay.
  std::string etc_hosts;
  std::string etc_resolv_conf;
  LogOptions log;
};

}  // namespace mesh::runtime
