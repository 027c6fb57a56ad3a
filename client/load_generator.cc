// A load run: connects, learns the server's features, drives calls in a
// closed loop (a fixed number in flight) or an open loop (starts on a
// schedule), and merges what each thread measured into one report.
#include "load_generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "client_calls.h"
#include "client_queues.h"
#include "expected_answers.h"
#include "geo.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "load_calls.h"
#include "load_schedule.h"
#include "load_start.h"
#include "progress_line.h"
#include "target_check.h"

namespace routeguide {
namespace {

using Clock = LoadClock;

class LoadRun {
 public:
  LoadRun(const LoadOptions& options, const std::atomic<bool>& interrupt)
      : options_(options),
        interrupt_(interrupt),
        kinds_(options.mix),
        calls_(options, known_) {
    call_options_.deadline = options_.deadline;
    call_options_.metadata = options_.metadata;
  }

  absl::StatusOr<LoadReport> Run();

 private:
  // A closed-loop slot: one call in flight at a time, each replaced when it
  // ends. Its calls run on one queue, so only that queue's poller touches
  // the slot after the first start.
  struct Slot {
    int queue = 0;
    int channel = 0;
    FastRandom random;
  };

  absl::Status Connect();
  std::shared_ptr<grpc::Channel> NewChannel(const std::string& target,
                                            grpc::ChannelArguments args) const;
  absl::Status LearnFeatures();
  void RunClosedLoop();
  void RunOpenLoop();
  // Until `finished`: stops the run at its end, at --requests or on an
  // interrupt, and keeps the progress line.
  void WatchProgress(const std::function<bool()>& finished);

  // Starts one call of a kind drawn from the mix, unless the run is over or
  // --requests are all taken; returns whether it did. `slot` is null in the
  // open loop. A call is counted when scheduled inside the window.
  bool StartCall(int queue, int channel, FastRandom& random,
                 Clock::time_point scheduled, Slot* slot);
  // Records a finished call and, in the closed loop, starts the next.
  void Finish(int queue, CallKind kind, bool counted,
              Clock::time_point scheduled, const CallResult& result,
              Slot* slot);

  const LoadOptions& options_;
  const std::atomic<bool>& interrupt_;
  const KindPicker kinds_;
  KnownFeatures known_;
  const LoadCalls calls_;  // Reads known_ once it is sealed.
  CallOptions call_options_;
  std::string channel_target_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<RouteGuide::Stub>> stubs_;
  std::unique_ptr<ClientQueues> queues_;
  std::vector<std::unique_ptr<WorkerStats>> workers_;
  Clock::time_point start_;
  Clock::time_point measure_start_;
  Clock::time_point end_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> counted_starts_{0};
  std::vector<std::unique_ptr<Slot>> slots_;
  Histogram start_lag_;
  uint64_t late_starts_ = 0;
};

absl::Status LoadRun::Connect() {
  auto target = ChannelTarget(options_.target);
  if (!target.ok()) return target.status();
  channel_target_ = *target;
  if (absl::Status s = ProbeAddressList(
          channel_target_, options_.target,
          [this](const std::string& address) {
            grpc::ChannelArguments args;
            args.SetInt("grpc.use_local_subchannel_pool", 1);
            return NewChannel(address, args);
          },
          options_.connect_timeout, options_.credentials != nullptr);
      !s.ok()) {
    return s;
  }
  const int channels = options_.channels > 0 ? options_.channels : options_.threads;
  const absl::Time deadline = absl::Now() + options_.connect_timeout;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetLoadBalancingPolicyName("round_robin");
    // Separate pools keep the channels on separate connections.
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    // A load generator must not retry behind the caller's back, and the
    // retry machinery costs client CPU on every call.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    auto channel = NewChannel(channel_target_, args);
    if (absl::Status s = WaitForConnectedOrExplain(
            *channel, options_.target, deadline, options_.connect_timeout,
            options_.credentials != nullptr);
        !s.ok()) {
      return s;
    }
    stubs_.push_back(RouteGuide::NewStub(channel));
    channels_.push_back(std::move(channel));
  }
  return absl::OkStatus();
}

// Every channel of the run, the address probes' too: the run's credentials
// and --tls_server_name on top of `args`.
std::shared_ptr<grpc::Channel> LoadRun::NewChannel(
    const std::string& target, grpc::ChannelArguments args) const {
  if (!options_.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options_.tls_server_name);
  }
  return grpc::CreateCustomChannel(
      target,
      options_.credentials != nullptr ? options_.credentials
                                      : grpc::InsecureChannelCredentials(),
      args);
}

absl::Status LoadRun::LearnFeatures() {
  Rectangle world;
  world.mutable_lo()->set_latitude(-kMaxLatitudeE7);
  world.mutable_lo()->set_longitude(-kMaxLongitudeE7);
  world.mutable_hi()->set_latitude(kMaxLatitudeE7);
  world.mutable_hi()->set_longitude(kMaxLongitudeE7);
  absl::Notification done;
  grpc::Status status;
  bool too_many = false;  // Written and read on the queue's poller only.
  CallOptions options = call_options_;
  options.deadline = options_.learn_deadline;
  options.canceller = std::make_shared<CallCanceller>();
  routeguide::StartListFeaturesWhile(
      *stubs_[0], *queues_->queue(0), options, world,
      [this, &too_many](const Feature& feature) {
        if (static_cast<int64_t>(known_.size()) >= options_.max_features_learnt) {
          too_many = true;
          return false;
        }
        known_.Add(feature);
        return true;
      },
      [&](const grpc::Status& s) {
        status = s;
        done.Notify();
      });
  // A signal cancels the call rather than waiting out --learn_deadline;
  // the call still ends through on_done, which the locals must outlive.
  while (!done.WaitForNotificationWithTimeout(absl::Milliseconds(50))) {
    if (interrupt_.load(std::memory_order_relaxed)) options.canceller->Cancel();
  }
  if (interrupt_.load() && status.error_code() == grpc::StatusCode::CANCELLED) {
    return absl::CancelledError(absl::StrCat("interrupted while learning the features "
                                             "of the server at ", options_.target));
  }
  if (too_many) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the server at ", options_.target,
        " sent more than --max_features_learnt=", options_.max_features_learnt,
        " features in the ListFeatures over the world that learns them; "
        "raise the flag if it really stores that many"));
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(absl::StrCat(
        "the server at ", options_.target,
        " did not finish the ListFeatures over the world that learns its "
        "features within --learn_deadline=",
        absl::FormatDuration(options_.learn_deadline), " (",
        known_.size(), " features received)"));
  }
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the server at ", options_.target,
        " did not answer ListFeatures over the world: ",
        status.error_message(), " (code ", status.error_code(), ")"));
  }
  known_.Seal();
  return absl::OkStatus();
}

bool LoadRun::StartCall(int queue, int channel, FastRandom& random,
                        Clock::time_point scheduled, Slot* slot) {
  if (stopping_.load(std::memory_order_relaxed) || scheduled >= end_) {
    return false;
  }
  const bool counted = scheduled >= measure_start_;
  // Take a place among --requests first: checking and then counting would
  // let each thread slip one call past the limit.
  if (counted && options_.requests > 0 &&
      counted_starts_.fetch_add(1, std::memory_order_relaxed) >=
          options_.requests) {
    return false;
  }
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  const CallKind kind = kinds_.Pick(random);
  KindStats* measured = nullptr;
  if (counted) {
    workers_[queue]->started[static_cast<int>(kind)].fetch_add(
        1, std::memory_order_relaxed);
    measured = &workers_[queue]->kinds[static_cast<int>(kind)];
  }
  calls_.Start(kind, *stubs_[channel], *queues_->queue(queue), random,
               scheduled, measured,
               [this, queue, kind, counted, scheduled, slot](
                   const CallResult& result) {
                 Finish(queue, kind, counted, scheduled, result, slot);
               });
  return true;
}

void LoadRun::Finish(int queue, CallKind kind, bool counted,
                     Clock::time_point scheduled, const CallResult& result,
                     Slot* slot) {
  const Clock::time_point now = Clock::now();
  if (counted) {
    WorkerStats& worker = *workers_[queue];
    KindStats& stats = worker.kinds[static_cast<int>(kind)];
    switch (result.outcome) {
      case Outcome::kOk:
        ++stats.ok;
        break;
      case Outcome::kWrongAnswer:
        ++stats.wrong_answer;
        break;
      case Outcome::kFailed:
        ++stats.failed_by_code[std::min<int>(result.code, kNumStatusCodes - 1)];
        break;
    }
    stats.messages_sent += result.sent;
    stats.messages_received += result.received;
    stats.latency.Record(Nanos(now - scheduled));
    const auto second = static_cast<size_t>(
        std::chrono::duration_cast<std::chrono::seconds>(now - measure_start_)
            .count());
    worker.completions_per_second[std::min(
        second, worker.completions_per_second.size() - 1)]++;
    worker.completed.fetch_add(1, std::memory_order_relaxed);
    if (result.outcome != Outcome::kOk) {
      worker.errors.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (slot != nullptr) {
    StartCall(slot->queue, slot->channel, slot->random, Clock::now(), slot);
  }
  // Last: once this reaches zero the run may tear everything down.
  in_flight_.fetch_sub(1, std::memory_order_release);
}

void LoadRun::WatchProgress(const std::function<bool()>& finished) {
  ProgressLine progress(options_.progress, start_, measure_start_);
  while (!finished()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (interrupt_.load(std::memory_order_relaxed)) {
      stopping_.store(true, std::memory_order_relaxed);
    }
    const Clock::time_point now = Clock::now();
    if (now >= end_ ||
        (options_.requests > 0 &&
         counted_starts_.load(std::memory_order_relaxed) >= options_.requests)) {
      stopping_.store(true, std::memory_order_relaxed);  // Closed loop: no restarts.
    }
    if (!progress.Due(now)) continue;
    uint64_t completed = 0, errors = 0;
    for (const auto& w : workers_) {
      completed += w->completed.load(std::memory_order_relaxed);
      errors += w->errors.load(std::memory_order_relaxed);
    }
    progress.Print(now, completed, errors, in_flight_.load());
  }
  progress.Clear();
}

void LoadRun::RunClosedLoop() {
  FastRandom seeder(options_.seed);
  for (int i = 0; i < options_.concurrency; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->queue = i % queues_->size();
    slot->channel = i % static_cast<int>(stubs_.size());
    slot->random = FastRandom(seeder());
    slots_.push_back(std::move(slot));
  }
  for (auto& slot : slots_) {
    if (!StartCall(slot->queue, slot->channel, slot->random, Clock::now(),
                   slot.get())) {
      break;
    }
  }
  WatchProgress([this] {
    return stopping_.load(std::memory_order_relaxed) &&
           in_flight_.load(std::memory_order_acquire) == 0;
  });
}

void LoadRun::RunOpenLoop() {
  std::atomic<bool> pacer_done{false};
  // The pacer starts calls on schedule; this thread watches.
  std::thread pacer([this, &pacer_done] {
    FastRandom random(options_.seed);
    ArrivalSchedule schedule(options_.arrival, options_.rps, random());
    for (uint64_t i = 0; !stopping_.load(std::memory_order_relaxed); ++i) {
      const Clock::time_point scheduled =
          start_ + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(schedule.Next()));
      if (scheduled >= end_) break;
      // Sleep until the start time in short steps, so a stop is seen soon.
      // A late wake-up is measured below as start lag.
      while (!stopping_.load(std::memory_order_relaxed) && Clock::now() < scheduled) {
        std::this_thread::sleep_until(
            std::min(scheduled, Clock::now() + std::chrono::milliseconds(10)));
      }
      while (in_flight_.load(std::memory_order_relaxed) >= options_.max_in_flight &&
             !stopping_.load(std::memory_order_relaxed)) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      const Clock::duration lag = Clock::now() - scheduled;
      if (!StartCall(static_cast<int>(i % queues_->size()),
                     static_cast<int>(i % stubs_.size()), random, scheduled,
                     nullptr)) {
        break;
      }
      if (scheduled >= measure_start_) {
        start_lag_.Record(Nanos(lag));
        if (lag > std::chrono::milliseconds(1)) ++late_starts_;
      }
    }
    stopping_.store(true, std::memory_order_relaxed);
    pacer_done.store(true, std::memory_order_release);
  });
  WatchProgress([this, &pacer_done] {
    return pacer_done.load(std::memory_order_acquire) &&
           in_flight_.load(std::memory_order_acquire) == 0;
  });
  pacer.join();
}

absl::StatusOr<LoadReport> LoadRun::Run() {
  if (absl::Status valid = ValidateLoadOptions(options_); !valid.ok()) {
    return valid;
  }
  queues_ = std::make_unique<ClientQueues>(options_.threads);
  if (absl::Status s = Connect(); !s.ok()) return s;
  if (absl::Status s = LearnFeatures(); !s.ok()) return s;

  const absl::Duration window =
      options_.requests > 0 && options_.duration <= absl::ZeroDuration()
          ? absl::Hours(24 * 365)
          : options_.duration;
  const auto timeline_seconds = static_cast<size_t>(
      std::min<int64_t>(absl::ToInt64Seconds(window) + 2, 24 * 3600));
  for (int i = 0; i < options_.threads; ++i) {
    workers_.push_back(std::make_unique<WorkerStats>(timeline_seconds));
  }
  // Connected and features learnt: only the calls themselves are left, so
  // generators waiting for the same time start measuring together.
  if (options_.start_at.has_value()) {
    if (absl::Status s = WaitForStartAt(*options_.start_at, interrupt_); !s.ok()) {
      return s;
    }
  }
  start_ = Clock::now();
  measure_start_ = start_ + absl::ToChronoNanoseconds(options_.warmup);
  end_ = measure_start_ + std::min(absl::ToChronoNanoseconds(window),
                                   std::chrono::nanoseconds(std::chrono::hours(24 * 365)));
  const absl::Time wall_start = absl::Now() + options_.warmup;

  if (options_.rps > 0) {
    RunOpenLoop();
  } else {
    RunClosedLoop();
  }
  // Calls started inside the window and still running at its end are
  // counted, so the window runs until the last of them has finished.
  const Clock::time_point measure_end = Clock::now();
  LoadReport report;
  if (SplitAddressList(channel_target_).size() > 1) {
    report.by_address = CallsByAddress(channel_target_);
  }
  queues_->Shutdown();

  report.options = options_;
  report.channel_target = channel_target_;
  report.features_known = known_.size();
  report.started_at = wall_start;
  report.measured = absl::FromChrono(
      std::max(Clock::duration::zero(), measure_end - measure_start_));
  report.interrupted = interrupt_.load();
  report.start_lag = start_lag_;
  report.late_starts = late_starts_;
  // Whole seconds only: a 5.009 s run has five, and its last 9 ms go to
  // partial_second_completions rather than drawing a collapse to zero.
  const size_t whole_seconds = std::min(
      timeline_seconds,
      static_cast<size_t>(std::floor(absl::ToDoubleSeconds(report.measured))));
  report.completions_per_second.assign(whole_seconds, 0);
  for (const auto& worker : workers_) {
    for (int k = 0; k < kNumCallKinds; ++k) {
      KindStats& kind = report.kinds[k];
      kind.Merge(worker->kinds[k]);
      kind.started += worker->started[k].load();
    }
    for (size_t s = 0; s < worker->completions_per_second.size(); ++s) {
      const uint64_t n = worker->completions_per_second[s];
      if (s < whole_seconds) {
        report.completions_per_second[s] += n;
      } else {
        report.partial_second_completions += n;
      }
    }
  }
  for (const KindStats& kind : report.kinds) report.total.Merge(kind);
  return report;
}

}  // namespace

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options,
                                   const std::atomic<bool>& interrupt) {
  LoadRun run(options, interrupt);
  return run.Run();
}

}  // namespace routeguide
