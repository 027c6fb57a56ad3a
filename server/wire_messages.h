#ifndef ROUTEGUIDE_SERVER_WIRE_MESSAGES_H_
#define ROUTEGUIDE_SERVER_WIRE_MESSAGES_H_

// Messages of the raw (ByteBuffer) methods. The completion-queue API
// reports a request that fails to parse exactly like the end of the
// client's stream (a Read with ok == false), so a corrupt message in the
// middle of a RecordRoute or RouteChat would pass for a half-close and the
// call would end OK on partial input. Those methods therefore read bytes
// and parse them here, where a failure is an error the call can report.

#include <optional>
#include <string>

#include "feature_store.h"
#include "geo.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "grpcpp/support/slice.h"

namespace routeguide {

// A message encoded once and sent many times (a feature from
// FeatureWireCache), as the type of a raw method's writer. Sending one
// costs a slice reference: a grpc::ByteBuffer would be built for it, then
// copied again by the Write (gRPC's transport takes the slices out of the
// buffer it is given), and both freed, about 1,000 instructions a message.
struct EncodedMessage {
  grpc::Slice bytes;
};

// The Point in `bytes` (which it empties), or nullopt when they are not a
// routeguide.Point. What clients send is read directly (DecodePlainPoint);
// anything else goes to protobuf, whose rules decide.
std::optional<GeoPoint> ParsePointWire(grpc::ByteBuffer& bytes);

// Parses `bytes` (which it empties) into `message`: false when they are no
// valid encoding of it (not protobuf, truncated, or a string field that is
// not UTF-8).
template <typename Message>
bool ParseWire(grpc::ByteBuffer& bytes, Message* message) {
  return grpc::SerializationTraits<Message>::Deserialize(&bytes, message).ok();
}

// `note` as a routeguide.RouteNote, in one slice: the bytes protobuf's
// serializer gives for the RouteNote that ToProto makes of it (the location
// always present, zero fields left out), without building one. RouteChat's
// replies are the most numerous messages the server sends.
grpc::Slice EncodeRouteNote(const Note& note);

// Appends `feature` as a routeguide.Feature to `out`: the bytes protobuf's
// serializer gives for the Feature that ToProto makes of it (the location
// always present, an empty name left out). FeatureWireCache encodes every
// feature this way once, at start-up and as the store grows.
void AppendFeature(const FeatureRecord& feature, std::string* out);

// `message` encoded for a raw Write or Finish.
template <typename Message>
grpc::ByteBuffer ToWire(const Message& message) {
  grpc::ByteBuffer bytes;
  bool own_buffer = false;
  grpc::SerializationTraits<Message>::Serialize(message, &bytes, &own_buffer);
  return bytes;
}

}  // namespace routeguide

namespace grpc {

// Only ever sent, never received.
template <>
class SerializationTraits<routeguide::EncodedMessage, void> {
 public:
  static Status Serialize(const routeguide::EncodedMessage& message,
                          ByteBuffer* buffer, bool* own_buffer) {
    ByteBuffer fresh(&message.bytes, 1);  // Adds a reference, copies nothing.
    buffer->Swap(&fresh);
    *own_buffer = true;
    return Status::OK;
  }
};

}  // namespace grpc

#endif  // ROUTEGUIDE_SERVER_WIRE_MESSAGES_H_
