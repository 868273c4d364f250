// Notification payloads, field by field, and each sender against a loopback
// server the test starts (HTTP for Slack/PagerDuty/webhook, SMTP for email).
#include "cost/notify.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "net/http_server.h"

namespace gpu_autoscaler::cost {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

BudgetNotification Fired() {
  BudgetNotification n;
  n.budget_name = "vision-monthly";
  n.budget_namespace = "ml";
  n.action = AlertAction::kFire;
  n.threshold_percent = 80;
  n.spend = 812.404;
  n.amount = 1000;
  n.forecast = 1190.5;
  n.currency = "USD";
  n.period = {1714521600, 1717200000};  // May 2024
  n.at = 1715778000;                    // 2024-05-15T13:00:00Z
  return n;
}

TEST(NotifyPayloads, MakeNotificationCopiesTheEvent) {
  Budget b;
  b.name = "x";
  b.ns = "y";
  b.spec.currency = "EUR";
  AlertEvent e{.action = AlertAction::kResolve,
               .threshold_percent = 50,
               .period = {10, 20},
               .spend = 7,
               .amount = 9,
               .at = 21};
  BudgetNotification n = MakeNotification(b, e, 12);
  EXPECT_EQ(n.budget_name, "x");
  EXPECT_EQ(n.budget_namespace, "y");
  EXPECT_EQ(n.action, AlertAction::kResolve);
  EXPECT_EQ(n.threshold_percent, 50);
  EXPECT_EQ(n.period, (PeriodWindow{10, 20}));
  EXPECT_EQ(n.spend, 7);
  EXPECT_EQ(n.amount, 9);
  EXPECT_EQ(n.forecast, 12);
  EXPECT_EQ(n.currency, "EUR");
  EXPECT_EQ(n.at, 21);
}

TEST(NotifyRedaction, UrlsKeepOnlySchemeAndHost) {
  EXPECT_EQ(RedactUrl("https://hooks.slack.com/services/T0/B0/XYZ"), "https://hooks.slack.com/...");
  EXPECT_EQ(RedactUrl("smtp://user:pa55@mail.example.com:587"), "smtp://mail.example.com:587");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:8080?key=1"), "http://127.0.0.1:8080/...");
  EXPECT_EQ(RedactUrl("not a url"), "<endpoint>");
}

TEST(NotifyPayloads, Slack) {
  json j = json::parse(SlackPayload(Fired()));
  EXPECT_EQ(j["text"], "Budget ml/vision-monthly reached 80% (812.40 USD of 1000.00 USD)");
  ASSERT_EQ(j["blocks"].size(), 3u);
  EXPECT_EQ(j["blocks"][0]["type"], "header");
  EXPECT_EQ(j["blocks"][0]["text"]["type"], "plain_text");
  EXPECT_EQ(j["blocks"][0]["text"]["text"], "Budget alert: ml/vision-monthly at 80%");
  const json& fields = j["blocks"][1]["fields"];
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[0]["type"], "mrkdwn");
  EXPECT_EQ(fields[0]["text"], "*Spend*\n812.40 USD");
  EXPECT_EQ(fields[1]["text"], "*Budget*\n1000.00 USD");
  EXPECT_EQ(fields[2]["text"], "*Threshold*\n80%");
  EXPECT_EQ(fields[3]["text"], "*Forecast (end of period)*\n1190.50 USD");
  EXPECT_EQ(j["blocks"][2]["elements"][0]["text"],
            "Period 2024-05-01T00:00:00Z to 2024-06-01T00:00:00Z");
}

TEST(NotifyPayloads, PagerDutyTriggerAndResolveShareTheDedupKey) {
  BudgetNotification n = Fired();
  json trigger = json::parse(PagerDutyPayload(n, "R0UT1NG"));
  EXPECT_EQ(trigger["routing_key"], "R0UT1NG");
  EXPECT_EQ(trigger["event_action"], "trigger");
  EXPECT_EQ(trigger["dedup_key"], "gpu-autoscaler/budget/ml/vision-monthly/80/1714521600");
  const json& p = trigger["payload"];
  EXPECT_EQ(p["summary"], "Budget ml/vision-monthly reached 80% (812.40 USD of 1000.00 USD)");
  EXPECT_EQ(p["source"], "gpu-autoscaler");
  EXPECT_EQ(p["severity"], "warning");
  EXPECT_EQ(p["timestamp"], "2024-05-15T13:00:00Z");
  EXPECT_EQ(p["component"], "budget");
  EXPECT_EQ(p["group"], "ml");
  EXPECT_EQ(p["class"], "budget-threshold");
  EXPECT_EQ(p["custom_details"]["spend"], 812.4);
  EXPECT_EQ(p["custom_details"]["amount"], 1000.0);
  EXPECT_EQ(p["custom_details"]["forecast"], 1190.5);
  EXPECT_EQ(p["custom_details"]["currency"], "USD");
  EXPECT_EQ(p["custom_details"]["period_end"], "2024-06-01T00:00:00Z");

  n.threshold_percent = 100;
  EXPECT_EQ(json::parse(PagerDutyPayload(n, "k"))["payload"]["severity"], "critical");

  n = Fired();
  n.action = AlertAction::kResolve;
  json resolve = json::parse(PagerDutyPayload(n, "R0UT1NG"));
  EXPECT_EQ(resolve["event_action"], "resolve");
  EXPECT_EQ(resolve["dedup_key"], trigger["dedup_key"]);
  EXPECT_FALSE(resolve.contains("payload"));
}

TEST(NotifyPayloads, WebhookBodyAndSignature) {
  json j = json::parse(WebhookPayload(Fired()));
  EXPECT_EQ(j["apiVersion"], "gpuautoscaler.io/v1alpha1");
  EXPECT_EQ(j["kind"], "BudgetAlert");
  EXPECT_EQ(j["action"], "fire");
  EXPECT_EQ(j["budget"]["name"], "vision-monthly");
  EXPECT_EQ(j["budget"]["namespace"], "ml");
  EXPECT_EQ(j["thresholdPercent"], 80.0);
  EXPECT_EQ(j["spend"], 812.4);
  EXPECT_EQ(j["amount"], 1000.0);
  EXPECT_EQ(j["forecast"], 1190.5);
  EXPECT_EQ(j["currency"], "USD");
  EXPECT_EQ(j["period"]["start"], "2024-05-01T00:00:00Z");
  EXPECT_EQ(j["period"]["end"], "2024-06-01T00:00:00Z");
  EXPECT_EQ(j["time"], "2024-05-15T13:00:00Z");
  BudgetNotification unknown = Fired();
  unknown.forecast = -1;
  EXPECT_TRUE(json::parse(WebhookPayload(unknown))["forecast"].is_null());

  // RFC 4231 test case 2.
  EXPECT_EQ(WebhookSignature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(NotifyPayloads, EmailIsAnRfc5322Message) {
  EmailOptions o{.smtp_url = "smtp://127.0.0.1:1",
                 .from = "gpu-autoscaler@example.com",
                 .to = {"a@example.com", "b@example.com"}};
  std::string m = EmailMessage(Fired(), o);
  size_t split = m.find("\r\n\r\n");
  ASSERT_NE(split, std::string::npos);
  std::string headers = m.substr(0, split + 2);
  EXPECT_THAT(headers, HasSubstr("Date: Wed, 15 May 2024 13:00:00 +0000\r\n"));
  EXPECT_THAT(headers, HasSubstr("From: gpu-autoscaler@example.com\r\n"));
  EXPECT_THAT(headers, HasSubstr("To: a@example.com, b@example.com\r\n"));
  EXPECT_THAT(headers, HasSubstr("Subject: [gpu-autoscaler] Budget ml/vision-monthly reached 80% "
                                 "(812.40 USD of 1000.00 USD)\r\n"));
  EXPECT_THAT(headers,
              HasSubstr("Message-ID: <budget.ml.vision-monthly.80.1714521600.fire@gpuautoscaler.io>"
                        "\r\n"));
  EXPECT_THAT(headers, HasSubstr("MIME-Version: 1.0\r\n"));
  EXPECT_THAT(headers, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  std::string body = m.substr(split + 4);
  EXPECT_THAT(body, HasSubstr("Forecast:   1190.50 USD\r\n"));
  EXPECT_THAT(body, HasSubstr("Period:     2024-05-01T00:00:00Z to 2024-06-01T00:00:00Z\r\n"));
  // Every line ends in CRLF; no bare LF.
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] != '\n') continue;
    ASSERT_GT(i, 0u);
    ASSERT_EQ(m[i - 1], '\r') << "bare LF at " << i;
  }
}

// Records every request; answers with `status`.
class CaptureServer {
 public:
  explicit CaptureServer(int status = 200) : status_(status) {
    auto server =
        net::HttpServer::Start({}, [this](const net::ServerRequest& r, net::ResponseWriter& w) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            requests_.push_back(r);
          }
          w.Respond(status_, "text/plain", status_ < 300 ? "ok" : "nope");
        });
    EXPECT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(server).value();
  }
  ~CaptureServer() { server_->Stop(); }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  std::vector<net::ServerRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  int status_;
  std::mutex mu_;
  std::vector<net::ServerRequest> requests_;
  std::unique_ptr<net::HttpServer> server_;
};

TEST(NotifySenders, SlackPostsThePayload) {
  CaptureServer server;
  Notifier notifier;
  ASSERT_TRUE(notifier.SendSlack(Fired(), {.webhook_url = server.url("/services/T/B/X")}).ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, "/services/T/B/X");
  EXPECT_EQ(reqs[0].Header("Content-Type"), "application/json");
  EXPECT_EQ(reqs[0].body, SlackPayload(Fired()));
}

TEST(NotifySenders, PagerDutyTriggerThenResolve) {
  CaptureServer server;
  Notifier notifier;
  PagerDutyTarget target{.routing_key = "R0UT1NG", .events_url = server.url("/v2/enqueue")};
  BudgetNotification n = Fired();
  ASSERT_TRUE(notifier.SendPagerDuty(n, target).ok());
  n.action = AlertAction::kResolve;
  ASSERT_TRUE(notifier.SendPagerDuty(n, target).ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  json a = json::parse(reqs[0].body), b = json::parse(reqs[1].body);
  EXPECT_EQ(reqs[0].path, "/v2/enqueue");
  EXPECT_EQ(a["event_action"], "trigger");
  EXPECT_EQ(b["event_action"], "resolve");
  EXPECT_EQ(a["dedup_key"], b["dedup_key"]);
  EXPECT_EQ(b["routing_key"], "R0UT1NG");
  EXPECT_FALSE(notifier.SendPagerDuty(n, {.routing_key = ""}).ok());
}

TEST(NotifySenders, WebhookIsSignedOverTheExactBody) {
  CaptureServer server;
  Notifier notifier;
  ASSERT_TRUE(notifier.SendWebhook(Fired(), {.url = server.url("/hook"), .secret = "s3cret"}).ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  std::string_view sig = reqs[0].Header("X-GPU-Autoscaler-Signature");
  EXPECT_EQ(sig, WebhookSignature("s3cret", reqs[0].body));
  EXPECT_EQ(sig.substr(0, 7), "sha256=");
  EXPECT_EQ(sig.size(), 7u + 64u);
  EXPECT_NE(sig, WebhookSignature("wrong", reqs[0].body));
  EXPECT_EQ(json::parse(reqs[0].body)["budget"]["name"], "vision-monthly");
}

TEST(NotifySenders, HttpErrorsBecomeStatuses) {
  Notifier notifier;
  {
    CaptureServer failing(503);
    Status s = notifier.SendSlack(Fired(), {.webhook_url = failing.url("/x")});
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);
    EXPECT_THAT(s.message(), HasSubstr("HTTP 503"));
  }
  {
    CaptureServer rejecting(400);
    Status s = notifier.SendWebhook(Fired(), {.url = rejecting.url("/x"), .secret = "k"});
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(notifier.SendSlack(Fired(), {.webhook_url = ""}).code(), StatusCode::kInvalidArgument);
}

// A minimal SMTP server for one session on 127.0.0.1: records the envelope
// and the DATA payload.
class SmtpResponder {
 public:
  SmtpResponder() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_fd_, 1), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~SmtpResponder() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<std::string> commands() {
    std::lock_guard<std::mutex> lock(mu_);
    return commands_;
  }
  std::string data() {
    std::lock_guard<std::mutex> lock(mu_);
    return data_;
  }

 private:
  void Serve() {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::string buffer;
    auto send = [&](std::string_view s) { (void)!::write(fd, s.data(), s.size()); };
    auto read_more = [&]() {
      char chunk[4096];
      ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(n));
      return true;
    };
    send("220 localhost ESMTP test\r\n");
    bool in_data = false;
    while (true) {
      if (in_data) {
        size_t end = buffer.find("\r\n.\r\n");
        if (end == std::string::npos) {
          if (!read_more()) break;
          continue;
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          data_ = buffer.substr(0, end + 2);
        }
        buffer.erase(0, end + 5);
        in_data = false;
        send("250 OK queued\r\n");
        continue;
      }
      size_t eol = buffer.find("\r\n");
      if (eol == std::string::npos) {
        if (!read_more()) break;
        continue;
      }
      std::string line = buffer.substr(0, eol);
      buffer.erase(0, eol + 2);
      {
        std::lock_guard<std::mutex> lock(mu_);
        commands_.push_back(line);
      }
      if (line.rfind("EHLO", 0) == 0) {
        send("250-localhost\r\n250 8BITMIME\r\n");
      } else if (line == "DATA") {
        in_data = true;
        send("354 End data with <CR><LF>.<CR><LF>\r\n");
      } else if (line == "QUIT") {
        send("221 Bye\r\n");
        break;
      } else {
        send("250 OK\r\n");
      }
    }
    ::close(fd);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> commands_;
  std::string data_;
};

TEST(NotifySenders, EmailOverSmtp) {
  SmtpResponder smtp;
  Notifier notifier;
  EmailOptions o{.smtp_url = "smtp://127.0.0.1:" + std::to_string(smtp.port()),
                 .from = "gpu-autoscaler@example.com",
                 .to = {"a@example.com", "b@example.com"}};
  Status s = notifier.SendEmail(Fired(), o);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::string> cmds = smtp.commands();
  ASSERT_GE(cmds.size(), 5u);
  EXPECT_EQ(cmds[0].substr(0, 4), "EHLO");
  EXPECT_EQ(cmds[1], "MAIL FROM:<gpu-autoscaler@example.com>");
  EXPECT_EQ(cmds[2], "RCPT TO:<a@example.com>");
  EXPECT_EQ(cmds[3], "RCPT TO:<b@example.com>");
  EXPECT_EQ(cmds[4], "DATA");
  EXPECT_EQ(smtp.data(), EmailMessage(Fired(), o));
}

TEST(NotifySenders, EmailRejectsHeaderInjection) {
  Notifier notifier;
  EmailOptions o{.smtp_url = "smtp://127.0.0.1:1",
                 .from = "a@example.com",
                 .to = {"b@example.com\r\nBcc: evil@example.com"}};
  EXPECT_EQ(notifier.SendEmail(Fired(), o).code(), StatusCode::kInvalidArgument);
  o.to.clear();
  EXPECT_EQ(notifier.SendEmail(Fired(), o).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpu_autoscaler::cost
