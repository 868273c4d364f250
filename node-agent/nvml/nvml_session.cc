#include "node-agent/nvml/nvml_session.h"

#include <condition_variable>
#include <functional>
#include <thread>

#include "node-agent/nvml/nvml_library.h"
#include "node-agent/nvml/nvml_reader.h"

namespace gpu_autoscaler::node_agent::nvml {

std::string_view NvmlStateName(NvmlState s) {
  switch (s) {
    case NvmlState::kNoLibrary:
      return "NoLibrary";
    case NvmlState::kInitFailed:
      return "InitFailed";
    case NvmlState::kUp:
      return "Up";
    case NvmlState::kFailed:
      return "Failed";
    case NvmlState::kHung:
      return "Hung";
  }
  return "Unknown";
}

// The thread every NVML call runs on, and what it shares with the session.
// Held by shared_ptr from both sides, so a session that gives up on a stuck
// call can go away while the thread is still inside NVML.
struct NvmlSession::Worker {
  std::mutex mu;
  std::condition_variable cv;
  std::function<void()> job;  // pending, taken by the thread
  bool busy = false;          // a job is pending or running
  uint64_t finished = 0;      // jobs completed
  bool stop = false;
  std::unique_ptr<NvmlLibrary> lib;
  std::unique_ptr<NvmlReader> reader;
  std::thread thread;

  static void Loop(std::shared_ptr<Worker> self) {
    std::unique_lock<std::mutex> lock(self->mu);
    while (true) {
      self->cv.wait(lock, [&] { return self->stop || self->job; });
      if (!self->job) return;  // stop with nothing pending
      std::function<void()> job = std::move(self->job);
      self->job = nullptr;
      lock.unlock();
      job();
      lock.lock();
      self->busy = false;
      ++self->finished;
      self->cv.notify_all();
      if (self->stop) return;
    }
  }
};

NvmlSession::NvmlSession(NvmlSessionOptions options)
    : options_(std::move(options)), worker_(std::make_shared<Worker>()) {
  worker_->thread = std::thread(&Worker::Loop, worker_);
}

std::unique_ptr<NvmlSession> NvmlSession::Open(NvmlSessionOptions options) {
  std::unique_ptr<NvmlSession> session(new NvmlSession(std::move(options)));
  (void)session->EnsureReady();
  return session;
}

NvmlSession::~NvmlSession() {
  bool stuck = false;
  {
    std::lock_guard<std::mutex> lock(worker_->mu);
    stuck = worker_->busy;
  }
  if (!stuck && initialised_) {
    Worker* w = worker_.get();
    stuck = !RunBounded("nvmlShutdown", [w] { return w->lib->Shutdown(); }).ok() &&
            state() == NvmlState::kHung;
  }
  {
    std::lock_guard<std::mutex> lock(worker_->mu);
    worker_->stop = true;
    stuck = stuck || worker_->busy;
    if (stuck && worker_->lib) worker_->lib->Leak();  // a thread may still be inside it
  }
  worker_->cv.notify_all();
  if (stuck) {
    worker_->thread.detach();
  } else {
    worker_->thread.join();
  }
}

void NvmlSession::SetState(NvmlState state, Status error) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = state;
  error_ = std::move(error);
}

NvmlState NvmlSession::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

Status NvmlSession::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

uint64_t NvmlSession::timeouts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return timeouts_;
}

Status NvmlSession::RunBounded(const std::string& what, std::function<Status()> job) {
  auto result = std::make_shared<Status>(InternalError(what + ": did not run"));
  uint64_t ticket = 0;
  {
    std::unique_lock<std::mutex> lock(worker_->mu);
    if (worker_->busy) {
      const std::string call = worker_->lib ? worker_->lib->CurrentCall() : "";
      Status hung = DeadlineExceededError("NVML call " + (call.empty() ? what : call) +
                                          " is still running; skipping this poll");
      lock.unlock();
      SetState(NvmlState::kHung, hung);
      return hung;
    }
    worker_->busy = true;
    ticket = worker_->finished + 1;
    worker_->job = [result, job = std::move(job)] { *result = job(); };
    worker_->cv.notify_all();
    const Clock::TimePoint deadline = options_.clock->Now() + options_.call_timeout;
    while (worker_->finished < ticket) {
      if (options_.clock->Now() >= deadline) {
        const std::string call = worker_->lib ? worker_->lib->CurrentCall() : "";
        Status hung = DeadlineExceededError(
            "NVML call " + (call.empty() ? what : call) + " did not return within " +
            std::to_string(options_.call_timeout.count()) + "ms; NVML marked unavailable");
        lock.unlock();
        {
          std::lock_guard<std::mutex> state_lock(mu_);
          ++timeouts_;
        }
        SetState(NvmlState::kHung, hung);
        return hung;
      }
      options_.clock->WaitUntil(lock, worker_->cv, deadline);
    }
  }
  return *result;
}

Status NvmlSession::EnsureReady() {
  if (initialised_) return Status::Ok();
  const Clock::TimePoint now = options_.clock->Now();
  if (attempted_ && now < next_attempt_) return last_error();
  attempted_ = true;
  next_attempt_ = now + options_.retry_interval;
  Worker* w = worker_.get();
  if (!w->lib) {
    auto lib = NvmlLibrary::Load(options_.library_path);
    if (!lib.ok()) {
      SetState(NvmlState::kNoLibrary, UnavailableError(lib.error().message()));
      return last_error();
    }
    std::lock_guard<std::mutex> lock(w->mu);
    w->lib = std::move(lib).value();
    w->reader = std::make_unique<NvmlReader>(*w->lib);
  }
  Status init = RunBounded("nvmlInit_v2", [w] { return w->lib->Init(); });
  if (!init.ok()) {
    if (state() != NvmlState::kHung) {
      SetState(NvmlState::kInitFailed, UnavailableError(init.message()));
    }
    return last_error();
  }
  initialised_ = true;
  SetState(NvmlState::kUp, Status::Ok());
  return Status::Ok();
}

Result<GpuSnapshot> NvmlSession::Poll() {
  {
    // A stuck init or read that has since returned: go on from where it was.
    std::lock_guard<std::mutex> lock(worker_->mu);
    if (!worker_->busy && state() == NvmlState::kHung && !initialised_) attempted_ = false;
  }
  GPU_RETURN_IF_ERROR(EnsureReady());
  auto snapshot = std::make_shared<Result<GpuSnapshot>>(InternalError("no snapshot"));
  Worker* w = worker_.get();
  Status run = RunBounded("nvml poll", [w, snapshot] {
    *snapshot = w->reader->Read();
    return snapshot->ok() ? Status::Ok() : snapshot->error();
  });
  if (!run.ok()) {
    if (run.code() != StatusCode::kDeadlineExceeded) SetState(NvmlState::kFailed, run);
    return run;
  }
  SetState(NvmlState::kUp, Status::Ok());
  return std::move(*snapshot);
}

}  // namespace gpu_autoscaler::node_agent::nvml
