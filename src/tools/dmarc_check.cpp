// dmarc_check.cpp - dmarc-check: what DMARC says about a domain, as a receiver sees it
//
// See man/dmarc-check.1. Exit codes (sysexits-style for usage/config):
//   0 record found, no warnings     1 record found, with warnings
//   2 no DMARC record applies       3 unusable record (permerror)
//   4 DNS temporary failure         64 usage error    78 configuration error
#include <getopt.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "dmarc/adapters/psl_file.hpp"
#include "dmarc/build_config.hpp"
#include "dmarc/config/config.hpp"
#include "dmarc/core/domain_check.hpp"

using namespace dmarc;

namespace {

constexpr int kExitOk = 0, kExitWarnings = 1, kExitNoRecord = 2, kExitInvalid = 3, kExitTempError = 4,
              kExitUsage = 64, kExitConfig = 78;

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: dmarc-check [-c config] [-n nameserver]... [-m rfc9989|rfc7489] [-P psl-file] domain\n"
               "       dmarc-check -V\n");
}

// Untrusted DNS text: show printable ASCII, escape the rest.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string policy_line(const DmarcRecord& r) {
  std::string s = "p=" + std::string(to_token(r.p)) + " sp=" + std::string(to_token(r.subdomain_policy())) +
                  " np=" + std::string(to_token(r.nonexistent_policy())) + " adkim=" + std::string(to_token(r.adkim)) +
                  " aspf=" + std::string(to_token(r.aspf)) + " fo=" + r.fo.text + " t=" + (r.t ? "y" : "n") +
                  " psd=" + std::string(to_token(r.psd)) + " pct=" + std::to_string(r.pct);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::string> config_file;
  std::vector<std::string> nameservers;
  std::optional<std::string> mode_arg, psl_arg;
  static const option longopts[] = {{"config", required_argument, nullptr, 'c'},
                                     {"nameserver", required_argument, nullptr, 'n'},
                                     {"mode", required_argument, nullptr, 'm'},
                                     {"psl", required_argument, nullptr, 'P'},
                                     {"version", no_argument, nullptr, 'V'},
                                     {"help", no_argument, nullptr, 'h'},
                                     {nullptr, 0, nullptr, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:n:m:P:Vh", longopts, nullptr)) != -1) {
    switch (ch) {
      case 'c': config_file = optarg; break;
      case 'n': nameservers.emplace_back(optarg); break;
      case 'm': mode_arg = optarg; break;
      case 'P': psl_arg = optarg; break;
      case 'V': std::printf("dmarc-check %s\n", build::kVersion); return kExitOk;
      case 'h': usage(stdout); return kExitOk;
      default: usage(stderr); return kExitUsage;
    }
  }
  if (optind + 1 != argc) {
    usage(stderr);
    return kExitUsage;
  }
  std::string domain = argv[optind];

  Config cfg = default_config();
  if (config_file) {
    auto loaded = load_config(*config_file);
    if (!loaded) {
      std::fprintf(stderr, "dmarc-check: %s\n", loaded.error().str().c_str());
      return kExitConfig;
    }
    cfg = std::move(loaded.value());
    for (const auto& w : cfg.warnings) std::fprintf(stderr, "dmarc-check: warning: %s\n", w.str().c_str());
  }
  if (mode_arg) {
    auto parsed = parse_config("DMARCMode " + *mode_arg, "--mode");
    if (!parsed) {
      std::fprintf(stderr, "dmarc-check: %s\n", parsed.error().message.c_str());
      return kExitUsage;
    }
    cfg.mode = parsed->mode;
  }
  if (!nameservers.empty()) cfg.nameservers = nameservers;
  if (psl_arg) cfg.public_suffix_list = *psl_arg;

  LdnsResolver::Options ro;
  ro.nameservers = cfg.nameservers;
  ro.timeout = std::chrono::seconds(cfg.dns_timeout_s);
  ro.tries = static_cast<unsigned>(cfg.dns_retries);
  auto resolver = LdnsResolver::create(ro);
  if (!resolver) {
    std::fprintf(stderr, "dmarc-check: %s\n", resolver.error().c_str());
    return config_file ? kExitConfig : kExitUsage;
  }
  std::optional<PublicSuffixList> psl;
  {
    auto loaded = load_public_suffix_list(cfg.public_suffix_list);
    if (loaded) {
      psl.emplace(std::move(loaded.value()));
    } else if (cfg.mode == DmarcMode::Rfc7489) {
      std::fprintf(stderr, "dmarc-check: PublicSuffixList: %s\n", loaded.error().c_str());
      return kExitConfig;
    }
  }

  // The walks for several identifiers ask the same names: one cache, as in the milter.
  Resolver* dns = resolver->get();
  std::unique_ptr<CachedResolver> cached;
  if (cfg.dns_cache_size > 0) {
    CachedResolverOptions co;
    co.max_ttl = std::chrono::seconds(cfg.dns_cache_max_ttl);
    co.max_entries = cfg.dns_cache_size;
    cached = std::make_unique<CachedResolver>(*dns, co);
    dns = cached.get();
  }
  DomainCheck c = check_domain(*dns, domain, cfg.mode, psl ? &*psl : nullptr);
  std::printf("domain:               %s\n", printable(c.domain).c_str());
  std::printf("mode:                 %s\n", std::string(to_token(c.mode)).c_str());
  std::printf("lookups:\n");
  for (const auto& s : c.failing.steps) {
    std::printf("  _dmarc.%-40s %s%s%s\n", printable(s.name).c_str(), std::string(to_token(s.finding)).c_str(),
                s.finding == LookupFinding::NoRecord ? (" (" + std::string(to_token(s.dns)) + ")").c_str() : "",
                s.error.empty() ? "" : (": " + printable(s.error)).c_str());
  }
  if (c.status == CheckStatus::Found) {
    const Verdict& v = c.failing;
    const auto& found = *std::find_if(v.steps.begin(), v.steps.end(),
                                      [&](const LookupStep& s) { return s.name == v.record_domain && s.record; });
    std::printf("record:               found at _dmarc.%s\n", v.record_domain.c_str());
    std::printf("  %s\n", printable(found.text).c_str());
    std::printf("policy:               %s\n", policy_line(*v.record).c_str());
    for (const auto& u : v.record->rua) std::printf("  rua:                %s\n", printable(u.uri).c_str());
    for (const auto& u : v.record->ruf) std::printf("  ruf:                %s\n", printable(u.uri).c_str());
  } else {
    std::printf("record:               %s\n", std::string(to_token(c.status)).c_str());
  }
  std::printf("organizational domain:\n");
  std::printf("  RFC 9989 tree walk: %s\n", c.org_tree_walk.empty() ? "(DNS failure)" : c.org_tree_walk.c_str());
  std::printf("  RFC 7489 PSL:       %s\n", c.org_psl.empty() ? "(no Public Suffix List)" : c.org_psl.c_str());
  if (c.status == CheckStatus::Found) {
    const Verdict& v = c.failing;
    std::string pol = std::string(to_token(v.policy_source)) + "=" + std::string(to_token(v.requested));
    std::string reasons;
    for (auto r : v.overrides) reasons += " " + std::string(to_token(r));
    std::printf("failing message:      dmarc=fail policy %s -> %s%s\n", pol.c_str(),
                std::string(to_token(v.disposition)).c_str(),
                reasons.empty() ? "" : (" (override:" + reasons + ")").c_str());
  } else {
    std::printf("failing message:      dmarc=%s -> delivered as usual\n", std::string(to_token(c.failing.result)).c_str());
  }
  for (const auto& e : c.external) {
    std::printf("external %s:         %s %s\n", e.tag.c_str(), printable(e.address).c_str(),
                e.temp_error ? "(authorization unknown: DNS failure)" : e.authorized ? "(authorized)" : "(NOT authorized)");
  }
  if (!c.findings.empty()) std::printf("problems:\n");
  for (const auto& f : c.findings)
    std::printf("  %-8s %s\n", (std::string(to_token(f.severity)) + ":").c_str(), printable(f.message).c_str());

  switch (c.status) {
    case CheckStatus::TempError: return kExitTempError;
    case CheckStatus::Invalid: return kExitInvalid;
    case CheckStatus::NoRecord: return kExitNoRecord;
    case CheckStatus::Found: break;
  }
  return c.worst() == CheckSeverity::Info ? kExitOk : kExitWarnings;
}
