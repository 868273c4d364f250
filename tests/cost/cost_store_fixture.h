// File: tests/cost/cost_store_fixture.h
//
// The typed fixture the cost-store suites share: one backend per type
// (SQLite in a temporary directory, a real PostgreSQL database from
// tests/support/postgres_fixture.h), and sample helpers. Costs are multiples
// of 1/1024, so every sum is exact in binary floating point.
//
//   TYPED_TEST(CostStoreTest, Something) { auto store = this->Open(); ... }
//
// Thread-safety: single-threaded test code.
#pragma once

#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cost/postgres_store.h"
#include "cost/sqlite_store.h"
#include "cost/store.h"
#include "gtest/gtest.h"
#include "support/postgres_fixture.h"

namespace gpu_autoscaler::cost {
namespace {

constexpr int64_t kT0 = 1'800'000'000 - 1'800'000'000 % 86400;  // midnight UTC
constexpr double kUnit = 1.0 / 1024;

CostSample Sample(std::string uid, std::string ns, int64_t second = 0, double gpu_cost_units = 4) {
  CostSample s;
  s.pod_name = uid;
  s.pod_uid = "uid-" + uid;
  s.ns = std::move(ns);
  s.node = "node-a";
  s.gpu_model = "A100";
  s.second = second;
  s.gpu_share = 1;
  s.gpu_cost = gpu_cost_units * kUnit;
  s.cpu_cost = 2 * kUnit;
  s.memory_cost = 1 * kUnit;
  return s;
}

// Every second of [from, to) for each pod.
std::vector<CostSample> Seconds(const std::vector<CostSample>& pods, int64_t from, int64_t to) {
  std::vector<CostSample> out;
  for (int64_t t = from; t < to; ++t) {
    for (CostSample s : pods) {
      s.second = t;
      out.push_back(std::move(s));
    }
  }
  return out;
}

// ---- Backends ---------------------------------------------------------------

class SqliteBackend {
 public:
  static constexpr const char* kName = "Sqlite";
  bool Init(std::string*) {
    dir_ = std::filesystem::temp_directory_path() /
           ("gpa-cost-store-" + std::to_string(::getpid()) + "-" + std::to_string(++counter_));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    return true;
  }
  ~SqliteBackend() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string db() const { return (dir_ / "cost.db").string(); }
  Result<std::unique_ptr<CostStore>> Open(int version = kLatestCostSchemaVersion) {
    GPU_ASSIGN_OR_RETURN(auto store, SqliteCostStore::Open(db(), {.schema_version = version}));
    return std::unique_ptr<CostStore>(std::move(store));
  }
  Status Exec(const std::string& sql) {
    sqlite3* db_handle = nullptr;
    sqlite3_open(db().c_str(), &db_handle);
    char* error = nullptr;
    const int rc = sqlite3_exec(db_handle, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db_handle);
    return rc == SQLITE_OK ? Status::Ok() : InternalError(message);
  }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

class PostgresBackend {
 public:
  static constexpr const char* kName = "Postgres";
  bool Init(std::string* why) {
    testing::TestPostgres* pg = testing::TestPostgres::Shared(why);
    if (pg == nullptr) return false;
    Result<std::string> url = pg->CreateDatabase("cost");
    if (!url.ok()) {
      *why = url.error().message();
      return false;
    }
    url_ = *url;
    return true;
  }
  std::string db() const { return url_; }
  Result<std::unique_ptr<CostStore>> Open(int version = kLatestCostSchemaVersion) {
    GPU_ASSIGN_OR_RETURN(auto store, PostgresCostStore::Open(url_, {.schema_version = version}));
    return std::unique_ptr<CostStore>(std::move(store));
  }
  Status Exec(const std::string& sql) {
    PGconn* conn = PQconnectdb(url_.c_str());
    PGresult* r = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(r);
    std::string message = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(conn);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? Status::Ok()
                                                                   : InternalError(message);
  }

 private:
  std::string url_;
};

template <typename Backend>
class CostStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!backend_.Init(&why)) GTEST_SKIP() << "PostgreSQL unavailable: " << why;
  }

  std::unique_ptr<CostStore> Open(int version = kLatestCostSchemaVersion) {
    Result<std::unique_ptr<CostStore>> store = backend_.Open(version);
    EXPECT_TRUE(store.ok()) << store.error().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  static AppendStats MustAppend(CostStore& store, const std::vector<CostSample>& samples) {
    Result<AppendStats> stats = store.Append(samples);
    EXPECT_TRUE(stats.ok()) << stats.error().ToString();
    return stats.ok() ? *stats : AppendStats{};
  }

  static CostReport MustQuery(CostStore& store, const CostQuery& q) {
    Result<CostReport> report = store.Query(q);
    EXPECT_TRUE(report.ok()) << report.error().ToString();
    return report.ok() ? *report : CostReport{};
  }

  static CostTotals Total(CostStore& store, TimeWindow w, Resolution r = Resolution::kMinute) {
    CostReport report = MustQuery(store, {.window = w, .resolution = r});
    CostTotals sum;
    for (const CostRow& row : report.rows)
      sum.Add(row.totals);
    return sum;
  }

  Backend backend_;
};

struct BackendNames {
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};
using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(CostStoreTest, Backends, BackendNames);

}  // namespace
}  // namespace gpu_autoscaler::cost
