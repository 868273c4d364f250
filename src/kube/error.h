// File: src/kube/error.h
//
// The error value of every kube client call: a Kubernetes `metav1.Status`
// (reason, code, message, details.causes) or a transport failure, never an
// exception.
//
//   auto pod = client.Get(PodRef("ns", "x"));
//   if (!pod.ok() && IsNotFound(pod.error())) { ... }
//
// Thread-safety: a value type.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace gpu_autoscaler::kube {

// metav1.StatusCause
struct StatusCause {
  std::string reason{};  // e.g. "FieldValueRequired", "FieldManagerConflict"
  std::string message{};
  std::string field{};
};

// metav1.StatusDetails
struct StatusDetails {
  std::string name{};
  std::string group{};
  std::string kind{};
  std::string uid{};
  std::vector<StatusCause> causes{};
  int retry_after_seconds = 0;
  // kube-apiserver renders `"details": {}` for some errors and omits details
  // for others; this keeps an empty-but-present details object.
  bool present = false;
  bool empty() const {
    return name.empty() && group.empty() && kind.empty() && uid.empty() && causes.empty() &&
           retry_after_seconds == 0;
  }
};

class Error {
 public:
  enum class Kind {
    kApi,        // the server answered with a Status (or an unexpected HTTP code)
    kTransport,  // connection refused, TLS failure, reset, DNS...
    kTimeout,    // the client-side request timeout fired
    kDecode,     // the server's body could not be decoded
    kCancelled,  // the caller cancelled (shutdown)
    kConfig,     // bad kubeconfig or client configuration
  };

  Error() = default;
  Error(Kind kind, int http_code, std::string reason, std::string message)
      : kind_(kind), code_(http_code), reason_(std::move(reason)), message_(std::move(message)) {}

  // Parses a metav1.Status body; falls back to the HTTP code and raw body text.
  static Error FromResponse(int http_code, std::string_view body);
  static Error FromStatusJson(int http_code, const nlohmann::json& status);
  static Error Transport(std::string message) {
    return Error(Kind::kTransport, 0, "", std::move(message));
  }
  static Error Timeout(std::string message) {
    return Error(Kind::kTimeout, 0, "Timeout", std::move(message));
  }
  static Error Decode(std::string message) {
    return Error(Kind::kDecode, 0, "", std::move(message));
  }
  static Error Cancelled(std::string message) {
    return Error(Kind::kCancelled, 0, "", std::move(message));
  }
  static Error Config(std::string message) {
    return Error(Kind::kConfig, 0, "", std::move(message));
  }

  Kind kind() const { return kind_; }
  int code() const { return code_; }  // HTTP status, 0 when no response
  const std::string& reason() const { return reason_; }
  const std::string& message() const { return message_; }
  const StatusDetails& details() const { return details_; }
  StatusDetails& mutable_details() { return details_; }
  // metadata.continue of a 410 Expired Status for a stale continue token.
  const std::string& list_continue() const { return list_continue_; }
  void set_list_continue(std::string token) { list_continue_ = std::move(token); }

  // Value of a Retry-After header or details.retryAfterSeconds, if any.
  std::optional<std::chrono::seconds> retry_after() const;
  void set_retry_after(std::chrono::seconds s) { details_.retry_after_seconds = int(s.count()); }

  // "NotFound (404): pods \"x\" not found"
  std::string ToString() const;
  // Maps onto the canonical codes for callers outside src/kube.
  Status ToStatus() const;
  // Renders a metav1.Status body exactly as kube-apiserver does (kind, apiVersion,
  // metadata {}, status "Failure", message, reason, details, code). Used by the
  // embedded API server.
  nlohmann::json ToStatusJson() const;

 private:
  Kind kind_ = Kind::kApi;
  int code_ = 0;
  std::string reason_{};
  std::string message_{};
  StatusDetails details_;
  std::string list_continue_{};
};

template <typename T>
using Result = gpu_autoscaler::Result<T, Error>;

// The metav1.StatusReason kube-apiserver sends with an HTTP code ("NotFound"
// for 404, "Gone" for 410); "InternalError" for other 5xx, "" otherwise.
std::string_view StatusReasonForCode(int code);

// Predicates with client-go's meaning (k8s.io/apimachinery/pkg/api/errors).
bool IsNotFound(const Error& e);
bool IsAlreadyExists(const Error& e);
bool IsConflict(const Error& e);
bool IsInvalid(const Error& e);
bool IsBadRequest(const Error& e);
bool IsGone(const Error& e);  // 410, reason Gone or Expired: relist
bool IsResourceExpired(const Error& e);
bool IsTooManyRequests(const Error& e);
bool IsForbidden(const Error& e);
bool IsUnauthorized(const Error& e);
bool IsTimeout(const Error& e);      // client timeout, 504, or reason Timeout/ServerTimeout
bool IsServerError(const Error& e);  // 5xx
bool IsUnsupportedMediaType(const Error& e);
bool IsTransport(const Error& e);
bool IsCancelled(const Error& e);

}  // namespace gpu_autoscaler::kube
