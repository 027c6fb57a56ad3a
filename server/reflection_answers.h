#ifndef ROUTEGUIDE_SERVER_REFLECTION_ANSWERS_H_
#define ROUTEGUIDE_SERVER_REFLECTION_ANSWERS_H_

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/types/span.h"
#include "reflection.pb.h"

namespace routeguide {

// Server reflection's answers, apart from the call that carries them
// (reflection_call.cc), from the descriptors protobuf keeps of every
// .proto file linked into the process (DescriptorPool::generated_pool,
// built on the first use, not at start-up).
class ReflectionAnswers {
 public:
  // `services`: the full names of the services the server serves, as
  // list_services reports them; they must outlive this.
  explicit ReflectionAnswers(absl::Span<const std::string> services)
      : services_(services) {}

  // The answer to one request of a stream. A request that cannot be
  // answered (an unknown file or symbol, an empty or unknown kind of
  // request) gets an error_response; the stream goes on. A file comes with
  // the files it imports, directly or not, that this stream has not been
  // sent yet (each stream has its own ReflectionAnswers).
  grpc::reflection::v1alpha::ServerReflectionResponse Answer(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request);

 private:
  const absl::Span<const std::string> services_;
  absl::flat_hash_set<std::string> files_sent_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_REFLECTION_ANSWERS_H_
