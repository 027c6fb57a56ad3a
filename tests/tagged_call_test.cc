// TaggedCall's tag accounting: each event has its own tag, every posted
// tag is counted until it comes back, and the call is deleted exactly when
// the last one does. Completions come from grpc::Alarm on a real queue and
// are handled one at a time on the test thread.
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "grpcpp/alarm.h"
#include "grpcpp/completion_queue.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

enum class TestEvent : uint8_t { kFirst, kSecond, kThird, kCount };

struct Seen {
  std::vector<TestEvent> events;
  std::vector<bool> oks;
  bool deleted = false;
};

// Posts alarms as its operations and records what comes back. When
// `repost_second` is set, handling kFirst posts kSecond.
class RecordingCall final : public TaggedCall<RecordingCall, TestEvent> {
 public:
  RecordingCall(grpc::CompletionQueue* cq, Seen* seen) : cq_(cq), seen_(seen) {}
  ~RecordingCall() override { seen_->deleted = true; }

  // An alarm for `event` due at once, or far in the future.
  void Arm(TestEvent event, bool far = false) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ArmLocked(event, far);
  }
  void Cancel(TestEvent event) { alarms_[Index(event)].Cancel(); }
  void CountAndWithdraw(TestEvent event) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Post(event);
    Withdraw(event);
  }
  void* TagOf(TestEvent event) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    void* tag = Post(event);
    Withdraw(event);
    return tag;
  }
  int pending() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return PendingLocked();
  }
  void set_repost_second() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    repost_second_ = true;
  }

 private:
  friend class TaggedCall<RecordingCall, TestEvent>;

  static size_t Index(TestEvent event) { return static_cast<size_t>(event); }

  void ArmLocked(TestEvent event, bool far) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time when = absl::Now() + (far ? absl::Hours(1) : absl::ZeroDuration());
    alarms_[Index(event)].Set(cq_, absl::ToChronoTime(when),
                              Post(event));
  }

  void ProceedLocked(TestEvent event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    seen_->events.push_back(event);
    seen_->oks.push_back(ok);
    if (repost_second_ && event == TestEvent::kFirst) {
      repost_second_ = false;
      ArmLocked(TestEvent::kSecond, false);
    }
  }

  grpc::CompletionQueue* const cq_;
  Seen* const seen_;
  std::array<grpc::Alarm, 3> alarms_;
  bool repost_second_ ABSL_GUARDED_BY(mu_) = false;
};

// Takes the next completion and runs its handler; false on a timeout.
bool HandleNext(grpc::CompletionQueue& cq) {
  void* tag = nullptr;
  bool ok = false;
  const auto status = cq.AsyncNext(
      &tag, &ok, absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (status != grpc::CompletionQueue::GOT_EVENT) return false;
  static_cast<CompletionTag*>(tag)->OnComplete(ok);
  return true;
}

void ShutDownAndDrain(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  PollUntilShutdown(&cq);
}

TEST_CASE("A tagged call is deleted when its last pending tag comes back, "
          "not before", "[tagged_call]") {
  grpc::CompletionQueue cq;
  Seen seen;
  auto* call = new RecordingCall(&cq, &seen);
  call->Arm(TestEvent::kFirst);
  call->Arm(TestEvent::kSecond);
  call->Arm(TestEvent::kThird);
  CHECK(call->pending() == 3);

  REQUIRE(HandleNext(cq));
  CHECK(!seen.deleted);
  REQUIRE(HandleNext(cq));
  CHECK(!seen.deleted);
  CHECK(call->pending() == 1);
  REQUIRE(HandleNext(cq));
  CHECK(seen.deleted);  // `call` is gone.

  // Each event came back once, through its own tag.
  std::vector<TestEvent> events = seen.events;
  std::sort(events.begin(), events.end());
  CHECK(events == std::vector<TestEvent>{TestEvent::kFirst, TestEvent::kSecond,
                                         TestEvent::kThird});
  CHECK(seen.oks == std::vector<bool>{true, true, true});
  ShutDownAndDrain(cq);
}

TEST_CASE("An operation posted from a handler keeps the call alive until it "
          "too comes back", "[tagged_call]") {
  grpc::CompletionQueue cq;
  Seen seen;
  auto* call = new RecordingCall(&cq, &seen);
  call->set_repost_second();
  call->Arm(TestEvent::kFirst);
  REQUIRE(HandleNext(cq));  // kFirst: posts kSecond; the count stays at 1.
  CHECK(!seen.deleted);
  REQUIRE(HandleNext(cq));
  CHECK(seen.deleted);
  CHECK(seen.events == std::vector<TestEvent>{TestEvent::kFirst,
                                              TestEvent::kSecond});
  ShutDownAndDrain(cq);
}

TEST_CASE("A cancelled operation comes back with ok == false and still "
          "counts", "[tagged_call]") {
  grpc::CompletionQueue cq;
  Seen seen;
  auto* call = new RecordingCall(&cq, &seen);
  call->Arm(TestEvent::kFirst, /*far=*/true);
  call->Arm(TestEvent::kSecond);
  REQUIRE(HandleNext(cq));  // kSecond, due at once.
  CHECK(seen.events == std::vector<TestEvent>{TestEvent::kSecond});
  CHECK(!seen.deleted);
  call->Cancel(TestEvent::kFirst);
  REQUIRE(HandleNext(cq));
  CHECK(seen.deleted);
  CHECK(seen.events == std::vector<TestEvent>{TestEvent::kSecond,
                                              TestEvent::kFirst});
  CHECK(seen.oks == std::vector<bool>{true, false});
  ShutDownAndDrain(cq);
}

TEST_CASE("A withdrawn tag is not waited for", "[tagged_call]") {
  grpc::CompletionQueue cq;
  Seen seen;
  auto* call = new RecordingCall(&cq, &seen);
  // Counted, then uncounted: as a server call's done notification is when
  // its request fails.
  call->CountAndWithdraw(TestEvent::kThird);
  call->Arm(TestEvent::kFirst);
  CHECK(call->pending() == 1);
  REQUIRE(HandleNext(cq));
  CHECK(seen.deleted);
  ShutDownAndDrain(cq);
}

TEST_CASE("Each event has one tag of its own", "[tagged_call]") {
  grpc::CompletionQueue cq;
  Seen seen;
  auto* call = new RecordingCall(&cq, &seen);
  void* first = call->TagOf(TestEvent::kFirst);
  CHECK(call->TagOf(TestEvent::kFirst) == first);
  CHECK(call->TagOf(TestEvent::kSecond) != first);
  CHECK(call->TagOf(TestEvent::kThird) != call->TagOf(TestEvent::kSecond));
  call->Arm(TestEvent::kFirst);
  REQUIRE(HandleNext(cq));
  CHECK(seen.deleted);
  ShutDownAndDrain(cq);
}

}  // namespace
}  // namespace routeguide
