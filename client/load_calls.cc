#include "load_calls.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "geo.h"
#include "proto_convert.h"

namespace routeguide {
namespace {

// GetFeature's one right answer: the point asked about, with the name
// stored there ("" where nothing is).
bool IsRightFeature(const Point& asked, const FeatureRecord* stored,
                    const Feature& answer) {
  return answer.location().latitude() == asked.latitude() &&
         answer.location().longitude() == asked.longitude() &&
         (stored == nullptr ? answer.name().empty()
                            : answer.name() == stored->name);
}

// ListFeatures: the features in the rectangle, in any order, each once.
// Counts and fingerprints stand for the sets.
struct ListAnswer {
  uint64_t expected_count = 0;
  uint64_t expected_hash = 0;
  uint64_t received = 0;
  uint64_t received_hash = 0;

  bool Right() const {
    return received == expected_count && received_hash == expected_hash;
  }
};

// RecordRoute: the summary of the points sent.
struct RouteAnswer {
  int32_t point_count = 0;
  int32_t feature_count = 0;
  int32_t distance = 0;

  bool Matches(const RouteSummary& summary) const {
    // Other servers may sum the legs in another order: allow 1 m.
    return summary.point_count() == point_count &&
           summary.feature_count() == feature_count &&
           std::abs(static_cast<int64_t>(summary.distance()) - distance) <= 1;
  }
};

// RouteChat: the notes one chat sends and the replies it must get back.
// Each chat posts at locations of its own (L of them, from `base` north),
// so the replies are known: note k, at location k mod L, brings back the
// notes sent before it at that location, in order; its i-th reply is note
// (k mod L) + i * L. The callbacks of one call run one at a time.
class ChatTranscript {
 public:
  ChatTranscript(const Point& base, int notes, int locations)
      : base_(base), notes_(notes), locations_(locations), sent_at_(notes) {
    for (int k = 0; k < notes_; ++k) expected_total_ += ExpectedReplies(k);
  }

  std::vector<RouteNote> NotesToSend() const {
    std::vector<RouteNote> notes;
    notes.reserve(notes_);
    for (int k = 0; k < notes_; ++k) {
      RouteNote& note = notes.emplace_back();
      note.mutable_location()->set_latitude(base_.latitude() + k % locations_);
      note.mutable_location()->set_longitude(base_.longitude());
      note.set_message(absl::StrCat(k));
    }
    return notes;
  }

  void OnSent() { sent_at_[sent_++] = LoadClock::now(); }

  // Checks `reply` against the one due next; the first reply to each note
  // goes into `measured`'s reply latency unless it is null.
  void OnReply(const RouteNote& reply, KindStats* measured) {
    ++received_;
    SkipNotesAnswered();
    if (replying_to_ >= notes_ || replying_to_ >= sent_) {
      wrong_ = true;  // A reply nobody asked for.
      return;
    }
    const int note = replying_to_;
    int64_t number = -1;
    if (!absl::SimpleAtoi(reply.message(), &number) ||
        number != note % locations_ + replies_for_note_ * locations_ ||
        reply.location().latitude() != base_.latitude() + note % locations_ ||
        reply.location().longitude() != base_.longitude()) {
      wrong_ = true;
    }
    if (replies_for_note_ == 0 && measured != nullptr) {
      measured->reply.Record(Nanos(LoadClock::now() - sent_at_[note]));
    }
    ++replies_for_note_;
  }

  bool Right() const { return !wrong_ && received_ == expected_total_; }
  uint64_t sent() const { return static_cast<uint64_t>(sent_); }
  uint64_t received() const { return received_; }

 private:
  int ExpectedReplies(int note) const { return note / locations_; }

  // Moves past the notes that have all their replies (or expect none).
  void SkipNotesAnswered() {
    while (replying_to_ < notes_ &&
           replies_for_note_ == ExpectedReplies(replying_to_)) {
      ++replying_to_;
      replies_for_note_ = 0;
    }
  }

  const Point base_;
  const int notes_;
  const int locations_;
  uint64_t expected_total_ = 0;
  std::vector<LoadClock::time_point> sent_at_;
  int sent_ = 0;
  int replying_to_ = 0;       // The note the next reply answers.
  int replies_for_note_ = 0;  // Replies already seen for it.
  uint64_t received_ = 0;
  bool wrong_ = false;
};

// kOk or kWrongAnswer for a call that ended with OK, kFailed otherwise.
Outcome Judge(const grpc::Status& status, bool right) {
  if (!status.ok()) return Outcome::kFailed;
  return right ? Outcome::kOk : Outcome::kWrongAnswer;
}

}  // namespace

uint64_t Nanos(LoadClock::duration d) {
  const auto n = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return n < 0 ? 0 : static_cast<uint64_t>(n);
}

LoadCalls::LoadCalls(const LoadOptions& options, const KnownFeatures& known)
    : options_(options), known_(known) {
  call_options_.deadline = options_.deadline;
  call_options_.metadata = options_.metadata;
  call_options_.batch_writes = options_.batch_writes;
}

void LoadCalls::Start(CallKind kind, RouteGuide::Stub& stub,
                      grpc::CompletionQueue& cq, FastRandom& random,
                      LoadClock::time_point scheduled, KindStats* measured,
                      OnEnd on_end) const {
  switch (kind) {
    case CallKind::kGetFeature:
      StartGetFeature(stub, cq, random, std::move(on_end));
      break;
    case CallKind::kListFeatures:
      StartListFeatures(stub, cq, random, scheduled, measured,
                        std::move(on_end));
      break;
    case CallKind::kRecordRoute:
      StartRecordRoute(stub, cq, random, std::move(on_end));
      break;
    case CallKind::kRouteChat:
      StartRouteChat(stub, cq, random, measured, std::move(on_end));
      break;
  }
}

Point LoadCalls::RandomPoint(FastRandom& random) const {
  std::uniform_int_distribution<int32_t> latitude(-kMaxLatitudeE7, kMaxLatitudeE7);
  std::uniform_int_distribution<int32_t> longitude(-kMaxLongitudeE7, kMaxLongitudeE7);
  Point point;
  point.set_latitude(latitude(random));
  point.set_longitude(longitude(random));
  return point;
}

Point LoadCalls::PointToVisit(FastRandom& random) const {
  std::bernoulli_distribution hit(options_.hit_ratio);
  if (known_.size() == 0 || !hit(random)) return RandomPoint(random);
  std::uniform_int_distribution<size_t> pick(0, known_.size() - 1);
  Point point;
  ToProto(known_.at(pick(random)).location, &point);
  return point;
}

void LoadCalls::StartGetFeature(RouteGuide::Stub& stub,
                                grpc::CompletionQueue& cq, FastRandom& random,
                                OnEnd on_end) const {
  const Point point = PointToVisit(random);
  const FeatureRecord* stored = known_.Find(point);
  routeguide::StartGetFeature(
      stub, cq, call_options_, point,
      [point, stored, on_end = std::move(on_end)](const grpc::Status& status,
                                                  const Feature& feature) {
        on_end({Judge(status, IsRightFeature(point, stored, feature)),
                status.error_code(), 1, status.ok() ? 1u : 0u});
      });
}

void LoadCalls::StartListFeatures(RouteGuide::Stub& stub,
                                  grpc::CompletionQueue& cq,
                                  FastRandom& random,
                                  LoadClock::time_point scheduled,
                                  KindStats* measured, OnEnd on_end) const {
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
  auto answer = std::make_shared<ListAnswer>();
  known_.Expect(GeoRect::FromCorners(FromProto(rectangle.lo()),
                                     FromProto(rectangle.hi())),
                &answer->expected_count, &answer->expected_hash);
  routeguide::StartListFeatures(
      stub, cq, call_options_, rectangle,
      [answer, scheduled, measured](const Feature& f) {
        if (answer->received++ == 0 && measured != nullptr) {
          measured->first_message.Record(Nanos(LoadClock::now() - scheduled));
        }
        answer->received_hash += FeatureHash(
            f.location().latitude(), f.location().longitude(), f.name());
      },
      [answer, on_end = std::move(on_end)](const grpc::Status& status) {
        on_end({Judge(status, answer->Right()), status.error_code(), 1,
                answer->received});
      });
}

void LoadCalls::StartRecordRoute(RouteGuide::Stub& stub,
                                 grpc::CompletionQueue& cq, FastRandom& random,
                                 OnEnd on_end) const {
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
  const RouteAnswer answer{SaturateToInt32(sent), SaturateToInt32(features),
                           SaturateToInt32(distance)};
  routeguide::StartRecordRoute(
      stub, cq, call_options_, std::move(points), [](const Point&) {},
      [answer, sent, on_end = std::move(on_end)](const grpc::Status& status,
                                                 const RouteSummary& summary) {
        on_end({Judge(status, answer.Matches(summary)), status.error_code(),
                sent, status.ok() ? 1u : 0u});
      });
}

void LoadCalls::StartRouteChat(RouteGuide::Stub& stub,
                               grpc::CompletionQueue& cq, FastRandom& random,
                               KindStats* measured, OnEnd on_end) const {
  const int locations = options_.chat_locations;
  Point base = RandomPoint(random);
  base.set_latitude(std::min(base.latitude(), kMaxLatitudeE7 - locations));
  auto transcript =
      std::make_shared<ChatTranscript>(base, options_.chat_notes, locations);
  routeguide::StartRouteChat(
      stub, cq, call_options_, transcript->NotesToSend(),
      [transcript](const RouteNote&) { transcript->OnSent(); },
      [transcript, measured](const RouteNote& reply) {
        transcript->OnReply(reply, measured);
      },
      [transcript, on_end = std::move(on_end)](const grpc::Status& status) {
        on_end({Judge(status, transcript->Right()), status.error_code(),
                transcript->sent(), transcript->received()});
      });
}

}  // namespace routeguide
