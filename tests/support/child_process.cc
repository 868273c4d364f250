#include "support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/base64.h"

extern char** environ;

namespace gpu_autoscaler::testing {

ChildProcess::~ChildProcess() {
  Kill(SIGKILL);
}

bool ChildProcess::Spawn(const std::vector<std::string>& args, const std::string& log_path) {
  if (pid_ > 0 || args.empty()) return false;
  log_path_ = log_path;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, args[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) pid_ = -1;
  return rc == 0;
}

int ChildProcess::Kill(int signal) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::TryWait() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  pid_ = -1;
  return status;
}

std::string ChildProcess::Log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int ChildProcess::PortFromLog(const std::string& key) const {
  const std::string log = Log();
  const auto at = log.rfind(key + "=");
  if (at == std::string::npos) return -1;
  int port = 0;
  for (size_t i = at + key.size() + 1;
       i < log.size() && std::isdigit(static_cast<unsigned char>(log[i])); ++i) {
    port = port * 10 + (log[i] - '0');
  }
  return port > 0 ? port : -1;
}

CommandResult RunCommand(const std::vector<std::string>& args) {
  CommandResult result;
  const std::string dir = MakeTempDir("gpa-command");
  const std::string out_path = dir + "/out", err_path = dir + "/err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0].c_str(), &actions, nullptr, argv.data(), environ) == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  auto slurp = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  ::rmdir(dir.c_str());
  return result;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

std::string WriteKubeconfig(const kube::ClientConfig& cfg, const std::string& dir) {
  nlohmann::json cluster = {{"server", cfg.server}};
  if (!cfg.ca_pem.empty()) cluster["certificate-authority-data"] = Base64Encode(cfg.ca_pem);
  if (cfg.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
  nlohmann::json kubeconfig = {
      {"apiVersion", "v1"},
      {"kind", "Config"},
      {"clusters", {{{"name", "test"}, {"cluster", cluster}}}},
      {"users", {{{"name", "test"}, {"user", {{"token", cfg.bearer_token}}}}}},
      {"contexts", {{{"name", "test"}, {"context", {{"cluster", "test"}, {"user", "test"}}}}}},
      {"current-context", "test"}};
  const std::string path = dir + "/kubeconfig";
  std::ofstream(path) << kubeconfig.dump();  // JSON is YAML
  return path;
}

std::string RunUntilFailpointKills(ChildProcess& process, const std::vector<std::string>& args,
                                   const std::string& log_path, const std::string& failpoints,
                                   std::chrono::milliseconds limit) {
  setenv("GPA_FAILPOINTS", failpoints.c_str(), 1);
  const bool spawned = process.Spawn(args, log_path);
  unsetenv("GPA_FAILPOINTS");
  if (!spawned) return "could not spawn " + args.front();
  std::optional<int> died;
  if (!WaitFor([&] { return (died = process.TryWait()).has_value(); }, limit))
    return "still running (" + failpoints + " never fired):\n" + process.Log();
  if (!WIFSIGNALED(*died) || WTERMSIG(*died) != SIGKILL)
    return "ended with wait status " + std::to_string(*died) + ", not SIGKILL:\n" + process.Log();
  return "";
}

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

}  // namespace gpu_autoscaler::testing
