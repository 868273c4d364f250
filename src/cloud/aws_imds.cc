#include "cloud/aws_imds.h"

#include <algorithm>

namespace gpu_autoscaler::cloud {

ImdsClient::ImdsClient(std::shared_ptr<kube::HttpTransport> transport, ImdsOptions options)
    : transport_(std::move(transport)), options_(std::move(options)) {
  while (options_.endpoint.ends_with('/'))
    options_.endpoint.pop_back();
}

int ImdsClient::tokens_fetched() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_fetched_;
}

Result<kube::HttpResponse> ImdsClient::Send(kube::HttpRequest req) {
  req.timeout = options_.timeout;
  auto resp = transport_->Do(req);
  if (!resp.ok()) {
    return ProviderError(
        ProviderErrorKind::kUnavailable,
        "instance metadata " + req.method + " " + req.url + ": " + resp.error().message());
  }
  return std::move(resp).value();
}

Result<std::string> ImdsClient::Token(bool force_new) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!force_new && !token_.empty() && options_.clock->Now() < token_refresh_at_) return token_;
  kube::HttpRequest req{.method = "PUT", .url = options_.endpoint + "/latest/api/token"};
  req.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds",
                           std::to_string(options_.token_ttl.count()));
  Clock::TimePoint asked = options_.clock->Now();
  GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp, Send(std::move(req)));
  if (resp.status == 403) {
    return ProviderError(ProviderErrorKind::kAuth,
                         "instance metadata refused a session token (403): IMDS may be disabled");
  }
  if (resp.status != 200 || resp.body.empty()) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         "instance metadata token: HTTP " + std::to_string(resp.status));
  }
  token_ = resp.body;
  ++tokens_fetched_;
  // The server may grant a shorter TTL than asked; it echoes the TTL header.
  std::chrono::seconds ttl = options_.token_ttl;
  if (std::string echoed = resp.Header("X-aws-ec2-metadata-token-ttl-seconds"); !echoed.empty()) {
    long v = std::strtol(echoed.c_str(), nullptr, 10);
    if (v > 0) ttl = std::min(ttl, std::chrono::seconds(v));
  }
  token_refresh_at_ = asked + ttl - std::min(options_.refresh_before, ttl / 2);
  return token_;
}

Result<std::optional<std::string>> ImdsClient::Get(const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    GPU_ASSIGN_OR_RETURN(std::string token, Token(/*force_new=*/attempt > 0));
    kube::HttpRequest req{.method = "GET", .url = options_.endpoint + path};
    req.headers.emplace_back("X-aws-ec2-metadata-token", token);
    GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp, Send(std::move(req)));
    if (resp.status == 200) return std::optional<std::string>(std::move(resp.body));
    if (resp.status == 404) return std::optional<std::string>();
    if (resp.status == 401) continue;  // token expired or revoked: fetch a new one once
    if (resp.status == 403) {
      return ProviderError(ProviderErrorKind::kAuth, "instance metadata GET " + path + ": 403");
    }
    return ProviderError(ProviderErrorKind::kUnavailable,
                         "instance metadata GET " + path + ": HTTP " + std::to_string(resp.status));
  }
  return ProviderError(ProviderErrorKind::kAuth,
                       "instance metadata GET " + path + ": 401 even with a fresh token");
}

}  // namespace gpu_autoscaler::cloud
