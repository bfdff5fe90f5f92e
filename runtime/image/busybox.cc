#include "runtime/image/busybox.h"

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/child_process.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"
#include "runtime/image/layer_rules.h"

namespace mesh::runtime::image {
namespace {

constexpr char kCreated[] = "1970-01-01T00:00:00Z";

struct WriterFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

absl::Status ReadExactly(int fd, void* buf, size_t size, off_t offset, const std::string& path) {
  char* p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return mesh::ErrnoToStatus(errno, absl::StrCat("read \"", path, "\""));
    if (n == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("\"", path, "\" is truncated: not a valid ELF executable"));
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

template <typename Ehdr, typename Phdr>
absl::Status CheckProgramHeaders(int fd, const std::string& path) {
  Ehdr eh;
  MESH_RETURN_IF_ERROR(ReadExactly(fd, &eh, sizeof(eh), 0, path));
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum > 4096) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", path, "\" has malformed ELF program headers"));
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    MESH_RETURN_IF_ERROR(
        ReadExactly(fd, &ph, sizeof(ph), static_cast<off_t>(eh.e_phoff + i * sizeof(Phdr)), path));
    if (ph.p_type == PT_INTERP) {
      return absl::FailedPreconditionError(absl::StrCat(
          "\"", path,
          "\" is dynamically linked, so it cannot run in an image without a libc: install "
          "busybox-static (apt-get install busybox-static)"));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteHeader(archive* a, archive_entry* e, const std::string& path) {
  if (archive_write_header(a, e) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("write busybox layer entry \"", path, "\": ", archive_error_string(a)));
  }
  return absl::OkStatus();
}

std::unique_ptr<archive_entry, EntryFree> NewEntry(const std::string& path, unsigned type,
                                                   unsigned mode, int64_t size) {
  std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
  archive_entry_set_pathname(e.get(), path.c_str());
  archive_entry_set_filetype(e.get(), type);
  archive_entry_set_perm(e.get(), mode);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), 0, 0);
  archive_entry_set_size(e.get(), size);
  return e;
}

la_ssize_t FdWrite(archive* a, void* client, const void* buf, size_t size) {
  int fd = *static_cast<int*>(client);
  const char* p = static_cast<const char*>(buf);
  size_t left = size;
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      archive_set_error(a, errno, "write failed");
      return -1;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return static_cast<la_ssize_t>(size);
}

}  // namespace

absl::Status CheckStaticElf(int fd, const std::string& path) {
  unsigned char ident[EI_NIDENT];
  MESH_RETURN_IF_ERROR(ReadExactly(fd, ident, sizeof(ident), 0, path));
  if (std::memcmp(ident, ELFMAG, SELFMAG) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", path, "\" is not an ELF executable: install busybox-static"));
  }
  if (ident[EI_CLASS] == ELFCLASS64) return CheckProgramHeaders<Elf64_Ehdr, Elf64_Phdr>(fd, path);
  if (ident[EI_CLASS] == ELFCLASS32) return CheckProgramHeaders<Elf32_Ehdr, Elf32_Phdr>(fd, path);
  return absl::FailedPreconditionError(absl::StrCat("\"", path, "\" has an unknown ELF class"));
}

absl::StatusOr<std::vector<std::string>> ParseAppletList(absl::string_view text) {
  std::set<std::string> applets;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    MESH_ASSIGN_OR_RETURN(std::string path, NormalizeEntryPath(line, "busybox applet"));
    if (path.empty() || path == "bin/busybox") continue;
    applets.insert(std::move(path));
  }
  if (applets.empty()) {
    return absl::FailedPreconditionError("busybox --list-full listed no applets");
  }
  return std::vector<std::string>(applets.begin(), applets.end());
}

absl::StatusOr<std::vector<std::string>> ListApplets(const std::string& busybox_path) {
  SpawnOptions options;
  options.argv = {busybox_path, "--list-full"};
  options.env = std::vector<std::string>{"LC_ALL=C"};
  MESH_ASSIGN_OR_RETURN(CommandResult result, RunCommand(options, absl::Seconds(30)));
  if (!result.status.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("\"", busybox_path, " --list-full\" ",
                                                      result.status.ToString(), ": ", result.err));
  }
  return ParseAppletList(result.out);
}

absl::Status WriteBusyboxLayer(int busybox_fd, const std::vector<std::string>& applets,
                               int out_fd) {
  struct stat st;
  if (::fstat(busybox_fd, &st) != 0) return mesh::ErrnoToStatus(errno, "stat busybox");
  if (!S_ISREG(st.st_mode)) return absl::FailedPreconditionError("busybox is not a regular file");

  // Directories: the standard set plus every applet's parent.
  std::map<std::string, unsigned> dirs = {
      {"bin", 0755},  {"dev", 0755},     {"etc", 0755},      {"home", 0755}, {"proc", 0555},
      {"root", 0700}, {"run", 0755},     {"sbin", 0755},     {"sys", 0555},  {"tmp", 01777},
      {"usr", 0755},  {"usr/bin", 0755}, {"usr/sbin", 0755}, {"var", 0755},  {"var/tmp", 01777},
  };
  for (const std::string& applet : applets) {
    std::string parent = applet;
    while (true) {
      size_t slash = parent.rfind('/');
      if (slash == std::string::npos) break;
      parent.resize(slash);
      dirs.emplace(parent, 0755);
    }
  }

  std::unique_ptr<archive, WriterFree> a(archive_write_new());
  if (a == nullptr) return absl::ResourceExhaustedError("allocate tar writer");
  if (archive_write_set_format_ustar(a.get()) != ARCHIVE_OK ||
      archive_write_open(a.get(), &out_fd, nullptr, FdWrite, nullptr) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("open busybox layer writer: ", archive_error_string(a.get())));
  }
  for (const auto& [path, mode] : dirs) {  // std::map: parents sort before children
    auto e = NewEntry(path, AE_IFDIR, mode, 0);
    MESH_RETURN_IF_ERROR(WriteHeader(a.get(), e.get(), path));
  }
  {
    auto e = NewEntry("bin/busybox", AE_IFREG, 0755, st.st_size);
    MESH_RETURN_IF_ERROR(WriteHeader(a.get(), e.get(), "bin/busybox"));
    std::vector<char> buf(128 * 1024);
    off_t offset = 0;
    while (offset < st.st_size) {
      ssize_t n = ::pread(busybox_fd, buf.data(), buf.size(), offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return mesh::ErrnoToStatus(errno, "read busybox");
      if (n == 0) return absl::FailedPreconditionError("busybox changed size while being read");
      if (archive_write_data(a.get(), buf.data(), static_cast<size_t>(n)) != n) {
        return absl::InternalError(
            absl::StrCat("write busybox layer: ", archive_error_string(a.get())));
      }
      offset += n;
    }
  }
  const std::pair<const char*, const char*> files[] = {
      {"etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"},
      {"etc/passwd",
       "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
  };
  for (const auto& [path, content] : files) {
    size_t size = std::strlen(content);
    auto e = NewEntry(path, AE_IFREG, 0644, static_cast<int64_t>(size));
    MESH_RETURN_IF_ERROR(WriteHeader(a.get(), e.get(), path));
    if (archive_write_data(a.get(), content, size) != static_cast<la_ssize_t>(size)) {
      return absl::InternalError(
          absl::StrCat("write busybox layer: ", archive_error_string(a.get())));
    }
  }
  for (const std::string& applet : applets) {
    auto e = NewEntry(applet, AE_IFREG, 0755, 0);
    archive_entry_set_hardlink(e.get(), "bin/busybox");
    MESH_RETURN_IF_ERROR(WriteHeader(a.get(), e.get(), applet));
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("finish busybox layer: ", archive_error_string(a.get())));
  }
  return absl::OkStatus();
}

std::string BusyboxConfig(const Digest& diff_id, const Platform& platform) {
  using nlohmann::json;
  json history = json::object();
  history["created"] = kCreated;
  history["created_by"] = "mesh: built-in image from the host's busybox-static";
  json rootfs = json::object();
  rootfs["type"] = "layers";
  rootfs["diff_ids"] = json::array({diff_id.ToString()});
  json run = json::object();
  run["Cmd"] = json::array({"sh"});
  run["Env"] = json::array({kDefaultPathEnv});
  json config = json::object();
  config["architecture"] = platform.architecture;
  config["os"] = platform.os;
  if (!platform.variant.empty()) config["variant"] = platform.variant;
  config["created"] = kCreated;
  config["config"] = run;
  config["rootfs"] = rootfs;
  config["history"] = json::array({history});
  return config.dump();
}

}  // namespace mesh::runtime::image
