#include "support/test_paths.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gpu_autoscaler::testing {

std::string SourcePath(const std::string& relative) {
  return std::string(GPA_SOURCE_DIR) + "/" + relative;
}

std::string BinaryPath(const std::string& program) {
  const char* dir = std::getenv("GPA_BINARY_DIR");
  return std::string(dir ? dir : GPA_BINARY_DIR) + "/" + program;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "test support: cannot read %s\n", path.c_str());
    std::abort();
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace gpu_autoscaler::testing
