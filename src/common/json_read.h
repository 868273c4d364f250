// File: src/common/json_read.h
//
// Typed reads of JSON that came from outside the process (request bodies,
// cloud responses, API objects, checkpoints), none of which throws.
//
// nlohmann's `obj.value(key, fallback)` throws type_error when `obj` is not an
// object or the member has another type, and reading a float member as an
// integer is undefined behaviour when it is out of range. Both are right for
// JSON this process wrote and wrong for anything else. These read a member of
// the wrong type as absent, so the caller's own rule for a missing field
// applies (the API server's schema checks catch wrong types before us in a
// cluster; a fuzzer or a hand-edited object does not).
//
//   const nlohmann::json& meta = json_read::Object(pod, "metadata");
//   std::string ns = json_read::String(meta, "namespace");
//   int64_t generation = json_read::Integer(meta, "generation");
//   for (const nlohmann::json& t : json_read::Array(spec, "tolerations")) ...
//
// Thread-safety: pure functions; the empty values returned by reference are
// immutable statics.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gpu_autoscaler::json_read {

// Member `key` of `obj`, or nullptr when `obj` is not an object or lacks it.
const nlohmann::json* Find(const nlohmann::json& obj, std::string_view key);

// Member `key` of `obj`, or JSON null when `obj` is not an object or lacks it.
const nlohmann::json& Member(const nlohmann::json& obj, std::string_view key);

// The member when it is an object / an array; otherwise an empty one.
const nlohmann::json& Object(const nlohmann::json& obj, std::string_view key);
const nlohmann::json& Array(const nlohmann::json& obj, std::string_view key);

// The member when it is a string; otherwise `fallback`.
std::string String(const nlohmann::json& obj, std::string_view key, std::string_view fallback = {});

// The member when it is a finite number; otherwise `fallback`.
double Number(const nlohmann::json& obj, std::string_view key, double fallback = 0);

// The member when it is an integer in int64 range, or a float with an
// integral value within ±2^53 (what JSON encoders without integers write);
// otherwise `fallback`.
int64_t Integer(const nlohmann::json& obj, std::string_view key, int64_t fallback = 0);

// Integer(), clamped to int32's range: what the API's int32 fields hold.
int32_t Int32(const nlohmann::json& obj, std::string_view key, int32_t fallback = 0);

// The member when it is a boolean; otherwise `fallback`.
bool Bool(const nlohmann::json& obj, std::string_view key, bool fallback = false);

// The string elements of an array member, in order; other elements are skipped.
std::vector<std::string> Strings(const nlohmann::json& obj, std::string_view key);

}  // namespace gpu_autoscaler::json_read
