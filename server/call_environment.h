#ifndef ROUTEGUIDE_SERVER_CALL_ENVIRONMENT_H_
#define ROUTEGUIDE_SERVER_CALL_ENVIRONMENT_H_

#include <atomic>

#include "call_registry.h"
#include "feature_store.h"
#include "feature_wire_cache.h"
#include "grpcpp/server_context.h"
#include "health.grpc.pb.h"
#include "redis_notes_store.h"
#include "reflection.grpc.pb.h"
#include "route_guide_service.h"
#include "server_options.h"
#include "stream_registry.h"

namespace routeguide {

// What a call without the right token is told.
inline constexpr char kUnauthenticatedMessage[] =
    "this server needs an authorization: Bearer <token> header with the "
    "right token";

// Server reflection on the completion-queue API, raw like RouteGuide (see
// route_guide_service.h): each call parses its own requests.
using ReflectionAsyncService =
    grpc::reflection::v1alpha::ServerReflection::WithRawMethod_ServerReflectionInfo<
        grpc::reflection::v1alpha::ServerReflection::Service>;

// What every server call needs; owned by RouteGuideServer, which outlives
// all calls. Every bound and setting is read from `options` (the server's
// own ServerOptions), so defaults live in one place.
struct CallEnvironment {
  const ServerOptions* options = nullptr;
  RouteGuideAsyncService* service = nullptr;
  grpc::health::v1::Health::AsyncService* health = nullptr;
  // Null when reflection is not served.
  ReflectionAsyncService* reflection = nullptr;
  FeatureStore* store = nullptr;
  // Where RouteChat's notes go when they are shared by replicas; null: in
  // `store`, in this process.
  RedisNotesStore* shared_notes = nullptr;
  FeatureWireCache* wire = nullptr;  // The store's features, encoded.
  CallRegistry* registry = nullptr;
  StreamRegistry* streams = nullptr;
  // What health checks answer: false from the start of shutdown.
  std::atomic<bool> serving{true};

  // Whether a call may go on, from its headers: RESOURCE_EXHAUSTED when its
  // metadata (in HPACK's accounting: name + value + 32 bytes an entry) is
  // over options->max_metadata_bytes (gRPC 1.51 enforces that itself only
  // once the client has acknowledged the server's SETTINGS, so a client
  // that never does gets here with megabytes of headers); UNAUTHENTICATED
  // when a token is required and the call does not carry
  // "authorization: Bearer <token>" (the token is never logged); else OK.
  grpc::Status Admit(const grpc::ServerContext& context) const;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_CALL_ENVIRONMENT_H_
