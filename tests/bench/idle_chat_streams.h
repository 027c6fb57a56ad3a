// IdleChatStreams: the RouteChat streams idle-chat-streams opens, holds and
// closes, driven by one thread from one completion queue (the tool and its
// output: idle_chat_streams.cc).
#ifndef ROUTEGUIDE_TESTS_BENCH_IDLE_CHAT_STREAMS_H_
#define ROUTEGUIDE_TESTS_BENCH_IDLE_CHAT_STREAMS_H_

#include <poll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "call_tags.h"
#include "flags.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "logging.h"
#include "route_guide.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "status_codes.h"

namespace routeguide {

// How long one wait on the queue lasts while holding, between looks at
// stdin.
inline constexpr absl::Duration kHoldPollInterval = absl::Milliseconds(50);

struct Config {
  std::string target;
  int streams = 0;
  int channels = 0;
  bool send_note = false;
  absl::Duration hold;
  absl::Duration timeout;
};

enum class Op : uint8_t { kStart, kWrite, kRead, kWritesDone, kFinish, kCount };
using StreamTags = CallTags<Op, static_cast<int>(Op::kCount)>;

// One RouteChat call and the operations it has in flight. Touched only by
// the main thread.
struct Stream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<RouteNote, RouteNote>> call;
  RouteNote note_out;
  RouteNote note_in;
  grpc::Status status;
  size_t index = 0;  // In the streams, and in the tags.
  bool started = false;        // StartCall came back ok.
  bool read_ended = false;     // A Read came back not ok: nothing more to read.
  bool closing = false;        // WritesDone is due once no Write is in flight.
  bool writes_done = false;    // WritesDone posted.
  bool finish_posted = false;
  bool finished = false;       // Finish came back; `status` is final.
};

// Counts of what happened, for the summary on stderr.
struct Counts {
  int start_ok = 0;
  int start_failed = 0;
  int writes_ok = 0;
  int writes_failed = 0;
  int notes_received = 0;
  int ended_early = 0;  // The server ended the stream before we closed it.
  int finished = 0;
  int finished_ok = 0;
};

// Opens, holds and closes the streams. Owns the queue, the channels and the
// streams; destroys the streams only once the queue is shut down and every
// tag has come back.
class IdleChatStreams {
 public:
  explicit IdleChatStreams(Config config) : config_(std::move(config)) {}

  IdleChatStreams(const IdleChatStreams&) = delete;
  IdleChatStreams& operator=(const IdleChatStreams&) = delete;

  ~IdleChatStreams() { AbortAndDrain(); }

  int Run() {
    if (!Connect()) return kExitUsage;

    const absl::Time open_start = absl::Now();
    Open();
    // Reads stay posted for each stream's life; starting is done once every
    // StartCall and every note's Write has come back.
    if (!PumpUntil(
            [this] {
              return PendingOps(Op::kStart) == 0 && PendingOps(Op::kWrite) == 0;
            },
            absl::Now() + config_.timeout)) {
      spdlog::error("timed out after {} opening streams: {} of {} started, {} "
                    "of {} notes written",
                    absl::FormatDuration(config_.timeout), counts_.start_ok,
                    config_.streams, counts_.writes_ok,
                    config_.send_note ? config_.streams : 0);
      return Fail();
    }
    if (counts_.start_failed > 0 || counts_.writes_failed > 0 ||
        counts_.ended_early > 0) {
      spdlog::error("{} streams failed to start, {} notes failed to send, {} "
                    "streams ended by the server",
                    counts_.start_failed, counts_.writes_failed,
                    counts_.ended_early);
      return Fail();
    }
    spdlog::info("opened {} streams over {} connections in {}{}",
                 config_.streams, channels_.size(),
                 absl::FormatDuration(absl::Now() - open_start),
                 config_.send_note ? ", one note written on each" : "");
    std::printf("open %d streams\n", config_.streams);
    std::fflush(stdout);

    Hold();
    if (counts_.ended_early > 0) {
      spdlog::warn("the server ended {} streams while they were held",
                   counts_.ended_early);
    }

    const absl::Time close_start = absl::Now();
    Close();
    if (!PumpUntil([this] { return counts_.finished == config_.streams; },
                   absl::Now() + config_.timeout)) {
      spdlog::error("timed out after {} closing streams: {} of {} finished",
                    absl::FormatDuration(config_.timeout), counts_.finished,
                    config_.streams);
      return Fail();
    }
    spdlog::info("closed {} streams in {}", config_.streams,
                 absl::FormatDuration(absl::Now() - close_start));
    LogFailedStatuses();
    std::printf("closed %d streams, %d ok\n", config_.streams,
                counts_.finished_ok);
    std::fflush(stdout);
    ShutdownQueue();
    return counts_.finished_ok == config_.streams && counts_.ended_early == 0
               ? 0
               : 1;
  }

 private:
  // Creates the channels, each distinct (so each is its own connection),
  // and waits for every one to connect.
  bool Connect() {
    const absl::Time deadline = absl::Now() + config_.timeout;
    for (int i = 0; i < config_.channels; ++i) {
      grpc::ChannelArguments args;
      // An argument no other channel has: channels with equal arguments
      // would share one subchannel, and so one connection.
      args.SetInt("routeguide.channel_index", i);
      channels_.push_back(grpc::CreateCustomChannel(
          config_.target, grpc::InsecureChannelCredentials(), args));
      stubs_.push_back(RouteGuide::NewStub(channels_.back()));
      channels_.back()->GetState(/*try_to_connect=*/true);
    }
    for (const auto& channel : channels_) {
      if (!channel->WaitForConnected(absl::ToChronoTime(deadline))) {
        spdlog::error("cannot reach a server at {} within {}", config_.target,
                      absl::FormatDuration(config_.timeout));
        return false;
      }
    }
    return true;
  }

  // Starts every stream, round-robin over the channels.
  void Open() {
    streams_.reserve(static_cast<size_t>(config_.streams));
    for (int i = 0; i < config_.streams; ++i) {
      streams_.push_back(std::make_unique<Stream>());
      Stream& stream = *streams_.back();
      stream.index = streams_.size() - 1;
      // A location of its own (valid: at most 90 degrees of latitude), so no
      // other stream's note is ever sent back on it.
      stream.note_out.mutable_location()->set_latitude(i % 900000000);
      stream.note_out.mutable_location()->set_longitude(i / 900000000);
      stream.note_out.set_message(absl::StrCat("idle stream ", i));
      stream.call = stubs_[static_cast<size_t>(i) % stubs_.size()]
                        ->PrepareAsyncRouteChat(&stream.context, &cq_);
      stream.call->StartCall(Post(stream, Op::kStart));
    }
  }

  // Pumps the queue until a line or EOF on stdin, or for --hold.
  void Hold() {
    if (config_.hold > absl::ZeroDuration()) {
      const absl::Time until = absl::Now() + config_.hold;
      PumpUntil([] { return false; }, until);
      return;
    }
    while (true) {
      PumpUntil([] { return false; }, absl::Now() + kHoldPollInterval);
      pollfd input{STDIN_FILENO, POLLIN, 0};
      if (poll(&input, 1, 0) <= 0) continue;
      char buffer[256];
      const ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
      if (n <= 0) return;  // EOF, or stdin cannot be read: stop holding.
      for (ssize_t i = 0; i < n; ++i) {
        if (buffer[i] == '\n') return;
      }
    }
  }

  // Half-closes every stream still open; the server then ends each, and
  // OnRead posts its Finish.
  void Close() {
    for (auto& stream : streams_) {
      stream->closing = true;
      MaybeWritesDone(*stream);
      MaybeFinish(*stream);
    }
  }

  // The error path: cancels every stream, waits for all tags to come back
  // and for every stream to finish, and shuts the queue down. Returns the
  // exit code for a failure.
  int Fail() {
    AbortAndDrain();
    LogFailedStatuses();
    return 1;
  }

  void AbortAndDrain() {
    if (queue_shut_down_) return;
    for (auto& stream : streams_) {
      stream->closing = true;
      stream->context.TryCancel();
      MaybeFinish(*stream);
    }
    // Cancelling completes every operation at once; the bound is a safety
    // net only.
    if (!PumpUntil([this] { return PendingOps() == 0; },
                   absl::Now() + config_.timeout)) {
      spdlog::error("{} operations still pending after cancelling",
                    PendingOps());
    }
    ShutdownQueue();
  }

  void ShutdownQueue() {
    if (queue_shut_down_) return;
    queue_shut_down_ = true;
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) Handle(tags_.Complete(tag), ok);
  }

  // Handles completions until `done()` holds or `deadline` passes; returns
  // whether `done()` held.
  template <typename Done>
  bool PumpUntil(Done done, absl::Time deadline) {
    while (!done()) {
      void* tag = nullptr;
      bool ok = false;
      switch (cq_.AsyncNext(&tag, &ok, absl::ToChronoTime(deadline))) {
        case grpc::CompletionQueue::GOT_EVENT:
          Handle(tags_.Complete(tag), ok);
          break;
        case grpc::CompletionQueue::TIMEOUT:
          return done();
        case grpc::CompletionQueue::SHUTDOWN:
          return done();
      }
    }
    return true;
  }

  // The tag for `op` on `stream`, marked pending. Set any state the
  // completion depends on before calling: with one thread it cannot race,
  // but the order stays right if more threads poll later.
  void* Post(Stream& stream, Op op) { return tags_.Post(stream.index, op); }

  // Operations of one kind, or of all kinds, posted and not yet back.
  int PendingOps(Op op) const { return tags_.InFlight(op); }
  int PendingOps() const { return tags_.InFlight(); }

  void Handle(StreamTags::Completion completion, bool ok) {
    Stream& stream = *streams_[completion.call];
    switch (completion.op) {
      case Op::kStart:
        OnStart(stream, ok);
        break;
      case Op::kWrite:
        OnWrite(stream, ok);
        break;
      case Op::kRead:
        OnRead(stream, ok);
        break;
      case Op::kWritesDone:
        // Not ok means the stream is already gone; the Read says so too.
        MaybeFinish(stream);
        break;
      case Op::kFinish:
        stream.finished = true;
        ++counts_.finished;
        if (stream.status.ok()) ++counts_.finished_ok;
        break;
      case Op::kCount:
        break;
    }
  }

  void OnStart(Stream& stream, bool ok) {
    if (!ok) {
      // The call is dead before it began; Finish tells why.
      ++counts_.start_failed;
      stream.read_ended = true;
      MaybeFinish(stream);
      return;
    }
    ++counts_.start_ok;
    stream.started = true;
    if (stream.closing) {  // Aborted while starting.
      stream.read_ended = true;
      MaybeFinish(stream);
      return;
    }
    // A Read stays posted for the stream's life: it ends when the server
    // ends the stream, which tells us when Finish may be posted.
    stream.call->Read(&stream.note_in, Post(stream, Op::kRead));
    if (config_.send_note) {
      stream.call->Write(stream.note_out, Post(stream, Op::kWrite));
    }
  }

  void OnWrite(Stream& stream, bool ok) {
    if (ok) {
      ++counts_.writes_ok;
    } else {
      ++counts_.writes_failed;
    }
    MaybeWritesDone(stream);
    MaybeFinish(stream);
  }

  void OnRead(Stream& stream, bool ok) {
    if (ok) {
      ++counts_.notes_received;
      stream.call->Read(&stream.note_in, Post(stream, Op::kRead));
      return;
    }
    stream.read_ended = true;
    if (!stream.closing) ++counts_.ended_early;
    MaybeFinish(stream);
  }

  // Half-closes once closing and no Write is in flight (one write-side
  // operation at a time).
  void MaybeWritesDone(Stream& stream) {
    if (!stream.closing || !stream.started || stream.writes_done ||
        stream.read_ended || stream.finish_posted ||
        tags_.InFlight(stream.index, Op::kWrite)) {
      return;
    }
    stream.writes_done = true;
    stream.call->WritesDone(Post(stream, Op::kWritesDone));
  }

  // Posts Finish once nothing more can be read and no other operation is
  // in flight: the one place a stream ends.
  void MaybeFinish(Stream& stream) {
    if (stream.finish_posted || !stream.read_ended ||
        tags_.AnyInFlight(stream.index)) {
      return;
    }
    stream.finish_posted = true;
    stream.call->Finish(&stream.status, Post(stream, Op::kFinish));
  }

  void LogFailedStatuses() const {
    int logged = 0;
    for (const auto& stream : streams_) {
      if (!stream->finished || stream->status.ok()) continue;
      if (++logged > 5) break;  // A few examples are enough.
      const int code = static_cast<int>(stream->status.error_code());
      spdlog::error("stream ended with {}: {}",
                    code >= 0 && code < kNumStatusCodes ? kStatusCodeNames[code]
                                                        : "an unknown status",
                    stream->status.error_message());
    }
    if (counts_.notes_received > 0) {
      spdlog::warn("the server sent {} notes on streams meant to be idle",
                   counts_.notes_received);
    }
  }

  const Config config_;
  // Declared before the streams so it is destroyed after every call bound
  // to it.
  grpc::CompletionQueue cq_;
  bool queue_shut_down_ = false;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<RouteGuide::Stub>> stubs_;
  std::vector<std::unique_ptr<Stream>> streams_;
  StreamTags tags_;
  Counts counts_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_BENCH_IDLE_CHAT_STREAMS_H_
