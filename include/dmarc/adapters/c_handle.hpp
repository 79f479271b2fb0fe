// NAME
//   c_handle - RAII ownership of C library handles
// SYNOPSIS
//   using LdnsPkt = dmarc::CHandle<ldns_pkt, ldns_pkt_free>;
//   LdnsPkt pkt(ldns_pkt_new());   // ldns_pkt_free runs when pkt goes
// DESCRIPTION
//   A unique_ptr whose deleter calls the library's own free function (and
//   nothing for a null pointer). Every adapter (ldns, libspf2,
//   libopendkim) declares its handles with it, so the *_free calls live in
//   one using-declaration per handle type.
#pragma once

#include <memory>

namespace dmarc {

template <auto Free>
struct CFree {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p) Free(p);
  }
};

template <class T, auto Free>
using CHandle = std::unique_ptr<T, CFree<Free>>;

}  // namespace dmarc
