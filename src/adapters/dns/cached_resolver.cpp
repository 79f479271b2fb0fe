// cached_resolver.cpp - sharded LRU TTL cache in front of a Resolver
#include "dmarc/adapters/cached_resolver.hpp"

#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dmarc {

namespace {

using TimePoint = std::chrono::steady_clock::time_point;

struct Key {
  std::string name;  // ASCII lower case, no trailing dot
  RRType type;
  bool operator==(const Key& o) const noexcept { return type == o.type && name == o.name; }
};

struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    std::size_t h = std::hash<std::string>{}(k.name);
    return h ^ (static_cast<std::size_t>(k.type) * 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  }
};

Key make_key(std::string_view name, RRType type) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  Key k{std::string(name), type};
  for (char& c : k.name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return k;
}

struct Entry {
  Key key;
  DnsAnswer answer;
  TimePoint expires;
  std::size_t bytes = 0;  // what it costs (entry_bytes)
};

// entry_bytes - the memory one entry takes, counted generously: the texts
// and the fixed parts of the list node, the index node and the strings.
std::size_t entry_bytes(const Key& key, const DnsAnswer& a) noexcept {
  constexpr std::size_t kPerString = sizeof(std::string) + 16;  // header + allocator rounding
  std::size_t n = sizeof(Entry) + 4 * sizeof(void*) + 2 * key.name.size() + 2 * kPerString + 64;  // list + index node
  n += a.why.size() + kPerString;
  for (const auto& r : a.records) n += r.size() + kPerString;
  return n;
}

// Shard - one lock, one LRU list (front = most recent), one index.
struct Shard {
  std::mutex mu;
  std::list<Entry> lru;
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index;
  std::size_t bytes = 0;  // sum of the entries' bytes
};

}  // namespace

struct CachedResolver::Impl {
  mutable std::mutex upstream_mu;   // guards upstream (set_upstream)
  std::shared_ptr<Resolver> upstream;
  Options options;
  std::vector<Shard> shards;
  std::atomic<std::size_t> per_shard{1};
  std::atomic<std::size_t> per_shard_bytes{0};  // 0: no byte bound
  std::atomic<long long> max_ttl_s{0};
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<std::uint64_t> evictions{0};
  std::atomic<std::uint64_t> expirations{0};

  Impl(std::shared_ptr<Resolver> up, Options opts)
      : upstream(std::move(up)), options(std::move(opts)), shards(options.shards == 0 ? 1 : options.shards) {
    if (options.shards == 0) throw std::invalid_argument("DNS cache shards must be at least 1");
    if (options.max_entries == 0) throw std::invalid_argument("DNS cache size must be at least 1");
    if (!upstream) throw std::invalid_argument("DNS cache needs a resolver");
    apply_limits(options.max_entries, options.max_bytes, options.max_ttl);
    if (!options.clock) options.clock = [] { return std::chrono::steady_clock::now(); };
  }

  void apply_limits(std::size_t max_entries, std::size_t max_bytes, std::chrono::seconds max_ttl) {
    per_shard = std::max<std::size_t>(1, (max_entries + shards.size() - 1) / shards.size());
    per_shard_bytes = max_bytes == 0 ? 0 : std::max<std::size_t>(1, max_bytes / shards.size());
    max_ttl_s = std::max<long long>(0, max_ttl.count());
  }

  std::shared_ptr<Resolver> current_upstream() const {
    std::lock_guard<std::mutex> lock(upstream_mu);
    return upstream;
  }

  Shard& shard_for(const Key& k) { return shards[KeyHash{}(k) % shards.size()]; }

  // lifetime - how long ANSWER may be cached; zero means not at all.
  std::chrono::seconds lifetime(const DnsAnswer& answer) const {
    std::chrono::seconds ttl{answer.ttl};
    switch (answer.status) {
      case DnsStatus::Ok: break;
      case DnsStatus::NxDomain:
      case DnsStatus::NoData:
        if (!options.cache_negative) return std::chrono::seconds{0};
        ttl = std::max(ttl, options.min_negative_ttl);
        break;
      case DnsStatus::TempFail:
      case DnsStatus::PermFail: return std::chrono::seconds{0};
    }
    return std::clamp(ttl, std::chrono::seconds{0}, std::chrono::seconds{max_ttl_s.load(std::memory_order_relaxed)});
  }

  std::optional<DnsAnswer> lookup(const Key& key, TimePoint now) {
    Shard& s = shard_for(key);
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return std::nullopt;
    auto pos = it->second;
    if (now >= pos->expires) {
      s.bytes -= pos->bytes;
      s.lru.erase(pos);
      s.index.erase(it);
      expirations.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    s.lru.splice(s.lru.begin(), s.lru, pos);
    DnsAnswer out = pos->answer;
    out.ttl = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(pos->expires - now).count());
    return out;
  }

  // evict_for - make room in S for one more entry of BYTES (lock held).
  void evict_for(Shard& s, std::size_t bytes) {
    const std::size_t max_n = per_shard.load(std::memory_order_relaxed);
    const std::size_t max_b = per_shard_bytes.load(std::memory_order_relaxed);
    while (!s.lru.empty() && (s.lru.size() >= max_n || (max_b != 0 && s.bytes + bytes > max_b))) {
      s.bytes -= s.lru.back().bytes;
      s.index.erase(s.lru.back().key);
      s.lru.pop_back();
      evictions.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void store(Key key, const DnsAnswer& answer, TimePoint expires) {
    const std::size_t bytes = entry_bytes(key, answer);
    const std::size_t max_b = per_shard_bytes.load(std::memory_order_relaxed);
    if (max_b != 0 && bytes > max_b) return;  // larger than a shard may hold
    Shard& s = shard_for(key);
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto it = s.index.find(key); it != s.index.end()) {
      s.bytes -= it->second->bytes;
      s.lru.erase(it->second);
      s.index.erase(it);
    }
    evict_for(s, bytes);
    s.lru.push_front(Entry{key, answer, expires, bytes});
    s.bytes += bytes;
    s.index.emplace(std::move(key), s.lru.begin());
  }

  DnsAnswer query(std::string_view name, RRType type) {
    Key key = make_key(name, type);
    if (auto hit = lookup(key, options.clock())) {
      hits.fetch_add(1, std::memory_order_relaxed);
      return std::move(*hit);
    }
    misses.fetch_add(1, std::memory_order_relaxed);
    DnsAnswer answer = current_upstream()->query(name, type);
    const std::chrono::seconds life = lifetime(answer);
    if (life.count() > 0) {
      // The lifetime counts from when the answer arrived.
      store(std::move(key), answer, options.clock() + life);
      answer.ttl = static_cast<std::uint32_t>(life.count());
    }
    return answer;
  }
};

CachedResolver::CachedResolver(std::shared_ptr<Resolver> upstream, Options options)
    : impl_(std::make_unique<Impl>(std::move(upstream), std::move(options))) {}

CachedResolver::CachedResolver(Resolver& upstream, Options options)
    : impl_(std::make_unique<Impl>(std::shared_ptr<Resolver>(&upstream, [](Resolver*) {}), std::move(options))) {}

CachedResolver::~CachedResolver() = default;

DnsAnswer CachedResolver::query(std::string_view name, RRType type) {
  try {
    return impl_->query(name, type);
  } catch (const std::exception& e) {
    DnsAnswer a;
    a.status = DnsStatus::TempFail;
    a.why = std::string("resolver error: ") + e.what();
    return a;
  } catch (...) {
    DnsAnswer a;
    a.status = DnsStatus::TempFail;
    a.why = "resolver error";
    return a;
  }
}

CacheStats CachedResolver::stats() const {
  CacheStats st;
  st.hits = impl_->hits.load(std::memory_order_relaxed);
  st.misses = impl_->misses.load(std::memory_order_relaxed);
  st.evictions = impl_->evictions.load(std::memory_order_relaxed);
  st.expirations = impl_->expirations.load(std::memory_order_relaxed);
  for (auto& s : impl_->shards) {
    std::lock_guard<std::mutex> lock(s.mu);
    st.entries += s.lru.size();
    st.bytes += s.bytes;
  }
  return st;
}

void CachedResolver::clear() {
  for (auto& s : impl_->shards) {
    std::lock_guard<std::mutex> lock(s.mu);
    s.index.clear();
    s.lru.clear();
    s.bytes = 0;
  }
}

void CachedResolver::set_upstream(std::shared_ptr<Resolver> upstream) {
  if (!upstream) throw std::invalid_argument("DNS cache needs a resolver");
  std::lock_guard<std::mutex> lock(impl_->upstream_mu);
  impl_->upstream = std::move(upstream);
}

void CachedResolver::set_limits(std::size_t max_entries, std::size_t max_bytes, std::chrono::seconds max_ttl) {
  if (max_entries == 0) throw std::invalid_argument("DNS cache size must be at least 1");
  impl_->apply_limits(max_entries, max_bytes, max_ttl);
  // Shrink at once rather than at the next store.
  for (auto& s : impl_->shards) {
    std::lock_guard<std::mutex> lock(s.mu);
    impl_->evict_for(s, 0);
  }
}

const CachedResolverOptions& CachedResolver::options() const noexcept { return impl_->options; }

}  // namespace dmarc
