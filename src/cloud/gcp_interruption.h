// File: src/cloud/gcp_interruption.h
//
// Spot/preemptible VM preemption notices from the GCE metadata server:
// GET <metadata>/computeMetadata/v1/instance/preempted (header
// Metadata-Flavor: Google) answers "TRUE" once the VM is being preempted,
// about 30 s before it stops; "FALSE" otherwise. GCE gives no deadline, so
// the notice's not_after_unix is the poll time + 30 s.
//
//   GcpPreemptionSource source({.metadata_endpoint = "http://metadata.google.internal"},
//                              transport, RealClock::Instance());
//   GPU_ASSIGN_OR_RETURN(auto notice, source.Poll());   // nullopt: not preempted
//
// With wait_for_change, Poll is a hanging GET (?wait_for_change=true&
// last_etag=<etag>&timeout_sec=N): it returns when the value changes or after
// N seconds, so a loop calling Poll needs no sleep of its own.
//
// Thread-safety: Poll may be called from one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cloud/cloud_http.h"
#include "cloud/node_group.h"

namespace gpu_autoscaler::cloud {

struct GcpPreemptionOptions {
  std::string metadata_endpoint = "http://metadata.google.internal";
  bool wait_for_change = false;
  int wait_timeout_sec = 60;  // the hanging GET's timeout_sec
};

// "TRUE" / "FALSE" (surrounding whitespace ignored); nullopt for anything else.
std::optional<bool> ParseGcpPreempted(std::string_view body);

class GcpPreemptionSource final : public InterruptionSource {
 public:
  GcpPreemptionSource(GcpPreemptionOptions options, std::shared_ptr<kube::HttpTransport> transport,
                      Clock& clock);
  Result<std::optional<InterruptionNotice>> Poll() override;

 private:
  GcpPreemptionOptions options_;
  std::shared_ptr<kube::HttpTransport> transport_;
  Clock& clock_;
  std::string etag_;
};

}  // namespace gpu_autoscaler::cloud
