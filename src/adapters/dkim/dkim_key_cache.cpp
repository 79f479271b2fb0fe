// dkim_key_cache.cpp - d2i_PUBKEY_bio with a cache in front (see the header)
#include "dkim_key_cache.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <atomic>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace dmarc::dkim {
namespace {

using D2iFn = EVP_PKEY* (*)(BIO*, EVP_PKEY**);

// A DER key longer than this is not kept (RSA-8192 SPKI is about 1,100).
constexpr long kMaxDer = 4096;

class KeyCache {
 public:
  ~KeyCache() {
    for (auto& [der, key] : lru_) EVP_PKEY_free(key);
  }

  // find - a new reference to the key decoded from DER, or nullptr.
  EVP_PKEY* find(std::string_view der) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(der);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    EVP_PKEY* key = it->second->second;
    if (EVP_PKEY_up_ref(key) != 1) return nullptr;
    return key;
  }

  // keep - remember KEY (a reference of its own is taken) under DER.
  void keep(std::string der, EVP_PKEY* key) {
    if (EVP_PKEY_up_ref(key) != 1) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (index_.count(der)) {  // another thread was first
      EVP_PKEY_free(key);
      return;
    }
    lru_.emplace_front(std::move(der), key);
    index_.emplace(lru_.front().first, lru_.begin());
    while (lru_.size() > kKeyCacheCapacity) {
      index_.erase(lru_.back().first);
      EVP_PKEY_free(lru_.back().second);
      lru_.pop_back();
    }
  }

  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lru_.size();
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    index_.clear();
    for (auto& [der, key] : lru_) EVP_PKEY_free(key);
    lru_.clear();
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<std::string, EVP_PKEY*>> lru_;
  std::unordered_map<std::string_view, std::list<std::pair<std::string, EVP_PKEY*>>::iterator> index_;
};

// Never destroyed: libopendkim may verify from other threads while the
// process exits.
KeyCache& cache() {
  static KeyCache* c = new KeyCache();
  return *c;
}

std::atomic<std::uint64_t> g_hits{0}, g_misses{0}, g_passed{0};

// der_of - the bytes of the one DER object at the head of a memory BIO
// (what d2i_PUBKEY_bio would read), in the BIO's own memory; empty when it
// is not one whole definite-length SEQUENCE of at most kMaxDer octets.
std::string_view der_of(BIO* bp) {
  char* data = nullptr;
  long avail = BIO_get_mem_data(bp, &data);
  if (avail <= 0 || !data) return {};
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data);
  const unsigned char* start = p;
  long len = 0;
  int tag = 0, cls = 0;
  int r = ASN1_get_object(&p, &len, &tag, &cls, avail);
  // A definite-length SEQUENCE (SubjectPublicKeyInfo), whole in the buffer.
  if ((r & 0x80) || r != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL) return {};
  long total = static_cast<long>(p - start) + len;
  if (total <= 0 || total > avail || total > kMaxDer) return {};
  return std::string_view(data, static_cast<std::size_t>(total));
}

}  // namespace

KeyCacheStats key_cache_stats() {
  KeyCacheStats s;
  s.hits = g_hits.load();
  s.misses = g_misses.load();
  s.passed = g_passed.load();
  s.entries = cache().size();
  // libopendkim's calls were renamed to ours at link time (CMakeLists.txt);
  // active once one of them arrived here.
  s.active = s.hits + s.misses + s.passed > 0;
  return s;
}

void key_cache_clear() { cache().clear(); }

}  // namespace dmarc::dkim

// What libopendkim's d2i_PUBKEY_bio calls were renamed to (ld --wrap):
// same contract as OpenSSL's (the caller owns the returned key and frees it
// with EVP_PKEY_free). Everyone else calls OpenSSL's directly.
extern "C" EVP_PKEY* __wrap_d2i_PUBKEY_bio(BIO* bp, EVP_PKEY** a) {
  using namespace dmarc::dkim;
  D2iFn real = &::d2i_PUBKEY_bio;
  if (a != nullptr || bp == nullptr || BIO_method_type(bp) != BIO_TYPE_MEM) {
    g_passed.fetch_add(1, std::memory_order_relaxed);
    return real(bp, a);
  }
  // Looked up in place; copied only when a new key is kept, and before
  // OpenSSL's function consumes the BIO.
  std::string_view der = der_of(bp);
  if (der.empty()) {
    g_passed.fetch_add(1, std::memory_order_relaxed);
    return real(bp, a);
  }
  EVP_PKEY* key = nullptr;
  try {
    key = cache().find(der);
  } catch (...) {
    key = nullptr;
  }
  if (key) {
    // Consume the object from the BIO, as OpenSSL's function would have.
    char sink[256];
    std::size_t left = der.size();
    while (left > 0) {
      int n = BIO_read(bp, sink, static_cast<int>(left < sizeof sink ? left : sizeof sink));
      if (n <= 0) break;
      left -= static_cast<std::size_t>(n);
    }
    g_hits.fetch_add(1, std::memory_order_relaxed);
    return key;
  }
  std::string copy;
  try {
    copy.assign(der);
  } catch (...) {
    g_passed.fetch_add(1, std::memory_order_relaxed);
    return real(bp, a);
  }
  key = real(bp, nullptr);
  if (key) {
    g_misses.fetch_add(1, std::memory_order_relaxed);
    try {
      cache().keep(std::move(copy), key);
    } catch (...) {
      // Out of memory in the cache: the key is still returned, not kept.
    }
  }
  return key;
}
