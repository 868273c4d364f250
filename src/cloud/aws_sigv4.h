// File: src/cloud/aws_sigv4.h
//
// AWS Signature Version 4: the canonical request, the string to sign, the
// derived signing key and the Authorization header, exposed step by step so
// tests can compare each one against the AWS SigV4 test suite
// (tests/data/aws-sigv4/), plus SignAwsRequest for outbound kube::HttpRequests.
//
//   AwsCredentials creds{.access_key_id = "AKID...", .secret_access_key = "..."};
//   kube::HttpRequest req{.method = "POST", .url = "https://autoscaling.us-east-1.amazonaws.com/",
//                         .headers = {{"Content-Type", kAwsFormContentType}}, .body = form};
//   GPU_RETURN_IF_ERROR(SignAwsRequest(req, creds, {"us-east-1", "autoscaling"}, clock.WallNow()));
//
// SignAwsRequest adds Host, X-Amz-Date, X-Amz-Security-Token (when the
// credentials carry a session token; signed, as the AWS SDKs do) and
// Authorization. It signs host, content-type and every x-amz-* header.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "kube/transport.h"

namespace gpu_autoscaler::cloud {

inline constexpr std::string_view kAwsFormContentType =
    "application/x-www-form-urlencoded; charset=utf-8";

struct AwsCredentials {
  std::string access_key_id{};
  std::string secret_access_key{};
  std::string session_token{};                  // empty for long-term keys
  std::optional<Clock::WallTime> expiration{};  // nullopt: does not expire
  std::string source{};                         // "environment", "imds", ... (never secret)
};

struct AwsScope {
  std::string region{};   // "us-east-1"
  std::string service{};  // signing name: "autoscaling", "sts"
};

// The request as signed: method, the raw (still percent-encoded) path and
// query, the headers in order (repeats allowed) and the body.
struct SigV4Input {
  std::string method{};
  std::string path = "/";
  std::string query{};  // without '?'
  kube::Headers headers{};
  std::string body{};
};

// AWS UriEncode: every byte except A-Z a-z 0-9 - _ . ~ as %XX (uppercase);
// '/' kept when `keep_slash`.
std::string AwsUriEncode(std::string_view s, bool keep_slash = false);
// Reverses %XX (and '+' as space when `plus_is_space`); invalid escapes stay as-is.
std::string AwsUriDecode(std::string_view s, bool plus_is_space = false);

// Lowercase hex of SHA-256(data).
std::string Sha256Hex(std::string_view data);

// The canonical request over `signed_headers` (lowercase names; every one
// must be present). Paths are normalized (dot segments removed, repeated
// slashes collapsed) as for every service but S3.
std::string CanonicalRequest(const SigV4Input& in, const std::vector<std::string>& signed_headers);
// Every header name of `in`, lowercase, sorted, unique.
std::vector<std::string> AllHeaderNames(const SigV4Input& in);

// amz_date: "20150830T123600Z".
std::string StringToSign(std::string_view amz_date, const AwsScope& scope,
                         std::string_view canonical_request);
// The raw 32-byte signing key for the date (first 8 chars of amz_date).
std::string SigningKey(std::string_view secret_access_key, std::string_view date,
                       const AwsScope& scope);
std::string SignatureHex(std::string_view signing_key, std::string_view string_to_sign);
std::string AuthorizationHeader(std::string_view access_key_id, std::string_view amz_date,
                                const AwsScope& scope,
                                const std::vector<std::string>& signed_headers,
                                std::string_view signature_hex);

// The Authorization header for `in` signed over `signed_headers`; `in` must
// already carry X-Amz-Date.
Result<std::string> SignSigV4(const SigV4Input& in, const std::vector<std::string>& signed_headers,
                              const AwsCredentials& creds, const AwsScope& scope);

// "20150830T123600Z"
std::string FormatAmzDate(Clock::WallTime t);

// Adds Host, X-Amz-Date, X-Amz-Security-Token and Authorization to `req`.
Status SignAwsRequest(kube::HttpRequest& req, const AwsCredentials& creds, const AwsScope& scope,
                      Clock::WallTime now);

// Splits an absolute URL into host[:port], path and query for signing.
struct UrlParts {
  std::string scheme, authority, path, query{};
};
Result<UrlParts> SplitUrl(std::string_view url);

}  // namespace gpu_autoscaler::cloud
