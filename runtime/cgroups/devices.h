#pragma once

// Device access control for a cgroup: the rules (OCI "linux.resources.devices", DeviceRule in
// runtime/spec/spec.h), what they mean, and how each driver enforces them: cgroup v1 writes
// them to devices.deny / devices.allow, cgroup v2 has no such files and attaches a
// BPF_PROG_TYPE_CGROUP_DEVICE program generated from them (what runc and crun do).
//
// mesh's rule lists have one shape, which both mechanisms enforce the same way:
//   rules[0]   type 'a', access "rwm": the default. allow=false denies every device except the
//              allow rules that follow (the container default); allow=true allows every
//              device except the deny rules that follow (privileged: no rule follows).
//   rules[1..] type 'c' or 'b', the opposite of the default's `allow`: the exceptions.
//              An allow exception grants an access only if it covers every bit asked for at
//              once (open O_RDWR needs "rw" in one rule); a deny exception refuses an access
//              if it shares any bit with it. This is the v1 kernel's own matching
//              (security/device_cgroup.c: match_exception, match_exception_partial).

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime {

// The kernel's dev_t has 12 bits of major and 20 of minor number (include/linux/kdev_t.h).
inline constexpr int64_t kMaxDeviceMajor = (int64_t{1} << 12) - 1;
inline constexpr int64_t kMaxDeviceMinor = (int64_t{1} << 20) - 1;

// Checks `rules` against the shape above and each rule's fields (type, access letters,
// major/minor ranges). OK for an empty list (nothing to apply). One InvalidArgument naming
// every bad rule by index ("devices[2]: ...") and what to write instead.
absl::Status ValidateDeviceRules(const std::vector<DeviceRule>& rules);

// A rule in cgroup v1's devices.allow/devices.deny syntax: "a", "c 1:3 rwm", "c 136:* rwm".
std::string DeviceRuleLine(const DeviceRule& rule);

// The decision the rules make for an access to one device: `type` 'c' or 'b', `access` some
// of "rwm". Only for valid rules (ValidateDeviceRules). The reference both drivers are
// tested against.
bool DeviceAccessAllowed(const std::vector<DeviceRule>& rules, char type, uint32_t major,
                         uint32_t minor, absl::string_view access);

// The cgroup v2 device program for valid `rules`: a BPF_PROG_TYPE_CGROUP_DEVICE program that
// returns 1 (allow) or 0 (deny) for a struct bpf_cgroup_dev_ctx, deciding as
// DeviceAccessAllowed does. Pure: no kernel involved.
std::vector<bpf_insn> DeviceProgram(const std::vector<DeviceRule>& rules);

// Loads `program` (bpf(2) BPF_PROG_LOAD, the verifier's log in the error if it refuses) and
// makes it the only device program attached to the cgroup2 directory `cgroup_fd`: attaches it
// with BPF_F_ALLOW_MULTI, then detaches the programs attached there before (so there is no
// moment without one, and Apply can be repeated). Needs CAP_BPF or CAP_SYS_ADMIN.
absl::Status ReplaceDeviceProgram(int cgroup_fd, const std::vector<bpf_insn>& program,
                                  absl::string_view what);

}  // namespace mesh::runtime
