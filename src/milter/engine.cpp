// engine.cpp - the per-configuration objects shared by all sessions
#include "engine.hpp"
#include "dmarc/core/domain.hpp"

#include <unistd.h>

#include <chrono>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "dmarc/adapters/psl_file.hpp"

namespace dmarc::milter {

namespace {
}  // namespace

bool Engine::is_our_authserv_id(std::string_view id) const {
  if (ascii_iequals(id, authserv_id)) return true;
  for (const auto& t : config.trusted_authserv_ids) {
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
  LdnsResolverOptions ro;
  ro.nameservers = config.nameservers;
  ro.timeout = std::chrono::milliseconds(config.dns_timeout_s * 1000L);
  ro.tries = static_cast<unsigned>(config.dns_retries);
  auto ldns = LdnsResolver::create(ro);
  if (!ldns) return Unexpected(ldns.error());
  std::shared_ptr<Resolver> upstream(std::move(ldns.value()));
  if (config.dns_cache_size == 0) return upstream;
  CachedResolverOptions co;
  co.max_entries = config.dns_cache_size;
  co.max_ttl = std::chrono::seconds(config.dns_cache_max_ttl);
  return std::shared_ptr<Resolver>(std::make_shared<CachedResolver>(upstream, co));
}

Expected<std::shared_ptr<const Engine>, std::string> Engine::build(Config config, std::shared_ptr<Resolver> resolver) {
  auto e = std::make_shared<Engine>();
  e->authserv_id = config.authserv_id.empty() ? host_name() : config.authserv_id;
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
  auto dkim = DkimVerifier::create(*e->resolver, dk);
  if (!dkim) return Unexpected("DKIM: " + dkim.error());
  e->dkim = std::move(dkim.value());
  e->spf_options.receiver = e->authserv_id;
  e->config = std::move(config);
  return std::shared_ptr<const Engine>(std::move(e));
}

}  // namespace dmarc::milter
