// File: src/common/base64.h
//
// Standard base64 (RFC 4648, with padding): the encoding of JSONPatch bodies
// in AdmissionReview responses and of *-data fields in kubeconfig files.
//
//   Base64Encode("foo")           -> "Zm9v"
//   Base64Decode("Zm9v")          -> "foo"
//   Base64Decode("Zm9")           -> std::nullopt (not a multiple of 4)
//   Base64UrlEncode("\xfb\xff")    -> "-_8"
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

// base64url without padding (RFC 4648 §5, RFC 7515 §2): JWTs, list continue
// tokens. Decoding refuses the standard alphabet's '+' and '/', padding and
// line breaks.
std::string Base64UrlEncode(std::string_view data);
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace gpu_autoscaler
