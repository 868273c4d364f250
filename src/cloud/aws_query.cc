#include "cloud/aws_query.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <random>
#include <thread>

namespace gpu_autoscaler::cloud {
namespace {

bool ContainsNoCase(std::string_view haystack, std::string_view needle) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [&](char a, char b) { return lower(a) == lower(b); });
  return it != haystack.end();
}

template <size_t N>
bool OneOf(std::string_view code, const std::array<std::string_view, N>& codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

// botocore's standard retry mode throttling codes, plus the Auto Scaling
// codes that mean "busy, try again".
constexpr std::array<std::string_view, 17> kThrottleCodes = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "ResourceContention",
    "ScalingActivityInProgress",
    "IDPCommunicationError",
};

// EC2 launch failures that mean "no capacity for this offering now"
// (Karpenter marks the offering unavailable on these).
constexpr std::array<std::string_view, 8> kCapacityCodes = {
    "InsufficientInstanceCapacity", "InsufficientCapacity",
    "InsufficientHostCapacity",     "InsufficientReservedInstanceCapacity",
    "ReservationCapacityExceeded",  "UnfulfillableCapacity",
    "SpotMaxPriceTooLow",           "InsufficientFreeAddressesInSubnet",
};

constexpr std::array<std::string_view, 5> kQuotaCodes = {
    "LimitExceeded",
    "VcpuLimitExceeded",
    "MaxSpotInstanceCountExceeded",
    "InstanceLimitExceeded",
    "ServiceQuotaExceededException",
};

constexpr std::array<std::string_view, 16> kAuthCodes = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "AuthFailure",
    "InvalidIdentityToken",
    "IDPRejectedClaim",
    "RequestExpired",
    "UnauthorizedOperation",
    "OptInRequired",
    "InvalidAccessKeyId",
};

constexpr std::array<std::string_view, 6> kUnavailableCodes = {
    "InternalFailure", "InternalError",  "ServiceUnavailable",
    "Unavailable",     "RequestTimeout", "RequestTimeoutException",
};

bool IsExpiredToken(std::string_view code) {
  return code == "ExpiredToken" || code == "ExpiredTokenException" || code == "RequestExpired";
}

std::string Redact(std::string text, const AwsCredentials& creds) {
  for (const std::string* secret : {&creds.secret_access_key, &creds.session_token}) {
    if (secret->empty()) continue;
    for (size_t at = text.find(*secret); at != std::string::npos; at = text.find(*secret, at))
      text.replace(at, secret->size(), "[redacted]");
  }
  return text;
}

bool Retryable(ProviderErrorKind k) {
  return k == ProviderErrorKind::kThrottled || k == ProviderErrorKind::kUnavailable;
}

std::string Truncate(std::string_view s, size_t n) {
  return s.size() <= n ? std::string(s) : std::string(s.substr(0, n)) + "...";
}

}  // namespace

std::optional<AwsErrorInfo> ParseAwsError(int http_status, std::string_view body) {
  auto doc = ParseXml(body);
  if (!doc.ok()) return std::nullopt;
  const XmlElement* err = nullptr;
  std::string request_id;
  if (doc->name == "ErrorResponse") {
    err = doc->Child("Error");
    request_id = doc->ChildText("RequestId");
  } else if (doc->name == "Response") {  // EC2 style
    err = doc->Find("Errors/Error");
    request_id = doc->ChildText("RequestID");
  } else if (doc->name == "Error") {
    err = &doc.value();
  }
  if (err == nullptr || err->ChildText("Code").empty()) return std::nullopt;
  AwsErrorInfo info{http_status, err->ChildText("Code"), err->ChildText("Message"), request_id};
  return info;
}

ProviderErrorKind ClassifyAwsError(int http_status, std::string_view code,
                                   std::string_view message) {
  if (OneOf(code, kThrottleCodes)) return ProviderErrorKind::kThrottled;
  if (OneOf(code, kCapacityCodes)) return ProviderErrorKind::kInsufficientCapacity;
  if (OneOf(code, kQuotaCodes)) return ProviderErrorKind::kQuotaExceeded;
  if (OneOf(code, kAuthCodes)) return ProviderErrorKind::kAuth;
  if (OneOf(code, kUnavailableCodes)) return ProviderErrorKind::kUnavailable;
  if (code == "ValidationError") {
    // "AutoScalingGroup name not found - ...", "Instance Id not found - ...".
    return ContainsNoCase(message, "not found") ? ProviderErrorKind::kNotFound
                                                : ProviderErrorKind::kInvalid;
  }
  if (http_status >= 500) return ProviderErrorKind::kUnavailable;
  if (http_status == 429) return ProviderErrorKind::kThrottled;
  if (http_status == 401 || http_status == 403) return ProviderErrorKind::kAuth;
  if (http_status == 404) return ProviderErrorKind::kNotFound;
  return ProviderErrorKind::kInvalid;
}

ProviderErrorKind ClassifyLaunchFailureMessage(std::string_view status_message) {
  for (std::string_view c : kCapacityCodes)
    if (status_message.find(c) != std::string_view::npos)
      return ProviderErrorKind::kInsufficientCapacity;
  for (std::string_view c : kQuotaCodes)
    if (status_message.find(c) != std::string_view::npos) return ProviderErrorKind::kQuotaExceeded;
  // The prose form of the same failures in activity messages.
  if (ContainsNoCase(status_message, "insufficient capacity") ||
      ContainsNoCase(status_message, "not have sufficient") ||
      ContainsNoCase(status_message, "capacity-not-available"))
    return ProviderErrorKind::kInsufficientCapacity;
  if (ContainsNoCase(status_message, "limit exceeded") ||
      ContainsNoCase(status_message, "exceeded your") || ContainsNoCase(status_message, "quota"))
    return ProviderErrorKind::kQuotaExceeded;
  return ProviderErrorKind::kNone;
}

std::string AwsFormEncode(const QueryParams& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += AwsUriEncode(k) + "=" + AwsUriEncode(v);
  }
  return out;
}

QueryParams FormDecode(std::string_view body) {
  QueryParams out;
  size_t start = 0;
  while (start < body.size()) {
    size_t amp = body.find('&', start);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view kv = body.substr(start, amp - start);
    if (!kv.empty()) {
      size_t eq = kv.find('=');
      out.emplace_back(AwsUriDecode(kv.substr(0, eq), true),
                       eq == std::string_view::npos ? "" : AwsUriDecode(kv.substr(eq + 1), true));
    }
    start = amp + 1;
  }
  return out;
}

std::chrono::milliseconds BackoffDelay(const AwsRetryPolicy& policy, int retry, double jitter01) {
  double cap = double(policy.base_delay.count());
  for (int i = 1; i < retry && cap < double(policy.max_delay.count()); ++i)
    cap *= 2;
  cap = std::min(cap, double(policy.max_delay.count()));
  jitter01 = std::clamp(jitter01, 0.0, 1.0);
  return std::chrono::milliseconds(int64_t(cap * jitter01));
}

AwsQueryClient::AwsQueryClient(std::shared_ptr<kube::HttpTransport> transport,
                               AwsQueryOptions options,
                               std::shared_ptr<AwsCredentialsProvider> credentials)
    : transport_(std::move(transport)),
      options_(std::move(options)),
      credentials_(std::move(credentials)) {
  while (options_.endpoint.ends_with('/'))
    options_.endpoint.pop_back();
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }
  if (!options_.jitter) {
    auto state = std::make_shared<std::pair<std::mutex, std::mt19937_64>>();
    state->second.seed(std::random_device{}());
    options_.jitter = [state] {
      std::lock_guard<std::mutex> lock(state->first);
      return std::uniform_real_distribution<double>(0.0, 1.0)(state->second);
    };
  }
  options_.retry.max_attempts = std::max(1, options_.retry.max_attempts);
}

Result<XmlElement> AwsQueryClient::Attempt(const std::string& action, const std::string& body,
                                           AwsCredentials* used, std::string* aws_code) {
  kube::HttpRequest req{.method = "POST", .url = options_.endpoint + "/"};
  req.headers.emplace_back("Content-Type", std::string(kAwsFormContentType));
  req.body = body;
  req.timeout = options_.timeout;
  if (credentials_) {
    GPU_ASSIGN_OR_RETURN(*used, credentials_->Get());
    GPU_RETURN_IF_ERROR(SignAwsRequest(req, *used, options_.scope, options_.clock->WallNow()));
  }
  auto resp = transport_->Do(req);
  if (!resp.ok()) {
    const kube::Error& e = resp.error();
    std::string why = e.kind() == kube::Error::Kind::kTimeout
                          ? "no answer within " + std::to_string(options_.timeout.count()) + "ms"
                          : e.message();
    return ProviderError(ProviderErrorKind::kUnavailable, action + ": " + why);
  }
  if (resp->status >= 200 && resp->status < 300) {
    auto doc = ParseXml(resp->body);
    if (!doc.ok()) {
      return ProviderError(ProviderErrorKind::kUnavailable,
                           action + ": malformed response: " + doc.error().message());
    }
    return std::move(doc).value();
  }
  std::optional<AwsErrorInfo> err = ParseAwsError(resp->status, resp->body);
  if (!err) {
    ProviderErrorKind kind = ClassifyAwsError(resp->status, "");
    return ProviderError(kind, action + ": HTTP " + std::to_string(resp->status) + ": " +
                                   Redact(Truncate(resp->body, 200), *used));
  }
  *aws_code = err->code;
  ProviderErrorKind kind = ClassifyAwsError(err->http_status, err->code, err->message);
  std::string msg = action + ": " + err->code + " (HTTP " + std::to_string(err->http_status) +
                    "): " + Redact(err->message, *used);
  if (!err->request_id.empty()) msg += " (request " + err->request_id + ")";
  Status st = ProviderError(kind, msg);
  if (IsExpiredToken(err->code) && credentials_) credentials_->Invalidate();
  return st;
}

Result<XmlElement> AwsQueryClient::Call(const std::string& action, const QueryParams& params) {
  QueryParams all{{"Action", action}, {"Version", options_.version}};
  all.insert(all.end(), params.begin(), params.end());
  std::string body = AwsFormEncode(all);
  bool refreshed_credentials = false;
  for (int attempt = 1;; ++attempt) {
    AwsCredentials used;
    std::string aws_code;
    auto result = Attempt(action, body, &used, &aws_code);
    if (result.ok()) return result;
    Status st = result.error();
    ProviderErrorKind kind = ClassifyProviderError(st);
    // An expired session token: one more try with fresh credentials.
    if (IsExpiredToken(aws_code) && !refreshed_credentials && credentials_) {
      refreshed_credentials = true;
      continue;
    }
    if (!Retryable(kind) || attempt >= options_.retry.max_attempts) {
      if (attempt > 1) return st.WithContext("after " + std::to_string(attempt) + " attempts");
      return st;
    }
    std::chrono::milliseconds delay = BackoffDelay(options_.retry, attempt, options_.jitter());
    spdlog::warn("{}: {} failed ({}), attempt {} of {}, retrying in {}ms", options_.log_name,
                 action, st.message(), attempt, options_.retry.max_attempts, delay.count());
    options_.sleep(delay);
  }
}

}  // namespace gpu_autoscaler::cloud
