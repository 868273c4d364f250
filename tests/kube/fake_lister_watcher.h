// File: tests/kube/fake_lister_watcher.h
//
// A scripted ListerWatcher for reflector and informer unit tests, plus
// helpers that write List bodies and watch events as the API server does.
//
//   FakeListerWatcher lw;
//   lw.AddList(ListBody("100", "", {"a", "b"}));
//   lw.AddWatch({{Event("ADDED", Obj("c", "101"))}, std::monostate{}});
//
// Thread-safety: all methods are safe from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "kube/reflector.h"

namespace gpu_autoscaler::kube::fakes {

// A minimal object in namespace "ns"; `extra` is appended inside metadata.
inline std::string Obj(const std::string& name, const std::string& rv,
                       const std::string& extra = "") {
  return R"({"metadata":{"namespace":"ns","name":")" + name + R"(","resourceVersion":")" + rv +
         "\"" + extra + "}}";
}

inline std::string ListBody(const std::string& rv, const std::string& continue_token,
                            const std::vector<std::string>& names) {
  std::string body = R"({"kind":"List","metadata":{"resourceVersion":")" + rv +
                     R"(","continue":")" + continue_token + R"("},"items":[)";
  for (size_t i = 0; i < names.size(); ++i)
    body += (i ? "," : "") + Obj(names[i], rv);
  return body + "]}";
}

inline std::string Event(const std::string& type, const std::string& object) {
  return R"({"type":")" + type + R"(","object":)" + object + "}\n";
}

inline std::string Bookmark(const std::string& rv) {
  return Event("BOOKMARK", R"({"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":")" +
                               rv + R"("}})");
}

inline std::string ExpiredStatus() {
  return R"json({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)json"
         R"json("message":"too old resource version: 1 (50)","reason":"Expired","code":410})json";
}

// A scripted ListerWatcher. Each List/Watch call takes the next scripted
// response; a watch with `hold` set blocks until stopped.
class FakeListerWatcher : public ListerWatcher {
 public:
  struct WatchScript {
    std::vector<std::string> chunks;
    Result<std::monostate> result = std::monostate{};
    bool hold = false;  // after the chunks, block until stopped
  };

  void AddList(Result<std::string> r) {
    std::lock_guard<std::mutex> l(mu_);
    lists_.push_back(std::move(r));
  }
  void AddWatch(WatchScript w) {
    std::lock_guard<std::mutex> l(mu_);
    watches_.push_back(std::move(w));
  }

  Result<std::string> List(const ListOptions& opts) override {
    std::lock_guard<std::mutex> l(mu_);
    list_calls_.push_back(opts);
    cv_.notify_all();
    if (lists_.empty()) return Error::Transport("no scripted list");
    auto r = std::move(lists_.front());
    lists_.pop_front();
    return r;
  }

  Result<std::monostate> Watch(const ListOptions& opts,
                               const std::function<bool(std::string_view)>& on_chunk,
                               std::stop_token stop) override {
    WatchScript script;
    {
      std::unique_lock<std::mutex> l(mu_);
      watch_calls_.push_back(opts);
      cv_.notify_all();
      if (watches_.empty()) {
        script.hold = true;
      } else {
        script = std::move(watches_.front());
        watches_.pop_front();
      }
    }
    for (const std::string& chunk : script.chunks) {
      if (!on_chunk(chunk)) return std::monostate{};
    }
    if (script.hold) {
      std::unique_lock<std::mutex> l(mu_);
      std::condition_variable_any cv;
      cv.wait(l, stop, [] { return false; });
      return Error::Cancelled("stopped");
    }
    return script.result;
  }

  std::vector<ListOptions> list_calls() {
    std::lock_guard<std::mutex> l(mu_);
    return list_calls_;
  }
  std::vector<ListOptions> watch_calls() {
    std::lock_guard<std::mutex> l(mu_);
    return watch_calls_;
  }
  // Waits (real time, generous) until at least `n` watches were opened.
  bool WaitForWatches(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(30), [&] { return watch_calls_.size() >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Result<std::string>> lists_;
  std::deque<WatchScript> watches_;
  std::vector<ListOptions> list_calls_;
  std::vector<ListOptions> watch_calls_;
};

}  // namespace gpu_autoscaler::kube::fakes
