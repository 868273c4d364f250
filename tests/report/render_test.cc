// The HTML page and its SVG charts: geometry by hand, every chart present,
// and strings from the cluster escaped.
#include <gtest/gtest.h>

#include "report/render.h"
#include "report/svg_chart.h"
#include "report_fixture.h"

namespace gpu_autoscaler::report {
namespace {

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size()))
    ++n;
  return n;
}

TEST(HtmlEscapeTest, EscapesMarkupAndQuotes) {
  EXPECT_EQ(HtmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(HtmlEscape("plain"), "plain");
}

TEST(SvgChartTest, BarHeightsScaleToTheNiceTop) {
  // Max 2 -> step 0.5 (1-2-2.5-5), top 2; the plot is 300 - 40 - 56 = 204 px high.
  const std::string svg = RenderBarChart(
      {.id = "c", .title = "T", .unit = "GPUs", .series = {"a", "b"}, .groups = {{"g", {1, 2}}}});
  EXPECT_NE(svg.find("data-chart=\"c\""), std::string::npos);
  EXPECT_NE(svg.find("data-series=\"a\" data-label=\"g\" data-value=\"1.0000\""),
            std::string::npos);
  EXPECT_NE(svg.find("height=\"102.0\""), std::string::npos);
  EXPECT_NE(svg.find("height=\"204.0\""), std::string::npos);
  EXPECT_EQ(Count(svg, "class=\"bar\""), 2u);
  EXPECT_NE(svg.find(">0.5</text>"), std::string::npos);  // a y tick
}

TEST(SvgChartTest, StepLinesHoldEachValueUntilTheNextPoint) {
  const std::string svg = RenderLineChart({.id = "l",
                                           .title = "T",
                                           .steps = true,
                                           .series = {{.name = "n", .x = {0, 1}, .y = {0, 1}}}});
  // x 0 -> 64 px, x 1 -> 600 px; y 0 -> 244 px, y 1 (top 1) -> 40 px.
  EXPECT_NE(svg.find("data-points=\"2\""), std::string::npos);
  EXPECT_NE(svg.find("points=\"64.0,244.0 600.0,244.0 600.0,40.0\""), std::string::npos);
}

TEST(SvgChartTest, EmptyChartsStillRender) {
  EXPECT_NE(RenderLineChart({.id = "e"}).find("</svg>"), std::string::npos);
  EXPECT_NE(RenderBarChart({.id = "e"}).find("</svg>"), std::string::npos);
}

TEST(RenderHtmlTest, HasEveryChartWithItsMarks) {
  const std::string html = RenderHtml(BuildReport(testing::DemoLikeReportInputs()));
  for (const char* id : {"sharing-gpus", "team-cost", "cost-over-time", "budget-percent",
                         "pool-nodes", "placement"}) {
    EXPECT_EQ(Count(html, "data-chart=\"" + std::string(id) + "\""), 1u) << id;
  }
  // 2 teams x 3 series, 2 modes x 2 series, 2 Budgets.
  EXPECT_EQ(Count(html, "class=\"bar\""), 6u + 4u + 2u);
  EXPECT_EQ(Count(html, "class=\"line\""), 2u + 1u + 3u);
  EXPECT_NE(html.find("data-label=\"Interruption\""), std::string::npos);
  EXPECT_NE(html.find("data-figure=\"spot-saving\""), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Nothing fetched: the only URL is the SVG namespace.
  EXPECT_EQ(Count(html, "http"), Count(html, "http://www.w3.org/2000/svg"));
}

TEST(RenderHtmlTest, EscapesEveryStringFromTheCluster) {
  ReportInputs in = testing::DemoLikeReportInputs();
  const std::string evil = "<script>alert(\"x\")</script>";
  in.cluster = evil;
  in.costs[0].team = evil;
  in.pods[0].mode = evil;
  in.budgets[0].name = evil;
  in.alerts[0].summary = evil;
  in.alerts[0].channel = evil;
  in.denied[0] = evil;
  in.pools[0].name = evil;
  in.events[0].message = evil;
  in.events[1].name = evil;
  in.placement[0].policy = evil;
  in.reschedules[0].moves[0] = evil;
  in.profiles[0].containers[0].container = evil;
  in.profiles[0].message = evil;
  in.sharing_policies[0].name = evil;
  in.cost_series[0].team = evil;
  in.notes.push_back(evil);
  const std::string html = RenderHtml(BuildReport(in));
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("\"x\""), std::string::npos);
  EXPECT_GE(Count(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), 17u);
}

}  // namespace
}  // namespace gpu_autoscaler::report
