#include "common/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace gpu_autoscaler {
namespace {

TEST(Base64Test, EveryByteRoundTripsAtEveryPaddingLength) {
  std::string all;
  for (int c = 0; c < 256; ++c)
    all.push_back(static_cast<char>(c));
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, all.size()}) {
    const std::string data = all.substr(0, n);
    EXPECT_EQ(Base64Decode(Base64Encode(data)), data) << n;
  }
}

TEST(Base64Test, DecodesAsGoStdEncodingDoes) {
  EXPECT_EQ(Base64Decode("Zm9v\nYmFy\r\n"), "foobar");  // newlines skipped
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64Decode("Zm8"), std::nullopt);       // padding required
  EXPECT_EQ(Base64Decode("Z===="), std::nullopt);     // too much padding
  EXPECT_EQ(Base64Decode("Zm=v"), std::nullopt);      // padding inside
  EXPECT_EQ(Base64Decode("Zm8=Zm8="), std::nullopt);  // padding before the end
  EXPECT_EQ(Base64Decode("Zm9*"), std::nullopt);      // not the alphabet
}

}  // namespace
}  // namespace gpu_autoscaler
