// RouteChat from the client side, bidirectional streaming: the whole life
// of one call.
//
// Reads and writes are independent events with their own tags: after the
// start, a Read is always in flight until the server ends the stream, and
// the notes are written one at a time beside it.
//
//   event            ok     what happens
//   kStarted         true   post the first Read and the first Write
//   kStarted         false  reading and writing are over: Finish
//   kReadDone        true   on_receive, next Read
//   kReadDone        false  reading is over (the server ended the stream)
//   kWriteDone       true   next Write, or WritesDone after the last note
//   kWriteDone       false  writing is over (the stream is broken)
//   kWritesDoneDone  any    writing is over
//   kFinished        -      on_done
//
// Finish is posted once both reading and writing are over. The call is
// deleted by TaggedCall when its last tag comes back.
#include <memory>

#include "client_calls.h"
#include "tagged_call.h"

namespace routeguide {
namespace {

enum class RouteChatClientEvent : uint8_t {
  kStarted,
  kReadDone,
  kWriteDone,
  kWritesDoneDone,
  kFinished,
  kCount
};

class RouteChatClientCall final
    : public TaggedCall<RouteChatClientCall, RouteChatClientEvent> {
 public:
  RouteChatClientCall(std::vector<RouteNote> notes,
                      std::function<void(const RouteNote&)> on_send,
                      std::function<void(const RouteNote&)> on_receive,
                      std::function<void(const grpc::Status&)> on_done)
      : notes_(std::move(notes)),
        on_send_(std::move(on_send)),
        on_receive_(std::move(on_receive)),
        on_done_(std::move(on_done)) {}

  void Start(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
             const CallOptions& options) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    options.ApplyTo(context_);
    batch_writes_ = options.batch_writes;
    stream_ = stub.PrepareAsyncRouteChat(&context_, &cq);
    stream_->StartCall(Post(Event::kStarted));
  }

 private:
  friend class TaggedCall<RouteChatClientCall, RouteChatClientEvent>;
  using Event = RouteChatClientEvent;
  void ProceedLocked(Event event, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (event) {
      case Event::kStarted:
        if (!ok) {
          reading_over_ = true;
          writing_over_ = true;
          break;
        }
        ReadNext();
        WriteNext();
        break;
      case Event::kReadDone:
        if (!ok) {
          reading_over_ = true;
          break;
        }
        on_receive_(incoming_);
        ReadNext();
        break;
      case Event::kWriteDone:
        if (!ok) {
          writing_over_ = true;
          break;
        }
        WriteNext();
        break;
      case Event::kWritesDoneDone:
        writing_over_ = true;
        break;
      case Event::kFinished:
        on_done_(status_);
        return;
      case Event::kCount:
        break;
    }
    MaybeFinish();
  }

  void ReadNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    stream_->Read(&incoming_, Post(Event::kReadDone));
  }

  // Writes the next note, or half-closes after the last one. Once the
  // server has ended the stream there is no point in sending more.
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_over_) {
      writing_over_ = true;
      return;
    }
    if (next_ == notes_.size()) {
      stream_->WritesDone(Post(Event::kWritesDoneDone));
      return;
    }
    const RouteNote& note = notes_[next_++];
    on_send_(note);
    stream_->Write(note, StreamWriteOptions(batch_writes_), Post(Event::kWriteDone));
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_posted_ || !reading_over_ || !writing_over_) return;
    finish_posted_ = true;
    stream_->Finish(&status_, Post(Event::kFinished));
  }

  const std::vector<RouteNote> notes_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool batch_writes_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(const RouteNote&)> on_send_;
  std::function<void(const RouteNote&)> on_receive_;
  std::function<void(const grpc::Status&)> on_done_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<RouteNote, RouteNote>> stream_;
  // No Read, or no Write or WritesDone, will be posted again.
  bool reading_over_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_over_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_posted_ ABSL_GUARDED_BY(mu_) = false;
  RouteNote incoming_ ABSL_GUARDED_BY(mu_);  // Filled by the pending Read.
  grpc::Status status_;
};

}  // namespace

void StartRouteChat(RouteGuide::Stub& stub, grpc::CompletionQueue& cq,
                    const CallOptions& options, std::vector<RouteNote> notes,
                    std::function<void(const RouteNote&)> on_send,
                    std::function<void(const RouteNote&)> on_receive,
                    std::function<void(const grpc::Status&)> on_done) {
  (new RouteChatClientCall(std::move(notes), std::move(on_send),
                           std::move(on_receive), std::move(on_done)))
      ->Start(stub, cq, options);
}

}  // namespace routeguide
