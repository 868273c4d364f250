// A tiny HTTP endpoint served either by our Boost.Beast server (src/net) or by
// cpprestsdk's http_listener, so that a load generator (wrk) can compare the
// two in one run: hack/bench-http-server.sh drives it.
//
// Usage: http_server_compare beast|cpprest PORT
// Serves GET /healthz -> 200 "ok" and POST /echo -> the request body, until
// stdin closes or SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <cpprest/http_listener.h>

#include "net/http_server.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

void WaitForStop() {
  while (!g_stop)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

int RunBeast(int port) {
  gpu_autoscaler::net::HttpServerOptions opts;
  opts.port = port;
  auto server = gpu_autoscaler::net::HttpServer::Start(
      opts,
      [](const gpu_autoscaler::net::ServerRequest& req, gpu_autoscaler::net::ResponseWriter& w) {
        if (req.path == "/echo") {
          w.Respond(200, "application/json", req.body);
        } else {
          w.Respond(200, "text/plain", "ok");
        }
      });
  if (!server.ok()) {
    std::fprintf(stderr, "beast: %s\n", server.error().ToString().c_str());
    return 1;
  }
  std::printf("listening on http://127.0.0.1:%d\n", (*server)->port());
  std::fflush(stdout);
  WaitForStop();
  (*server)->Stop();
  return 0;
}

int RunCppRest(int port) {
  using web::http::experimental::listener::http_listener;
  http_listener listener("http://127.0.0.1:" + std::to_string(port));
  listener.support([](web::http::http_request req) {
    if (req.relative_uri().path() == "/echo") {
      req.extract_string().then([req](std::string body) mutable {
        req.reply(web::http::status_codes::OK, body, "application/json");
      });
    } else {
      req.reply(web::http::status_codes::OK, "ok", "text/plain");
    }
  });
  try {
    listener.open().wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpprest: %s\n", e.what());
    return 1;
  }
  std::printf("listening on http://127.0.0.1:%d\n", port);
  std::fflush(stdout);
  WaitForStop();
  listener.close().wait();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s beast|cpprest PORT\n", argv[0]);
    return 2;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::string mode = argv[1];
  int port = std::atoi(argv[2]);
  if (mode == "beast") return RunBeast(port);
  if (mode == "cpprest") return RunCppRest(port);
  std::fprintf(stderr, "unknown server %s\n", mode.c_str());
  return 2;
}
