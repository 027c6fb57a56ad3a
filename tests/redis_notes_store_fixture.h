// What the redis_notes_store tests share: a real redis-server
// (tests/redis_server.h) and a RedisNotesStore connected to it.
#ifndef ROUTEGUIDE_TESTS_REDIS_NOTES_STORE_FIXTURE_H_
#define ROUTEGUIDE_TESTS_REDIS_NOTES_STORE_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "redis_notes_store.h"
#include "redis_server.h"
#include "test_util.h"

namespace routeguide {

inline std::unique_ptr<testing::RedisServer> StartRedisOrFail() {
  auto redis = testing::RedisServer::Start();
  INFO(redis.status().ToString());
  REQUIRE(redis.ok());
  return *std::move(redis);
}

inline RedisNotesStoreOptions OptionsFor(const std::string& url) {
  auto address = ParseNotesStore(url);
  INFO(address.status().ToString());
  REQUIRE(address.ok());
  REQUIRE(address->has_value());
  RedisNotesStoreOptions options;
  options.address = **address;
  return options;
}

inline std::unique_ptr<RedisNotesStore> StartStoreOrFail(RedisNotesStoreOptions options) {
  auto store = RedisNotesStore::Start(std::move(options));
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

// Start waits for the first connection only up to the store's timeout,
// which a loaded machine may pass: tests that need the store up wait here.
inline bool AwaitUp(const RedisNotesStore& store) {
  return WaitFor([&] { return store.up(); }, absl::Seconds(5));
}

inline int64_t Integer(const absl::StatusOr<testing::RespValue>& reply) {
  INFO(reply.status().ToString());
  REQUIRE(reply.ok());
  INFO(reply->ToString());
  REQUIRE(reply->type == testing::RespValue::Type::kInteger);
  return reply->integer;
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_REDIS_NOTES_STORE_FIXTURE_H_
