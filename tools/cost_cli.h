// File: tools/cost_cli.h
//
// The cost subcommands of `gpu-autoscaler` and what they share: flag parsing,
// time windows, aligned tables and CSV/JSON output.
//
//   gpu-autoscaler cost --by namespace --since 7d --db cost.db
//   gpu-autoscaler budget status --budgets budgets.yaml --db cost.db
//   gpu-autoscaler roi --since 30d --db postgresql://cost@db/gpu_cost
//
// Each Run* takes the arguments after its command name and returns the exit
// status (0 ok, 1 error, 2 usage). Thread-safety: call from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cost/store.h"

namespace gpu_autoscaler::cli {

int RunCost(int argc, char** argv);
int RunBudget(int argc, char** argv);
int RunRoi(int argc, char** argv);
int RunStatus(int argc, char** argv);     // status_cli.cc
int RunRecommend(int argc, char** argv);  // recommend_cli.cc: the profiling evaluation
int RunReport(int argc, char** argv);     // report_cli.cc: the cluster report (text, HTML)
int RunReplay(int argc, char** argv);     // replay_cli.cc: a fake fleet replaying an openb trace
int RunFleet(int argc, char** argv);      // fleet_cli.cc: KWOK-style kubelets, cAdvisor metrics
int RunWaste(int argc, char** argv);      // waste_cli.cc: idle GPUs and their cost, per pod

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// "--name value", "--name=value" and "-o value" flags; "-h"/"--help".
class FlagParser {
 public:
  // `names` lists the accepted flags ("--since", "-o", ...), all taking a value.
  explicit FlagParser(std::vector<std::string> names) : names_(std::move(names)) {}
  // Parses argv; false with `error()` set on unknown flags or missing values.
  bool Parse(int argc, char** argv);
  bool help() const { return help_; }
  const std::string& error() const { return error_; }
  // The last value given for `name` (aliases share the first name), or `fallback`.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  void Alias(const std::string& alias, const std::string& name) { aliases_[alias] = name; }

 private:
  std::vector<std::string> names_;
  std::map<std::string, std::string> aliases_;
  std::map<std::string, std::string> values_;
  bool help_ = false;
  std::string error_;
};

// An aligned text table: text columns left-aligned, numeric ones right.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> numeric)
      : header_(std::move(header)), numeric_(std::move(numeric)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void AddSeparator() { rows_.push_back({}); }
  std::string Render() const;
  std::string RenderCsv() const;  // header + rows, RFC 4180 quoting; separators skipped

 private:
  std::vector<std::string> header_;
  std::vector<bool> numeric_;
  std::vector<std::vector<std::string>> rows_;
};

std::string FormatMoney(double v);  // "1234.57"
std::string FormatNumber(double v, int decimals);
std::string FormatTime(int64_t unix);  // RFC 3339, UTC

// Now, overridable for reproducible output: --now or $GPU_AUTOSCALER_NOW (RFC 3339).
Result<int64_t> ResolveNow(const std::string& flag);
// --since/--until (defaults: 24h before now, now).
Result<cost::TimeWindow> ResolveWindow(const std::string& since, const std::string& until,
                                       int64_t now);

// Opens the cost history read-only: a SQLite file must already exist (a typo
// in --db should not create an empty history and report zero), and an older
// schema is refused with a message to upgrade it through the manager (a
// report never migrates). A running manager's live history can be read.
Result<std::unique_ptr<cost::CostStore>> OpenHistory(const std::string& db);

// "gpu-autoscaler <command>: <message>" on stderr; returns kExitError.
int Fail(std::string_view command, const std::string& message);
// The message and a pointer to --help on stderr; returns kExitUsage.
int UsageError(std::string_view command, const std::string& message);

}  // namespace gpu_autoscaler::cli
