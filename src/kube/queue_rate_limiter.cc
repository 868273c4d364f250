#include "kube/queue_rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace gpu_autoscaler::kube {

using namespace std::chrono_literals;

ItemExponentialFailureRateLimiter::ItemExponentialFailureRateLimiter(Duration base, Duration max)
    : base_(base), max_(max) {}

QueueRateLimiter::Duration ItemExponentialFailureRateLimiter::When(const std::string& key) {
  int exp;
  {
    std::lock_guard<std::mutex> l(mu_);
    exp = failures_[key]++;
  }
  // Computed in double so that 2^exp cannot overflow an integer duration.
  const double backoff = static_cast<double>(base_.count()) * std::pow(2.0, exp);
  if (backoff >= static_cast<double>(max_.count())) return max_;
  return Duration(static_cast<Duration::rep>(backoff));
}

void ItemExponentialFailureRateLimiter::Forget(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  failures_.erase(key);
}

int ItemExponentialFailureRateLimiter::NumRequeues(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

BucketRateLimiter::BucketRateLimiter(double qps, int burst, Clock& clock)
    : qps_(qps), burst_(burst), clock_(clock), tokens_(burst), last_(clock.Now()) {}

QueueRateLimiter::Duration BucketRateLimiter::When(const std::string&) {
  std::lock_guard<std::mutex> l(mu_);
  const auto now = clock_.Now();
  if (now > last_) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
    last_ = now;
  }
  tokens_ -= 1;
  if (tokens_ >= 0) return 0s;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(-tokens_ / qps_));
}

MaxOfRateLimiter::MaxOfRateLimiter(std::vector<std::unique_ptr<QueueRateLimiter>> limiters)
    : limiters_(std::move(limiters)) {}

QueueRateLimiter::Duration MaxOfRateLimiter::When(const std::string& key) {
  Duration longest{0};
  // Every member must see the failure, so no short-circuit.
  for (auto& l : limiters_)
    longest = std::max(longest, l->When(key));
  return longest;
}

void MaxOfRateLimiter::Forget(const std::string& key) {
  for (auto& l : limiters_)
    l->Forget(key);
}

int MaxOfRateLimiter::NumRequeues(const std::string& key) {
  int most = 0;
  for (auto& l : limiters_)
    most = std::max(most, l->NumRequeues(key));
  return most;
}

std::unique_ptr<QueueRateLimiter> DefaultControllerRateLimiter(Clock& clock) {
  std::vector<std::unique_ptr<QueueRateLimiter>> limiters;
  limiters.push_back(std::make_unique<ItemExponentialFailureRateLimiter>(5ms, 1000s));
  limiters.push_back(std::make_unique<BucketRateLimiter>(10.0, 100, clock));
  return std::make_unique<MaxOfRateLimiter>(std::move(limiters));
}

}  // namespace gpu_autoscaler::kube
