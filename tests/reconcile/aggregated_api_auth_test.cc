#include "reconcile/aggregated_api_auth.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "net/http_server.h"
#include "net/self_signed_cert.h"
#include "support/fake_transport.h"

namespace gpu_autoscaler::reconcile {
namespace {

using nlohmann::json;
using testing::FakeTransport;

std::string Der(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  X509_free(cert);
  return out;
}

net::SelfSignedCertificates Ca(const std::string& name) {
  auto ca =
      net::GenerateSelfSignedCertificates({.dns_names = {"localhost"}, .ca_common_name = name});
  EXPECT_TRUE(ca.ok());
  return *ca;
}

std::string ClientDer(const net::SelfSignedCertificates& ca, const std::string& cn,
                      const std::vector<std::string>& orgs = {}) {
  auto cert = net::IssueClientCertificate(ca.ca_cert_pem, ca.ca_key_pem, cn, orgs);
  EXPECT_TRUE(cert.ok()) << cert.error().ToString();
  return Der(cert->cert_pem);
}

TEST(AuthenticationConfigMapTest, ReadsWhatKubeApiserverPublishes) {
  const json cm = {{"apiVersion", "v1"},
                   {"kind", "ConfigMap"},
                   {"data",
                    {{"client-ca-file", "CLIENT-PEM"},
                     {"requestheader-client-ca-file", "FRONT-PEM"},
                     {"requestheader-allowed-names", R"(["front-proxy-client","aggregator"])"},
                     {"requestheader-username-headers", R"(["X-Remote-User","X-User"])"},
                     {"requestheader-group-headers", R"(["X-Remote-Group"])"},
                     {"requestheader-extra-headers-prefix", R"(["X-Remote-Extra-"])"}}}};
  auto config = ParseAuthenticationConfigMap(cm.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->client_ca_pem, "CLIENT-PEM");
  EXPECT_EQ(config->request_header.client_ca_pem, "FRONT-PEM");
  EXPECT_EQ(config->request_header.allowed_names,
            (std::vector<std::string>{"front-proxy-client", "aggregator"}));
  EXPECT_EQ(config->request_header.username_headers,
            (std::vector<std::string>{"X-Remote-User", "X-User"}));
}

TEST(AuthenticationConfigMapTest, MissingKeysKeepDefaultsAndBadOnesAreRefused) {
  auto bare = ParseAuthenticationConfigMap(R"({"kind":"ConfigMap","data":{}})");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->request_header.client_ca_pem, "");  // front proxy off
  EXPECT_EQ(bare->request_header.username_headers, std::vector<std::string>{"X-Remote-User"});
  EXPECT_EQ(bare->request_header.group_headers, std::vector<std::string>{"X-Remote-Group"});
  EXPECT_TRUE(bare->request_header.allowed_names.empty());

  for (const char* bad :
       {"", "[]", R"({"kind":"Secret"})",
        // Found by aggregated_api_auth_fuzz: a "kind" that is not a string threw.
        R"({"kind":{"client-ca-file":"x"},"data":{}})", R"({"kind":7})",
        R"({"kind":"ConfigMap","data":{"requestheader-allowed-names":"front-proxy-client"}})",
        R"({"kind":"ConfigMap","data":{"requestheader-group-headers":"[1]"}})",
        R"({"kind":"ConfigMap","data":{"requestheader-username-headers":7}})"}) {
    auto parsed = ParseAuthenticationConfigMap(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.error().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(RequestHeadersTest, UserGroupsAndExtrasAsTheRequestHeaderAuthenticatorReadsThem) {
  RequestHeaderConfig config;
  config.username_headers = {"X-Remote-User", "X-User"};
  const RequestUser user = UserFromRequestHeaders(config, {{"x-user", "second"},
                                                           {"X-Remote-User", ""},
                                                           {"x-remote-user", "alice"},
                                                           {"X-Remote-Group", "a"},
                                                           {"x-remote-group", "b,c"},
                                                           {"X-Remote-Extra-Scopes", "s1"},
                                                           {"X-Remote-Extra-scopes", "s2"},
                                                           {"X-Remote-Extra-Acme.com%2Fteam", "t"},
                                                           {"X-Remote-Extra-", "no key"}});
  // The first non-empty value of the first header in the list that has one.
  EXPECT_EQ(user.name, "alice");
  EXPECT_EQ(user.groups, (std::vector<std::string>{"a", "b,c"}));  // one group per header
  EXPECT_EQ(user.extra.at("scopes"), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(user.extra.at("acme.com/team"), std::vector<std::string>{"t"});
  EXPECT_EQ(user.extra.size(), 2u);
}

TEST(ClientCertificateVerifierTest, OnlyClientCertificatesTheCaSigned) {
  const auto ca = Ca("front-proxy-ca");
  auto verifier = ClientCertificateVerifier::FromPem(ca.ca_cert_pem);
  ASSERT_TRUE(verifier.ok());
  auto subject = (*verifier)->Verify({ClientDer(ca, "front-proxy-client", {"o1", "o2"})});
  ASSERT_TRUE(subject.ok()) << subject.error().ToString();
  EXPECT_EQ(subject->common_name, "front-proxy-client");
  EXPECT_EQ(subject->organizations, (std::vector<std::string>{"o1", "o2"}));

  EXPECT_FALSE((*verifier)->Verify({}).ok());
  EXPECT_FALSE((*verifier)->Verify({"not DER"}).ok());
  auto other = (*verifier)->Verify({ClientDer(Ca("other-ca"), "front-proxy-client")});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), StatusCode::kPermissionDenied);
  // A serving certificate (extendedKeyUsage serverAuth) from the same CA is no client.
  EXPECT_FALSE((*verifier)->Verify({Der(ca.serving_cert_pem)}).ok());
  EXPECT_FALSE(ClientCertificateVerifier::FromPem("no PEM here").ok());
}

// A fake API server: token "hpa" is the HPA controller's service account.
class AggregatedApiAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto transport = std::make_unique<FakeTransport>();
    transport->SetHandler([this](const kube::HttpRequest& r) -> FakeTransport::Reply {
      ++token_reviews_;
      const json body = json::parse(r.body);
      json status = {{"authenticated", false}};
      if (body["spec"]["token"] == "hpa") {
        status = {{"authenticated", true}, {"user", {{"username", "hpa"}}}};
      }
      return {201, json{{"kind", "TokenReview"}, {"status", status}}.dump()};
    });
    kube::ClientConfig cfg;
    cfg.server = "https://api.test";
    client_ = kube::RestClient::WithTransport(cfg, std::move(transport),
                                              {.clock = &clock_, .max_retries = 0});
    tokens_ =
        std::make_unique<RequestAuthorizer>(*client_, RequestAuthorizerOptions{.clock = &clock_});
    DelegatedAuthConfig config;
    config.request_header.client_ca_pem = front_proxy_.ca_cert_pem;
    config.request_header.allowed_names = {"front-proxy-client"};
    config.client_ca_pem = clients_.ca_cert_pem;
    auto authn = AggregatedApiAuthenticator::Create(config, *tokens_);
    ASSERT_TRUE(authn.ok()) << authn.error().ToString();
    authn_ = std::move(*authn);
  }

  Authentication Authenticate(std::vector<std::string> chain,
                              std::vector<std::pair<std::string, std::string>> headers) {
    net::ServerRequest req;
    req.method = "GET";
    req.path = "/apis/custom.metrics.k8s.io/v1beta2";
    req.headers = std::move(headers);
    req.peer_certificates_der = std::move(chain);
    return authn_->Authenticate(req);
  }

  FakeClock clock_;
  int token_reviews_ = 0;
  net::SelfSignedCertificates front_proxy_ = Ca("front-proxy-ca");
  net::SelfSignedCertificates clients_ = Ca("client-ca");
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<RequestAuthorizer> tokens_;
  std::unique_ptr<AggregatedApiAuthenticator> authn_;
};

TEST_F(AggregatedApiAuthenticatorTest, TheFrontProxyNamesTheUser) {
  const Authentication a = Authenticate({ClientDer(front_proxy_, "front-proxy-client")},
                                        {{"X-Remote-User", "alice"}, {"X-Remote-Group", "devs"}});
  ASSERT_EQ(a.http_status, 200) << a.reason;
  EXPECT_EQ(a.user.name, "alice");
  EXPECT_EQ(a.user.groups, std::vector<std::string>{"devs"});
  EXPECT_EQ(token_reviews_, 0);
}

TEST_F(AggregatedApiAuthenticatorTest, HeadersAreNeverTrustedWithoutTheFrontProxy) {
  const std::vector<std::pair<std::string, std::string>> forged = {
      {"X-Remote-User", "admin"}, {"X-Remote-Group", "system:masters"}};
  EXPECT_EQ(Authenticate({}, forged).http_status, 401);
  EXPECT_EQ(Authenticate({ClientDer(Ca("rogue"), "front-proxy-client")}, forged).http_status, 401);
  EXPECT_EQ(Authenticate({ClientDer(front_proxy_, "someone-else")}, forged).http_status, 401);
  // A client-CA certificate is its own user, whatever the headers say.
  const Authentication jane = Authenticate({ClientDer(clients_, "jane", {"team-a"})}, forged);
  ASSERT_EQ(jane.http_status, 200);
  EXPECT_EQ(jane.user.name, "jane");
  EXPECT_EQ(jane.user.groups, std::vector<std::string>{"team-a"});
  // A front-proxy certificate that names nobody, without a token: not a user.
  EXPECT_EQ(Authenticate({ClientDer(front_proxy_, "front-proxy-client")}, {}).http_status, 401);
  EXPECT_EQ(token_reviews_, 0);
}

TEST_F(AggregatedApiAuthenticatorTest, BearerTokensGoToTokenReview) {
  const Authentication hpa =
      Authenticate({}, {{"Authorization", "Bearer hpa"}, {"X-Remote-User", "admin"}});
  ASSERT_EQ(hpa.http_status, 200);
  EXPECT_EQ(hpa.user.name, "hpa");
  EXPECT_EQ(Authenticate({}, {{"Authorization", "Bearer forged"}}).http_status, 401);
  EXPECT_EQ(token_reviews_, 2);
}

}  // namespace
}  // namespace gpu_autoscaler::reconcile
