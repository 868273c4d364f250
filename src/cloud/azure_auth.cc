#include "cloud/azure_auth.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "kube/resource.h"

namespace gpu_autoscaler::cloud {

using namespace std::chrono_literals;

Result<AzureClientCredentials> AzureCredentialsFromEnv(
    const std::function<const char*(const char*)>& getenv) {
  auto var = [&](const char* name) {
    const char* v = getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  AzureClientCredentials c;
  c.tenant_id = var("AZURE_TENANT_ID");
  c.client_id = var("AZURE_CLIENT_ID");
  c.client_secret = var("AZURE_CLIENT_SECRET");
  c.federated_token_file = var("AZURE_FEDERATED_TOKEN_FILE");
  if (std::string host = var("AZURE_AUTHORITY_HOST"); !host.empty()) {
    while (host.ends_with('/'))
      host.pop_back();
    c.login_endpoint = host;
  }
  if (c.tenant_id.empty() || c.client_id.empty()) {
    return InvalidArgumentError(
        "azure credentials: AZURE_TENANT_ID and AZURE_CLIENT_ID are required");
  }
  if (c.client_secret.empty() == c.federated_token_file.empty()) {
    return InvalidArgumentError(
        "azure credentials: set exactly one of AZURE_CLIENT_SECRET and AZURE_FEDERATED_TOKEN_FILE");
  }
  return c;
}

namespace {

bool ValidTenant(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (char c : t) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

class ClientCredentialsTokenSource final : public AccessTokenSource {
 public:
  ClientCredentialsTokenSource(AzureClientCredentials c, std::shared_ptr<kube::HttpTransport> t,
                               Clock& clock)
      : c_(std::move(c)), transport_(std::move(t)), cache_(clock) {}

  Result<std::string> Token() override {
    return cache_.Get([&]() -> Result<TokenGrant> {
      std::vector<std::pair<std::string, std::string>> form = {
          {"grant_type", "client_credentials"}, {"client_id", c_.client_id}, {"scope", c_.scope}};
      if (!c_.federated_token_file.empty()) {
        // Workload identity: kubelet rotates the projected token, so read it each time.
        std::ifstream in(c_.federated_token_file, std::ios::binary);
        if (!in) {
          return ProviderError(
              ProviderErrorKind::kAuth,
              "azure: cannot read federated token file " + c_.federated_token_file);
        }
        std::stringstream text;
        text << in.rdbuf();
        std::string assertion = text.str();
        while (!assertion.empty() && (assertion.back() == '\n' || assertion.back() == '\r')) {
          assertion.pop_back();
        }
        form.emplace_back("client_assertion_type",
                          "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        form.emplace_back("client_assertion", assertion);
      } else {
        form.emplace_back("client_secret", c_.client_secret);
      }
      kube::HttpRequest req;
      req.method = "POST";
      req.url = c_.login_endpoint + "/" + c_.tenant_id + "/oauth2/v2.0/token";
      req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
      req.body = FormEncode(form);
      return FetchToken(*transport_, std::move(req),
                        "azure token for client " + c_.client_id + " in tenant " + c_.tenant_id);
    });
  }

 private:
  AzureClientCredentials c_;
  std::shared_ptr<kube::HttpTransport> transport_;
  CachedAccessToken cache_;
};

class ManagedIdentityTokenSource final : public AccessTokenSource {
 public:
  ManagedIdentityTokenSource(AzureManagedIdentityOptions o, std::shared_ptr<kube::HttpTransport> t,
                             Clock& clock)
      : o_(std::move(o)), transport_(std::move(t)), cache_(clock) {}

  Result<std::string> Token() override {
    return cache_.Get([&]() -> Result<TokenGrant> {
      kube::HttpRequest req;
      req.method = "GET";
      req.url = o_.imds_endpoint +
                "/metadata/identity/oauth2/token?api-version=" + kube::UrlEncode(o_.api_version) +
                "&resource=" + kube::UrlEncode(o_.resource);
      if (!o_.client_id.empty()) req.url += "&client_id=" + kube::UrlEncode(o_.client_id);
      req.headers = {{"Metadata", "true"}};
      req.timeout = 10s;
      return FetchToken(*transport_, std::move(req), "azure managed identity token");
    });
  }

 private:
  AzureManagedIdentityOptions o_;
  std::shared_ptr<kube::HttpTransport> transport_;
  CachedAccessToken cache_;
};

}  // namespace

Result<std::shared_ptr<AccessTokenSource>> NewAzureClientCredentialsTokenSource(
    AzureClientCredentials credentials, std::shared_ptr<kube::HttpTransport> transport,
    Clock& clock) {
  if (!ValidTenant(credentials.tenant_id)) {
    return InvalidArgumentError("azure credentials: tenant ID is not a GUID or domain name");
  }
  if (credentials.client_id.empty()) return InvalidArgumentError("azure credentials: no client ID");
  if (credentials.client_secret.empty() == credentials.federated_token_file.empty()) {
    return InvalidArgumentError(
        "azure credentials: need exactly one of a client secret and a federated token file");
  }
  return std::shared_ptr<AccessTokenSource>(std::make_shared<ClientCredentialsTokenSource>(
      std::move(credentials), std::move(transport), clock));
}

std::shared_ptr<AccessTokenSource> NewAzureManagedIdentityTokenSource(
    AzureManagedIdentityOptions options, std::shared_ptr<kube::HttpTransport> transport,
    Clock& clock) {
  return std::make_shared<ManagedIdentityTokenSource>(std::move(options), std::move(transport),
                                                      clock);
}

}  // namespace gpu_autoscaler::cloud
