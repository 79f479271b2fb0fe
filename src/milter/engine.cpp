// engine.cpp - the per-configuration objects shared by all sessions
#include "engine.hpp"
#include "metrics.hpp"
#include "dmarc/core/domain.hpp"

#include <unistd.h>

#include <chrono>
#include <random>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "dmarc/adapters/psl_file.hpp"

namespace dmarc::milter {

namespace {
// random_percent - pct sampling (RFC 7489 6.6.4), per thread.
int random_percent() {
  thread_local std::mt19937 gen{std::random_device{}()};
  return static_cast<int>(std::uniform_int_distribution<int>(0, 99)(gen));
}

// upstream_options - the LdnsResolver options for CONFIG.
LdnsResolverOptions upstream_options(const Config& config) {
  LdnsResolverOptions ro;
  ro.nameservers = config.nameservers;
  ro.timeout = std::chrono::milliseconds(config.dns_timeout_s * 1000L);
  ro.tries = static_cast<unsigned>(config.dns_retries);
  return ro;
}

CachedResolverOptions cache_options(const Config& config) {
  CachedResolverOptions co;
  co.max_entries = config.dns_cache_size;
  co.max_bytes = config.dns_cache_memory_mb << 20;
  co.max_ttl = std::chrono::seconds(config.dns_cache_max_ttl);
  return co;
}
}  // namespace

bool Engine::is_our_authserv_id(std::string_view id) const {
  if (ascii_iequals(id, authserv_id)) return true;
  for (const auto& t : config.own_authserv_ids) {
    if (ascii_iequals(id, t)) return true;
  }
  return false;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

Expected<std::shared_ptr<Resolver>, std::string> make_resolver(const Config& config) {
  auto ldns = LdnsResolver::create(upstream_options(config));
  if (!ldns) return Unexpected(ldns.error());
  std::shared_ptr<Resolver> upstream(std::move(ldns.value()));
  if (config.dns_cache_size == 0) return upstream;
  return std::shared_ptr<Resolver>(std::make_shared<CachedResolver>(upstream, cache_options(config)));
}

Expected<std::shared_ptr<Resolver>, std::string> Services::resolver_for(const Config& config) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key;
  for (const auto& n : config.nameservers) key += n + ",";
  key += "/" + std::to_string(config.dns_timeout_s) + "/" + std::to_string(config.dns_retries);
  if (!upstream_ || key != upstream_key_) {
    auto ldns = LdnsResolver::create(upstream_options(config));
    if (!ldns) return Unexpected(ldns.error());
    // Counted for the metrics: what goes upstream, and how it fails.
    upstream_ = std::make_shared<CountingResolver>(std::shared_ptr<Resolver>(std::move(ldns.value())));
    upstream_key_ = key;
    if (cache_) cache_->set_upstream(upstream_);
  }
  if (config.dns_cache_size == 0) return upstream_;
  CachedResolverOptions co = cache_options(config);
  if (!cache_) {
    cache_ = std::make_shared<CachedResolver>(upstream_, co);
  } else {
    cache_->set_limits(co.max_entries, co.max_bytes, co.max_ttl);
  }
  return std::shared_ptr<Resolver>(cache_);
}

std::shared_ptr<CachedResolver> Services::cache() {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_;
}

Expected<std::shared_ptr<const Engine>, std::string> Engine::build(Config config, std::shared_ptr<Resolver> resolver) {
  auto e = std::make_shared<Engine>();
  e->authserv_id = config.authserv_id.empty() ? host_name() : config.authserv_id;
  e->report_sender = config.report_sender.empty() ? "dmarc-reports@" + host_name() : config.report_sender;
  if (resolver) {
    e->resolver = std::move(resolver);
  } else {
    auto r = make_resolver(config);
    if (!r) return Unexpected("DNS: " + r.error());
    e->resolver = std::move(r.value());
  }
  if (config.mode == DmarcMode::Rfc7489) {
    auto psl = load_public_suffix_list(config.public_suffix_list);
    if (!psl) return Unexpected("PublicSuffixList: " + psl.error());
    e->psl.emplace(std::move(psl.value()));
  }
  DkimOptions dk;
  dk.min_rsa_bits = config.dkim_min_key_bits;
  dk.max_signatures = config.dkim_max_signatures;
  dk.allow_unsigned_trailer = config.dkim_allow_unsigned_trailer;
  auto dkim = DkimVerifier::create(*e->resolver, dk);
  if (!dkim) return Unexpected("DKIM: " + dkim.error());
  e->dkim = std::move(dkim.value());
  e->spf_options.receiver = e->authserv_id;
  e->config = std::move(config);
  // decide()'s options point into this engine, which never moves or changes.
  DecideOptions& d = e->decide_options;
  d.evaluation.mode = e->config.mode;
  d.evaluation.psl = e->psl ? &*e->psl : nullptr;
  d.evaluation.random_percent = random_percent;
  d.enforcement = e->config.enforcement;
  d.ignore_hosts = &e->config.ignore_hosts;
  d.ignore_authenticated = e->config.ignore_authenticated_clients;
  d.forwarders = &e->config.forwarders;
  d.authserv_id = e->authserv_id;
  d.quarantine_header = e->config.quarantine_header;
  d.max_dkim_reported = e->config.dkim_max_signatures;
  return std::shared_ptr<const Engine>(std::move(e));
}

}  // namespace dmarc::milter
