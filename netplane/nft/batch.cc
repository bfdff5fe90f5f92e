#include "netplane/nft/batch.h"

#include <libnftnl/common.h>
#include <linux/netfilter/nfnetlink.h>

#include <map>
#include <new>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/overloaded.h"
#include "base/status_macros.h"
#include "netplane/nft/nftnl_ptr.h"

namespace mesh::netplane::nft {
namespace {

// libnftnl allocators return nullptr only when out of memory; treat that like operator new.
template <typename T>
NftnlPtr<T> Own(T* p) {
  if (p == nullptr) throw std::bad_alloc();
  return NftnlPtr<T>(p);
}

// nft's byte order codes (BYTEORDER_* in nftables' expression.h), stored in the set's user
// data so that nft prints the elements: host order for names and marks, network order for
// addresses and ports, "invalid" (0) for protocol numbers and for concatenations.
uint32_t ByteOrder(const std::vector<DataType>& types) {
  constexpr uint32_t kInvalid = 0, kHost = 1, kBig = 2;
  if (types.size() != 1) return kInvalid;
  switch (types[0]) {
    case DataType::kIfname:
    case DataType::kMark:
      return kHost;
    case DataType::kIpv4Addr:
    case DataType::kIpv6Addr:
    case DataType::kInetService:
      return kBig;
    case DataType::kInetProto:
      return kInvalid;
  }
  return kInvalid;
}

// nft numbers a concatenated type by shifting the field types in, 6 bits each (TYPE_BITS).
uint32_t TypeId(const std::vector<DataType>& types) {
  uint32_t id = 0;
  for (DataType t : types) id = (id << 6) | static_cast<uint32_t>(t);
  return id;
}

NftnlPtr<nftnl_udata_buf> NewUdata() { return Own(nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN)); }

// Every message is built in a scratch buffer of this size, then appended. Validate() bounds
// what goes into one message (names of 255 bytes, comments of 128, 64 expressions with at most
// 64-byte operands, elements chunked by kElementBytesPerMessage), which keeps every message
// well under it: libnftnl's builders write without bounds checks.
constexpr size_t kScratchSize = size_t{64} * 1024;
constexpr size_t kElementBytesPerMessage = size_t{16} * 1024;

size_t ElementCost(const Element& e) {
  size_t n = 96 + e.comment.size();  // attribute headers, flags, user data
  for (const Datum& d : e.key) n += d.bytes.size() + 4;
  for (const Datum& d : e.data) n += d.bytes.size() + 4;
  return n;
}

class Builder {
 public:
  Builder(const Transaction& transaction, uint32_t first_seq)
      : transaction_(transaction), scratch_(kScratchSize, '\0') {
    batch_.first_seq = first_seq;
  }

  Batch Build() && {
    char* buf = Scratch();
    nftnl_batch_begin(buf, batch_.first_seq);
    Commit(buf);
    const std::vector<Command>& commands = transaction_.commands();
    for (size_t i = 0; i < commands.size(); ++i) AddCommand(i, commands[i]);
    buf = Scratch();
    nftnl_batch_end(buf, batch_.last_seq());
    Commit(buf);
    return std::move(batch_);
  }

 private:
  // No need to clear it: libmnl zeroes the headers it puts and the padding of attributes.
  char* Scratch() { return scratch_.data(); }
  uint32_t NextSeq() const {
    return batch_.first_seq + static_cast<uint32_t>(batch_.messages.size()) + 1;
  }
  nlmsghdr* Header(char* buf, uint16_t type, Family family, uint16_t flags) {
    return nftnl_nlmsg_build_hdr(buf, type, static_cast<uint16_t>(family), flags | NLM_F_ACK,
                                 NextSeq());
  }
  void Commit(const char* buf) {
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf);
    batch_.bytes.append(buf, NLMSG_ALIGN(nlh->nlmsg_len));
  }
  void CommitMessage(const char* buf, size_t command, size_t first = 0, size_t count = 0) {
    batch_.messages.push_back(BatchMessage{command, first, count});
    Commit(buf);
  }

  static uint16_t NewFlags(Verb verb) {
    return NLM_F_CREATE | (verb == Verb::kAdd ? NLM_F_EXCL : 0);
  }

  std::optional<uint32_t> SetId(Family family, const std::string& table,
                                const std::string& set) const {
    auto it = set_ids_.find(std::make_tuple(family, table, set));
    if (it == set_ids_.end()) return std::nullopt;
    return it->second;
  }

  void AddCommand(size_t index, const Command& command) {
    const bool adding = command.verb == Verb::kAdd || command.verb == Verb::kEnsure;
    std::visit(Overloaded{
                   [&](const Table& t) { AddTable(index, command.verb, adding, t); },
                   [&](const Chain& c) { AddChain(index, command.verb, adding, c); },
                   [&](const Set& s) { AddSet(index, command.verb, adding, s); },
                   [&](const Rule& r) { AddRule(index, adding, r); },
                   [&](const Elements& e) { AddElements(index, command.verb, adding, e); },
               },
               command.object);
  }

  void AddTable(size_t index, Verb verb, bool adding, const Table& t) {
    NftnlPtr<nftnl_table> table = Own(nftnl_table_alloc());
    nftnl_table_set_str(table.get(), NFTNL_TABLE_NAME, t.name.c_str());
    nftnl_table_set_u32(table.get(), NFTNL_TABLE_FAMILY, static_cast<uint32_t>(t.family));
    if (adding && !t.comment.empty()) {
      NftnlPtr<nftnl_udata_buf> ud = NewUdata();
      nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_TABLE_COMMENT, t.comment.c_str());
      nftnl_table_set_data(table.get(), NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud.get()),
                           nftnl_udata_buf_len(ud.get()));
    }
    char* buf = Scratch();
    nlmsghdr* nlh = adding ? Header(buf, NFT_MSG_NEWTABLE, t.family, NewFlags(verb))
                           : Header(buf, NFT_MSG_DELTABLE, t.family, 0);
    nftnl_table_nlmsg_build_payload(nlh, table.get());
    CommitMessage(buf, index);
  }

  void AddChain(size_t index, Verb verb, bool adding, const Chain& c) {
    char* buf = Scratch();
    if (verb == Verb::kFlush) {
      // Flushing a chain is a DELRULE naming the chain but no rule handle.
      NftnlPtr<nftnl_rule> rule = Own(nftnl_rule_alloc());
      nftnl_rule_set_u32(rule.get(), NFTNL_RULE_FAMILY, static_cast<uint32_t>(c.family));
      nftnl_rule_set_str(rule.get(), NFTNL_RULE_TABLE, c.table.c_str());
      nftnl_rule_set_str(rule.get(), NFTNL_RULE_CHAIN, c.name.c_str());
      nftnl_rule_nlmsg_build_payload(Header(buf, NFT_MSG_DELRULE, c.family, 0), rule.get());
      CommitMessage(buf, index);
      return;
    }
    NftnlPtr<nftnl_chain> chain = Own(nftnl_chain_alloc());
    nftnl_chain_set_u32(chain.get(), NFTNL_CHAIN_FAMILY, static_cast<uint32_t>(c.family));
    nftnl_chain_set_str(chain.get(), NFTNL_CHAIN_TABLE, c.table.c_str());
    nftnl_chain_set_str(chain.get(), NFTNL_CHAIN_NAME, c.name.c_str());
    if (adding && c.base) {
      nftnl_chain_set_u32(chain.get(), NFTNL_CHAIN_HOOKNUM, static_cast<uint32_t>(c.base->hook));
      nftnl_chain_set_s32(chain.get(), NFTNL_CHAIN_PRIO, c.base->priority);
      nftnl_chain_set_str(chain.get(), NFTNL_CHAIN_TYPE,
                          std::string(ChainTypeName(c.base->type)).c_str());
      nftnl_chain_set_u32(chain.get(), NFTNL_CHAIN_POLICY,
                          c.base->policy == Policy::kAccept ? NF_ACCEPT : NF_DROP);
    }
    if (adding && !c.comment.empty()) {
      NftnlPtr<nftnl_udata_buf> ud = NewUdata();
      nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_CHAIN_COMMENT, c.comment.c_str());
      nftnl_chain_set_data(chain.get(), NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(ud.get()),
                           nftnl_udata_buf_len(ud.get()));
    }
    nlmsghdr* nlh = adding ? Header(buf, NFT_MSG_NEWCHAIN, c.family, NewFlags(verb))
                           : Header(buf, NFT_MSG_DELCHAIN, c.family, 0);
    nftnl_chain_nlmsg_build_payload(nlh, chain.get());
    CommitMessage(buf, index);
  }

  void AddSet(size_t index, Verb verb, bool adding, const Set& s) {
    NftnlPtr<nftnl_set> set = Own(nftnl_set_alloc());
    nftnl_set_set_u32(set.get(), NFTNL_SET_FAMILY, static_cast<uint32_t>(s.family));
    nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, s.table.c_str());
    nftnl_set_set_str(set.get(), NFTNL_SET_NAME, s.name.c_str());
    char* buf = Scratch();
    if (verb == Verb::kFlush) {
      // Flushing a set is a DELSETELEM without an element list.
      nftnl_set_elems_nlmsg_build_payload(Header(buf, NFT_MSG_DELSETELEM, s.family, 0), set.get());
      CommitMessage(buf, index);
      return;
    }
    if (!adding) {
      nftnl_set_nlmsg_build_payload(Header(buf, NFT_MSG_DELSET, s.family, 0), set.get());
      CommitMessage(buf, index);
      return;
    }
    uint32_t flags = 0;
    if (s.is_map()) flags |= NFT_SET_MAP;
    if (s.interval) flags |= NFT_SET_INTERVAL;
    nftnl_set_set_u32(set.get(), NFTNL_SET_FLAGS, flags);
    nftnl_set_set_u32(set.get(), NFTNL_SET_KEY_TYPE, TypeId(s.key));
    nftnl_set_set_u32(set.get(), NFTNL_SET_KEY_LEN, s.key_len());
    if (s.is_map()) {
      nftnl_set_set_u32(set.get(), NFTNL_SET_DATA_TYPE, TypeId(s.data));
      nftnl_set_set_u32(set.get(), NFTNL_SET_DATA_LEN, s.data_len());
    }
    // Rules and elements later in the batch may name the set by this id as well as by name
    // (NFTA_LOOKUP_SET_ID, NFTA_SET_ELEM_LIST_SET_ID), as nft does.
    const uint32_t id = static_cast<uint32_t>(set_ids_.size()) + 1;
    set_ids_[std::make_tuple(s.family, s.table, s.name)] = id;
    nftnl_set_set_u32(set.get(), NFTNL_SET_ID, id);

    NftnlPtr<nftnl_udata_buf> ud = NewUdata();
    nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_KEYBYTEORDER, ByteOrder(s.key));
    if (s.is_map()) {
      nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_DATABYTEORDER, ByteOrder(s.data));
    }
    if (!s.comment.empty()) {
      nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_SET_COMMENT, s.comment.c_str());
    }
    nftnl_set_set_data(set.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()),
                       nftnl_udata_buf_len(ud.get()));
    nftnl_set_nlmsg_build_payload(Header(buf, NFT_MSG_NEWSET, s.family, NewFlags(verb)), set.get());
    CommitMessage(buf, index);
  }

  NftnlPtr<nftnl_expr> BuildExpr(const Rule& r, const Expr& expr) const {
    return std::visit(
        Overloaded{
            [](const MetaLoad& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("meta"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_META_KEY, e.key);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_META_DREG, e.dreg);
              return x;
            },
            [](const PayloadLoad& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("payload"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_PAYLOAD_DREG, e.dreg);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_PAYLOAD_BASE, e.base);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_PAYLOAD_OFFSET, e.offset);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_PAYLOAD_LEN, e.len);
              return x;
            },
            [](const CtLoad& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("ct"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CT_KEY, e.key);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CT_DREG, e.dreg);
              return x;
            },
            [](const Cmp& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("cmp"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CMP_SREG, e.sreg);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_CMP_OP, e.op);
              nftnl_expr_set(x.get(), NFTNL_EXPR_CMP_DATA, e.data.data(),
                             static_cast<uint32_t>(e.data.size()));
              return x;
            },
            [](const Bitwise& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("bitwise"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_BITWISE_SREG, e.sreg);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_BITWISE_DREG, e.dreg);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_BITWISE_LEN,
                                 static_cast<uint32_t>(e.mask.size()));
              nftnl_expr_set(x.get(), NFTNL_EXPR_BITWISE_MASK, e.mask.data(),
                             static_cast<uint32_t>(e.mask.size()));
              nftnl_expr_set(x.get(), NFTNL_EXPR_BITWISE_XOR, e.xor_value.data(),
                             static_cast<uint32_t>(e.xor_value.size()));
              return x;
            },
            [&](const Lookup& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("lookup"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LOOKUP_SREG, e.sreg);
              nftnl_expr_set_str(x.get(), NFTNL_EXPR_LOOKUP_SET, e.set.c_str());
              if (std::optional<uint32_t> id = SetId(r.family, r.table, e.set)) {
                nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LOOKUP_SET_ID, *id);
              }
              if (e.dreg) nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LOOKUP_DREG, *e.dreg);
              if (e.invert) nftnl_expr_set_u32(x.get(), NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
              return x;
            },
            [](const Fib& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("fib"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_FIB_FLAGS, e.flags);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_FIB_RESULT, e.result);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_FIB_DREG, e.dreg);
              return x;
            },
            [](const Nat& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("nat"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_NAT_TYPE, e.type);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_NAT_FAMILY, static_cast<uint32_t>(e.family));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_NAT_REG_ADDR_MIN, e.reg_addr_min);
              if (e.reg_proto_min) {
                nftnl_expr_set_u32(x.get(), NFTNL_EXPR_NAT_REG_PROTO_MIN, *e.reg_proto_min);
              }
              return x;
            },
            [](const Masquerade&) { return Own(nftnl_expr_alloc("masq")); },
            [](const Immediate& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("immediate"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_IMM_DREG, e.dreg);
              nftnl_expr_set(x.get(), NFTNL_EXPR_IMM_DATA, e.data.data(),
                             static_cast<uint32_t>(e.data.size()));
              return x;
            },
            [](const MetaSet& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("meta"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_META_KEY, e.key);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_META_SREG, e.sreg);
              return x;
            },
            [](const Verdict& e) {
              NftnlPtr<nftnl_expr> x = Own(nftnl_expr_alloc("immediate"));
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
              nftnl_expr_set_u32(x.get(), NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(e.code));
              return x;
            },
        },
        expr);
  }

  void AddRule(size_t index, bool adding, const Rule& r) {
    NftnlPtr<nftnl_rule> rule = Own(nftnl_rule_alloc());
    nftnl_rule_set_u32(rule.get(), NFTNL_RULE_FAMILY, static_cast<uint32_t>(r.family));
    nftnl_rule_set_str(rule.get(), NFTNL_RULE_TABLE, r.table.c_str());
    nftnl_rule_set_str(rule.get(), NFTNL_RULE_CHAIN, r.chain.c_str());
    char* buf = Scratch();
    if (!adding) {
      nftnl_rule_set_u64(rule.get(), NFTNL_RULE_HANDLE, r.handle);
      nftnl_rule_nlmsg_build_payload(Header(buf, NFT_MSG_DELRULE, r.family, 0), rule.get());
      CommitMessage(buf, index);
      return;
    }
    for (const Expr& e : r.exprs) nftnl_rule_add_expr(rule.get(), BuildExpr(r, e).release());
    if (!r.comment.empty()) {
      NftnlPtr<nftnl_udata_buf> ud = NewUdata();
      nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_RULE_COMMENT, r.comment.c_str());
      nftnl_rule_set_data(rule.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud.get()),
                          nftnl_udata_buf_len(ud.get()));
    }
    // Without NLM_F_APPEND the kernel inserts the rule at the head of the chain.
    nftnl_rule_nlmsg_build_payload(
        Header(buf, NFT_MSG_NEWRULE, r.family, NLM_F_CREATE | NLM_F_APPEND), rule.get());
    CommitMessage(buf, index);
  }

  void AddElements(size_t index, Verb verb, bool adding, const Elements& e) {
    size_t first = 0;
    while (first < e.elements.size()) {
      NftnlPtr<nftnl_set> set = Own(nftnl_set_alloc());
      nftnl_set_set_u32(set.get(), NFTNL_SET_FAMILY, static_cast<uint32_t>(e.family));
      nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, e.table.c_str());
      nftnl_set_set_str(set.get(), NFTNL_SET_NAME, e.set.c_str());
      if (std::optional<uint32_t> id = SetId(e.family, e.table, e.set)) {
        nftnl_set_set_u32(set.get(), NFTNL_SET_ID, *id);
      }
      size_t count = 0;
      size_t bytes = 0;
      while (first + count < e.elements.size() &&
             (count == 0 ||
              bytes + ElementCost(e.elements[first + count]) <= kElementBytesPerMessage)) {
        const Element& el = e.elements[first + count];
        bytes += ElementCost(el);
        ++count;
        NftnlPtr<nftnl_set_elem> elem = Own(nftnl_set_elem_alloc());
        const std::string key = PackFields(el.key);
        nftnl_set_elem_set(elem.get(), NFTNL_SET_ELEM_KEY, key.data(),
                           static_cast<uint32_t>(key.size()));
        if (adding && !el.data.empty()) {
          const std::string data = PackFields(el.data);
          nftnl_set_elem_set(elem.get(), NFTNL_SET_ELEM_DATA, data.data(),
                             static_cast<uint32_t>(data.size()));
        }
        if (el.interval_end) {
          nftnl_set_elem_set_u32(elem.get(), NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        }
        if (adding && (!el.comment.empty() || el.interval_open)) {
          NftnlPtr<nftnl_udata_buf> ud = NewUdata();
          if (!el.comment.empty()) {
            nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_SET_ELEM_COMMENT, el.comment.c_str());
          }
          if (el.interval_open) {
            nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_ELEM_FLAGS,
                                NFTNL_SET_ELEM_F_INTERVAL_OPEN);
          }
          nftnl_set_elem_set(elem.get(), NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud.get()),
                             nftnl_udata_buf_len(ud.get()));
        }
        nftnl_set_elem_add(set.get(), elem.release());
      }
      char* buf = Scratch();
      nlmsghdr* nlh = adding ? Header(buf, NFT_MSG_NEWSETELEM, e.family, NewFlags(verb))
                             : Header(buf, NFT_MSG_DELSETELEM, e.family, 0);
      nftnl_set_elems_nlmsg_build_payload(nlh, set.get());
      CommitMessage(buf, index, first, count);
      first += count;
    }
  }

  const Transaction& transaction_;
  Batch batch_;
  std::string scratch_;
  std::map<std::tuple<Family, std::string, std::string>, uint32_t> set_ids_;
};

}  // namespace

absl::StatusOr<Batch> BuildBatch(const Transaction& transaction, uint32_t first_seq) {
  MESH_RETURN_IF_ERROR(transaction.Validate());
  return Builder(transaction, first_seq).Build();
}

std::string DescribeMessage(const Transaction& transaction, const BatchMessage& message) {
  const Command& command = transaction.commands().at(message.command);
  const auto* elements = std::get_if<Elements>(&command.object);
  if (elements == nullptr || message.element_count == 0 ||
      message.element_count == elements->elements.size()) {
    return command.Describe();
  }
  Elements part = *elements;
  const auto first = elements->elements.begin() + static_cast<ptrdiff_t>(message.first_element);
  part.elements.assign(first, first + static_cast<ptrdiff_t>(message.element_count));
  return Command{command.verb, std::move(part)}.Describe();
}

}  // namespace mesh::netplane::nft
