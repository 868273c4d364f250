// TestApiServer: runs `gpu-autoscaler-apiserver` as a child process on
// 127.0.0.1 (or targets a real cluster named by GPU_AUTOSCALER_TEST_KUBECONFIG)
// and drives its fault-injection admin API over HTTP with libcurl.
//
// Restart() returns once the restarted server answers again, so that the
// caller's next step runs against a serving (but history-less) server.
#include "support/api_server_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <curl/curl.h>
#include <gtest/gtest.h>

#include "kube/config.h"
#include "support/test_paths.h"

extern char** environ;

namespace gpu_autoscaler::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kStartDeadline = 30s;

struct HttpResult {
  long status = 0;
  std::string body;
  std::string error;  // transport failure
};

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One request against `cfg.server` with its TLS and bearer-token settings.
HttpResult Request(const kube::ClientConfig& cfg, const std::string& method,
                   const std::string& path, const std::string& body = "",
                   const std::string& content_type = "application/json") {
  HttpResult result;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    result.error = "curl_easy_init failed";
    return result;
  }
  std::string url = cfg.server + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30'000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_slist* headers = nullptr;
  std::string auth = "Authorization: Bearer " + cfg.bearer_token;
  if (!cfg.bearer_token.empty()) headers = curl_slist_append(headers, auth.c_str());
  std::string type = "Content-Type: " + content_type;
  if (!body.empty()) {
    headers = curl_slist_append(headers, type.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_blob ca{const_cast<char*>(cfg.ca_pem.data()), cfg.ca_pem.size(), CURL_BLOB_COPY};
  curl_blob cert{const_cast<char*>(cfg.client_cert_pem.data()), cfg.client_cert_pem.size(),
                 CURL_BLOB_COPY};
  curl_blob key{const_cast<char*>(cfg.client_key_pem.data()), cfg.client_key_pem.size(),
                CURL_BLOB_COPY};
  if (!cfg.ca_pem.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
  if (!cfg.client_cert_pem.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (cfg.insecure_skip_tls_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    result.error = curl_easy_strerror(rc);
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return result;
}

// Runs a program to completion with stdout/stderr discarded; true on exit 0.
bool RunQuietly(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string RandomSuffix(size_t n) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::mt19937 rng(rd());
  std::string out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
  return out;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

struct TestApiServer::Impl {
  kube::ClientConfig cfg;
  pid_t pid = -1;
  int stdout_fd = -1;
  std::string temp_dir;
  std::vector<std::string> temp_files;
  std::vector<std::string> namespaces;

  ~Impl() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      auto deadline = std::chrono::steady_clock::now() + 20s;
      int status = 0;
      while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "TestApiServer: pid %d ignored SIGTERM; killing it\n", pid);
          ::kill(pid, SIGKILL);
          ::waitpid(pid, &status, 0);
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
    }
    if (stdout_fd >= 0) ::close(stdout_fd);
    for (const auto& f : temp_files)
      std::remove(f.c_str());
    if (!temp_dir.empty()) ::rmdir(temp_dir.c_str());
  }

  bool MakeCertificates(std::string* cert, std::string* key, std::string* ca_pem) {
    char tmpl[] = "/tmp/gpa-apiserver-tls-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return false;
    temp_dir = tmpl;
    auto path = [&](const char* name) {
      std::string p = temp_dir + "/" + name;
      temp_files.push_back(p);
      return p;
    };
    std::string ca_key = path("ca.key"), ca_crt = path("ca.crt"), ca_srl = path("ca.srl");
    std::string tls_key = path("tls.key"), tls_csr = path("tls.csr"), tls_crt = path("tls.crt");
    std::string ext = path("ext.cnf");
    if (!WriteFile(
            ext,
            "subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")) {
      return false;
    }
    bool ok =
        RunQuietly({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
                    "-out", ca_crt, "-days", "2", "-subj", "/CN=gpu-autoscaler-test-ca"}) &&
        RunQuietly({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", tls_key, "-out",
                    tls_csr, "-subj", "/CN=127.0.0.1"}) &&
        RunQuietly({"openssl", "x509", "-req", "-in", tls_csr, "-CA", ca_crt, "-CAkey", ca_key,
                    "-CAserial", ca_srl, "-CAcreateserial", "-out", tls_crt, "-days", "2",
                    "-extfile", ext});
    if (!ok) return false;
    *cert = tls_crt;
    *key = tls_key;
    *ca_pem = ReadFileOrDie(ca_crt);
    return true;
  }

  // Spawns the server and reads "listening on URL" from its stdout.
  bool Launch(const std::vector<std::string>& args) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) return false;
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    stdout_fd = pipe_fds[0];
    if (rc != 0) {
      pid = -1;
      std::fprintf(stderr, "TestApiServer: cannot run %s: %s\n", args[0].c_str(),
                   std::strerror(rc));
      return false;
    }
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
    const std::string marker = "listening on ";
    while (true) {
      auto at = out.find(marker);
      auto nl = at == std::string::npos ? std::string::npos : out.find('\n', at);
      if (nl != std::string::npos) {
        cfg.server = out.substr(at + marker.size(), nl - at - marker.size());
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{stdout_fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[512];
      ssize_t n = ::read(stdout_fd, buf, sizeof(buf));
      if (n <= 0) break;  // exited
      out.append(buf, static_cast<size_t>(n));
    }
    std::fprintf(stderr, "TestApiServer: %s did not report its port (output: %s)\n",
                 args[0].c_str(), out.c_str());
    return false;
  }

  bool WaitUntilServing() {
    auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      HttpResult r = Request(cfg, "GET", "/version");
      if (r.error.empty() && r.status == 200) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  Status Fault(const std::string& action, const std::string& body) {
    HttpResult r = Request(cfg, "POST", "/__faults/" + action, body);
    if (!r.error.empty()) return UnavailableError("fault " + action + ": " + r.error);
    if (r.status != 200) {
      return InternalError("fault " + action + ": HTTP " + std::to_string(r.status) + " " + r.body);
    }
    return Status::Ok();
  }
};

std::unique_ptr<TestApiServer> TestApiServer::Start(const TestApiServerOptions& opts) {
  static const bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!curl_ready) return nullptr;
  std::unique_ptr<TestApiServer> server(new TestApiServer());
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;

  if (const char* kubeconfig = std::getenv("GPU_AUTOSCALER_TEST_KUBECONFIG");
      kubeconfig != nullptr && *kubeconfig != '\0') {
    auto cfg = kube::LoadKubeconfigFiles({kubeconfig});
    if (!cfg.ok()) {
      std::fprintf(stderr, "TestApiServer: %s\n", cfg.error().ToString().c_str());
      return nullptr;
    }
    impl.cfg = std::move(cfg).value();
    if (impl.cfg.token_source) {
      auto token = impl.cfg.token_source->Token();
      if (token.ok()) impl.cfg.bearer_token = *token;
    }
    server->real_cluster_ = true;
    if (!impl.WaitUntilServing()) {
      std::fprintf(stderr, "TestApiServer: %s does not answer /version\n", impl.cfg.server.c_str());
      return nullptr;
    }
    return server;
  }

  std::vector<std::string> args = {BinaryPath("gpu-autoscaler-apiserver"),
                                   "--bind-address",
                                   "127.0.0.1",
                                   "--port",
                                   "0",
                                   "--enable-fault-injection",
                                   "--crd-dir",
                                   SourcePath("crds"),
                                   "--watch-history",
                                   std::to_string(opts.watch_history)};
  impl.cfg.bearer_token = "gpa-test-" + RandomSuffix(16);
  args.push_back("--token");
  args.push_back(impl.cfg.bearer_token);
  if (opts.tls) {
    std::string cert, key;
    if (!impl.MakeCertificates(&cert, &key, &impl.cfg.ca_pem)) {
      std::fprintf(stderr, "TestApiServer: cannot generate TLS certificates with openssl\n");
      return nullptr;
    }
    args.insert(args.end(), {"--tls-cert-file", cert, "--tls-key-file", key});
  }
  args.insert(args.end(), opts.extra_args.begin(), opts.extra_args.end());
  if (!impl.Launch(args)) return nullptr;
  if (!impl.WaitUntilServing()) {
    std::fprintf(stderr, "TestApiServer: %s does not answer /version\n", impl.cfg.server.c_str());
    return nullptr;
  }
  return server;
}

TestApiServer::~TestApiServer() {
  if (impl_ && real_cluster_) {
    for (const auto& ns : impl_->namespaces) {
      Request(impl_->cfg, "DELETE", "/api/v1/namespaces/" + ns);
    }
  }
}

kube::ClientConfig TestApiServer::config() const {
  return impl_->cfg;
}

std::string TestApiServer::url() const {
  return impl_->cfg.server;
}

std::string TestApiServer::CreateTestNamespace(const std::string& prefix) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string name = prefix + "-" + RandomSuffix(6);
    std::string body =
        R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + name + R"("}})";
    HttpResult r = Request(impl_->cfg, "POST", "/api/v1/namespaces", body);
    if (r.error.empty() && r.status == 201) {
      impl_->namespaces.push_back(name);
      return name;
    }
    if (!r.error.empty() || r.status != 409) {
      ADD_FAILURE() << "cannot create namespace " << name << ": " << r.status << " " << r.error
                    << r.body;
      return name;
    }
  }
  ADD_FAILURE() << "cannot find a free namespace name for prefix " << prefix;
  return prefix;
}

namespace {
Status NoFaults() {
  return FailedPreconditionError("fault injection needs the embedded API server");
}
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}
}  // namespace

Status TestApiServer::InjectError(const InjectedError& e) {
  if (real_cluster_) return NoFaults();
  std::ostringstream body;
  body << "{\"verb\":" << JsonString(e.verb) << ",\"resource\":" << JsonString(e.resource)
       << ",\"code\":" << e.code << ",\"count\":" << e.count
       << ",\"retryAfterSeconds\":" << e.retry_after_seconds << "}";
  return impl_->Fault("error", body.str());
}

Status TestApiServer::SetLatency(std::chrono::milliseconds latency) {
  if (real_cluster_) return NoFaults();
  return impl_->Fault("latency", "{\"ms\":" + std::to_string(latency.count()) + "}");
}

Status TestApiServer::SetLatency(std::chrono::milliseconds latency, const std::string& verb,
                                 const std::string& resource) {
  if (real_cluster_) return NoFaults();
  // Verbs and resources are plain lower-case words: no escaping needed.
  return impl_->Fault("latency", "{\"ms\":" + std::to_string(latency.count()) + ",\"verb\":\"" +
                                     verb + "\",\"resource\":\"" + resource + "\"}");
}

Status TestApiServer::DropWatches() {
  if (real_cluster_) return NoFaults();
  return impl_->Fault("drop-watches", "{}");
}

Status TestApiServer::Compact() {
  if (real_cluster_) return NoFaults();
  return impl_->Fault("compact", "{}");
}

Status TestApiServer::Restart(std::chrono::milliseconds downtime) {
  if (real_cluster_) return NoFaults();
  auto restarts = [&]() -> int {
    HttpResult r = Request(impl_->cfg, "GET", "/__faults/status");
    if (!r.error.empty() || r.status != 200) return -1;
    auto pos = r.body.find("\"restarts\":");
    return pos == std::string::npos ? -1 : std::atoi(r.body.c_str() + pos + 11);
  };
  int before = restarts();
  if (before < 0) return UnavailableError("cannot read the server's restart count");
  GPU_RETURN_IF_ERROR(
      impl_->Fault("restart", "{\"downtimeMs\":" + std::to_string(downtime.count()) + "}"));
  // The server answers before it goes down; wait until the new incarnation serves.
  auto deadline = std::chrono::steady_clock::now() + kStartDeadline + downtime;
  while (restarts() != before + 1) {
    if (std::chrono::steady_clock::now() > deadline) {
      return UnavailableError("server did not come back after a restart");
    }
    std::this_thread::sleep_for(10ms);
  }
  return Status::Ok();
}

Status TestApiServer::ClearFaults() {
  if (real_cluster_) return NoFaults();
  return impl_->Fault("clear", "{}");
}

}  // namespace gpu_autoscaler::testing
