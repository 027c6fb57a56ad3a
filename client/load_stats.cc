#include "load_stats.h"

namespace routeguide {

void KindStats::Merge(const KindStats& other) {
  started += other.started;
  ok += other.ok;
  wrong_answer += other.wrong_answer;
  for (int i = 0; i < kNumStatusCodes; ++i) failed_by_code[i] += other.failed_by_code[i];
  messages_sent += other.messages_sent;
  messages_received += other.messages_received;
  latency.Merge(other.latency);
  first_message.Merge(other.first_message);
  reply.Merge(other.reply);
}

}  // namespace routeguide
