#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "netplane/nft/transaction.h"

namespace mesh::netplane::nft {

// Where one netlink message of a batch came from, so an error can name its command.
struct BatchMessage {
  size_t command = 0;  // index into Transaction::commands()
  // Element commands are split over several messages to bound their size; the elements
  // [first_element, first_element + element_count) of the command are in this one.
  size_t first_element = 0;
  size_t element_count = 0;
};

// A transaction serialized as one nfnetlink batch: NFNL_MSG_BATCH_BEGIN, the command messages,
// NFNL_MSG_BATCH_END, back to back in one buffer. It must reach the kernel in ONE sendmsg: the
// kernel processes (and commits or aborts) a batch per datagram, so a batch split over two
// sends would not be atomic.
struct Batch {
  std::string bytes;
  uint32_t first_seq = 0;              // BATCH_BEGIN's sequence number
  std::vector<BatchMessage> messages;  // messages[i] has sequence number first_seq + 1 + i

  uint32_t last_seq() const { return first_seq + static_cast<uint32_t>(messages.size()) + 1; }
};

// Serializes `transaction` with libnftnl, as nft(8) would: the same attributes, set user data
// (key byte order, comments) and set ids. Every command message has NLM_F_ACK, so the kernel
// answers each one with its own sequence number (an error or a zero), and error reports can
// name the command. Adds have NLM_F_CREATE, plus NLM_F_EXCL for Verb::kAdd; rules are appended
// (NLM_F_APPEND). InvalidArgument if the transaction does not Validate().
absl::StatusOr<Batch> BuildBatch(const Transaction& transaction, uint32_t first_seq);

// Command::Describe() of the message's command, naming only the elements the message holds.
std::string DescribeMessage(const Transaction& transaction, const BatchMessage& message);

}  // namespace mesh::netplane::nft
