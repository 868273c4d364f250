#include "kube/rest_client.h"

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::kube {

void ListOptions::AppendQuery(std::string* out, bool watch) const {
  char sep = '?';
  auto add = [&](std::string_view key, std::string_view value) {
    out->push_back(sep);
    sep = '&';
    out->append(key);
    out->push_back('=');
    out->append(UrlEncode(value));
  };
  if (watch) add("watch", "1");
  if (!label_selector.empty()) add("labelSelector", label_selector);
  if (!field_selector.empty()) add("fieldSelector", field_selector);
  if (!watch) {
    if (limit > 0) add("limit", std::to_string(limit));
    if (!continue_token.empty()) add("continue", continue_token);
  }
  if (!resource_version.empty()) add("resourceVersion", resource_version);
  if (!watch && !resource_version_match.empty()) {
    add("resourceVersionMatch", resource_version_match);
  }
  if (watch && allow_watch_bookmarks) add("allowWatchBookmarks", "true");
  if (timeout_seconds > 0) add("timeoutSeconds", std::to_string(timeout_seconds));
}

std::string DeleteOptions::ToJson() const {
  nlohmann::json body = nlohmann::json::object();
  if (grace_period_seconds) body["gracePeriodSeconds"] = *grace_period_seconds;
  if (!propagation_policy.empty()) body["propagationPolicy"] = propagation_policy;
  if (!precondition_uid.empty()) body["preconditions"]["uid"] = precondition_uid;
  if (!precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = precondition_resource_version;
  }
  if (dry_run) body["dryRun"] = nlohmann::json::array({"All"});
  if (body.empty()) return "";
  body["kind"] = "DeleteOptions";
  body["apiVersion"] = "meta.k8s.io/v1";
  return body.dump();
}

std::string_view PatchContentType(PatchType t) {
  switch (t) {
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kApply:
      return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

std::string_view WatchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "ERROR";
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return value;
    }
  }
  return "";
}

}  // namespace gpu_autoscaler::kube
