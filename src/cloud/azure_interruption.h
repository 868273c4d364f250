// File: src/cloud/azure_interruption.h
//
// Spot eviction notices from Azure Scheduled Events (IMDS):
// GET <imds>/metadata/scheduledevents?api-version=2020-07-01 with header
// Metadata: true. An event with EventType "Preempt" naming this VM in
// Resources (or any VM when vm_name is empty) becomes a kScheduledPreempt
// notice with NotBefore (RFC 1123) as not_after_unix; once the event has
// started NotBefore is blank and the poll time is used.
//
//   AzureScheduledEventsSource source({.vm_name = "aks-gpu-12345678-vmss_3"},
//                                     transport, RealClock::Instance());
//   GPU_ASSIGN_OR_RETURN(auto notice, source.Poll());
//
// Acknowledging (POST {"StartRequests":[{"EventId": ...}]}) tells Azure it
// may evict at once, which would cut the ≥30 s drain window short, so it is
// off by default; with acknowledge set, Poll acknowledges each Preempt event
// once, after reporting it, and a failed acknowledgement is logged, not
// returned.
//
// Thread-safety: Poll may be called from one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cloud/cloud_http.h"
#include "cloud/node_group.h"

namespace gpu_autoscaler::cloud {

struct AzureScheduledEvent {
  std::string event_id, event_type, event_status, not_before;
  std::vector<std::string> resources;
};
struct AzureScheduledEvents {
  int64_t document_incarnation = 0;
  std::vector<AzureScheduledEvent> events;
};
Result<AzureScheduledEvents> ParseAzureScheduledEvents(std::string_view json);

struct AzureScheduledEventsOptions {
  std::string imds_endpoint = "http://169.254.169.254";
  std::string api_version = "2020-07-01";
  std::string vm_name{};  // this VM's name as Resources lists it; "" matches any
  bool acknowledge = false;
};

class AzureScheduledEventsSource final : public InterruptionSource {
 public:
  AzureScheduledEventsSource(AzureScheduledEventsOptions options,
                             std::shared_ptr<kube::HttpTransport> transport, Clock& clock);
  Result<std::optional<InterruptionNotice>> Poll() override;

 private:
  AzureScheduledEventsOptions options_;
  std::shared_ptr<kube::HttpTransport> transport_;
  Clock& clock_;
  std::set<std::string> acknowledged_;
};

}  // namespace gpu_autoscaler::cloud
