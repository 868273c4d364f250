// File: src/common/base64.h
//
// Standard base64 (RFC 4648, with padding): the encoding of JSONPatch bodies
// in AdmissionReview responses and of *-data fields in kubeconfig files.
//
//   Base64Encode("foo")           -> "Zm9v"
//   Base64Decode("Zm9v")          -> "foo"
//   Base64Decode("Zm9")           -> std::nullopt (not a multiple of 4)
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gpu_autoscaler {

std::string Base64Encode(std::string_view data);

// Decodes as Go's StdEncoding does (what kubectl accepts): padding required,
// newlines skipped; anything else malformed is std::nullopt.
std::optional<std::string> Base64Decode(std::string_view in);

}  // namespace gpu_autoscaler
