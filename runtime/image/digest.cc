#include "runtime/image/digest.h"

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mesh::runtime::image {

bool IsSha256Hex(absl::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<Digest> ParseDigest(absl::string_view text) {
  size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest \"", absl::CHexEscape(text.substr(0, 100)),
                     "\" is malformed: expected \"sha256:<64 hex digits>\""));
  }
  absl::string_view algorithm = text.substr(0, colon);
  absl::string_view hex = text.substr(colon + 1);
  if (algorithm != "sha256") {
    return absl::InvalidArgumentError(absl::StrCat(
        "digest \"", absl::CHexEscape(text.substr(0, 100)), "\" uses unsupported algorithm \"",
        absl::CHexEscape(algorithm.substr(0, 20)), "\": mesh verifies sha256 digests only"));
  }
  if (!IsSha256Hex(hex)) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest \"", absl::CHexEscape(text.substr(0, 100)),
                     "\" is malformed: expected 64 lowercase hex digits after \"sha256:\""));
  }
  return Digest{std::string(hex)};
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  // Allocation failure or a missing sha256 provider leave no sane way to continue.
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) std::abort();
}

void Sha256::Update(const void* data, size_t size) {
  if (size == 0) return;
  if (EVP_DigestUpdate(ctx_.get(), data, size) != 1) std::abort();
}

Digest Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1) std::abort();
  return Digest{absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), static_cast<size_t>(len)))};
}

Digest Sha256Of(absl::string_view data) {
  Sha256 hasher;
  hasher.Update(data);
  return hasher.Finish();
}

}  // namespace mesh::runtime::image
