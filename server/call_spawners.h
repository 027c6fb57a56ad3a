#ifndef ROUTEGUIDE_SERVER_CALL_SPAWNERS_H_
#define ROUTEGUIDE_SERVER_CALL_SPAWNERS_H_

#include "call_environment.h"
#include "grpcpp/completion_queue.h"

namespace routeguide {

// Each Spawn* posts one request for its method on `cq`. A call that
// receives its request spawns its replacement, so the number waiting per
// method per queue stays what the server pre-posted.
void SpawnGetFeatureCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq);
void SpawnListFeaturesCall(CallEnvironment& env,
                           grpc::ServerCompletionQueue* cq);
void SpawnRecordRouteCall(CallEnvironment& env,
                          grpc::ServerCompletionQueue* cq);
void SpawnRouteChatCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq);
void SpawnHealthCheckCall(CallEnvironment& env,
                          grpc::ServerCompletionQueue* cq);
// Only when reflection is served (CallEnvironment::reflection is set).
void SpawnReflectionCall(CallEnvironment& env, grpc::ServerCompletionQueue* cq);

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_CALL_SPAWNERS_H_
