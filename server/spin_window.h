#ifndef ROUTEGUIDE_SERVER_SPIN_WINDOW_H_
#define ROUTEGUIDE_SERVER_SPIN_WINDOW_H_

#include <algorithm>

#include "absl/time/time.h"

namespace routeguide {

// The HTTP/2 guard's longest spin by default (Http2GuardOptions::spin,
// ServerOptions::http2_guard_spin): long enough to cover the gaps between
// the events of calls made one at a time on the machines measured
// (30 and 50 us did not, docs/benchmarks.md, run P).
inline constexpr absl::Duration kDefaultGuardSpin = absl::Microseconds(100);
// The most streams under way, on all connections, with which the guard
// still spins (Http2GuardOptions::spin_max_open_streams): a few calls made
// one at a time each.
inline constexpr int64_t kDefaultSpinMaxOpenStreams = 4;
// The longest it may be set to: past it the thread would be polling more
// or less for good.
inline constexpr absl::Duration kMaxGuardSpin = absl::Seconds(1);

// How long the HTTP/2 guard's thread keeps polling, once it has nothing
// to do, before it sleeps. A poll pays only when the next event comes
// within it: then the core has not gone idle and need not be woken, which
// on a virtual machine is most of what the guard's relay adds to a call
// made one at a time. A poll that comes up empty was a busy core for
// nothing. So the window follows the waits the guard has seen, the way
// Linux's KVM polls before it halts a virtual CPU (with its shrink factor
// at 0, which resets the window):
// - a wait longer than `max` (traffic spread thin, an idle connection)
//   closes the window: no poll until waits are short again;
// - a wait within `max` that the window did not catch doubles it (from
//   kFirstSpinWindow, at most `max`): a longer poll would have;
// - a wait the window caught leaves it as it is.
// Calls made one at a time grow it until it covers the gaps between their
// events. Calls spread wider than `max` apart cost a few short polls
// each: the short gaps inside a call (request, answer) reopen the window
// at 10-20 us, and the long one after it closes it again. The guard has
// one window for all its connections, so what counts is their events
// together: many light clients can keep it open.
class SpinWindow {
 public:
  static constexpr absl::Duration kFirstSpinWindow = absl::Microseconds(10);

  // `max` zero: never polls.
  explicit SpinWindow(absl::Duration max) : max_(max) {}

  absl::Duration window() const { return window_; }

  // The guard waited `waited` from running out of work to its next
  // event. (A poll may catch an event just after the window ran out; it
  // counts as a wait the window missed.)
  void Record(absl::Duration waited) {
    if (waited > max_) {
      window_ = absl::ZeroDuration();
    } else if (waited > window_) {
      window_ = std::min(max_, std::max(kFirstSpinWindow, 2 * window_));
    }
  }

 private:
  const absl::Duration max_;
  absl::Duration window_ = absl::ZeroDuration();
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_SPIN_WINDOW_H_
