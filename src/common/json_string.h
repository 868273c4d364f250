// File: src/common/json_string.h
//
// Writing JSON by hand on hot paths (admission responses, extender answers)
// without a DOM: a string literal with RFC 8259 escaping.
//
//   std::string out = "{\"Error\":";
//   AppendJsonString(out, message);   // "..." with quotes and escapes
//   out += '}';
//
// Thread-safety: pure function.
#pragma once

#include <string>
#include <string_view>

namespace gpu_autoscaler {

// Appends `s` as a JSON string literal (with quotes). `s` must be UTF-8.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace gpu_autoscaler
