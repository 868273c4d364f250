#include "common/json_read.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler {
namespace {

using nlohmann::json;

// Every member type under every reader: the right type reads, any other type
// reads as the fallback, and nothing throws (nlohmann's value() throws on all
// of the mismatches below).
TEST(JsonReadTest, AMemberOfAnotherTypeReadsAsAbsent) {
  const json obj = json::parse(R"({"s":"x","i":7,"u":18446744073709551615,"f":2.5,
      "whole":3.0,"huge":8.6e25,"b":true,"o":{"k":"v"},"a":["p",1,"q"],"n":null})");
  for (const char* key : {"s", "i", "u", "f", "whole", "huge", "b", "o", "a", "n", "missing"}) {
    SCOPED_TRACE(key);
    EXPECT_NO_THROW(json_read::String(obj, key));
    EXPECT_NO_THROW(json_read::Integer(obj, key));
  }
  EXPECT_EQ(json_read::String(obj, "s"), "x");
  EXPECT_EQ(json_read::String(obj, "i", "fallback"), "fallback");
  EXPECT_EQ(json_read::String(obj, "o", "fallback"), "fallback");

  EXPECT_EQ(json_read::Integer(obj, "i"), 7);
  EXPECT_EQ(json_read::Integer(obj, "whole"), 3);
  EXPECT_EQ(json_read::Integer(obj, "f", -1), -1);     // not integral
  EXPECT_EQ(json_read::Integer(obj, "huge", -1), -1);  // beyond 2^53: UB as a cast
  EXPECT_EQ(json_read::Integer(obj, "u", -1), -1);     // beyond int64
  EXPECT_EQ(json_read::Integer(obj, "s", -1), -1);
  EXPECT_EQ(json_read::Int32(obj, "i"), 7);
  EXPECT_EQ(json_read::Int32(obj, "u", -1), -1);
  EXPECT_EQ(json_read::Int32(json{{"big", 4294967346LL}}, "big"), INT32_MAX);
  EXPECT_EQ(json_read::Int32(json{{"small", -4294967346LL}}, "small"), INT32_MIN);

  EXPECT_EQ(json_read::Number(obj, "f"), 2.5);
  EXPECT_EQ(json_read::Number(obj, "i"), 7);
  EXPECT_EQ(json_read::Number(obj, "b", -1), -1);

  EXPECT_TRUE(json_read::Bool(obj, "b"));
  EXPECT_TRUE(json_read::Bool(obj, "i", true));  // 7 is not a boolean
  EXPECT_FALSE(json_read::Bool(obj, "s"));

  EXPECT_EQ(json_read::Member(obj, "s"), "x");
  EXPECT_TRUE(json_read::Member(obj, "missing").is_null());
  EXPECT_EQ(json_read::Object(obj, "o").value("k", ""), "v");
  EXPECT_TRUE(json_read::Object(obj, "a").empty());
  EXPECT_TRUE(json_read::Object(obj, "a").is_object());
  EXPECT_TRUE(json_read::Array(obj, "o").is_array());
  EXPECT_EQ(json_read::Array(obj, "a").size(), 3u);
  EXPECT_EQ(json_read::Strings(obj, "a"), (std::vector<std::string>{"p", "q"}));
  EXPECT_TRUE(json_read::Strings(obj, "s").empty());
}

TEST(JsonReadTest, ANonObjectHasNoMembers) {
  for (const json& not_object : {json(), json(1), json("s"), json::array({1, 2})}) {
    EXPECT_EQ(json_read::Find(not_object, "k"), nullptr);
    EXPECT_TRUE(json_read::Member(not_object, "k").is_null());
    EXPECT_EQ(json_read::String(not_object, "k", "d"), "d");
    EXPECT_EQ(json_read::Integer(not_object, "k", 4), 4);
    EXPECT_TRUE(json_read::Object(not_object, "k").is_object());
  }
}

TEST(JsonReadTest, ReadsChainThroughMissingParents) {
  const json pod = json::parse(R"({"metadata":"not an object"})");
  const json& labels = json_read::Object(json_read::Object(pod, "metadata"), "labels");
  EXPECT_EQ(json_read::String(labels, "app", "none"), "none");
}

}  // namespace
}  // namespace gpu_autoscaler
