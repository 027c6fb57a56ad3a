// Calls per server address of a --target list, as gRPC's channelz counts
// them on each channel's subchannels (one per address), so the report can
// show how the load was split without a cost on the calls' hot path.
#ifndef ROUTEGUIDE_CLIENT_ADDRESS_CALLS_H_
#define ROUTEGUIDE_CLIENT_ADDRESS_CALLS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace routeguide {

struct AddressCalls {
  std::string address;  // As gRPC names it: "ipv4:127.0.0.1:50051".
  int64_t started = 0;
  int64_t succeeded = 0;
  int64_t failed = 0;
};

// Summed over all live channels created with `channel_target`; by address,
// in the order channelz lists them. Counts every call on those channels
// (warm-up and the first ListFeatures too). Empty when channelz is off.
std::vector<AddressCalls> CallsByAddress(absl::string_view channel_target);

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_ADDRESS_CALLS_H_
