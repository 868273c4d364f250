// libcurl implementation of HttpTransport.
//
// Connection reuse: easy handles are pooled per transport; a handle keeps its
// connection cache (and TLS session) across curl_easy_reset, so sequential
// requests from any thread reuse warm connections. Streams run the easy
// handle inside a private multi handle so that a stop request wakes the poll
// loop immediately (curl_multi_wakeup) instead of waiting for the next
// progress callback.

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "kube/transport.h"

namespace gpu_autoscaler::kube {
namespace {

void EnsureCurlGlobalInit() {
  static std::once_flag once;
  // Never paired with curl_global_cleanup: other libraries in the process may
  // still use curl during static destruction.
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// Largest body Do() buffers; a bigger one is a server or routing problem.
constexpr size_t kMaxBodyBytes = size_t{1} << 30;

// Per-request state shared with libcurl callbacks.
struct Transfer {
  HttpResponse response;
  bool headers_complete = false;
  bool stream_body = false;  // pass the body to on_data (2xx stream)
  bool consumer_stopped = false;
  bool body_too_large = false;
  const std::function<void(int, const Headers&)>* on_headers = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
};

size_t OnHeader(char* buffer, size_t size, size_t count, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t total = size * count;
  std::string_view line(buffer, total);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
    line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new response (after 1xx or a redirect): start over.
    t->response.headers.clear();
    t->headers_complete = false;
    size_t sp = line.find(' ');
    t->response.status = sp == std::string_view::npos ? 0 : std::atoi(line.data() + sp + 1);
    return total;
  }
  if (line.empty()) {
    if (t->response.status >= 100 && t->response.status < 200) return total;  // interim
    t->headers_complete = true;
    if (t->on_headers != nullptr) {
      t->stream_body = t->response.status >= 200 && t->response.status < 300;
      (*t->on_headers)(t->response.status, t->response.headers);
    }
    return total;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return total;
  std::string_view name = line.substr(0, colon);
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  t->response.headers.emplace_back(std::string(name), std::string(value));
  return total;
}

size_t OnWrite(char* data, size_t size, size_t count, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t total = size * count;
  if (t->stream_body) {
    if (!(*t->on_data)(std::string_view(data, total))) {
      t->consumer_stopped = true;
      return CURL_WRITEFUNC_ERROR;
    }
    return total;
  }
  if (t->response.body.size() + total > kMaxBodyBytes) {
    t->body_too_large = true;
    return CURL_WRITEFUNC_ERROR;
  }
  t->response.body.append(data, total);
  return total;
}

bool ValidPem(const std::string& pem, bool key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                &BIO_free);
  if (!bio) return false;
  if (key) {
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (pkey == nullptr) return false;
    EVP_PKEY_free(pkey);
    return true;
  }
  X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (cert == nullptr) return false;
  X509_free(cert);
  return true;
}

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(ClientConfig cfg) : cfg_(std::move(cfg)) { ParseServer(); }

  Result<HttpResponse> Do(const HttpRequest& req) override {
    EasyHandle easy = Acquire();
    if (!easy) return Error::Transport("curl_easy_init failed");
    Transfer t;
    char errbuf[CURL_ERROR_SIZE] = {0};
    Slist headers;
    Configure(easy.get(), req, &t, errbuf, &headers);
    CURLcode rc = curl_easy_perform(easy.get());
    auto result = Finish(easy.get(), rc, req, &t, errbuf, /*stopped=*/false);
    Release(std::move(easy));
    return result;
  }

  Result<HttpResponse> Stream(const HttpRequest& req,
                              const std::function<void(int, const Headers&)>& on_headers,
                              const std::function<bool(std::string_view)>& on_data,
                              std::stop_token stop) override {
    if (stop.stop_requested()) return Error::Cancelled("request cancelled");
    EasyHandle easy = Acquire();
    if (!easy) return Error::Transport("curl_easy_init failed");
    Transfer t;
    t.on_headers = &on_headers;
    t.on_data = &on_data;
    char errbuf[CURL_ERROR_SIZE] = {0};
    Slist headers;
    Configure(easy.get(), req, &t, errbuf, &headers);

    CURLM* multi = curl_multi_init();
    if (multi == nullptr) return Error::Transport("curl_multi_init failed");
    curl_multi_add_handle(multi, easy.get());
    CURLcode rc = CURLE_OK;
    bool stopped = false;
    {
      std::stop_callback wake(stop, [multi] { curl_multi_wakeup(multi); });
      int running = 1;
      while (true) {
        CURLMcode mc = curl_multi_perform(multi, &running);
        if (mc != CURLM_OK) {
          rc = CURLE_RECV_ERROR;
          std::snprintf(errbuf, sizeof(errbuf), "%s", curl_multi_strerror(mc));
          break;
        }
        if (running == 0) {
          int queued = 0;
          while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
            if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
          }
          break;
        }
        if (stop.stop_requested()) {
          stopped = true;
          break;
        }
        curl_multi_poll(multi, nullptr, 0, /*timeout_ms=*/1000, nullptr);
      }
    }
    curl_multi_remove_handle(multi, easy.get());
    curl_multi_cleanup(multi);
    auto result = Finish(easy.get(), rc, req, &t, errbuf, stopped);
    if (!stopped) Release(std::move(easy));  // an aborted transfer's handle is not reused
    return result;
  }

 private:
  // Splits cfg_.server into scheme://host:port for the tls-server-name rewrite.
  void ParseServer() {
    if (cfg_.tls_server_name.empty()) return;
    std::string_view s = cfg_.server;
    size_t scheme_end = s.find("://");
    if (scheme_end == std::string_view::npos) return;
    std::string_view rest = s.substr(scheme_end + 3);
    std::string_view authority = rest.substr(0, rest.find('/'));
    std::string_view host = authority;
    std::string port = s.starts_with("https") ? "443" : "80";
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
      host = authority.substr(0, colon);
      port = std::string(authority.substr(colon + 1));
    }
    server_prefix_ = std::string(s.substr(0, scheme_end + 3)) + std::string(authority);
    rewritten_prefix_ =
        std::string(s.substr(0, scheme_end + 3)) + cfg_.tls_server_name + ":" + port;
    connect_to_ = cfg_.tls_server_name + ":" + port + ":" + std::string(host) + ":" + port;
    connect_to_list_.reset(curl_slist_append(nullptr, connect_to_.c_str()));
  }

  EasyHandle Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        EasyHandle h = std::move(idle_.back());
        idle_.pop_back();
        curl_easy_reset(h.get());  // keeps live connections and TLS sessions
        return h;
      }
    }
    return EasyHandle(curl_easy_init());
  }

  void Release(EasyHandle h) {
    constexpr size_t kMaxIdle = 32;
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(h));
  }

  void Configure(CURL* h, const HttpRequest& req, Transfer* t, char* errbuf, Slist* headers) {
    std::string url = req.url;
    if (!connect_to_.empty() && url.starts_with(server_prefix_)) {
      url = rewritten_prefix_ + url.substr(server_prefix_.size());
      curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to_list_.get());
    }
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");

    if (!cfg_.ca_pem.empty()) {
      curl_blob ca{const_cast<char*>(cfg_.ca_pem.data()), cfg_.ca_pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
      // The cluster CA alone is trusted, not the system bundle.
      curl_easy_setopt(h, CURLOPT_CAINFO, nullptr);
      curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
    }
    if (!cfg_.client_cert_pem.empty()) {
      curl_blob cert{const_cast<char*>(cfg_.client_cert_pem.data()), cfg_.client_cert_pem.size(),
                     CURL_BLOB_COPY};
      curl_blob key{const_cast<char*>(cfg_.client_key_pem.data()), cfg_.client_key_pem.size(),
                    CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
      curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
      curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (cfg_.insecure_skip_tls_verify) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    long connect_ms = 10'000;
    if (req.timeout.count() > 0) {
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, long(req.timeout.count()));
      connect_ms = std::min<long>(connect_ms, long(req.timeout.count()));
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);

    if (req.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (req.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
      if (!req.body.empty() || req.method != "DELETE") {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(req.body.size()));
      }
    }

    curl_slist* list = nullptr;
    for (const auto& [name, value] : req.headers) {
      std::string line = name + ": " + value;
      list = curl_slist_append(list, line.c_str());
    }
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
    headers->reset(list);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);

    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnWrite);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
  }

  Result<HttpResponse> Finish(CURL* h, CURLcode rc, const HttpRequest& req, Transfer* t,
                              const char* errbuf, bool stopped) {
    if (stopped) return Error::Cancelled(req.method + " " + req.url + ": cancelled");
    if (rc == CURLE_WRITE_ERROR && t->consumer_stopped) rc = CURLE_OK;
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    std::string what = req.method + " " + req.url + ": ";
    switch (rc) {
      case CURLE_OK:
        break;
      case CURLE_OPERATION_TIMEDOUT:
        return Error::Timeout(what + detail);
      case CURLE_ABORTED_BY_CALLBACK:
        return Error::Cancelled(what + "cancelled");
      case CURLE_WRITE_ERROR:
        if (t->body_too_large) return Error::Transport(what + "response body too large");
        return Error::Transport(what + detail);
      default:
        return Error::Transport(what + detail);
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 0) t->response.status = int(status);
    long version = 0;
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
    t->response.http_version = version == CURL_HTTP_VERSION_2_0   ? 20
                               : version == CURL_HTTP_VERSION_1_0 ? 10
                                                                  : 11;
    return std::move(t->response);
  }

  const ClientConfig cfg_;
  std::string server_prefix_, rewritten_prefix_, connect_to_;
  // Built once; libcurl only reads it, so concurrent requests may share it.
  Slist connect_to_list_;
  std::mutex mu_;
  std::vector<EasyHandle> idle_;
};

}  // namespace

Result<std::unique_ptr<HttpTransport>> NewCurlTransport(const ClientConfig& cfg) {
  if (cfg.server.empty()) return Error::Config("client config: server is required");
  if (!cfg.server.starts_with("https://") && !cfg.server.starts_with("http://")) {
    return Error::Config("client config: server \"" + cfg.server +
                         "\" is not an http:// or https:// URL");
  }
  if (!cfg.ca_pem.empty() && !ValidPem(cfg.ca_pem, /*key=*/false)) {
    return Error::Config("client config: certificate-authority: no PEM certificate found");
  }
  if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
    return Error::Config("client config: client certificate and key must be given together");
  }
  if (!cfg.client_cert_pem.empty()) {
    if (!ValidPem(cfg.client_cert_pem, /*key=*/false)) {
      return Error::Config("client config: client-certificate: no PEM certificate found");
    }
    if (!ValidPem(cfg.client_key_pem, /*key=*/true)) {
      return Error::Config("client config: client-key: no PEM private key found");
    }
  }
  EnsureCurlGlobalInit();
  return std::unique_ptr<HttpTransport>(std::make_unique<CurlTransport>(cfg));
}

}  // namespace gpu_autoscaler::kube
