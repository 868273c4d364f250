#include "autoscale/trace.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_set>

namespace gpu_autoscaler::autoscale {
namespace {

// Splits one CSV line on commas. The trace has no quoted fields; a quote is an error.
bool SplitLine(std::string_view line, std::vector<std::string_view>* fields) {
  fields->clear();
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    std::string_view field =
        line.substr(start, comma == std::string_view::npos ? line.npos : comma - start);
    if (field.find('"') != std::string_view::npos) return false;
    fields->push_back(field);
    if (comma == std::string_view::npos) return true;
    start = comma + 1;
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

class CsvReader {
 public:
  CsvReader(std::string_view text, std::string_view file_name)
      : text_(text), file_name_(file_name) {
    // Spreadsheet programs often save CSV as "UTF-8 with BOM"; the BOM is not
    // part of the first column's name.
    if (text_.starts_with("\xEF\xBB\xBF")) text_.remove_prefix(3);
  }

  // Reads the header and locates the named columns; optional ones may be absent (-1).
  Status ReadHeader(const std::vector<std::string_view>& required,
                    const std::vector<std::string_view>& optional) {
    std::string_view line;
    if (!NextLine(&line)) return Error("empty file, expected a header line");
    std::vector<std::string_view> fields;
    if (!SplitLine(line, &fields)) return Error("quoted fields are not supported");
    auto find = [&fields](std::string_view name) {
      for (size_t i = 0; i < fields.size(); ++i) {
        if (Trim(fields[i]) == name) return static_cast<int>(i);
      }
      return -1;
    };
    for (std::string_view name : required) {
      const int i = find(name);
      if (i < 0) return Error("header lacks column \"" + std::string(name) + "\"");
      columns_.push_back(i);
    }
    for (std::string_view name : optional)
      columns_.push_back(find(name));
    width_ = fields.size();
    header_line_ = line_number_;
    return Status::Ok();
  }

  // For a file with a header and no data rows: "<file>:<header line>: no <what> after the header".
  Status NothingAfterHeader(std::string_view what) const {
    return InvalidArgumentError(std::string(file_name_) + ":" + std::to_string(header_line_) +
                                ": no " + std::string(what) + " after the header");
  }

  // Next non-blank data row, or false at end of file. On a malformed row sets *status.
  bool NextRow(Status* status) {
    std::string_view line;
    while (NextLine(&line)) {
      if (Trim(line).empty()) continue;
      if (!SplitLine(line, &fields_)) {
        *status = Error("quoted fields are not supported");
        return true;
      }
      if (fields_.size() != width_) {
        *status = Error("expected " + std::to_string(width_) + " fields, found " +
                        std::to_string(fields_.size()));
        return true;
      }
      *status = Status::Ok();
      return true;
    }
    return false;
  }

  // The field of column slot `slot` (order of ReadHeader's names), or nullopt if absent.
  std::optional<std::string_view> Field(size_t slot) const {
    const int i = columns_[slot];
    if (i < 0) return std::nullopt;
    return Trim(fields_[i]);
  }

  Result<int64_t> Int(size_t slot, std::string_view what, int64_t min, int64_t max) const {
    std::string_view s = *Field(slot);
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      return Error(std::string(what) + " \"" + std::string(s) + "\" is not an integer");
    }
    if (v < min || v > max) {
      return Error(std::string(what) + " " + std::to_string(v) + " is outside [" +
                   std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return v;
  }

  Status Error(const std::string& message) const {
    return InvalidArgumentError(std::string(file_name_) + ":" +
                                std::to_string(std::max(line_number_, 1)) + ": " + message);
  }

 private:
  bool NextLine(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    const size_t nl = text_.find('\n', pos_);
    const size_t end = nl == std::string_view::npos ? text_.size() : nl;
    *line = text_.substr(pos_, end - pos_);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    pos_ = end + 1;
    ++line_number_;
    return true;
  }

  std::string_view text_;
  std::string_view file_name_;
  size_t pos_ = 0;
  int line_number_ = 0;
  int header_line_ = 1;
  size_t width_ = 0;
  std::vector<int> columns_;
  std::vector<std::string_view> fields_;
};

constexpr int64_t kMaxQuantity = int64_t{1} << 40;

Result<std::string> ReadFile(const std::string& path) {
  // An ifstream opens a directory and then reads nothing from it, which would
  // surface as "empty file".
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError(path + " is a directory, not a CSV file");
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    std::string why = err != 0 ? std::string(": ") + std::strerror(err) : std::string();
    if (err == 0 || err == ENOENT) return NotFoundError("cannot open " + path + why);
    return FailedPreconditionError("cannot open " + path + why);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return DataLossError("error reading " + path);
  return ss.str();
}

}  // namespace

Result<std::vector<NodeSpec>> ParseNodeCsv(std::string_view text, std::string_view file_name) {
  CsvReader reader(text, file_name);
  GPU_RETURN_IF_ERROR(reader.ReadHeader({"sn", "cpu_milli", "memory_mib", "gpu", "model"}, {}));
  std::vector<NodeSpec> nodes;
  std::unordered_set<std::string> names;
  Status row;
  while (reader.NextRow(&row)) {
    GPU_RETURN_IF_ERROR(row);
    NodeSpec node;
    node.name = std::string(*reader.Field(0));
    if (node.name.empty()) return reader.Error("node name is empty");
    if (!names.insert(node.name).second) {
      return reader.Error("duplicate node name \"" + node.name + "\"");
    }
    GPU_ASSIGN_OR_RETURN(node.cpu_milli, reader.Int(1, "cpu_milli", 0, kMaxQuantity));
    GPU_ASSIGN_OR_RETURN(node.memory_mib, reader.Int(2, "memory_mib", 0, kMaxQuantity));
    GPU_ASSIGN_OR_RETURN(int64_t gpus, reader.Int(3, "gpu", 0, kMaxGpusPerNode));
    node.gpu_count = static_cast<int>(gpus);
    node.gpu_model = std::string(*reader.Field(4));
    if (node.gpu_count > 0 && node.gpu_model.empty()) {
      return reader.Error("node has GPUs but no model");
    }
    if (node.gpu_count == 0) node.gpu_model.clear();
    nodes.push_back(std::move(node));
  }
  if (nodes.empty()) return reader.NothingAfterHeader("nodes");
  return nodes;
}

namespace {

// The pod columns of the current row: slots 0..4 are name, cpu_milli,
// memory_mib, num_gpu, gpu_milli; `gpu_spec_slot` the optional gpu_spec.
Result<PodSpec> PodFromRow(const CsvReader& reader, size_t gpu_spec_slot) {
  PodSpec pod;
  pod.name = std::string(*reader.Field(0));
  if (pod.name.empty()) return reader.Error("pod name is empty");
  GPU_ASSIGN_OR_RETURN(pod.cpu_milli, reader.Int(1, "cpu_milli", 0, kMaxQuantity));
  GPU_ASSIGN_OR_RETURN(pod.memory_mib, reader.Int(2, "memory_mib", 0, kMaxQuantity));
  GPU_ASSIGN_OR_RETURN(int64_t num_gpu, reader.Int(3, "num_gpu", 0, kMaxGpusPerNode));
  // Thousandths of each GPU. A negative share is a broken row, not a CPU-only
  // pod; above 1000 the protocol clamps to a whole GPU, anything wilder is broken.
  GPU_ASSIGN_OR_RETURN(int64_t gpu_milli, reader.Int(4, "gpu_milli", -kMaxQuantity, kMaxQuantity));
  if (gpu_milli < 0) {
    return reader.Error("gpu_milli " + std::to_string(gpu_milli) +
                        " is negative; want thousandths of a GPU, 0 to 1000");
  }
  pod.num_gpu = static_cast<int>(num_gpu);
  pod.gpu_milli = static_cast<int>(std::min<int64_t>(gpu_milli, kMilliPerGpu));
  if (std::optional<std::string_view> spec = reader.Field(gpu_spec_slot); spec && !spec->empty()) {
    size_t start = 0;
    while (start <= spec->size()) {
      const size_t bar = spec->find('|', start);
      std::string_view model =
          Trim(spec->substr(start, bar == std::string_view::npos ? spec->npos : bar - start));
      if (model.empty())
        return reader.Error("gpu_spec \"" + std::string(*spec) + "\" has an empty model");
      pod.gpu_models.emplace_back(model);
      if (bar == std::string_view::npos) break;
      start = bar + 1;
    }
  }
  return pod;
}

}  // namespace

Result<std::vector<PodSpec>> ParsePodCsv(std::string_view text, std::string_view file_name) {
  CsvReader reader(text, file_name);
  GPU_RETURN_IF_ERROR(
      reader.ReadHeader({"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"}, {"gpu_spec"}));
  std::vector<PodSpec> pods;
  Status row;
  while (reader.NextRow(&row)) {
    GPU_RETURN_IF_ERROR(row);
    GPU_ASSIGN_OR_RETURN(PodSpec pod, PodFromRow(reader, 5));
    pods.push_back(std::move(pod));
  }
  if (pods.empty()) return reader.NothingAfterHeader("pods");
  return pods;
}

Result<std::vector<TimedPod>> ParseTimedPodCsv(std::string_view text, std::string_view file_name) {
  CsvReader reader(text, file_name);
  GPU_RETURN_IF_ERROR(reader.ReadHeader(
      {"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "creation_time", "deletion_time"},
      {"gpu_spec"}));
  std::vector<TimedPod> pods;
  Status row;
  while (reader.NextRow(&row)) {
    GPU_RETURN_IF_ERROR(row);
    TimedPod pod;
    GPU_ASSIGN_OR_RETURN(pod.spec, PodFromRow(reader, 7));
    GPU_ASSIGN_OR_RETURN(pod.creation_time, reader.Int(5, "creation_time", 0, kMaxQuantity));
    GPU_ASSIGN_OR_RETURN(pod.deletion_time, reader.Int(6, "deletion_time", 0, kMaxQuantity));
    if (pod.deletion_time < pod.creation_time) {
      return reader.Error("deletion_time " + std::to_string(pod.deletion_time) +
                          " is before creation_time " + std::to_string(pod.creation_time));
    }
    pods.push_back(std::move(pod));
  }
  if (pods.empty()) return reader.NothingAfterHeader("pods");
  return pods;
}

std::vector<UnknownGpuModel> UnknownGpuModels(std::span<const NodeSpec> nodes,
                                              std::span<const PodSpec> pods) {
  std::set<std::string_view> known;
  for (const NodeSpec& node : nodes) {
    if (node.gpu_count > 0) known.insert(node.gpu_model);
  }
  std::map<std::string_view, UnknownGpuModel> unknown;
  for (const PodSpec& pod : pods) {
    bool any_known = false;
    std::set<std::string_view> missing;  // a model named twice counts the pod once
    for (const std::string& model : pod.gpu_models) {
      if (known.contains(model)) {
        any_known = true;
      } else {
        missing.insert(model);
      }
    }
    for (std::string_view model : missing) {
      UnknownGpuModel& u = unknown[model];
      u.model = std::string(model);
      ++u.pods;
      if (!any_known) ++u.unplaceable_pods;
    }
  }
  std::vector<UnknownGpuModel> out;
  out.reserve(unknown.size());
  for (auto& [name, u] : unknown)
    out.push_back(std::move(u));
  return out;
}

Result<std::vector<NodeSpec>> LoadNodeCsv(const std::string& path) {
  GPU_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseNodeCsv(text, path);
}

Result<std::vector<PodSpec>> LoadPodCsv(const std::string& path) {
  GPU_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParsePodCsv(text, path);
}

Result<std::vector<TimedPod>> LoadTimedPodCsv(const std::string& path) {
  GPU_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseTimedPodCsv(text, path);
}

}  // namespace gpu_autoscaler::autoscale
