#ifndef ROUTEGUIDE_CLIENT_IMPOSSIBLE_EVENT_H_
#define ROUTEGUIDE_CLIENT_IMPOSSIBLE_EVENT_H_

#include <cstdlib>

#include "spdlog/spdlog.h"

namespace routeguide {

// Ends the process when a call's completion arrives in a state whose row of
// the call's table has no such event. Either gRPC handed back a tag it
// should not have or the call's own bookkeeping is wrong; going on could
// touch a call already deleted, so the process stops loudly instead, as
// gRPC's qps code does in its unreachable states.
template <typename State, typename Event>
[[noreturn]] void DieOnImpossibleEvent(const char* call, State state,
                                       Event event, bool ok) {
  spdlog::critical(
      "{}: event #{} (ok {}) in state #{} (the enums' order) is not in the "
      "call's state table; aborting",
      call, static_cast<int>(event), ok, static_cast<int>(state));
  std::abort();
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_IMPOSSIBLE_EVENT_H_
