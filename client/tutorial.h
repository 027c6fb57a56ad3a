#ifndef ROUTEGUIDE_CLIENT_TUTORIAL_H_
#define ROUTEGUIDE_CLIENT_TUTORIAL_H_

#include <cstdint>
#include <memory>
#include <ostream>

#include "absl/status/status.h"
#include "client_calls.h"
#include "grpcpp/channel.h"

namespace routeguide {

struct TutorialOptions {
  CallOptions call;
  // Seeds the choice of RecordRoute's points.
  uint64_t seed = 0;
};

// The tutorial client's walkthrough ("Try it!"): two GetFeatures, a
// ListFeatures over the tutorial's rectangle, a RecordRoute over ten random
// stored features, and a RouteChat of five notes, printed to `out` in the
// tutorial's format. Runs each call on the completion-queue API. Returns the
// first failed call's status, after printing what it had.
absl::Status RunTutorial(const std::shared_ptr<grpc::Channel>& channel,
                         const TutorialOptions& options, std::ostream& out);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_TUTORIAL_H_
