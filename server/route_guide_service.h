#ifndef ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVICE_H_
#define ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVICE_H_

#include "grpcpp/support/async_stream.h"
#include "grpcpp/support/async_unary_call.h"
#include "route_guide.grpc.pb.h"
#include "wire_messages.h"

namespace routeguide {

// RouteGuide on the completion-queue API, every method raw: requests arrive
// as bytes and each call parses its own, so that a corrupt message is an
// error the call reports (mid-stream it would otherwise pass for the end of
// the stream: wire_messages.h), and Points take the fast path.
//
// GetFeature and ListFeatures answer with features encoded once
// (FeatureWireCache), RouteChat with notes encoded straight into a slice
// (EncodeRouteNote), through writers of EncodedMessage; the generated raw
// Request methods take writers of ByteBuffer only, hence the three below.
class RouteGuideAsyncService final
    : public RouteGuide::WithRawMethod_GetFeature<
          RouteGuide::WithRawMethod_ListFeatures<
              RouteGuide::WithRawMethod_RecordRoute<
                  RouteGuide::WithRawMethod_RouteChat<RouteGuide::Service>>>> {
 public:
  void RequestGetFeatureEncoded(
      grpc::ServerContext* context, grpc::ByteBuffer* request,
      grpc::ServerAsyncResponseWriter<EncodedMessage>* responder,
      grpc::CompletionQueue* new_call_cq,
      grpc::ServerCompletionQueue* notification_cq, void* tag) {
    RequestAsyncUnary(kGetFeatureIndex, context, request, responder,
                      new_call_cq, notification_cq, tag);
  }

  void RequestListFeaturesEncoded(
      grpc::ServerContext* context, grpc::ByteBuffer* request,
      grpc::ServerAsyncWriter<EncodedMessage>* writer,
      grpc::CompletionQueue* new_call_cq,
      grpc::ServerCompletionQueue* notification_cq, void* tag) {
    RequestAsyncServerStreaming(kListFeaturesIndex, context, request, writer,
                                new_call_cq, notification_cq, tag);
  }

  void RequestRouteChatEncoded(
      grpc::ServerContext* context,
      grpc::ServerAsyncReaderWriter<EncodedMessage, grpc::ByteBuffer>* stream,
      grpc::CompletionQueue* new_call_cq,
      grpc::ServerCompletionQueue* notification_cq, void* tag) {
    RequestAsyncBidiStreaming(kRouteChatIndex, context, stream, new_call_cq,
                              notification_cq, tag);
  }

 private:
  // The methods' indexes: their order in route_guide.proto, as the
  // generated Request methods number them.
  static constexpr int kGetFeatureIndex = 0;
  static constexpr int kListFeaturesIndex = 1;
  static constexpr int kRouteChatIndex = 3;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_ROUTE_GUIDE_SERVICE_H_
