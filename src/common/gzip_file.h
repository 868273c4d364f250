// File: src/common/gzip_file.h
//
// Reads a whole file, gunzipping it when it is gzip-compressed (zlib passes
// plain files through unchanged), so trace readers take `.csv` and `.csv.gz`
// alike.
//
//   GPU_ASSIGN_OR_RETURN(std::string text, ReadMaybeGzipFile("usage.csv.gz"));
//
// Thread-safety: a pure function of the file.
#pragma once

#include <string>

#include "common/status.h"

namespace gpu_autoscaler {

// NotFound when the file cannot be opened; DataLoss for a corrupt or
// truncated gzip stream ("<path>: <zlib's reason>").
Result<std::string> ReadMaybeGzipFile(const std::string& path);

}  // namespace gpu_autoscaler
