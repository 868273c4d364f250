#include "node-agent/psi.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace gpu_autoscaler::node_agent {
namespace {

bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
}

bool ParseUint64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// "avg10=1.00 avg60=... total=..." after the line's first word.
Status ParseFields(std::string_view rest, std::string_view line, PsiLine* out) {
  bool seen_total = false;
  bool seen_avg10 = false;
  while (!rest.empty()) {
    const size_t space = rest.find(' ');
    std::string_view field = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    if (field.empty()) continue;
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgumentError("PSI line \"" + std::string(line) + "\": field \"" +
                                  std::string(field) + "\" has no '='");
    }
    const std::string_view key = field.substr(0, eq);
    const std::string_view value = field.substr(eq + 1);
    double* avg = key == "avg10"    ? &out->avg10
                  : key == "avg60"  ? &out->avg60
                  : key == "avg300" ? &out->avg300
                                    : nullptr;
    if (avg) {
      if (!ParseDouble(value, avg) || *avg < 0 || *avg > 100) {
        return InvalidArgumentError("PSI line \"" + std::string(line) + "\": " + std::string(key) +
                                    " is not a percentage");
      }
      seen_avg10 = seen_avg10 || key == "avg10";
    } else if (key == "total") {
      if (!ParseUint64(value, &out->total_us)) {
        return InvalidArgumentError("PSI line \"" + std::string(line) +
                                    "\": total is not a whole number of microseconds");
      }
      seen_total = true;
    }  // other keys: a newer kernel's addition
  }
  if (!seen_avg10 || !seen_total) {
    return InvalidArgumentError("PSI line \"" + std::string(line) + "\": needs avg10 and total");
  }
  return Status::Ok();
}

}  // namespace

std::string_view PressureResourceName(PressureResource r) {
  switch (r) {
    case PressureResource::kCpu:
      return "cpu";
    case PressureResource::kMemory:
      return "memory";
    case PressureResource::kIo:
      return "io";
  }
  return "unknown";
}

Result<PsiFile> ParsePsi(std::string_view text) {
  PsiFile file;
  bool some = false;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    const std::string_view kind = line.substr(0, space);
    const std::string_view rest =
        space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    if (kind == "some") {
      if (some) return InvalidArgumentError("PSI: two \"some\" lines");
      GPU_RETURN_IF_ERROR(ParseFields(rest, line, &file.some));
      some = true;
    } else if (kind == "full") {
      if (file.full) return InvalidArgumentError("PSI: two \"full\" lines");
      PsiLine full;
      GPU_RETURN_IF_ERROR(ParseFields(rest, line, &full));
      file.full = full;
    }
  }
  if (!some) return InvalidArgumentError("PSI: no \"some\" line");
  return file;
}

Result<PsiFile> ReadPsiFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return NotFoundError(path + ": no such file");
    return UnavailableError(path + ": cannot open");
  }
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = ParsePsi(text.str());
  if (!parsed.ok()) return parsed.error().WithContext(path);
  return parsed;
}

namespace {

PressureReading ReadThree(const std::string& prefix, const char* suffix) {
  PressureReading reading;
  for (PressureResource r : kPressureResources) {
    auto file = ReadPsiFile(prefix + std::string(PressureResourceName(r)) + suffix);
    if (file.ok()) {
      reading.files[static_cast<size_t>(r)] = std::move(file).value();
    } else if (reading.error.empty()) {
      reading.error = file.error().message();
    }
  }
  return reading;
}

}  // namespace

PressureReading ReadNodePressure(const std::string& proc_root) {
  return ReadThree(proc_root + "/pressure/", "");
}

PressureReading ReadCgroupPressure(const std::string& cgroup_dir) {
  return ReadThree(cgroup_dir + "/", ".pressure");
}

std::optional<double> PsiRates::Update(const std::string& key, uint64_t total_us,
                                       Clock::TimePoint now) {
  auto it = last_.find(key);
  if (it == last_.end()) {
    last_.emplace(key, Last{total_us, now});
    return std::nullopt;
  }
  const Last prev = it->second;
  it->second = Last{total_us, now};
  const auto elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(now - prev.at).count();
  if (total_us < prev.total_us || elapsed_us <= 0) return std::nullopt;
  const double pct =
      100.0 * static_cast<double>(total_us - prev.total_us) / static_cast<double>(elapsed_us);
  return std::min(pct, 100.0);  // the two reads are not atomic with the counter
}

void PsiRates::Prune(Clock::TimePoint before) {
  std::erase_if(last_, [&](const auto& kv) { return kv.second.at < before; });
}

}  // namespace gpu_autoscaler::node_agent
