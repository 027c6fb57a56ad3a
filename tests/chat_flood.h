// ChatFlood: many RouteChat streams flooding a server with notes.
#ifndef ROUTEGUIDE_TESTS_CHAT_FLOOD_H_
#define ROUTEGUIDE_TESTS_CHAT_FLOOD_H_

#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "call_tags.h"
#include "catch2/catch.hpp"
#include "client_calls.h"
#include "client_queues.h"
#include "db_loader.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "route_guide.grpc.pb.h"
#include "route_guide_server.h"
#include "server_process.h"
#include "subprocess.h"
#include "test_server.h"
#include "test_util.h"

namespace routeguide {

// RouteChat streams, each on one of `channels` connections of its own,
// sending notes of `note_bytes` (every text different) as fast as the
// server takes them and reading whatever replies come back. The test
// thread drives them all from one completion queue, so nothing here needs
// a lock and Catch2's assertions stay on the test thread.
class ChatFlood {
 public:
  struct Options {
    int channels = 1;
    int streams_per_channel = 1;
    size_t note_bytes = 4096;
    // Every hot_every-th note of a stream goes to the one location the
    // stream comes back to, so that replies flow; the others each go to a
    // location of their own (0: all do).
    int hot_every = 0;
    // Notes sent per second by all streams together; 0: as fast as the
    // server takes them.
    int notes_per_second = 0;
  };

  ChatFlood(const std::string& target, const Options& options)
      : options_(options) {
    for (int c = 0; c < options.channels; ++c) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.use_local_subchannel_pool", 1);
      // Channels with different arguments never share a connection.
      args.SetInt("routeguide.test.channel", c);
      stubs_.push_back(RouteGuide::NewStub(grpc::CreateCustomChannel(
          target, grpc::InsecureChannelCredentials(), args)));
    }
  }
  ~ChatFlood() {
    for (auto& stream : streams_) {
      if (!stream->finished) stream->context.TryCancel();
    }
    cq_->Shutdown();
    const auto deadline = absl::ToChronoTime(absl::Now() + absl::Seconds(10));
    void* tag = nullptr;
    bool ok = false;
    for (;;) {
      const auto got = cq_->AsyncNext(&tag, &ok, deadline);
      if (got == grpc::CompletionQueue::SHUTDOWN) return;
      if (got == grpc::CompletionQueue::TIMEOUT) {
        // An operation that never completes (the test has failed by now):
        // the queue and the calls are left allocated rather than freed
        // under it, so the test ends instead of hanging.
        cq_.release();
        for (auto& stream : streams_) {
          if (!stream->finished) stream.release();
        }
        for (auto& stub : stubs_) stub.release();
        return;
      }
    }
  }
  ChatFlood(const ChatFlood&) = delete;
  ChatFlood& operator=(const ChatFlood&) = delete;

  // Floods for `duration`, calling `sample` with the time since the start
  // about every `period` meanwhile. Then half-closes every stream and
  // waits for each to end; streams still open kEndingGrace later are
  // cancelled, after `describe_server` (when given) has said what the
  // server sees, for stuck().
  void Run(absl::Duration duration, absl::Duration period,
           const std::function<void(absl::Duration)>& sample,
           const std::function<std::string()>& describe_server = nullptr) {
    start_ = absl::Now();
    const int total = options_.channels * options_.streams_per_channel;
    for (int i = 0; i < total; ++i) {
      streams_.push_back(std::make_unique<Stream>());
      Stream& stream = *streams_.back();
      // Past the test's own cancel, so that a stuck stream shows as one.
      stream.context.set_deadline(
          absl::ToChronoTime(start_ + duration + kEndingGrace + absl::Seconds(30)));
      stream.rpc = stubs_[i % options_.channels]->AsyncRouteChat(
          &stream.context, cq_.get(), Tag(i, Op::kStarted));
    }
    const absl::Time stop_at = start_ + duration;
    const absl::Time give_up = stop_at + kEndingGrace + absl::Seconds(20);
    absl::Time next_sample = start_;
    absl::Time cancel_at = absl::InfiniteFuture();
    while (finished_ < total) {
      const absl::Time now = absl::Now();
      if (now >= give_up) {
        FAIL("streams still open " << absl::FormatDuration(now - stop_at)
                                   << " after the flood");
      }
      if (!stopping_ && now >= next_sample) {
        sample(now - start_);
        next_sample = now + period;
      }
      if (!stopping_ && now >= stop_at) {
        Stop(now);
        cancel_at = now + kEndingGrace;
      }
      if (now >= cancel_at) {
        if (describe_server && finished_ < total) server_view_ = describe_server();
        for (size_t i = 0; i < streams_.size(); ++i) {
          Stream& stream = *streams_[i];
          if (stream.finished) continue;
          absl::StrAppend(&stuck_, "stream ", i,
                          " (connection ", i % options_.channels, ", ",
                          stream.sent, " notes sent) ", stream.StateName(), "\n");
          stream.context.TryCancel();
          ++cancelled_by_test_;
        }
        cancel_at = absl::InfiniteFuture();
      }
      ResumePaused(now);
      absl::Time wake =
          std::min(stopping_ ? cancel_at : std::min(next_sample, stop_at), give_up);
      if (!paused_.empty()) wake = std::min(wake, now + absl::Milliseconds(1));
      void* tag = nullptr;
      bool ok = false;
      const auto got = cq_->AsyncNext(&tag, &ok, absl::ToChronoTime(wake));
      if (got == grpc::CompletionQueue::TIMEOUT) continue;
      if (got != grpc::CompletionQueue::GOT_EVENT) FAIL("the queue shut down");
      const FloodTags::Completion completion = tags_.Complete(tag);
      Handle(static_cast<int>(completion.call), completion.op, ok);
    }
  }

  int64_t notes_sent() const { return notes_sent_; }
  int64_t replies() const { return replies_; }
  int cancelled_by_test() const { return cancelled_by_test_; }
  // From the end of the flood to the last stream's end (each half-closes,
  // and the server reads what is still buffered before it answers).
  absl::Duration ending_took() const {
    return std::max(absl::ZeroDuration(), last_finished_at_ - stopped_at_);
  }
  // What each stream the test cancelled was waiting for.
  const std::string& stuck() const { return stuck_; }
  // What `describe_server` said just before they were cancelled.
  const std::string& server_view() const { return server_view_; }
  // Streams that ended in error without one note through.
  int failed_before_first_note() const { return failed_before_first_note_; }
  // How the streams ended.
  const std::map<grpc::StatusCode, int>& codes() const { return codes_; }
  int failed() const {
    int failed = 0;
    for (const auto& [code, count] : codes_) {
      if (code != grpc::StatusCode::OK) failed += count;
    }
    return failed;
  }
  // "N x CODE (first message), ..." for each status code seen.
  std::string CodesToString() const {
    std::string text;
    for (const auto& [code, count] : codes_) {
      absl::StrAppend(&text, text.empty() ? "" : ", ", count, " x ", code);
      if (code != grpc::StatusCode::OK) {
        absl::StrAppend(&text, " (\"", first_messages_.at(code), "\")");
      }
    }
    return text;
  }

 private:
  // How long the streams get to end after the flood: the server reads what
  // each still has buffered first (1.5-2 s without a quota, measured in
  // a release build).
  static constexpr absl::Duration kEndingGrace =
      absl::Seconds(10 * kSanitizerSlowdown);

  enum class Op { kStarted, kWritten, kHalfClosed, kRead, kFinished };
  using FloodTags = CallTags<Op, 5>;
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientAsyncReaderWriter<RouteNote, RouteNote>> rpc;
    RouteNote outgoing;
    RouteNote incoming;
    grpc::Status status;
    int64_t sent = 0;
    bool writing = false;     // A Write or WritesDone is in flight.
    bool paused = false;      // Waiting for the pace to allow its next Write.
    bool write_done = false;  // Half-closed, or the stream broke.
    bool reading = false;
    bool read_done = false;
    bool finishing = false;
    bool finished = false;

    bool started = false;
    bool half_closing = false;

    std::string StateName() const {
      if (!started) return "waiting to start";
      if (finishing) return "waiting for its status";
      if (paused) return "paused by the pace";
      if (half_closing && writing) return "half-closing";
      if (writing) return "writing a note";
      if (reading) return "reading";
      return "idle";
    }
  };

  void* Tag(int index, Op op) { return tags_.Post(static_cast<size_t>(index), op); }

  void Handle(int index, Op op, bool ok) {
    Stream& stream = *streams_[index];
    switch (op) {
      case Op::kStarted:
        stream.started = true;
        if (!ok) {  // No connection: the call is already over.
          stream.write_done = stream.read_done = true;
          break;
        }
        // A Read waits only where replies may come. A standing Read on a
        // stream the server resets under memory pressure (RST_STREAM
        // ENHANCE_YOUR_CALM, before any reply) was seen never to complete
        // in gRPC 1.51, nor the Finish and TryCancel after it; the failing
        // Write tells the end of such a stream just as well. (A Finish
        // alone can miss such a reset too, though TryCancel then ends it:
        // see fault_flood_test.)
        if (options_.hot_every > 0) {
          PostRead(index);
        } else {
          stream.read_done = true;
        }
        WriteNext(index);
        break;
      case Op::kWritten:
        stream.writing = false;
        if (!ok) {
          stream.write_done = true;
          break;
        }
        ++stream.sent;
        ++notes_sent_;
        WriteNext(index);
        break;
      case Op::kHalfClosed:
        stream.writing = false;
        stream.write_done = true;
        break;
      case Op::kRead:
        stream.reading = false;
        if (!ok) {
          stream.read_done = true;
          break;
        }
        ++replies_;
        PostRead(index);
        break;
      case Op::kFinished:
        stream.finished = true;
        ++finished_;
        last_finished_at_ = absl::Now();
        ++codes_[stream.status.error_code()];
        if (!stream.status.ok()) {
          if (stream.sent == 0) ++failed_before_first_note_;
          first_messages_.emplace(stream.status.error_code(),
                                  stream.status.error_message());
        }
        return;
    }
    if (!stream.writing && !stream.paused && !stream.reading &&
        stream.write_done && stream.read_done && !stream.finishing) {
      stream.finishing = true;
      stream.rpc->Finish(&stream.status, Tag(index, Op::kFinished));
    }
  }

  // The stream's next note, its half-close once the flood is over, or a
  // pause when the pace allows no more notes yet.
  void WriteNext(int index) {
    Stream& stream = *streams_[index];
    if (stopping_) {
      stream.writing = true;
      stream.half_closing = true;
      stream.rpc->WritesDone(Tag(index, Op::kHalfClosed));
      return;
    }
    if (options_.notes_per_second > 0 && writes_posted_ >= Allowed(absl::Now())) {
      stream.paused = true;
      paused_.push_back(index);
      return;
    }
    const bool hot = options_.hot_every > 0 && stream.sent % options_.hot_every == 0;
    stream.outgoing.mutable_location()->set_latitude(index + 1);
    stream.outgoing.mutable_location()->set_longitude(
        hot ? 0 : static_cast<int32_t>(stream.sent % 1800000000 + 1));
    std::string* text = stream.outgoing.mutable_message();
    *text = absl::StrCat("s", index, "-n", stream.sent, "-");
    text->resize(options_.note_bytes, 'x');
    stream.writing = true;
    ++writes_posted_;
    stream.rpc->Write(stream.outgoing, Tag(index, Op::kWritten));
  }
  void PostRead(int index) {
    Stream& stream = *streams_[index];
    stream.reading = true;
    stream.rpc->Read(&stream.incoming, Tag(index, Op::kRead));
  }
  // Notes the pace allows by `now`. A flood that fell behind (the test
  // thread got no CPU for a while) catches up by at most 50 ms' worth at
  // once, rather than in one burst.
  int64_t Allowed(absl::Time now) const {
    const auto on_pace = static_cast<int64_t>(absl::ToDoubleSeconds(now - start_) *
                                              options_.notes_per_second);
    return std::min(on_pace,
                    writes_posted_ + std::max(1, options_.notes_per_second / 20));
  }
  void ResumePaused(absl::Time now) {
    while (!paused_.empty() && (stopping_ || writes_posted_ < Allowed(now))) {
      const int index = paused_.front();
      paused_.pop_front();
      streams_[index]->paused = false;
      WriteNext(index);
    }
  }
  // A started stream has a Write in flight, or is paused, until it is done
  // writing: each half-closes when that Write completes or the pause ends
  // (at once, now); one not started yet, when it starts.
  void Stop(absl::Time now) {
    stopping_ = true;
    stopped_at_ = now;
  }

  const Options options_;
  std::vector<std::unique_ptr<RouteGuide::Stub>> stubs_;
  FloodTags tags_;
  std::unique_ptr<grpc::CompletionQueue> cq_ =
      std::make_unique<grpc::CompletionQueue>();
  std::vector<std::unique_ptr<Stream>> streams_;
  std::deque<int> paused_;
  absl::Time start_;
  bool stopping_ = false;
  absl::Time stopped_at_ = absl::InfinitePast();
  absl::Time last_finished_at_ = absl::InfinitePast();
  int finished_ = 0;
  int64_t writes_posted_ = 0;
  int64_t notes_sent_ = 0;
  int64_t replies_ = 0;
  int cancelled_by_test_ = 0;
  std::string stuck_;
  std::string server_view_;
  int failed_before_first_note_ = 0;
  std::map<grpc::StatusCode, int> codes_;
  std::map<grpc::StatusCode, std::string> first_messages_;
};

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_CHAT_FLOOD_H_
