#include "cloud/azure_vmss.h"

#include <algorithm>
#include <cctype>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "kube/resource.h"

namespace gpu_autoscaler::cloud {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kVmssSegment = "/providers/Microsoft.Compute/virtualMachineScaleSets/";

std::string StringField(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > 90) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != '(' && c != ')') {
      return false;
    }
  }
  return true;
}

bool ValidInstanceId(std::string_view s) {
  if (s.empty() || s.size() > 20) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// {"code", "message", "details": [{"code", "message"}]}: the top code
// decides unless it says nothing we know, then the details do.
CloudError ErrorFromObject(const json& error) {
  CloudError out;
  out.code = StringField(error, "code");
  out.message = StringField(error, "message");
  out.kind = AzureErrorCodeKind(out.code, out.message);
  if (out.kind == ProviderErrorKind::kNone && error.is_object()) {
    if (auto d = error.find("details"); d != error.end() && d->is_array()) {
      for (const json& detail : *d) {
        ProviderErrorKind k =
            AzureErrorCodeKind(StringField(detail, "code"), StringField(detail, "message"));
        if (k != ProviderErrorKind::kNone) {
          out.kind = k;
          out.code += "/" + StringField(detail, "code");
          break;
        }
      }
    }
  }
  if (out.message.size() > 512) out.message.resize(512);
  return out;
}

}  // namespace

std::string AzureVmssRef::Path() const {
  return "/subscriptions/" + subscription_id + "/resourceGroups/" + resource_group +
         std::string(kVmssSegment) + name;
}

Result<AzureVmssRef> ParseAzureVmssName(std::string_view group, const AzureVmssOptions& options) {
  AzureVmssRef ref;
  std::string_view g = group;
  if (g.starts_with('/')) g.remove_prefix(1);
  if (g.starts_with("subscriptions/")) {
    std::vector<std::string_view> parts;
    while (!g.empty()) {
      size_t slash = g.find('/');
      parts.push_back(g.substr(0, slash));
      g = slash == std::string_view::npos ? std::string_view() : g.substr(slash + 1);
    }
    if (parts.size() != 8 || !EqualsIgnoreCase(parts[2], "resourceGroups") ||
        !EqualsIgnoreCase(parts[4], "providers") ||
        !EqualsIgnoreCase(parts[5], "Microsoft.Compute") ||
        !EqualsIgnoreCase(parts[6], "virtualMachineScaleSets")) {
      return ProviderError(ProviderErrorKind::kInvalid,
                           "azure-vmss: group \"" + std::string(group) +
                               "\" is not a virtualMachineScaleSets resource ID");
    }
    ref = {std::string(parts[1]), std::string(parts[3]), std::string(parts[7])};
  } else {
    ref = {options.subscription_id, options.resource_group, std::string(group)};
  }
  if (!ValidName(ref.subscription_id) || !ValidName(ref.resource_group) || !ValidName(ref.name)) {
    return ProviderError(ProviderErrorKind::kInvalid,
                         "azure-vmss: group \"" + std::string(group) +
                             "\" needs a valid subscription, resource group and name");
  }
  return ref;
}

std::string AzureProviderId(const AzureVmssRef& ref, std::string_view instance_id) {
  return "azure://" + ref.Path() + "/virtualMachines/" + std::string(instance_id);
}

ProviderErrorKind AzureErrorCodeKind(std::string_view code, std::string_view message) {
  static constexpr std::pair<std::string_view, ProviderErrorKind> kCodes[] = {
      {"AllocationFailed", ProviderErrorKind::kInsufficientCapacity},
      {"ZonalAllocationFailed", ProviderErrorKind::kInsufficientCapacity},
      {"SkuNotAvailable", ProviderErrorKind::kInsufficientCapacity},
      {"OverconstrainedAllocationRequest", ProviderErrorKind::kInsufficientCapacity},
      {"OverconstrainedZonalAllocationRequest", ProviderErrorKind::kInsufficientCapacity},
      {"QuotaExceeded", ProviderErrorKind::kQuotaExceeded},
      {"TooManyRequests", ProviderErrorKind::kThrottled},
      {"RetryableErrorDueToAnotherOperation", ProviderErrorKind::kUnavailable},
      {"AuthenticationFailed", ProviderErrorKind::kAuth},
      {"AuthorizationFailed", ProviderErrorKind::kAuth},
      {"LinkedAuthorizationFailed", ProviderErrorKind::kAuth},
      {"InvalidAuthenticationToken", ProviderErrorKind::kAuth},
      {"InvalidAuthenticationTokenTenant", ProviderErrorKind::kAuth},
      {"ExpiredAuthenticationToken", ProviderErrorKind::kAuth},
      {"ResourceNotFound", ProviderErrorKind::kNotFound},
      {"NotFound", ProviderErrorKind::kNotFound},
      {"ResourceGroupNotFound", ProviderErrorKind::kNotFound},
      {"ParentResourceNotFound", ProviderErrorKind::kNotFound},
      {"InvalidParameter", ProviderErrorKind::kInvalid},
      {"BadRequest", ProviderErrorKind::kInvalid},
      {"InvalidRequestContent", ProviderErrorKind::kInvalid},
      {"InvalidRequestFormat", ProviderErrorKind::kInvalid},
      {"PropertyChangeNotAllowed", ProviderErrorKind::kInvalid},
  };
  if (code == "OperationNotAllowed") {
    // CRP uses it for quota ("...exceeding approved ... Cores quota") and for
    // plain refusals alike; throttling carries details code TooManyRequests.
    return Lower(message).find("quota") != std::string::npos ? ProviderErrorKind::kQuotaExceeded
                                                             : ProviderErrorKind::kNone;
  }
  for (const auto& [name, kind] : kCodes) {
    if (code == name) return kind;
  }
  return ProviderErrorKind::kNone;
}

CloudError ClassifyAzureHttpError(const kube::HttpResponse& resp) {
  CloudError out;
  try {
    json doc = json::parse(resp.body);
    if (doc.is_object() && doc.contains("error")) out = ErrorFromObject(doc["error"]);
  } catch (const json::exception&) {
  }
  if (resp.status == 429 && out.kind != ProviderErrorKind::kUnavailable) {
    out.kind = ProviderErrorKind::kThrottled;
  }
  if (out.kind == ProviderErrorKind::kNone) {
    // OperationNotAllowed without a quota message is a refusal of the request.
    out.kind = out.code == "OperationNotAllowed" ? ProviderErrorKind::kInvalid
                                                 : KindForHttpStatus(resp.status);
  }
  return out;
}

Result<AzureVmssInfo> ParseAzureVmss(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return InvalidArgumentError("scale set is not a JSON object");
    AzureVmssInfo info;
    info.name = StringField(doc, "name");
    info.location = StringField(doc, "location");
    auto sku = doc.find("sku");
    if (sku == doc.end() || !sku->is_object()) return InvalidArgumentError("scale set has no sku");
    auto cap = sku->find("capacity");
    if (cap == sku->end() || !cap->is_number_integer() || cap->get<int64_t>() < 0 ||
        cap->get<int64_t>() > 1'000'000) {
      return InvalidArgumentError("scale set has no valid sku.capacity");
    }
    info.capacity = static_cast<int>(cap->get<int64_t>());
    info.etag = StringField(doc, "etag");
    info.lifecycle = Lifecycle::kOnDemand;
    if (auto props = doc.find("properties"); props != doc.end() && props->is_object()) {
      info.provisioning_state = StringField(*props, "provisioningState");
      if (auto profile = props->find("virtualMachineProfile");
          profile != props->end() && profile->is_object()) {
        std::string priority = StringField(*profile, "priority");
        if (priority == "Spot" || priority == "Low") info.lifecycle = Lifecycle::kSpot;
      }
    }
    return info;
  } catch (const json::exception&) {
    return InvalidArgumentError("scale set is not JSON");
  }
}

Result<AzureVmssVmPage> ParseAzureVmssVms(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return InvalidArgumentError("VM list is not a JSON object");
    AzureVmssVmPage page;
    page.next_link = StringField(doc, "nextLink");
    auto value = doc.find("value");
    if (value == doc.end() || !value->is_array()) {
      return InvalidArgumentError("VM list has no value array");
    }
    for (const json& vm : *value) {
      if (!vm.is_object()) return InvalidArgumentError("a VM is not an object");
      AzureVmssVm out;
      out.instance_id = StringField(vm, "instanceId");
      if (!ValidInstanceId(out.instance_id)) {
        return InvalidArgumentError("a VM has no numeric instanceId");
      }
      out.name = StringField(vm, "name");
      std::string location = StringField(vm, "location");
      out.zone = location;
      if (auto zones = vm.find("zones");
          zones != vm.end() && zones->is_array() && !zones->empty() && (*zones)[0].is_string()) {
        out.zone = location + "-" + (*zones)[0].get<std::string>();
      }
      if (auto props = vm.find("properties"); props != vm.end()) {
        out.provisioning_state = StringField(*props, "provisioningState");
      }
      page.vms.push_back(std::move(out));
    }
    return page;
  } catch (const json::exception&) {
    return InvalidArgumentError("VM list is not JSON");
  }
}

Result<AzureAsyncStatus> ParseAzureAsyncOperation(std::string_view text) {
  try {
    json doc = json::parse(text);
    if (!doc.is_object()) return InvalidArgumentError("async operation is not a JSON object");
    AzureAsyncStatus out;
    out.status = StringField(doc, "status");
    if (out.status.empty()) return InvalidArgumentError("async operation has no status");
    if (out.status == "Failed" || out.status == "Canceled") {
      out.error = ErrorFromObject(doc.contains("error") ? doc["error"] : json::object());
      if (out.error.kind == ProviderErrorKind::kNone) {
        out.error.kind = out.status == "Canceled" ? ProviderErrorKind::kUnavailable
                         : out.error.code == "OperationNotAllowed"
                             ? ProviderErrorKind::kInvalid
                             : ProviderErrorKind::kUnavailable;
      }
      if (out.error.code.empty()) out.error.code = out.status;
    }
    return out;
  } catch (const json::exception&) {
    return InvalidArgumentError("async operation is not JSON");
  }
}

AzureVmssProvider::AzureVmssProvider(AzureVmssOptions options,
                                     std::shared_ptr<kube::HttpTransport> transport,
                                     std::shared_ptr<AccessTokenSource> tokens, Clock& clock,
                                     Sleeper sleeper)
    : options_(std::move(options)),
      tokens_(std::move(tokens)),
      http_(std::move(transport), clock, sleeper ? std::move(sleeper) : ClockSleeper(clock),
            options_.retry, &ClassifyAzureHttpError, options_.request_timeout) {}

std::string AzureVmssProvider::Url(const AzureVmssRef& ref, std::string_view suffix) const {
  return options_.arm_endpoint + ref.Path() + std::string(suffix) +
         "?api-version=" + kube::UrlEncode(options_.api_version);
}

Result<kube::HttpResponse> AzureVmssProvider::Call(std::string method, std::string url,
                                                   std::string body, std::string_view what,
                                                   std::string if_match) {
  // Polling and paging URLs come from the server: the token goes only to ARM.
  if (!url.starts_with(options_.arm_endpoint + "/")) {
    return ProviderError(
        ProviderErrorKind::kInvalid,
        std::string(what) + ": refusing to follow a URL outside " + options_.arm_endpoint);
  }
  GPU_ASSIGN_OR_RETURN(std::string token, tokens_->Token());
  kube::HttpRequest req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.headers = {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  if (!if_match.empty()) req.headers.emplace_back("If-Match", std::move(if_match));
  req.body = std::move(body);
  spdlog::debug("azure-vmss: {} {}", req.method, req.url);
  return http_.Do(std::move(req), what);
}

Result<AzureVmssInfo> AzureVmssProvider::GetVmss(const AzureVmssRef& ref) {
  std::string what = "azure-vmss get " + ref.name;
  GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp, Call("GET", Url(ref), "", what));
  auto info = ParseAzureVmss(resp.body);
  if (!info.ok()) {
    return ProviderError(ProviderErrorKind::kUnavailable, what + ": " + info.error().message());
  }
  return info;
}

Status AzureVmssProvider::WaitForCompletion(const kube::HttpResponse& initial,
                                            std::string_view what) {
  std::string async_url = initial.Header("Azure-AsyncOperation");
  std::string location = initial.Header("Location");
  if (async_url.empty() && location.empty()) return Status::Ok();  // completed synchronously
  std::optional<Clock::Duration> first_delay =
      ParseRetryAfter(initial.Header("Retry-After"), http_.clock().WallNow());
  CloudError failure;
  bool waited = false;
  GPU_RETURN_IF_ERROR(http_.PollUntilDone(
      [&]() -> Result<std::optional<Clock::Duration>> {
        if (!waited) {
          // ARM asks clients to wait before the first poll.
          waited = true;
          return std::optional<Clock::Duration>(first_delay.value_or(Clock::Duration(0)));
        }
        if (!async_url.empty()) {
          GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp,
                               Call("GET", async_url, "", std::string(what) + " (async status)"));
          auto status = ParseAzureAsyncOperation(resp.body);
          if (!status.ok()) {
            return ProviderError(ProviderErrorKind::kUnavailable,
                                 std::string(what) + ": " + status.error().message());
          }
          if (status->status == "Succeeded") return std::optional<Clock::Duration>();
          if (status->status == "Failed" || status->status == "Canceled") {
            failure = status->error;
            return std::optional<Clock::Duration>();
          }
          return std::optional<Clock::Duration>(
              ParseRetryAfter(resp.Header("Retry-After"), http_.clock().WallNow())
                  .value_or(Clock::Duration(0)));
        }
        GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp,
                             Call("GET", location, "", std::string(what) + " (location)"));
        if (resp.status != 202) return std::optional<Clock::Duration>();  // 200/204: done
        return std::optional<Clock::Duration>(
            ParseRetryAfter(resp.Header("Retry-After"), http_.clock().WallNow())
                .value_or(Clock::Duration(0)));
      },
      options_.poll_interval, options_.operation_limit, what));
  if (failure.kind == ProviderErrorKind::kNone) return Status::Ok();
  return ProviderError(failure.kind, std::string(what) + ": operation failed: " + failure.code +
                                         (failure.message.empty() ? "" : ": " + failure.message));
}

Status AzureVmssProvider::SetCapacity(const AzureVmssRef& ref, int capacity,
                                      const std::string& if_match) {
  std::string what = "azure-vmss set capacity of " + ref.name + " to " + std::to_string(capacity);
  json body = {{"sku", {{"capacity", capacity}}}};
  GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp,
                       Call("PATCH", Url(ref), body.dump(), what, if_match));
  return WaitForCompletion(resp, what);
}

Result<NodeGroup> AzureVmssProvider::Describe(const std::string& group) {
  GPU_ASSIGN_OR_RETURN(AzureVmssRef ref, ParseAzureVmssName(group, options_));
  GPU_ASSIGN_OR_RETURN(AzureVmssInfo info, GetVmss(ref));
  NodeGroup out;
  out.name = group;
  out.desired = info.capacity;
  out.min = options_.min_size;
  out.max = options_.max_size;
  std::string url = Url(ref, "/virtualMachines");
  std::string what = "azure-vmss list VMs of " + ref.name;
  for (int page = 0; !url.empty(); ++page) {
    if (page >= 10'000)
      return ProviderError(ProviderErrorKind::kUnavailable, what + ": too many pages");
    GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp, Call("GET", url, "", what));
    auto parsed = ParseAzureVmssVms(resp.body);
    if (!parsed.ok()) {
      return ProviderError(ProviderErrorKind::kUnavailable, what + ": " + parsed.error().message());
    }
    for (const AzureVmssVm& vm : parsed->vms) {
      Instance inst;
      inst.id = vm.instance_id;
      inst.provider_id = AzureProviderId(ref, vm.instance_id);
      inst.zone = vm.zone.empty() ? info.location : vm.zone;
      inst.lifecycle = info.lifecycle;
      inst.state = vm.provisioning_state;
      out.instances.push_back(std::move(inst));
    }
    if (parsed->next_link == url) {
      return ProviderError(ProviderErrorKind::kUnavailable, what + ": nextLink repeats");
    }
    url = parsed->next_link;
  }
  return out;
}

Result<AzureVmssRef> AzureVmssProvider::ResizableGroup(const std::string& group,
                                                       int desired) const {
  GPU_ASSIGN_OR_RETURN(AzureVmssRef ref, ParseAzureVmssName(group, options_));
  if (desired < options_.min_size || desired > options_.max_size) {
    return ProviderError(ProviderErrorKind::kInvalid, "azure-vmss " + ref.name + ": capacity " +
                                                          std::to_string(desired) + " outside [" +
                                                          std::to_string(options_.min_size) + ", " +
                                                          std::to_string(options_.max_size) + "]");
  }
  return ref;
}

Status AzureVmssProvider::SetDesiredSize(const std::string& group, int desired) {
  GPU_ASSIGN_OR_RETURN(AzureVmssRef ref, ResizableGroup(group, desired));
  return SetCapacity(ref, desired);
}

Status AzureVmssProvider::ResizeFrom(const std::string& group, int expected, int desired) {
  GPU_ASSIGN_OR_RETURN(AzureVmssRef ref, ResizableGroup(group, desired));
  GPU_ASSIGN_OR_RETURN(AzureVmssInfo info, GetVmss(ref));
  if (info.capacity != expected) {
    return ProviderError(ProviderErrorKind::kConflict, "azure-vmss " + ref.name + ": capacity is " +
                                                           std::to_string(info.capacity) +
                                                           ", not the " + std::to_string(expected) +
                                                           " read before; someone else resized it");
  }
  // The ETag of that read is the precondition: a change in between gets 412.
  return SetCapacity(ref, desired, info.etag);
}

Status AzureVmssProvider::TerminateInstances(const std::string& group,
                                             const std::vector<std::string>& instance_ids,
                                             bool decrement_desired) {
  GPU_ASSIGN_OR_RETURN(AzureVmssRef ref, ParseAzureVmssName(group, options_));
  if (instance_ids.empty()) return Status::Ok();
  for (const std::string& id : instance_ids) {
    if (!ValidInstanceId(id)) {
      return ProviderError(ProviderErrorKind::kInvalid,
                           "azure-vmss: \"" + id + "\" is not a scale set instance ID");
    }
  }
  std::string what = "azure-vmss delete instances of " + ref.name;
  json body = {{"instanceIds", instance_ids}};
  GPU_ASSIGN_OR_RETURN(kube::HttpResponse resp,
                       Call("POST", Url(ref, "/delete"), body.dump(), what));
  GPU_RETURN_IF_ERROR(WaitForCompletion(resp, what));
  if (decrement_desired) return Status::Ok();
  // Deleting lowered sku.capacity by one per instance; raising it again by as
  // many makes the scale set replace them. Added to the capacity read now,
  // not the one before the delete, so that a resize by someone else in
  // between stays; the read's ETag guards the write (412 -> kConflict).
  GPU_ASSIGN_OR_RETURN(AzureVmssInfo after, GetVmss(ref));
  return SetCapacity(ref, after.capacity + static_cast<int>(instance_ids.size()), after.etag);
}

Result<std::string> AzureVmssProvider::InstanceIdFromProviderId(
    std::string_view provider_id) const {
  // azure:///subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/
  //   virtualMachineScaleSets/N/virtualMachines/ID (cloud-provider-azure may
  // lowercase the resource group, so compare case-insensitively).
  auto invalid = [&] {
    return ProviderError(
        ProviderErrorKind::kInvalid,
        "azure-vmss: providerID \"" + std::string(provider_id) + "\" is not a scale set VM");
  };
  constexpr std::string_view kPrefix = "azure://";
  if (!provider_id.starts_with(kPrefix)) return invalid();
  std::string lower = Lower(provider_id);
  size_t vmss = lower.find(Lower(kVmssSegment));
  if (vmss == std::string::npos) return invalid();
  size_t vms = lower.find("/virtualmachines/", vmss + kVmssSegment.size());
  if (vms == std::string::npos) return invalid();
  std::string_view id = provider_id.substr(vms + std::string_view("/virtualmachines/").size());
  if (!ValidInstanceId(id)) return invalid();
  return std::string(id);
}

}  // namespace gpu_autoscaler::cloud
