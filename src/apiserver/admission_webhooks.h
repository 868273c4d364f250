// File: src/apiserver/admission_webhooks.h
//
// Dynamic admission for the embedded API server: calls the webhooks that the
// stored MutatingWebhookConfiguration / ValidatingWebhookConfiguration objects
// (admissionregistration.k8s.io/v1) register, the way kube-apiserver v1.20's
// MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins do:
//
//   - rules (operations, apiGroups, apiVersions, resources with "pods/status"
//     style subresources and "*", scope), namespaceSelector (labels of the
//     Namespace in the store; a Namespace is matched against its own labels;
//     other cluster-scoped objects are not filtered), objectSelector (new or
//     old object's labels), matchPolicy (Equivalent also matches another
//     served version of the same group/resource), failurePolicy (Fail by
//     default, Ignore), timeoutSeconds (default 10, at most 30), sideEffects
//     (a dryRun request to a webhook that is not None/NoneOnDryRun is a 400),
//     admissionReviewVersions (v1 is the only one spoken).
//   - clientConfig.url, or clientConfig.service resolved like the real
//     server's endpoint routing: the Service in the store maps the configured
//     port (default 443) to an Endpoints port, and the call goes to the first
//     endpoint address while TLS verifies the name "<name>.<namespace>.svc"
//     against caBundle.
//   - mutating webhooks run first, in configuration name order then webhook
//     order, each JSONPatch applied before the next call; validating webhooks
//     see the final object. reinvocationPolicy IfNeeded is not honoured (no
//     second round). Webhooks are never called for webhook configurations.
//
// Errors are kube::Error values shaped like the real server's: a denial is
// `admission webhook "NAME" denied the request: MESSAGE` with the webhook's
// code (at least 400); a failed call under failurePolicy Fail is
// 500 `Internal error occurred: failed calling webhook "NAME": ...`.
//
//   AdmissionWebhooks admission(store);
//   admission.Invalidate();                         // after a configuration write
//   if (admission.Active()) {
//     AdmissionAttributes a{...};                   // operation, resource, objects
//     auto ok = admission.Mutate(a, object, &warnings);   // may rewrite `object`
//     ...server validation...
//     ok = admission.Validate(a, &warnings);
//   }
//
// Thread-safety: AdmissionWebhooks is thread-safe (a configuration snapshot is
// rebuilt lazily under a mutex; calls run without locks). The free functions
// are pure.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/error.h"
#include "kube/selector.h"

namespace gpu_autoscaler::apiserver {

class Store;
struct ResourceInfo;

// What one API request does, as admission sees it (admission.Attributes).
struct AdmissionAttributes {
  std::string operation;  // "CREATE", "UPDATE", "DELETE" or "CONNECT"
  std::string group, version, resource, kind;
  bool namespaced = true;
  std::string subresource;  // "" or "status", "binding", ...
  // The object's namespace; for a Namespace object, its own name (as the
  // real server sets it). "" for other cluster-scoped objects.
  std::string ns;
  std::string name;                            // "" when generateName will pick one
  const nlohmann::json* object = nullptr;      // with apiVersion/kind; null for DELETE
  const nlohmann::json* old_object = nullptr;  // null for CREATE
  bool dry_run = false;
  // CreateOptions / UpdateOptions / DeleteOptions sent along; null: derived.
  const nlohmann::json* options = nullptr;
};

// Attributes of a request on `info` (a Namespace's ns is its own name).
AdmissionAttributes AdmissionAttributesFor(const ResourceInfo& info, std::string operation,
                                           std::string subresource, std::string ns,
                                           std::string name);

struct WebhookRule {
  std::vector<std::string> operations, api_groups, api_versions, resources;
  std::string scope = "*";  // "*", "Namespaced" or "Cluster"
};

// One webhook of a configuration, parsed and defaulted.
struct Webhook {
  std::string configuration;  // metadata.name of its configuration
  std::string name;
  bool mutating = false;
  std::vector<WebhookRule> rules;
  kube::LabelSelector namespace_selector, object_selector;  // empty: everything
  bool fail_open = false;                                   // failurePolicy: Ignore
  int timeout_seconds = 10;
  std::string side_effects = "Unknown";
  bool match_equivalent = true;  // matchPolicy: Equivalent (the v1 default)
  std::vector<std::string> review_versions;
  std::string url;  // clientConfig.url, or:
  struct Service {
    std::string ns, name, path;
    int port = 443;
  };
  std::optional<Service> service;
  std::string ca_pem;  // decoded caBundle
};

// Parses the webhooks of one configuration object (defaulting as the v1 API
// does). Malformed entries are skipped with a reason in `skipped`.
std::vector<Webhook> ParseWebhookConfiguration(const nlohmann::json& config, bool mutating,
                                               std::vector<std::string>* skipped = nullptr);

// Whether `rule` covers the request (operation, group, version, resource and
// subresource, scope). `version`/`resource` may differ from the attributes'
// under matchPolicy Equivalent; pass the attributes' own for Exact.
bool RuleMatches(const WebhookRule& rule, const AdmissionAttributes& attrs);

// namespaceSelector: `namespace_labels` are the labels of attrs.ns's Namespace
// (null when it does not exist). Cluster-scoped objects other than Namespaces
// always match; a Namespace matches against its own (new, else old) labels.
bool NamespaceSelectorMatches(const Webhook& hook, const AdmissionAttributes& attrs,
                              const std::map<std::string, std::string>* namespace_labels);
// objectSelector: the new object's labels or the old object's.
bool ObjectSelectorMatches(const Webhook& hook, const AdmissionAttributes& attrs);

// The admission.k8s.io/v1 AdmissionReview request body sent to a webhook.
// `matched_version` is the version the rule matched (Equivalent matching).
nlohmann::json BuildAdmissionReview(const AdmissionAttributes& attrs, std::string_view uid,
                                    std::string_view matched_version = "");

// A webhook's decoded answer.
struct AdmissionVerdict {
  bool allowed = false;
  nlohmann::json result;  // response.status (a metav1.Status), or null
  std::string patch;      // decoded JSONPatch bytes; "" when none
  std::vector<std::string> warnings;
};

// Decodes and checks an AdmissionReview response body (uid, apiVersion/kind,
// patchType). The error text is what follows "received invalid webhook
// response: " in the real server's message. Never throws.
Result<AdmissionVerdict> DecodeAdmissionResponse(std::string_view body, std::string_view uid,
                                                 bool mutating);

// The denial as the real server reports it (k8s.io/apiserver webhook/errors
// ToStatusErr): code at least 400, reason/details kept, message prefixed.
kube::Error WebhookDeniedError(std::string_view webhook, const nlohmann::json& status);
// 500 InternalError: `failed calling webhook "NAME": REASON`.
kube::Error WebhookCallFailedError(std::string_view webhook, std::string_view reason);

// Posts a review to a webhook: returns the response body of a 200, or an error
// message (the REASON of WebhookCallFailedError). Replaceable for tests.
struct WebhookCall {
  std::string url;          // https://<host>:<port><path>?timeout=Ns
  std::string server_name;  // TLS name to verify ("" = the URL's host)
  std::string ca_pem;
  std::string body;
  std::chrono::milliseconds timeout{10'000};
};
using WebhookPoster = std::function<Result<std::string>(const WebhookCall& call)>;
// The libcurl poster (HTTPS verified with the call's CA and server name).
WebhookPoster NewCurlWebhookPoster();

class AdmissionWebhooks {
 public:
  // Whether the server serves group/version/resource (matchPolicy Equivalent
  // only considers served versions; null: Equivalent behaves like Exact).
  using ServedFn =
      std::function<bool(std::string_view group, std::string_view version, std::string_view res)>;
  // `store` must outlive this object; `poster` null: NewCurlWebhookPoster().
  explicit AdmissionWebhooks(const Store& store, ServedFn served = nullptr,
                             WebhookPoster poster = nullptr);
  ~AdmissionWebhooks();
  AdmissionWebhooks(const AdmissionWebhooks&) = delete;
  AdmissionWebhooks& operator=(const AdmissionWebhooks&) = delete;

  // Marks the configurations as changed; the next call reloads them.
  void Invalidate();
  // False when no webhook is configured: callers skip admission entirely.
  bool Active();

  // Calls the matching mutating webhooks in order and applies their patches
  // to `object` (which must be attrs.object's target, i.e. the same tree).
  kube::Result<std::monostate> Mutate(const AdmissionAttributes& attrs, nlohmann::json* object,
                                      std::vector<std::string>* warnings);
  // Calls the matching validating webhooks with the final object.
  kube::Result<std::monostate> Validate(const AdmissionAttributes& attrs,
                                        std::vector<std::string>* warnings);

 private:
  struct Snapshot;
  std::shared_ptr<const Snapshot> Load();
  kube::Result<std::monostate> Run(bool mutating, const AdmissionAttributes& attrs,
                                   nlohmann::json* object, std::vector<std::string>* warnings);
  // Resolves the URL and TLS name for `hook`; an error is a call failure reason.
  Result<WebhookCall> Target(const Webhook& hook) const;

  const Store& store_;
  ServedFn served_;
  WebhookPoster poster_;
  std::atomic<bool> dirty_{true};
  std::atomic<bool> active_{true};  // until the first load says otherwise
  std::mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_;
};

}  // namespace gpu_autoscaler::apiserver
