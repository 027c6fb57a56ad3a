#ifndef ROUTEGUIDE_CLIENT_CLIENT_QUEUES_H_
#define ROUTEGUIDE_CLIENT_CLIENT_QUEUES_H_

#include <memory>
#include <thread>
#include <vector>

#include "grpcpp/completion_queue.h"
#include "tagged_call.h"

namespace routeguide {

// The client's completion queues, each polled by a thread of its own. Calls
// started on a queue run their state machines on that one thread, so state
// kept per queue (the load generator's figures) has a single writer.
//
// Shutdown (also run by the destructor) shuts every queue down and joins
// the pollers once each has drained its queue; every call must have been
// started before it and ends during it. Not thread-safe: the owner starts
// and stops it.
class ClientQueues {
 public:
  explicit ClientQueues(int queues) {
    for (int i = 0; i < queues; ++i) {
      queues_.push_back(std::make_unique<grpc::CompletionQueue>());
      grpc::CompletionQueue* cq = queues_.back().get();
      pollers_.emplace_back([cq] { PollUntilShutdown(cq); });
    }
  }
  ~ClientQueues() { Shutdown(); }
  ClientQueues(const ClientQueues&) = delete;
  ClientQueues& operator=(const ClientQueues&) = delete;

  int size() const { return static_cast<int>(queues_.size()); }
  grpc::CompletionQueue* queue(int i) const { return queues_[i].get(); }

  void Shutdown() {
    for (auto& cq : queues_) cq->Shutdown();
    for (std::thread& poller : pollers_) poller.join();
    pollers_.clear();
  }

 private:
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
  std::vector<std::thread> pollers_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_CLIENT_CLIENT_QUEUES_H_
