#include "cloud/gcp_mig.h"

#include <array>
#include <random>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "kube/resource.h"

namespace gpu_autoscaler::cloud {

using json = nlohmann::json;

namespace {

std::string StringField(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// {"errors": [{"code"|"reason", "message"}]} as Operation.error and
// lastAttempt.errors carry it.
std::vector<CloudError> ErrorList(const json& container) {
  std::vector<CloudError> out;
  if (!container.is_object()) return out;
  auto it = container.find("errors");
  if (it == container.end() || !it->is_array()) return out;
  for (const json& e : *it) {
    CloudError err;
    err.code = StringField(e, "code");
    if (err.code.empty()) err.code = StringField(e, "reason");
    err.message = StringField(e, "message");
    err.kind = GcpErrorCodeKind(err.code);
    out.push_back(std::move(err));
  }
  return out;
}

// The segment after `key` in a resource URL ("zones" in ".../zones/z/instances/n").
std::string SegmentAfter(std::string_view url, std::string_view key) {
  std::string needle = "/" + std::string(key) + "/";
  size_t pos = url.find(needle);
  if (pos == std::string_view::npos) return "";
  url.remove_prefix(pos + needle.size());
  return std::string(url.substr(0, url.find('/')));
}

std::string LastSegment(std::string_view url) {
  size_t pos = url.rfind('/');
  return std::string(pos == std::string_view::npos ? url : url.substr(pos + 1));
}

bool ValidSegment(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              (c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}

std::string NewRequestId() {
  // A random UUID v4: GCP deduplicates retried mutations by requestId.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::array<uint8_t, 16> b{};
  for (size_t i = 0; i < b.size(); i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8; ++j)
      b[i + j] = static_cast<uint8_t>(v >> (8 * j));
  }
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 15];
  }
  return out;
}

}  // namespace

std::string GcpMigRef::Path() const {
  return "projects/" + project + "/zones/" + zone + "/instanceGroupManagers/" + name;
}

Result<GcpMigRef> ParseGcpMigName(std::string_view group, const GcpMigOptions& options) {
  GcpMigRef ref;
  if (group.starts_with("projects/")) {
    std::vector<std::string> parts;
    std::string_view rest = group;
    while (!rest.empty()) {
      size_t slash = rest.find('/');
      parts.emplace_back(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    }
    if (parts.size() != 6 || parts[2] != "zones" || parts[4] != "instanceGroupManagers") {
      return ProviderError(ProviderErrorKind::kInvalid,
                           "gcp-mig: group \"" + std::string(group) +
                               "\" is not projects/P/zones/Z/instanceGroupManagers/N");
    }
    ref = {parts[1], parts[3], parts[5]};
  } else {
    ref = {options.project, options.zone, std::string(group)};
  }
  if (!ValidSegment(ref.project) || !ValidSegment(ref.zone) || !ValidSegment(ref.name)) {
    return ProviderError(
        ProviderErrorKind::kInvalid,
        "gcp-mig: group \"" + std::string(group) + "\" needs a valid project, zone and name");
  }
  return ref;
}

std::string GcpProviderId(std::string_view project, std::string_view zone,
                          std::string_view instance) {
  return "gce://" + std::string(project) + "/" + std::string(zone) + "/" + std::string(instance);
}

ProviderErrorKind GcpErrorCodeKind(std::string_view code) {
  static constexpr std::pair<std::string_view, ProviderErrorKind> kCodes[] = {
      {"ZONE_RESOURCE_POOL_EXHAUSTED", ProviderErrorKind::kInsufficientCapacity},
      {"ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", ProviderErrorKind::kInsufficientCapacity},
      {"REGION_RESOURCE_POOL_EXHAUSTED", ProviderErrorKind::kInsufficientCapacity},
      {"RESOURCE_POOL_EXHAUSTED", ProviderErrorKind::kInsufficientCapacity},
      {"STOCKOUT", ProviderErrorKind::kInsufficientCapacity},
      {"resourcePoolExhausted", ProviderErrorKind::kInsufficientCapacity},
      {"QUOTA_EXCEEDED", ProviderErrorKind::kQuotaExceeded},
      {"quotaExceeded", ProviderErrorKind::kQuotaExceeded},
      {"rateLimitExceeded", ProviderErrorKind::kThrottled},
      {"userRateLimitExceeded", ProviderErrorKind::kThrottled},
      {"RATE_LIMIT_EXCEEDED", ProviderErrorKind::kThrottled},
      {"RESOURCE_EXHAUSTED", ProviderErrorKind::kThrottled},
      {"RESOURCE_NOT_FOUND", ProviderErrorKind::kNotFound},
      {"notFound", ProviderErrorKind::kNotFound},
      {"forbidden", ProviderErrorKind::kAuth},
      {"insufficientPermissions", ProviderErrorKind::kAuth},
      {"PERMISSION_DENIED", ProviderErrorKind::kAuth},
      {"authError", ProviderErrorKind::kAuth},
      {"invalid", ProviderErrorKind::kInvalid},
      {"badRequest", ProviderErrorKind::kInvalid},
      {"INVALID_FIELD_VALUE", ProviderErrorKind::kInvalid},
      {"INVALID_USAGE", ProviderErrorKind::kInvalid},
  };
  for (const auto& [name, kind] : kCodes) {
    if (code == name) return kind;
  }
  return ProviderErrorKind::kNone;
}

CloudError ClassifyGcpHttpError(const kube::HttpResponse& resp) {
  CloudError out;
  try {
    json doc = json::parse(resp.body);
    const json& error = doc.is_object() && doc.contains("error") ? doc["error"] : json();
    out.message = StringField(error, "message");
    for (const CloudError& e : ErrorList(error)) {
      if (out.code.empty()) out.code = e.code;
      if (e.kind != ProviderErrorKind::kNone) {
        out.code = e.code;
        out.kind = e.kind;
        break;
      }
    }
  } catch (const json::exception&) {
    out.message.clear();  // not JSON (a proxy's HTML page): the status decides
  }
  if (out.message.size() > 512) out.message.resize(512);
  if (resp.status == 429) out.kind = ProviderErrorKind::kThrottled;
  if (out.kind == ProviderErrorKind::kNone) out.kind = KindForHttpStatus(resp.status);
  return out;
}

Result<GcpOperation> ParseGcpOperation(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return InvalidArgumentError("operation is not a JSON object");
    GcpOperation op;
    op.name = StringField(doc, "name");
    op.status = StringField(doc, "status");
    if (op.name.empty() || op.status.empty()) {
      return InvalidArgumentError("operation without name or status");
    }
    if (auto it = doc.find("error"); it != doc.end()) op.errors = ErrorList(*it);
    if (auto it = doc.find("httpErrorStatusCode"); it != doc.end() && it->is_number_integer()) {
      op.http_error_status = static_cast<int>(it->get<int64_t>());
    }
    return op;
  } catch (const json::exception&) {
    return InvalidArgumentError("operation is not JSON");
  }
}

CloudError GcpOperationError(const GcpOperation& op) {
  if (op.status != "DONE" || op.errors.empty()) return {};
  CloudError out = op.errors.front();
  for (const CloudError& e : op.errors) {
    if (e.kind != ProviderErrorKind::kNone) {
      out = e;
      break;
    }
  }
  if (out.kind == ProviderErrorKind::kNone) {
    out.kind = op.http_error_status > 0 ? KindForHttpStatus(op.http_error_status)
                                        : ProviderErrorKind::kUnavailable;
  }
  return out;
}

Result<GcpMigInfo> ParseGcpMig(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return InvalidArgumentError("instance group manager is not an object");
    GcpMigInfo info;
    info.name = StringField(doc, "name");
    info.instance_template = StringField(doc, "instanceTemplate");
    auto it = doc.find("targetSize");
    if (it == doc.end() || !it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() > 1'000'000) {
      return InvalidArgumentError("instance group manager has no valid targetSize");
    }
    info.target_size = static_cast<int>(it->get<int64_t>());
    return info;
  } catch (const json::exception&) {
    return InvalidArgumentError("instance group manager is not JSON");
  }
}

Result<GcpManagedInstancePage> ParseGcpManagedInstances(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return InvalidArgumentError("managed instance list is not an object");
    GcpManagedInstancePage page;
    page.next_page_token = StringField(doc, "nextPageToken");
    auto it = doc.find("managedInstances");
    if (it == doc.end()) return page;  // an empty group omits the field
    if (!it->is_array()) return InvalidArgumentError("managedInstances is not a list");
    for (const json& m : *it) {
      if (!m.is_object()) return InvalidArgumentError("a managed instance is not an object");
      GcpManagedInstance inst;
      std::string url = StringField(m, "instance");
      inst.name = LastSegment(url);
      inst.zone = SegmentAfter(url, "zones");
      if (inst.name.empty()) return InvalidArgumentError("a managed instance has no instance URL");
      inst.instance_status = StringField(m, "instanceStatus");
      inst.current_action = StringField(m, "currentAction");
      if (auto la = m.find("lastAttempt"); la != m.end() && la->is_object()) {
        if (auto errs = la->find("errors"); errs != la->end()) {
          inst.last_attempt_errors = ErrorList(*errs);
        }
      }
      page.instances.push_back(std::move(inst));
    }
    return page;
  } catch (const json::exception&) {
    return InvalidArgumentError("managed instance list is not JSON");
  }
}

Lifecycle GcpTemplateLifecycle(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return Lifecycle::kUnknown;
    auto props = doc.find("properties");
    if (props == doc.end() || !props->is_object()) return Lifecycle::kUnknown;
    auto sched = props->find("scheduling");
    if (sched == props->end() || !sched->is_object()) return Lifecycle::kOnDemand;
    std::string model = StringField(*sched, "provisioningModel");
    if (model == "SPOT") return Lifecycle::kSpot;
    if (auto p = sched->find("preemptible"); p != sched->end() && p->is_boolean() && p->get<bool>())
      return Lifecycle::kSpot;
    return Lifecycle::kOnDemand;  // STANDARD, or the defaults
  } catch (const json::exception&) {
    return Lifecycle::kUnknown;
  }
}

GcpMigProvider::GcpMigProvider(GcpMigOptions options,
                               std::shared_ptr<kube::HttpTransport> transport,
                               std::shared_ptr<AccessTokenSource> tokens, Clock& clock,
                               Sleeper sleeper)
    : options_(std::move(options)),
      tokens_(std::move(tokens)),
      http_(std::move(transport), clock, sleeper ? std::move(sleeper) : ClockSleeper(clock),
            options_.retry, &ClassifyGcpHttpError, options_.request_timeout) {}

std::string GcpMigProvider::MigUrl(const GcpMigRef& ref) const {
  return options_.compute_endpoint + "/" + ref.Path();
}

Result<kube::HttpResponse> GcpMigProvider::Call(std::string method, std::string url,
                                                std::string body, std::string_view what) {
  GPU_ASSIGN_OR_RETURN(std::string token, tokens_->Token());
  kube::HttpRequest req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.headers = {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  req.body = std::move(body);
  spdlog::debug("gcp-mig: {} {}", req.method, req.url);
  return http_.Do(std::move(req), what);
}

Result<GcpMigInfo> GcpMigProvider::GetMig(const GcpMigRef& ref) {
  std::string what = "gcp-mig get " + ref.Path();
  GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp, Call("GET", MigUrl(ref), "", what));
  auto info = ParseGcpMig(resp.body);
  if (!info.ok())
    return ProviderError(ProviderErrorKind::kUnavailable, what + ": " + info.error().message());
  return info;
}

Result<std::vector<GcpManagedInstance>> GcpMigProvider::ListInstances(const GcpMigRef& ref) {
  std::vector<GcpManagedInstance> out;
  std::string token;
  std::string what = "gcp-mig listManagedInstances " + ref.Path();
  for (int page = 0; page < 10'000; ++page) {
    std::string url =
        MigUrl(ref) + "/listManagedInstances?maxResults=" + std::to_string(options_.page_size);
    if (!token.empty()) url += "&pageToken=" + kube::UrlEncode(token);
    GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp, Call("POST", url, "", what));
    auto parsed = ParseGcpManagedInstances(resp.body);
    if (!parsed.ok()) {
      return ProviderError(ProviderErrorKind::kUnavailable, what + ": " + parsed.error().message());
    }
    for (auto& inst : parsed->instances)
      out.push_back(std::move(inst));
    if (parsed->next_page_token.empty()) return out;
    if (parsed->next_page_token == token) {
      return ProviderError(ProviderErrorKind::kUnavailable, what + ": page token repeats");
    }
    token = parsed->next_page_token;
  }
  return ProviderError(ProviderErrorKind::kUnavailable, what + ": too many pages");
}

Lifecycle GcpMigProvider::TemplateLifecycle(const std::string& template_url) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = template_lifecycle_.find(template_url); it != template_lifecycle_.end()) {
      return it->second;
    }
  }
  // "https://www.googleapis.com/compute/v1/projects/P/global/instanceTemplates/T":
  // the same path under our endpoint.
  size_t pos = template_url.find("/projects/");
  if (pos == std::string::npos) return Lifecycle::kUnknown;
  auto resp = Call("GET", options_.compute_endpoint + template_url.substr(pos), "",
                   "gcp-mig get instance template");
  if (!resp.ok()) {
    // Without compute.instanceTemplates.get the lifecycle stays unknown;
    // the group itself still works.
    spdlog::debug("gcp-mig: instance template lifecycle unknown: {}", resp.error().message());
    return Lifecycle::kUnknown;
  }
  Lifecycle l = GcpTemplateLifecycle(resp->body);
  std::lock_guard<std::mutex> lock(mu_);
  template_lifecycle_[template_url] = l;
  return l;
}

namespace {

// The MIG tried to create the instance and failed (a stockout, a quota); it
// keeps retrying, but no VM stands behind the name.
bool CreationFailed(const GcpManagedInstance& m) {
  return m.current_action.starts_with("CREATING") && !m.last_attempt_errors.empty();
}

// The error that best explains a failed creation: a capacity or quota one
// when present, else the first.
const CloudError& CreationError(const GcpManagedInstance& m) {
  for (const CloudError& e : m.last_attempt_errors) {
    if (e.kind == ProviderErrorKind::kInsufficientCapacity ||
        e.kind == ProviderErrorKind::kQuotaExceeded)
      return e;
  }
  return m.last_attempt_errors.front();
}

}  // namespace

Result<NodeGroup> GcpMigProvider::Describe(const std::string& group) {
  GPU_ASSIGN_OR_RETURN(GcpMigRef ref, ParseGcpMigName(group, options_));
  GPU_ASSIGN_OR_RETURN(GcpMigInfo info, GetMig(ref));
  GPU_ASSIGN_OR_RETURN(std::vector<GcpManagedInstance> managed, ListInstances(ref));
  Lifecycle lifecycle = info.instance_template.empty() ? Lifecycle::kUnknown
                                                       : TemplateLifecycle(info.instance_template);
  NodeGroup out;
  out.name = group;
  out.desired = info.target_size;
  out.min = options_.min_size;
  out.max = options_.max_size;
  for (const GcpManagedInstance& m : managed) {
    if (CreationFailed(m)) continue;  // LaunchFailure reports it
    Instance inst;
    inst.id = m.name;
    inst.zone = m.zone.empty() ? ref.zone : m.zone;
    inst.provider_id = GcpProviderId(ref.project, inst.zone, m.name);
    inst.lifecycle = lifecycle;
    inst.state = !m.current_action.empty() && m.current_action != "NONE" ? m.current_action
                                                                         : m.instance_status;
    if (!m.last_attempt_errors.empty()) inst.state += ":" + m.last_attempt_errors.front().code;
    out.instances.push_back(std::move(inst));
  }
  return out;
}

Status GcpMigProvider::WaitForOperation(const GcpMigRef& ref, std::string_view operation_json,
                                        std::string_view what) {
  auto op = ParseGcpOperation(operation_json);
  if (!op.ok()) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         std::string(what) + ": " + op.error().message());
  }
  std::string name = op->name;
  GcpOperation last = std::move(op).value();
  std::string op_url = options_.compute_endpoint + "/projects/" + ref.project + "/zones/" +
                       ref.zone + "/operations/" + kube::UrlEncode(name);
  GPU_RETURN_IF_ERROR(http_.PollUntilDone(
      [&]() -> Result<std::optional<Clock::Duration>> {
        if (last.status == "DONE") return std::optional<Clock::Duration>();
        GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp,
                             Call("GET", op_url, "", std::string(what) + " operation " + name));
        auto polled = ParseGcpOperation(resp.body);
        if (!polled.ok()) {
          return ProviderError(ProviderErrorKind::kUnavailable,
                               std::string(what) + ": " + polled.error().message());
        }
        last = std::move(polled).value();
        if (last.status == "DONE") return std::optional<Clock::Duration>();
        return std::optional<Clock::Duration>(Clock::Duration(0));
      },
      options_.poll_interval, options_.operation_limit, what));
  CloudError err = GcpOperationError(last);
  if (err.kind == ProviderErrorKind::kNone) return Status::Ok();
  return ProviderError(err.kind, std::string(what) + ": operation " + name + " failed: " +
                                     err.code + (err.message.empty() ? "" : ": " + err.message));
}

Status GcpMigProvider::Resize(const GcpMigRef& ref, int size) {
  std::string what = "gcp-mig resize " + ref.Path() + " to " + std::to_string(size);
  GPU_ASSIGN_OR_RETURN(
      kube::HttpResponse resp,
      Call("POST",
           MigUrl(ref) + "/resize?size=" + std::to_string(size) + "&requestId=" + NewRequestId(),
           "", what));
  return WaitForOperation(ref, resp.body, what);
}

Result<int> GcpMigProvider::CurrentSize(const std::string& group) {
  GPU_ASSIGN_OR_RETURN(GcpMigRef ref, ParseGcpMigName(group, options_));
  GPU_ASSIGN_OR_RETURN(GcpMigInfo info, GetMig(ref));
  return info.target_size;
}

Status GcpMigProvider::SetDesiredSize(const std::string& group, int desired) {
  GPU_ASSIGN_OR_RETURN(GcpMigRef ref, ParseGcpMigName(group, options_));
  if (desired < options_.min_size || desired > options_.max_size) {
    return ProviderError(ProviderErrorKind::kInvalid, "gcp-mig " + ref.Path() + ": size " +
                                                          std::to_string(desired) + " outside [" +
                                                          std::to_string(options_.min_size) + ", " +
                                                          std::to_string(options_.max_size) + "]");
  }
  GPU_ASSIGN_OR_RETURN(GcpMigInfo before, GetMig(ref));
  if (desired < before.target_size) {
    // A resize down lets the MIG pick its victims; the instances it failed
    // to create go first, by name, as Cluster Autoscaler deletes them.
    GPU_ASSIGN_OR_RETURN(std::vector<GcpManagedInstance> managed, ListInstances(ref));
    std::vector<std::string> failed;
    for (const GcpManagedInstance& m : managed) {
      if (CreationFailed(m) && static_cast<int>(failed.size()) < before.target_size - desired)
        failed.push_back(m.name);
    }
    if (!failed.empty()) {
      GPU_RETURN_IF_ERROR(TerminateInstances(group, failed, /*decrement_desired=*/true));
      if (before.target_size - static_cast<int>(failed.size()) == desired) return Status::Ok();
    }
  }
  GPU_RETURN_IF_ERROR(Resize(ref, desired));
  if (desired <= before.target_size) return Status::Ok();
  // The resize is only scheduled; creation errors the MIG has already seen
  // (a stockout, a quota) are worth reporting now.
  GPU_ASSIGN_OR_RETURN(std::vector<GcpManagedInstance> managed, ListInstances(ref));
  for (const GcpManagedInstance& m : managed) {
    for (const CloudError& e : m.last_attempt_errors) {
      if (e.kind == ProviderErrorKind::kInsufficientCapacity ||
          e.kind == ProviderErrorKind::kQuotaExceeded) {
        return ProviderError(e.kind, "gcp-mig " + ref.Path() + ": resized to " +
                                         std::to_string(desired) + " but creating " + m.name +
                                         " failed: " + e.code + ": " + e.message);
      }
    }
  }
  return Status::Ok();
}

Status GcpMigProvider::TerminateInstances(const std::string& group,
                                          const std::vector<std::string>& instance_ids,
                                          bool decrement_desired) {
  GPU_ASSIGN_OR_RETURN(GcpMigRef ref, ParseGcpMigName(group, options_));
  if (instance_ids.empty()) return Status::Ok();
  if (instance_ids.size() > 1000) {
    // The API's limit per deleteInstances request.
    return ProviderError(ProviderErrorKind::kInvalid,
                         "gcp-mig: at most 1000 instances per deleteInstances call");
  }
  json instances = json::array();
  for (const std::string& id : instance_ids) {
    if (!ValidSegment(id)) {
      return ProviderError(ProviderErrorKind::kInvalid,
                           "gcp-mig: \"" + id + "\" is not an instance name");
    }
    instances.push_back("zones/" + ref.zone + "/instances/" + id);
  }
  int restore_to = -1;
  if (!decrement_desired) {
    GPU_ASSIGN_OR_RETURN(GcpMigInfo before, GetMig(ref));
    restore_to = before.target_size;
  }
  std::string what = "gcp-mig deleteInstances " + ref.Path();
  json body = {{"instances", instances}, {"skipInstancesOnValidationError", false}};
  GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp,
                       Call("POST", MigUrl(ref) + "/deleteInstances?requestId=" + NewRequestId(),
                            body.dump(), what));
  GPU_RETURN_IF_ERROR(WaitForOperation(ref, resp.body, what));
  // deleteInstances lowers targetSize; resizing back makes the MIG replace them.
  if (restore_to >= 0) return Resize(ref, restore_to);
  return Status::Ok();
}

Status GcpMigProvider::LaunchFailure(const std::string& group) {
  GPU_ASSIGN_OR_RETURN(GcpMigRef ref, ParseGcpMigName(group, options_));
  GPU_ASSIGN_OR_RETURN(std::vector<GcpManagedInstance> managed, ListInstances(ref));
  for (const GcpManagedInstance& m : managed) {
    if (!CreationFailed(m)) continue;
    const CloudError& e = CreationError(m);
    const ProviderErrorKind kind =
        e.kind == ProviderErrorKind::kNone ? ProviderErrorKind::kUnavailable : e.kind;
    return ProviderError(kind, "gcp-mig " + ref.Path() + ": creating " + m.name + " failed: " +
                                   e.code + (e.message.empty() ? "" : ": " + e.message));
  }
  return Status::Ok();
}

Result<std::string> GcpMigProvider::InstanceIdFromProviderId(std::string_view provider_id) const {
  constexpr std::string_view kPrefix = "gce://";
  if (!provider_id.starts_with(kPrefix)) {
    return ProviderError(ProviderErrorKind::kInvalid,
                         "gcp-mig: providerID \"" + std::string(provider_id) + "\" is not gce://");
  }
  std::string_view rest = provider_id.substr(kPrefix.size());
  size_t first = rest.find('/');
  size_t second = first == std::string_view::npos ? first : rest.find('/', first + 1);
  if (first == 0 || second == std::string_view::npos || second == first + 1 ||
      rest.find('/', second + 1) != std::string_view::npos || second + 1 >= rest.size()) {
    return ProviderError(ProviderErrorKind::kInvalid,
                         "gcp-mig: providerID \"" + std::string(provider_id) +
                             "\" is not gce://<project>/<zone>/<instance>");
  }
  return std::string(rest.substr(second + 1));
}

}  // namespace gpu_autoscaler::cloud
