// Get, list (with continue tokens) and watch.
#include "apiserver/api_server_internal.h"

namespace gpu_autoscaler::apiserver {

void ApiServer::Impl::Get(Call& c) {
  ObjectPtr obj = store.Get(c.info->StorageKey(), c.Key());
  if (!obj) return RespondError(c.w, NotFoundErr(c.info->group, c.info->resource, c.name));
  Respond(c.w, 200, Render(*obj, *c.info));
}

kube::Result<Selectors> ApiServer::Impl::ParseSelectors(const Call& c) {
  Selectors s;
  std::string label = c.req.QueryParam("labelSelector");
  if (!label.empty()) {
    auto parsed = kube::LabelSelector::Parse(label);
    if (!parsed.ok()) return BadRequestErr(parsed.error().message());
    s.labels = std::move(parsed).value();
  }
  std::string field = c.req.QueryParam("fieldSelector");
  if (!field.empty()) {
    auto parsed = kube::FieldSelector::Parse(field);
    if (!parsed.ok()) return BadRequestErr(parsed.error().message());
    for (const auto& r : parsed->requirements()) {
      int index;
      if (r.field == "metadata.name") {
        index = -1;
      } else if (r.field == "metadata.namespace") {
        index = -2;
      } else {
        const auto& f = c.info->selectable_fields;
        auto it = std::find(f.begin(), f.end(), r.field);
        if (it == f.end()) return BadRequestErr("field label not supported: " + r.field);
        index = static_cast<int>(it - f.begin());
      }
      s.fields.emplace_back(index, r);
    }
  }
  return s;
}

namespace {

struct ContinueToken {
  uint64_t rv = 0;
  std::string start;  // key relative to the list prefix
};

std::string EncodeContinue(int64_t rv, const std::string& start) {
  json token = {{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", start}};
  return Base64UrlEncode(token.dump());
}

kube::Result<ContinueToken> DecodeContinue(const std::string& text) {
  auto raw = Base64UrlDecode(text);
  if (!raw) return BadRequestErr("continue key is not valid: illegal base64 data");
  json token = json::parse(*raw, nullptr, false);
  if (token.is_discarded() || !token.is_object() || token.value("v", "") != "meta.k8s.io/v1" ||
      !token.contains("rv") || !token["rv"].is_number_integer() || !token.contains("start") ||
      !token["start"].is_string()) {
    return BadRequestErr("continue key is not valid: incorrect encoded start resourceVersion");
  }
  int64_t rv = token["rv"].get<int64_t>();
  ContinueToken out;
  out.rv = rv <= 0 ? 0 : static_cast<uint64_t>(rv);
  out.start = token["start"].get<std::string>();
  if (rv <= 0) {
    return BadRequestErr("continue key is not valid: incorrect encoded start resourceVersion");
  }
  return out;
}

}  // namespace

void ApiServer::Impl::List(Call& c) {
  const ResourceInfo& info = *c.info;
  auto selectors = ParseSelectors(c);
  if (!selectors.ok()) return RespondError(c.w, selectors.error());
  std::string rv_param = c.req.QueryParam("resourceVersion");
  std::string rv_match = c.req.QueryParam("resourceVersionMatch");
  std::string cont = c.req.QueryParam("continue");
  int64_t limit = 0;
  if (c.req.HasQueryParam("limit")) {
    auto l = ParseInt(c.req.QueryParam("limit"));
    if (!l) return RespondError(c.w, BadRequestErr("invalid limit"));
    limit = std::max<int64_t>(*l, 0);
  }
  ListRequest lr;
  lr.storage_key = info.StorageKey();
  lr.prefix = c.ns.empty() ? "" : c.ns + "/";
  lr.limit = limit;
  const Selectors& sel = *selectors;
  if (!sel.empty()) lr.filter = [&sel](const StoredObject& o) { return sel.Matches(o); };

  if (!cont.empty()) {
    if (!rv_param.empty()) {
      return RespondError(
          c.w, BadRequestErr("specifying resource version is not allowed when using continue"));
    }
    auto token = DecodeContinue(cont);
    if (!token.ok()) return RespondError(c.w, token.error());
    if (token->rv < store.compacted_resource_version()) {
      Error e = ApiErr(
          410, "Expired",
          "The provided continue parameter is too old to display a consistent list result. You "
          "can start a new list without the continue parameter, or use the continue token in "
          "this response to retrieve the remainder of the results. Continuing with the provided "
          "token results in an inconsistent list - objects that were created, modified, or "
          "deleted between the time the first chunk was returned and now may show up in the "
          "list.");
      e.set_list_continue(EncodeContinue(-1, token->start));
      return RespondError(c.w, e);
    }
    lr.at_resource_version = token->rv;
    lr.start_after = lr.prefix + token->start;
    // The token's start is just past the last key ("<key>\0"): resume after that key.
    if (!lr.start_after.empty() && lr.start_after.back() == '\0') lr.start_after.pop_back();
  } else if (rv_param == "0") {
    lr.limit = 0;  // served whole from the watch cache, like kube-apiserver
  } else if (!rv_param.empty()) {
    auto rv = ParseInt(rv_param);
    if (!rv || *rv < 0) {
      return RespondError(c.w, BadRequestErr("invalid resource version: " + rv_param));
    }
    uint64_t want = static_cast<uint64_t>(*rv);
    if (want > store.current_resource_version() &&
        !store.WaitForResourceVersion(want, clock.Now() + std::chrono::seconds(3), clock)) {
      Error e = ApiErr(504, "Timeout",
                       "Too large resource version: " + rv_param +
                           ", current: " + std::to_string(store.current_resource_version()));
      e.mutable_details().retry_after_seconds = 1;
      return RespondError(c.w, e);
    }
    if (rv_match == "Exact") {
      if (want < store.compacted_resource_version()) {
        return RespondError(
            c.w, ApiErr(410, "Expired", "The resourceVersion for the provided list is too old."));
      }
      lr.at_resource_version = want;
    }
  }
  auto result = store.List(lr);
  if (!result.ok()) return RespondError(c.w, result.error());
  const ListResult& page = *result;
  json meta = {{"resourceVersion", std::to_string(page.resource_version)}};
  if (page.more) {
    std::string start = page.last_key.substr(lr.prefix.size());
    start.push_back('\0');
    meta["continue"] = EncodeContinue(static_cast<int64_t>(page.resource_version), start);
    if (sel.empty()) meta["remainingItemCount"] = page.remaining;
  } else if (info.custom) {
    meta["continue"] = "";
  }
  std::string body;
  size_t total = 0;
  for (const auto& item : page.items)
    total += item->json.size() + 64;
  body.reserve(total + 256);
  body.append("{\"kind\":").append(json(info.list_kind).dump());
  body.append(",\"apiVersion\":").append(json(info.ApiVersion()).dump());
  body.append(",\"metadata\":").append(meta.dump());
  body.append(",\"items\":[");
  bool first = true;
  for (const auto& item : page.items) {
    if (!first) body.push_back(',');
    first = false;
    if (info.custom) {
      body.append(Render(*item, info));
    } else {
      body.append(item->json);
    }
  }
  body.append("]}");
  Respond(c.w, 200, body);
}

void ApiServer::Impl::Watch(Call& c) {
  const ResourceInfo& info = *c.info;
  auto selectors = ParseSelectors(c);
  if (!selectors.ok()) return RespondError(c.w, selectors.error());
  const Selectors& sel = *selectors;
  std::string rv_param = c.req.QueryParam("resourceVersion");
  bool bookmarks = c.req.QueryParam("allowWatchBookmarks") == "true" ||
                   c.req.QueryParam("allowWatchBookmarks") == "1";
  auto timeout = ParseInt(c.req.QueryParam("timeoutSeconds"));
  Clock::TimePoint now = clock.Now();
  Clock::TimePoint end;
  if (timeout && *timeout > 0) {
    end = now + std::chrono::seconds(*timeout);
  } else {
    // The handler's default: --min-request-timeout (1800 s) times [1, 2).
    std::uniform_real_distribution<double> stretch(1.0, 2.0);
    double factor;
    {
      std::lock_guard<std::mutex> lock(rng_mu);
      factor = stretch(rng);
    }
    end = now + std::chrono::duration_cast<Clock::Duration>(
                    std::chrono::duration<double>(kMinRequestTimeoutSeconds * factor));
  }
  uint64_t generation = watch_generation.load();
  std::string prefix = c.ns.empty() ? "" : c.ns + "/";
  std::string storage_key = info.StorageKey();

  auto event_line = [&](std::string_view type, const std::string& object) {
    std::string line;
    line.reserve(object.size() + 40);
    line.append("{\"type\":\"").append(type).append("\",\"object\":").append(object);
    line.append("}\n");
    return line;
  };
  auto expired = [&]() {
    Error e = ApiErr(410, "Expired", "The resourceVersion for the provided watch is too old.");
    c.w.Write(event_line("ERROR", e.ToStatusJson().dump()));
    c.w.End();
  };

  uint64_t cursor;
  std::vector<ObjectPtr> initial;
  if (rv_param.empty() || rv_param == "0") {
    ListRequest lr;
    lr.storage_key = storage_key;
    lr.prefix = prefix;
    if (!sel.empty()) lr.filter = [&sel](const StoredObject& o) { return sel.Matches(o); };
    auto listed = store.List(lr);
    if (!listed.ok()) return RespondError(c.w, listed.error());
    cursor = listed->resource_version;
    initial = std::move(listed->items);
  } else {
    auto rv = ParseInt(rv_param);
    if (!rv || *rv < 0) {
      return RespondError(c.w, BadRequestErr("invalid resource version: " + rv_param));
    }
    cursor = static_cast<uint64_t>(*rv);
  }
  if (!c.w.StartStream(200, "application/json")) return;
  if (cursor < store.compacted_resource_version()) return expired();
  for (const auto& obj : initial) {
    if (!c.w.Write(event_line("ADDED", Render(*obj, info)))) return;
  }
  initial.clear();

  // The cacher's bookmark heap (v1.20): due 2 s before the deadline, and once
  // past due, dispatched again on each 1 s tick.
  const Clock::TimePoint deadline_bookmark = end - kBookmarkBeforeDeadline;
  auto next_bookmark = deadline_bookmark;
  if (opts.bookmark_interval.count() > 0) {
    next_bookmark = std::min(next_bookmark, clock.Now() + opts.bookmark_interval);
  }
  auto should_stop = [&] {
    return c.w.Cancelled() || stopping.load() || watch_generation.load() != generation;
  };
  std::vector<StoreEvent> events;
  while (true) {
    if (should_stop()) {
      if (!c.w.Cancelled()) c.w.End();
      return;
    }
    now = clock.Now();
    if (now >= end) {
      c.w.End();
      return;
    }
    auto deadline = std::min(end, now + kWatchPollInterval);
    if (bookmarks) deadline = std::min(deadline, next_bookmark);
    events.clear();
    if (!store.WaitForEvents(cursor, 512, deadline, clock, should_stop, &events)) {
      return expired();
    }
    for (const StoreEvent& e : events) {
      cursor = e.resource_version;
      if (e.storage_key != storage_key) continue;
      if (e.object->key.compare(0, prefix.size(), prefix) != 0) continue;
      bool now_matches = sel.Matches(*e.object);
      bool was_matching = e.prev && sel.Matches(*e.prev);
      std::string line;
      switch (e.type) {
        case EventType::kAdded:
          if (now_matches) line = event_line("ADDED", Render(*e.object, info));
          break;
        case EventType::kModified:
          if (now_matches && was_matching) {
            line = event_line("MODIFIED", Render(*e.object, info));
          } else if (now_matches) {
            line = event_line("ADDED", Render(*e.object, info));
          } else if (was_matching) {
            // The object as it was, at the RV where it stopped matching.
            json prev = e.prev->Parse();
            prev["metadata"]["resourceVersion"] = std::to_string(e.resource_version);
            line = event_line("DELETED", WithTypeMeta(prev.dump(), info.ApiVersion(), info.kind));
          }
          break;
        case EventType::kDeleted:
          if (was_matching) line = event_line("DELETED", Render(*e.object, info));
          break;
      }
      if (!line.empty() && !c.w.Write(line)) return;
    }
    // A watch woken past its deadline ends without another bookmark (under load
    // the wake-up can be late enough to pass both the deadline and the next tick).
    now = clock.Now();
    if (bookmarks && now < end && now >= next_bookmark) {
      json bookmark = {{"kind", info.kind},
                       {"apiVersion", info.ApiVersion()},
                       {"metadata", {{"resourceVersion", std::to_string(cursor)}}}};
      if (!c.w.Write(event_line("BOOKMARK", bookmark.dump()))) return;
      now = clock.Now();
      next_bookmark = now >= deadline_bookmark ? now + kBookmarkTick : deadline_bookmark;
      if (opts.bookmark_interval.count() > 0) {
        next_bookmark = std::min(next_bookmark, now + opts.bookmark_interval);
      }
    }
  }
}

}  // namespace gpu_autoscaler::apiserver
