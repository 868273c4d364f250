// File: tests/support/postgres_fixture.h
//
// A real PostgreSQL server for the storage tests, shared by every test
// process of this user: ctest runs each test case in its own process, so a
// server per process would cost an initdb and a start (~15 s under load) per
// case. The first process to need one runs `initdb` into a temporary
// directory and starts `postgres` on a free 127.0.0.1 port (its Unix socket in
// that directory); later processes find it through a small control directory
// ($TMPDIR/gpa-pg-<uid>) and reuse it. Each test gets its own database.
//
// Lifetime: a process holds the server (a shared flock) from Shared() until
// it exits, however it exits. The postmaster's parent is a watchdog process
// in its own session that stops the server and deletes its directory once no
// process has held it for kIdleSeconds; the postmaster gets SIGKILL if the
// watchdog dies (PR_SET_PDEATHSIG). So a crashed test binary leaks nothing.
//
// The server binaries come from $GPA_PG_BINDIR, /usr/lib/postgresql/<version>/bin
// (Debian's postgresql package, see hack/install-deps.sh) or $PATH. initdb
// refuses to run as root, so as root the server runs as the `postgres` user.
//
//   std::string why;
//   TestPostgres* pg = TestPostgres::Shared(&why);
//   if (pg == nullptr) GTEST_SKIP() << "no PostgreSQL: " << why;
//   std::string url = pg->CreateDatabase("store").value();  // postgresql://...
//
// Thread-safety: Shared() may be called from any thread; CreateDatabase is
// not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::testing {

class TestPostgres {
 public:
  // How long the server outlives the last process that held it.
  static constexpr int kIdleSeconds = 30;

  // The server, started on first use or joined. nullptr (with the reason in
  // `why_not`) when no server can be started here.
  static TestPostgres* Shared(std::string* why_not);

  // Releases this process's hold on the server (it keeps running for others).
  ~TestPostgres();

  // Creates database "<prefix>_<pid>_<n>" and returns its URL.
  Result<std::string> CreateDatabase(const std::string& prefix);
  int port() const { return port_; }

 private:
  TestPostgres() = default;
  static Result<std::unique_ptr<TestPostgres>> Join();
  Status StartServer(const std::string& control_dir);
  Status StartServerOnce(const std::string& control_dir);
  bool Ready() const;
  Status Run(const std::vector<std::string>& argv, bool as_server_user) const;

  std::string bindir_;
  std::string dir_;  // the server's temporary directory: data/, the socket, logs
  int port_ = 0;
  int watchdog_pid_ = 0;
  bool as_postgres_user_ = false;
  int hold_fd_ = -1;  // shared flock on <control>/users.lock while this process lives
  int databases_ = 0;
};

}  // namespace gpu_autoscaler::testing
