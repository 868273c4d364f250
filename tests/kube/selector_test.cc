#include "kube/selector.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace gpu_autoscaler::kube {
namespace {

using Labels = std::map<std::string, std::string>;

std::string ParseError(std::string_view text) {
  auto sel = LabelSelector::Parse(text);
  if (sel.ok()) return "<ok>";
  EXPECT_EQ(sel.error().code(), StatusCode::kInvalidArgument);
  return sel.error().message();
}

TEST(LabelSelectorTest, ParsesEveryOperator) {
  auto sel = LabelSelector::Parse("app in (web,api),tier!=3,!canary, team ,env==prod,x notin (a)");
  ASSERT_TRUE(sel.ok()) << sel.error().ToString();
  const auto& reqs = sel->requirements();
  ASSERT_EQ(reqs.size(), 6u);
  // Sorted by key, values sorted.
  EXPECT_EQ(reqs[0].key, "app");
  EXPECT_EQ(reqs[0].op, LabelSelector::Op::kIn);
  EXPECT_EQ(reqs[0].values, (std::vector<std::string>{"api", "web"}));
  EXPECT_EQ(reqs[1].key, "canary");
  EXPECT_EQ(reqs[1].op, LabelSelector::Op::kDoesNotExist);
  EXPECT_EQ(reqs[2].op, LabelSelector::Op::kEquals);
  EXPECT_EQ(reqs[3].key, "team");
  EXPECT_EQ(reqs[3].op, LabelSelector::Op::kExists);
  EXPECT_EQ(reqs[4].op, LabelSelector::Op::kNotEquals);
  EXPECT_EQ(reqs[5].op, LabelSelector::Op::kNotIn);
  EXPECT_EQ(sel->ToString(), "app in (api,web),!canary,env=prod,team,tier!=3,x notin (a)");
}

TEST(LabelSelectorTest, Matches) {
  auto sel = LabelSelector::Parse("app in (web,api),tier!=3,!canary");
  ASSERT_TRUE(sel.ok());
  EXPECT_TRUE(sel->Matches(Labels{{"app", "web"}}));
  EXPECT_TRUE(sel->Matches(Labels{{"app", "api"}, {"tier", "2"}}));
  EXPECT_FALSE(sel->Matches(Labels{{"app", "web"}, {"tier", "3"}}));
  EXPECT_FALSE(sel->Matches(Labels{{"app", "web"}, {"canary", ""}}));
  EXPECT_FALSE(sel->Matches(Labels{{"app", "db"}}));
  EXPECT_FALSE(sel->Matches(Labels{}));

  Labels labels{{"app", "web"}};
  EXPECT_TRUE(sel->Matches([&](std::string_view key) -> const std::string* {
    auto it = labels.find(std::string(key));
    return it == labels.end() ? nullptr : &it->second;
  }));
}

TEST(LabelSelectorTest, EmptyMatchesEverything) {
  auto sel = LabelSelector::Parse("");
  ASSERT_TRUE(sel.ok());
  EXPECT_TRUE(sel->empty());
  EXPECT_TRUE(sel->Matches(Labels{{"a", "b"}}));
  auto spaces = LabelSelector::Parse("   ");
  ASSERT_TRUE(spaces.ok());
  EXPECT_TRUE(spaces->empty());
}

TEST(LabelSelectorTest, EmptyValues) {
  auto eq = LabelSelector::Parse("a=");
  ASSERT_TRUE(eq.ok());
  EXPECT_TRUE(eq->Matches(Labels{{"a", ""}}));
  EXPECT_FALSE(eq->Matches(Labels{{"a", "x"}}));
  auto in = LabelSelector::Parse("a in ()");
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->requirements()[0].values, std::vector<std::string>{""});
  auto keyword_value = LabelSelector::Parse("a in (in,notin)");
  ASSERT_TRUE(keyword_value.ok());
  EXPECT_EQ(keyword_value->requirements()[0].values, (std::vector<std::string>{"in", "notin"}));
}

TEST(LabelSelectorTest, GoldenInvalidSelectorMessage) {
  auto golden = nlohmann::json::parse(
      testing::ReadFileOrDie(testing::SourcePath("tests/golden/kube/19-list-label-invalid.json")));
  EXPECT_EQ(ParseError("app in web"), golden["response"]["body"]["message"].get<std::string>());
}

TEST(LabelSelectorTest, ApiServerErrorTexts) {
  EXPECT_EQ(ParseError("app in (a"), "unable to parse requirement: found '', expected: ',' or ')'");
  EXPECT_EQ(ParseError("app foo"),
            "unable to parse requirement: found 'foo', expected: in, notin, =, ==, !=, gt, lt");
  EXPECT_EQ(ParseError("a=b c"), "found 'c', expected: ',' or 'end of string'");
  EXPECT_EQ(ParseError("a=b,"), "found '', expected: identifier after ','");
  EXPECT_EQ(ParseError(",a"), "found ',', expected: !, identifier, or 'end of string'");
  EXPECT_EQ(ParseError("!a=b"), "found '=', expected: ',' or 'end of string'");
  EXPECT_EQ(ParseError("a=(b)"), "unable to parse requirement: found '(', expected: identifier");
  EXPECT_EQ(ParseError("-a=b"),
            "unable to parse requirement: invalid label key \"-a\": name part must consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
  EXPECT_EQ(ParseError("a=" + std::string(64, 'v')),
            "unable to parse requirement: invalid label value: \"" + std::string(64, 'v') +
                "\": must be no more than 63 characters");
  EXPECT_NE(ParseError("Example.com/a=b").find("prefix part a lowercase RFC 1123 subdomain"),
            std::string::npos);
  EXPECT_EQ(ParseError("example.com/a=b"), "<ok>");
}

TEST(LabelSelectorTest, FromJson) {
  auto sel = LabelSelector::FromJson(
      R"({"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"NotIn","values":["3"]},{"key":"gpu","operator":"Exists"}]})");
  ASSERT_TRUE(sel.ok()) << sel.error().ToString();
  EXPECT_TRUE(sel->Matches(Labels{{"app", "web"}, {"gpu", "a100"}}));
  EXPECT_FALSE(sel->Matches(Labels{{"app", "web"}, {"gpu", "a100"}, {"tier", "3"}}));
  EXPECT_FALSE(sel->Matches(Labels{{"app", "web"}}));
  EXPECT_EQ(sel->ToString(), "app=web,gpu,tier notin (3)");

  auto empty = LabelSelector::FromJson("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  auto bad_op = LabelSelector::FromJson(R"({"matchExpressions":[{"key":"a","operator":"Has"}]})");
  ASSERT_FALSE(bad_op.ok());
  EXPECT_EQ(bad_op.error().message(), "\"Has\" is not a valid pod selector operator");
  auto in_without_values =
      LabelSelector::FromJson(R"({"matchExpressions":[{"key":"a","operator":"In"}]})");
  ASSERT_FALSE(in_without_values.ok());
  EXPECT_EQ(in_without_values.error().message(),
            "for 'in', 'notin' operators, values set can't be empty");
  EXPECT_FALSE(LabelSelector::FromJson("null").ok());
  EXPECT_FALSE(LabelSelector::FromJson("{").ok());
  EXPECT_FALSE(LabelSelector::FromJson(R"({"matchLabels":{"a":1}})").ok());
  EXPECT_FALSE(LabelSelector::FromJson(R"({"matchLabels":[]})").ok());
}

const std::string* Lookup(const std::map<std::string, std::string>& fields, std::string_view f) {
  auto it = fields.find(std::string(f));
  return it == fields.end() ? nullptr : &it->second;
}

TEST(FieldSelectorTest, ParsesAndMatches) {
  auto sel = FieldSelector::Parse("spec.nodeName=node-a,status.phase!=Failed,metadata.name==x");
  ASSERT_TRUE(sel.ok()) << sel.error().ToString();
  ASSERT_EQ(sel->requirements().size(), 3u);
  // Terms are sorted, as in fields.ParseSelector.
  EXPECT_EQ(sel->requirements()[0].field, "metadata.name");
  EXPECT_TRUE(sel->requirements()[0].equals);
  EXPECT_EQ(sel->requirements()[2].field, "status.phase");
  EXPECT_FALSE(sel->requirements()[2].equals);

  std::map<std::string, std::string> pod{
      {"spec.nodeName", "node-a"}, {"status.phase", "Running"}, {"metadata.name", "x"}};
  auto get = [&](std::string_view f) { return Lookup(pod, f); };
  EXPECT_TRUE(sel->Matches(get));
  pod["status.phase"] = "Failed";
  EXPECT_FALSE(sel->Matches(get));
}

TEST(FieldSelectorTest, UnknownFieldDoesNotMatch) {
  // Rejecting unsupported fields is the server's job, per resource; the parser accepts them.
  auto sel = FieldSelector::Parse("spec.bogusField=x");
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(sel->requirements()[0].field, "spec.bogusField");
  EXPECT_FALSE(sel->Matches([](std::string_view) -> const std::string* { return nullptr; }));
}

TEST(FieldSelectorTest, EscapesAndErrors) {
  auto sel = FieldSelector::Parse(R"(metadata.name=a\,b\=c\\d)");
  ASSERT_TRUE(sel.ok()) << sel.error().ToString();
  ASSERT_EQ(sel->requirements().size(), 1u);
  EXPECT_EQ(sel->requirements()[0].value, R"(a,b=c\d)");

  auto no_op = FieldSelector::Parse("spec.nodeName");
  ASSERT_FALSE(no_op.ok());
  EXPECT_EQ(no_op.error().message(),
            "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'");
  auto bad_escape = FieldSelector::Parse(R"(a=b\x)");
  ASSERT_FALSE(bad_escape.ok());
  EXPECT_EQ(bad_escape.error().message(), "invalid field selector: invalid escape sequence: \\x");
  auto unescaped = FieldSelector::Parse("a=b=c");
  ASSERT_FALSE(unescaped.ok());
  EXPECT_EQ(unescaped.error().message(), "invalid field selector: unescaped character '='");

  auto empty = FieldSelector::Parse("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto empty_value = FieldSelector::Parse("spec.nodeName=");
  ASSERT_TRUE(empty_value.ok());
  EXPECT_EQ(empty_value->requirements()[0].value, "");
}

}  // namespace
}  // namespace gpu_autoscaler::kube
