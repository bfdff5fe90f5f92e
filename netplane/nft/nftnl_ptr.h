#pragma once

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include <memory>

namespace mesh::netplane::nft {

// Owning pointers for libnftnl and libmnl objects (STYLE.md rule 2): no *_free outside these.
// Objects handed to a container (nftnl_rule_add_expr, nftnl_set_elem_add) are release()d into
// it, which then owns them.
struct NftnlDeleter {
  void operator()(nftnl_table* p) const { nftnl_table_free(p); }
  void operator()(nftnl_chain* p) const { nftnl_chain_free(p); }
  void operator()(nftnl_set* p) const { nftnl_set_free(p); }
  void operator()(nftnl_set_elem* p) const { nftnl_set_elem_free(p); }
  void operator()(nftnl_rule* p) const { nftnl_rule_free(p); }
  void operator()(nftnl_expr* p) const { nftnl_expr_free(p); }
  void operator()(nftnl_udata_buf* p) const { nftnl_udata_buf_free(p); }
  void operator()(mnl_socket* p) const { mnl_socket_close(p); }
};
template <typename T>
using NftnlPtr = std::unique_ptr<T, NftnlDeleter>;

}  // namespace mesh::netplane::nft
