#include "common/gzip_file.h"

#include <zlib.h>

namespace gpu_autoscaler {

Result<std::string> ReadMaybeGzipFile(const std::string& path) {
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

}  // namespace gpu_autoscaler
