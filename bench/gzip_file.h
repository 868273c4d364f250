// File: bench/gzip_file.h
//
// Reads a whole file, gunzipping it when it is gzip (zlib passes plain files
// through), for the bench programs that read the GenTD26 traces (.csv.gz).
//
//   GPU_ASSIGN_OR_RETURN(std::string text, bench::ReadMaybeGzip("qps.csv.gz"));
//
// Thread-safety: reentrant. Link ZLIB::ZLIB.
#pragma once

#include <zlib.h>

#include <string>

#include "common/status.h"

namespace gpu_autoscaler::bench {

inline Result<std::string> ReadMaybeGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return NotFoundError("cannot open " + path);
  std::string out;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  int err = 0;
  const char* msg = gzerror(f, &err);
  const bool failed = n < 0 || (err != Z_OK && err != Z_STREAM_END);
  const std::string why = failed ? std::string(msg) : "";
  gzclose(f);
  if (failed) return DataLossError(path + ": " + why);
  return out;
}

}  // namespace gpu_autoscaler::bench
