// HTTP/2: the transport asks for h2 over TLS (ALPN) and uses it when the
// server offers it. The peer is nghttpd, the nghttp2 project's reference
// HTTP/2 server, serving a static file on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kube/rest_client.h"
#include "support/loopback_port.h"

extern char** environ;

namespace gpu_autoscaler::kube {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int RunQuietly(const std::vector<std::string>& argv) {
  std::string command;
  for (const auto& a : argv)
    command += "'" + a + "' ";
  command += ">/dev/null 2>&1";
  return std::system(command.c_str());
}

bool Connectable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

class Http2IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunQuietly({"nghttpd", "--version"}) != 0) {
      GTEST_SKIP() << "nghttpd (Debian package nghttp2-server) is not installed";
    }
    char tmpl[] = "/tmp/gpa-h2-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "htdocs");
    std::ofstream(dir_ / "htdocs" / "version") << R"({"gitVersion":"nghttpd"})";
    std::ofstream(dir_ / "ext.cnf") << "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n";
    const std::string d = dir_.string();
    ASSERT_EQ(
        RunQuietly({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    d + "/ca.key", "-out", d + "/ca.crt", "-days", "2", "-subj", "/CN=h2-ca"}),
        0);
    ASSERT_EQ(RunQuietly({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                          d + "/tls.key", "-out", d + "/tls.csr", "-subj", "/CN=127.0.0.1"}),
              0);
    ASSERT_EQ(RunQuietly({"openssl", "x509", "-req", "-in", d + "/tls.csr", "-CA", d + "/ca.crt",
                          "-CAkey", d + "/ca.key", "-CAcreateserial", "-out", d + "/tls.crt",
                          "-days", "2", "-extfile", d + "/ext.cnf"}),
              0);
    std::ifstream ca(dir_ / "ca.crt");
    ca_pem_.assign(std::istreambuf_iterator<char>(ca), {});

    // The port is picked before nghttpd binds it; retry if another process wins the race.
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
      port_ = gpu_autoscaler::testing::FreeLoopbackPort().value_or(-1);
      std::vector<std::string> args = {
          "nghttpd",      "--address=127.0.0.1", "--htdocs=" + d + "/htdocs", std::to_string(port_),
          d + "/tls.key", d + "/tls.crt"};
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      pid_t pid = -1;
      if (::posix_spawnp(&pid, "nghttpd", nullptr, nullptr, argv.data(), environ) != 0) continue;
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      while (std::chrono::steady_clock::now() < deadline && !Connectable(port_)) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) {  // exited: port taken
          pid = -1;
          break;
        }
        std::this_thread::sleep_for(20ms);
      }
      if (pid > 0 && Connectable(port_)) pid_ = pid;
    }
    ASSERT_GT(pid_, 0) << "nghttpd did not start";
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }

  ClientConfig Config() const {
    ClientConfig cfg;
    cfg.server = "https://127.0.0.1:" + std::to_string(port_);
    cfg.ca_pem = ca_pem_;
    return cfg;
  }

  fs::path dir_;
  std::string ca_pem_;
  int port_ = -1;
  pid_t pid_ = -1;
};

TEST_F(Http2IntegrationTest, NegotiatesH2WhenTheServerOffersIt) {
  auto client = RestClient::Create(Config(), {.max_retries = 0});
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  for (int i = 0; i < 3; ++i) {  // the pooled connection carries later requests too
    auto response = (*client)->Request("GET", "/version");
    ASSERT_TRUE(response.ok()) << response.error().ToString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->http_version, 20);
    EXPECT_EQ(response->body, R"({"gitVersion":"nghttpd"})");
  }
  auto missing = (*client)->Request("GET", "/no-such-file");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(IsNotFound(missing.error())) << missing.error().ToString();
}

}  // namespace
}  // namespace gpu_autoscaler::kube
