// File: src/kube/config.h
//
// Where the API server is and how to authenticate to it: loaded from kubeconfig
// files (KUBECONFIG may list several, merged with kubectl's first-wins rules)
// or from the in-cluster service account.
//
//   GPU_ASSIGN_OR_RETURN(ClientConfig cfg, LoadDefaultConfig());
//   auto client = RestClient::Create(cfg);
//
// A bad file yields an error naming the file and the field
// ("/home/u/.kube/config: users[0].user.client-key-data: invalid base64").
//
// Thread-safety: ClientConfig is a value. TokenSource is thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "kube/error.h"

namespace gpu_autoscaler::kube {

// Yields the bearer token for each request. A file-backed source re-reads the
// file when it may have rotated (kubelet rotates projected tokens).
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual Result<std::string> Token() = 0;
};

// Re-reads `path` at most every `refresh` (client-go re-reads every minute).
std::shared_ptr<TokenSource> FileTokenSource(
    std::string path, Clock& clock, std::chrono::seconds refresh = std::chrono::seconds(60));
std::shared_ptr<TokenSource> StaticTokenSource(std::string token);

struct ClientConfig {
  std::string server{};  // "https://10.0.0.1:6443"
  // TLS. PEM contents, not paths: loaders read files eagerly so errors surface early.
  std::string ca_pem{};
  std::string client_cert_pem{};
  std::string client_key_pem{};
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name{};
  // Auth. `token_source` wins over `bearer_token` when both are set.
  std::string bearer_token{};
  std::shared_ptr<TokenSource> token_source{};
  std::string username{}, password{};  // basic auth (rare, still in kubeconfig)
  // Client behaviour (client-go defaults: QPS 5 / burst 10; we default higher
  // because a GPU controller manages many objects).
  double qps = 50;
  int burst = 100;
  std::chrono::milliseconds timeout{30'000};  // per request, not for watches
  std::string user_agent = "gpu-autoscaler/0.1";
  std::string context_name{};  // which kubeconfig context produced this
  std::string default_namespace = "default";
};

// Parses one kubeconfig document. `source_name` prefixes error messages.
// `context` empty means current-context.
Result<ClientConfig> ParseKubeconfig(std::string_view yaml, std::string_view source_name,
                                     std::string_view context = "", std::string_view base_dir = "");

// Loads and merges the files (first file wins per map key, as kubectl does).
Result<ClientConfig> LoadKubeconfigFiles(const std::vector<std::string>& paths,
                                         std::string_view context = "");

// Reads KUBERNETES_SERVICE_HOST/PORT and the service-account directory
// (default /var/run/secrets/kubernetes.io/serviceaccount).
Result<ClientConfig> LoadInClusterConfig(Clock& clock = RealClock::Instance(),
                                         std::string_view sa_dir = "");

// In-cluster when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG (':'-separated),
// else ~/.kube/config.
Result<ClientConfig> LoadDefaultConfig(std::string_view context = "");

}  // namespace gpu_autoscaler::kube
