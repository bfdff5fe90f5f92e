#pragma once

// Builds tar archives for image tests with libarchive's writer: ordinary ones and hostile ones
// (libarchive writes "../x", "/etc/x", devices and escaping links as given). Header-only;
// shared by the unit and integration tests of runtime/image.

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mesh::runtime::image::testing {

class TarBuilder {
 public:
  struct Spec {
    std::string path;
    unsigned type = AE_IFREG;
    std::string content;
    std::string link;  // symlink target
    std::string hardlink;
    unsigned mode = 0644;
    int64_t uid = 0;
    int64_t gid = 0;
    int64_t mtime = 1700000000;
    unsigned rdev_major = 0;
    unsigned rdev_minor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;
  };

  TarBuilder& Add(Spec spec) {
    specs_.push_back(std::move(spec));
    return *this;
  }
  TarBuilder& Dir(const std::string& path, unsigned mode = 0755) {
    return Add({.path = path, .type = AE_IFDIR, .mode = mode});
  }
  TarBuilder& File(const std::string& path, const std::string& content, unsigned mode = 0644) {
    return Add({.path = path, .type = AE_IFREG, .content = content, .mode = mode});
  }
  TarBuilder& Symlink(const std::string& path, const std::string& target) {
    return Add({.path = path, .type = AE_IFLNK, .link = target, .mode = 0777});
  }
  TarBuilder& Hardlink(const std::string& path, const std::string& target) {
    return Add({.path = path, .type = AE_IFREG, .hardlink = target});
  }
  TarBuilder& Fifo(const std::string& path) {
    return Add({.path = path, .type = AE_IFIFO, .mode = 0600});
  }
  TarBuilder& CharDevice(const std::string& path, unsigned major, unsigned minor) {
    return Add(
        {.path = path, .type = AE_IFCHR, .mode = 0666, .rdev_major = major, .rdev_minor = minor});
  }
  TarBuilder& BlockDevice(const std::string& path, unsigned major, unsigned minor) {
    return Add(
        {.path = path, .type = AE_IFBLK, .mode = 0660, .rdev_major = major, .rdev_minor = minor});
  }

  // A pax tar of the entries, in order.
  std::string Build() const {
    std::string out;
    Writer w(&out);
    archive_write_set_format_pax(w.a);
    w.Open();
    for (const Spec& s : specs_) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, s.path.c_str());
      archive_entry_set_filetype(e, s.type);
      archive_entry_set_perm(e, s.mode);
      archive_entry_set_uid(e, s.uid);
      archive_entry_set_gid(e, s.gid);
      archive_entry_set_mtime(e, s.mtime, 0);
      if (!s.link.empty()) archive_entry_set_symlink(e, s.link.c_str());
      if (!s.hardlink.empty()) archive_entry_set_hardlink(e, s.hardlink.c_str());
      if (s.type == AE_IFCHR || s.type == AE_IFBLK) {
        archive_entry_set_rdevmajor(e, s.rdev_major);
        archive_entry_set_rdevminor(e, s.rdev_minor);
      }
      for (const auto& [name, value] : s.xattrs) {
        archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
      }
      bool has_data = s.type == AE_IFREG && s.hardlink.empty();
      archive_entry_set_size(e, has_data ? static_cast<int64_t>(s.content.size()) : 0);
      if (archive_write_header(w.a, e) != ARCHIVE_OK) {
        archive_entry_free(e);
        throw std::runtime_error(std::string("tar header: ") + archive_error_string(w.a));
      }
      archive_entry_free(e);
      if (has_data && !s.content.empty()) {
        archive_write_data(w.a, s.content.data(), s.content.size());
      }
    }
    w.Close();
    return out;
  }

 private:
  struct Writer {
    explicit Writer(std::string* o) : a(archive_write_new()), out(o) {}
    ~Writer() { archive_write_free(a); }
    void Open() {
      archive_write_set_bytes_in_last_block(a, 1);
      if (archive_write_open(a, out, nullptr, Append, nullptr) != ARCHIVE_OK) {
        throw std::runtime_error("archive_write_open");
      }
    }
    void Close() { archive_write_close(a); }
    static la_ssize_t Append(archive*, void* client, const void* buf, size_t size) {
      static_cast<std::string*>(client)->append(static_cast<const char*>(buf), size);
      return static_cast<la_ssize_t>(size);
    }
    archive* a;
    std::string* out;
  };
  friend std::string Gzip(const std::string& data);

  std::vector<Spec> specs_;
};

// `data` compressed with gzip (libarchive's raw format through its gzip filter).
inline std::string Gzip(const std::string& data) {
  std::string out;
  TarBuilder::Writer w(&out);
  archive_write_set_format_raw(w.a);
  archive_write_add_filter_gzip(w.a);
  w.Open();
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "data");
  archive_entry_set_size(e, static_cast<int64_t>(data.size()));
  archive_write_header(w.a, e);
  archive_entry_free(e);
  archive_write_data(w.a, data.data(), data.size());
  w.Close();
  return out;
}

// One 512-byte ustar header (checksum filled in).
inline std::string UstarHeader(const std::string& name, char typeflag, size_t size) {
  std::string h(512, '\0');
  auto put = [&h](size_t offset, const std::string& value) {
    h.replace(offset, value.size(), value);
  };
  auto octal = [](uint64_t v, int width) {
    std::string out(width - 1, '0');
    for (int i = width - 2; i >= 0 && v > 0; --i, v >>= 3)
      out[i] = static_cast<char>('0' + (v & 7));
    return out;
  };
  put(0, name.substr(0, 99));
  put(100, octal(0644, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(1700000000, 12));
  h[156] = typeflag;
  put(257, std::string("ustar\0", 6));
  put(263, "00");
  put(148, std::string(8, ' '));
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  put(148, octal(sum, 7) + std::string(1, '\0'));
  return h;
}

inline std::string PadBlock(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

// A pax tar of one file whose name is given by a UTF-8 "path" record, the way Go's
// archive/tar (Docker, containerd) writes non-ASCII names.
inline std::string PaxUtf8Tar(const std::string& path, const std::string& content) {
  std::string body = " path=" + path + "\n";
  size_t len = body.size();
  std::string record;
  for (size_t digits = 1;; ++digits) {
    std::string n = std::to_string(len + digits);
    if (n.size() == digits) {
      record = n + body;
      break;
    }
  }
  std::string out = UstarHeader("PaxHeaders/x", 'x', record.size()) + PadBlock(record);
  out += UstarHeader("placeholder", '0', content.size()) + PadBlock(content);
  out += std::string(1024, '\0');
  return out;
}

}  // namespace mesh::runtime::image::testing
