#include "cloud/gcp_interruption.h"

#include <cctype>

namespace gpu_autoscaler::cloud {

using namespace std::chrono_literals;

std::optional<bool> ParseGcpPreempted(std::string_view body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) {
    body.remove_suffix(1);
  }
  while (!body.empty() && (body.front() == ' ' || body.front() == '\n'))
    body.remove_prefix(1);
  if (body == "TRUE") return true;
  if (body == "FALSE") return false;
  return std::nullopt;
}

GcpPreemptionSource::GcpPreemptionSource(GcpPreemptionOptions options,
                                         std::shared_ptr<kube::HttpTransport> transport,
                                         Clock& clock)
    : options_(std::move(options)), transport_(std::move(transport)), clock_(clock) {}

Result<std::optional<InterruptionNotice>> GcpPreemptionSource::Poll() {
  kube::HttpRequest req;
  req.method = "GET";
  req.url = options_.metadata_endpoint + "/computeMetadata/v1/instance/preempted";
  req.headers = {{"Metadata-Flavor", "Google"}};
  req.timeout = 5s;
  if (options_.wait_for_change) {
    req.url += "?wait_for_change=true&timeout_sec=" + std::to_string(options_.wait_timeout_sec);
    if (!etag_.empty()) req.url += "&last_etag=" + etag_;
    req.timeout = std::chrono::seconds(options_.wait_timeout_sec) + 10s;
  }
  auto resp = transport_->Do(req);
  if (!resp.ok()) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         "gcp preempted metadata: " + resp.error().message());
  }
  if (resp->status != 200) {
    // 503 during host maintenance: try again on the next poll.
    return ProviderError(KindForHttpStatus(resp->status),
                         "gcp preempted metadata: HTTP " + std::to_string(resp->status));
  }
  std::string etag = resp->Header("ETag");
  // An ETag goes back into a URL: keep it to the characters GCE uses.
  bool safe = etag.size() <= 64;
  for (char c : etag)
    safe = safe && std::isalnum(static_cast<unsigned char>(c));
  etag_ = safe ? etag : "";
  auto preempted = ParseGcpPreempted(resp->body);
  if (!preempted) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         "gcp preempted metadata: expected TRUE or FALSE");
  }
  if (!*preempted) return std::optional<InterruptionNotice>();
  InterruptionNotice notice;
  notice.kind = InterruptionNotice::Kind::kPreempted;
  notice.not_after_unix =
      std::chrono::duration_cast<std::chrono::seconds>((clock_.WallNow() + 30s).time_since_epoch())
          .count();
  notice.detail = "instance/preempted=TRUE";
  return std::optional<InterruptionNotice>(notice);
}

}  // namespace gpu_autoscaler::cloud
