// File: src/reconcile/logging.h
//
// Structured logging over spdlog: one line per record, as text
// (`2026-11-22T08:17:47.123Z info reconciled controller=nodes key=gpu-1`) or
// JSON (`{"ts":"...","level":"info","msg":"reconciled","controller":"nodes",...}`),
// chosen by --log-format. Plain spdlog calls made elsewhere in the program
// come out in the same format (their text becomes "msg").
//
//   GPU_RETURN_IF_ERROR(ConfigureLogging({.format = "json", .level = "debug"}));
//   Log(LogLevel::kInfo, "reconciled", {{"controller", "nodes"}, {"key", key}});
//
// Thread-safety: Log may be called from any thread; ConfigureLogging once,
// at startup, before other threads log.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace gpu_autoscaler::reconcile {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

struct LoggingOptions {
  std::string format = "text";  // "text" or "json"
  std::string level = "info";   // "debug", "info", "warn", "error"
};

// Installs the default logger (stderr) with the chosen format and level.
// Unknown values are an InvalidArgument error naming the flag.
Status ConfigureLogging(const LoggingOptions& options);

using LogField = std::pair<std::string_view, std::string_view>;

void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

// Renders a record as the active format would (without timestamp and level);
// exposed for tests.
std::string FormatRecord(bool json, std::string_view message,
                         std::initializer_list<LogField> fields);

}  // namespace gpu_autoscaler::reconcile
