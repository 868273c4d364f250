// Fuzzes the kubeconfig parser: any bytes must give a ClientConfig or a
// kConfig error, never a crash, an exception or a hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kube/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  // Relative file references resolve under a directory that does not exist,
  // so the fuzzer exercises parsing rather than the file system.
  auto cfg = gpu_autoscaler::kube::ParseKubeconfig(yaml, "fuzz", "", "/nonexistent-fuzz-dir");
  if (!cfg.ok() && cfg.error().kind() != gpu_autoscaler::kube::Error::Kind::kConfig) std::abort();
  if (cfg.ok() && cfg->server.empty()) std::abort();  // a config always names a server
  return 0;
}
