#include "cost/notify.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::cost {

namespace {

std::string Money(double v, const std::string& currency) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f %s", v, currency.c_str());
  return buf;
}

std::string Percent(double p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g%%", p);
  return buf;
}

std::string BudgetRef(const BudgetNotification& n) {
  return n.budget_namespace.empty() ? n.budget_name : n.budget_namespace + "/" + n.budget_name;
}

// Rounds to cents so that payloads do not carry binary-float noise.
double Cents(double v) {
  return std::round(v * 100.0) / 100.0;
}

}  // namespace

BudgetNotification MakeNotification(const Budget& budget, const AlertEvent& event,
                                    double forecast) {
  BudgetNotification n;
  n.budget_kind = budget.kind;
  n.budget_name = budget.name;
  n.budget_namespace = budget.ns;
  n.action = event.action;
  n.threshold_percent = event.threshold_percent;
  n.spend = event.spend;
  n.amount = event.amount;
  n.forecast = forecast;
  n.currency = budget.spec.currency;
  n.period = event.period;
  n.at = event.at;
  return n;
}

std::string NotificationSummary(const BudgetNotification& n) {
  std::string s = std::string(BudgetKindName(n.budget_kind)) + " " + BudgetRef(n);
  if (n.action == AlertAction::kFire) {
    s += " reached " + Percent(n.threshold_percent) + " (" + Money(n.spend, n.currency) + " of " +
         Money(n.amount, n.currency) + ")";
  } else {
    s += " " + Percent(n.threshold_percent) + " alert resolved: period ended at " +
         FormatRfc3339(n.period.end) + " (" + Money(n.spend, n.currency) + " of " +
         Money(n.amount, n.currency) + ")";
  }
  if (!n.cluster.empty()) s += " in cluster " + n.cluster;
  return s;
}

std::string SlackPayload(const BudgetNotification& n) {
  using nlohmann::json;
  std::string title = n.action == AlertAction::kFire
                          ? "Budget alert: " + BudgetRef(n) + " at " + Percent(n.threshold_percent)
                          : "Budget alert resolved: " + BudgetRef(n);
  json fields = json::array({
      {{"type", "mrkdwn"}, {"text", "*Spend*\n" + Money(n.spend, n.currency)}},
      {{"type", "mrkdwn"}, {"text", "*Budget*\n" + Money(n.amount, n.currency)}},
      {{"type", "mrkdwn"}, {"text", "*Threshold*\n" + Percent(n.threshold_percent)}},
  });
  if (n.forecast >= 0) {
    fields.push_back({{"type", "mrkdwn"},
                      {"text", "*Forecast (end of period)*\n" + Money(n.forecast, n.currency)}});
  }
  json payload = {
      {"text", NotificationSummary(n)},
      {"blocks",
       json::array({
           {{"type", "header"}, {"text", {{"type", "plain_text"}, {"text", title}}}},
           {{"type", "section"}, {"fields", fields}},
           {{"type", "context"},
            {"elements", json::array({{{"type", "mrkdwn"},
                                       {"text", "Period " + FormatRfc3339(n.period.start) + " to " +
                                                    FormatRfc3339(n.period.end)}}})}},
       })},
  };
  return payload.dump();
}

std::string PagerDutyDedupKey(const BudgetNotification& n) {
  char threshold[32];
  std::snprintf(threshold, sizeof(threshold), "%g", n.threshold_percent);
  const std::string scope = n.budget_kind == BudgetKind::kClusterBudget
                                ? "clusterbudget"
                                : "budget/" + n.budget_namespace;
  return "gpu-autoscaler/" + scope + "/" + n.budget_name + "/" + threshold + "/" +
         std::to_string(n.period.start);
}

std::string PagerDutyPayload(const BudgetNotification& n, std::string_view routing_key) {
  using nlohmann::json;
  json payload = {
      {"routing_key", std::string(routing_key)},
      {"event_action", n.action == AlertAction::kFire ? "trigger" : "resolve"},
      {"dedup_key", PagerDutyDedupKey(n)},
  };
  if (n.action == AlertAction::kFire) {
    json details = {
        {"budget", BudgetRef(n)},
        {"threshold_percent", n.threshold_percent},
        {"spend", Cents(n.spend)},
        {"amount", Cents(n.amount)},
        {"currency", n.currency},
        {"period_start", FormatRfc3339(n.period.start)},
        {"period_end", FormatRfc3339(n.period.end)},
    };
    if (n.forecast >= 0) details["forecast"] = Cents(n.forecast);
    payload["payload"] = {
        {"summary", NotificationSummary(n)},
        {"source", n.cluster.empty() ? std::string("gpu-autoscaler") : n.cluster},
        {"severity", n.threshold_percent >= 100 ? "critical" : "warning"},
        {"timestamp", FormatRfc3339(n.at)},
        {"component", "budget"},
        {"group", n.budget_namespace},
        {"class", "budget-threshold"},
        {"custom_details", details},
    };
  }
  return payload.dump();
}

std::string WebhookPayload(const BudgetNotification& n) {
  using nlohmann::json;
  json payload = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "BudgetAlert"},
      {"action", std::string(AlertActionName(n.action))},
      {"budget",
       {{"kind", std::string(BudgetKindName(n.budget_kind))},
        {"name", n.budget_name},
        {"namespace", n.budget_namespace}}},
      {"thresholdPercent", n.threshold_percent},
      {"spend", Cents(n.spend)},
      {"amount", Cents(n.amount)},
      {"currency", n.currency},
      {"forecast", n.forecast >= 0 ? json(Cents(n.forecast)) : json(nullptr)},
      {"period", {{"start", FormatRfc3339(n.period.start)}, {"end", FormatRfc3339(n.period.end)}}},
      {"time", FormatRfc3339(n.at)},
      {"summary", NotificationSummary(n)},
  };
  if (!n.cluster.empty()) payload["cluster"] = n.cluster;
  return payload.dump();
}

std::string WebhookSignature(std::string_view secret, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xf];
  }
  return out;
}

namespace {

// "Wed, 01 May 2024 00:00:00 +0000" (RFC 5322 section 3.3).
std::string Rfc5322Date(int64_t unix_second) {
  std::time_t t = static_cast<std::time_t>(unix_second);
  std::tm tm{};
  gmtime_r(&t, &tm);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

bool HasLineBreak(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

// Keeps header values on one line whatever a Budget's fields contain.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return s;
}

}  // namespace

std::string EmailMessage(const BudgetNotification& n, const EmailOptions& o) {
  std::string to;
  for (const std::string& addr : o.to) {
    if (!to.empty()) to += ", ";
    to += OneLine(addr);
  }
  char threshold[32];
  std::snprintf(threshold, sizeof(threshold), "%g", n.threshold_percent);
  const std::string scope = n.budget_kind == BudgetKind::kClusterBudget
                                ? "clusterbudget"
                                : "budget." + n.budget_namespace;
  std::string message_id = "<" + scope + "." + n.budget_name + "." + threshold + "." +
                           std::to_string(n.period.start) + "." +
                           std::string(AlertActionName(n.action)) + "@" + o.message_id_domain + ">";
  std::string m;
  m += "Date: " + Rfc5322Date(n.at) + "\r\n";
  m += "From: " + OneLine(o.from) + "\r\n";
  m += "To: " + to + "\r\n";
  m += "Subject: [gpu-autoscaler] " + OneLine(NotificationSummary(n)) + "\r\n";
  m += "Message-ID: " + OneLine(message_id) + "\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: 8bit\r\n";
  m += "\r\n";
  m += NotificationSummary(n) + ".\r\n";
  m += "\r\n";
  m += "Budget:     " + BudgetRef(n) + "\r\n";
  m += "Threshold:  " + Percent(n.threshold_percent) + "\r\n";
  m += "Spend:      " + Money(n.spend, n.currency) + "\r\n";
  m += "Amount:     " + Money(n.amount, n.currency) + "\r\n";
  if (n.forecast >= 0) m += "Forecast:   " + Money(n.forecast, n.currency) + "\r\n";
  m += "Period:     " + FormatRfc3339(n.period.start) + " to " + FormatRfc3339(n.period.end) +
       "\r\n";
  return m;
}

namespace {

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

size_t DiscardBody(char*, size_t size, size_t nmemb, void*) {
  return size * nmemb;
}

struct UploadCursor {
  const std::string* data;
  size_t offset = 0;
};
}  // namespace

std::string RedactUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "<endpoint>";
  std::string_view rest = url.substr(scheme_end + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);  // drop user:password
  }
  std::string out = std::string(url.substr(0, scheme_end + 3)) + std::string(authority);
  if (authority_end != std::string_view::npos) out += "/...";
  return out;
}

namespace {

size_t ReadUpload(char* buffer, size_t size, size_t nmemb, void* user) {
  auto* cur = static_cast<UploadCursor*>(user);
  size_t n = std::min(size * nmemb, cur->data->size() - cur->offset);
  std::memcpy(buffer, cur->data->data() + cur->offset, n);
  cur->offset += n;
  return n;
}

Status HttpStatusToError(long code, const std::string& url) {
  if (code >= 200 && code < 300) return Status::Ok();
  std::string m = "POST " + RedactUrl(url) + ": HTTP " + std::to_string(code);
  if (code >= 500 || code == 429) return UnavailableError(m);
  return FailedPreconditionError(m);
}

}  // namespace

Notifier::Notifier(NotifierOptions options) : options_(std::move(options)) {
  CurlGlobalInit();
}

Status Notifier::PostJson(const std::string& url, const std::string& body,
                          const std::vector<std::string>& extra_headers) const {
  if (url.empty()) return InvalidArgumentError("notification endpoint URL is empty");
  CurlPtr curl(curl_easy_init());
  if (!curl) return InternalError("curl_easy_init failed");
  curl_slist* raw = curl_slist_append(nullptr, "Content-Type: application/json");
  for (const std::string& h : extra_headers)
    raw = curl_slist_append(raw, h.c_str());
  SlistPtr headers(raw);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return UnavailableError("POST " + RedactUrl(url) + ": " + curl_easy_strerror(rc));
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  return HttpStatusToError(code, url);
}

Status Notifier::SendSlack(const BudgetNotification& n, const SlackTarget& target) const {
  return PostJson(target.webhook_url, SlackPayload(n), {});
}

Status Notifier::SendPagerDuty(const BudgetNotification& n, const PagerDutyTarget& target) const {
  if (target.routing_key.empty()) return InvalidArgumentError("PagerDuty routing key is empty");
  return PostJson(target.events_url, PagerDutyPayload(n, target.routing_key), {});
}

Status Notifier::SendWebhook(const BudgetNotification& n, const WebhookTarget& target) const {
  std::string body = WebhookPayload(n);
  std::vector<std::string> headers;
  if (!target.secret.empty()) {
    headers.push_back(std::string(kSignatureHeader) + ": " + WebhookSignature(target.secret, body));
  }
  if (!target.idempotency_key.empty()) {
    headers.push_back(std::string(kIdempotencyKeyHeader) + ": " + target.idempotency_key);
  }
  return PostJson(target.url, body, headers);
}

Status Notifier::SendEmail(const BudgetNotification& n, const EmailOptions& o) const {
  if (o.smtp_url.empty()) return InvalidArgumentError("SMTP URL is empty");
  if (o.from.empty() || HasLineBreak(o.from)) return InvalidArgumentError("bad sender address");
  if (o.to.empty()) return InvalidArgumentError("email needs at least one recipient");
  for (const std::string& addr : o.to) {
    if (addr.empty() || HasLineBreak(addr)) {
      return InvalidArgumentError("bad recipient address \"" + OneLine(addr) + "\"");
    }
  }
  std::string message = EmailMessage(n, o);
  CurlPtr curl(curl_easy_init());
  if (!curl) return InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  curl_slist* raw = nullptr;
  for (const std::string& addr : o.to)
    raw = curl_slist_append(raw, ("<" + addr + ">").c_str());
  SlistPtr rcpt(raw);
  std::string from = "<" + o.from + ">";
  UploadCursor cursor{&message};
  curl_easy_setopt(c, CURLOPT_URL, o.smtp_url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadUpload);
  curl_easy_setopt(c, CURLOPT_READDATA, &cursor);
  curl_easy_setopt(c, CURLOPT_INFILESIZE, static_cast<long>(message.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (!o.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, o.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, o.password.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return UnavailableError("SMTP " + RedactUrl(o.smtp_url) + ": " + curl_easy_strerror(rc));
  }
  return Status::Ok();
}

}  // namespace gpu_autoscaler::cost
