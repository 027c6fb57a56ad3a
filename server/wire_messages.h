#ifndef ROUTEGUIDE_SERVER_WIRE_MESSAGES_H_
#define ROUTEGUIDE_SERVER_WIRE_MESSAGES_H_

// Messages of the raw (ByteBuffer) methods. The completion-queue API
// reports a request that fails to parse exactly like the end of the
// client's stream (a Read with ok == false), so a corrupt message in the
// middle of a RecordRoute or RouteChat would pass for a half-close and the
// call would end OK on partial input. Those methods therefore read bytes
// and parse them here, where a failure is an error the call can report.

#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace routeguide {

// Parses `bytes` (which it empties) into `message`: false when they are no
// valid encoding of it (not protobuf, truncated, or a string field that is
// not UTF-8).
template <typename Message>
bool ParseWire(grpc::ByteBuffer& bytes, Message* message) {
  return grpc::SerializationTraits<Message>::Deserialize(&bytes, message).ok();
}

// `message` encoded for a raw Write or Finish.
template <typename Message>
grpc::ByteBuffer ToWire(const Message& message) {
  grpc::ByteBuffer bytes;
  bool own_buffer = false;
  grpc::SerializationTraits<Message>::Serialize(message, &bytes, &own_buffer);
  return bytes;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_WIRE_MESSAGES_H_
