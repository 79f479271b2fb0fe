// NAME
//   engine - everything built from one configuration, shared by sessions
// DESCRIPTION
//   An Engine is made once per configuration (at start and at each SIGHUP
//   reload) and never changes afterwards; sessions hold a shared_ptr to
//   the engine of their message, so a reload never changes a message
//   half-way. It holds the configuration, the decide() options built from
//   it, the Public Suffix List (rfc7489 mode) and the DKIM library handle,
//   and shares the resolver.
//   Services owns what outlives a reload: the DNS cache. (The report
//   recorder, which also outlives reloads, is milter.hpp's current_recorder.) A reload builds a new Engine on the same Services, so
//   cached answers survive it; changed DNS settings swap the upstream
//   resolver and the cache's bounds in place.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <mutex>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/dkim.hpp"
#include "dmarc/adapters/spf.hpp"
#include "dmarc/config/config.hpp"
#include "dmarc/core/decide.hpp"
#include "dmarc/core/dns.hpp"
#include "dmarc/core/org_domain.hpp"

namespace dmarc::milter {

struct Engine {
  Config config;
  std::string authserv_id;                  // AuthservID, or this host's name
  std::string report_sender;                // ReportSender, or dmarc-reports@ this host's name
  std::shared_ptr<Resolver> resolver;       // every lookup goes through it
  std::optional<PublicSuffixList> psl;      // rfc7489 mode only
  std::unique_ptr<DkimVerifier> dkim;
  SpfOptions spf_options;
  DecideOptions decide_options;  // points into config and psl

  // is_our_authserv_id - AuthservID or one of OwnAuthservIDs
  // (case-insensitive, RFC 8601 2.5: compared as a domain name would be).
  bool is_our_authserv_id(std::string_view id) const;

  // build - an engine for CONFIG. RESOLVER replaces the ldns resolver and
  // cache (tests); null builds them from the configuration.
  static Expected<std::shared_ptr<const Engine>, std::string> build(Config config,
                                                                    std::shared_ptr<Resolver> resolver = nullptr);
};

// make_resolver - the ldns resolver behind a TTL cache, as configured.
Expected<std::shared_ptr<Resolver>, std::string> make_resolver(const Config& config);

// Services - the long-lived parts, kept across reloads (see DESCRIPTION).
class Services {
 public:
  // resolver_for - the shared resolver set up for CONFIG: the same cache
  // every time (DNSCacheSize 0: none), its upstream rebuilt only when
  // Nameservers, DNSTimeout or DNSRetries changed.
  Expected<std::shared_ptr<Resolver>, std::string> resolver_for(const Config& config);
  // cache - the DNS cache (null until resolver_for made one), for the metrics.
  std::shared_ptr<CachedResolver> cache();

 private:
  std::mutex mu_;
  std::shared_ptr<CachedResolver> cache_;
  std::shared_ptr<Resolver> upstream_;
  std::string upstream_key_;  // the DNS settings upstream_ was made for
};

// host_name - this host's name, for the default authserv-id.
std::string host_name();

}  // namespace dmarc::milter
