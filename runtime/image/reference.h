#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mesh::runtime::image {

// An image name with its tag: "busybox:latest", "registry.local:5000/team/app:1.2".
struct Reference {
  std::string name;  // "[domain[:port]/]component[/component...]"
  std::string tag;   // "latest" when the text gives none
  std::string ToString() const { return name + ":" + tag; }
};

// Parses an image reference by Docker's grammar (distribution/reference): lowercase path
// components of [a-z0-9] joined by ".", "_", "__" or dashes, separated by "/", optionally
// after a domain ("localhost", or a host with a "." or a ":port"); a tag of up to 128
// characters [A-Za-z0-9_.-] not starting with "." or "-". The name is at most 255 characters.
// Digest references ("name@sha256:...") are refused: use the image id instead.
// InvalidArgument quoting the text and saying what is wrong.
absl::StatusOr<Reference> ParseReference(absl::string_view text);

}  // namespace mesh::runtime::image
