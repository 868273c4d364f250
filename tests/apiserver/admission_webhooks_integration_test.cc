// The gpu-autoscaler-apiserver program calling admission webhooks over real
// HTTPS on 127.0.0.1: the project's gpu-autoscaler-webhook program (reached
// through a Service and its Endpoints, its certificate verified with the
// caBundle it patched in) rewrites and denies pods; an in-test HTTPS server
// covers denials, warnings, failure policies, timeouts, dry runs and
// selectors.

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "net/http_server.h"
#include "support/api_server_fixture.h"
#include "support/loopback_port.h"
#include "support/test_paths.h"
#include "webhooks/webhook_integration_client.h"
#include "webhooks/webhook_process.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace wt = gpu_autoscaler::webhooks::testing;
using gpu_autoscaler::testing::TestApiServer;

// ---------------------------------------------------------------------------
// Talking to the API server (plain HTTP on loopback, bearer token).

struct ApiResult {
  long status = 0;
  json body;
  std::vector<std::string> warnings;  // Warning response headers
};

size_t CollectHeader(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  if (line.rfind("Warning:", 0) == 0 || line.rfind("warning:", 0) == 0) {
    std::string value = line.substr(8);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n'))
      value.pop_back();
    while (!value.empty() && value.front() == ' ')
      value.erase(0, 1);
    static_cast<std::vector<std::string>*>(out)->push_back(value);
  }
  return size * n;
}

ApiResult Api(const TestApiServer& api, const std::string& method, const std::string& path,
              const json& body = nullptr) {
  ApiResult result;
  CURL* curl = curl_easy_init();
  std::string url = api.url() + path;
  std::string text = body.is_null() ? "" : body.dump();
  std::string raw;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60'000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, wt::AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &raw);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.warnings);
  curl_slist* headers = nullptr;
  std::string auth = "Authorization: Bearer " + api.config().bearer_token;
  headers = curl_slist_append(headers, auth.c_str());
  headers = curl_slist_append(headers, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!text.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, long(text.size()));
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  result.body = json::parse(raw, nullptr, false);
  return result;
}

std::string Message(const ApiResult& r) {
  return r.body.is_object() ? r.body.value("message", "") : "";
}

void MustCreate(const TestApiServer& api, const std::string& path, const json& obj) {
  auto r = Api(api, "POST", path, obj);
  ASSERT_EQ(r.status, 201) << path << ": " << r.body.dump();
}

void CreateNamespace(const TestApiServer& api, const std::string& name, json labels = {}) {
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
  if (!labels.is_null()) ns["metadata"]["labels"] = labels;
  MustCreate(api, "/api/v1/namespaces", ns);
}

json GpuPod(const std::string& name, json annotations = json::object(),
            json labels = {{"app", "train"}}) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"labels", labels}, {"annotations", annotations}}},
      {"spec",
       {{"containers",
         {{{"name", "main"},
           {"image", "registry.example/app:1.0"},
           {"resources",
            {{"limits", {{"nvidia.com/gpu", "1"}}}, {"requests", {{"nvidia.com/gpu", "1"}}}}}}}}}}};
}

json Rules(const std::vector<std::string>& operations) {
  return json::array({{{"operations", operations},
                       {"apiGroups", {""}},
                       {"apiVersions", {"v1"}},
                       {"resources", {"pods"}},
                       {"scope", "Namespaced"}}});
}

const char* kMutating = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
const char* kValidating = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";

json Configuration(const std::string& kind, const std::string& name, std::vector<json> hooks) {
  return {{"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", kind},
          {"metadata", {{"name", name}}},
          {"webhooks", hooks}};
}

using wt::PollUntil;
using wt::WebhookProcess;

TEST(AdmissionWebhooksIntegration, GpuAutoscalerWebhookRewritesAndDeniesPods) {
  auto api = TestApiServer::Start();
  ASSERT_TRUE(api) << "api server did not start";
  if (api->is_real_cluster()) GTEST_SKIP() << "a real cluster cannot reach a loopback webhook";
  CreateNamespace(*api, "gpu-autoscaler-system");
  CreateNamespace(*api, "ml", {{"gpu-sharing", "enabled"}});
  CreateNamespace(*api, "plain");
  MustCreate(*api, "/apis/gpuautoscaler.io/v1alpha1/gpusharingpolicies", json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUSharingPolicy",
    "metadata": {"name": "time-slice-all"},
    "spec": {"priority": 1, "strategy": {"type": "timeSlicing", "timeSlicing": {"replicas": 4}}}
  })"));
  // Registered through the Service, without a caBundle: the webhook's
  // --self-signed mode patches its CA in, as in a real deployment.
  auto hook = [](const std::string& name, const std::string& path, json rules) {
    return json{{"name", name},
                {"admissionReviewVersions", {"v1"}},
                {"sideEffects", "None"},
                {"timeoutSeconds", 5},
                {"rules", rules},
                {"namespaceSelector", {{"matchLabels", {{"gpu-sharing", "enabled"}}}}},
                {"clientConfig",
                 {{"service",
                   {{"name", "gpu-autoscaler-webhook"},
                    {"namespace", "gpu-autoscaler-system"},
                    {"path", path}}}}}};
  };
  MustCreate(
      *api, kMutating,
      Configuration("MutatingWebhookConfiguration", "gpu-autoscaler-webhook",
                    {hook("pods.mutate.gpuautoscaler.io", "/mutate-pods", Rules({"CREATE"}))}));
  MustCreate(*api, kValidating,
             Configuration("ValidatingWebhookConfiguration", "gpu-autoscaler-webhook",
                           {hook("pods.validate.gpuautoscaler.io", "/validate-pods",
                                 Rules({"CREATE", "UPDATE"}))}));

  wt::TempDir dir;
  std::string ca_file = dir.File("ca.crt");
  auto webhook =
      WebhookProcess::Start({"--self-signed", "--self-signed-ip", "127.0.0.1", "--write-ca-file",
                             ca_file, "--kubeconfig", wt::WriteKubeconfig(dir, api->config())});
  ASSERT_TRUE(webhook);
  std::string ca_pem = gpu_autoscaler::testing::ReadFileOrDie(ca_file);
  json port = {{"name", "https"}, {"port", 443}, {"targetPort", webhook->port()}};
  json service = {{"apiVersion", "v1"},
                  {"kind", "Service"},
                  {"metadata", {{"name", "gpu-autoscaler-webhook"}}},
                  {"spec", {{"ports", json::array({port})}}}};
  MustCreate(*api, "/api/v1/namespaces/gpu-autoscaler-system/services", service);
  json subset = {{"addresses", json::array({{{"ip", "127.0.0.1"}}})},
                 {"ports", json::array({{{"name", "https"}, {"port", webhook->port()}}})}};
  json endpoints = {{"apiVersion", "v1"},
                    {"kind", "Endpoints"},
                    {"metadata", {{"name", "gpu-autoscaler-webhook"}}},
                    {"subsets", json::array({subset})}};
  MustCreate(*api, "/api/v1/namespaces/gpu-autoscaler-system/endpoints", endpoints);
  std::string bundle = Base64Encode(ca_pem);
  auto patched = [&](const char* path) {
    auto r = Api(*api, "GET", std::string(path) + "/gpu-autoscaler-webhook");
    return r.status == 200 && r.body["webhooks"][0]["clientConfig"].value("caBundle", "") == bundle;
  };
  ASSERT_TRUE(PollUntil([&] { return patched(kMutating) && patched(kValidating); }))
      << "the webhook never patched the caBundle";
  ASSERT_TRUE(PollUntil([&] {
    return wt::Https("https://127.0.0.1:" + std::to_string(webhook->port()) + "/readyz", "GET", "",
                     ca_pem)
               .status == 200;
  })) << "the webhook's policy informer never synced";

  // In a namespace the selector picks: rewritten onto time-sliced GPUs.
  auto created = Api(*api, "POST", "/api/v1/namespaces/ml/pods", GpuPod("trainer-0"));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const json& limits = created.body["spec"]["containers"][0]["resources"]["limits"];
  EXPECT_TRUE(limits.contains("nvidia.com/gpu.shared")) << created.body.dump(1);
  EXPECT_FALSE(limits.contains("nvidia.com/gpu")) << created.body.dump(1);
  EXPECT_EQ(created.body["metadata"]["annotations"].value("gpuautoscaler.io/policy", ""),
            "time-slice-all");
  auto stored = Api(*api, "GET", "/api/v1/namespaces/ml/pods/trainer-0");
  EXPECT_EQ(stored.body["spec"], created.body["spec"]) << "the rewritten pod is what is stored";

  // namespaceSelector: a namespace without the label is left alone.
  auto plain = Api(*api, "POST", "/api/v1/namespaces/plain/pods", GpuPod("trainer-0"));
  ASSERT_EQ(plain.status, 201) << plain.body.dump();
  EXPECT_TRUE(
      plain.body["spec"]["containers"][0]["resources"]["limits"].contains("nvidia.com/gpu"));
  EXPECT_FALSE(plain.body["metadata"].contains("annotations") &&
               plain.body["metadata"]["annotations"].contains("gpuautoscaler.io/policy"));

  // The validating webhook sees the final object and denies bad annotations.
  auto denied = Api(*api, "POST", "/api/v1/namespaces/ml/pods",
                    GpuPod("trainer-1", {{"katalyst.kubewharf.io/qos_level", "platinum"}}));
  EXPECT_GE(denied.status, 400);
  EXPECT_EQ(denied.body.value("kind", ""), "Status");
  EXPECT_EQ(Message(denied).rfind(
                "admission webhook \"pods.validate.gpuautoscaler.io\" denied the request: ", 0),
            0u)
      << Message(denied);
  EXPECT_NE(Message(denied).find("qos_level"), std::string::npos) << Message(denied);
  RecordProperty("denial", Message(denied));  // quoted in docs/apiserver.md
  EXPECT_EQ(Api(*api, "GET", "/api/v1/namespaces/ml/pods/trainer-1").status, 404);
}

// ---------------------------------------------------------------------------
// An in-test HTTPS webhook server for the failure cases.

class TestWebhookServer {
 public:
  explicit TestWebhookServer(const wt::TempDir& dir) {
    files_ = wt::WriteServingCertificate(dir, "hook.crt", "hook.key");
    net::HttpServerOptions o;
    o.bind_address = "127.0.0.1";
    o.tls_cert_file = files_.cert_file;
    o.tls_key_file = files_.key_file;
    auto server = net::HttpServer::Start(
        o, [this](const net::ServerRequest& req, net::ResponseWriter& w) { Handle(req, w); });
    EXPECT_TRUE(server.ok()) << server.error().ToString();
    if (server.ok()) server_ = std::move(server).value();
  }
  ~TestWebhookServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    if (server_) server_->Stop();
  }
  std::string Url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  std::string ca_bundle() const { return Base64Encode(files_.ca_pem); }
  std::vector<json> Requests(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<json> out;
    for (const auto& [p, r] : requests_) {
      if (p == path) out.push_back(r);
    }
    return out;
  }

 private:
  static std::string Review(const json& request, json response) {
    response["uid"] = request["uid"];
    return json{
        {"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", response}}
        .dump();
  }

  void Handle(const net::ServerRequest& req, net::ResponseWriter& w) {
    json review = json::parse(req.body, nullptr, false);
    json request = review.is_object() ? review.value("request", json::object()) : json::object();
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.emplace_back(req.path, request);
    }
    const json& object = request.contains("object") ? request["object"] : json(nullptr);
    std::string name = request.value("name", "");
    std::string body;
    if (req.path == "/mutate") {
      json patch = json::array();
      if (!object.is_object() || !object["metadata"].contains("labels")) {
        patch.push_back({{"op", "add"}, {"path", "/metadata/labels"}, {"value", json::object()}});
      }
      patch.push_back({{"op", "add"},
                       {"path", "/metadata/labels/admission.example.com~1mutated"},
                       {"value", "true"}});
      body = Review(request, {{"allowed", true},
                              {"patchType", "JSONPatch"},
                              {"patch", Base64Encode(patch.dump())},
                              {"warnings", {"labelled by mutate.example.com"}}});
    } else if (req.path == "/deny") {
      if (name.rfind("forbidden-", 0) == 0) {
        body = Review(request, {{"allowed", false},
                                {"status",
                                 {{"code", 403},
                                  {"reason", "Forbidden"},
                                  {"message", "pods named forbidden-* are not allowed"}}}});
      } else if (request.value("operation", "") == "DELETE") {
        body = Review(request, {{"allowed", true}});
      } else {
        bool mutated = object.is_object() && object["metadata"]
                                                 .value("labels", json::object())
                                                 .contains("admission.example.com/mutated");
        body = Review(request, mutated ? json{{"allowed", true}}
                                       : json{{"allowed", false},
                                              {"status", {{"message", "not mutated first"}}}});
      }
    } else if (req.path == "/hang") {
      std::unique_lock<std::mutex> lock(mu_);
      while (!released_ && !w.Cancelled()) {
        cv_.wait_for(lock, 50ms);
      }
      return;
    } else {
      body = Review(request, {{"allowed", true}});
    }
    w.Respond(200, "application/json", body);
  }

  wt::ServingFiles files_;
  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<std::pair<std::string, json>> requests_;
};

class AdmissionFailuresIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = TestApiServer::Start();
    ASSERT_TRUE(api_) << "api server did not start";
    if (api_->is_real_cluster()) GTEST_SKIP() << "a real cluster cannot reach a loopback webhook";
    hooks_ = std::make_unique<TestWebhookServer>(dir_);
    CreateNamespace(*api_, "team");
  }
  json Hook(const std::string& name, const std::string& url, json extra = json::object()) {
    json h = {{"name", name},
              {"admissionReviewVersions", {"v1"}},
              {"sideEffects", "None"},
              {"rules", Rules({"CREATE", "UPDATE", "DELETE"})},
              {"clientConfig", {{"url", url}, {"caBundle", hooks_->ca_bundle()}}}};
    for (auto it = extra.begin(); it != extra.end(); ++it)
      h[it.key()] = it.value();
    return h;
  }
  void Register(const char* path, const std::string& name, std::vector<json> hooks) {
    std::string kind = path == std::string(kMutating) ? "MutatingWebhookConfiguration"
                                                      : "ValidatingWebhookConfiguration";
    MustCreate(*api_, path, Configuration(kind, name, std::move(hooks)));
  }
  ApiResult CreatePod(const std::string& name, const std::string& query = "",
                      json labels = {{"app", "train"}}) {
    return Api(*api_, "POST", "/api/v1/namespaces/team/pods" + query,
               GpuPod(name, json::object(), labels));
  }

  wt::TempDir dir_;
  std::unique_ptr<TestApiServer> api_;
  std::unique_ptr<TestWebhookServer> hooks_;
};

TEST_F(AdmissionFailuresIntegration, MutatesThenValidatesAndDeniesWithTheWebhooksMessage) {
  Register(kMutating, "mutate", {Hook("mutate.example.com", hooks_->Url("/mutate"))});
  Register(kValidating, "deny", {Hook("deny.example.com", hooks_->Url("/deny"))});

  auto ok = CreatePod("web-1");
  ASSERT_EQ(ok.status, 201) << ok.body.dump();
  EXPECT_EQ(ok.body["metadata"]["labels"].value("admission.example.com/mutated", ""), "true");
  EXPECT_EQ(ok.warnings, std::vector<std::string>{"299 - \"labelled by mutate.example.com\""});

  auto denied = CreatePod("forbidden-1");
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.body.value("reason", ""), "Forbidden");
  EXPECT_EQ(Message(denied),
            "admission webhook \"deny.example.com\" denied the request: pods named forbidden-* "
            "are not allowed");
  EXPECT_EQ(Api(*api_, "GET", "/api/v1/namespaces/team/pods/forbidden-1").status, 404);

  // The webhooks saw an UPDATE with the old object, and a DELETE.
  json pod = Api(*api_, "GET", "/api/v1/namespaces/team/pods/web-1").body;
  pod["metadata"]["labels"]["tier"] = "gold";
  auto updated = Api(*api_, "PUT", "/api/v1/namespaces/team/pods/web-1", pod);
  ASSERT_EQ(updated.status, 200) << updated.body.dump();
  ASSERT_EQ(Api(*api_, "DELETE", "/api/v1/namespaces/team/pods/web-1").status, 200);
  auto seen = hooks_->Requests("/deny");
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[2]["operation"], "UPDATE");
  EXPECT_EQ(seen[2]["oldObject"]["metadata"]["labels"].value("tier", ""), "");
  EXPECT_EQ(seen[2]["object"]["metadata"]["labels"].value("tier", ""), "gold");
  EXPECT_EQ(seen[3]["operation"], "DELETE");
  EXPECT_TRUE(seen[3]["object"].is_null());
  EXPECT_EQ(seen[3]["options"]["kind"], "DeleteOptions");
  EXPECT_EQ(seen[0]["userInfo"]["username"], "admin");
}

TEST_F(AdmissionFailuresIntegration, UnreachableWebhookFailsClosedOrOpen) {
  auto port = gpu_autoscaler::testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  std::string url = "https://127.0.0.1:" + std::to_string(*port) + "/gone";
  Register(kValidating, "open", {Hook("open.example.com", url, {{"failurePolicy", "Ignore"}})});
  auto allowed = CreatePod("web-1");
  EXPECT_EQ(allowed.status, 201) << "failurePolicy Ignore: " << allowed.body.dump();

  Register(kValidating, "closed", {Hook("closed.example.com", url)});
  auto failed = CreatePod("web-2");
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.body.value("reason", ""), "InternalError");
  EXPECT_EQ(Message(failed),
            "Internal error occurred: failed calling webhook "
            "\"closed.example.com\": Post \"" +
                url + "?timeout=10s\": dial tcp 127.0.0.1:" + std::to_string(*port) +
                ": connect: connection refused");
}

TEST_F(AdmissionFailuresIntegration, HungWebhookTimesOut) {
  Register(kValidating, "hang",
           {Hook("hang.example.com", hooks_->Url("/hang"), {{"timeoutSeconds", 1}})});
  auto failed = CreatePod("web-1");
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(Message(failed),
            "Internal error occurred: failed calling webhook "
            "\"hang.example.com\": Post \"" +
                hooks_->Url("/hang") + "?timeout=1s\": context deadline exceeded");
  EXPECT_EQ(Api(*api_, "GET", "/api/v1/namespaces/team/pods/web-1").status, 404);
}

TEST_F(AdmissionFailuresIntegration, DryRunIsRefusedByAWebhookWithSideEffects) {
  Register(kValidating, "some",
           {Hook("some.example.com", hooks_->Url("/record"), {{"sideEffects", "Some"}})});
  auto dry = CreatePod("web-1", "?dryRun=All");
  EXPECT_EQ(dry.status, 400);
  EXPECT_EQ(dry.body.value("reason", ""), "BadRequest");
  EXPECT_EQ(Message(dry), "admission webhook \"some.example.com\" does not support dry run");
  EXPECT_TRUE(hooks_->Requests("/record").empty()) << "not called";
  EXPECT_EQ(CreatePod("web-1").status, 201) << "a real request is fine";
  ASSERT_EQ(hooks_->Requests("/record").size(), 1u);
  EXPECT_EQ(hooks_->Requests("/record")[0]["dryRun"], false);
}

TEST_F(AdmissionFailuresIntegration, NamespaceAndObjectSelectorsFilter) {
  CreateNamespace(*api_, "guarded", {{"admission", "strict"}});
  Register(kValidating, "selectors",
           {Hook("ns.example.com", hooks_->Url("/deny"),
                 {{"namespaceSelector", {{"matchLabels", {{"admission", "strict"}}}}}}),
            Hook("obj.example.com", hooks_->Url("/deny"),
                 {{"objectSelector", {{"matchLabels", {{"checked", "yes"}}}}}})});
  // Neither selector matches: created without a call.
  EXPECT_EQ(CreatePod("web-1").status, 201);
  EXPECT_TRUE(hooks_->Requests("/deny").empty());
  // The object selector matches: denied ("not mutated first").
  auto by_labels = CreatePod("web-2", "", {{"checked", "yes"}});
  EXPECT_EQ(by_labels.status, 400);
  EXPECT_EQ(Message(by_labels),
            "admission webhook \"obj.example.com\" denied the request: not mutated first");
  // The namespace selector matches.
  auto in_guarded = Api(*api_, "POST", "/api/v1/namespaces/guarded/pods", GpuPod("web-3"));
  EXPECT_EQ(in_guarded.status, 400);
  EXPECT_EQ(Message(in_guarded),
            "admission webhook \"ns.example.com\" denied the request: not mutated first");
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
