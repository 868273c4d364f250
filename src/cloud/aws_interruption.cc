#include "cloud/aws_interruption.h"

#include <nlohmann/json.hpp>

#include "kube/meta_time.h"

namespace gpu_autoscaler::cloud {
namespace {

constexpr char kInstanceActionPath[] = "/latest/meta-data/spot/instance-action";
constexpr char kRebalancePath[] = "/latest/meta-data/events/recommendations/rebalance";

Status Bad(std::string_view path, std::string_view why) {
  return ProviderError(ProviderErrorKind::kUnavailable,
                       std::string(path) + ": " + std::string(why));
}

Result<int64_t> UnixTime(std::string_view path, const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_string()) return Bad(path, std::string("no \"") + key + "\"");
  auto t = kube::ParseRfc3339(it->get<std::string>());
  if (!t.ok()) return Bad(path, std::string("\"") + key + "\" is not an RFC 3339 time");
  return int64_t(std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count());
}

Result<nlohmann::json> Object(std::string_view path, std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return Bad(path, "not a JSON object");
  return doc;
}

}  // namespace

Result<InterruptionNotice> ParseSpotInstanceAction(std::string_view json_text) {
  GPU_ASSIGN_OR_RETURN(nlohmann::json doc, Object(kInstanceActionPath, json_text));
  auto action = doc.find("action");
  if (action == doc.end() || !action->is_string()) return Bad(kInstanceActionPath, "no \"action\"");
  std::string a = action->get<std::string>();
  if (a != "terminate" && a != "stop" && a != "hibernate")
    return Bad(kInstanceActionPath, "unknown action \"" + a + "\"");
  InterruptionNotice n;
  n.kind = InterruptionNotice::Kind::kSpotInterruption;
  n.detail = a;
  GPU_ASSIGN_OR_RETURN(n.not_after_unix, UnixTime(kInstanceActionPath, doc, "time"));
  return n;
}

Result<InterruptionNotice> ParseRebalanceRecommendation(std::string_view json_text) {
  GPU_ASSIGN_OR_RETURN(nlohmann::json doc, Object(kRebalancePath, json_text));
  InterruptionNotice n;
  n.kind = InterruptionNotice::Kind::kRebalanceRecommendation;
  n.detail = "rebalance";
  // noticeTime is when AWS issued it, not a deadline: the instance may run on.
  GPU_ASSIGN_OR_RETURN(int64_t issued, UnixTime(kRebalancePath, doc, "noticeTime"));
  (void)issued;
  n.not_after_unix = 0;
  return n;
}

AwsInterruptionSource::AwsInterruptionSource(std::shared_ptr<kube::HttpTransport> transport,
                                             ImdsOptions options)
    : imds_(std::move(transport), std::move(options)) {}

Result<std::optional<InterruptionNotice>> AwsInterruptionSource::Poll() {
  GPU_ASSIGN_OR_RETURN(std::optional<std::string> action, imds_.Get(kInstanceActionPath));
  if (action) {
    GPU_ASSIGN_OR_RETURN(InterruptionNotice n, ParseSpotInstanceAction(*action));
    return std::optional<InterruptionNotice>(std::move(n));
  }
  GPU_ASSIGN_OR_RETURN(std::optional<std::string> rebalance, imds_.Get(kRebalancePath));
  if (rebalance) {
    GPU_ASSIGN_OR_RETURN(InterruptionNotice n, ParseRebalanceRecommendation(*rebalance));
    return std::optional<InterruptionNotice>(std::move(n));
  }
  return std::optional<InterruptionNotice>();
}

}  // namespace gpu_autoscaler::cloud
