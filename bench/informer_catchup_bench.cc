// List+watch catch-up of a PodView informer against the test API server
// program: start the server, load N pods through the API with several client
// threads, then time the informer from Start() to HasSynced() (paginated
// list of everything), and a burst of watch events (M pods patched) until
// the handlers have seen every update. Prints RSS at the end.
//
//   informer_catchup_bench [--pods 150000] [--burst 10000] [--threads 8]
//                          [--page-size 500] [--apiserver PATH]
//
// PATH defaults to gpu-autoscaler-apiserver in the build directory (the
// parent of this program's directory). The server binds 127.0.0.1 only.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "pod_fixture.h"

extern char** environ;

namespace {

using namespace gpu_autoscaler;
using Steady = std::chrono::steady_clock;

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

int64_t RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

// The API server as a child process.
class ServerProcess {
 public:
  bool Start(const std::string& program, int watch_history) {
    int out[2];
    if (pipe(out) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::string history = std::to_string(watch_history);
    std::vector<char*> args = {const_cast<char*>(program.c_str()),
                               const_cast<char*>("--bind-address"),
                               const_cast<char*>("127.0.0.1"),
                               const_cast<char*>("--port"),
                               const_cast<char*>("0"),
                               const_cast<char*>("--watch-history"),
                               history.data(),
                               nullptr};
    int rc = posix_spawn(&pid_, program.c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
      close(out[0]);
      return false;
    }
    // First stdout line: "listening on http://127.0.0.1:PORT".
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n')
      line += c;
    close(out[0]);
    auto pos = line.find("http");
    if (pos == std::string::npos) return false;
    url_ = line.substr(pos);
    return true;
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

std::unique_ptr<kube::RestClient> NewClient(const std::string& url) {
  kube::ClientConfig cfg;
  cfg.server = url;
  cfg.qps = 1e9;  // no client-side throttling in a benchmark
  cfg.burst = 1'000'000;
  cfg.timeout = std::chrono::milliseconds(120'000);
  auto client = kube::RestClient::Create(cfg);
  if (!client.ok()) {
    std::fprintf(stderr, "client: %s\n", client.error().ToString().c_str());
    std::exit(1);
  }
  return std::move(client).value();
}

// Runs `op(i)` for i in [0, n) on `threads` threads; returns failures.
template <typename Op>
int Parallel(int n, int threads, Op op) {
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < n; i = next++) {
        if (!op(i)) ++failures;
      }
    });
  }
  for (auto& w : workers)
    w.join();
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  int pods = 150'000, burst = 10'000, threads = 8, page_size = 500;
  std::string program = std::string(argv[0]);
  program = program.substr(0, program.rfind('/') + 1) + "../gpu-autoscaler-apiserver";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--pods")
      pods = std::atoi(argv[i + 1]);
    else if (flag == "--burst")
      burst = std::atoi(argv[i + 1]);
    else if (flag == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (flag == "--page-size")
      page_size = std::atoi(argv[i + 1]);
    else if (flag == "--apiserver")
      program = argv[i + 1];
  }
  burst = std::min(burst, pods);

  ServerProcess server;
  if (!server.Start(program, pods + burst + 1000)) {
    std::fprintf(stderr, "could not start %s\n", program.c_str());
    return 1;
  }
  std::printf("server %s; %d pods, burst %d, %d client threads, page size %d\n",
              server.url().c_str(), pods, burst, threads, page_size);

  auto loader = NewClient(server.url());
  for (int n = 0; n < 20; ++n) {
    nlohmann::json ns = {{"apiVersion", "v1"},
                         {"kind", "Namespace"},
                         {"metadata", {{"name", bench::PodNamespace(n)}}}};
    auto r = loader->Create({kube::resources::kNamespaces, "", ""}, ns);
    if (!r.ok() && !kube::IsAlreadyExists(r.error())) {
      std::fprintf(stderr, "namespace: %s\n", r.error().ToString().c_str());
      return 1;
    }
  }
  if (auto r = loader->Create({kube::resources::kPriorityClasses}, bench::BatchHighPriorityClass());
      !r.ok() && !kube::IsAlreadyExists(r.error())) {
    std::fprintf(stderr, "priority class: %s\n", r.error().ToString().c_str());
    return 1;
  }
  auto t_load = Steady::now();
  int failed = Parallel(pods, threads, [&](int i) {
    std::string ns = bench::PodNamespace(i);
    auto r = loader->Create({kube::resources::kPods, ns, ""}, bench::PodCreateBody(i, ns));
    return r.ok();
  });
  double load_s = Seconds(t_load);
  std::printf("load: %d pods created in %.1f s (%.0f creates/s), %d failed\n", pods - failed,
              load_s, (pods - failed) / load_s, failed);

  // Catch-up: list everything (paginated) and open the watch.
  auto informer_client = NewClient(server.url());
  kube::InformerOptions opts;
  opts.page_size = page_size;
  kube::SharedInformer<kube::PodView> informer(
      kube::NewRestListerWatcher(informer_client.get(), {kube::resources::kPods, "", ""}),
      kube::PodViewCodec(), opts, "bench-pods");
  std::atomic<int64_t> adds{0}, updates{0};
  informer.AddEventHandler({.on_add = [&](const auto&) { ++adds; },
                            .on_update = [&](const auto&, const auto&) { ++updates; }});
  auto t_sync = Steady::now();
  informer.Start();
  if (!informer.WaitForSync({}, std::chrono::minutes(10))) {
    std::fprintf(stderr, "informer did not sync\n");
    return 1;
  }
  double sync_s = Seconds(t_sync);
  auto stats = informer.stats();
  std::printf("catch-up: %zu pods listed in %lld pages and synced in %.2f s (%.0f pods/s)\n",
              informer.store().size(), static_cast<long long>(stats.reflector.list_pages), sync_s,
              informer.store().size() / sync_s);

  // Burst: patch `burst` pods; time until every update reached the handlers.
  auto patcher = NewClient(server.url());
  while (informer.watcher_state().phase != kube::WatcherPhase::kWatching) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int64_t updates_before = updates.load();
  auto t_burst = Steady::now();
  std::atomic<double> writes_done_s{0};
  std::thread writer([&] {
    Parallel(burst, threads, [&](int i) {
      std::string ns = bench::PodNamespace(i);
      return patcher
          ->Patch({kube::resources::kPods, ns, bench::PodName(i)}, kube::PatchType::kMerge,
                  R"({"metadata":{"labels":{"burst":"1"}}})")
          .ok();
    });
    writes_done_s = Seconds(t_burst);
  });
  while (updates.load() - updates_before < burst && Seconds(t_burst) < 600) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  writer.join();
  double burst_s = Seconds(t_burst);
  stats = informer.stats();
  std::printf(
      "burst: %lld updates delivered in %.2f s (%.0f events/s; writes took %.2f s), "
      "queue high-water %lld\n",
      static_cast<long long>(updates.load() - updates_before), burst_s,
      (updates.load() - updates_before) / burst_s, writes_done_s.load(),
      static_cast<long long>(stats.queue_high_water));
  std::printf("RSS with %zu pods cached: %.1f MiB\n", informer.store().size(), RssKiB() / 1024.0);
  informer.Stop();
  return 0;
}
