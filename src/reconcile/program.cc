#include "reconcile/program.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "kube/config.h"
#include "kube/rest_client.h"
#include "reconcile/manager.h"

namespace gpu_autoscaler::reconcile {

Result<std::vector<ProgramFlag>> ScanFlags(int argc, char** argv,
                                           std::initializer_list<std::string_view> value_flags,
                                           std::initializer_list<std::string_view> bool_flags) {
  std::vector<ProgramFlag> out;
  auto known = [](std::initializer_list<std::string_view> list, std::string_view name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      out.push_back({.name = "--help"});
      continue;
    }
    if (arg.substr(0, 2) != "--") {
      return InvalidArgumentError("unexpected argument " + std::string(arg));
    }
    ProgramFlag flag;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      flag.name = std::string(arg.substr(0, eq));
      flag.value = std::string(arg.substr(eq + 1));
      flag.has_value = true;
    } else {
      flag.name = std::string(arg);
    }
    if (known(bool_flags, flag.name)) {
      out.push_back(std::move(flag));
      continue;
    }
    if (!known(value_flags, flag.name)) {
      return InvalidArgumentError("unknown flag " + flag.name + " (see --help)");
    }
    if (!flag.has_value) {
      if (i + 1 >= argc) return InvalidArgumentError(flag.name + ": missing value");
      flag.value = argv[++i];
      flag.has_value = true;
    }
    out.push_back(std::move(flag));
  }
  return out;
}

Status ParseBoolFlag(const ProgramFlag& flag, bool* out) {
  if (!flag.has_value || flag.value == "true" || flag.value == "1") {
    *out = true;
  } else if (flag.value == "false" || flag.value == "0") {
    *out = false;
  } else {
    return InvalidArgumentError(flag.name + ": want true or false, got \"" + flag.value + "\"");
  }
  return Status::Ok();
}

Status ParseIntFlag(const ProgramFlag& flag, long lo, long hi, int* out) {
  char* end = nullptr;
  const long n = std::strtol(flag.value.c_str(), &end, 10);
  if (flag.value.empty() || *end != '\0' || n < lo || n > hi) {
    return InvalidArgumentError(flag.name + ": want " + std::to_string(lo) + ".." +
                                std::to_string(hi) + ", got \"" + flag.value + "\"");
  }
  *out = static_cast<int>(n);
  return Status::Ok();
}

Status ParsePositiveFlag(const ProgramFlag& flag, double* out) {
  char* end = nullptr;
  const double v = std::strtod(flag.value.c_str(), &end);
  if (flag.value.empty() || *end != '\0' || !(v > 0) || !std::isfinite(v)) {
    return InvalidArgumentError(flag.name + ": want a positive number, got \"" + flag.value + "\"");
  }
  *out = v;
  return Status::Ok();
}

Result<std::unique_ptr<kube::RestClient>> ConnectToCluster(const std::string& kubeconfig,
                                                           const std::string& context,
                                                           std::string user_agent,
                                                           prometheus::Registry* registry,
                                                           double qps, int burst) {
  auto cfg = kubeconfig.empty() ? kube::LoadDefaultConfig(context)
                                : kube::LoadKubeconfigFiles({kubeconfig}, context);
  if (!cfg.ok()) {
    return UnavailableError("loading client configuration: " + cfg.error().ToString());
  }
  cfg->user_agent = std::move(user_agent);
  if (qps > 0) cfg->qps = qps;
  if (burst > 0) cfg->burst = burst;
  auto client = kube::RestClient::Create(*cfg, {.metrics = registry});
  if (!client.ok()) return UnavailableError("creating API client: " + client.error().ToString());
  return std::move(client).value();
}

int RunProgram(std::string_view program, std::string_view usage, const Status& parsed, bool help,
               const LoggingOptions& logging, const std::function<int(std::stop_source)>& run) {
  const std::string name(program);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), parsed.message().c_str());
    return 2;
  }
  if (help) {
    std::fwrite(usage.data(), 1, usage.size(), stdout);
    return 0;
  }
  if (Status s = ConfigureLogging(logging); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), s.message().c_str());
    return 2;
  }
  std::stop_source stop;
  SignalStopper signals(stop);  // before any other thread exists
  return run(stop);
}

}  // namespace gpu_autoscaler::reconcile
