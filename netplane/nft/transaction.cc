#include "netplane/nft/transaction.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <type_traits>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/overloaded.h"
#include "base/status_macros.h"

namespace mesh::netplane::nft {
namespace {

std::string Quote(absl::string_view s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

// libnftnl prints data as 32-bit words read in host order, the last one zero-padded.
std::string Words(absl::string_view bytes) {
  std::vector<std::string> words;
  for (size_t i = 0; i < bytes.size(); i += 4) {
    uint32_t word = 0;
    std::memcpy(&word, bytes.data() + i, std::min<size_t>(4, bytes.size() - i));
    words.push_back(absl::StrFormat("0x%08x", word));
  }
  return absl::StrJoin(words, " ");
}

absl::string_view MetaKeyName(uint32_t key) {
  switch (key) {
    case NFT_META_LEN:
      return "len";
    case NFT_META_PROTOCOL:
      return "protocol";
    case NFT_META_MARK:
      return "mark";
    case NFT_META_IIF:
      return "iif";
    case NFT_META_OIF:
      return "oif";
    case NFT_META_IIFNAME:
      return "iifname";
    case NFT_META_OIFNAME:
      return "oifname";
    case NFT_META_NFPROTO:
      return "nfproto";
    case NFT_META_L4PROTO:
      return "l4proto";
    case NFT_META_NFTRACE:
      return "nftrace";
    default:
      return "unknown";
  }
}

absl::string_view CtKeyName(uint32_t key) {
  switch (key) {
    case NFT_CT_STATE:
      return "state";
    case NFT_CT_DIRECTION:
      return "direction";
    case NFT_CT_STATUS:
      return "status";
    case NFT_CT_MARK:
      return "mark";
    default:
      return "unknown";
  }
}

absl::string_view PayloadBaseName(uint32_t base) {
  switch (base) {
    case NFT_PAYLOAD_LL_HEADER:
      return "link";
    case NFT_PAYLOAD_NETWORK_HEADER:
      return "network";
    case NFT_PAYLOAD_TRANSPORT_HEADER:
      return "transport";
    default:
      return "unknown";
  }
}

absl::string_view CmpOpName(uint32_t op) {
  switch (op) {
    case NFT_CMP_EQ:
      return "eq";
    case NFT_CMP_NEQ:
      return "neq";
    case NFT_CMP_LT:
      return "lt";
    case NFT_CMP_LTE:
      return "lte";
    case NFT_CMP_GT:
      return "gt";
    case NFT_CMP_GTE:
      return "gte";
    default:
      return "unknown";
  }
}

std::string VerdictName(int32_t code) {
  switch (code) {
    case NF_ACCEPT:
      return "accept";
    case NF_DROP:
      return "drop";
    case NFT_CONTINUE:
      return "continue";
    case NFT_RETURN:
      return "return";
    default:
      return absl::StrCat("verdict ", code);
  }
}

std::string FibToString(const Fib& fib) {
  std::vector<absl::string_view> flags;
  if (fib.flags & NFTA_FIB_F_SADDR) flags.push_back("saddr");
  if (fib.flags & NFTA_FIB_F_DADDR) flags.push_back("daddr");
  if (fib.flags & NFTA_FIB_F_MARK) flags.push_back("mark");
  if (fib.flags & NFTA_FIB_F_IIF) flags.push_back("iif");
  if (fib.flags & NFTA_FIB_F_OIF) flags.push_back("oif");
  absl::string_view result = fib.result == NFT_FIB_RESULT_OIF        ? "oif"
                             : fib.result == NFT_FIB_RESULT_OIFNAME  ? "oifname"
                             : fib.result == NFT_FIB_RESULT_ADDRTYPE ? "type"
                                                                     : "unknown";
  return absl::StrCat("[ fib ", absl::StrJoin(flags, " . "), " ", result, " => reg ", fib.dreg,
                      " ]");
}

std::string CommentSuffix(absl::string_view comment) {
  return comment.empty() ? "" : absl::StrCat(" comment ", Quote(comment));
}

std::string TypeList(const std::vector<DataType>& types) {
  return absl::StrJoin(types, " . ",
                       [](std::string* out, DataType t) { absl::StrAppend(out, DataTypeName(t)); });
}

uint32_t FieldsLen(const std::vector<DataType>& types) {
  if (types.size() == 1) return DataTypeSize(types[0]);
  uint32_t len = 0;
  for (DataType t : types) len += (DataTypeSize(t) + 3) / 4 * 4;
  return len;
}

absl::string_view VerbWord(Verb verb) {
  switch (verb) {
    case Verb::kAdd:
      return "add";
    case Verb::kEnsure:
      return "ensure";
    case Verb::kDelete:
      return "delete";
    case Verb::kFlush:
      return "flush";
  }
  return "?";
}

std::string InTable(Family family, absl::string_view table) {
  return absl::StrCat("in table ", FamilyName(family), " ", table);
}

// ---- Validation ----

absl::Status CheckName(absl::string_view kind, absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(kind, " name is empty"));
  if (name.size() > kMaxNameLength || absl::StrContains(name, '\0')) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " name ", Quote(name), " is longer than ",
                                                   kMaxNameLength, " bytes or contains NUL"));
  }
  return absl::OkStatus();
}

absl::Status CheckComment(absl::string_view comment) {
  if (comment.size() > kMaxCommentLength || absl::StrContains(comment, '\0')) {
    return absl::InvalidArgumentError(absl::StrCat("comment ", Quote(comment), " is longer than ",
                                                   kMaxCommentLength, " bytes or contains NUL"));
  }
  return absl::OkStatus();
}

absl::Status CheckDatum(const Datum& d) {
  if (d.type == DataType::kIfname) {
    absl::string_view name(d.bytes);
    name = name.substr(0, name.find('\0'));
    if (name.empty()) return absl::InvalidArgumentError("interface name is empty");
    if (name.size() >= IFNAMSIZ || d.bytes.size() != IFNAMSIZ) {
      return absl::InvalidArgumentError(
          absl::StrCat("interface name ", Quote(name), " is longer than ", IFNAMSIZ - 1, " bytes"));
    }
    return absl::OkStatus();
  }
  if (d.bytes.size() != DataTypeSize(d.type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        DataTypeName(d.type), " value has ", d.bytes.size(), " bytes, not ", DataTypeSize(d.type)));
  }
  return absl::OkStatus();
}

absl::Status CheckExpr(const Expr& expr) {
  return std::visit(Overloaded{
                        [](const Cmp& e) -> absl::Status {
                          if (e.data.empty() || e.data.size() > NFT_DATA_VALUE_MAXLEN) {
                            return absl::InvalidArgumentError("cmp data must have 1 to 64 bytes");
                          }
                          return absl::OkStatus();
                        },
                        [](const Bitwise& e) -> absl::Status {
                          if (e.mask.empty() || e.mask.size() > NFT_DATA_VALUE_MAXLEN ||
                              e.mask.size() != e.xor_value.size()) {
                            return absl::InvalidArgumentError(
                                "bitwise mask and xor must have the same length, 1 to 64 bytes");
                          }
                          return absl::OkStatus();
                        },
                        [](const Lookup& e) -> absl::Status { return CheckName("set", e.set); },
                        [](const auto&) { return absl::OkStatus(); },
                    },
                    expr);
}

absl::Status CheckObject(Verb verb, const Object& object) {
  return std::visit(
      Overloaded{
          [&](const Table& t) -> absl::Status {
            if (verb == Verb::kFlush) {
              return absl::InvalidArgumentError("flush applies to chains and sets only");
            }
            MESH_RETURN_IF_ERROR(CheckName("table", t.name));
            return CheckComment(t.comment);
          },
          [&](const Chain& c) -> absl::Status {
            MESH_RETURN_IF_ERROR(CheckName("table", c.table));
            MESH_RETURN_IF_ERROR(CheckName("chain", c.name));
            return CheckComment(c.comment);
          },
          [&](const Set& s) -> absl::Status {
            MESH_RETURN_IF_ERROR(CheckName("table", s.table));
            MESH_RETURN_IF_ERROR(CheckName("set", s.name));
            if (verb == Verb::kAdd || verb == Verb::kEnsure) {
              if (s.key.empty()) return absl::InvalidArgumentError("set has no key type");
              if (s.key_len() > NFT_DATA_VALUE_MAXLEN || s.data_len() > NFT_DATA_VALUE_MAXLEN) {
                return absl::InvalidArgumentError("set key or data is longer than 64 bytes");
              }
              // Concatenated ranges need the pipapo backend (NFTA_SET_DESC_CONCAT and
              // NFTA_SET_ELEM_KEY_END), which mesh does not use.
              if (s.interval && s.key.size() > 1) {
                return absl::InvalidArgumentError("concatenated interval sets are not supported");
              }
            }
            return CheckComment(s.comment);
          },
          [&](const Rule& r) -> absl::Status {
            if (verb == Verb::kEnsure || verb == Verb::kFlush) {
              return absl::InvalidArgumentError(
                  "rules can only be added or deleted (the kernel appends every copy added)");
            }
            if (verb == Verb::kDelete && r.handle == 0) {
              return absl::InvalidArgumentError("deleting a rule needs its handle");
            }
            MESH_RETURN_IF_ERROR(CheckName("table", r.table));
            MESH_RETURN_IF_ERROR(CheckName("chain", r.chain));
            if (r.exprs.size() > kMaxRuleExprs) {
              return absl::InvalidArgumentError(
                  absl::StrCat("rule has more than ", kMaxRuleExprs, " expressions"));
            }
            for (const Expr& e : r.exprs) {
              MESH_RETURN_IF_ERROR(CheckExpr(e));
            }
            return CheckComment(r.comment);
          },
          [&](const Elements& e) -> absl::Status {
            if (verb == Verb::kFlush) {
              return absl::InvalidArgumentError("flush a set with Flush(Set{...})");
            }
            MESH_RETURN_IF_ERROR(CheckName("table", e.table));
            MESH_RETURN_IF_ERROR(CheckName("set", e.set));
            // A NFT_MSG_DELSETELEM without elements flushes the whole set: never send one by
            // accident.
            if (e.elements.empty()) return absl::InvalidArgumentError("no elements given");
            for (const Element& el : e.elements) {
              if (el.key.empty()) return absl::InvalidArgumentError("element has no key");
              for (const Datum& d : el.key) {
                MESH_RETURN_IF_ERROR(CheckDatum(d));
              }
              for (const Datum& d : el.data) {
                MESH_RETURN_IF_ERROR(CheckDatum(d));
              }
              if (verb != Verb::kDelete && e.map != !el.data.empty()) {
                return absl::InvalidArgumentError(e.map ? "map element has no value"
                                                        : "set element has a value");
              }
              if (el.interval_end && el.interval_open) {
                return absl::InvalidArgumentError("element is both an interval end and open");
              }
              MESH_RETURN_IF_ERROR(CheckComment(el.comment));
            }
            return absl::OkStatus();
          },
      },
      object);
}

}  // namespace

absl::string_view FamilyName(Family family) {
  switch (family) {
    case Family::kInet:
      return "inet";
    case Family::kIp:
      return "ip";
    case Family::kIp6:
      return "ip6";
    case Family::kBridge:
      return "bridge";
  }
  return "unknown";
}

absl::string_view ChainTypeName(ChainType type) {
  switch (type) {
    case ChainType::kFilter:
      return "filter";
    case ChainType::kNat:
      return "nat";
    case ChainType::kRoute:
      return "route";
  }
  return "unknown";
}

absl::string_view HookName(Hook hook) {
  switch (hook) {
    case Hook::kPrerouting:
      return "prerouting";
    case Hook::kInput:
      return "input";
    case Hook::kForward:
      return "forward";
    case Hook::kOutput:
      return "output";
    case Hook::kPostrouting:
      return "postrouting";
  }
  return "unknown";
}

absl::string_view DataTypeName(DataType type) {
  switch (type) {
    case DataType::kIpv4Addr:
      return "ipv4_addr";
    case DataType::kIpv6Addr:
      return "ipv6_addr";
    case DataType::kInetProto:
      return "inet_proto";
    case DataType::kInetService:
      return "inet_service";
    case DataType::kMark:
      return "mark";
    case DataType::kIfname:
      return "ifname";
  }
  return "unknown";
}

uint32_t DataTypeSize(DataType type) {
  switch (type) {
    case DataType::kIpv4Addr:
      return 4;
    case DataType::kIpv6Addr:
      return 16;
    case DataType::kInetProto:
      return 1;
    case DataType::kInetService:
      return 2;
    case DataType::kMark:
      return 4;
    case DataType::kIfname:
      return IFNAMSIZ;
  }
  return 0;
}

Datum Datum::Ifname(absl::string_view name) {
  std::string bytes(name);
  if (bytes.size() < IFNAMSIZ) bytes.resize(IFNAMSIZ, '\0');
  return Datum{DataType::kIfname, std::move(bytes)};
}

Datum Datum::Ipv4Addr(in_addr address) {
  return Datum{DataType::kIpv4Addr, std::string(reinterpret_cast<const char*>(&address.s_addr), 4)};
}

Datum Datum::InetProto(uint8_t proto) {
  return Datum{DataType::kInetProto, std::string(1, static_cast<char>(proto))};
}

Datum Datum::InetService(uint16_t port) {
  const uint16_t n = htons(port);
  return Datum{DataType::kInetService, std::string(reinterpret_cast<const char*>(&n), 2)};
}

Datum Datum::Mark(uint32_t mark) {
  return Datum{DataType::kMark, std::string(reinterpret_cast<const char*>(&mark), 4)};
}

std::string Datum::ToString() const {
  if (type == DataType::kIfname) {
    absl::string_view name(bytes);
    return Quote(name.substr(0, name.find('\0')));
  }
  if (bytes.size() != DataTypeSize(type)) return absl::StrCat("0x", absl::BytesToHexString(bytes));
  switch (type) {
    case DataType::kIpv4Addr:
    case DataType::kIpv6Addr: {
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(type == DataType::kIpv4Addr ? AF_INET : AF_INET6, bytes.data(), text, sizeof(text));
      return text;
    }
    case DataType::kInetProto: {
      const auto proto = static_cast<uint8_t>(bytes[0]);
      if (proto == IPPROTO_TCP) return "tcp";
      if (proto == IPPROTO_UDP) return "udp";
      if (proto == IPPROTO_ICMP) return "icmp";
      return absl::StrCat(proto);
    }
    case DataType::kInetService: {
      uint16_t port = 0;
      std::memcpy(&port, bytes.data(), 2);
      return absl::StrCat(ntohs(port));
    }
    case DataType::kMark: {
      uint32_t mark = 0;
      std::memcpy(&mark, bytes.data(), 4);
      return absl::StrFormat("0x%08x", mark);
    }
    case DataType::kIfname:
      break;
  }
  return absl::StrCat("0x", absl::BytesToHexString(bytes));
}

std::string Element::ToString() const {
  auto join = [](const std::vector<Datum>& fields) {
    return absl::StrJoin(fields, " . ", [](std::string* out, const Datum& d) {
      absl::StrAppend(out, d.ToString());
    });
  };
  std::string out = join(key);
  if (interval_end) absl::StrAppend(&out, " (interval end)");
  if (interval_open) absl::StrAppend(&out, " (open interval)");
  absl::StrAppend(&out, CommentSuffix(comment));
  if (!data.empty()) absl::StrAppend(&out, " : ", join(data));
  return out;
}

std::string ExprToString(const Expr& expr) {
  return std::visit(
      Overloaded{
          [](const MetaLoad& e) {
            return absl::StrCat("[ meta load ", MetaKeyName(e.key), " => reg ", e.dreg, " ]");
          },
          [](const PayloadLoad& e) {
            return absl::StrCat("[ payload load ", e.len, "b @ ", PayloadBaseName(e.base),
                                " header + ", e.offset, " => reg ", e.dreg, " ]");
          },
          [](const CtLoad& e) {
            return absl::StrCat("[ ct load ", CtKeyName(e.key), " => reg ", e.dreg, " ]");
          },
          [](const Cmp& e) {
            return absl::StrCat("[ cmp ", CmpOpName(e.op), " reg ", e.sreg, " ", Words(e.data),
                                " ]");
          },
          [](const Bitwise& e) {
            return absl::StrCat("[ bitwise reg ", e.dreg, " = ( reg ", e.sreg, " & ", Words(e.mask),
                                " ) ^ ", Words(e.xor_value), " ]");
          },
          [](const Lookup& e) {
            std::string out = absl::StrCat("[ lookup reg ", e.sreg, " set ", e.set);
            if (e.dreg) absl::StrAppend(&out, " dreg ", *e.dreg);
            if (e.invert) absl::StrAppend(&out, " 0x1");
            return absl::StrCat(out, " ]");
          },
          [](const Fib& e) { return FibToString(e); },
          [](const Nat& e) {
            std::string out = absl::StrCat("[ nat ", e.type == NFT_NAT_SNAT ? "snat" : "dnat", " ",
                                           FamilyName(e.family), " addr_min reg ", e.reg_addr_min);
            if (e.reg_proto_min) absl::StrAppend(&out, " proto_min reg ", *e.reg_proto_min);
            return absl::StrCat(out, " ]");
          },
          [](const Masquerade&) { return std::string("[ masq ]"); },
          [](const Immediate& e) {
            return absl::StrCat("[ immediate reg ", e.dreg, " ", Words(e.data), " ]");
          },
          [](const MetaSet& e) {
            return absl::StrCat("[ meta set ", MetaKeyName(e.key), " with reg ", e.sreg, " ]");
          },
          [](const Verdict& e) {
            return absl::StrCat("[ immediate reg 0 ", VerdictName(e.code), " ]");
          },
      },
      expr);
}

std::string PackFields(const std::vector<Datum>& fields) {
  if (fields.size() == 1) return fields[0].bytes;
  std::string out;
  for (const Datum& d : fields) {
    out += d.bytes;
    out.resize((out.size() + 3) / 4 * 4, '\0');
  }
  return out;
}

uint32_t Set::key_len() const { return FieldsLen(key); }
uint32_t Set::data_len() const { return data.empty() ? 0 : FieldsLen(data); }

std::string Command::Describe() const {
  const absl::string_view verb_word = VerbWord(verb);
  return std::visit(
      Overloaded{
          [&](const Table& t) {
            return absl::StrCat(verb_word, " table ", FamilyName(t.family), " ", t.name);
          },
          [&](const Chain& c) {
            return absl::StrCat(verb_word, " chain ", Quote(c.name), " ",
                                InTable(c.family, c.table));
          },
          [&](const Set& s) {
            return absl::StrCat(verb_word, s.is_map() ? " map " : " set ", Quote(s.name), " ",
                                InTable(s.family, s.table));
          },
          [&](const Rule& r) {
            std::string out = verb == Verb::kDelete
                                  ? absl::StrCat("delete rule handle ", r.handle, " from chain ")
                                  : absl::StrCat("add rule to chain ");
            absl::StrAppend(&out, Quote(r.chain), " ", InTable(r.family, r.table));
            if (!r.comment.empty()) absl::StrAppend(&out, " (comment ", Quote(r.comment), ")");
            return out;
          },
          [&](const Elements& e) {
            const size_t n = e.elements.size();
            std::string out = absl::StrCat(verb_word, " ");
            if (n == 1) {
              absl::StrAppend(&out, "element ");
            } else {
              absl::StrAppend(&out, n, " elements ");
            }
            absl::StrAppend(&out,
                            verb == Verb::kDelete   ? "from "
                            : verb == Verb::kEnsure ? "in "
                                                    : "to ",
                            e.map ? "map " : "set ", Quote(e.set), " ", InTable(e.family, e.table),
                            " (");
            for (size_t i = 0; i < n && i < 3; ++i) {
              Element shown = e.elements[i];
              shown.comment.clear();
              if (verb == Verb::kDelete) shown.data.clear();
              absl::StrAppend(&out, i > 0 ? ", " : "", shown.ToString());
            }
            if (n > 3) absl::StrAppend(&out, ", ...");
            return absl::StrCat(out, ")");
          },
      },
      object);
}

std::string Command::ToString() const {
  const absl::string_view verb_word = VerbWord(verb);
  const bool adding = verb == Verb::kAdd || verb == Verb::kEnsure;
  auto comment = [adding](absl::string_view c) { return adding ? CommentSuffix(c) : ""; };
  return std::visit(
      Overloaded{
          [&](const Table& t) {
            return absl::StrCat(verb_word, " table ", FamilyName(t.family), " ", t.name,
                                comment(t.comment));
          },
          [&](const Chain& c) {
            std::string out =
                absl::StrCat(verb_word, " chain ", FamilyName(c.family), " ", c.table, " ", c.name);
            if (c.base && adding) {
              absl::StrAppend(&out, " { type ", ChainTypeName(c.base->type), " hook ",
                              HookName(c.base->hook), " priority ", c.base->priority, "; policy ",
                              c.base->policy == Policy::kAccept ? "accept" : "drop", "; }");
            }
            return absl::StrCat(out, comment(c.comment));
          },
          [&](const Set& s) {
            std::string out = absl::StrCat(verb_word, s.is_map() ? " map " : " set ",
                                           FamilyName(s.family), " ", s.table, " ", s.name);
            if (adding) {
              absl::StrAppend(&out, " { type ", TypeList(s.key));
              if (s.is_map()) absl::StrAppend(&out, " : ", TypeList(s.data));
              absl::StrAppend(&out, ";", s.interval ? " flags interval;" : "", " }");
            }
            return absl::StrCat(out, comment(s.comment));
          },
          [&](const Rule& r) {
            std::string out =
                absl::StrCat(verb_word, " rule ", FamilyName(r.family), " ", r.table, " ", r.chain);
            if (verb == Verb::kDelete) return absl::StrCat(out, " handle ", r.handle);
            for (const Expr& e : r.exprs) absl::StrAppend(&out, " ", ExprToString(e));
            return absl::StrCat(out, comment(r.comment));
          },
          [&](const Elements& e) {
            return absl::StrCat(verb_word, " element ", FamilyName(e.family), " ", e.table, " ",
                                e.set, " { ",
                                absl::StrJoin(e.elements, ", ",
                                              [](std::string* out, const Element& el) {
                                                absl::StrAppend(out, el.ToString());
                                              }),
                                " }");
          },
      },
      object);
}

Transaction& Transaction::Push(Verb verb, Object object) {
  commands_.push_back(Command{verb, std::move(object)});
  return *this;
}

Transaction& Transaction::Append(const Transaction& other) {
  commands_.insert(commands_.end(), other.commands_.begin(), other.commands_.end());
  return *this;
}

absl::Status Transaction::Validate() const {
  for (const Command& command : commands_) {
    if (absl::Status s = CheckObject(command.verb, command.object); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("nftables: ", command.Describe(), ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CommandError(Verb verb, absl::string_view description, int err) {
  absl::Status status = ErrnoToStatus(err, absl::StrCat("nftables: ", description));
  if (verb == Verb::kEnsure && err == EEXIST) {
    return absl::Status(status.code(),
                        absl::StrCat(status.message(), "; it exists with different contents"));
  }
  return status;
}

std::string Transaction::ToString() const {
  std::string out;
  for (const Command& command : commands_) absl::StrAppend(&out, command.ToString(), "\n");
  return out;
}

}  // namespace mesh::netplane::nft
