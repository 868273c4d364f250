// File: tests/support/test_paths.h
//
// Where tests find checked-in data (tests/golden, crds/) and built programs.
// Thread-safety: pure functions.
#pragma once

#include <string>

namespace gpu_autoscaler::testing {

// Absolute path of a file under the source tree, e.g. SourcePath("tests/golden/kube").
std::string SourcePath(const std::string& relative);
// Absolute path of a built program, e.g. BinaryPath("gpu-autoscaler-apiserver").
std::string BinaryPath(const std::string& program);
// Reads a whole file; aborts the test binary with a message if it cannot.
std::string ReadFileOrDie(const std::string& path);

}  // namespace gpu_autoscaler::testing
