#include "support/fake_nvml/scenario.h"

#include <cstdio>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "node-agent/nvml/nvml_errors.h"

namespace gpu_autoscaler::fake_nvml {
namespace {

using nlohmann::json;

constexpr size_t kMaxSeries = 100'000;

class Parser {
 public:
  Status error() const { return error_; }
  bool failed() const { return !error_.ok(); }

  void Fail(const std::string& path, const std::string& why) {
    if (!failed()) error_ = InvalidArgumentError(path + ": " + why);
  }

  // Fails on keys outside `allowed`.
  bool Object(const json& v, const std::string& path, std::initializer_list<const char*> allowed) {
    if (!v.is_object()) {
      Fail(path, "want an object");
      return false;
    }
    for (const auto& [key, value] : v.items()) {
      bool known = false;
      for (const char* a : allowed)
        known = known || key == a;
      if (!known) {
        Fail(path + "." + key, "unknown field");
        return false;
      }
    }
    return true;
  }

  template <typename T>
  void Uint(const json& obj, const char* key, const std::string& path, T* out, uint64_t max) {
    if (!obj.contains(key)) return;
    const json& v = obj[key];
    if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
      Fail(path + "." + key, "want an integer from 0 to " + std::to_string(max));
      return;
    }
    *out = static_cast<T>(v.get<uint64_t>());
  }
  void Int(const json& obj, const char* key, const std::string& path, int* out, int min, int max) {
    if (!obj.contains(key)) return;
    const json& v = obj[key];
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
      Fail(path + "." + key,
           "want an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return;
    }
    *out = static_cast<int>(v.get<int64_t>());
  }
  void String(const json& obj, const char* key, const std::string& path, std::string* out,
              size_t max_len) {
    if (!obj.contains(key)) return;
    const json& v = obj[key];
    if (!v.is_string() || v.get_ref<const std::string&>().size() > max_len) {
      Fail(path + "." + key, "want a string of at most " + std::to_string(max_len) + " bytes");
      return;
    }
    *out = v.get<std::string>();
  }
  void Bool(const json& obj, const char* key, const std::string& path, bool* out) {
    if (!obj.contains(key)) return;
    if (!obj[key].is_boolean()) {
      Fail(path + "." + key, "want true or false");
      return;
    }
    *out = obj[key].get<bool>();
  }
  // A list of integers 0..max replayed one per poll ("utilSeries": [0, 35, 80]).
  template <typename T>
  void Series(const json& obj, const char* key, const std::string& path, std::vector<T>* out,
              uint64_t max) {
    const json* list = Array(obj, key, path, kMaxSeries);
    if (list == nullptr) return;
    for (size_t i = 0; i < list->size(); ++i) {
      const json& v = (*list)[i];
      if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
        Fail(path + "." + key + "[" + std::to_string(i) + "]",
             "want an integer from 0 to " + std::to_string(max));
        return;
      }
      out->push_back(static_cast<T>(v.get<uint64_t>()));
    }
  }
  const json* Array(const json& obj, const char* key, const std::string& path, size_t max) {
    if (!obj.contains(key)) return nullptr;
    const json& v = obj[key];
    if (!v.is_array() || v.size() > max) {
      Fail(path + "." + key, "want a list of at most " + std::to_string(max) + " items");
      return nullptr;
    }
    return &v;
  }

 private:
  Status error_;
};

constexpr unsigned kMaxGpus = 64;
constexpr unsigned kMaxMig = 7;
constexpr size_t kMaxProcesses = 4096;
constexpr uint64_t kMaxMiB = 1ULL << 30;  // 1 PiB

int ErrorCode(Parser& p, const json& v, const std::string& path) {
  if (v.is_number_integer()) {
    const int64_t code = v.get<int64_t>();
    if (code < 0 || code > 999) p.Fail(path, "want an NVML return code 0..999");
    return static_cast<int>(code);
  }
  if (v.is_string()) {
    const std::string& name = v.get_ref<const std::string&>();
    for (int code = 0; code <= 999; code = code < 40 ? code + 1 : 999) {
      if (node_agent::nvml::NvmlErrorName(code) == name) return code;
      if (code == 999) break;
    }
  }
  p.Fail(path, "want an NVML return code or name such as \"NVML_ERROR_GPU_IS_LOST\"");
  return 0;
}

void ParseGpu(Parser& p, const json& g, const std::string& path, size_t index, FakeGpu* gpu) {
  if (!p.Object(g, path,
                {"uuid", "name", "pciBusId", "memoryMiB", "usedMiB", "util", "memUtil", "mig",
                 "nvlinkPeers", "nvswitches", "processes", "utilSeries", "usedMiBSeries"})) {
    return;
  }
  char buf[96];
  std::snprintf(buf, sizeof(buf), "GPU-00000000-0000-4000-8000-%012zu", index);
  gpu->uuid = buf;
  std::snprintf(buf, sizeof(buf), "00000000:%02zX:00.0", 0x10 + index);
  gpu->pci_bus_id = buf;
  p.String(g, "uuid", path, &gpu->uuid, 80);
  p.String(g, "name", path, &gpu->name, 90);
  p.String(g, "pciBusId", path, &gpu->pci_bus_id, 31);
  p.Uint(g, "memoryMiB", path, &gpu->memory_mib, kMaxMiB);
  p.Uint(g, "usedMiB", path, &gpu->used_mib, gpu->memory_mib);
  p.Uint(g, "util", path, &gpu->util, 100);
  p.Uint(g, "memUtil", path, &gpu->mem_util, 100);
  p.Series(g, "utilSeries", path, &gpu->util_series, 100);
  p.Series(g, "usedMiBSeries", path, &gpu->used_mib_series, gpu->memory_mib);
  if (g.contains("mig")) {
    const json& m = g["mig"];
    const std::string mpath = path + ".mig";
    if (p.Object(m, mpath, {"enabled", "maxDevices", "devices"})) {
      p.Bool(m, "enabled", mpath, &gpu->mig_enabled);
      p.Uint(m, "maxDevices", mpath, &gpu->max_mig_devices, kMaxMig);
      if (const json* devs = p.Array(m, "devices", mpath, gpu->max_mig_devices)) {
        for (size_t i = 0; i < devs->size() && !p.failed(); ++i) {
          const json& d = (*devs)[i];
          const std::string dpath = mpath + ".devices[" + std::to_string(i) + "]";
          if (!p.Object(d, dpath, {"uuid", "profile", "gi", "ci", "memoryMiB", "usedMiB"})) break;
          FakeMigDevice mig;
          std::snprintf(buf, sizeof(buf), "MIG-00000000-0000-4000-8000-%06zu%06zu", index, i);
          mig.uuid = buf;
          mig.gpu_instance_id = static_cast<unsigned>(i + 1);
          p.String(d, "uuid", dpath, &mig.uuid, 80);
          p.String(d, "profile", dpath, &mig.profile, 32);
          p.Uint(d, "gi", dpath, &mig.gpu_instance_id, 0xFFFF);
          p.Uint(d, "ci", dpath, &mig.compute_instance_id, 0xFFFF);
          p.Uint(d, "memoryMiB", dpath, &mig.memory_mib, gpu->memory_mib);
          p.Uint(d, "usedMiB", dpath, &mig.used_mib, mig.memory_mib);
          gpu->mig_devices.push_back(std::move(mig));
        }
      }
    }
  }
  if (const json* peers = p.Array(g, "nvlinkPeers", path, 18)) {
    for (size_t i = 0; i < peers->size() && !p.failed(); ++i) {
      const json& v = (*peers)[i];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= kMaxGpus) {
        p.Fail(path + ".nvlinkPeers[" + std::to_string(i) + "]", "want a GPU index");
        break;
      }
      gpu->nvlink_peers.push_back(static_cast<int>(v.get<int64_t>()));
    }
  }
  if (const json* switches = p.Array(g, "nvswitches", path, 18)) {
    for (size_t i = 0; i < switches->size() && !p.failed(); ++i) {
      const json& v = (*switches)[i];
      if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
          v.get_ref<const std::string&>().size() > 31) {
        p.Fail(path + ".nvswitches[" + std::to_string(i) + "]", "want a PCI bus id");
        break;
      }
      gpu->nvswitch_bus_ids.push_back(v.get<std::string>());
    }
  }
  if (gpu->nvlink_peers.size() + gpu->nvswitch_bus_ids.size() > 18) {
    p.Fail(path, "more than 18 NVLinks");
  }
  if (const json* procs = p.Array(g, "processes", path, kMaxProcesses)) {
    for (size_t i = 0; i < procs->size() && !p.failed(); ++i) {
      const json& d = (*procs)[i];
      const std::string ppath = path + ".processes[" + std::to_string(i) + "]";
      if (!p.Object(d, ppath,
                    {"pid", "usedMiB", "smUtil", "memUtil", "gi", "smUtilSeries", "usedMiBSeries"}))
        break;
      FakeProcess proc;
      if (!d.contains("pid")) p.Fail(ppath + ".pid", "required");
      p.Uint(d, "pid", ppath, &proc.pid, 0x7FFFFFFF);
      p.Uint(d, "usedMiB", ppath, &proc.used_mib, gpu->memory_mib);
      p.Uint(d, "smUtil", ppath, &proc.sm_util, 100);
      p.Uint(d, "memUtil", ppath, &proc.mem_util, 100);
      p.Series(d, "smUtilSeries", ppath, &proc.sm_util_series, 100);
      p.Series(d, "usedMiBSeries", ppath, &proc.used_mib_series, gpu->memory_mib);
      if (d.contains("gi")) {
        unsigned gi = 0;
        p.Uint(d, "gi", ppath, &gi, 0xFFFF);
        proc.gpu_instance_id = gi;
      }
      gpu->processes.push_back(proc);
    }
  }
}

}  // namespace

Result<Scenario> ParseScenario(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgumentError("scenario: not valid JSON");
  Parser p;
  Scenario s;
  if (!p.Object(doc, "scenario", {"gpus", "faults"})) return p.error();
  if (const json* gpus = p.Array(doc, "gpus", "scenario", kMaxGpus)) {
    for (size_t i = 0; i < gpus->size() && !p.failed(); ++i) {
      ParseGpu(p, (*gpus)[i], "gpus[" + std::to_string(i) + "]", i, &s.gpus.emplace_back());
    }
  }
  for (size_t i = 0; i < s.gpus.size() && !p.failed(); ++i) {
    for (int peer : s.gpus[i].nvlink_peers) {
      if (peer >= static_cast<int>(s.gpus.size()) || peer == static_cast<int>(i)) {
        p.Fail("gpus[" + std::to_string(i) + "].nvlinkPeers",
               "GPU " + std::to_string(peer) + " is not another GPU of this scenario");
      }
    }
  }
  if (const json* faults = p.Array(doc, "faults", "scenario", 64)) {
    for (size_t i = 0; i < faults->size() && !p.failed(); ++i) {
      const json& f = (*faults)[i];
      const std::string path = "faults[" + std::to_string(i) + "]";
      if (!p.Object(f, path, {"function", "gpu", "error", "hang", "hangMs", "afterCalls", "count"}))
        break;
      FakeFault fault;
      p.String(f, "function", path, &fault.function, 64);
      if (fault.function.rfind("nvml", 0) != 0)
        p.Fail(path + ".function", "want an NVML call name");
      if (f.contains("gpu")) {
        int gpu = 0;
        p.Int(f, "gpu", path, &gpu, 0, kMaxGpus - 1);
        fault.gpu = gpu;
      }
      if (f.contains("error")) fault.error = ErrorCode(p, f["error"], path + ".error");
      p.Bool(f, "hang", path, &fault.hang);
      p.Int(f, "hangMs", path, &fault.hang_ms, 0, 3'600'000);
      p.Int(f, "afterCalls", path, &fault.after_calls, 0, 1'000'000'000);
      p.Int(f, "count", path, &fault.count, -1, 1'000'000'000);
      if (fault.error == 0 && !fault.hang) p.Fail(path, "a fault needs \"error\" or \"hang\"");
      s.faults.push_back(std::move(fault));
    }
  }
  if (p.failed()) return p.error();
  return s;
}

}  // namespace gpu_autoscaler::fake_nvml
