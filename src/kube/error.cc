#include "kube/error.h"

#include <cctype>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::kube {
namespace {

using nlohmann::json;

}  // namespace

// The reason kube-apiserver (and client-go's NewGenericServerResponse) uses
// for a bare HTTP status without a Status body.
std::string_view StatusReasonForCode(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 406:
      return "NotAcceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "RequestEntityTooLarge";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return code >= 500 ? "InternalError" : "";
  }
}

namespace {

std::string StringField(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// The body text of a non-Status error, trimmed and bounded for messages.
std::string BodySnippet(std::string_view body) {
  constexpr size_t kMax = 512;
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) {
    body.remove_suffix(1);
  }
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front()))) {
    body.remove_prefix(1);
  }
  if (body.size() <= kMax) return std::string(body);
  return std::string(body.substr(0, kMax)) + "...";
}

bool ApiReasonOrCode(const Error& e, std::string_view reason, int code) {
  if (e.kind() != Error::Kind::kApi) return false;
  if (e.reason() == reason) return true;
  // client-go falls back to the code only when the reason is unknown.
  return (e.reason().empty() || e.reason() == StatusReasonForCode(e.code())) && e.code() == code;
}

std::string_view KindName(Error::Kind kind) {
  switch (kind) {
    case Error::Kind::kApi:
      return "api error";
    case Error::Kind::kTransport:
      return "transport error";
    case Error::Kind::kTimeout:
      return "timeout";
    case Error::Kind::kDecode:
      return "decode error";
    case Error::Kind::kCancelled:
      return "cancelled";
    case Error::Kind::kConfig:
      return "config error";
  }
  return "error";
}

StatusCode CanonicalCode(const Error& e) {
  switch (e.kind()) {
    case Error::Kind::kTransport:
      return StatusCode::kUnavailable;
    case Error::Kind::kTimeout:
      return StatusCode::kDeadlineExceeded;
    case Error::Kind::kDecode:
      return StatusCode::kDataLoss;
    case Error::Kind::kCancelled:
      return StatusCode::kCancelled;
    case Error::Kind::kConfig:
      return StatusCode::kInvalidArgument;
    case Error::Kind::kApi:
      break;
  }
  if (IsNotFound(e)) return StatusCode::kNotFound;
  if (IsAlreadyExists(e)) return StatusCode::kAlreadyExists;
  if (IsConflict(e)) return StatusCode::kAborted;
  if (IsInvalid(e) || IsBadRequest(e) || IsUnsupportedMediaType(e)) {
    return StatusCode::kInvalidArgument;
  }
  if (IsGone(e)) return StatusCode::kOutOfRange;  // relist from a fresh resourceVersion
  if (IsTooManyRequests(e)) return StatusCode::kResourceExhausted;
  if (IsForbidden(e)) return StatusCode::kPermissionDenied;
  if (IsUnauthorized(e)) return StatusCode::kUnauthenticated;
  if (IsTimeout(e)) return StatusCode::kDeadlineExceeded;
  if (e.code() == 405 || e.code() == 501) return StatusCode::kUnimplemented;
  if (e.code() == 503) return StatusCode::kUnavailable;
  return StatusCode::kInternal;
}

}  // namespace

Error Error::FromStatusJson(int http_code, const json& status) {
  if (!status.is_object()) {
    return Error(Kind::kApi, http_code, std::string(StatusReasonForCode(http_code)), status.dump());
  }
  int code = http_code;
  if (auto it = status.find("code"); it != status.end() && it->is_number_integer()) {
    int64_t c = it->get<int64_t>();
    if (c > 0 && c < 1000) code = static_cast<int>(c);
  }
  if (http_code != 0) code = http_code;  // the HTTP status is authoritative
  std::string reason = StringField(status, "reason");
  if (reason.empty()) reason = std::string(StatusReasonForCode(code));
  std::string message = StringField(status, "message");
  Error err(Kind::kApi, code, std::move(reason), std::move(message));
  if (auto d = status.find("details"); d != status.end() && d->is_object()) {
    StatusDetails& details = err.details_;
    details.present = true;
    details.name = StringField(*d, "name");
    details.group = StringField(*d, "group");
    details.kind = StringField(*d, "kind");
    details.uid = StringField(*d, "uid");
    if (auto r = d->find("retryAfterSeconds"); r != d->end() && r->is_number_integer()) {
      int64_t s = r->get<int64_t>();
      if (s > 0 && s < 86'400) details.retry_after_seconds = static_cast<int>(s);
    }
    if (auto c = d->find("causes"); c != d->end() && c->is_array()) {
      for (const json& cause : *c) {
        if (!cause.is_object()) continue;
        details.causes.push_back({StringField(cause, "reason"), StringField(cause, "message"),
                                  StringField(cause, "field")});
      }
    }
  }
  if (auto m = status.find("metadata"); m != status.end() && m->is_object()) {
    err.list_continue_ = StringField(*m, "continue");
  }
  return err;
}

Error Error::FromResponse(int http_code, std::string_view body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && StringField(parsed, "kind") == "Status") {
    return FromStatusJson(http_code, parsed);
  }
  std::string message = BodySnippet(body);
  if (message.empty()) message = "the server responded with HTTP " + std::to_string(http_code);
  return Error(Kind::kApi, http_code, std::string(StatusReasonForCode(http_code)),
               std::move(message));
}

std::optional<std::chrono::seconds> Error::retry_after() const {
  if (details_.retry_after_seconds <= 0) return std::nullopt;
  return std::chrono::seconds(details_.retry_after_seconds);
}

std::string Error::ToString() const {
  std::string out;
  if (!reason_.empty()) {
    out = reason_;
  } else {
    out = KindName(kind_);
  }
  if (code_ != 0) out += " (" + std::to_string(code_) + ")";
  if (!message_.empty()) out += ": " + message_;
  return out;
}

Status Error::ToStatus() const {
  return Status(CanonicalCode(*this), ToString());
}

json Error::ToStatusJson() const {
  json out = json::object();
  out["kind"] = "Status";
  out["apiVersion"] = "v1";
  json metadata = json::object();
  if (!list_continue_.empty()) metadata["continue"] = list_continue_;
  out["metadata"] = std::move(metadata);
  out["status"] = "Failure";
  if (!message_.empty()) out["message"] = message_;
  if (!reason_.empty()) out["reason"] = reason_;
  if (details_.present || !details_.empty()) {
    json d = json::object();
    if (!details_.name.empty()) d["name"] = details_.name;
    if (!details_.group.empty()) d["group"] = details_.group;
    if (!details_.kind.empty()) d["kind"] = details_.kind;
    if (!details_.uid.empty()) d["uid"] = details_.uid;
    if (!details_.causes.empty()) {
      json causes = json::array();
      for (const StatusCause& c : details_.causes) {
        json cause = json::object();
        if (!c.reason.empty()) cause["reason"] = c.reason;
        if (!c.message.empty()) cause["message"] = c.message;
        if (!c.field.empty()) cause["field"] = c.field;
        causes.push_back(std::move(cause));
      }
      d["causes"] = std::move(causes);
    }
    if (details_.retry_after_seconds > 0) d["retryAfterSeconds"] = details_.retry_after_seconds;
    out["details"] = std::move(d);
  }
  if (code_ != 0) out["code"] = code_;
  return out;
}

bool IsNotFound(const Error& e) {
  return ApiReasonOrCode(e, "NotFound", 404);
}
bool IsAlreadyExists(const Error& e) {
  return e.kind() == Error::Kind::kApi && e.reason() == "AlreadyExists";
}
bool IsConflict(const Error& e) {
  return ApiReasonOrCode(e, "Conflict", 409);
}
bool IsInvalid(const Error& e) {
  return ApiReasonOrCode(e, "Invalid", 422);
}
bool IsBadRequest(const Error& e) {
  return ApiReasonOrCode(e, "BadRequest", 400);
}
bool IsGone(const Error& e) {
  return e.kind() == Error::Kind::kApi &&
         (e.code() == 410 || e.reason() == "Gone" || e.reason() == "Expired");
}
bool IsResourceExpired(const Error& e) {
  return e.kind() == Error::Kind::kApi && e.reason() == "Expired";
}
bool IsTooManyRequests(const Error& e) {
  return ApiReasonOrCode(e, "TooManyRequests", 429);
}
bool IsForbidden(const Error& e) {
  return ApiReasonOrCode(e, "Forbidden", 403);
}
bool IsUnauthorized(const Error& e) {
  return ApiReasonOrCode(e, "Unauthorized", 401);
}
bool IsTimeout(const Error& e) {
  if (e.kind() == Error::Kind::kTimeout) return true;
  if (e.kind() != Error::Kind::kApi) return false;
  return e.code() == 504 || e.reason() == "Timeout" || e.reason() == "ServerTimeout";
}
bool IsServerError(const Error& e) {
  return e.kind() == Error::Kind::kApi && e.code() >= 500 && e.code() < 600;
}
bool IsUnsupportedMediaType(const Error& e) {
  return ApiReasonOrCode(e, "UnsupportedMediaType", 415);
}
bool IsTransport(const Error& e) {
  return e.kind() == Error::Kind::kTransport;
}
bool IsCancelled(const Error& e) {
  return e.kind() == Error::Kind::kCancelled;
}

}  // namespace gpu_autoscaler::kube
