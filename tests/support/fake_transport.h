// File: tests/support/fake_transport.h
//
// A scripted HttpTransport for RestClient unit tests: replies are queued in
// order (or produced by a handler) and every request is recorded.
//
//   auto transport = std::make_unique<FakeTransport>();
//   FakeTransport* fake = transport.get();
//   fake->Respond(200, R"({"kind":"Pod"})");
//   auto client = kube::RestClient::WithTransport(cfg, std::move(transport));
//   client->Get(ref);
//   EXPECT_EQ(fake->last_request().method, "GET");
//
// An unscripted request gets HTTP 418 (never retried).
// Stream replies deliver `chunks` one by one; with `hold_open` the stream
// then stays open until the caller's stop_token fires (Error kCancelled).
//
// Thread-safety: all methods are safe to call from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kube/transport.h"

namespace gpu_autoscaler::testing {

class FakeTransport : public kube::HttpTransport {
 public:
  struct Reply {
    int status = 200;
    std::string body{};
    kube::Headers headers{};
    std::vector<std::string> chunks{};   // Stream: the 2xx body, in pieces
    bool hold_open = false;              // Stream: wait for stop after the chunks
    std::optional<kube::Error> error{};  // a transport failure instead of a response
  };
  using Handler = std::function<Reply(const kube::HttpRequest&)>;

  // Queues replies, consumed first-in first-out by Do and Stream.
  void Enqueue(Reply reply);
  void Respond(int status, std::string body, kube::Headers headers = {});
  void Fail(kube::Error error);
  void RespondStream(int status, std::vector<std::string> chunks, bool hold_open = false);
  // Answers requests when the queue is empty.
  void SetHandler(Handler handler);

  std::vector<kube::HttpRequest> requests() const;
  kube::HttpRequest last_request() const;
  size_t request_count() const;
  // Blocks (up to 30 s) until at least `n` requests arrived; false on timeout.
  bool WaitForRequests(size_t n) const;

  kube::Result<kube::HttpResponse> Do(const kube::HttpRequest& req) override;
  kube::Result<kube::HttpResponse> Stream(
      const kube::HttpRequest& req,
      const std::function<void(int status, const kube::Headers&)>& on_headers,
      const std::function<bool(std::string_view chunk)>& on_data, std::stop_token stop) override;

 private:
  Reply Next(const kube::HttpRequest& req);

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Reply> queue_;
  Handler handler_;
  std::vector<kube::HttpRequest> requests_;
};

}  // namespace gpu_autoscaler::testing
