// gpa-fake-aws: the loopback AWS fake (tests/support/fake_aws.h) as a program,
// for the demo and for trying the node agent by hand: IMDSv2 over HTTP (the
// spot notice) and the Auto Scaling Query API over HTTPS, on 127.0.0.1.
// The spot notice is driven through a file, so a shell script can post it.
#include <csignal>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "support/fake_aws.h"

namespace {

constexpr char kUsage[] = R"(Usage: gpa-fake-aws [flags]

Serves the test suite's AWS fake on 127.0.0.1 until SIGINT or SIGTERM:
IMDSv2 over HTTP (token PUT, instance credentials, spot/instance-action) and
Auto Scaling over HTTPS. Prints "imds_endpoint=URL" and "endpoint=URL" when up.

Flags:
  --notice-file PATH   while PATH exists, its content is the IMDS
                       spot/instance-action document (checked every 100 ms;
                       e.g. {"action": "terminate", "time": "2026-12-05T02:00:00Z"})
  --help               show this help
)";

volatile sig_atomic_t stopping = 0;
void Stop(int) {
  stopping = 1;
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string notice_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg.rfind("--notice-file=", 0) == 0) {
      notice_file = arg.substr(std::strlen("--notice-file="));
      continue;
    }
    if (arg == "--notice-file" && i + 1 < argc) {
      notice_file = argv[++i];
      continue;
    }
    std::cerr << "gpa-fake-aws: unknown flag " << arg << "\n" << kUsage;
    return 2;
  }
  auto aws = gpu_autoscaler::testing::FakeAws::Start({});
  if (!aws.ok()) {
    std::cerr << "gpa-fake-aws: " << aws.error().ToString() << "\n";
    return 1;
  }
  std::signal(SIGINT, Stop);
  std::signal(SIGTERM, Stop);
  std::cout << "imds_endpoint=" << (*aws)->imds_endpoint() << "\nendpoint=" << (*aws)->endpoint()
            << std::endl;
  std::optional<std::string> posted;
  while (!stopping) {
    if (!notice_file.empty()) {
      std::optional<std::string> notice = ReadFile(notice_file);
      if (notice != posted) {
        (*aws)->SetSpotInstanceAction(notice);
        posted = notice;
        std::cout << (notice ? "spot notice posted: " + *notice : "spot notice withdrawn")
                  << std::endl;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 0;
}
