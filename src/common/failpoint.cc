#include "common/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace gpu_autoscaler::failpoint {
namespace {

enum class Action { kOff, kKill, kAbort, kSleep, kError };

struct Point {
  Action action = Action::kOff;
  int from_hit = 1;  // act on this evaluation and later ones
  int sleep_ms = 0;
  int hits = 0;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Point, std::less<>> points;
  std::atomic<bool> any{false};
};

Registry& Instance() {
  static Registry* registry = new Registry();  // never destroyed: used until _exit
  return *registry;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  return s;
}

bool ParseInt(std::string_view text, int* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && *out >= 0;
}

Result<std::map<std::string, Point, std::less<>>> Parse(std::string_view spec) {
  std::map<std::string, Point, std::less<>> points;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    std::string_view item = Trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return InvalidArgumentError("failpoint \"" + std::string(item) + "\": want name=action[@N]");
    }
    Point point;
    std::string_view action = Trim(item.substr(eq + 1));
    if (const size_t at = action.find('@'); at != std::string_view::npos) {
      if (!ParseInt(action.substr(at + 1), &point.from_hit) || point.from_hit < 1) {
        return InvalidArgumentError("failpoint \"" + std::string(item) +
                                    "\": @N must be a positive integer");
      }
      action = action.substr(0, at);
    }
    if (action == "kill") {
      point.action = Action::kKill;
    } else if (action == "abort") {
      point.action = Action::kAbort;
    } else if (action == "error") {
      point.action = Action::kError;
    } else if (action == "off") {
      point.action = Action::kOff;
    } else if (action.size() > 7 && action.substr(0, 6) == "sleep(" && action.back() == ')' &&
               ParseInt(action.substr(6, action.size() - 7), &point.sleep_ms)) {
      point.action = Action::kSleep;
    } else {
      return InvalidArgumentError("failpoint \"" + std::string(item) + "\": unknown action \"" +
                                  std::string(action) + "\" (kill, abort, sleep(MS), error, off)");
    }
    points[std::string(Trim(item.substr(0, eq)))] = point;
  }
  return points;
}

void ConfigureFromEnvironmentOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* spec = std::getenv("GPA_FAILPOINTS");
    if (spec == nullptr || *spec == '\0') return;
    Status status = Configure(spec);
    if (!status.ok()) {
      // Before logging is set up; a misspelt failpoint must not pass silently.
      const std::string line = "GPA_FAILPOINTS ignored: " + status.message() + "\n";
      (void)!::write(2, line.data(), line.size());
    }
  });
}

}  // namespace

Status Configure(std::string_view spec) {
  auto points = Parse(spec);
  if (!points.ok()) return points.error();
  Registry& registry = Instance();
  std::lock_guard<std::mutex> lock(registry.mu);
  registry.points = std::move(points).value();
  registry.any.store(!registry.points.empty(), std::memory_order_release);
  return Status::Ok();
}

Status Evaluate(std::string_view name) {
  ConfigureFromEnvironmentOnce();
  Registry& registry = Instance();
  if (!registry.any.load(std::memory_order_acquire)) return Status::Ok();
  Point point;
  {
    std::lock_guard<std::mutex> lock(registry.mu);
    auto it = registry.points.find(name);
    if (it == registry.points.end()) return Status::Ok();
    ++it->second.hits;
    if (it->second.hits < it->second.from_hit) return Status::Ok();
    point = it->second;
  }
  switch (point.action) {
    case Action::kOff:
      break;
    case Action::kKill:
      ::kill(::getpid(), SIGKILL);
      ::pause();  // SIGKILL is delivered before this returns
      break;
    case Action::kAbort:
      std::abort();
    case Action::kSleep:
      std::this_thread::sleep_for(std::chrono::milliseconds(point.sleep_ms));
      break;
    case Action::kError:
      return InternalError("failpoint " + std::string(name) + " fired");
  }
  return Status::Ok();
}

int HitCount(std::string_view name) {
  Registry& registry = Instance();
  std::lock_guard<std::mutex> lock(registry.mu);
  auto it = registry.points.find(name);
  return it == registry.points.end() ? 0 : it->second.hits;
}

}  // namespace gpu_autoscaler::failpoint
