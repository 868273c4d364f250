#include "support/captured_logs.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace gpu_autoscaler::testing {

CapturedLogs::CapturedLogs()
    : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)),
      logger_(spdlog::default_logger()),
      level_(logger_->level()) {
  logger_->sinks().push_back(sink_);
  logger_->set_level(spdlog::level::trace);
}

CapturedLogs::~CapturedLogs() {
  auto& sinks = logger_->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  logger_->set_level(level_);
}

std::string CapturedLogs::text() {
  logger_->flush();
  return out_.str();
}

std::vector<std::string> CapturedLogs::Lines(std::string_view containing) {
  std::vector<std::string> lines;
  std::istringstream in(text());
  for (std::string line; std::getline(in, line);)
    if (line.find(containing) != std::string::npos) lines.push_back(line);
  return lines;
}

}  // namespace gpu_autoscaler::testing
