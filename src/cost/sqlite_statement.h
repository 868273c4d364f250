// File: src/cost/sqlite_statement.h
//
// Small RAII helpers over the SQLite C API for the cost store: a prepared
// statement finalized on destruction, a scope that resets a statement, and
// text binding/reading without copies through const char*.
//
//   sqlite::Statement stmt(raw);                 // sqlite3_finalize at scope end
//   sqlite::ResetOnExit reset(stmt.get());       // sqlite3_reset + clear bindings
//   sqlite::BindText(stmt.get(), 1, uid);        // `uid` must outlive the step
//
// Thread-safety: as the sqlite3_stmt they wrap (one thread at a time).
#pragma once

#include <sqlite3.h>

#include <string>
#include <utility>

namespace gpu_autoscaler::cost::sqlite {

// A prepared statement, finalized on destruction.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& o) noexcept : stmt_(std::exchange(o.stmt_, nullptr)) {}
  Statement& operator=(Statement&& o) noexcept {
    if (this != &o) {
      sqlite3_finalize(stmt_);
      stmt_ = std::exchange(o.stmt_, nullptr);
    }
    return *this;
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when a scope ends, so an early return leaves no
// statement holding a read lock.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

inline void BindText(sqlite3_stmt* stmt, int index, const std::string& text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

inline std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  return text == nullptr ? std::string()
                         : std::string(reinterpret_cast<const char*>(text),
                                       static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

}  // namespace gpu_autoscaler::cost::sqlite
