#include "cloud/azure_interruption.h"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "kube/resource.h"

namespace gpu_autoscaler::cloud {

using json = nlohmann::json;
using namespace std::chrono_literals;

Result<AzureScheduledEvents> ParseAzureScheduledEvents(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return InvalidArgumentError("scheduled events: not a JSON object");
    AzureScheduledEvents out;
    if (auto it = doc.find("DocumentIncarnation"); it != doc.end() && it->is_number_integer()) {
      out.document_incarnation = it->get<int64_t>();
    }
    auto events = doc.find("Events");
    if (events == doc.end()) return out;
    if (!events->is_array()) return InvalidArgumentError("scheduled events: Events is not a list");
    for (const json& e : *events) {
      if (!e.is_object())
        return InvalidArgumentError("scheduled events: an event is not an object");
      auto text_field = [&](const char* key) {
        auto it = e.find(key);
        return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      AzureScheduledEvent ev;
      ev.event_id = text_field("EventId");
      ev.event_type = text_field("EventType");
      ev.event_status = text_field("EventStatus");
      ev.not_before = text_field("NotBefore");
      if (auto r = e.find("Resources"); r != e.end() && r->is_array()) {
        for (const json& name : *r) {
          if (name.is_string()) ev.resources.push_back(name.get<std::string>());
        }
      }
      if (ev.event_id.empty() || ev.event_type.empty()) {
        return InvalidArgumentError("scheduled events: an event has no EventId or EventType");
      }
      out.events.push_back(std::move(ev));
    }
    return out;
  } catch (const json::exception&) {
    return InvalidArgumentError("scheduled events: not JSON");
  }
}

AzureScheduledEventsSource::AzureScheduledEventsSource(
    AzureScheduledEventsOptions options, std::shared_ptr<kube::HttpTransport> transport,
    Clock& clock)
    : options_(std::move(options)), transport_(std::move(transport)), clock_(clock) {}

Result<std::optional<InterruptionNotice>> AzureScheduledEventsSource::Poll() {
  kube::HttpRequest req;
  req.method = "GET";
  req.url = options_.imds_endpoint +
            "/metadata/scheduledevents?api-version=" + kube::UrlEncode(options_.api_version);
  req.headers = {{"Metadata", "true"}};
  req.timeout = 5s;
  auto resp = transport_->Do(req);
  if (!resp.ok()) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         "azure scheduled events: " + resp.error().message());
  }
  if (resp->status != 200) {
    return ProviderError(KindForHttpStatus(resp->status),
                         "azure scheduled events: HTTP " + std::to_string(resp->status));
  }
  auto doc = ParseAzureScheduledEvents(resp->body);
  if (!doc.ok()) return ProviderError(ProviderErrorKind::kUnavailable, doc.error().message());
  for (const AzureScheduledEvent& ev : doc->events) {
    if (ev.event_type != "Preempt") continue;
    if (!options_.vm_name.empty() && std::find(ev.resources.begin(), ev.resources.end(),
                                               options_.vm_name) == ev.resources.end()) {
      continue;  // broadcast to the placement group, not for this VM
    }
    InterruptionNotice notice;
    notice.kind = InterruptionNotice::Kind::kScheduledPreempt;
    notice.detail = ev.event_id;
    Clock::WallTime when = ParseHttpDate(ev.not_before).value_or(clock_.WallNow());
    notice.not_after_unix =
        std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch()).count();
    if (options_.acknowledge && acknowledged_.insert(ev.event_id).second) {
      kube::HttpRequest ack;
      ack.method = "POST";
      ack.url = req.url;
      ack.headers = {{"Metadata", "true"}, {"Content-Type", "application/json"}};
      ack.body = json{{"StartRequests", {{{"EventId", ev.event_id}}}}}.dump();
      ack.timeout = 5s;
      auto acked = transport_->Do(ack);
      if (!acked.ok() || acked->status != 200) {
        spdlog::warn("azure scheduled events: acknowledging {} failed", ev.event_id);
      }
    }
    return std::optional<InterruptionNotice>(notice);
  }
  return std::optional<InterruptionNotice>();
}

}  // namespace gpu_autoscaler::cloud
