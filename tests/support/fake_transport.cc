#include "support/fake_transport.h"

#include <chrono>

namespace gpu_autoscaler::testing {

void FakeTransport::Enqueue(Reply reply) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(reply));
}

void FakeTransport::Respond(int status, std::string body, kube::Headers headers) {
  Enqueue(Reply{.status = status, .body = std::move(body), .headers = std::move(headers)});
}

void FakeTransport::Fail(kube::Error error) {
  Enqueue(Reply{.error = std::move(error)});
}

void FakeTransport::RespondStream(int status, std::vector<std::string> chunks, bool hold_open) {
  Enqueue(Reply{.status = status, .chunks = std::move(chunks), .hold_open = hold_open});
}

void FakeTransport::SetHandler(Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handler_ = std::move(handler);
}

std::vector<kube::HttpRequest> FakeTransport::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

kube::HttpRequest FakeTransport::last_request() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.empty() ? kube::HttpRequest{} : requests_.back();
}

size_t FakeTransport::request_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

bool FakeTransport::WaitForRequests(size_t n) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return requests_.size() >= n; });
}

FakeTransport::Reply FakeTransport::Next(const kube::HttpRequest& req) {
  Handler handler;
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req);
    cv_.notify_all();
    if (!queue_.empty()) {
      Reply r = std::move(queue_.front());
      queue_.pop_front();
      return r;
    }
    handler = handler_;
  }
  if (handler) return handler(req);
  // 418 is never retried, so an unscripted request fails the test quickly
  // instead of backing off on a fake clock that nobody steps.
  return Reply{.status = 418,
               .body = "fake transport: no reply scripted for " + req.method + " " + req.url};
}

kube::Result<kube::HttpResponse> FakeTransport::Do(const kube::HttpRequest& req) {
  Reply r = Next(req);
  if (r.error) return *r.error;
  kube::HttpResponse resp;
  resp.status = r.status;
  resp.headers = std::move(r.headers);
  resp.body = std::move(r.body);
  for (const std::string& chunk : r.chunks)
    resp.body += chunk;
  return resp;
}

kube::Result<kube::HttpResponse> FakeTransport::Stream(
    const kube::HttpRequest& req, const std::function<void(int, const kube::Headers&)>& on_headers,
    const std::function<bool(std::string_view)>& on_data, std::stop_token stop) {
  Reply r = Next(req);
  if (r.error) return *r.error;
  kube::HttpResponse resp;
  resp.status = r.status;
  resp.headers = r.headers;
  on_headers(r.status, resp.headers);
  if (r.status < 200 || r.status >= 300) {
    resp.body = r.body;
    for (const std::string& chunk : r.chunks)
      resp.body += chunk;
    return resp;
  }
  for (const std::string& chunk : r.chunks) {
    if (stop.stop_requested()) return kube::Error::Cancelled("fake stream cancelled");
    if (!on_data(chunk)) return resp;
  }
  if (r.hold_open) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, stop, [] { return false; });
    return kube::Error::Cancelled("fake stream cancelled");
  }
  return resp;
}

}  // namespace gpu_autoscaler::testing
