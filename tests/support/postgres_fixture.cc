#include "support/postgres_fixture.h"

#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/loopback_port.h"

extern char** environ;

namespace gpu_autoscaler::testing {
namespace {

bool IsExecutable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

// Newest Debian-style install first, then $PATH.
std::string FindBinDir() {
  if (const char* dir = std::getenv("GPA_PG_BINDIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  glob_t matches{};
  std::vector<std::string> dirs;
  if (::glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &matches) == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) {
      std::string path = matches.gl_pathv[i];
      dirs.push_back(path.substr(0, path.size() - std::string("/initdb").size()));
    }
  }
  ::globfree(&matches);
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    // ".../15/bin" vs ".../9.6/bin": compare the major version numerically.
    auto major = [](const std::string& d) {
      const size_t end = d.rfind("/bin");
      const size_t start = d.rfind('/', end - 1) + 1;
      return std::atof(d.substr(start, end - start).c_str());
    };
    return major(a) > major(b);
  });
  if (!dirs.empty()) return dirs.front();
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (IsExecutable(dir + "/initdb") && IsExecutable(dir + "/postgres")) return dir;
    }
  }
  return "";
}

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

std::string Tail(const std::string& path, size_t max_bytes = 1500) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

// An flock'ed file, unlocked and closed on destruction.
class LockedFile {
 public:
  static Result<LockedFile> Open(const std::string& path, int operation) {
    LockedFile f;
    f.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f.fd_ < 0) return UnavailableError("cannot open " + path);
    while (::flock(f.fd_, operation) != 0) {
      if (errno != EINTR) return UnavailableError("cannot lock " + path);
    }
    return f;
  }
  LockedFile() = default;
  LockedFile(LockedFile&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  LockedFile& operator=(LockedFile&&) = delete;
  ~LockedFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// What the control directory's `server` file records about the running server.
struct ServerRecord {
  std::string dir;
  int port = 0;
  int watchdog_pid = 0;
  std::string bindir;
  bool as_postgres_user = false;

  std::string Identity() const { return dir + "\n"; }  // what the watchdog checks
  std::string Encode() const {
    return Identity() + std::to_string(port) + "\n" + std::to_string(watchdog_pid) + "\n" + bindir +
           "\n" + (as_postgres_user ? "1" : "0") + "\n";
  }
  static bool Decode(const std::string& path, ServerRecord* out) {
    std::ifstream in(path);
    std::string port, pid, as_postgres;
    if (!std::getline(in, out->dir) || !std::getline(in, port) || !std::getline(in, pid) ||
        !std::getline(in, out->bindir) || !std::getline(in, as_postgres)) {
      return false;
    }
    out->port = std::atoi(port.c_str());
    out->watchdog_pid = std::atoi(pid.c_str());
    out->as_postgres_user = as_postgres == "1";
    return out->port > 0 && out->watchdog_pid > 0 && !out->dir.empty();
  }
};

// Everything the watchdog needs, prepared before fork(): after it the child of
// a possibly multi-threaded process may only make async-signal-safe calls.
struct WatchdogPlan {
  std::string start_lock, users_lock, server_file, server_identity;
  std::string log, dir;
  std::vector<std::string> postgres_args;
  bool drop_privileges = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

void SleepSeconds(int seconds) {
  timespec ts{seconds, 0};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// True when the file at `path` starts with `expected_prefix`.
bool FileStartsWith(const char* path, const std::string& expected_prefix) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  return n >= static_cast<ssize_t>(expected_prefix.size()) &&
         std::char_traits<char>::compare(buf, expected_prefix.data(), expected_prefix.size()) == 0;
}

// The watchdog: parent of the postmaster, in its own session (so ctest's
// kill of a test's process group does not reach it), with no inherited
// descriptors (so it holds nothing of the test, and ctest does not wait on
// its output). Stops the server once nobody has held users.lock for
// kIdleSeconds, or cleans up if the postmaster died.
[[noreturn]] void RunWatchdog(const WatchdogPlan& plan, std::vector<char*>& argv) {
  ::setsid();
  ::prctl(PR_SET_NAME, "gpa-pg-watchdog");
  ::close_range(3, ~0U, 0);
  const int devnull = ::open("/dev/null", O_RDWR);
  ::dup2(devnull, 0);
  ::dup2(devnull, 1);
  ::dup2(devnull, 2);
  if (devnull > 2) ::close(devnull);
  const pid_t self = ::getpid();
  const pid_t postmaster = ::fork();
  if (postmaster < 0) ::_exit(1);
  if (postmaster == 0) {
    const int log = ::open(plan.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::close(log);
    }
    if (plan.drop_privileges &&
        (::setgroups(0, nullptr) != 0 || ::setgid(plan.gid) != 0 || ::setuid(plan.uid) != 0)) {
      ::_exit(126);
    }
    // After setuid, which clears it. Dies with the watchdog.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != self) ::_exit(1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  bool postmaster_exited = false;
  int idle_seconds = 0;
  for (;;) {
    SleepSeconds(1);
    int status = 0;
    if (::waitpid(postmaster, &status, WNOHANG) == postmaster) {
      postmaster_exited = true;
      // Never published (it failed to start): nothing to withdraw, and the
      // starting process holds start.lock while it waits for us.
      if (!FileStartsWith(plan.server_file.c_str(), plan.server_identity)) break;
    }
    const int start = ::open(plan.start_lock.c_str(), O_RDWR | O_CLOEXEC);
    if (start < 0) break;  // control directory gone: clean up
    // Blocking when the server is gone: its record must go before anyone looks.
    if (::flock(start, postmaster_exited ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
      ::close(start);
      idle_seconds = 0;  // someone is joining
      continue;
    }
    const int users = ::open(plan.users_lock.c_str(), O_RDWR | O_CLOEXEC);
    const bool unused = users >= 0 && ::flock(users, LOCK_EX | LOCK_NB) == 0;
    idle_seconds = unused ? idle_seconds + 1 : 0;
    const bool stop = postmaster_exited || idle_seconds >= TestPostgres::kIdleSeconds;
    // Holding start.lock (and users.lock when idle), nobody can join: withdraw
    // the record. Once it is gone a newcomer starts a server of its own, so
    // the shutdown below needs no lock.
    if (stop && FileStartsWith(plan.server_file.c_str(), plan.server_identity)) {
      ::unlink(plan.server_file.c_str());
    }
    if (users >= 0) ::close(users);
    ::close(start);
    if (stop) break;
  }
  if (!postmaster_exited) {
    ::kill(postmaster, SIGQUIT);  // immediate shutdown
    int status = 0;
    for (int waited = 0; ::waitpid(postmaster, &status, WNOHANG) != postmaster; ++waited) {
      if (waited == 20) ::kill(postmaster, SIGKILL);
      SleepSeconds(1);
    }
  }
  const pid_t rm = ::fork();
  if (rm == 0) {
    const char* rm_argv[] = {"rm", "-rf", plan.dir.c_str(), nullptr};
    ::execv("/bin/rm", const_cast<char* const*>(rm_argv));
    ::_exit(127);
  }
  int status = 0;
  if (rm > 0) ::waitpid(rm, &status, 0);
  ::_exit(0);
}

std::mutex g_mu;
std::unique_ptr<TestPostgres> g_server;
std::string g_error;
bool g_tried = false;

}  // namespace

Status TestPostgres::Run(const std::vector<std::string>& args, bool as_server_user) const {
  std::vector<std::string> full;
  if (as_server_user && as_postgres_user_) full = {"runuser", "-u", "postgres", "--"};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : full)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = dir_ + "/commands.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0666);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return UnavailableError("cannot run " + full.front());
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return UnavailableError(args.front() + " failed: " + Tail(log));
  }
  return Status::Ok();
}

bool TestPostgres::Ready() const {
  return Run({bindir_ + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", std::to_string(port_), "-U",
              "postgres", "-d", "postgres"},
             false)
      .ok();
}

// Called holding start.lock exclusively and users.lock shared. Each attempt
// is a fresh directory: the watchdog deletes it when postgres fails to start.
Status TestPostgres::StartServer(const std::string& control_dir) {
  Status started = UnavailableError("no attempt");
  for (int attempt = 0; attempt < 3 && !started.ok(); ++attempt) {
    started = StartServerOnce(control_dir);
  }
  return started;
}

Status TestPostgres::StartServerOnce(const std::string& control_dir) {
  std::string pattern = TempRoot() + "/gpa-pg-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return UnavailableError("mkdtemp failed");
  dir_ = pattern;
  watchdog_pid_ = 0;
  as_postgres_user_ = false;
  WatchdogPlan plan;
  if (::geteuid() == 0) {
    const passwd* user = ::getpwnam("postgres");
    if (user == nullptr) {
      return UnavailableError("running as root and there is no 'postgres' user to run initdb");
    }
    if (::chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0) {
      return UnavailableError("cannot chown " + dir_ + " to postgres");
    }
    ::chmod(dir_.c_str(), 0755);  // so root can read the logs either way
    as_postgres_user_ = true;
    plan.drop_privileges = true;
    plan.uid = user->pw_uid;
    plan.gid = user->pw_gid;
  }
  const std::string data = dir_ + "/data";
  GPU_RETURN_IF_ERROR(Run({bindir_ + "/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E",
                           "UTF8", "--no-sync", "--no-instructions"},
                          true));
  plan.start_lock = control_dir + "/start.lock";
  plan.users_lock = control_dir + "/users.lock";
  plan.server_file = control_dir + "/server";
  plan.log = dir_ + "/server.log";
  plan.dir = dir_;
  ServerRecord record{.dir = dir_, .bindir = bindir_};
  plan.server_identity = record.Identity();
  GPU_ASSIGN_OR_RETURN(port_, FreeLoopbackPort());
  plan.postgres_args = {bindir_ + "/postgres",
                        "-D",
                        data,
                        "-p",
                        std::to_string(port_),
                        "-k",
                        dir_,
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "fsync=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "max_connections=100"};
  // TimescaleDB (not a Debian package) must be preloaded; when this
  // PostgreSQL build has it, load it so the hypertable path is exercised.
  if (::access((bindir_ + "/../lib/timescaledb.so").c_str(), R_OK) == 0) {
    plan.postgres_args.push_back("-c");
    plan.postgres_args.push_back("shared_preload_libraries=timescaledb");
  }
  std::vector<char*> argv;
  for (std::string& a : plan.postgres_args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t watchdog = ::fork();
  if (watchdog < 0) return UnavailableError("fork failed");
  if (watchdog == 0) RunWatchdog(plan, argv);
  watchdog_pid_ = watchdog;
  // Ready, or the watchdog gave up (postgres could not start, e.g. the port
  // was taken meanwhile).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  int status = 0;
  while (!Ready()) {
    if (::waitpid(watchdog, &status, WNOHANG) == watchdog) {
      return UnavailableError("postgres exited: " + Tail(plan.log));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(watchdog, SIGKILL);  // the postmaster follows it
      ::waitpid(watchdog, &status, 0);
      return UnavailableError("postgres did not become ready in 90 s; server log: " +
                              Tail(plan.log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  record.port = port_;
  record.watchdog_pid = watchdog_pid_;
  record.as_postgres_user = as_postgres_user_;
  const std::string staged = plan.server_file + ".new";
  {
    std::ofstream out(staged, std::ios::trunc);
    out << record.Encode();
    if (!out.flush()) return UnavailableError("cannot write " + staged);
  }
  if (::rename(staged.c_str(), plan.server_file.c_str()) != 0) {
    return UnavailableError("cannot write " + plan.server_file);
  }
  return Status::Ok();
}

Result<std::unique_ptr<TestPostgres>> TestPostgres::Join() {
  std::unique_ptr<TestPostgres> pg(new TestPostgres());
  pg->bindir_ = FindBinDir();
  if (pg->bindir_.empty()) {
    return UnavailableError(
        "PostgreSQL server binaries not found (install Debian's postgresql: "
        "hack/install-deps.sh, or set GPA_PG_BINDIR)");
  }
  // Per user, so nobody else can plant a server record for us.
  const std::string control = TempRoot() + "/gpa-pg-" + std::to_string(::geteuid());
  if (::mkdir(control.c_str(), 0700) != 0 && errno != EEXIST) {
    return UnavailableError("cannot create " + control);
  }
  struct stat st {};
  if (::lstat(control.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 0077) != 0) {
    return UnavailableError(control + " is not a private directory of this user");
  }
  // start.lock serialises joining and starting; users.lock (shared) is our
  // hold on the server, released by the kernel when this process ends.
  GPU_ASSIGN_OR_RETURN(LockedFile start, LockedFile::Open(control + "/start.lock", LOCK_EX));
  GPU_ASSIGN_OR_RETURN(LockedFile hold, LockedFile::Open(control + "/users.lock", LOCK_SH));
  ServerRecord record;
  if (ServerRecord::Decode(control + "/server", &record) && record.bindir == pg->bindir_ &&
      ::kill(record.watchdog_pid, 0) == 0) {
    pg->dir_ = record.dir;
    pg->port_ = record.port;
    pg->watchdog_pid_ = record.watchdog_pid;
    pg->as_postgres_user_ = record.as_postgres_user;
    if (pg->Ready()) {
      pg->hold_fd_ = hold.Release();
      return pg;
    }
  }
  // A server whose watchdog was killed died with it; its directory did not.
  if (!record.dir.empty() && record.watchdog_pid > 0 && ::kill(record.watchdog_pid, 0) != 0 &&
      errno == ESRCH) {
    std::error_code ignored;
    std::filesystem::remove_all(record.dir, ignored);
  }
  ::unlink((control + "/server").c_str());
  pg->dir_.clear();
  GPU_RETURN_IF_ERROR(pg->StartServer(control));
  pg->hold_fd_ = hold.Release();
  return pg;
}

TestPostgres::~TestPostgres() {
  if (hold_fd_ >= 0) ::close(hold_fd_);
}

TestPostgres* TestPostgres::Shared(std::string* why_not) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_tried) {
    g_tried = true;
    Result<std::unique_ptr<TestPostgres>> joined = Join();
    if (joined.ok()) {
      g_server = std::move(*joined);
    } else {
      g_error = joined.error().message();
    }
  }
  if (g_server == nullptr && why_not != nullptr) *why_not = g_error;
  return g_server.get();
}

Result<std::string> TestPostgres::CreateDatabase(const std::string& prefix) {
  const std::string name =
      prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++databases_);
  GPU_RETURN_IF_ERROR(Run({bindir_ + "/createdb", "-h", "127.0.0.1", "-p", std::to_string(port_),
                           "-U", "postgres", name},
                          false));
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

}  // namespace gpu_autoscaler::testing
