// --self-signed-secret through real processes: webhook replicas next to the
// test API server share one kubernetes.io/tls Secret, serve certificates from
// its CA, keep the webhook configurations' caBundle on it, renew it exactly
// once when it nears expiry and replace garbage.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "net/self_signed_cert.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"
#include "webhooks/cert_bundle_patcher.h"
#include "webhooks/cert_source.h"
#include "webhooks/webhook_integration_client.h"
#include "webhooks/webhook_process.h"

namespace gpu_autoscaler::webhooks {
namespace {

using namespace std::chrono_literals;
namespace wt = gpu_autoscaler::webhooks::testing;
using gpu_autoscaler::testing::ChildProcess;
using gpu_autoscaler::testing::TestApiServer;
using wt::PollUntil;

constexpr char kNamespace[] = "gpu-autoscaler-system";
constexpr char kSecretName[] = "gpa-webhook-tls";
const kube::GroupVersionResource kMutatingConfigs{"admissionregistration.k8s.io", "v1",
                                                  "mutatingwebhookconfigurations", false};
const kube::GroupVersionResource kValidatingConfigs{"admissionregistration.k8s.io", "v1",
                                                    "validatingwebhookconfigurations", false};

// An HTTPS test API server with the namespace and both webhook configurations.
struct Cluster {
  std::unique_ptr<TestApiServer> api;
  std::unique_ptr<kube::RestClient> client;
  wt::TempDir dir;
  std::string kubeconfig;

  bool Start() {
    api = TestApiServer::Start({.tls = true});
    if (!api) return false;
    auto created = kube::RestClient::Create(api->config());
    if (!created.ok()) return false;
    client = std::move(created).value();
    kubeconfig = wt::WriteKubeconfig(dir, api->config());
    nlohmann::json ns = {
        {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNamespace}}}};
    if (!client->Create({kube::resources::kNamespaces, "", ""}, ns).ok()) return false;
    auto hook = [](const std::string& name) {
      return nlohmann::json{{"name", name},
                            {"admissionReviewVersions", {"v1"}},
                            {"sideEffects", "None"},
                            {"clientConfig",
                             {{"service",
                               {{"name", "gpu-autoscaler-webhook"},
                                {"namespace", kNamespace},
                                {"path", "/mutate-pods"}}}}}};
    };
    for (const auto* gvr : {&kMutatingConfigs, &kValidatingConfigs}) {
      nlohmann::json config = {
          {"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", gvr == &kMutatingConfigs ? "MutatingWebhookConfiguration"
                                            : "ValidatingWebhookConfiguration"},
          {"metadata", {{"name", "gpa-test-webhook"}}},
          {"webhooks", {hook("pods.gpuautoscaler.io")}}};
      if (!client->Create({*gvr, "", ""}, config).ok()) return false;
    }
    return true;
  }

  // One replica; its port once it prints "listening on 127.0.0.1:PORT" (0 if it never does).
  int StartReplica(ChildProcess& process, const std::string& log,
                   std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {gpu_autoscaler::testing::BinaryPath("gpu-autoscaler-webhook"),
                                     "--bind-address",
                                     "127.0.0.1",
                                     "--port",
                                     "0",
                                     "--self-signed",
                                     "--self-signed-ip",
                                     "127.0.0.1",
                                     "--self-signed-secret",
                                     std::string(kNamespace) + "/" + kSecretName,
                                     "--self-signed-poll-interval",
                                     "100ms",
                                     "--kubeconfig",
                                     kubeconfig,
                                     "--webhook-config-name",
                                     "gpa-test-webhook",
                                     "--metrics-bind-address",
                                     "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!process.Spawn(args, dir.File(log))) return 0;
    const std::string marker = "listening on 127.0.0.1:";
    int port = 0;
    PollUntil([&] {
      std::string text = process.Log();
      auto at = text.find(marker);
      if (at != std::string::npos) port = std::atoi(text.c_str() + at + marker.size());
      return port > 0 || process.TryWait().has_value();
    });
    return port;
  }

  std::optional<nlohmann::json> Secret() {
    auto got = client->Get({kube::resources::kSecrets, kNamespace, kSecretName});
    if (!got.ok()) return std::nullopt;
    return *got;
  }
  std::string SecretData(const std::string& key) {
    auto secret = Secret();
    if (!secret) return "";
    return Base64Decode((*secret)["data"].value(key, "")).value_or("");
  }
  void PutSecret(const std::map<std::string, std::string>& data) {
    nlohmann::json secret = {{"apiVersion", "v1"},
                             {"kind", "Secret"},
                             {"type", "kubernetes.io/tls"},
                             {"metadata", {{"name", kSecretName}, {"namespace", kNamespace}}},
                             {"data", nlohmann::json::object()}};
    for (const auto& [k, v] : data)
      secret["data"][k] = Base64Encode(v);
    ASSERT_TRUE(client->Create({kube::resources::kSecrets, kNamespace, ""}, secret).ok());
  }
  bool CaBundleIs(const std::string& ca_pem) {
    for (const auto* gvr : {&kMutatingConfigs, &kValidatingConfigs}) {
      auto obj = client->Get({*gvr, "", "gpa-test-webhook"});
      if (!obj.ok()) return false;
      for (const auto& h : (*obj)["webhooks"]) {
        if (h["clientConfig"].value("caBundle", "") != EncodeCaBundle(ca_pem)) return false;
      }
    }
    return true;
  }
};

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

std::string SerialOf(const std::string& cert_pem, const std::string& key_pem) {
  auto pair = ParseCertifiedKey(cert_pem, key_pem);
  return pair.ok() ? (*pair)->serial_hex() : "";
}

TEST(WebhookSharedSecret, TwoReplicasServeOneCaThatIsTheCaBundle) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  ChildProcess a, b;
  int port_a = cluster.StartReplica(a, "a.log");
  int port_b = cluster.StartReplica(b, "b.log");
  ASSERT_GT(port_a, 0) << a.Log();
  ASSERT_GT(port_b, 0) << b.Log();

  const std::string ca = cluster.SecretData("ca.crt");
  ASSERT_NE(ca.find("BEGIN CERTIFICATE"), std::string::npos);
  const std::string serial = SerialOf(cluster.SecretData("tls.crt"), cluster.SecretData("tls.key"));
  EXPECT_EQ(wt::ServedSerial(port_a), serial);
  EXPECT_EQ(wt::ServedSerial(port_b), serial);
  for (int port : {port_a, port_b}) {
    auto r = wt::Https("https://127.0.0.1:" + std::to_string(port) + "/healthz", "GET", "", ca);
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_TRUE(PollUntil([&] { return cluster.CaBundleIs(ca); }));
  // The Secret was written once, by whichever replica got there first.
  EXPECT_EQ(CountOf(a.Log() + b.Log(), "wrote Secret"), 1) << a.Log() << b.Log();
  auto secret = cluster.Secret();
  ASSERT_TRUE(secret);
  EXPECT_EQ((*secret)["type"], "kubernetes.io/tls");
}

TEST(WebhookSharedSecret, ANearExpirySecretIsRenewedOnceAndEveryReplicaServesTheNewLeaf) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  // A CA good for ten years and a leaf with one of its 21 days left.
  const auto now = std::chrono::system_clock::now();
  net::SelfSignedRequest request;
  request.dns_names = net::ServiceDnsNames("gpu-autoscaler-webhook", kNamespace);
  request.ip_addresses = {"127.0.0.1"};
  request.validity = std::chrono::hours(24 * 3650);
  auto ca = net::GenerateSelfSignedCertificates(request);
  ASSERT_TRUE(ca.ok());
  request.not_before = now - std::chrono::hours(24 * 20);
  request.validity = std::chrono::hours(24 * 21);
  auto old_leaf = net::IssueServingCertificate(ca->ca_cert_pem, ca->ca_key_pem, request);
  ASSERT_TRUE(old_leaf.ok());
  cluster.PutSecret({{"ca.crt", ca->ca_cert_pem},
                     {"ca.key", ca->ca_key_pem},
                     {"tls.crt", old_leaf->cert_pem},
                     {"tls.key", old_leaf->key_pem}});
  const std::string old_serial = SerialOf(old_leaf->cert_pem, old_leaf->key_pem);

  // Two replicas that accept a day of validity serve the old leaf as is.
  ChildProcess a, b, c;
  int port_a = cluster.StartReplica(a, "a.log", {"--self-signed-rotate-before", "60m"});
  int port_b = cluster.StartReplica(b, "b.log", {"--self-signed-rotate-before", "60m"});
  ASSERT_GT(port_a, 0) << a.Log();
  ASSERT_GT(port_b, 0) << b.Log();
  EXPECT_EQ(wt::ServedSerial(port_a), old_serial);
  EXPECT_EQ(wt::ServedSerial(port_b), old_serial);
  EXPECT_TRUE(PollUntil([&] { return cluster.CaBundleIs(ca->ca_cert_pem); }));

  // A third with the default (a third of the lifetime) renews the leaf.
  int port_c = cluster.StartReplica(c, "c.log");
  ASSERT_GT(port_c, 0) << c.Log();
  EXPECT_EQ(CountOf(c.Log(),
                    "wrote Secret gpu-autoscaler-system/gpa-webhook-tls with new "
                    "certificates (tls.crt expires at"),
            1)
      << c.Log();
  const std::string new_serial =
      SerialOf(cluster.SecretData("tls.crt"), cluster.SecretData("tls.key"));
  ASSERT_NE(new_serial, old_serial);
  EXPECT_EQ(wt::ServedSerial(port_c), new_serial);
  EXPECT_TRUE(PollUntil([&] { return wt::ServedSerial(port_a) == new_serial; })) << a.Log();
  EXPECT_TRUE(PollUntil([&] { return wt::ServedSerial(port_b) == new_serial; })) << b.Log();
  // Same CA, so the caBundle did not move, and everyone verifies with it.
  EXPECT_EQ(cluster.SecretData("ca.crt"), ca->ca_cert_pem);
  EXPECT_TRUE(cluster.CaBundleIs(ca->ca_cert_pem));
  for (int port : {port_a, port_b, port_c}) {
    auto r = wt::Https("https://127.0.0.1:" + std::to_string(port) + "/healthz", "GET", "",
                       ca->ca_cert_pem);
    EXPECT_EQ(r.status, 200) << r.error;
  }
  EXPECT_EQ(CountOf(a.Log() + b.Log() + c.Log(), "wrote Secret"), 1)
      << a.Log() << b.Log() << c.Log();
}

TEST(WebhookSharedSecret, ANewCaIsAddedToTheCaBundleNextToTheOldOne) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  // CA and leaf with one of their 21 days left.
  net::SelfSignedRequest request;
  request.dns_names = net::ServiceDnsNames("gpu-autoscaler-webhook", kNamespace);
  request.ip_addresses = {"127.0.0.1"};
  request.not_before = std::chrono::system_clock::now() - std::chrono::hours(24 * 20);
  request.validity = std::chrono::hours(24 * 21);
  auto old = net::GenerateSelfSignedCertificates(request);
  ASSERT_TRUE(old.ok());
  cluster.PutSecret({{"ca.crt", old->ca_cert_pem},
                     {"ca.key", old->ca_key_pem},
                     {"tls.crt", old->serving_cert_pem},
                     {"tls.key", old->serving_key_pem}});
  ChildProcess a;
  int port = cluster.StartReplica(a, "a.log");
  ASSERT_GT(port, 0) << a.Log();
  EXPECT_NE(a.Log().find("with new certificates (the CA expires at"), std::string::npos) << a.Log();
  // ca.crt: the new CA (which signs what is served), then the old one.
  const std::string bundle = cluster.SecretData("ca.crt");
  ASSERT_GT(bundle.size(), old->ca_cert_pem.size());
  EXPECT_EQ(bundle.substr(bundle.size() - old->ca_cert_pem.size()), old->ca_cert_pem);
  const std::string new_ca = bundle.substr(0, bundle.size() - old->ca_cert_pem.size());
  auto r = wt::Https("https://127.0.0.1:" + std::to_string(port) + "/healthz", "GET", "", new_ca);
  EXPECT_EQ(r.status, 200) << r.error;
  // kube-apiserver gets both, so a replica still serving the old leaf is trusted too.
  EXPECT_TRUE(PollUntil([&] { return cluster.CaBundleIs(bundle); }));
}

TEST(WebhookSharedSecret, GarbageInTheSecretIsReplacedWithALogLine) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  cluster.PutSecret({{"ca.crt", "garbage"},
                     {"ca.key", "garbage"},
                     {"tls.crt", "garbage"},
                     {"tls.key", "garbage"}});
  ChildProcess a;
  int port = cluster.StartReplica(a, "a.log");
  ASSERT_GT(port, 0) << a.Log();
  EXPECT_NE(a.Log().find("wrote Secret gpu-autoscaler-system/gpa-webhook-tls with new "
                         "certificates (ca.crt holds no PEM certificate)"),
            std::string::npos)
      << a.Log();
  const std::string ca = cluster.SecretData("ca.crt");
  ASSERT_NE(ca.find("BEGIN CERTIFICATE"), std::string::npos);
  auto r = wt::Https("https://127.0.0.1:" + std::to_string(port) + "/healthz", "GET", "", ca);
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_TRUE(PollUntil([&] { return cluster.CaBundleIs(ca); }));
}

TEST(WebhookSharedSecret, FlagErrors) {
  auto run = [](const std::vector<std::string>& flags) {
    std::vector<std::string> args = {gpu_autoscaler::testing::BinaryPath("gpu-autoscaler-webhook")};
    args.insert(args.end(), flags.begin(), flags.end());
    return gpu_autoscaler::testing::RunCommand(args);
  };
  auto bad_name = run({"--self-signed", "--self-signed-secret", "no-slash"});
  EXPECT_EQ(bad_name.exit_code, 2);
  EXPECT_NE(bad_name.err.find("want NAMESPACE/NAME"), std::string::npos) << bad_name.err;
  auto no_self_signed =
      run({"--tls-cert-file", "a", "--tls-key-file", "b", "--self-signed-secret", "ns/name"});
  EXPECT_EQ(no_self_signed.exit_code, 2);
  EXPECT_NE(no_self_signed.err.find("--self-signed-secret needs --self-signed"), std::string::npos)
      << no_self_signed.err;
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
