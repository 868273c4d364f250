// Boost.Beast implementation of net::HttpServer.
//
// Each accepted connection gets its own thread and its own io_context. Socket
// operations are issued asynchronously and driven by running that io_context
// until the operation completes, which gives every read and write a deadline
// (beast::tcp_stream::expires_after) while keeping handlers plain blocking code.
// Stop() and CloseAllConnections() shut the sockets down with shutdown(2),
// which is safe from any thread and fails whatever operation is in flight.
#include "net/http_server.h"

#include "net/tls_policy.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace gpu_autoscaler::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; `plus_is_space` for query components (Go's url.ParseQuery).
std::string PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

// Runs `initiate(handler)` on `ioc` until the handler has been called.
template <typename Initiate>
beast::error_code RunToCompletion(asio::io_context& ioc, Initiate&& initiate) {
  beast::error_code result;
  bool done = false;
  initiate([&](beast::error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  ioc.restart();
  while (!done && ioc.run_one() > 0) {
  }
  if (!done) result = asio::error::operation_aborted;
  return result;
}

// The client's certificate chain, DER, leaf first ({} when none was sent).
std::vector<std::string> PeerChainDer(SSL* ssl) {
  std::vector<std::string> out;
  auto add = [&out](X509* cert) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert, &der);
    if (n > 0) out.emplace_back(reinterpret_cast<const char*>(der), static_cast<size_t>(n));
    OPENSSL_free(der);
  };
  X509* leaf = SSL_get1_peer_certificate(ssl);
  if (leaf == nullptr) return out;
  add(leaf);
  // On the server side the chain does not hold the leaf.
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl); chain != nullptr) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      X509* cert = sk_X509_value(chain, i);
      if (X509_cmp(cert, leaf) != 0) add(cert);
    }
  }
  X509_free(leaf);
  return out;
}

// One connection's socket, shared with Stop()/CloseAllConnections().
struct ConnectionSlot {
  std::atomic<bool> cancelled{false};
  std::atomic<bool> finished{false};
  int native_fd = -1;  // guarded by HttpServerImpl::mu_
  std::thread thread;
};

template <typename Stream>
class StreamWriter final : public ResponseWriter {
 public:
  StreamWriter(Stream& stream, asio::io_context& ioc, const ConnectionSlot& slot,
               std::chrono::milliseconds write_timeout, unsigned version, bool keep_alive)
      : stream_(stream),
        ioc_(ioc),
        slot_(slot),
        write_timeout_(write_timeout),
        version_(version),
        keep_alive_(keep_alive) {}

  void Respond(int status, std::string_view content_type, std::string body,
               const std::vector<std::pair<std::string, std::string>>& headers) override {
    if (responded_) return;
    responded_ = true;
    http::response<http::string_body> res{static_cast<http::status>(status), version_};
    res.set(http::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
    for (const auto& [name, value] : headers)
      res.set(name, value);
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    ExpireWrites();
    auto ec = RunToCompletion(
        ioc_, [&](auto handler) { http::async_write(stream_, res, std::move(handler)); });
    if (ec) failed_ = true;
  }

  bool StartStream(int status, std::string_view content_type) override {
    if (responded_) return false;
    responded_ = true;
    streaming_ = true;
    http::response<http::empty_body> res{static_cast<http::status>(status), version_};
    res.set(http::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
    res.set(http::field::cache_control, "no-cache, private");
    res.keep_alive(keep_alive_);
    res.chunked(true);
    http::response_serializer<http::empty_body> serializer{res};
    ExpireWrites();
    auto ec = RunToCompletion(ioc_, [&](auto handler) {
      http::async_write_header(stream_, serializer, std::move(handler));
    });
    if (ec) failed_ = true;
    return !failed_;
  }

  bool Write(std::string_view chunk) override {
    if (!streaming_ || failed_ || ended_ || slot_.cancelled.load()) return false;
    if (chunk.empty()) return true;  // an empty chunk would end the body
    ExpireWrites();
    auto ec = RunToCompletion(ioc_, [&](auto handler) {
      asio::async_write(stream_, http::make_chunk(asio::const_buffer(chunk.data(), chunk.size())),
                        std::move(handler));
    });
    if (ec) failed_ = true;
    return !failed_;
  }

  void End() override {
    if (!streaming_ || ended_) return;
    ended_ = true;
    if (failed_) return;
    ExpireWrites();
    auto ec = RunToCompletion(ioc_, [&](auto handler) {
      asio::async_write(stream_, http::make_chunk_last(), std::move(handler));
    });
    if (ec) failed_ = true;
  }

  bool Cancelled() const override { return slot_.cancelled.load(); }

  bool responded() const { return responded_; }
  // The connection can serve another request only after a complete response.
  bool reusable() const { return responded_ && !failed_ && (!streaming_ || ended_) && keep_alive_; }

 private:
  void ExpireWrites() { beast::get_lowest_layer(stream_).expires_after(write_timeout_); }

  Stream& stream_;
  asio::io_context& ioc_;
  const ConnectionSlot& slot_;
  std::chrono::milliseconds write_timeout_;
  unsigned version_;
  bool keep_alive_;
  bool responded_ = false;
  bool streaming_ = false;
  bool ended_ = false;
  bool failed_ = false;
};

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(HttpServerOptions opts, Handler handler)
      : opts_(std::move(opts)), handler_(std::move(handler)), acceptor_(accept_ioc_) {}

  ~HttpServerImpl() override { Stop(); }

  Status Init() {
    if (!opts_.tls_cert_file.empty() || !opts_.tls_key_file.empty()) {
      if (opts_.tls_cert_file.empty() || opts_.tls_key_file.empty()) {
        return InvalidArgumentError("TLS needs both a certificate file and a key file");
      }
      auto ctx = LoadTlsContext();
      if (!ctx.ok()) return ctx.error();
      ssl_ctx_ = std::move(*ctx);
      cert_stamp_ = CertStamp();
      last_cert_check_ = std::chrono::steady_clock::now();
    }
    beast::error_code ec;
    auto address = asio::ip::make_address(opts_.bind_address, ec);
    if (ec) return InvalidArgumentError("bad bind address \"" + opts_.bind_address + "\"");
    if (opts_.port < 0 || opts_.port > 65535) {
      return InvalidArgumentError("bad port " + std::to_string(opts_.port));
    }
    tcp::endpoint endpoint(address, static_cast<unsigned short>(opts_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return UnavailableError("cannot listen on " + opts_.bind_address + ":" +
                              std::to_string(opts_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    accept_thread_ = std::thread([this] { accept_ioc_.run(); });
    return Status::Ok();
  }

  int port() const override { return port_; }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    asio::post(accept_ioc_, [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
    if (accept_thread_.joinable()) accept_thread_.join();
    std::list<std::shared_ptr<ConnectionSlot>> slots;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& slot : connections_)
        CancelLocked(*slot);
      slots.swap(connections_);
    }
    for (auto& slot : slots) {
      if (slot->thread.joinable()) slot->thread.join();
    }
  }

  void CloseAllConnections() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& slot : connections_)
      CancelLocked(*slot);
  }

 private:
  // Marks the connection cancelled and fails its in-flight socket operation.
  static void CancelLocked(ConnectionSlot& slot) {
    slot.cancelled.store(true);
    if (slot.native_fd >= 0) ::shutdown(slot.native_fd, SHUT_RDWR);
  }

  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        Accept();  // transient (e.g. EMFILE): keep serving
        return;
      }
      StartConnection(std::move(socket));
      Accept();
    });
  }

  void StartConnection(tcp::socket socket) {
    std::lock_guard<std::mutex> lock(mu_);
    ReapFinishedLocked();
    if (stopped_) return;
    auto slot = std::make_shared<ConnectionSlot>();
    // The connection moves onto its own io_context: release the descriptor
    // from the acceptor's context and adopt it there.
    beast::error_code ec;
    auto protocol = socket.local_endpoint(ec).protocol();
    std::string remote;
    auto remote_ep = socket.remote_endpoint(ec);
    if (!ec) remote = remote_ep.address().to_string() + ":" + std::to_string(remote_ep.port());
    int fd = socket.release(ec);
    if (ec) return;
    slot->native_fd = fd;
    connections_.push_back(slot);
    const bool tls = !opts_.tls_cert_file.empty();
    slot->thread = std::thread([this, slot, fd, protocol, remote, tls] {
      asio::io_context ioc;
      tcp::socket sock(ioc);
      beast::error_code assign_ec;
      sock.assign(protocol, fd, assign_ec);
      if (!assign_ec) {
        beast::error_code ignored;
        sock.set_option(tcp::no_delay(true), ignored);  // watch events go out at once
        if (tls) {
          std::shared_ptr<asio::ssl::context> ctx = CurrentTlsContext();
          beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), *ctx);
          beast::get_lowest_layer(stream).expires_after(opts_.read_timeout);
          auto ec2 = RunToCompletion(ioc, [&](auto handler) {
            stream.async_handshake(asio::ssl::stream_base::server, std::move(handler));
          });
          std::vector<std::string> peer_chain;
          if (!ec2 && opts_.request_client_certificate) {
            peer_chain = PeerChainDer(stream.native_handle());
          }
          if (!ec2) Serve(stream, ioc, *slot, remote, peer_chain);
          if (!ec2 && !slot->cancelled.load()) {
            beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
            RunToCompletion(ioc, [&](auto handler) { stream.async_shutdown(std::move(handler)); });
          }
          Close(beast::get_lowest_layer(stream).socket(), *slot);
        } else {
          beast::tcp_stream stream(std::move(sock));
          Serve(stream, ioc, *slot, remote, {});
          beast::error_code ignored;
          stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
          Close(stream.socket(), *slot);
        }
      } else {
        ::close(fd);
        std::lock_guard<std::mutex> l(mu_);
        slot->native_fd = -1;
      }
      slot->finished.store(true);
    });
  }

  // Closes the descriptor while no other thread can shutdown() it.
  void Close(tcp::socket& socket, ConnectionSlot& slot) {
    std::lock_guard<std::mutex> lock(mu_);
    slot.native_fd = -1;
    beast::error_code ignored;
    socket.close(ignored);
  }

  void ReapFinishedLocked() {
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->finished.load()) {
        if ((*it)->thread.joinable()) (*it)->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }

  template <typename Stream>
  void Serve(Stream& stream, asio::io_context& ioc, ConnectionSlot& slot, const std::string& remote,
             const std::vector<std::string>& peer_chain) {
    beast::flat_buffer buffer;
    while (!slot.cancelled.load()) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(opts_.max_body_bytes);
      parser.header_limit(64 * 1024);
      beast::get_lowest_layer(stream).expires_after(opts_.read_timeout);
      auto ec = RunToCompletion(
          ioc, [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
      if (ec == http::error::body_limit) {
        StreamWriter<Stream> writer(stream, ioc, slot, opts_.read_timeout, 11, false);
        if (opts_.body_too_large) {
          auto [content_type, body] = opts_.body_too_large(opts_.max_body_bytes);
          writer.Respond(413, content_type, std::move(body), {});
        } else {
          writer.Respond(413, "text/plain", "request body too large\n", {});
        }
        return;
      }
      if (ec) return;  // closed, timed out, cancelled or malformed
      auto& msg = parser.get();
      ServerRequest req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      auto question = req.target.find('?');
      req.path = PercentDecode(std::string_view(req.target).substr(0, question), false);
      if (question != std::string::npos) req.query = req.target.substr(question + 1);
      for (const auto& field : msg) {
        req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      req.body = std::move(msg.body());
      req.remote_address = remote;
      req.peer_certificates_der = peer_chain;
      StreamWriter<Stream> writer(stream, ioc, slot, opts_.read_timeout, msg.version(),
                                  msg.keep_alive());
      handler_(req, writer);
      if (!writer.responded()) writer.Respond(500, "text/plain", "no response\n", {});
      if (!writer.reusable()) return;
    }
  }

  Result<std::shared_ptr<asio::ssl::context>> LoadTlsContext() const {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    beast::error_code ec;
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1,
                     ec);
    if (Status s = ApplyServerTlsPolicy(ctx->native_handle()); !s.ok()) return s;
    if (opts_.request_client_certificate) {
      // Request, do not require, and accept any chain: the handler verifies
      // it against the CA it trusts for the purpose.
      SSL_CTX_set_verify(ctx->native_handle(), SSL_VERIFY_PEER,
                         [](int, X509_STORE_CTX*) { return 1; });
    }
    ctx->use_certificate_chain_file(opts_.tls_cert_file, ec);
    if (ec) {
      return InvalidArgumentError("cannot load TLS certificate " + opts_.tls_cert_file + ": " +
                                  ec.message());
    }
    ctx->use_private_key_file(opts_.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) {
      return InvalidArgumentError("cannot load TLS key " + opts_.tls_key_file + ": " +
                                  ec.message());
    }
    return ctx;
  }

  // Modification time and size of both files: a rotation (cert-manager's
  // Secret update, a kubelet-projected volume swap) changes at least one.
  std::string CertStamp() const {
    std::string stamp;
    for (const std::string* path : {&opts_.tls_cert_file, &opts_.tls_key_file}) {
      struct stat st {};
      if (::stat(path->c_str(), &st) != 0) return "";
      stamp += std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
               std::to_string(st.st_size) + ";";
    }
    return stamp;
  }

  // The context for a new connection: reloaded when the files changed (looked
  // at most once a second). A rotation caught half-written fails to load; the
  // previous context keeps serving and the next check tries again.
  std::shared_ptr<asio::ssl::context> CurrentTlsContext() {
    std::lock_guard<std::mutex> l(tls_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_cert_check_ >= std::chrono::seconds(1)) {
      last_cert_check_ = now;
      std::string stamp = CertStamp();
      if (!stamp.empty() && stamp != cert_stamp_) {
        auto ctx = LoadTlsContext();
        if (ctx.ok()) {
          ssl_ctx_ = std::move(*ctx);
          cert_stamp_ = std::move(stamp);
          cert_reloads_.fetch_add(1);
        }
      }
    }
    return ssl_ctx_;
  }

 public:
  int64_t certificate_reloads() const override { return cert_reloads_.load(); }

 private:
  HttpServerOptions opts_;
  Handler handler_;
  std::mutex tls_mu_;
  std::shared_ptr<asio::ssl::context> ssl_ctx_;  // guarded by tls_mu_ after Init
  std::string cert_stamp_;
  std::chrono::steady_clock::time_point last_cert_check_{};
  std::atomic<int64_t> cert_reloads_{0};
  asio::io_context accept_ioc_;
  tcp::acceptor acceptor_;
  std::thread accept_thread_;
  int port_ = 0;

  std::mutex mu_;
  bool stopped_ = false;
  std::list<std::shared_ptr<ConnectionSlot>> connections_;
};

}  // namespace

std::string_view ServerRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

namespace {
// Calls `fn(key, raw_value)` for each `key=value` pair of a raw query; stops
// when `fn` returns true.
template <typename Fn>
void ForEachQueryPair(std::string_view query, Fn&& fn) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), true);
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (fn(key, raw)) return;
  }
}
}  // namespace

std::string ServerRequest::QueryParam(std::string_view name) const {
  std::string result;
  ForEachQueryPair(query, [&](const std::string& key, std::string_view raw) {
    if (key != name) return false;
    result = PercentDecode(raw, true);
    return true;
  });
  return result;
}

bool ServerRequest::HasQueryParam(std::string_view name) const {
  bool found = false;
  ForEachQueryPair(query, [&](const std::string& key, std::string_view) {
    found = key == name;
    return found;
  });
  return found;
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& opts,
                                                      Handler handler) {
  if (!handler) return InvalidArgumentError("HttpServer needs a handler");
  auto server = std::make_unique<HttpServerImpl>(opts, std::move(handler));
  Status status;
  try {
    status = server->Init();
  } catch (const std::exception& e) {  // Asio/OpenSSL setup failures
    status = InternalError(std::string("http server: ") + e.what());
  }
  if (!status.ok()) return status;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace gpu_autoscaler::net
