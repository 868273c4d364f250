// The HTML report opened in headless Chromium (Debian's `chromium`): the page
// is screenshotted and the PNG decoded to find the charts' colours in their
// regions, and the DOM Chromium built is searched for every chart's SVG and
// its marks. Skipped when chromium is not installed (hack/install-deps.sh
// installs it).
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "report/render.h"
#include "report_fixture.h"
#include "support/child_process.h"

namespace gpu_autoscaler::report {
namespace {

constexpr int kWidth = 1400, kHeight = 3200;

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // 3 bytes a pixel, row by row
};

uint32_t BigEndian(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

// A non-interlaced 8-bit RGB or RGBA PNG (what Chromium writes), decoded.
std::optional<Image> DecodePng(const std::string& png) {
  if (png.size() < 33 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return std::nullopt;
  Image img;
  int channels = 0;
  std::string idat;
  for (size_t at = 8; at + 12 <= png.size();) {
    const uint32_t length = BigEndian(png, at);
    if (at + 12 + length > png.size()) return std::nullopt;
    const std::string type = png.substr(at + 4, 4);
    if (type == "IHDR") {
      img.width = static_cast<int>(BigEndian(png, at + 8));
      img.height = static_cast<int>(BigEndian(png, at + 12));
      const int depth = uint8_t(png[at + 16]), color = uint8_t(png[at + 17]);
      if (depth != 8 || (color != 2 && color != 6) || png[at + 20] != 0) return std::nullopt;
      channels = color == 2 ? 3 : 4;
    } else if (type == "IDAT") {
      idat += png.substr(at + 8, length);
    }
    at += 12 + length;
  }
  if (channels == 0 || img.width <= 0 || img.height <= 0) return std::nullopt;
  const size_t stride = static_cast<size_t>(img.width) * channels;
  std::vector<uint8_t> raw((stride + 1) * img.height);
  uLongf raw_size = raw.size();
  if (uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) !=
          Z_OK ||
      raw_size != raw.size()) {
    return std::nullopt;
  }
  std::vector<uint8_t> pixels(stride * img.height), prior(stride, 0);
  for (int y = 0; y < img.height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    uint8_t* out = &pixels[y * stride];
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= size_t(channels) ? out[x - channels] : 0;
      const int b = prior[x];
      const int c = x >= size_t(channels) ? prior[x - channels] : 0;
      int predictor = 0;
      switch (filter) {
        case 0:
          predictor = 0;
          break;
        case 1:
          predictor = a;
          break;
        case 2:
          predictor = b;
          break;
        case 3:
          predictor = (a + b) / 2;
          break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          return std::nullopt;
      }
      out[x] = static_cast<uint8_t>(in[x] + predictor);
    }
    std::copy(out, out + stride, prior.begin());
  }
  img.rgb.reserve(static_cast<size_t>(img.width) * img.height * 3);
  for (size_t i = 0; i < pixels.size(); i += channels)
    img.rgb.insert(img.rgb.end(), {pixels[i], pixels[i + 1], pixels[i + 2]});
  return img;
}

// Pixels within `tolerance` of the colour, per channel.
int CountColour(const Image& img, uint8_t r, uint8_t g, uint8_t b, int tolerance = 24) {
  int n = 0;
  for (size_t i = 0; i + 2 < img.rgb.size(); i += 3)
    if (std::abs(img.rgb[i] - r) <= tolerance && std::abs(img.rgb[i + 1] - g) <= tolerance &&
        std::abs(img.rgb[i + 2] - b) <= tolerance)
      ++n;
  return n;
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size()))
    ++n;
  return n;
}

class ReportChromiumTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = "/usr/bin/chromium";
    if (::access(chromium_.c_str(), X_OK) != 0 || ::access("/usr/bin/timeout", X_OK) != 0)
      GTEST_SKIP() << "chromium is not installed (Debian package chromium; hack/install-deps.sh)";
    dir_ = testing::MakeTempDir("gpa-report-chromium");
    page_ = dir_ + "/report.html";
    std::ofstream(page_) << RenderHtml(BuildReport(testing::DemoLikeReportInputs()));
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // Headless Chromium with its own profile directory, offline.
  testing::CommandResult Chromium(std::vector<std::string> args) {
    // Bounded: a Chromium that hangs fails the test (exit 124) instead of stalling it.
    std::vector<std::string> command = {"/usr/bin/timeout",
                                        "120",
                                        chromium_,
                                        "--headless",
                                        "--no-sandbox",
                                        "--disable-gpu",
                                        "--disable-dev-shm-usage",
                                        "--no-first-run",
                                        "--hide-scrollbars",
                                        "--user-data-dir=" + dir_ + "/profile"};
    command.insert(command.end(), args.begin(), args.end());
    command.push_back("file://" + page_);
    return testing::RunCommand(command);
  }

  std::string chromium_, dir_, page_;
};

TEST_F(ReportChromiumTest, RenderedDomHasEveryChartAndItsMarks) {
  const testing::CommandResult run = Chromium({"--dump-dom"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string& dom = run.out;
  for (const char* id : {"sharing-gpus", "team-cost", "cost-over-time", "budget-percent",
                         "pool-nodes", "placement"}) {
    EXPECT_EQ(Count(dom, "data-chart=\"" + std::string(id) + "\""), 1u) << id;
  }
  EXPECT_EQ(Count(dom, "class=\"bar\""), 12u);
  EXPECT_EQ(Count(dom, "class=\"line\""), 6u);
  EXPECT_NE(dom.find("data-series=\"FGD\" data-points=\"4\""), std::string::npos);
  EXPECT_NE(dom.find("data-series=\"actual\" data-label=\"vision\""), std::string::npos);
  // The denial's <blockNewGPUPods> stayed text: Chromium built no such element.
  EXPECT_EQ(dom.find("<blocknewgpupods>"), std::string::npos);
  EXPECT_NE(dom.find("&lt;blockNewGPUPods&gt;"), std::string::npos);
}

TEST_F(ReportChromiumTest, ScreenshotShowsTheChartsColours) {
  const std::string shot = dir_ + "/report.png";
  const testing::CommandResult run =
      Chromium({"--screenshot=" + shot,
                "--window-size=" + std::to_string(kWidth) + "," + std::to_string(kHeight)});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::ifstream in(shot, std::ios::binary);
  ASSERT_TRUE(in) << "no screenshot: " << run.err;
  const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_GT(png.size(), 20'000u);
  const std::optional<Image> img = DecodePng(png);
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(img->width, kWidth);
  EXPECT_EQ(img->height, kHeight);
  // The first series' blue (#2563eb) fills bars and draws lines; the second's
  // orange (#f97316) and the third's green (#16a34a) too. A page without its
  // charts has none of them beyond the legends' 10 x 10 squares.
  EXPECT_GT(CountColour(*img, 0x25, 0x63, 0xeb), 5'000);
  EXPECT_GT(CountColour(*img, 0xf9, 0x73, 0x16), 3'000);
  EXPECT_GT(CountColour(*img, 0x16, 0xa3, 0x4a), 1'000);
  // Mostly the page's light background: the charts did not paint everything.
  EXPECT_GT(CountColour(*img, 0xff, 0xff, 0xff, 8) + CountColour(*img, 0xf9, 0xfa, 0xfb, 4),
            kWidth * kHeight / 3);
}

}  // namespace
}  // namespace gpu_autoscaler::report
