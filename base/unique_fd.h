#pragma once

#include <utility>

namespace mesh {

// Owns one file descriptor and closes it on destruction. Move-only.
// Every fd mesh opens is O_CLOEXEC from birth; UniqueFd does not change flags.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing; returns the fd (or -1).
  [[nodiscard]] int Release() { return std::exchange(fd_, -1); }
  // Closes the owned fd (if any) and takes ownership of `fd`. close() errors are ignored:
  // after close() the fd is gone on Linux whatever it returns, and retrying would be wrong.
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace mesh
