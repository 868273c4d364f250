// File: src/report/event_reader.h
//
// Reads the Events the report shows, and only those: one list per
// ShownEventFieldSelectors() selector (the API server filters on
// involvedObject.kind and reason), each read in pages of `page_size` with
// limit/continue, so a cluster with many unrelated Events costs the report
// neither their transfer nor one huge response.
//
//   EventReadStats stats;
//   GPU_ASSIGN_OR_RETURN(std::vector<EventInput> events, ReadShownEvents(client, 500, &stats));
//
// Thread-safety: as the RestClient.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "kube/rest_client.h"
#include "report/report.h"

namespace gpu_autoscaler::report {

struct EventReadStats {
  int lists = 0;  // list requests made (pages over every selector)
  int64_t items = 0;
};

// Events from every namespace matching any shown selector. A page size of 0
// reads each selector in one request.
Result<std::vector<EventInput>> ReadShownEvents(kube::RestClient& client, int64_t page_size,
                                                EventReadStats* stats = nullptr);

}  // namespace gpu_autoscaler::report
