#include "kube/error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace gpu_autoscaler::kube {
namespace {

using nlohmann::json;

json GoldenResponseBody(const std::string& name) {
  json golden =
      json::parse(testing::ReadFileOrDie(testing::SourcePath("tests/golden/kube/" + name)));
  return golden["response"]["body"];
}

// Every golden Status body survives FromStatusJson -> ToStatusJson unchanged.
class GoldenStatusRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenStatusRoundTrip, RendersExactShape) {
  json golden =
      json::parse(testing::ReadFileOrDie(testing::SourcePath("tests/golden/kube/" + GetParam())));
  const json& body = golden["response"]["body"];
  int status = golden["response"]["status"];
  Error err = Error::FromResponse(status, body.dump());
  EXPECT_EQ(err.kind(), Error::Kind::kApi);
  EXPECT_EQ(err.code(), status);
  EXPECT_EQ(err.ToStatusJson(), body) << err.ToStatusJson().dump();
}

INSTANTIATE_TEST_SUITE_P(
    Golden, GoldenStatusRoundTrip,
    ::testing::Values("06-unauthorized.json", "07-get-pod-notfound.json",
                      "09-create-pod-exists.json", "10-create-pod-invalid.json",
                      "19-list-label-invalid.json", "21-list-field-unsupported.json",
                      "25-update-pod-conflict.json", "28-patch-json-test-fails.json",
                      "31-patch-apply-conflict.json", "32-patch-unsupported-type.json",
                      "42-delete-precondition.json", "48-update-lease-conflict.json",
                      "53-create-cr-invalid.json", "58-patch-cr-strategic.json",
                      "62-list-expired-resourceversion.json", "63-list-expired-continue.json",
                      "65-evict-blocked-by-pdb.json", "70-get-scale-notfound.json"),
    [](const auto& info) {
      std::string name = info.param.substr(0, info.param.find('.'));
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return "g" + name;
    });

TEST(ErrorTest, BuiltErrorRendersLikeKubeApiserver) {
  Error err(Error::Kind::kApi, 409, "AlreadyExists", "pods \"web-1\" already exists");
  err.mutable_details().name = "web-1";
  err.mutable_details().kind = "pods";
  EXPECT_EQ(err.ToStatusJson(), GoldenResponseBody("09-create-pod-exists.json"));

  Error bad(Error::Kind::kApi, 400, "BadRequest",
            "unable to parse requirement: found 'web' expected: '('");
  EXPECT_EQ(bad.ToStatusJson(), GoldenResponseBody("19-list-label-invalid.json"));
}

TEST(ErrorTest, ParsesDetailsAndCauses) {
  Error err = Error::FromResponse(422, GoldenResponseBody("53-create-cr-invalid.json").dump());
  EXPECT_TRUE(IsInvalid(err));
  EXPECT_EQ(err.details().group, "example.gpuautoscaler.io");
  EXPECT_EQ(err.details().kind, "Widget");
  EXPECT_EQ(err.details().name, "w2");
  ASSERT_EQ(err.details().causes.size(), 2u);
  EXPECT_EQ(err.details().causes[1].reason, "FieldValueNotSupported");
  EXPECT_EQ(err.details().causes[1].field, "spec.mode");
}

TEST(ErrorTest, ExpiredContinueKeepsToken) {
  Error err = Error::FromResponse(410, GoldenResponseBody("63-list-expired-continue.json").dump());
  EXPECT_TRUE(IsGone(err));
  EXPECT_TRUE(IsResourceExpired(err));
  EXPECT_EQ(err.list_continue(), "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0IjoiYSJ9");
}

TEST(ErrorTest, RetryAfterFromDetails) {
  Error err = Error::FromResponse(
      429,
      R"({"kind":"Status","code":429,"reason":"TooManyRequests","details":{"retryAfterSeconds":3}})");
  ASSERT_TRUE(err.retry_after().has_value());
  EXPECT_EQ(*err.retry_after(), std::chrono::seconds(3));
  EXPECT_TRUE(IsTooManyRequests(err));
  EXPECT_EQ(err.ToStatusJson()["details"]["retryAfterSeconds"], 3);

  Error none(Error::Kind::kApi, 429, "TooManyRequests", "slow down");
  EXPECT_FALSE(none.retry_after().has_value());
  none.set_retry_after(std::chrono::seconds(7));
  EXPECT_EQ(*none.retry_after(), std::chrono::seconds(7));
}

TEST(ErrorTest, NonStatusBodyFallsBackToCode) {
  Error err = Error::FromResponse(503, "  upstream connect error\n");
  EXPECT_EQ(err.kind(), Error::Kind::kApi);
  EXPECT_EQ(err.code(), 503);
  EXPECT_EQ(err.reason(), "ServiceUnavailable");
  EXPECT_EQ(err.message(), "upstream connect error");
  EXPECT_TRUE(IsServerError(err));

  Error notfound = Error::FromResponse(404, "");
  EXPECT_TRUE(IsNotFound(notfound));
  EXPECT_FALSE(notfound.message().empty());

  Error garbage = Error::FromResponse(500, "{\"kind\":\"Status\",\"code\":[1,2");
  EXPECT_EQ(garbage.code(), 500);
  EXPECT_TRUE(IsServerError(garbage));

  // Fields of the wrong type are ignored rather than thrown on.
  Error odd = Error::FromResponse(
      409, R"({"kind":"Status","reason":7,"message":["x"],"details":{"causes":[1,{"reason":2}]}})");
  EXPECT_TRUE(IsConflict(odd));
  EXPECT_EQ(odd.details().causes.size(), 1u);
}

TEST(ErrorTest, HugeBodyIsTruncatedInMessage) {
  Error err = Error::FromResponse(500, std::string(10'000, 'x'));
  EXPECT_LT(err.message().size(), 1'000u);
}

TEST(ErrorTest, PredicatesUseReasonThenCode) {
  EXPECT_TRUE(IsConflict(Error(Error::Kind::kApi, 409, "Conflict", "")));
  EXPECT_FALSE(IsConflict(Error(Error::Kind::kApi, 409, "AlreadyExists", "")));
  EXPECT_TRUE(IsAlreadyExists(Error(Error::Kind::kApi, 409, "AlreadyExists", "")));
  EXPECT_TRUE(IsNotFound(Error(Error::Kind::kApi, 404, "", "")));
  EXPECT_TRUE(IsGone(Error(Error::Kind::kApi, 410, "Gone", "")));
  EXPECT_FALSE(IsResourceExpired(Error(Error::Kind::kApi, 410, "Gone", "")));
  EXPECT_TRUE(IsForbidden(Error(Error::Kind::kApi, 403, "Forbidden", "")));
  EXPECT_TRUE(IsUnauthorized(Error(Error::Kind::kApi, 401, "Unauthorized", "")));
  EXPECT_TRUE(IsBadRequest(Error(Error::Kind::kApi, 400, "BadRequest", "")));
  EXPECT_TRUE(IsUnsupportedMediaType(Error(Error::Kind::kApi, 415, "UnsupportedMediaType", "")));
  EXPECT_TRUE(IsTimeout(Error::Timeout("deadline")));
  EXPECT_TRUE(IsTimeout(Error(Error::Kind::kApi, 504, "", "")));
  EXPECT_TRUE(IsTimeout(Error(Error::Kind::kApi, 500, "ServerTimeout", "")));
  EXPECT_TRUE(IsTransport(Error::Transport("refused")));
  EXPECT_FALSE(IsNotFound(Error::Transport("refused")));
  EXPECT_TRUE(IsCancelled(Error::Cancelled("stop")));
  EXPECT_FALSE(IsServerError(Error::Transport("x")));
}

TEST(ErrorTest, ToStringAndToStatus) {
  Error err(Error::Kind::kApi, 404, "NotFound", "pods \"x\" not found");
  EXPECT_EQ(err.ToString(), "NotFound (404): pods \"x\" not found");
  EXPECT_EQ(err.ToStatus().code(), StatusCode::kNotFound);
  EXPECT_EQ(err.ToStatus().message(), err.ToString());
  EXPECT_EQ(Error::Transport("connection refused").ToString(),
            "transport error: connection refused");
  EXPECT_EQ(Error::Transport("x").ToStatus().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Error(Error::Kind::kApi, 409, "Conflict", "").ToStatus().code(), StatusCode::kAborted);
  EXPECT_EQ(Error(Error::Kind::kApi, 422, "Invalid", "").ToStatus().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Error(Error::Kind::kApi, 429, "TooManyRequests", "").ToStatus().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(Error::Timeout("t").ToStatus().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Error::Cancelled("c").ToStatus().code(), StatusCode::kCancelled);
  EXPECT_EQ(Error::Config("c").ToStatus().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
