#include "runtime/cgroups/testing/fake_cgroup_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime {
namespace {

constexpr char kV1UnlimitedText[] = "9223372036854771712";  // 0x7ffffffffffff000
constexpr int64_t kPageSize = 4096;
constexpr int64_t kMaxCpuQuota = (int64_t{1} << 44) - 1;

// Files the kernel gives no write handler; opening them for writing fails with EACCES.
const std::set<std::string>& ReadOnlyFiles() {
  static const auto* files = new std::set<std::string>{"cgroup.controllers",
                                                       "cgroup.events",
                                                       "cgroup.stat",
                                                       "cpu.stat",
                                                       "cpuacct.stat",
                                                       "devices.list",
                                                       "memory.current",
                                                       "memory.events",
                                                       "memory.max_usage_in_bytes",
                                                       "memory.memsw.usage_in_bytes",
                                                       "memory.peak",
                                                       "memory.stat",
                                                       "memory.swap.current",
                                                       "memory.usage_in_bytes",
                                                       "memory.oom_control",
                                                       "pids.current",
                                                       "pids.events"};
  return *files;
}

std::string Basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }
std::string Dirname(const std::string& path) { return path.substr(0, path.rfind('/')); }

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::Status RawWrite(const std::string& path, absl::string_view contents) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return mesh::ErrnoToStatus(errno, absl::StrCat("fake cgroupfs: write ", path));
  if (::write(fd.get(), contents.data(), contents.size()) !=
      static_cast<ssize_t>(contents.size())) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("fake cgroupfs: write ", path));
  }
  return absl::OkStatus();
}

std::string RawRead(const std::string& path) {
  absl::StatusOr<std::string> text = mesh::ReadFile(path);
  return text.ok() ? *text : std::string();
}

std::set<std::string> Tokens(absl::string_view text) {
  return absl::StrSplit(absl::StripAsciiWhitespace(text), absl::ByAnyChar(" \n"),
                        absl::SkipEmpty());
}

// Entries of `dir` that are directories (want_dirs) or files.
std::vector<std::string> Entries(const std::string& dir, bool want_dirs) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if ((e->d_type == DT_DIR) == want_dirs) out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// A v1 devices exception line: "c 1:3 rwm", "b *:* m". False if malformed (the kernel's
// EINVAL). `access` comes back in "rwm" order.
struct DeviceLine {
  char type = 'a';
  std::string major, minor;  // digits or "*"
  std::string access;
  std::string Key() const { return absl::StrCat(std::string(1, type), " ", major, ":", minor); }
  std::string Text() const { return absl::StrCat(Key(), " ", access); }
};
bool ParseDeviceLine(absl::string_view v, DeviceLine& out) {
  std::vector<std::string> fields = absl::StrSplit(v, ' ', absl::SkipEmpty());
  if (fields.size() != 3 || fields[0].size() != 1) return false;
  out.type = fields[0][0];
  if (out.type != 'c' && out.type != 'b') return false;
  std::vector<std::string> numbers = absl::StrSplit(fields[1], ':');
  if (numbers.size() != 2) return false;
  for (const std::string& n : numbers) {
    uint32_t value = 0;
    if (n != "*" && !absl::SimpleAtoi(n, &value)) return false;
  }
  out.major = numbers[0];
  out.minor = numbers[1];
  if (fields[2].empty() || fields[2].size() > 3) return false;
  for (char c : fields[2]) {
    if (c != 'r' && c != 'w' && c != 'm') return false;
  }
  out.access.clear();
  for (char c : std::string("rwm")) {
    if (fields[2].find(c) != std::string::npos) out.access.push_back(c);
  }
  return true;
}

// Parses a v1 memory limit: -1 (unlimited) or bytes, rounded down to pages.
bool ParseV1Memory(absl::string_view v, std::string& stored, uint64_t& bytes) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < -1) return false;
  if (n == -1) {
    stored = kV1UnlimitedText;
  } else {
    stored = absl::StrCat(n / kPageSize * kPageSize);
  }
  return absl::SimpleAtoi(stored, &bytes);
}

}  // namespace

absl::StatusOr<std::shared_ptr<FakeCgroupFs>> FakeCgroupFs::Create() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/mesh-fake-cgroupfs-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("fake cgroupfs: mkdtemp ", tmpl));
  }
  return std::shared_ptr<FakeCgroupFs>(new FakeCgroupFs(tmpl));
}

FakeCgroupFs::~FakeCgroupFs() {
  // Depth first, without following symlinks; errors are ignored (nothing to report to).
  ::nftw(
      root_.c_str(),
      [](const char* path, const struct stat*, int type, struct FTW*) {
        if (type == FTW_DP) {
          ::rmdir(path);
        } else {
          ::unlink(path);
        }
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS);
}

absl::StatusOr<std::string> FakeCgroupFs::AddV1Hierarchy(
    const std::string& mount_name, const std::vector<std::string>& controllers,
    FakeV1Options options) {
  Hierarchy h;
  h.mount = absl::StrCat(root_, "/", mount_name);
  h.controllers.insert(controllers.begin(), controllers.end());
  h.v1_options = options;
  if (::mkdir(h.mount.c_str(), 0755) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("fake cgroupfs: mkdir ", h.mount));
  }
  MESH_RETURN_IF_ERROR(Populate(h, h.mount, {}));
  hierarchies_.push_back(h);
  return h.mount;
}

absl::Status FakeCgroupFs::AddStandardV1Hierarchies(FakeV1Options options) {
  for (const char* c : {"cpu", "cpuacct", "cpuset", "memory", "freezer", "pids", "devices"}) {
    MESH_RETURN_IF_ERROR(AddV1Hierarchy(c, {c}, options).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeCgroupFs::AddV2Hierarchy(const std::string& mount_name,
                                                         FakeV2Options options) {
  Hierarchy h;
  h.mount = absl::StrCat(root_, "/", mount_name);
  h.v2 = true;
  h.controllers.insert(options.controllers.begin(), options.controllers.end());
  h.v2_options = options;
  if (::mkdir(h.mount.c_str(), 0755) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("fake cgroupfs: mkdir ", h.mount));
  }
  // The root cgroup has only the core files and no controller interface files.
  MESH_RETURN_IF_ERROR(
      RawWrite(h.mount + "/cgroup.controllers", absl::StrJoin(options.controllers, " ") + "\n"));
  MESH_RETURN_IF_ERROR(RawWrite(h.mount + "/cgroup.subtree_control", "\n"));
  MESH_RETURN_IF_ERROR(RawWrite(h.mount + "/cgroup.procs", ""));
  MESH_RETURN_IF_ERROR(
      RawWrite(h.mount + "/cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"));
  hierarchies_.push_back(h);
  return h.mount;
}

CgroupLayout FakeCgroupFs::Layout() const {
  CgroupLayout layout;
  for (const Hierarchy& h : hierarchies_) {
    if (h.v2) {
      if (!layout.v2) layout.v2 = h.mount;
    } else {
      for (const std::string& c : h.controllers) layout.v1.emplace(c, h.mount);
    }
  }
  return layout;
}

absl::Status FakeCgroupFs::SetFileForTest(const std::string& path, absl::string_view contents) {
  if (!Exists(path) || IsDir(path)) {
    return absl::NotFoundError(absl::StrCat("fake cgroupfs: no file ", path));
  }
  return RawWrite(path, contents);
}

absl::Status FakeCgroupFs::RemoveFileForTest(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("fake cgroupfs: unlink ", path));
  }
  return absl::OkStatus();
}

void FakeCgroupFs::ExitForTest(pid_t pid) {
  EndProcess(pid);
  Refresh();
}

void FakeCgroupFs::FailNextForTest(Op op, const std::string& path, absl::Status error) {
  injected_[{op, path}].push_back(std::move(error));
}

absl::Status FakeCgroupFs::TakeInjectedError(Op op, const std::string& path) {
  auto it = injected_.find({op, path});
  if (it == injected_.end()) return absl::OkStatus();
  absl::Status error = std::move(it->second.front());
  it->second.erase(it->second.begin());
  if (it->second.empty()) injected_.erase(it);
  return error;
}

FakeCgroupFs::Hierarchy* FakeCgroupFs::HierarchyOf(const std::string& path) {
  for (Hierarchy& h : hierarchies_) {
    if (path == h.mount || path.starts_with(h.mount + "/")) return &h;
  }
  return nullptr;
}

absl::Status FakeCgroupFs::Populate(const Hierarchy& h, const std::string& dir,
                                    const std::set<std::string>& controllers) {
  auto put = [&dir](absl::string_view file, absl::string_view contents) {
    return RawWrite(absl::StrCat(dir, "/", file), contents);
  };
  const bool is_root = dir == h.mount;
  if (h.v2) {
    MESH_RETURN_IF_ERROR(put("cgroup.procs", ""));
    MESH_RETURN_IF_ERROR(put("cgroup.controllers", absl::StrJoin(controllers, " ") + "\n"));
    MESH_RETURN_IF_ERROR(put("cgroup.subtree_control", "\n"));
    MESH_RETURN_IF_ERROR(put("cgroup.events", "populated 0\nfrozen 0\n"));
    MESH_RETURN_IF_ERROR(put("cgroup.type", "domain\n"));
    MESH_RETURN_IF_ERROR(put("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"));
    if (h.v2_options.freeze_file) MESH_RETURN_IF_ERROR(put("cgroup.freeze", "0\n"));
    if (h.v2_options.kill_file) MESH_RETURN_IF_ERROR(put("cgroup.kill", ""));
    for (const std::string& c : controllers) MESH_RETURN_IF_ERROR(PopulateV2Controller(h, dir, c));
    return absl::OkStatus();
  }
  MESH_RETURN_IF_ERROR(put("cgroup.procs", ""));
  MESH_RETURN_IF_ERROR(put("tasks", ""));
  MESH_RETURN_IF_ERROR(put("notify_on_release", "0\n"));
  MESH_RETURN_IF_ERROR(put("cgroup.clone_children", "0\n"));
  for (const std::string& c : h.controllers) {
    if (c == "memory") {
      MESH_RETURN_IF_ERROR(put("memory.limit_in_bytes", absl::StrCat(kV1UnlimitedText, "\n")));
      MESH_RETURN_IF_ERROR(put("memory.usage_in_bytes", "0\n"));
      MESH_RETURN_IF_ERROR(put("memory.max_usage_in_bytes", "0\n"));
      MESH_RETURN_IF_ERROR(put("memory.stat", "cache 0\nrss 0\n"));
      MESH_RETURN_IF_ERROR(
          put("memory.oom_control", h.v1_options.oom_kill_counter
                                        ? "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
                                        : "oom_kill_disable 0\nunder_oom 0\n"));
      if (h.v1_options.swap_accounting) {
        MESH_RETURN_IF_ERROR(
            put("memory.memsw.limit_in_bytes", absl::StrCat(kV1UnlimitedText, "\n")));
        MESH_RETURN_IF_ERROR(put("memory.memsw.usage_in_bytes", "0\n"));
      }
    } else if (c == "cpu") {
      MESH_RETURN_IF_ERROR(put("cpu.cfs_quota_us", "-1\n"));
      MESH_RETURN_IF_ERROR(put("cpu.cfs_period_us", "100000\n"));
      MESH_RETURN_IF_ERROR(put("cpu.shares", "1024\n"));
      MESH_RETURN_IF_ERROR(put("cpu.stat", "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"));
    } else if (c == "cpuacct") {
      MESH_RETURN_IF_ERROR(put("cpuacct.usage", "0\n"));
      MESH_RETURN_IF_ERROR(put("cpuacct.stat", "user 0\nsystem 0\n"));
    } else if (c == "pids" && !is_root) {  // The kernel gives the root no pids files.
      MESH_RETURN_IF_ERROR(put("pids.max", "max\n"));
      MESH_RETURN_IF_ERROR(put("pids.current", "0\n"));
      MESH_RETURN_IF_ERROR(put("pids.events", "max 0\n"));
    } else if (c == "freezer" && !is_root) {  // Nor a freezer.state.
      MESH_RETURN_IF_ERROR(put("freezer.state", "THAWED\n"));
    } else if (c == "devices") {
      // A new cgroup starts with its parent's rules; the root allows everything.
      DeviceState state;
      if (!is_root) {
        auto parent = devices_.find(Dirname(dir));
        if (parent != devices_.end()) state = parent->second;
      }
      devices_[dir] = state;
      MESH_RETURN_IF_ERROR(put("devices.allow", ""));
      MESH_RETURN_IF_ERROR(put("devices.deny", ""));
      MESH_RETURN_IF_ERROR(put("devices.list", DevicesList(dir)));
    } else if (c == "cpuset") {
      MESH_RETURN_IF_ERROR(put("cpuset.cpus", is_root ? "0-1\n" : "\n"));
      MESH_RETURN_IF_ERROR(put("cpuset.mems", is_root ? "0\n" : "\n"));
    }
  }
  return absl::OkStatus();
}

absl::Status FakeCgroupFs::PopulateV2Controller(const Hierarchy& h, const std::string& dir,
                                                const std::string& controller) {
  auto put = [&dir](absl::string_view file, absl::string_view contents) {
    return RawWrite(absl::StrCat(dir, "/", file), contents);
  };
  if (controller == "memory") {
    MESH_RETURN_IF_ERROR(put("memory.max", "max\n"));
    MESH_RETURN_IF_ERROR(put("memory.high", "max\n"));
    MESH_RETURN_IF_ERROR(put("memory.low", "0\n"));
    MESH_RETURN_IF_ERROR(put("memory.min", "0\n"));
    MESH_RETURN_IF_ERROR(put("memory.current", "0\n"));
    MESH_RETURN_IF_ERROR(put("memory.stat", "anon 0\nfile 0\n"));
    MESH_RETURN_IF_ERROR(
        put("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"));
    if (h.v2_options.swap_file) {
      MESH_RETURN_IF_ERROR(put("memory.swap.max", "max\n"));
      MESH_RETURN_IF_ERROR(put("memory.swap.current", "0\n"));
    }
    if (h.v2_options.peak_file) MESH_RETURN_IF_ERROR(put("memory.peak", "0\n"));
  } else if (controller == "cpu") {
    MESH_RETURN_IF_ERROR(put("cpu.max", "max 100000\n"));
    MESH_RETURN_IF_ERROR(put("cpu.weight", "100\n"));
    // With the controller, cpu.stat also reports bandwidth throttling.
    MESH_RETURN_IF_ERROR(put("cpu.stat",
                             "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\n"
                             "nr_throttled 0\nthrottled_usec 0\n"));
  } else if (controller == "pids") {
    MESH_RETURN_IF_ERROR(put("pids.max", "max\n"));
    MESH_RETURN_IF_ERROR(put("pids.current", "0\n"));
    MESH_RETURN_IF_ERROR(put("pids.events", "max 0\n"));
  } else if (controller == "io") {
    MESH_RETURN_IF_ERROR(put("io.max", ""));
    MESH_RETURN_IF_ERROR(put("io.weight", "default 100\n"));
  }
  return absl::OkStatus();
}

std::vector<std::string> FakeCgroupFs::CgroupDirs(const Hierarchy& h) {
  std::vector<std::string> dirs;
  std::function<void(const std::string&)> walk = [&](const std::string& dir) {
    dirs.push_back(dir);
    for (const std::string& child : Entries(dir, true)) walk(absl::StrCat(dir, "/", child));
  };
  walk(h.mount);
  return dirs;
}

std::vector<pid_t> FakeCgroupFs::ProcsOf(const std::string& dir) {
  std::vector<pid_t> pids;
  for (absl::string_view line :
       absl::StrSplit(RawRead(dir + "/cgroup.procs"), '\n', absl::SkipWhitespace())) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
  }
  return pids;
}

void FakeCgroupFs::SetProcs(const std::string& dir, const std::vector<pid_t>& pids) {
  std::string text;
  for (pid_t pid : pids) absl::StrAppend(&text, pid, "\n");
  RawWrite(dir + "/cgroup.procs", text).IgnoreError();  // The file exists: we just read it.
}

void FakeCgroupFs::EndProcess(pid_t pid) {
  for (const Hierarchy& h : hierarchies_) {
    for (const std::string& dir : CgroupDirs(h)) {
      std::vector<pid_t> procs = ProcsOf(dir);
      auto it = std::find(procs.begin(), procs.end(), pid);
      if (it == procs.end()) continue;
      procs.erase(it);
      SetProcs(dir, procs);
    }
  }
  live_.erase(pid);
  pending_kill_.erase(pid);
}

void FakeCgroupFs::Refresh() {
  for (const Hierarchy& h : hierarchies_) {
    std::vector<std::string> dirs = CgroupDirs(h);
    for (const std::string& dir : dirs) {
      if (dir == h.mount) continue;
      size_t count = 0;
      bool frozen = false;
      for (const std::string& other : dirs) {
        if (other == dir || other.starts_with(dir + "/")) count += ProcsOf(other).size();
      }
      // A v2 cgroup is frozen when it or an ancestor asked to be and all its tasks stopped.
      for (std::string d = dir; d.size() > h.mount.size(); d = Dirname(d)) {
        if (absl::StripAsciiWhitespace(RawRead(d + "/cgroup.freeze")) == "1") frozen = true;
      }
      for (const std::string& other : dirs) {
        if (other != dir && !other.starts_with(dir + "/")) continue;
        for (pid_t pid : ProcsOf(other)) {
          if (unfreezable_.contains(pid)) frozen = false;
        }
      }
      if (Exists(dir + "/pids.current")) {
        RawWrite(dir + "/pids.current", absl::StrCat(count, "\n")).IgnoreError();  // Exists.
      }
      if (h.v2) {
        RawWrite(dir + "/cgroup.events",
                 absl::StrCat("populated ", count > 0 ? 1 : 0, "\nfrozen ", frozen ? 1 : 0, "\n"))
            .IgnoreError();  // The directory exists: we just listed it.
      }
    }
  }
}

bool FakeCgroupFs::InFrozenV1Cgroup(pid_t pid) {
  for (const Hierarchy& h : hierarchies_) {
    if (h.v2 || !h.controllers.contains("freezer")) continue;
    for (const std::string& dir : CgroupDirs(h)) {
      std::vector<pid_t> procs = ProcsOf(dir);
      if (std::find(procs.begin(), procs.end(), pid) == procs.end()) continue;
      return absl::StripAsciiWhitespace(RawRead(dir + "/freezer.state")) == "FROZEN";
    }
  }
  return false;
}

absl::Status FakeCgroupFs::MakeDir(const std::string& path) {
  const std::string what = absl::StrCat("create cgroup directory ", path);
  MESH_RETURN_IF_ERROR(TakeInjectedError(Op::kMakeDir, path));
  if (Exists(path)) return mesh::ErrnoToStatus(EEXIST, what);
  const std::string parent = Dirname(path);
  if (!IsDir(parent)) return mesh::ErrnoToStatus(ENOENT, what);
  Hierarchy* h = HierarchyOf(path);
  if (h == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not in a fake cgroup hierarchy"));
  }
  if (::mkdir(path.c_str(), 0755) != 0) return mesh::ErrnoToStatus(errno, what);
  std::set<std::string> controllers;
  if (h->v2) controllers = Tokens(RawRead(parent + "/cgroup.subtree_control"));
  return Populate(*h, path, controllers);
}

absl::Status FakeCgroupFs::RemoveDir(const std::string& path) {
  const std::string what = absl::StrCat("remove cgroup directory ", path);
  MESH_RETURN_IF_ERROR(TakeInjectedError(Op::kRemoveDir, path));
  if (!IsDir(path)) return mesh::ErrnoToStatus(ENOENT, what);
  Hierarchy* h = HierarchyOf(path);
  if (h == nullptr || path == h->mount) return mesh::ErrnoToStatus(EBUSY, what);
  if (!Entries(path, true).empty() || !ProcsOf(path).empty()) {
    return mesh::ErrnoToStatus(EBUSY, what);
  }
  for (const std::string& file : Entries(path, false))
    ::unlink(absl::StrCat(path, "/", file).c_str());
  if (::rmdir(path.c_str()) != 0) return mesh::ErrnoToStatus(errno, what);
  devices_.erase(path);
  programs_.erase(path);
  return absl::OkStatus();
}

std::string FakeCgroupFs::DevicesList(const std::string& dir) const {
  auto it = devices_.find(dir);
  if (it == devices_.end() || it->second.allow) return "a *:* rwm\n";
  std::string out;
  for (const std::string& line : it->second.exceptions) absl::StrAppend(&out, line, "\n");
  return out;
}

std::vector<bpf_insn> FakeCgroupFs::DeviceProgramForTest(const std::string& path) const {
  auto it = programs_.find(path);
  return it == programs_.end() ? std::vector<bpf_insn>{} : it->second;
}

absl::Status FakeCgroupFs::SetDeviceProgram(const std::string& path,
                                            const std::vector<bpf_insn>& program) {
  const std::string what = absl::StrCat("set the device program of cgroup ", path);
  if (!IsDir(path)) return mesh::ErrnoToStatus(ENOENT, what);
  const Hierarchy* h = HierarchyOf(path);
  // The kernel takes only cgroup2 directories (cgroup_get_from_fd).
  if (h == nullptr || !h->v2) return mesh::ErrnoToStatus(EBADF, what);
  if (program.empty()) return mesh::ErrnoToStatus(EINVAL, what);
  programs_[path] = program;
  ++device_program_sets_;
  return absl::OkStatus();
}

bool FakeCgroupFs::Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::vector<std::string>> FakeCgroupFs::ListDirs(const std::string& path) {
  if (!IsDir(path)) return mesh::ErrnoToStatus(ENOENT, absl::StrCat("list cgroup ", path));
  return Entries(path, true);
}

absl::StatusOr<std::string> FakeCgroupFs::Read(const std::string& path) {
  if (Basename(path) == "cgroup.kill" && Exists(path)) {
    return mesh::ErrnoToStatus(EACCES, absl::StrCat("read \"", path, "\""));
  }
  return mesh::ReadFile(path);
}

absl::Status FakeCgroupFs::Write(const std::string& path, absl::string_view value) {
  const std::string what = absl::StrCat("write \"", value, "\" to ", path);
  MESH_RETURN_IF_ERROR(TakeInjectedError(Op::kWrite, path));
  if (!Exists(path)) return mesh::ErrnoToStatus(ENOENT, what);
  if (IsDir(path)) return mesh::ErrnoToStatus(EISDIR, what);
  const Hierarchy* h = HierarchyOf(path);
  if (h == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not in a fake cgroup hierarchy"));
  }
  if (int err = ApplyWrite(*h, Dirname(path), Basename(path), value); err != 0) {
    return mesh::ErrnoToStatus(err, what);
  }
  writes_.emplace_back(path, std::string(value));
  return absl::OkStatus();
}

int FakeCgroupFs::ApplyWrite(const Hierarchy& h, const std::string& dir, const std::string& file,
                             absl::string_view value) {
  const std::string v(absl::StripAsciiWhitespace(value));
  const std::string path = dir + "/" + file;
  auto store = [&path](absl::string_view contents) {
    RawWrite(path, absl::StrCat(contents, "\n")).IgnoreError();  // The file exists.
    return 0;
  };
  if (ReadOnlyFiles().contains(file)) return EACCES;

  if (file == "cgroup.procs" || file == "tasks") {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(v, &pid) || pid <= 0) return EINVAL;
    // cgroup v2's "no internal processes" rule.
    if (h.v2 && dir != h.mount && !Tokens(RawRead(dir + "/cgroup.subtree_control")).empty()) {
      return EBUSY;
    }
    for (const std::string& d : CgroupDirs(h)) {
      std::vector<pid_t> procs = ProcsOf(d);
      auto it = std::find(procs.begin(), procs.end(), pid);
      if (it != procs.end()) {
        procs.erase(it);
        SetProcs(d, procs);
      }
    }
    std::vector<pid_t> procs = ProcsOf(dir);
    procs.push_back(pid);
    SetProcs(dir, procs);
    live_.insert(pid);
    Refresh();
    return 0;
  }
  if (file == "cgroup.subtree_control") {
    std::set<std::string> enabled = Tokens(RawRead(path));
    const std::set<std::string> available = Tokens(RawRead(dir + "/cgroup.controllers"));
    std::vector<std::pair<char, std::string>> changes;
    for (const std::string& token : Tokens(v)) {
      if (token.size() < 2 || (token[0] != '+' && token[0] != '-')) return EINVAL;
      if (!available.contains(token.substr(1))) return ENOENT;
      changes.emplace_back(token[0], token.substr(1));
    }
    if (dir != h.mount && !ProcsOf(dir).empty()) return EBUSY;
    for (const auto& change : changes) {
      const std::string& controller = change.second;
      if (change.first == '+') {
        enabled.insert(controller);
      } else {
        enabled.erase(controller);
      }
      for (const std::string& child : Entries(dir, true)) {
        const std::string child_dir = absl::StrCat(dir, "/", child);
        std::set<std::string> child_controllers =
            Tokens(RawRead(child_dir + "/cgroup.controllers"));
        if (change.first == '+' && !child_controllers.contains(controller)) {
          child_controllers.insert(controller);
          PopulateV2Controller(h, child_dir, controller).IgnoreError();  // Files in our tree.
        } else if (change.first == '-') {
          child_controllers.erase(controller);
          for (const std::string& f : Entries(child_dir, false)) {
            if (f.starts_with(controller + ".") && f != "cpu.stat") {
              ::unlink(absl::StrCat(child_dir, "/", f).c_str());
            }
          }
        }
        RawWrite(child_dir + "/cgroup.controllers", absl::StrJoin(child_controllers, " ") + "\n")
            .IgnoreError();  // The file exists.
      }
    }
    return store(absl::StrJoin(enabled, " "));
  }
  if (file == "cgroup.kill") {
    if (v != "1") return EINVAL;
    std::vector<pid_t> victims;
    for (const std::string& d : CgroupDirs(h)) {
      if (d != dir && !d.starts_with(dir + "/")) continue;
      for (pid_t pid : ProcsOf(d)) victims.push_back(pid);
    }
    for (pid_t pid : victims) {
      signals_.emplace_back(pid, SIGKILL);
      if (!unkillable_.contains(pid)) EndProcess(pid);
    }
    Refresh();
    return 0;
  }
  if (file == "devices.allow" || file == "devices.deny") {
    const bool allow = file == "devices.allow";
    DeviceState& state = devices_[dir];
    if (!v.empty() && v[0] == 'a') {
      // A new default: not while child cgroups exist; allowing all needs a parent that does.
      if (!Entries(dir, true).empty()) return EINVAL;
      if (allow && dir != h.mount) {
        auto parent = devices_.find(Dirname(dir));
        if (parent != devices_.end() && !parent->second.allow) return EPERM;
      }
      state.allow = allow;
      state.exceptions.clear();
    } else {
      DeviceLine line;
      if (!ParseDeviceLine(v, line)) return EINVAL;
      // An exception of the default's opposite is added (access merged into an existing one
      // for the same device); one of the default's kind removes those access bits.
      auto same =
          std::find_if(state.exceptions.begin(), state.exceptions.end(),
                       [&](const std::string& e) { return e.rfind(line.Key() + " ", 0) == 0; });
      if (allow != state.allow) {
        if (same == state.exceptions.end()) {
          state.exceptions.push_back(line.Text());
        } else {
          DeviceLine old;
          ParseDeviceLine(*same, old);
          std::string merged;
          for (char c : std::string("rwm")) {
            if (old.access.find(c) != std::string::npos ||
                line.access.find(c) != std::string::npos) {
              merged.push_back(c);
            }
          }
          line.access = merged;
          *same = line.Text();
        }
      } else if (same != state.exceptions.end()) {
        DeviceLine old;
        ParseDeviceLine(*same, old);
        std::string left;
        for (char c : old.access) {
          if (line.access.find(c) == std::string::npos) left.push_back(c);
        }
        if (left.empty()) {
          state.exceptions.erase(same);
        } else {
          old.access = left;
          *same = old.Text();
        }
      }
    }
    RawWrite(dir + "/devices.list", DevicesList(dir)).IgnoreError();  // The file exists.
    return 0;
  }
  if (file == "cgroup.freeze") {
    if (v != "0" && v != "1") return EINVAL;
    store(v);
    Refresh();
    return 0;
  }
  if (file == "freezer.state") {
    if (v != "FROZEN" && v != "THAWED") return EINVAL;
    bool stuck = false;
    for (pid_t pid : ProcsOf(dir)) stuck = stuck || unfreezable_.contains(pid);
    store(v == "FROZEN" && stuck ? "FREEZING" : v);
    if (v == "THAWED") {
      for (pid_t pid : ProcsOf(dir)) {
        if (pending_kill_.contains(pid)) EndProcess(pid);
      }
      Refresh();
    }
    return 0;
  }
  if (file == "memory.max" || file == "memory.high" || file == "memory.low" ||
      file == "memory.min" || file == "memory.swap.max") {
    if (v == "max") return store(v);
    uint64_t n = 0;
    if (!absl::SimpleAtoi(v, &n)) return EINVAL;
    return store(absl::StrCat(n / kPageSize * kPageSize));
  }
  if (file == "pids.max") {
    uint64_t n = 0;
    if (v != "max" && !absl::SimpleAtoi(v, &n)) return EINVAL;
    return store(v);
  }
  if (file == "cpu.max") {
    std::vector<std::string> fields = absl::StrSplit(v, ' ', absl::SkipEmpty());
    if (fields.empty() || fields.size() > 2) return EINVAL;
    int64_t quota = 0;
    if (fields[0] != "max" &&
        (!absl::SimpleAtoi(fields[0], &quota) || quota < 1000 || quota > kMaxCpuQuota)) {
      return EINVAL;
    }
    std::string period;
    if (fields.size() == 2) {
      uint64_t p = 0;
      if (!absl::SimpleAtoi(fields[1], &p) || p < 1000 || p > 1000000) return EINVAL;
      period = fields[1];
    } else {
      std::vector<std::string> current =
          absl::StrSplit(absl::StripAsciiWhitespace(RawRead(path)), ' ', absl::SkipEmpty());
      period = current.size() == 2 ? current[1] : "100000";
    }
    return store(absl::StrCat(fields[0], " ", period));
  }
  if (file == "cpu.weight") {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < 1 || n > 10000) return EINVAL;
    return store(v);
  }
  if (file == "memory.limit_in_bytes" || file == "memory.memsw.limit_in_bytes") {
    std::string stored;
    uint64_t bytes = 0;
    if (!ParseV1Memory(v, stored, bytes)) return EINVAL;
    // The kernel keeps memory <= memory+swap at all times (mem_cgroup_resize_max).
    const bool memsw = file == "memory.memsw.limit_in_bytes";
    const std::string other =
        dir + (memsw ? "/memory.limit_in_bytes" : "/memory.memsw.limit_in_bytes");
    uint64_t other_bytes = 0;
    if (Exists(other) &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(RawRead(other)), &other_bytes)) {
      if (memsw ? bytes < other_bytes : bytes > other_bytes) return EINVAL;
    }
    return store(stored);
  }
  if (file == "cpu.cfs_quota_us") {
    int64_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || (n != -1 && (n < 1000 || n > kMaxCpuQuota))) return EINVAL;
    return store(v);
  }
  if (file == "cpu.cfs_period_us") {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < 1000 || n > 1000000) return EINVAL;
    return store(v);
  }
  if (file == "cpu.shares") {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(v, &n)) return EINVAL;
    return store(absl::StrCat(std::clamp<uint64_t>(n, 2, 262144)));
  }
  return store(v);
}

absl::StatusOr<UniqueFd> FakeCgroupFs::OpenDir(const std::string& path) {
  MESH_RETURN_IF_ERROR(TakeInjectedError(Op::kOpenDir, path));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return mesh::ErrnoToStatus(errno, absl::StrCat("open cgroup directory ", path));
  return fd;
}

absl::Status FakeCgroupFs::Kill(pid_t pid, int signal) {
  if (!live_.contains(pid)) {
    return mesh::ErrnoToStatus(ESRCH, absl::StrCat("signal process ", pid, " with ", signal));
  }
  signals_.emplace_back(pid, signal);
  if (signal == SIGKILL && !unkillable_.contains(pid)) {
    // The v1 freezer holds even a killed task until the thaw; v2 lets it die at once.
    if (InFrozenV1Cgroup(pid)) {
      pending_kill_.insert(pid);
    } else {
      EndProcess(pid);
      Refresh();
    }
  }
  return absl::OkStatus();
}

}  // namespace mesh::runtime
