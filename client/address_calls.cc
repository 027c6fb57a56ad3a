#include "address_calls.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "grpc/grpc.h"
#include "grpc/support/alloc.h"
#include "nlohmann/json.hpp"

namespace routeguide {
namespace {

// channelz's JSON from a gRPC call that returns a malloc'ed string; null
// JSON when there is none.
template <typename Fetch>
nlohmann::json FetchJson(Fetch fetch) {
  char* text = fetch();
  if (text == nullptr) return nullptr;
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  gpr_free(text);
  return json;
}

// channelz writes int64 counters as strings and leaves zeros out.
int64_t Counter(const nlohmann::json& data, const char* name) {
  if (!data.contains(name)) return 0;
  const nlohmann::json& value = data[name];
  if (value.is_number_integer()) return value.get<int64_t>();
  int64_t n = 0;
  if (value.is_string() && absl::SimpleAtoi(value.get<std::string>(), &n)) return n;
  return 0;
}

}  // namespace

std::vector<AddressCalls> CallsByAddress(absl::string_view channel_target) {
  std::vector<AddressCalls> by_address;
  auto add = [&by_address](const std::string& address, const nlohmann::json& data) {
    AddressCalls* entry = nullptr;
    for (AddressCalls& e : by_address) {
      if (e.address == address) entry = &e;
    }
    if (entry == nullptr) entry = &by_address.emplace_back(AddressCalls{address});
    entry->started += Counter(data, "callsStarted");
    entry->succeeded += Counter(data, "callsSucceeded");
    entry->failed += Counter(data, "callsFailed");
  };
  intptr_t next_id = 0;
  for (;;) {
    const nlohmann::json top =
        FetchJson([next_id] { return grpc_channelz_get_top_channels(next_id); });
    if (!top.is_object() || !top.contains("channel") || top["channel"].empty()) {
      break;
    }
    for (const nlohmann::json& channel : top["channel"]) {
      const intptr_t id = static_cast<intptr_t>(
          Counter(channel.value("ref", nlohmann::json::object()), "channelId"));
      next_id = std::max(next_id, id + 1);
      const nlohmann::json data = channel.value("data", nlohmann::json::object());
      if (data.value("target", "") != channel_target) continue;
      for (const nlohmann::json& ref :
           channel.value("subchannelRef", nlohmann::json::array())) {
        const intptr_t sub_id = static_cast<intptr_t>(Counter(ref, "subchannelId"));
        const nlohmann::json sub =
            FetchJson([sub_id] { return grpc_channelz_get_subchannel(sub_id); });
        if (!sub.is_object() || !sub.contains("subchannel")) continue;
        const nlohmann::json sub_data =
            sub["subchannel"].value("data", nlohmann::json::object());
        add(sub_data.value("target", ref.value("name", "?")), sub_data);
      }
    }
    if (top.value("end", false)) break;
  }
  return by_address;
}

}  // namespace routeguide
