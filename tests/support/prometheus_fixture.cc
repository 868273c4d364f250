#include "support/prometheus_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/loopback_port.h"

namespace gpu_autoscaler::testing {
namespace {

bool IsExecutable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

// GET http://127.0.0.1:port/-/ready answered 200.
bool Ready(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[64] = {};
      const ssize_t n = ::recv(fd, buf, sizeof(buf) - 1, 0);
      ok = n > 12 && std::string(buf, static_cast<size_t>(n)).find(" 200 ") != std::string::npos;
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace

std::string TestPrometheus::FindBinary() {
  if (const char* env = std::getenv("GPA_PROMETHEUS"); env != nullptr && *env != '\0') {
    return IsExecutable(env) ? env : "";
  }
  if (IsExecutable("/usr/bin/prometheus")) return "/usr/bin/prometheus";
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (!dir.empty() && IsExecutable(dir + "/prometheus")) return dir + "/prometheus";
    }
  }
  return "";
}

Result<std::unique_ptr<TestPrometheus>> TestPrometheus::Start(
    const std::string& binary, const std::vector<std::string>& targets) {
  return Start(binary,
               std::vector<ScrapeJob>{{.name = "dcgm", .targets = targets, .honor_labels = true}});
}

Result<std::unique_ptr<TestPrometheus>> TestPrometheus::Start(const std::string& binary,
                                                              const std::vector<ScrapeJob>& jobs) {
  std::unique_ptr<TestPrometheus> p(new TestPrometheus());
  Status started = UnavailableError("no attempt");
  // Another process may take the free port before prometheus binds it.
  for (int attempt = 0; attempt < 3 && !started.ok(); ++attempt) {
    started = p->StartOnce(binary, jobs);
  }
  if (!started.ok()) return started;
  return p;
}

Status TestPrometheus::StartOnce(const std::string& binary, const std::vector<ScrapeJob>& jobs) {
  Stop();
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/gpa-prometheus-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return UnavailableError("mkdtemp failed");
  dir_ = pattern;
  GPU_ASSIGN_OR_RETURN(port_, FreeLoopbackPort());

  const std::string config = dir_ + "/prometheus.yml";
  {
    std::ofstream out(config);
    out << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n";
    for (const ScrapeJob& job : jobs) {
      out << "  - job_name: '" << job.name << "'\n    scheme: " << job.scheme << "\n"
          << "    honor_labels: " << (job.honor_labels ? "true" : "false") << "\n";
      if (job.insecure_skip_verify) out << "    tls_config:\n      insecure_skip_verify: true\n";
      out << "    static_configs:\n      - targets: [";
      for (size_t i = 0; i < job.targets.size(); ++i)
        out << (i ? ", " : "") << "'" << job.targets[i] << "'";
      out << "]\n";
      if (!job.labels.empty()) {
        out << "        labels:\n";
        for (const auto& [k, v] : job.labels)
          out << "          " << k << ": '" << v << "'\n";
      }
    }
    if (!out) return UnavailableError("cannot write " + config);
  }

  // Everything the child needs is built before fork(): the parent has threads.
  std::vector<std::string> args = {
      binary, "--config.file=" + config, "--storage.tsdb.path=" + dir_ + "/data",
      "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = dir_ + "/prometheus.log";
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) return UnavailableError("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;

  // Bounded wait for the server to come up (it replays an empty WAL: fast).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return UnavailableError("prometheus exited during start-up: " + LogTail());
    }
    if (Ready(port_)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return UnavailableError("prometheus not ready within 60 s: " + LogTail());
}

std::string TestPrometheus::LogTail() const {
  std::ifstream in(dir_ + "/prometheus.log");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

void TestPrometheus::Stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; ++i) {  // up to 10 s for a clean shutdown
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno != EINTR)) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
}

TestPrometheus::~TestPrometheus() {
  Stop();
}

}  // namespace gpu_autoscaler::testing
