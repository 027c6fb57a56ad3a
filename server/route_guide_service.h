#ifndef ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVICE_H_
#define ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVICE_H_

#include "route_guide.grpc.pb.h"

namespace routeguide {

// RouteGuide on the completion-queue API. ListFeatures is raw: its
// requests arrive as bytes and its features go out pre-encoded (see
// FeatureWireCache). RecordRoute and RouteChat are raw so that a corrupt
// message mid-stream is an error, not an end of stream (wire_messages.h).
using RouteGuideAsyncService = RouteGuide::WithAsyncMethod_GetFeature<
    RouteGuide::WithRawMethod_ListFeatures<RouteGuide::WithRawMethod_RecordRoute<
        RouteGuide::WithRawMethod_RouteChat<RouteGuide::Service>>>>;

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVICE_H_
