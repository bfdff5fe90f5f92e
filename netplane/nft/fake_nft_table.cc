#include "netplane/nft/fake_nft_table.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/overloaded.h"
#include "base/status_macros.h"

namespace mesh::netplane::nft {
namespace {

std::string Quote(absl::string_view s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

std::string CommentSuffix(absl::string_view comment) {
  return comment.empty() ? "" : absl::StrCat(" comment ", Quote(comment));
}

std::vector<DataType> TypesOf(const std::vector<Datum>& fields) {
  std::vector<DataType> out;
  out.reserve(fields.size());
  for (const Datum& d : fields) out.push_back(d.type);
  return out;
}

bool SameBase(const std::optional<BaseChain>& a, const std::optional<BaseChain>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->type == b->type && a->hook == b->hook && a->priority == b->priority;
}

bool RuleLooksUp(const Rule& rule, absl::string_view set) {
  for (const Expr& e : rule.exprs) {
    if (const auto* lookup = std::get_if<Lookup>(&e); lookup != nullptr && lookup->set == set) {
      return true;
    }
  }
  return false;
}

// "10.88.0.0/24" when [first, end) is a prefix, "first-last" otherwise.
std::string RangeToString(uint32_t first, uint64_t end) {
  auto addr = [](uint32_t host) {
    in_addr a{htonl(host)};
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &a, text, sizeof(text));
    return std::string(text);
  };
  const uint64_t size = end - first;
  if (size > 0 && (size & (size - 1)) == 0 && (first & (size - 1)) == 0) {
    int bits = 0;
    while ((uint64_t{1} << bits) < size) ++bits;
    return absl::StrCat(addr(first), "/", 32 - bits);
  }
  return absl::StrCat(addr(first), "-", addr(static_cast<uint32_t>(end - 1)));
}

uint32_t HostOrder(const Datum& d) {
  uint32_t n = 0;
  std::memcpy(&n, d.bytes.data(), 4);
  return ntohl(n);
}

std::string TypeList(const std::vector<DataType>& types) {
  return absl::StrJoin(types, " . ",
                       [](std::string* out, DataType t) { absl::StrAppend(out, DataTypeName(t)); });
}

}  // namespace

// Applies one command to `state`; returns 0 or the errno the kernel would give.
class FakeNftTable::Applier {
 public:
  explicit Applier(State& state) : state_(state) {}

  int Apply(const Command& c) {
    return std::visit(Overloaded{
                          [&](const Table& t) { return DoTable(c.verb, t); },
                          [&](const Chain& ch) { return DoChain(c.verb, ch); },
                          [&](const Set& s) { return DoSet(c.verb, s); },
                          [&](const Rule& r) { return DoRule(c.verb, r); },
                          [&](const Elements& e) { return DoElements(c.verb, e); },
                      },
                      c.object);
  }

 private:
  FakeTable* FindTable(Family family, const std::string& name) {
    auto it = state_.tables.find({family, name});
    return it == state_.tables.end() ? nullptr : &it->second;
  }

  int DoTable(Verb verb, const Table& t) {
    const auto key = std::make_pair(t.family, t.name);
    const bool exists = state_.tables.count(key) > 0;
    switch (verb) {
      case Verb::kAdd:
      case Verb::kEnsure:
        if (exists) return verb == Verb::kAdd ? EEXIST : 0;
        state_.tables[key].spec = t;
        return 0;
      case Verb::kDelete:
        if (!exists) return ENOENT;
        state_.tables.erase(key);
        return 0;
      case Verb::kFlush:
        return EINVAL;  // Validate() rejects it first
    }
    return EINVAL;
  }

  int DoChain(Verb verb, const Chain& c) {
    FakeTable* table = FindTable(c.family, c.table);
    if (table == nullptr) return ENOENT;
    auto it = table->chains.find(c.name);
    switch (verb) {
      case Verb::kAdd:
      case Verb::kEnsure:
        if (it != table->chains.end()) {
          if (verb == Verb::kAdd || !SameBase(it->second.spec.base, c.base)) return EEXIST;
          // The kernel updates the policy of an existing base chain.
          if (c.base) it->second.spec.base->policy = c.base->policy;
          return 0;
        }
        table->chains[c.name].spec = c;
        return 0;
      case Verb::kDelete:
        if (it == table->chains.end()) return ENOENT;
        table->chains.erase(it);
        return 0;
      case Verb::kFlush:
        if (it == table->chains.end()) return ENOENT;
        it->second.rules.clear();
        return 0;
    }
    return EINVAL;
  }

  int DoSet(Verb verb, const Set& s) {
    FakeTable* table = FindTable(s.family, s.table);
    if (table == nullptr) return ENOENT;
    auto it = table->sets.find(s.name);
    switch (verb) {
      case Verb::kAdd:
      case Verb::kEnsure:
        if (it != table->sets.end()) {
          const Set& have = it->second.spec;
          if (verb == Verb::kAdd || have.key != s.key || have.data != s.data ||
              have.interval != s.interval) {
            return EEXIST;
          }
          return 0;
        }
        table->sets[s.name].spec = s;
        return 0;
      case Verb::kDelete:
        if (it == table->sets.end()) return ENOENT;
        for (const auto& [name, chain] : table->chains) {
          for (const Rule& rule : chain.rules) {
            if (RuleLooksUp(rule, s.name)) return EBUSY;
          }
        }
        table->sets.erase(it);
        return 0;
      case Verb::kFlush:
        if (it == table->sets.end()) return ENOENT;
        it->second.elements.clear();
        return 0;
    }
    return EINVAL;
  }

  int DoRule(Verb verb, const Rule& r) {
    FakeTable* table = FindTable(r.family, r.table);
    if (table == nullptr) return ENOENT;
    auto chain = table->chains.find(r.chain);
    if (chain == table->chains.end()) return ENOENT;
    std::vector<Rule>& rules = chain->second.rules;
    if (verb == Verb::kDelete) {
      for (auto it = rules.begin(); it != rules.end(); ++it) {
        if (it->handle == r.handle) {
          rules.erase(it);
          return 0;
        }
      }
      return ENOENT;
    }
    for (const Expr& e : r.exprs) {
      const auto* lookup = std::get_if<Lookup>(&e);
      if (lookup == nullptr) continue;
      auto set = table->sets.find(lookup->set);
      if (set == table->sets.end()) return ENOENT;
      if (lookup->dreg && !set->second.spec.is_map()) return EINVAL;
    }
    Rule added = r;
    added.handle = state_.next_handle++;
    rules.push_back(std::move(added));
    return 0;
  }

  int DoElements(Verb verb, const Elements& e) {
    FakeTable* table = FindTable(e.family, e.table);
    if (table == nullptr) return ENOENT;
    auto it = table->sets.find(e.set);
    if (it == table->sets.end()) return ENOENT;
    FakeSet& set = it->second;
    for (const Element& el : e.elements) {
      // The kernel checks lengths; the types are checked here too, to catch mix-ups of fields
      // of equal length (an address where a mark goes).
      if (TypesOf(el.key) != set.spec.key) return EINVAL;
      if ((el.interval_end || el.interval_open) && !set.spec.interval) return EINVAL;
      const auto key = std::make_pair(PackFields(el.key), el.interval_end);
      auto have = set.elements.find(key);
      if (verb == Verb::kDelete) {
        if (have == set.elements.end()) return ENOENT;
        set.elements.erase(have);
        continue;
      }
      if (set.spec.is_map() != !el.data.empty()) return EINVAL;
      if (set.spec.is_map() && TypesOf(el.data) != set.spec.data) return EINVAL;
      if (have != set.elements.end()) {
        if (verb == Verb::kAdd || have->second.data != el.data) return EEXIST;
        continue;
      }
      set.elements.emplace(key, el);
    }
    return 0;
  }

  State& state_;
};

// Elements of an IPv4 interval set as ranges: a start, then the end element that follows it.
std::vector<std::string> FakeNftTable::IntervalLines(const ElementMap& elements) {
  std::vector<std::string> lines;
  // By key bytes (network order sorts numerically); at equal keys the end of one range comes
  // before the start of the next (adjacent subnets share that address).
  std::vector<const Element*> ordered;
  for (const auto& [key, el] : elements) ordered.push_back(&el);
  std::stable_sort(ordered.begin(), ordered.end(), [](const Element* a, const Element* b) {
    if (a->key[0].bytes != b->key[0].bytes) return a->key[0].bytes < b->key[0].bytes;
    return a->interval_end && !b->interval_end;
  });
  const Element* start = nullptr;
  auto flush_start = [&](std::optional<uint64_t> end) {
    const uint32_t first = HostOrder(start->key[0]);
    std::string line = end                    ? RangeToString(first, *end)
                       : start->interval_open ? RangeToString(first, uint64_t{1} << 32)
                                              : absl::StrCat(start->key[0].ToString(), " (no end)");
    lines.push_back(line + CommentSuffix(start->comment));
    start = nullptr;
  };
  for (const Element* el : ordered) {
    if (el->interval_end) {
      if (start != nullptr) {
        flush_start(HostOrder(el->key[0]));
      } else {
        lines.push_back(absl::StrCat(el->key[0].ToString(), " (interval end without start)"));
      }
      continue;
    }
    if (start != nullptr) flush_start(std::nullopt);
    start = el;
  }
  if (start != nullptr) flush_start(std::nullopt);
  return lines;
}

absl::Status FakeNftTable::Apply(const Transaction& transaction) {
  absl::MutexLock lock(&mu_);
  ++apply_count_;
  if (fail_next_) {
    absl::Status status = *std::move(fail_next_);
    fail_next_.reset();
    return status;
  }
  MESH_RETURN_IF_ERROR(transaction.Validate());
  State next = state_;
  Applier applier(next);
  for (const Command& command : transaction.commands()) {
    if (const int err = applier.Apply(command); err != 0) {
      return CommandError(command.verb, command.Describe(), err);
    }
  }
  state_ = std::move(next);
  return absl::OkStatus();
}

std::string FakeNftTable::Dump() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  auto comment_line = [&out](absl::string_view indent, absl::string_view comment) {
    if (!comment.empty()) absl::StrAppend(&out, indent, "comment ", Quote(comment), "\n");
  };
  for (const auto& [id, table] : state_.tables) {
    absl::StrAppend(&out, "table ", FamilyName(id.first), " ", id.second, "\n");
    comment_line("  ", table.spec.comment);
    for (const auto& [name, set] : table.sets) {
      const Set& s = set.spec;
      absl::StrAppend(&out, "  ", s.is_map() ? "map " : "set ", name, " { type ", TypeList(s.key),
                      s.is_map() ? absl::StrCat(" : ", TypeList(s.data)) : "",
                      s.interval ? "; flags interval" : "", " }\n");
      comment_line("    ", s.comment);
      if (s.interval && s.key.size() == 1 && s.key[0] == DataType::kIpv4Addr) {
        for (const std::string& line : IntervalLines(set.elements)) {
          absl::StrAppend(&out, "    ", line, "\n");
        }
        continue;
      }
      for (const auto& [key, el] : set.elements) absl::StrAppend(&out, "    ", el.ToString(), "\n");
    }
    for (const auto& [name, chain] : table.chains) {
      absl::StrAppend(&out, "  chain ", name);
      if (const auto& b = chain.spec.base) {
        absl::StrAppend(&out, " { type ", ChainTypeName(b->type), " hook ", HookName(b->hook),
                        " priority ", b->priority, "; policy ",
                        b->policy == Policy::kAccept ? "accept" : "drop", " }");
      }
      absl::StrAppend(&out, "\n");
      comment_line("    ", chain.spec.comment);
      for (const Rule& rule : chain.rules) {
        absl::StrAppend(&out, "    rule", rule.comment.empty() ? "" : " ",
                        rule.comment.empty() ? "" : absl::StrCat("comment ", Quote(rule.comment)),
                        "\n");
        for (const Expr& e : rule.exprs) absl::StrAppend(&out, "      ", ExprToString(e), "\n");
      }
    }
  }
  return out;
}

bool FakeNftTable::HasTable(Family family, absl::string_view table) const {
  absl::MutexLock lock(&mu_);
  return state_.tables.count({family, std::string(table)}) > 0;
}

size_t FakeNftTable::RuleCount(Family family, absl::string_view table) const {
  absl::MutexLock lock(&mu_);
  auto it = state_.tables.find({family, std::string(table)});
  if (it == state_.tables.end()) return 0;
  size_t n = 0;
  for (const auto& [name, chain] : it->second.chains) n += chain.rules.size();
  return n;
}

std::optional<size_t> FakeNftTable::ElementCount(Family family, absl::string_view table,
                                                 absl::string_view set) const {
  absl::MutexLock lock(&mu_);
  auto t = state_.tables.find({family, std::string(table)});
  if (t == state_.tables.end()) return std::nullopt;
  auto s = t->second.sets.find(std::string(set));
  if (s == t->second.sets.end()) return std::nullopt;
  return s->second.elements.size();
}

std::optional<Set> FakeNftTable::GetSet(Family family, absl::string_view table,
                                        absl::string_view set) const {
  absl::MutexLock lock(&mu_);
  auto t = state_.tables.find({family, std::string(table)});
  if (t == state_.tables.end()) return std::nullopt;
  auto s = t->second.sets.find(std::string(set));
  if (s == t->second.sets.end()) return std::nullopt;
  return s->second.spec;
}

std::vector<Element> FakeNftTable::GetElements(Family family, absl::string_view table,
                                               absl::string_view set) const {
  absl::MutexLock lock(&mu_);
  std::vector<Element> out;
  auto t = state_.tables.find({family, std::string(table)});
  if (t == state_.tables.end()) return out;
  auto s = t->second.sets.find(std::string(set));
  if (s == t->second.sets.end()) return out;
  for (const auto& [key, el] : s->second.elements) out.push_back(el);
  return out;
}

std::optional<Chain> FakeNftTable::GetChain(Family family, absl::string_view table,
                                            absl::string_view chain) const {
  absl::MutexLock lock(&mu_);
  auto t = state_.tables.find({family, std::string(table)});
  if (t == state_.tables.end()) return std::nullopt;
  auto c = t->second.chains.find(std::string(chain));
  if (c == t->second.chains.end()) return std::nullopt;
  return c->second.spec;
}

std::vector<Rule> FakeNftTable::GetRules(Family family, absl::string_view table,
                                         absl::string_view chain) const {
  absl::MutexLock lock(&mu_);
  auto t = state_.tables.find({family, std::string(table)});
  if (t == state_.tables.end()) return {};
  auto c = t->second.chains.find(std::string(chain));
  if (c == t->second.chains.end()) return {};
  return c->second.rules;
}

int FakeNftTable::apply_count() const {
  absl::MutexLock lock(&mu_);
  return apply_count_;
}

void FakeNftTable::FailNextApplyForTest(absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_next_ = std::move(status);
}

}  // namespace mesh::netplane::nft
