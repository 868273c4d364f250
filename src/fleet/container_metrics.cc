#include "fleet/container_metrics.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

namespace gpu_autoscaler::fleet {
namespace {

// Label values escaped as the text format wants: backslash, quote, newline.
std::string Escape(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Labels(const ContainerKey& k) {
  return "{container=\"" + Escape(k.container) + "\",namespace=\"" + Escape(k.ns) + "\",node=\"" +
         Escape(k.node) + "\",pod=\"" + Escape(k.pod) + "\"}";
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

}  // namespace

std::vector<ContainerReading> RunningContainers(const FleetSnapshot& snapshot,
                                                const ContainerUsage& fallback,
                                                std::vector<std::string>* errors,
                                                const MemoryTraces* traces) {
  std::set<std::string> managed;
  for (const NodeState& n : snapshot.nodes)
    if (n.managed) managed.insert(n.name);
  std::vector<ContainerReading> out;
  for (const PodState& p : snapshot.pods) {
    if (p.node.empty() || !managed.count(p.node) || p.terminating || p.phase != "Running") continue;
    PodUsageSpec spec;
    if (!p.usage_annotation.empty()) {
      Result<PodUsageSpec> parsed = ParseUsageAnnotation(p.usage_annotation);
      if (parsed.ok()) {
        spec = std::move(*parsed);
      } else if (errors != nullptr) {
        errors->push_back(p.ns + "/" + p.name + ": " + parsed.error().message());
      }
    }
    for (const ContainerSpec& c : p.containers) {
      ContainerUsage u = UsageFor(spec, c.name, fallback);
      if (!u.memory_trace.empty()) {
        const std::vector<double>* series = nullptr;
        if (traces != nullptr) {
          auto it = traces->fraction_by_pod.find(u.memory_trace);
          if (it != traces->fraction_by_pod.end()) series = &it->second;
        }
        if (series == nullptr) {
          if (errors != nullptr)
            errors->push_back(p.ns + "/" + p.name + ": no memory trace for pod \"" +
                              u.memory_trace + "\"");
        } else {
          const Clock::Duration elapsed =
              p.start_time
                  ? std::chrono::duration_cast<Clock::Duration>(snapshot.now - *p.start_time)
                  : Clock::Duration::zero();
          const double limit = static_cast<double>(
              c.memory_limit_bytes > 0 ? c.memory_limit_bytes : fallback.memory_bytes);
          const double bytes = TraceSample(*series, elapsed, traces->step) * limit + 0.5;
          u.memory_bytes = static_cast<int64_t>(std::min(bytes, 9e18));
        }
      }
      out.push_back({{p.ns, p.name, c.name, p.node}, u});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const ContainerReading& a, const ContainerReading& b) { return a.key < b.key; });
  return out;
}

void ContainerMetrics::Observe(const std::vector<ContainerReading>& running, Clock::TimePoint now) {
  std::map<ContainerKey, Series> next;
  for (const ContainerReading& r : running) {
    Series s;
    if (auto it = series_.find(r.key); it != series_.end()) {
      s = it->second;
      if (now > s.last) {
        s.cpu_seconds += s.usage.cpu_cores * std::chrono::duration<double>(now - s.last).count();
        s.last = now;
      }
    } else {
      s.last = now;
    }
    s.usage = r.usage;
    next[r.key] = s;
  }
  series_ = std::move(next);
}

double ContainerMetrics::CpuSeconds(const ContainerKey& key) const {
  auto it = series_.find(key);
  return it == series_.end() ? -1 : it->second.cpu_seconds;
}

std::string ContainerMetrics::Render() const {
  std::string out =
      "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n"
      "# TYPE container_cpu_usage_seconds_total counter\n";
  for (const auto& [key, s] : series_)
    out += "container_cpu_usage_seconds_total" + Labels(key) + " " + Number(s.cpu_seconds) + "\n";
  out +=
      "# HELP container_memory_working_set_bytes Current working set in bytes.\n"
      "# TYPE container_memory_working_set_bytes gauge\n";
  for (const auto& [key, s] : series_) {
    out += "container_memory_working_set_bytes" + Labels(key) + " " +
           std::to_string(s.usage.memory_bytes) + "\n";
  }
  return out;
}

}  // namespace gpu_autoscaler::fleet
