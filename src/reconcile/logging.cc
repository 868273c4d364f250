#include "reconcile/logging.h"

#include <atomic>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace gpu_autoscaler::reconcile {

namespace {

// Records rendered by Log() in JSON mode start with this byte so that the
// formatter emits their fields raw; other spdlog text is escaped into "msg".
constexpr char kStructuredMarker = '\x1e';

std::atomic<bool> g_json{false};

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

bool NeedsQuoting(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

// The `%*` flag: the message as JSON members ("msg":..., fields...).
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    std::string out;
    if (!payload.empty() && payload.front() == kStructuredMarker) {
      payload.remove_prefix(1);
      out.assign(payload);
    } else {
      out = "\"msg\":";
      AppendJsonString(&out, payload);
    }
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

std::string FormatRecord(bool json, std::string_view message,
                         std::initializer_list<LogField> fields) {
  std::string out;
  if (json) {
    out = "\"msg\":";
    AppendJsonString(&out, message);
    for (const auto& [key, value] : fields) {
      out.push_back(',');
      AppendJsonString(&out, key);
      out.push_back(':');
      AppendJsonString(&out, value);
    }
    return out;
  }
  out.assign(message);
  for (const auto& [key, value] : fields) {
    out.push_back(' ');
    out.append(key);
    out.push_back('=');
    if (NeedsQuoting(value)) {
      AppendJsonString(&out, value);
    } else {
      out.append(value);
    }
  }
  return out;
}

Status ConfigureLogging(const LoggingOptions& options) {
  spdlog::level::level_enum level;
  if (options.level == "debug") {
    level = spdlog::level::debug;
  } else if (options.level == "info") {
    level = spdlog::level::info;
  } else if (options.level == "warn" || options.level == "warning") {
    level = spdlog::level::warn;
  } else if (options.level == "error") {
    level = spdlog::level::err;
  } else {
    return InvalidArgumentError("--log-level: unknown level \"" + options.level +
                                "\" (want debug, info, warn or error)");
  }
  if (options.format != "text" && options.format != "json") {
    return InvalidArgumentError("--log-format: unknown format \"" + options.format +
                                "\" (want text or json)");
  }
  const bool json = options.format == "json";
  auto logger = std::make_shared<spdlog::logger>("gpu-autoscaler",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (json) {
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%*})");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  g_json = json;
  return Status::Ok();
}

void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  const auto spd_level = ToSpdlog(level);
  if (!spdlog::should_log(spd_level)) return;
  const bool json = g_json.load(std::memory_order_relaxed);
  std::string record = FormatRecord(json, message, fields);
  if (json) record.insert(record.begin(), kStructuredMarker);
  spdlog::log(spd_level, "{}", record);
}

}  // namespace gpu_autoscaler::reconcile
