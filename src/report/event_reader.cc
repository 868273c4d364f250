#include "report/event_reader.h"

#include <string>

#include "common/json_read.h"
#include "kube/error.h"
#include "report/inputs.h"

namespace gpu_autoscaler::report {

Result<std::vector<EventInput>> ReadShownEvents(kube::RestClient& client, int64_t page_size,
                                                EventReadStats* stats) {
  std::vector<EventInput> out;
  EventReadStats local;
  // The selectors are disjoint (kind GPUNodePool, or kind Node with one
  // reason each), so no Event is read twice.
  for (const std::string& selector : ShownEventFieldSelectors()) {
    kube::ListOptions opts{.field_selector = selector, .limit = page_size};
    const size_t selector_start = out.size();
    bool restarted = false;
    while (true) {
      auto body = client.ListPage(kube::ObjectRef{kube::resources::kEvents, "", "", ""}, opts);
      ++local.lists;
      if (!body.ok() && kube::IsGone(body.error()) && !opts.continue_token.empty() && !restarted) {
        // The continue token outlived the server's history: read this selector again, once.
        restarted = true;
        opts.continue_token.clear();
        out.resize(selector_start);
        continue;
      }
      if (!body.ok()) {
        return body.error().ToStatus().WithContext("listing events (" + selector + ")");
      }
      const nlohmann::json page = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
      if (!page.is_object()) return InvalidArgumentError("events list is not a JSON object");
      GPU_ASSIGN_OR_RETURN(std::vector<EventInput> events, ParseEvents(page));
      for (EventInput& e : events)
        out.push_back(std::move(e));
      const std::string next = json_read::String(json_read::Object(page, "metadata"), "continue");
      if (next.empty()) break;
      opts.continue_token = next;
    }
  }
  local.items = static_cast<int64_t>(out.size());
  if (stats != nullptr) *stats = local;
  return out;
}

}  // namespace gpu_autoscaler::report
