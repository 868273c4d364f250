// File: tests/support/captured_logs.h
//
// Everything the default spdlog logger writes while a CapturedLogs lives,
// at every level (the logger's level is restored afterwards).
//
//   CapturedLogs logs;
//   RunTheCode();
//   EXPECT_EQ(logs.Lines("no price").size(), 1u);
//
// Thread-safety: the sink is thread-safe; construct and destroy on one thread.
#pragma once

#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

namespace gpu_autoscaler::testing {

class CapturedLogs {
 public:
  CapturedLogs();
  ~CapturedLogs();
  CapturedLogs(const CapturedLogs&) = delete;
  CapturedLogs& operator=(const CapturedLogs&) = delete;

  // All output so far.
  std::string text();
  // The lines so far that contain `containing`.
  std::vector<std::string> Lines(std::string_view containing);

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  spdlog::level::level_enum level_;
};

}  // namespace gpu_autoscaler::testing
