// The admission server: an acceptor and `threads` single-threaded
// io_contexts; each accepted connection is served on one of them
// (server_connection.cc) with the routing and counters of server_core.cc.
#include "webhooks/server.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <prometheus/registry.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "webhooks/server_core.h"

namespace gpu_autoscaler::webhooks {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class AdmissionServerImpl final : public AdmissionServer {
 public:
  AdmissionServerImpl(AdmissionServerOptions options, std::shared_ptr<CertificateSource> certs,
                      ReviewFunc review)
      : core_(std::move(options), std::move(certs), std::move(review)) {}
  ~AdmissionServerImpl() override { Stop(); }

  Status Listen() {
    GPU_RETURN_IF_ERROR(core_.Init());
    const auto& opts = core_.options();
    int threads = std::max(1, opts.threads);
    for (int i = 0; i < threads; ++i)
      contexts_.push_back(std::make_unique<asio::io_context>(1));
    boost::system::error_code ec;
    auto address = asio::ip::make_address(opts.bind_address, ec);
    if (ec)
      return InvalidArgumentError("bind address \"" + opts.bind_address + "\": " + ec.message());
    if (opts.port < 0 || opts.port > 65535) {
      return InvalidArgumentError("port " + std::to_string(opts.port) + " out of range");
    }
    acceptor_.emplace(*contexts_[0]);
    tcp::endpoint endpoint(address, static_cast<unsigned short>(opts.port));
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return UnavailableError("listen on " + opts.bind_address + ":" + std::to_string(opts.port) +
                              ": " + ec.message());
    }
    const tcp::endpoint bound = acceptor_->local_endpoint();
    port_ = bound.port();
    const std::string host = bound.address().to_string();
    listen_address_ =
        (bound.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(port_);
    accept_retry_.emplace(*contexts_[0]);
    Accept();
    for (auto& context : contexts_) {
      // Keeps run() from returning while a loop has no connection yet.
      work_guards_.push_back(asio::make_work_guard(*context));
      threads_.emplace_back([ctx = context.get()] { ctx->run(); });
    }
    return Status::Ok();
  }

  int port() const override { return port_; }
  std::string listen_address() const override { return listen_address_; }

  void Stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    for (auto& context : contexts_)
      context->stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    // Destroying the contexts destroys pending handlers, and with them the
    // connections they keep alive (which still use core_).
    work_guards_.clear();
    accept_retry_.reset();
    acceptor_.reset();
    contexts_.clear();
  }

  AdmissionServerStats stats() const override { return core_.stats(); }

 private:
  void Accept() {
    auto& target = *contexts_[next_context_++ % contexts_.size()];
    acceptor_->async_accept(
        target.get_executor(), [this](boost::system::error_code ec, tcp::socket s) {
          if (ec == asio::error::operation_aborted) return;
          if (ec) {
            // Out of descriptors and the like: back off briefly instead of spinning.
            accept_retry_->expires_after(std::chrono::milliseconds(50));
            accept_retry_->async_wait([this](boost::system::error_code wait_ec) {
              if (!wait_ec) Accept();
            });
            return;
          }
          if (core_.TryOpenConnection()) {
            boost::system::error_code ignored;
            s.set_option(tcp::no_delay(true), ignored);
            server_internal::ServeConnection(core_, std::move(s));
          }
          Accept();
        });
  }

  server_internal::ServerCore core_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_guards_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::steady_timer> accept_retry_;
  std::vector<std::thread> threads_;
  size_t next_context_ = 0;
  int port_ = 0;
  std::string listen_address_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<AdmissionServer>> AdmissionServer::Start(
    AdmissionServerOptions options, std::shared_ptr<CertificateSource> certs, ReviewFunc review) {
  if (!certs || !certs->Current()) return InvalidArgumentError("admission server: no certificate");
  if (!review) return InvalidArgumentError("admission server: no review function");
  if (!options.metrics) options.metrics = std::make_shared<prometheus::Registry>();
  if (options.clock == nullptr) options.clock = &RealClock::Instance();
  auto server = std::make_unique<AdmissionServerImpl>(std::move(options), std::move(certs),
                                                      std::move(review));
  GPU_RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<AdmissionServer>(std::move(server));
}

}  // namespace gpu_autoscaler::webhooks
