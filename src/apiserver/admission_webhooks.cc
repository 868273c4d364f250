#include "apiserver/admission_webhooks.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>

#include <spdlog/spdlog.h>

#include "apiserver/patch.h"
#include "apiserver/resources.h"
#include "apiserver/store.h"
#include "common/base64.h"
#include "kube/transport.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

constexpr std::string_view kConfigGroup = "admissionregistration.k8s.io";
constexpr char kMutatingKey[] = "admissionregistration.k8s.io/mutatingwebhookconfigurations";
constexpr char kValidatingKey[] = "admissionregistration.k8s.io/validatingwebhookconfigurations";

std::vector<std::string> Strings(const json& obj, const char* field) {
  std::vector<std::string> out;
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string StringField(const json& obj, const char* field, std::string fallback = "") {
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool MatchesOrStar(const std::vector<std::string>& list, std::string_view value) {
  for (const auto& v : list) {
    if (v == "*" || v == value) return true;
  }
  return false;
}

std::map<std::string, std::string> LabelsOf(const json* obj) {
  std::map<std::string, std::string> out;
  if (obj == nullptr || !obj->is_object()) return out;
  auto meta = obj->find("metadata");
  if (meta == obj->end() || !meta->is_object()) return out;
  auto labels = meta->find("labels");
  if (labels == meta->end() || !labels->is_object()) return out;
  for (auto it = labels->begin(); it != labels->end(); ++it) {
    if (it->is_string()) out[it.key()] = it->get<std::string>();
  }
  return out;
}

bool IsWebhookConfiguration(const AdmissionAttributes& a) {
  return a.group == kConfigGroup &&
         (a.kind == "MutatingWebhookConfiguration" || a.kind == "ValidatingWebhookConfiguration");
}

std::string NewUid() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

// "https://host:port" of a URL (no path), or "" when it is not one.
std::string Origin(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  size_t path = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, path);
}

// A Go net/http-like reason for a libcurl failure ("dial tcp ...: connection refused").
std::string GoLikeReason(const WebhookCall& call, const kube::Error& e) {
  std::string prefix = "Post \"" + call.url + "\": ";
  if (e.kind() == kube::Error::Kind::kTimeout) return prefix + "context deadline exceeded";
  const std::string& m = e.message();
  if (m.find("Couldn't connect") != std::string::npos ||
      m.find("Connection refused") != std::string::npos) {
    std::string origin = Origin(call.url);
    std::string host_port = origin.substr(std::min(origin.size(), origin.find("://") + 3));
    return prefix + "dial tcp " + host_port + ": connect: connection refused";
  }
  if (m.find("SSL certificate problem") != std::string::npos) {
    return prefix + "x509: certificate signed by unknown authority";
  }
  if (m.find("subject name") != std::string::npos ||
      m.find("does not match") != std::string::npos) {
    return prefix + "x509: certificate is not valid for " +
           (call.server_name.empty() ? Origin(call.url) : call.server_name);
  }
  size_t colon = m.find(": ");  // the transport's "POST <url>: <detail>"
  return prefix + (colon == std::string::npos ? m : m.substr(colon + 2));
}

// apierrors.NewInternalError: 500 "Internal error occurred: WHY".
kube::Error InternalStatusError(const std::string& why) {
  kube::Error e(kube::Error::Kind::kApi, 500, "InternalError", "Internal error occurred: " + why);
  e.mutable_details().causes.push_back({"", why, ""});
  return e;
}

}  // namespace

AdmissionAttributes AdmissionAttributesFor(const ResourceInfo& info, std::string operation,
                                           std::string subresource, std::string ns,
                                           std::string name) {
  AdmissionAttributes a;
  a.operation = std::move(operation);
  a.group = info.group;
  a.version = info.version;
  a.resource = info.resource;
  a.kind = info.kind;
  a.namespaced = info.namespaced;
  a.subresource = std::move(subresource);
  a.ns = info.group.empty() && info.resource == "namespaces" ? name : std::move(ns);
  a.name = std::move(name);
  return a;
}

// ---------------------------------------------------------------------------
// Configuration.

std::vector<Webhook> ParseWebhookConfiguration(const json& config, bool mutating,
                                               std::vector<std::string>* skipped) {
  std::vector<Webhook> out;
  if (!config.is_object()) return out;
  std::string config_name;
  if (auto meta = config.find("metadata"); meta != config.end() && meta->is_object()) {
    config_name = StringField(*meta, "name");
  }
  auto hooks = config.find("webhooks");
  if (hooks == config.end() || !hooks->is_array()) return out;
  for (const auto& h : *hooks) {
    if (!h.is_object()) continue;
    Webhook w;
    w.configuration = config_name;
    w.name = StringField(h, "name");
    w.mutating = mutating;
    auto skip = [&](const std::string& why) {
      if (skipped != nullptr) skipped->push_back(config_name + "/" + w.name + ": " + why);
    };
    if (auto rules = h.find("rules"); rules != h.end() && rules->is_array()) {
      for (const auto& r : *rules) {
        if (!r.is_object()) continue;
        WebhookRule rule;
        rule.operations = Strings(r, "operations");
        rule.api_groups = Strings(r, "apiGroups");
        rule.api_versions = Strings(r, "apiVersions");
        rule.resources = Strings(r, "resources");
        rule.scope = StringField(r, "scope", "*");
        w.rules.push_back(std::move(rule));
      }
    }
    bool bad_selector = false;
    for (auto [field, target] : {std::pair{"namespaceSelector", &w.namespace_selector},
                                 std::pair{"objectSelector", &w.object_selector}}) {
      auto it = h.find(field);
      if (it == h.end() || it->is_null()) continue;
      auto parsed = kube::LabelSelector::FromJson(it->dump());
      if (!parsed.ok()) {
        skip(std::string(field) + ": " + parsed.error().message());
        bad_selector = true;
        break;
      }
      *target = std::move(parsed).value();
    }
    if (bad_selector) continue;
    w.fail_open = StringField(h, "failurePolicy", "Fail") == "Ignore";
    if (auto t = h.find("timeoutSeconds"); t != h.end() && t->is_number_integer()) {
      w.timeout_seconds = std::clamp(t->get<int>(), 1, 30);
    }
    w.side_effects = StringField(h, "sideEffects", "Unknown");
    w.match_equivalent = StringField(h, "matchPolicy", "Equivalent") != "Exact";
    w.review_versions = Strings(h, "admissionReviewVersions");
    auto cc = h.find("clientConfig");
    if (cc == h.end() || !cc->is_object()) {
      skip("clientConfig: Required value");
      continue;
    }
    w.url = StringField(*cc, "url");
    if (auto svc = cc->find("service"); svc != cc->end() && svc->is_object()) {
      Webhook::Service s;
      s.ns = StringField(*svc, "namespace");
      s.name = StringField(*svc, "name");
      s.path = StringField(*svc, "path");
      if (auto p = svc->find("port"); p != svc->end() && p->is_number_integer()) {
        s.port = p->get<int>();
      }
      w.service = std::move(s);
    }
    if (w.url.empty() && !w.service) {
      skip("clientConfig: exactly one of url or service is required");
      continue;
    }
    std::string bundle = StringField(*cc, "caBundle");
    if (!bundle.empty()) {
      auto pem = Base64Decode(bundle);
      if (!pem) {
        skip("clientConfig.caBundle: illegal base64 data");
        continue;
      }
      w.ca_pem = std::move(*pem);
    }
    out.push_back(std::move(w));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Matching (k8s.io/apiserver/pkg/admission/plugin/webhook/rules).

bool RuleMatches(const WebhookRule& rule, const AdmissionAttributes& a) {
  if (!MatchesOrStar(rule.operations, a.operation)) return false;
  if (!MatchesOrStar(rule.api_groups, a.group)) return false;
  if (!MatchesOrStar(rule.api_versions, a.version)) return false;
  bool resource_match = false;
  for (const auto& entry : rule.resources) {
    size_t slash = entry.find('/');
    std::string_view res = std::string_view(entry).substr(0, slash);
    std::string_view sub =
        slash == std::string::npos ? std::string_view() : std::string_view(entry).substr(slash + 1);
    if ((res == "*" || res == a.resource) && (sub == "*" || sub == a.subresource)) {
      resource_match = true;
      break;
    }
  }
  if (!resource_match) return false;
  bool is_namespace = a.group.empty() && a.resource == "namespaces";
  if (rule.scope == "Namespaced") return !is_namespace && !a.ns.empty() && a.namespaced;
  if (rule.scope == "Cluster") return is_namespace || !a.namespaced;
  return true;
}

bool NamespaceSelectorMatches(const Webhook& hook, const AdmissionAttributes& a,
                              const std::map<std::string, std::string>* namespace_labels) {
  if (hook.namespace_selector.empty()) return true;
  bool is_namespace = a.group.empty() && a.resource == "namespaces";
  if (is_namespace && a.subresource.empty()) {
    return hook.namespace_selector.Matches(LabelsOf(a.object != nullptr ? a.object : a.old_object));
  }
  if ((!a.namespaced && !is_namespace) || a.ns.empty()) return true;  // cluster-scoped
  if (namespace_labels == nullptr) {
    return hook.namespace_selector.Matches(std::map<std::string, std::string>());
  }
  return hook.namespace_selector.Matches(*namespace_labels);
}

bool ObjectSelectorMatches(const Webhook& hook, const AdmissionAttributes& a) {
  if (hook.object_selector.empty()) return true;
  if (a.object != nullptr && hook.object_selector.Matches(LabelsOf(a.object))) return true;
  return a.old_object != nullptr && hook.object_selector.Matches(LabelsOf(a.old_object));
}

// ---------------------------------------------------------------------------
// The AdmissionReview exchange.

json BuildAdmissionReview(const AdmissionAttributes& a, std::string_view uid,
                          std::string_view matched_version) {
  std::string version = matched_version.empty() ? a.version : std::string(matched_version);
  json request_kind = {{"group", a.group}, {"version", a.version}, {"kind", a.kind}};
  json request_resource = {{"group", a.group}, {"version", a.version}, {"resource", a.resource}};
  json kind = {{"group", a.group}, {"version", version}, {"kind", a.kind}};
  json resource = {{"group", a.group}, {"version", version}, {"resource", a.resource}};
  std::string api_version = a.group.empty() ? version : a.group + "/" + version;
  auto in_version = [&](const json* obj) -> json {
    if (obj == nullptr) return nullptr;
    json out = *obj;
    if (out.is_object() && out.contains("apiVersion") && a.subresource.empty()) {
      out["apiVersion"] = api_version;
    }
    if (out.is_object()) {
      // Zero time as Go encodes it: the server sets creationTimestamp after admission.
      auto meta = out.find("metadata");
      if (meta != out.end() && meta->is_object() && !meta->contains("creationTimestamp")) {
        (*meta)["creationTimestamp"] = nullptr;
      }
    }
    return out;
  };
  json request = json::object();
  request["uid"] = uid;
  request["kind"] = kind;
  request["resource"] = resource;
  if (!a.subresource.empty()) request["subResource"] = a.subresource;
  request["requestKind"] = request_kind;
  request["requestResource"] = request_resource;
  if (!a.subresource.empty()) request["requestSubResource"] = a.subresource;
  if (!a.name.empty()) request["name"] = a.name;
  if (!a.ns.empty()) request["namespace"] = a.ns;
  request["operation"] = a.operation;
  // The embedded server knows one identity: the token holder, an administrator.
  request["userInfo"] = {{"username", "admin"},
                         {"uid", "admin-uid"},
                         {"groups", {"system:masters", "system:authenticated"}}};
  request["object"] = in_version(a.object);
  request["oldObject"] = in_version(a.old_object);
  request["dryRun"] = a.dry_run;
  json options;
  if (a.options != nullptr && a.options->is_object()) {
    options = *a.options;
  } else {
    options = json::object();
  }
  const char* options_kind = a.operation == "CREATE"   ? "CreateOptions"
                             : a.operation == "UPDATE" ? "UpdateOptions"
                             : a.operation == "DELETE" ? "DeleteOptions"
                                                       : nullptr;
  if (options_kind != nullptr) {
    options["apiVersion"] = "meta.k8s.io/v1";
    options["kind"] = options_kind;
    if (a.dry_run && !options.contains("dryRun")) options["dryRun"] = {"All"};
    request["options"] = std::move(options);
  }
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request", std::move(request)}};
}

Result<AdmissionVerdict> DecodeAdmissionResponse(std::string_view body, std::string_view uid,
                                                 bool mutating) {
  json review = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (review.is_discarded() || !review.is_object()) {
    return InvalidArgumentError("couldn't get version/kind; json parse error");
  }
  auto response = review.find("response");
  if (response == review.end() || !response->is_object()) {
    return InvalidArgumentError("webhook response was absent");
  }
  std::string got_uid = StringField(*response, "uid");
  if (got_uid != uid) {
    return InvalidArgumentError("expected response.uid=\"" + std::string(uid) + "\", got \"" +
                                got_uid + "\"");
  }
  std::string api_version = StringField(review, "apiVersion");
  std::string kind = StringField(review, "kind");
  if (api_version != "admission.k8s.io/v1" || kind != "AdmissionReview") {
    return InvalidArgumentError(
        "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got " +
        api_version + ", Kind=" + kind);
  }
  AdmissionVerdict v;
  auto allowed = response->find("allowed");
  v.allowed = allowed != response->end() && allowed->is_boolean() && allowed->get<bool>();
  if (auto status = response->find("status"); status != response->end() && status->is_object()) {
    v.result = *status;
  }
  std::string patch64 = StringField(*response, "patch");
  auto patch_type = response->find("patchType");
  bool has_patch_type = patch_type != response->end() && !patch_type->is_null();
  if (!patch64.empty()) {
    auto patch = Base64Decode(patch64);
    if (!patch) return InvalidArgumentError("response.patch: illegal base64 data");
    v.patch = std::move(*patch);
  }
  if (mutating) {
    if (!v.patch.empty()) {
      if (!has_patch_type) {
        return InvalidArgumentError("webhook returned response.patch but not response.patchType");
      }
    }
  } else {
    if (!v.patch.empty()) {
      return InvalidArgumentError("validating webhooks may not return response.patch");
    }
    if (has_patch_type) {
      return InvalidArgumentError("validating webhooks may not return response.patchType");
    }
  }
  if (!v.patch.empty()) {
    std::string type = patch_type->is_string() ? patch_type->get<std::string>() : "";
    if (type != "JSONPatch") {
      return InvalidArgumentError("unsupported patch type \"" + type + "\"");
    }
  }
  v.warnings = Strings(*response, "warnings");
  return v;
}

kube::Error WebhookDeniedError(std::string_view webhook, const json& status) {
  std::string denied_by = "admission webhook \"" + std::string(webhook) + "\" denied the request";
  json s = status.is_object() ? status : json::object();
  int64_t code = 0;
  if (auto c = s.find("code"); c != s.end() && c->is_number_integer()) code = c->get<int64_t>();
  if (code < 400) code = 400;  // never a rejection with a success code
  if (code > 599) code = 500;  // not an HTTP status this server can send
  kube::Error parsed = kube::Error::FromStatusJson(static_cast<int>(code), s);
  std::string message = StringField(s, "message");
  std::string reason = StringField(s, "reason");
  std::string text = !message.empty()  ? denied_by + ": " + message
                     : !reason.empty() ? denied_by + ": " + reason
                                       : denied_by + " without explanation";
  kube::Error out(kube::Error::Kind::kApi, static_cast<int>(code), reason, std::move(text));
  out.mutable_details() = parsed.details();
  return out;
}

kube::Error WebhookCallFailedError(std::string_view webhook, std::string_view reason) {
  std::string what =
      "failed calling webhook \"" + std::string(webhook) + "\": " + std::string(reason);
  return InternalStatusError(what);  // ErrCallingWebhook under failurePolicy Fail
}

// ---------------------------------------------------------------------------
// Transport.

WebhookPoster NewCurlWebhookPoster() {
  struct Transports {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<kube::HttpTransport>> by_key;
  };
  auto cache = std::make_shared<Transports>();
  return [cache](const WebhookCall& call) -> Result<std::string> {
    std::string origin = Origin(call.url);
    if (origin.rfind("https://", 0) != 0) {
      return InvalidArgumentError("Post \"" + call.url + "\": webhook URLs must be https");
    }
    std::string key = origin + "\n" + call.server_name + "\n" + call.ca_pem;
    std::shared_ptr<kube::HttpTransport> transport;
    {
      std::lock_guard<std::mutex> lock(cache->mu);
      auto it = cache->by_key.find(key);
      if (it != cache->by_key.end()) {
        transport = it->second;
      } else {
        kube::ClientConfig cfg;
        cfg.server = origin;
        cfg.ca_pem = call.ca_pem;
        cfg.tls_server_name = call.server_name;
        auto made = kube::NewCurlTransport(cfg);
        if (!made.ok()) return InvalidArgumentError(made.error().message());
        transport = std::shared_ptr<kube::HttpTransport>(std::move(made).value());
        if (cache->by_key.size() >= 64) cache->by_key.clear();
        cache->by_key[key] = transport;
      }
    }
    kube::HttpRequest req;
    req.method = "POST";
    req.url = call.url;
    req.body = call.body;
    req.timeout = call.timeout;
    req.headers = {{"Content-Type", "application/json"},
                   {"Accept", "application/json, */*"},
                   {"User-Agent", "kube-apiserver-admission"}};
    auto resp = transport->Do(req);
    if (!resp.ok()) return InternalError(GoLikeReason(call, resp.error()));
    if (resp->status < 200 || resp->status >= 300) {
      json status = json::parse(resp->body, nullptr, false);
      if (status.is_object() && status.value("kind", "") == "Status" &&
          status.contains("message") && status["message"].is_string()) {
        return InternalError(status["message"].get<std::string>());
      }
      return InternalError("the server responded with the status code " +
                           std::to_string(resp->status) + " but did not return more information");
    }
    return std::move(resp->body);
  };
}

// ---------------------------------------------------------------------------
// AdmissionWebhooks.

struct AdmissionWebhooks::Snapshot {
  std::vector<Webhook> mutating, validating;  // in call order
};

AdmissionWebhooks::AdmissionWebhooks(const Store& store, ServedFn served, WebhookPoster poster)
    : store_(store),
      served_(std::move(served)),
      poster_(poster ? std::move(poster) : NewCurlWebhookPoster()) {}

AdmissionWebhooks::~AdmissionWebhooks() = default;

void AdmissionWebhooks::Invalidate() {
  dirty_.store(true);
  active_.store(true);
}

bool AdmissionWebhooks::Active() {
  if (!active_.load(std::memory_order_acquire)) return false;
  auto snap = Load();
  return !snap->mutating.empty() || !snap->validating.empty();
}

std::shared_ptr<const AdmissionWebhooks::Snapshot> AdmissionWebhooks::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirty_.exchange(false) && snapshot_) return snapshot_;
  auto snap = std::make_shared<Snapshot>();
  for (bool mutating : {true, false}) {
    ListRequest lr;
    lr.storage_key = mutating ? kMutatingKey : kValidatingKey;
    auto listed = store_.List(lr);
    if (!listed.ok()) continue;
    // Keys of cluster-scoped objects are their names: the list is in name order.
    for (const auto& obj : listed->items) {
      std::vector<std::string> skipped;
      auto hooks = ParseWebhookConfiguration(obj->Parse(), mutating, &skipped);
      for (const auto& why : skipped)
        spdlog::warn("admission: ignoring webhook {}", why);
      auto& into = mutating ? snap->mutating : snap->validating;
      for (auto& h : hooks)
        into.push_back(std::move(h));
    }
  }
  snapshot_ = snap;
  // A configuration written meanwhile keeps the flag up until the next load.
  active_.store(!snap->mutating.empty() || !snap->validating.empty() || dirty_.load(),
                std::memory_order_release);
  return snapshot_;
}

Result<WebhookCall> AdmissionWebhooks::Target(const Webhook& hook) const {
  WebhookCall call;
  call.ca_pem = hook.ca_pem;
  call.timeout = std::chrono::seconds(hook.timeout_seconds);
  std::string query = "timeout=" + std::to_string(hook.timeout_seconds) + "s";
  if (!hook.url.empty()) {
    call.url = hook.url + (hook.url.find('?') == std::string::npos ? "?" : "&") + query;
    return call;
  }
  const Webhook::Service& s = *hook.service;
  // Like kube-apiserver's endpoint routing: Service port -> Endpoints port -> an address.
  ObjectPtr svc = store_.Get("/services", s.ns + "/" + s.name);
  if (!svc) return NotFoundError("service \"" + s.name + "\" not found");
  json service = svc->Parse();
  std::string port_name;
  bool found = false;
  for (const auto& p : service.value("spec", json::object()).value("ports", json::array())) {
    if (p.is_object() && p.value("port", 0) == s.port) {
      port_name = p.value("name", "");
      found = true;
      break;
    }
  }
  if (!found) {
    return NotFoundError("no service port " + std::to_string(s.port) + " found for service \"" +
                         s.name + "\"");
  }
  ObjectPtr eps = store_.Get("/endpoints", s.ns + "/" + s.name);
  if (!eps) return NotFoundError("endpoints \"" + s.name + "\" not found");
  json endpoints = eps->Parse();
  for (const auto& subset : endpoints.value("subsets", json::array())) {
    if (!subset.is_object()) continue;
    int port = 0;
    for (const auto& p : subset.value("ports", json::array())) {
      if (p.is_object() && p.value("name", "") == port_name) port = p.value("port", 0);
    }
    auto addresses = subset.value("addresses", json::array());
    if (port == 0 || !addresses.is_array() || addresses.empty()) continue;
    std::string ip = addresses[0].value("ip", "");
    if (ip.empty()) continue;
    std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
    std::string path = s.path.empty() ? "/" : s.path;
    call.url = "https://" + host + ":" + std::to_string(port) + path +
               (path.find('?') == std::string::npos ? "?" : "&") + query;
    call.server_name = s.name + "." + s.ns + ".svc";
    return call;
  }
  return UnavailableError("no endpoints available for service \"" + s.name + "\"");
}

kube::Result<std::monostate> AdmissionWebhooks::Mutate(const AdmissionAttributes& attrs,
                                                       json* object,
                                                       std::vector<std::string>* warnings) {
  try {
    return Run(true, attrs, object, warnings);
  } catch (const json::exception& e) {  // e.g. an object that cannot be serialized
    return InternalStatusError(e.what());
  }
}

kube::Result<std::monostate> AdmissionWebhooks::Validate(const AdmissionAttributes& attrs,
                                                         std::vector<std::string>* warnings) {
  try {
    return Run(false, attrs, nullptr, warnings);
  } catch (const json::exception& e) {
    return InternalStatusError(e.what());
  }
}

kube::Result<std::monostate> AdmissionWebhooks::Run(bool mutating, const AdmissionAttributes& in,
                                                    json* object,
                                                    std::vector<std::string>* warnings) {
  if (IsWebhookConfiguration(in)) return std::monostate{};
  auto snap = Load();
  const auto& hooks = mutating ? snap->mutating : snap->validating;
  if (hooks.empty()) return std::monostate{};
  AdmissionAttributes attrs = in;
  if (mutating && object != nullptr) attrs.object = object;
  std::optional<std::map<std::string, std::string>> ns_labels;
  bool ns_loaded = false;
  for (const Webhook& hook : hooks) {
    // Rules: exactly, or (Equivalent) with another version of the same resource.
    std::string matched_version;
    bool matched = std::any_of(hook.rules.begin(), hook.rules.end(),
                               [&](const WebhookRule& r) { return RuleMatches(r, attrs); });
    if (!matched && hook.match_equivalent && served_) {
      AdmissionAttributes other = attrs;
      for (const auto& r : hook.rules) {
        for (const auto& v : r.api_versions) {
          if (v == "*" || v == attrs.version || !served_(attrs.group, v, attrs.resource)) continue;
          other.version = v;
          if (RuleMatches(r, other)) {
            matched_version = v;
            break;
          }
        }
        if (!matched_version.empty()) break;
      }
      matched = !matched_version.empty();
    }
    if (!matched) continue;
    if (!ns_loaded && !attrs.ns.empty() && !hook.namespace_selector.empty()) {
      ns_loaded = true;
      if (ObjectPtr ns = store_.Get("/namespaces", attrs.ns)) ns_labels = ns->labels;
    }
    if (!NamespaceSelectorMatches(hook, attrs, ns_labels ? &*ns_labels : nullptr)) continue;
    if (!ObjectSelectorMatches(hook, attrs)) continue;

    if (attrs.dry_run && hook.side_effects != "None" && hook.side_effects != "NoneOnDryRun") {
      kube::Error e(kube::Error::Kind::kApi, 400, "BadRequest",
                    "admission webhook \"" + hook.name + "\" does not support dry run");
      return e;
    }
    auto fail = [&](const std::string& reason) -> std::optional<kube::Error> {
      if (hook.fail_open) {
        spdlog::warn("admission: failed calling webhook, failing open {}: {}", hook.name, reason);
        return std::nullopt;
      }
      spdlog::warn("admission: failed calling webhook, failing closed {}: {}", hook.name, reason);
      return WebhookCallFailedError(hook.name, reason);
    };
    if (!Contains(hook.review_versions, "v1")) {
      if (auto e = fail("could not create admission objects: webhook does not accept known "
                        "AdmissionReview versions")) {
        return *e;
      }
      continue;
    }
    auto target = Target(hook);
    if (!target.ok()) {
      if (auto e = fail(target.error().message())) return *e;
      continue;
    }
    std::string uid = NewUid();
    target->body = BuildAdmissionReview(attrs, uid, matched_version).dump();
    auto body = poster_(*target);
    if (!body.ok()) {
      if (auto e = fail(body.error().message())) return *e;
      continue;
    }
    auto verdict = DecodeAdmissionResponse(*body, uid, mutating);
    if (!verdict.ok()) {
      if (auto e = fail("received invalid webhook response: " + verdict.error().message())) {
        return *e;
      }
      continue;
    }
    if (warnings != nullptr) {
      for (auto& w : verdict->warnings)
        warnings->push_back(std::move(w));
    }
    if (!verdict->allowed) return WebhookDeniedError(hook.name, verdict->result);
    if (!mutating || verdict->patch.empty() || object == nullptr) continue;
    auto patched = ApplyJsonPatch(*object, verdict->patch);
    if (!patched.ok()) return InternalStatusError(patched.error().message());
    *object = std::move(patched).value();
    attrs.object = object;
  }
  return std::monostate{};
}

}  // namespace gpu_autoscaler::apiserver
