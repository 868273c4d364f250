#include "cloud/cloud_http.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <ctime>

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "kube/resource.h"

namespace gpu_autoscaler::cloud {

using namespace std::chrono_literals;

Sleeper ClockSleeper(Clock& clock) {
  return [&clock](Clock::Duration d) {
    std::mutex mu;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lock(mu);
    Clock::TimePoint deadline = clock.Now() + d;
    while (clock.Now() < deadline)
      clock.WaitUntil(lock, cv, deadline);
  };
}

ProviderErrorKind KindForHttpStatus(int status) {
  switch (status) {
    case 401:
    case 403:
      return ProviderErrorKind::kAuth;
    case 404:
      return ProviderErrorKind::kNotFound;
    case 400:
    case 422:
      return ProviderErrorKind::kInvalid;
    case 412:
      return ProviderErrorKind::kConflict;  // an If-Match precondition failed
    case 429:
      return ProviderErrorKind::kThrottled;
    default:
      return ProviderErrorKind::kUnavailable;
  }
}

std::optional<Clock::WallTime> ParseHttpDate(std::string_view text) {
  // "Mon, 19 Sep 2016 18:29:47 GMT": fixed layout, English names.
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text[3] != ',' || text.substr(25) != " GMT") return std::nullopt;
  auto number = [&](size_t pos, size_t len, int* out) {
    std::string_view part = text.substr(pos, len);
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), *out);
    return ec == std::errc() && end == part.data() + part.size();
  };
  std::tm tm{};
  int day = 0, year = 0, hour = 0, minute = 0, second = 0;
  if (!number(5, 2, &day) || !number(12, 4, &year) || !number(17, 2, &hour) ||
      !number(20, 2, &minute) || !number(23, 2, &second) || text[19] != ':' || text[22] != ':') {
    return std::nullopt;
  }
  int month = -1;
  for (int i = 0; i < 12; ++i) {
    if (text.substr(8, 3) == kMonths[i]) month = i;
  }
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 || year < 1970 ||
      year > 2200) {  // the system clock's nanoseconds end in 2262
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  time_t t = timegm(&tm);
  if (t < 0) return std::nullopt;
  return Clock::WallTime(std::chrono::seconds(t));
}

std::optional<Clock::Duration> ParseRetryAfter(std::string_view value, Clock::WallTime now) {
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return std::chrono::seconds(std::min<int64_t>(seconds, 86'400));
  }
  auto date = ParseHttpDate(value);
  if (!date) return std::nullopt;
  if (*date <= now) return Clock::Duration(0);
  return std::chrono::duration_cast<Clock::Duration>(*date - now);
}

CloudHttp::CloudHttp(std::shared_ptr<kube::HttpTransport> transport, Clock& clock, Sleeper sleeper,
                     RetryPolicy policy, HttpErrorClassifier classify,
                     std::chrono::milliseconds timeout)
    : transport_(std::move(transport)),
      clock_(clock),
      sleeper_(std::move(sleeper)),
      policy_(policy),
      classify_(std::move(classify)),
      timeout_(timeout) {}

Result<kube::HttpResponse> CloudHttp::Do(kube::HttpRequest req, std::string_view what) {
  if (req.timeout.count() == 0) req.timeout = timeout_;
  Clock::Duration backoff = policy_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    auto resp = transport_->Do(req);
    if (!resp.ok()) {
      // The URL names no secret; the transport's message says what failed.
      return ProviderError(ProviderErrorKind::kUnavailable,
                           std::string(what) + ": " + resp.error().message());
    }
    if (resp->status >= 200 && resp->status < 400) return std::move(resp).value();
    CloudError err = classify_(*resp);
    if (err.kind == ProviderErrorKind::kNone) err.kind = KindForHttpStatus(resp->status);
    std::string message = std::string(what) + ": HTTP " + std::to_string(resp->status);
    if (!err.code.empty()) message += " " + err.code;
    if (!err.message.empty()) message += ": " + err.message;
    // 429 is "not now" even when the code says it is not throttling
    // (Azure's RetryableErrorDueToAnotherOperation).
    bool retryable =
        err.kind == ProviderErrorKind::kThrottled || resp->status == 429 || resp->status >= 500;
    if (!retryable || attempt >= policy_.max_attempts) {
      if (retryable) message += " (after " + std::to_string(attempt) + " attempts)";
      return ProviderError(err.kind, message);
    }
    Clock::Duration delay = backoff;
    if (auto after = ParseRetryAfter(resp->Header("Retry-After"), clock_.WallNow())) {
      delay = *after;
    }
    if (delay > policy_.max_backoff) {
      return ProviderError(err.kind, message + " (Retry-After too long to wait)");
    }
    sleeper_(delay);
    backoff = std::min(backoff * 2, policy_.max_backoff);
  }
}

Status CloudHttp::PollUntilDone(const std::function<Result<std::optional<Clock::Duration>>()>& poll,
                                Clock::Duration interval, Clock::Duration limit,
                                std::string_view what) {
  Clock::TimePoint deadline = clock_.Now() + limit;
  for (;;) {
    GPU_ASSIGN_OR_RETURN(std::optional<Clock::Duration> next, poll());
    if (!next) return Status::Ok();
    if (clock_.Now() >= deadline) {
      return ProviderError(ProviderErrorKind::kUnavailable,
                           std::string(what) + ": still running after the polling limit");
    }
    Clock::Duration delay = next->count() > 0 ? *next : interval;
    sleeper_(std::min(delay, std::max<Clock::Duration>(deadline - clock_.Now(), 0s)));
  }
}

Result<std::shared_ptr<kube::HttpTransport>> NewCloudTransport(const std::string& endpoint,
                                                               const std::string& ca_pem) {
  kube::ClientConfig cfg;
  cfg.server = endpoint;
  cfg.ca_pem = ca_pem;
  auto transport = kube::NewCurlTransport(cfg);
  if (!transport.ok()) return InvalidArgumentError(transport.error().message());
  return std::shared_ptr<kube::HttpTransport>(std::move(transport).value());
}

Result<TokenGrant> ParseTokenResponse(std::string_view body) {
  try {
    auto doc = nlohmann::json::parse(body);
    if (!doc.is_object()) return InvalidArgumentError("token response is not a JSON object");
    auto token = doc.find("access_token");
    if (token == doc.end() || !token->is_string() || token->get<std::string>().empty()) {
      return InvalidArgumentError("token response has no access_token");
    }
    TokenGrant grant;
    grant.access_token = token->get<std::string>();
    int64_t seconds = 3600;  // the documented default when a server omits it
    if (auto it = doc.find("expires_in"); it != doc.end()) {
      if (it->is_number_integer()) {
        seconds = it->get<int64_t>();
      } else if (it->is_string()) {
        // Azure IMDS sends numbers as strings.
        const std::string& s = it->get_ref<const std::string&>();
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), seconds);
        if (ec != std::errc() || end != s.data() + s.size()) {
          return InvalidArgumentError("token response: expires_in is not a number");
        }
      } else {
        return InvalidArgumentError("token response: expires_in is not a number");
      }
    }
    if (seconds <= 0 || seconds > 86'400 * 2) {
      return InvalidArgumentError("token response: expires_in out of range");
    }
    grant.expires_in = std::chrono::seconds(seconds);
    return grant;
  } catch (const nlohmann::json::exception&) {
    return InvalidArgumentError("token response is not JSON");
  }
}

Result<TokenGrant> FetchToken(kube::HttpTransport& transport, kube::HttpRequest req,
                              std::string_view what) {
  if (req.timeout.count() == 0) req.timeout = 30s;
  auto resp = transport.Do(req);
  if (!resp.ok()) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         std::string(what) + ": " + resp.error().message());
  }
  if (resp->status != 200) {
    // OAuth errors: {"error": "invalid_grant", "error_description": ...}. Only
    // the code is kept; descriptions may quote the request.
    std::string code;
    try {
      auto doc = nlohmann::json::parse(resp->body);
      if (doc.is_object() && doc.contains("error") && doc["error"].is_string()) {
        code = doc["error"].get<std::string>();
      }
    } catch (const nlohmann::json::exception&) {
    }
    ProviderErrorKind kind = KindForHttpStatus(resp->status);
    if (resp->status == 400) kind = ProviderErrorKind::kAuth;
    std::string message = std::string(what) + ": HTTP " + std::to_string(resp->status);
    if (!code.empty() && code.size() < 64) message += " " + code;
    return ProviderError(kind, message);
  }
  auto grant = ParseTokenResponse(resp->body);
  if (!grant.ok()) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         std::string(what) + ": " + grant.error().message());
  }
  return grant;
}

Result<std::string> CachedAccessToken::Get(const std::function<Result<TokenGrant>()>& fetch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!token_.empty() && clock_.Now() < refresh_at_) return token_;
  GPU_ASSIGN_OR_RETURN(TokenGrant grant, fetch());
  Clock::Duration margin = std::min<Clock::Duration>(5min, grant.expires_in / 2);
  token_ = std::move(grant.access_token);
  refresh_at_ = clock_.Now() + grant.expires_in - margin;
  return token_;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    out += kube::UrlEncode(name);
    out += '=';
    out += kube::UrlEncode(value);
  }
  return out;
}

}  // namespace gpu_autoscaler::cloud
