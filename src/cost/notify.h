// File: src/cost/notify.h
//
// Budget notifications: payload builders (pure, testable field by field) and
// senders for Slack incoming webhooks, PagerDuty Events API v2, a generic
// HMAC-signed webhook, and email over SMTP. Endpoints are plain URLs, so tests
// point them at loopback servers.
//
//   BudgetNotification n = MakeNotification(budget, event, forecast);
//   Notifier notifier;                                   // libcurl, 10 s timeout
//   Status s = notifier.SendSlack(n, {.webhook_url = url_from_secret});
//   s = notifier.SendPagerDuty(n, {.routing_key = key});  // trigger or resolve
//   s = notifier.SendWebhook(n, {.url = u, .secret = hmac_key});
//   s = notifier.SendEmail(n, {.smtp_url = "smtp://mail:25", .from = f, .to = {t}});
//
// The generic webhook carries `X-GPU-Autoscaler-Signature: sha256=<hex>`, the
// HMAC-SHA256 of the exact body under the shared secret. PagerDuty trigger
// and resolve share the dedup key "<ns>/<budget>/<threshold>/<period start>"
// (a ClusterBudget's: "clusterbudget/<name>/<threshold>/<period start>").
//
// Thread-safety: builders are pure; a Notifier may be used from many threads
// (each send uses its own curl handle).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cost/alerts.h"
#include "cost/budget.h"

namespace gpu_autoscaler::cost {

struct BudgetNotification {
  BudgetKind budget_kind = BudgetKind::kBudget;
  std::string budget_name{};
  std::string budget_namespace{};
  AlertAction action = AlertAction::kFire;
  double threshold_percent = 0;
  double spend = 0;
  double amount = 0;
  double forecast = -1;  // end-of-period forecast; < 0 when unknown
  std::string currency = "USD";
  PeriodWindow period{};
  int64_t at = 0;            // Unix seconds
  std::string cluster = "";  // optional, shown in messages
};

BudgetNotification MakeNotification(const Budget& budget, const AlertEvent& event,
                                    double forecast = -1);

// One-line human summary: "Budget ml/gpu-monthly reached 80% (812.40 of 1000.00 USD) ...".
std::string NotificationSummary(const BudgetNotification& n);

// "https://hooks.slack.com/..." for "https://hooks.slack.com/services/T0/B0/XYZ":
// scheme and host only, since the path, query and user info of a notification
// endpoint are often its credential. Every error message uses it.
std::string RedactUrl(std::string_view url);

std::string SlackPayload(const BudgetNotification& n);
std::string PagerDutyDedupKey(const BudgetNotification& n);
std::string PagerDutyPayload(const BudgetNotification& n, std::string_view routing_key);
std::string WebhookPayload(const BudgetNotification& n);
// "sha256=<lowercase hex HMAC-SHA256(secret, body)>".
std::string WebhookSignature(std::string_view secret, std::string_view body);
inline constexpr std::string_view kSignatureHeader = "X-GPU-Autoscaler-Signature";

struct EmailOptions {
  std::string smtp_url{};  // smtp://host:port (smtps:// for implicit TLS)
  std::string from{};
  std::vector<std::string> to{};
  std::string username = "";  // optional SMTP AUTH
  std::string password = "";
  std::string message_id_domain = "gpuautoscaler.io";
};
// RFC 5322 message (CRLF line ends): Date, From, To, Subject, Message-ID,
// MIME-Version, Content-Type, then the body.
std::string EmailMessage(const BudgetNotification& n, const EmailOptions& options);

struct SlackTarget {
  std::string webhook_url{};
};
struct PagerDutyTarget {
  std::string routing_key{};
  std::string events_url = "https://events.pagerduty.com/v2/enqueue";
};
struct WebhookTarget {
  std::string url{};
  std::string secret{};
  // Sent as `Idempotency-Key` so a receiver can drop a repeated delivery
  // (the controller re-sends with the same key after a crash).
  std::string idempotency_key = "";
};
inline constexpr std::string_view kIdempotencyKeyHeader = "Idempotency-Key";

struct NotifierOptions {
  std::chrono::milliseconds timeout{10'000};
  std::string user_agent = "gpu-autoscaler";
};

class Notifier {
 public:
  explicit Notifier(NotifierOptions options = {});

  // Non-2xx answers are Unavailable (5xx, 429) or FailedPrecondition (other 4xx).
  Status SendSlack(const BudgetNotification& n, const SlackTarget& target) const;
  Status SendPagerDuty(const BudgetNotification& n, const PagerDutyTarget& target) const;
  Status SendWebhook(const BudgetNotification& n, const WebhookTarget& target) const;
  Status SendEmail(const BudgetNotification& n, const EmailOptions& options) const;

 private:
  Status PostJson(const std::string& url, const std::string& body,
                  const std::vector<std::string>& extra_headers) const;
  NotifierOptions options_;
};

}  // namespace gpu_autoscaler::cost
