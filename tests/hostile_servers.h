// RouteGuide servers that misbehave on purpose, for the client's process
// tests: the load generator must give up on them with a clear error
// instead of hanging or growing without bound.
#ifndef ROUTEGUIDE_TESTS_HOSTILE_SERVERS_H_
#define ROUTEGUIDE_TESTS_HOSTILE_SERVERS_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "catch2/catch.hpp"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "route_guide.grpc.pb.h"

namespace routeguide {
namespace testing {

// What its ListFeatures does; the other methods are left unimplemented.
enum class ListBehavior {
  kSilent,   // Accepts the call and never answers (until cancelled).
  kEndless,  // Streams made-up features until the client goes away.
};

class HostileListService final : public RouteGuide::Service {
 public:
  explicit HostileListService(ListBehavior behavior) : behavior_(behavior) {}

  grpc::Status ListFeatures(grpc::ServerContext* context, const Rectangle*,
                            grpc::ServerWriter<Feature>* writer) override {
    calls_.fetch_add(1);
    if (behavior_ == ListBehavior::kSilent) {
      // Headers are not sent either: the client sees nothing at all.
      while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(10));
      return grpc::Status::CANCELLED;
    }
    Feature feature;
    feature.set_name(std::string(200, 'x'));  // Memory grows fast.
    for (int32_t i = 0;; ++i) {
      feature.mutable_location()->set_latitude(i % 900000000);
      feature.mutable_location()->set_longitude(i / 900000000);
      if (!writer->Write(feature)) break;  // The client cancelled.
      sent_.fetch_add(1, std::memory_order_relaxed);
    }
    return grpc::Status::CANCELLED;
  }

  int calls() const { return calls_.load(); }
  int64_t sent() const { return sent_.load(); }

 private:
  const ListBehavior behavior_;
  std::atomic<int> calls_{0};
  std::atomic<int64_t> sent_{0};
};

// The service on 127.0.0.1, a free port; shut down (calls cancelled) on
// destruction.
class HostileServer {
 public:
  explicit HostileServer(ListBehavior behavior) : service_(behavior) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
    REQUIRE(port_ > 0);
  }
  ~HostileServer() {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(1));
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  const HostileListService& service() const { return service_; }

 private:
  HostileListService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace testing
}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_HOSTILE_SERVERS_H_
