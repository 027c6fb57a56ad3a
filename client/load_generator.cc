#include "load_generator.h"
#include "load_schedule.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "client_calls.h"
#include "client_queues.h"
#include "feature_store.h"
#include "geo.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "proto_convert.h"

namespace routeguide {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t Nanos(Clock::duration d) {
  const auto n = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return n < 0 ? 0 : static_cast<uint64_t>(n);
}

uint64_t PointKey(int32_t latitude, int32_t longitude) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(latitude)) << 32) |
         static_cast<uint32_t>(longitude);
}

// Order-independent fingerprint of a feature, so a streamed answer can be
// checked against the expected set without keeping it.
uint64_t FeatureHash(int32_t latitude, int32_t longitude,
                     absl::string_view name) {
  uint64_t h = PointKey(latitude, longitude) * 0x9e3779b97f4a7c15ULL;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  h ^= h >> 29;
  return h * 0xbf58476d1ce4e5b9ULL;
}

// The features the server told us about, indexed for checking answers.
// Filled once at the start, then only read, by every thread, without locks.
class KnownFeatures {
 public:
  void Add(const Feature& feature) {
    FeatureRecord record{feature.name(), FromProto(feature.location())};
    by_point_.try_emplace(PointKey(record.location.latitude,
                                   record.location.longitude),
                          features_.size());
    by_latitude_.push_back({record.location,
                            FeatureHash(record.location.latitude,
                                        record.location.longitude, record.name)});
    features_.push_back(std::move(record));
  }
  // After the last Add: sorts the latitude index.
  void Seal() {
    std::sort(by_latitude_.begin(), by_latitude_.end(),
              [](const Located& a, const Located& b) {
                return a.location.latitude < b.location.latitude;
              });
  }
  // How many features lie in `rect`, and the sum of their FeatureHash.
  void Expect(const GeoRect& rect, uint64_t* count, uint64_t* hash) const {
    auto it = std::lower_bound(by_latitude_.begin(), by_latitude_.end(),
                               rect.lo.latitude,
                               [](const Located& a, int32_t latitude) {
                                 return a.location.latitude < latitude;
                               });
    for (; it != by_latitude_.end() && it->location.latitude <= rect.hi.latitude; ++it) {
      if (rect.Contains(it->location)) {
        ++*count;
        *hash += it->hash;
      }
    }
  }
  size_t size() const { return features_.size(); }
  const FeatureRecord& at(size_t i) const { return features_[i]; }
  // The first feature stored at the point, or null.
  const FeatureRecord* Find(const Point& p) const {
    auto it = by_point_.find(PointKey(p.latitude(), p.longitude()));
    return it == by_point_.end() ? nullptr : &features_[it->second];
  }

 private:
  struct Located {
    GeoPoint location;
    uint64_t hash;
  };
  std::vector<FeatureRecord> features_;
  absl::flat_hash_map<uint64_t, size_t> by_point_;
  std::vector<Located> by_latitude_;
};

class LoadRun {
 public:
  LoadRun(const LoadOptions& options, const std::atomic<bool>& interrupt)
      : options_(options), interrupt_(interrupt), kinds_(options.mix) {
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
  absl::Status LearnFeatures();
  void RunClosedLoop();
  void RunOpenLoop();
  void WatchProgress(const std::function<bool()>& finished);

  // Starts one call of a kind drawn from the mix, unless the run is over or
  // --requests are all taken; returns whether it did. `slot` is null in the
  // open loop. A call is counted when scheduled inside the window.
  bool StartCall(int queue, int channel, FastRandom& random,
                 Clock::time_point scheduled, Slot* slot);
  // Records a finished call and, in the closed loop, starts the next.
  void Finish(int queue, CallKind kind, bool counted,
              Clock::time_point scheduled, Outcome outcome,
              grpc::StatusCode code, uint64_t sent, uint64_t received,
              Slot* slot);
  Point RandomPoint(FastRandom& random) const;
  Point PointToVisit(FastRandom& random) const;

  void StartGetFeature(int queue, int channel, FastRandom& random,
                       Clock::time_point scheduled, bool counted, Slot* slot);
  void StartListFeatures(int queue, int channel, FastRandom& random,
                         Clock::time_point scheduled, bool counted, Slot* slot);
  void StartRecordRoute(int queue, int channel, FastRandom& random,
                        Clock::time_point scheduled, bool counted, Slot* slot);
  void StartRouteChat(int queue, int channel, FastRandom& random,
                      Clock::time_point scheduled, bool counted, Slot* slot);

  const LoadOptions& options_;
  const std::atomic<bool>& interrupt_;
  const KindPicker kinds_;
  CallOptions call_options_;
  std::string channel_target_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<RouteGuide::Stub>> stubs_;
  std::unique_ptr<ClientQueues> queues_;
  std::vector<std::unique_ptr<WorkerStats>> workers_;
  KnownFeatures known_;
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
  const int channels = options_.channels > 0 ? options_.channels : options_.threads;
  const auto deadline =
      absl::ToChronoTime(absl::Now() + options_.connect_timeout);
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetLoadBalancingPolicyName("round_robin");
    // Separate pools keep the channels on separate connections.
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    // A load generator must not retry behind the caller's back, and the
    // retry machinery costs client CPU on every call.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    if (!options_.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options_.tls_server_name);
    }
    auto channel = grpc::CreateCustomChannel(
        channel_target_,
        options_.credentials != nullptr ? options_.credentials
                                        : grpc::InsecureChannelCredentials(),
        args);
    if (!channel->WaitForConnected(deadline)) {
      return absl::UnavailableError(absl::StrCat(
          "cannot reach a server at ", options_.target, " within ",
          absl::FormatDuration(options_.connect_timeout)));
    }
    stubs_.push_back(RouteGuide::NewStub(channel));
    channels_.push_back(std::move(channel));
  }
  return absl::OkStatus();
}

absl::Status LoadRun::LearnFeatures() {
  Rectangle world;
  world.mutable_lo()->set_latitude(-kMaxLatitudeE7);
  world.mutable_lo()->set_longitude(-kMaxLongitudeE7);
  world.mutable_hi()->set_latitude(kMaxLatitudeE7);
  world.mutable_hi()->set_longitude(kMaxLongitudeE7);
  absl::Notification done;
  grpc::Status status;
  CallOptions options = call_options_;
  options.deadline = std::max(options.deadline, absl::Seconds(60));
  routeguide::StartListFeatures(
      *stubs_[0], *queues_->queue(0), options, world,
      [this](const Feature& feature) { known_.Add(feature); },
      [&](const grpc::Status& s) {
        status = s;
        done.Notify();
      });
  done.WaitForNotification();
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the server at ", options_.target,
        " did not answer ListFeatures over the world: ",
        status.error_message(), " (code ", status.error_code(), ")"));
  }
  known_.Seal();
  return absl::OkStatus();
}

Point LoadRun::RandomPoint(FastRandom& random) const {
  std::uniform_int_distribution<int32_t> latitude(-kMaxLatitudeE7, kMaxLatitudeE7);
  std::uniform_int_distribution<int32_t> longitude(-kMaxLongitudeE7, kMaxLongitudeE7);
  Point point;
  point.set_latitude(latitude(random));
  point.set_longitude(longitude(random));
  return point;
}

// A stored feature with probability --hit_ratio, else a random point.
Point LoadRun::PointToVisit(FastRandom& random) const {
  std::bernoulli_distribution hit(options_.hit_ratio);
  if (known_.size() == 0 || !hit(random)) return RandomPoint(random);
  std::uniform_int_distribution<size_t> pick(0, known_.size() - 1);
  Point point;
  ToProto(known_.at(pick(random)).location, &point);
  return point;
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
  if (counted) {
    workers_[queue]->started[static_cast<int>(kind)].fetch_add(
        1, std::memory_order_relaxed);
  }
  switch (kind) {
    case CallKind::kGetFeature:
      StartGetFeature(queue, channel, random, scheduled, counted, slot);
      break;
    case CallKind::kListFeatures:
      StartListFeatures(queue, channel, random, scheduled, counted, slot);
      break;
    case CallKind::kRecordRoute:
      StartRecordRoute(queue, channel, random, scheduled, counted, slot);
      break;
    case CallKind::kRouteChat:
      StartRouteChat(queue, channel, random, scheduled, counted, slot);
      break;
  }
  return true;
}

void LoadRun::Finish(int queue, CallKind kind, bool counted,
                     Clock::time_point scheduled, Outcome outcome,
                     grpc::StatusCode code, uint64_t sent, uint64_t received,
                     Slot* slot) {
  const Clock::time_point now = Clock::now();
  if (counted) {
    WorkerStats& worker = *workers_[queue];
    KindStats& stats = worker.kinds[static_cast<int>(kind)];
    switch (outcome) {
      case Outcome::kOk:
        ++stats.ok;
        break;
      case Outcome::kWrongAnswer:
        ++stats.wrong_answer;
        break;
      case Outcome::kFailed:
        ++stats.failed_by_code[std::min<int>(code, kNumStatusCodes - 1)];
        break;
    }
    stats.messages_sent += sent;
    stats.messages_received += received;
    stats.latency.Record(Nanos(now - scheduled));
    const auto second = static_cast<size_t>(
        std::chrono::duration_cast<std::chrono::seconds>(now - measure_start_)
            .count());
    worker.completions_per_second[std::min(
        second, worker.completions_per_second.size() - 1)]++;
    worker.completed.fetch_add(1, std::memory_order_relaxed);
    if (outcome != Outcome::kOk) worker.errors.fetch_add(1, std::memory_order_relaxed);
  }
  if (slot != nullptr) {
    StartCall(slot->queue, slot->channel, slot->random, Clock::now(), slot);
  }
  // Last: once this reaches zero the run may tear everything down.
  in_flight_.fetch_sub(1, std::memory_order_release);
}

void LoadRun::StartGetFeature(int queue, int channel, FastRandom& random,
                              Clock::time_point scheduled, bool counted,
                              Slot* slot) {
  const Point point = PointToVisit(random);
  const FeatureRecord* expected = known_.Find(point);
  routeguide::StartGetFeature(
      *stubs_[channel], *queues_->queue(queue), call_options_, point,
      [=](const grpc::Status& status, const Feature& feature) {
        Outcome outcome = Outcome::kFailed;
        if (status.ok()) {
          const bool right =
              feature.location().latitude() == point.latitude() &&
              feature.location().longitude() == point.longitude() &&
              (expected == nullptr ? feature.name().empty()
                                   : feature.name() == expected->name);
          outcome = right ? Outcome::kOk : Outcome::kWrongAnswer;
        }
        Finish(queue, CallKind::kGetFeature, counted, scheduled, outcome,
               status.error_code(), 1, status.ok() ? 1 : 0, slot);
      });
}

void LoadRun::StartListFeatures(int queue, int channel,
                                FastRandom& random,
                                Clock::time_point scheduled, bool counted,
                                Slot* slot) {
  Rectangle rectangle;
  if (options_.list_rect.has_value()) {
    ToProto(options_.list_rect->lo, rectangle.mutable_lo());
    ToProto(options_.list_rect->hi, rectangle.mutable_hi());
  } else {
    // A square of --rect_degrees around a stored feature (or anywhere).
    const Point center = PointToVisit(random);
    const auto half =
        static_cast<int64_t>(options_.rect_degrees / 2 * kE7PerDegree);
    auto clamp = [](int64_t v, int32_t bound) {
      return static_cast<int32_t>(
          std::max<int64_t>(-bound, std::min<int64_t>(bound, v)));
    };
    rectangle.mutable_lo()->set_latitude(
        clamp(center.latitude() - half, kMaxLatitudeE7));
    rectangle.mutable_lo()->set_longitude(
        clamp(center.longitude() - half, kMaxLongitudeE7));
    rectangle.mutable_hi()->set_latitude(
        clamp(center.latitude() + half, kMaxLatitudeE7));
    rectangle.mutable_hi()->set_longitude(
        clamp(center.longitude() + half, kMaxLongitudeE7));
  }

  struct Expectation {
    uint64_t count = 0;
    uint64_t hash = 0;
    uint64_t received = 0;
    uint64_t received_hash = 0;
  };
  auto expect = std::make_shared<Expectation>();
  known_.Expect(GeoRect::FromCorners(FromProto(rectangle.lo()),
                                     FromProto(rectangle.hi())),
                &expect->count, &expect->hash);
  routeguide::StartListFeatures(
      *stubs_[channel], *queues_->queue(queue), call_options_, rectangle,
      [=](const Feature& f) {
        if (expect->received++ == 0 && counted) {
          workers_[queue]
              ->kinds[static_cast<int>(CallKind::kListFeatures)]
              .first_message.Record(Nanos(Clock::now() - scheduled));
        }
        expect->received_hash += FeatureHash(f.location().latitude(),
                                             f.location().longitude(), f.name());
      },
      [=](const grpc::Status& status) {
        Outcome outcome = Outcome::kFailed;
        if (status.ok()) {
          outcome = expect->received == expect->count &&
                            expect->received_hash == expect->hash
                        ? Outcome::kOk
                        : Outcome::kWrongAnswer;
        }
        Finish(queue, CallKind::kListFeatures, counted, scheduled, outcome,
               status.error_code(), 1, expect->received, slot);
      });
}

void LoadRun::StartRecordRoute(int queue, int channel, FastRandom& random,
                               Clock::time_point scheduled, bool counted,
                               Slot* slot) {
  std::vector<Point> points;
  points.reserve(options_.route_points);
  uint64_t features = 0;
  double distance = 0;
  for (int i = 0; i < options_.route_points; ++i) {
    points.push_back(PointToVisit(random));
    if (known_.Find(points.back()) != nullptr) ++features;
    if (i > 0) {
      distance += HaversineMeters(FromProto(points[i - 1]), FromProto(points[i]));
    }
  }
  const uint64_t sent = points.size();
  const int32_t expected_points = SaturateToInt32(sent);
  const int32_t expected_features = SaturateToInt32(features);
  const int32_t expected_distance = SaturateToInt32(distance);
  routeguide::StartRecordRoute(
      *stubs_[channel], *queues_->queue(queue), call_options_, std::move(points),
      [](const Point&) {},
      [=](const grpc::Status& status, const RouteSummary& summary) {
        Outcome outcome = Outcome::kFailed;
        if (status.ok()) {
          // Other servers may sum the legs in another order: allow 1 m.
          const bool right =
              summary.point_count() == expected_points &&
              summary.feature_count() == expected_features &&
              std::abs(static_cast<int64_t>(summary.distance()) -
                       expected_distance) <= 1;
          outcome = right ? Outcome::kOk : Outcome::kWrongAnswer;
        }
        Finish(queue, CallKind::kRecordRoute, counted, scheduled, outcome,
               status.error_code(), sent, status.ok() ? 1 : 0, slot);
      });
}

void LoadRun::StartRouteChat(int queue, int channel, FastRandom& random,
                             Clock::time_point scheduled, bool counted,
                             Slot* slot) {
  // Each chat posts at locations of its own, so the replies it must get
  // are known: note k (at location k mod L) brings back the notes sent
  // before it at that location, in order.
  const int notes = options_.chat_notes;
  const int locations = options_.chat_locations;
  Point base = RandomPoint(random);
  base.set_latitude(std::min(base.latitude(), kMaxLatitudeE7 - locations));
  std::vector<RouteNote> to_send;
  to_send.reserve(notes);
  for (int k = 0; k < notes; ++k) {
    RouteNote& note = to_send.emplace_back();
    note.mutable_location()->set_latitude(base.latitude() + k % locations);
    note.mutable_location()->set_longitude(base.longitude());
    note.set_message(absl::StrCat(k));
  }
  struct Progress {
    std::vector<Clock::time_point> sent_at;
    int sent = 0;
    int replying_to = 0;       // The note the next reply answers.
    int replies_for_note = 0;  // Replies already seen for it.
    uint64_t received = 0;
    bool wrong = false;
  };
  auto progress = std::make_shared<Progress>();
  progress->sent_at.resize(notes);
  auto expected_replies = [locations](int note) { return note / locations; };
  // Skips notes that expect no reply.
  auto settle = [=](Progress& p) {
    while (p.replying_to < notes && p.replies_for_note == expected_replies(p.replying_to)) {
      ++p.replying_to;
      p.replies_for_note = 0;
    }
  };
  uint64_t expected_total = 0;
  for (int k = 0; k < notes; ++k) expected_total += expected_replies(k);

  routeguide::StartRouteChat(
      *stubs_[channel], *queues_->queue(queue), call_options_, std::move(to_send),
      [=](const RouteNote&) { progress->sent_at[progress->sent++] = Clock::now(); },
      [=](const RouteNote& reply) {
        Progress& p = *progress;
        ++p.received;
        settle(p);
        if (p.replying_to >= notes || p.replying_to >= p.sent) {
          p.wrong = true;  // A reply nobody asked for.
          return;
        }
        // The i-th reply to note k is note (k mod L) + i * L.
        const int note = p.replying_to;
        int64_t number = -1;
        if (!absl::SimpleAtoi(reply.message(), &number) ||
            number != note % locations + p.replies_for_note * locations ||
            reply.location().latitude() != base.latitude() + note % locations ||
            reply.location().longitude() != base.longitude()) {
          p.wrong = true;
        }
        if (p.replies_for_note == 0 && counted) {
          workers_[queue]
              ->kinds[static_cast<int>(CallKind::kRouteChat)]
              .reply.Record(Nanos(Clock::now() - p.sent_at[note]));
        }
        ++p.replies_for_note;
      },
      [=](const grpc::Status& status) {
        Outcome outcome = Outcome::kFailed;
        if (status.ok()) {
          outcome = !progress->wrong && progress->received == expected_total
                        ? Outcome::kOk
                        : Outcome::kWrongAnswer;
        }
        Finish(queue, CallKind::kRouteChat, counted, scheduled, outcome,
               status.error_code(), static_cast<uint64_t>(progress->sent),
               progress->received, slot);
      });
}

void LoadRun::WatchProgress(const std::function<bool()>& finished) {
  const bool show = options_.progress;
  uint64_t last_completed = 0;
  Clock::time_point last = Clock::now();
  Clock::time_point next_line = last + std::chrono::seconds(1);
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
    if (!show || now < next_line) continue;
    uint64_t completed = 0, errors = 0;
    for (const auto& w : workers_) {
      completed += w->completed.load(std::memory_order_relaxed);
      errors += w->errors.load(std::memory_order_relaxed);
    }
    const double seconds = std::chrono::duration<double>(now - last).count();
    std::fprintf(stderr,
                 "\r\033[K%6.1fs  %9.0f calls/s  %llu errors  %lld in flight%s",
                 std::chrono::duration<double>(now - start_).count(),
                 (completed - last_completed) / seconds,
                 static_cast<unsigned long long>(errors),
                 static_cast<long long>(in_flight_.load()),
                 now < measure_start_ ? "  (warming up)" : "");
    std::fflush(stderr);
    last_completed = completed;
    last = now;
    next_line += std::chrono::seconds(1);
  }
  if (show) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
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
  queues_->Shutdown();

  LoadReport report;
  report.options = options_;
  report.channel_target = channel_target_;
  report.features_known = known_.size();
  report.started_at = wall_start;
  report.measured = absl::FromChrono(
      std::max(Clock::duration::zero(), measure_end - measure_start_));
  report.interrupted = interrupt_.load();
  report.start_lag = start_lag_;
  report.late_starts = late_starts_;
  const size_t seconds_used = std::max<size_t>(
      1, std::min(timeline_seconds,
                  static_cast<size_t>(std::ceil(absl::ToDoubleSeconds(report.measured)))));
  report.completions_per_second.assign(seconds_used, 0);
  for (const auto& worker : workers_) {
    for (int k = 0; k < kNumCallKinds; ++k) {
      KindStats& kind = report.kinds[k];
      kind.Merge(worker->kinds[k]);
      kind.started += worker->started[k].load();
    }
    for (size_t s = 0; s < seconds_used; ++s) {
      report.completions_per_second[s] += worker->completions_per_second[s];
    }
  }
  for (const KindStats& kind : report.kinds) report.total.Merge(kind);
  return report;
}

}  // namespace

void KindStats::Merge(const KindStats& other) {
  started += other.started;
  ok += other.ok;
  wrong_answer += other.wrong_answer;
  for (int i = 0; i < kNumStatusCodes; ++i) failed_by_code[i] += other.failed_by_code[i];
  messages_sent += other.messages_sent;
  messages_received += other.messages_received;
  latency.Merge(other.latency);
  first_message.Merge(other.first_message);
  reply.Merge(other.reply);
}

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options,
                                   const std::atomic<bool>& interrupt) {
  LoadRun run(options, interrupt);
  return run.Run();
}

}  // namespace routeguide
