#include "kube/watch_decoder.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace gpu_autoscaler::kube {
namespace {

using nlohmann::json;

struct Collected {
  std::vector<WatchEventType> types;
  std::vector<std::string> objects;
};

Result<std::monostate> FeedAll(WatchDecoder& dec, std::string_view chunk, Collected* out) {
  return dec.Feed(chunk, [out](const WatchEventFrame& f) {
    out->types.push_back(f.type);
    out->objects.emplace_back(f.object);
    return true;
  });
}

// The recorded watch stream from kube-apiserver, one event per line.
std::string GoldenStream(const std::string& file, std::vector<json>* events) {
  json golden =
      json::parse(testing::ReadFileOrDie(testing::SourcePath("tests/golden/kube/" + file)));
  std::string stream;
  for (const json& ev : golden["response"]["events"]) {
    events->push_back(ev);
    stream += ev.dump() + "\n";
  }
  return stream;
}

TEST(WatchDecoderTest, DecodesGoldenStreamInEveryChunking) {
  std::vector<json> events;
  std::string stream = GoldenStream("34-watch-events.json", &events);
  ASSERT_GE(events.size(), 4u);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, size_t{1000}, stream.size()}) {
    WatchDecoder dec;
    Collected got;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      auto r = FeedAll(dec, std::string_view(stream).substr(i, chunk), &got);
      ASSERT_TRUE(r.ok()) << r.error().ToString();
    }
    ASSERT_EQ(got.types.size(), events.size()) << "chunk " << chunk;
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(WatchEventTypeName(got.types[i]), events[i]["type"].get<std::string>());
      EXPECT_EQ(json::parse(got.objects[i]), events[i]["object"]);
    }
    EXPECT_EQ(dec.buffered(), 0u);
  }
}

TEST(WatchDecoderTest, ErrorEventCarriesStatus) {
  std::vector<json> events;
  std::string stream = GoldenStream("64-watch-expired.json", &events);
  WatchDecoder dec;
  Collected got;
  ASSERT_TRUE(FeedAll(dec, stream, &got).ok());
  ASSERT_FALSE(got.types.empty());
  EXPECT_EQ(got.types.back(), WatchEventType::kError);
  Error err = Error::FromStatusJson(0, json::parse(got.objects.back()));
  EXPECT_TRUE(IsResourceExpired(err));
  EXPECT_EQ(err.code(), 410);
}

TEST(WatchDecoderTest, NoNewlinesAndTrickyStrings) {
  std::string stream =
      R"({"type":"ADDED","object":{"a":"}{\"]","b":[1,{"c":"\\"}]}}{"object":{"x":-1.5e3},"type":"DELETED"} )";
  WatchDecoder dec;
  Collected got;
  auto r = FeedAll(dec, stream, &got);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(got.types.size(), 2u);
  EXPECT_EQ(got.types[0], WatchEventType::kAdded);
  EXPECT_EQ(got.objects[0], R"({"a":"}{\"]","b":[1,{"c":"\\"}]})");
  EXPECT_EQ(got.types[1], WatchEventType::kDeleted);
  EXPECT_EQ(got.objects[1], R"({"x":-1.5e3})");
}

TEST(WatchDecoderTest, KeepsPartialEventAcrossFeeds) {
  WatchDecoder dec;
  Collected got;
  ASSERT_TRUE(FeedAll(dec, R"({"type":"BOOKMARK","object":{"metadata":{"resourceV)", &got).ok());
  EXPECT_TRUE(got.types.empty());
  EXPECT_GT(dec.buffered(), 0u);
  ASSERT_TRUE(FeedAll(dec, "ersion\":\"12\"}}}\n", &got).ok());
  ASSERT_EQ(got.types.size(), 1u);
  EXPECT_EQ(got.types[0], WatchEventType::kBookmark);
  EXPECT_EQ(got.objects[0], R"({"metadata":{"resourceVersion":"12"}})");
}

TEST(WatchDecoderTest, StopsEarlyAndResumes) {
  std::string two = R"({"type":"ADDED","object":{}})"
                    "\n"
                    R"({"type":"MODIFIED","object":{"n":1}})";
  WatchDecoder dec;
  int calls = 0;
  ASSERT_TRUE(dec.Feed(two,
                       [&](const WatchEventFrame&) {
                         ++calls;
                         return false;
                       })
                  .ok());
  EXPECT_EQ(calls, 1);
  EXPECT_GT(dec.buffered(), 0u);
  Collected got;
  ASSERT_TRUE(FeedAll(dec, "", &got).ok());
  ASSERT_EQ(got.types.size(), 1u);
  EXPECT_EQ(got.types[0], WatchEventType::kModified);
}

TEST(WatchDecoderTest, MalformedInputIsAnError) {
  for (std::string_view bad : {
           std::string_view("garbage"),
           std::string_view(R"({"type":"ADDED"})"),
           std::string_view(R"({"object":{}})"),
           std::string_view(R"({"type":"EXPLODED","object":{}})"),
           std::string_view(R"({"type":"ADDED","object":{"a":}})"),
           std::string_view(R"({"type":"ADDED","object":{}]})"),
           std::string_view(R"({"type":7,"object":{}})"),
           std::string_view(R"({"type":"ADDED" "object":{}})"),
           std::string_view(R"({"type":"ADDED","object":[tru]})"),
           std::string_view("]"),
       }) {
    WatchDecoder dec;
    Collected got;
    auto r = FeedAll(dec, bad, &got);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().kind(), Error::Kind::kDecode);
    }
    EXPECT_TRUE(got.types.empty()) << bad;
  }
}

TEST(WatchDecoderTest, OversizedFrameIsAnError) {
  WatchDecoder dec(/*max_frame_bytes=*/64);
  Collected got;
  ASSERT_TRUE(FeedAll(dec, R"({"type":"ADDED","object":{"a":")", &got).ok());
  auto r = FeedAll(dec, std::string(100, 'x'), &got);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("larger than 64"), std::string::npos);
}

TEST(WatchDecoderTest, DeepNestingDoesNotOverflow) {
  std::string deep =
      R"({"type":"ADDED","object":)" + std::string(200'000, '[') + std::string(200'000, ']') + "}";
  WatchDecoder dec;
  Collected got;
  auto r = FeedAll(dec, deep, &got);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(got.types.size(), 1u);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
