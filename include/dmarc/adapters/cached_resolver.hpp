// NAME
//   cached_resolver - a TTL cache in front of another Resolver
// STANDARDS
//   RFC 1035 (TTL), RFC 2308 (negative caching), RFC 2181 8 (TTL range)
// SYNOPSIS
//   auto ldns = std::make_shared<dmarc::LdnsResolver>(ldns_options);
//   dmarc::CachedResolverOptions copts;
//   copts.max_ttl = std::chrono::seconds(3600);
//   dmarc::CachedResolver cache(ldns, copts);
//   dmarc::DnsAnswer a = cache.txt("_dmarc.example.com");
// DESCRIPTION
//   CachedResolver answers from its cache while an entry is fresh and asks
//   the wrapped resolver otherwise. It is the one cache shared by DMARC,
//   SPF and DKIM lookups.
//
//   Keys are (name lower-cased in ASCII without a trailing dot, type), so
//   "Example.COM." and "example.com" share an entry.
//
//   What is cached, and for how long:
//     Ok                the answer's ttl, at most max_ttl
//     NxDomain, NoData  the answer's ttl (the SOA-derived negative TTL),
//                       raised to min_negative_ttl, at most max_ttl;
//                       not at all when cache_negative is false
//     TempFail          never: the next lookup asks again, so an outage
//                       ends as soon as the upstream recovers
//     PermFail          never: it is mostly a bad name, refused locally
//   An answer whose cache lifetime is 0 s is passed through uncached.
//   A cached answer is returned with ttl = the whole seconds it has left.
//
//   The cache is split into `shards` shards by key hash, each with its own
//   mutex and LRU list; each holds at most ceil(max_entries / shards)
//   entries and max_bytes / shards bytes (entry_bytes(): the texts plus a
//   generous allowance for the list, index and string overheads), evicting
//   its least recently used entries to make room. An answer larger than a
//   shard's share is not cached. Expired entries are dropped when met.
//
//   set_upstream() and set_limits() change the resolver asked on a miss
//   and the bounds while the cache is in use (a configuration reload keeps
//   the cached answers: they are DNS data, whoever asked for them).
//
//   Concurrent misses for one key each query upstream (no request
//   coalescing); the last answer stored wins.
//
//   The clock is injectable (options.clock) so expiry is testable without
//   sleeping; by default std::chrono::steady_clock::now.
// THREADING
//   query(), stats() and clear() may be called from any thread. The wrapped
//   resolver must itself be thread-safe (LdnsResolver is); it is called
//   without any cache lock held.
// DIAGNOSTICS
//   The constructor throws std::invalid_argument for shards == 0 or
//   max_entries == 0. query() never throws (an exception from the wrapped
//   resolver becomes TempFail). stats() counts hits, misses, evictions
//   (entries pushed out for room) and expirations.
// SECURITY
//   The entry count and the memory are bounded (max_entries, max_bytes):
//   65536 answers of up to 64 KiB each would otherwise be 4 GiB.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "dmarc/core/dns.hpp"

namespace dmarc {

struct CachedResolverOptions {
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  std::chrono::seconds max_ttl{3600};          // upper bound for every entry
  std::chrono::seconds min_negative_ttl{0};    // floor for NxDomain/NoData
  bool cache_negative = true;                  // cache NxDomain/NoData at all
  std::size_t max_entries = 10000;             // over all shards
  std::size_t max_bytes = 64u << 20;           // over all shards; 0: no byte bound
  std::size_t shards = 16;
  Clock clock;                                 // empty: steady_clock::now
};

struct CacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;    // removed to make room (LRU)
  std::uint64_t expirations = 0;  // removed because their TTL ran out
  std::size_t entries = 0;        // currently stored
  std::size_t bytes = 0;          // their entry_bytes()
};

class CachedResolver final : public Resolver {
 public:
  using Options = CachedResolverOptions;

  // Wraps UPSTREAM, sharing ownership.
  explicit CachedResolver(std::shared_ptr<Resolver> upstream, Options options = {});
  // Wraps UPSTREAM, which must outlive this object.
  explicit CachedResolver(Resolver& upstream, Options options = {});
  ~CachedResolver() override;
  CachedResolver(const CachedResolver&) = delete;
  CachedResolver& operator=(const CachedResolver&) = delete;

  // Resolver
  DnsAnswer query(std::string_view name, RRType type) override;

  CacheStats stats() const;
  // clear - drop every entry (counters are kept).
  void clear();
  // set_upstream - ask UPSTREAM on misses from now on (thread-safe).
  void set_upstream(std::shared_ptr<Resolver> upstream);
  // set_limits - new bounds (thread-safe); shrinks at once.
  void set_limits(std::size_t max_entries, std::size_t max_bytes, std::chrono::seconds max_ttl);
  const Options& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarc
