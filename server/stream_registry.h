#ifndef ROUTEGUIDE_SERVER_STREAM_REGISTRY_H_
#define ROUTEGUIDE_SERVER_STREAM_REGISTRY_H_

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace routeguide {

// The streaming calls in flight (ListFeatures, RecordRoute, RouteChat,
// server reflection), so
// that shutdown can end them with a status before gRPC would cut them off,
// and the server's idle sweep can end those whose client stopped making
// progress. Thread-safe.
class StreamRegistry {
 public:
  class Member {
   public:
    // Asks the stream to end with UNAVAILABLE. Must not block: false when
    // the call is busy (its lock is taken) and should be asked again.
    virtual bool TryRequestStop() = 0;
    // Ends the stream with DEADLINE_EXCEEDED if it has an idle timeout and
    // its client has made no progress for that long by `now`. Must not
    // block: a call that is busy (its lock is taken) is skipped, as it is
    // making progress.
    virtual void TryEndIfIdle(absl::Time now) = 0;

   protected:
    ~Member() = default;
  };

  void Add(Member* member) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    members_.insert(member);
  }
  // A member leaves before any of it is destroyed.
  void Remove(Member* member) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    members_.erase(member);
  }

  // Asks every stream to end; returns once each has been asked. Calls take
  // their own lock before this registry's (they join it from their
  // handlers), so this one only try-locks them and comes back for the busy.
  // (TryRequestStop is idempotent, so members already asked are simply
  // asked again.)
  void StopAll() ABSL_LOCKS_EXCLUDED(mu_) {
    for (;;) {
      bool busy = false;
      {
        absl::MutexLock lock(&mu_);
        for (Member* member : members_) {
          if (!member->TryRequestStop()) busy = true;
        }
      }
      if (!busy) return;
      absl::SleepFor(absl::Microseconds(100));
    }
  }

  // One pass of the idle sweep: asks every stream to end if it has been
  // idle for its timeout by `now`. Try-locks the calls, as StopAll does.
  // Streams starting or ending wait for the pass: a try-lock and a time
  // comparison per stream (an alarm set only for the idle ones).
  void EndIdle(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    for (Member* member : members_) member->TryEndIfIdle(now);
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<Member*> members_ ABSL_GUARDED_BY(mu_);
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_STREAM_REGISTRY_H_
