// gpa-fake-pod-resources: the fake kubelet PodResources server
// (fake_pod_resources.h) as a program, for the node agent's benchmark and demo.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "support/fake_pod_resources/fake_pod_resources.h"

namespace {

constexpr std::string_view kUsage = R"(Usage: gpa-fake-pod-resources --socket=PATH --pods=FILE

Serves the kubelet's PodResources v1 API (List, GetAllocatableResources) on the
unix socket PATH, answering from FILE:
  {"pods": [{"namespace": "ml", "name": "train-0", "containers": [
     {"name": "main", "devices": [{"resource": "nvidia.com/gpu", "ids": ["GPU-..."]}]}]}],
   "allocatable": [{"resource": "nvidia.com/gpu", "ids": ["GPU-...", "..."]}]}
Runs until SIGTERM or SIGINT. A test tool: it is not the kubelet.
)";

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  std::string pods;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      return 0;
    }
    if (arg.substr(0, 9) == "--socket=") {
      socket = arg.substr(9);
    } else if (arg.substr(0, 7) == "--pods=") {
      pods = arg.substr(7);
    } else {
      std::fprintf(stderr, "unknown argument %s (see --help)\n", argv[i]);
      return 2;
    }
  }
  if (socket.empty() || pods.empty()) {
    std::fprintf(stderr, "--socket and --pods are required (see --help)\n");
    return 2;
  }
  std::ifstream in(pods);
  std::stringstream text;
  text << in.rdbuf();
  auto data = gpu_autoscaler::testing::ParsePodResourcesJson(text.str());
  if (!in || !data.ok()) {
    std::fprintf(stderr, "%s: %s\n", pods.c_str(),
                 in ? data.error().message().c_str() : "cannot read");
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before gRPC starts its threads
  auto server = gpu_autoscaler::testing::FakePodResourcesServer::Start(socket);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.error().message().c_str());
    return 1;
  }
  (*server)->Set(std::move(data).value());
  std::printf("serving PodResources on %s\n", socket.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}
