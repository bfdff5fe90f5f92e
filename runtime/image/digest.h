#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mesh::runtime::image {

// A content digest as OCI writes it: "sha256:<64 lowercase hex>". mesh verifies and stores
// sha256 only; other algorithms (sha512, which the OCI spec also allows) are refused with a
// clear error rather than accepted unverified.
struct Digest {
  std::string hex;  // 64 lowercase hex digits

  std::string ToString() const { return "sha256:" + hex; }
  friend bool operator==(const Digest&, const Digest&) = default;
  friend bool operator<(const Digest& a, const Digest& b) { return a.hex < b.hex; }
};

// Parses "sha256:<64 lowercase hex>". InvalidArgument (quoting the text) on anything else.
absl::StatusOr<Digest> ParseDigest(absl::string_view text);

// True if `text` is exactly 64 lowercase hex digits.
bool IsSha256Hex(absl::string_view text);

// Incremental SHA-256 (OpenSSL EVP). Not thread-safe; move-only.
class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // Returns the digest of everything passed to Update; the hasher must not be used after.
  Digest Finish();

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
};

// SHA-256 of `data`.
Digest Sha256Of(absl::string_view data);

}  // namespace mesh::runtime::image
