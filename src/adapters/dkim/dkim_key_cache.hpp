// dkim_key_cache.hpp - decoded DKIM public keys, kept across messages
//
// libopendkim (2.11) decodes the p= of a key record with OpenSSL's
// d2i_PUBKEY_bio() for every RSA signature it checks. With OpenSSL 3.0 that
// call assembles a decoder chain from the provider tables each time: 1.4
// million instructions per call measured by bench/profile.sh, six times the
// RSA-2048 verification itself, which in turn pays for the Montgomery
// constants of a key object it sees for the first time. Debian's opendkim
// pays both on every message.
//
// libopendkim.a is linked with "ld -r --wrap=d2i_PUBKEY_bio" (CMakeLists.txt),
// so its calls, and only its calls, land in __wrap_d2i_PUBKEY_bio
// (dkim_key_cache.cpp): a DER SubjectPublicKeyInfo read from a memory BIO
// (the only kind libopendkim uses) that was decoded before is answered from
// the cache with a new reference to the same EVP_PKEY (and so the RSA key
// with its Montgomery constants, cached inside it by OpenSSL); anything else
// goes to OpenSSL's own function. Nothing else in the process (libcurl,
// libpq, SQLite's users) is affected: the executable exports no
// d2i_PUBKEY_bio (tests/tools/check_symbol_scope.sh). The cache
// key is the DER bytes themselves, so a key can never be answered for
// another, and DNS caching (TTLs) stays where it is, in the resolver.
// Sharing one EVP_PKEY between threads for verification is safe in OpenSSL
// 3 (openssl-threads(7); its RSA legacy cache is taken under the key's lock).
#pragma once

#include <cstddef>
#include <cstdint>

namespace dmarc::dkim {

struct KeyCacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;  // decoded by OpenSSL, then kept
  std::uint64_t passed = 0;  // not cacheable (not a memory BIO, a target given, bad DER)
  std::size_t entries = 0;
  bool active = false;  // true once a libopendkim call reached the cache
};

// The most keys kept; the least recently used goes first.
inline constexpr std::size_t kKeyCacheCapacity = 2048;

KeyCacheStats key_cache_stats();

// key_cache_clear - forget every key (tests).
void key_cache_clear();

}  // namespace dmarc::dkim
