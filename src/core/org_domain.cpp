// org_domain.cpp - RFC 9989 DNS tree walk and RFC 7489 PSL organizational domain
#include "dmarc/core/org_domain.hpp"

#include <libpsl.h>

#include "dmarc/core/domain.hpp"

namespace dmarc {

std::string_view to_token(DmarcMode m) noexcept { return m == DmarcMode::Rfc7489 ? "rfc7489" : "rfc9989"; }

std::string_view to_token(LookupFinding f) noexcept {
  switch (f) {
    case LookupFinding::NoRecord: return "no-record";
    case LookupFinding::Valid: return "valid";
    case LookupFinding::Invalid: return "invalid";
    case LookupFinding::Multiple: return "multiple";
    case LookupFinding::TempError: return "temperror";
  }
  return "?";
}

PublicSuffixList::PublicSuffixList(psl_ctx_st* ctx) noexcept : ctx_(ctx) {}
PublicSuffixList::~PublicSuffixList() {
  if (ctx_) psl_free(ctx_);
}
PublicSuffixList::PublicSuffixList(PublicSuffixList&& o) noexcept : ctx_(o.ctx_) { o.ctx_ = nullptr; }
PublicSuffixList& PublicSuffixList::operator=(PublicSuffixList&& o) noexcept {
  if (this != &o) {
    if (ctx_) psl_free(ctx_);
    ctx_ = o.ctx_;
    o.ctx_ = nullptr;
  }
  return *this;
}

std::optional<std::string> PublicSuffixList::registrable_domain(std::string_view domain) const {
  if (!ctx_ || domain.empty() || domain.size() > kMaxDomainLength) return std::nullopt;
  std::string d(domain);  // NUL-terminated copy for the C API
  if (d.find('\0') != std::string::npos) return std::nullopt;
  const char* reg = psl_registrable_domain(ctx_, d.c_str());
  if (!reg) return std::nullopt;
  return std::string(reg);
}

std::string PublicSuffixList::organizational_domain(std::string_view domain) const {
  if (auto r = registrable_domain(domain)) return *r;
  return std::string(domain);
}

// RFC 9989 4.10 steps 3-4: after the domain itself, a name of 8 or more
// labels is shortened to 7 labels, then one label is removed at a time
// until only the TLD remains; at most 8 queries in all.
std::vector<std::string> tree_walk_targets(std::string_view domain) {
  std::vector<std::string> out;
  std::size_t n = label_count(domain);
  if (n == 0) return out;
  out.emplace_back(domain);
  std::size_t next = n - 1;
  if (n >= 8) next = 7;
  for (std::size_t k = next; k >= 1 && out.size() < kMaxTreeWalkQueries; --k) {
    out.emplace_back(last_labels(domain, k));
  }
  return out;
}

LookupStep lookup_dmarc_at(Resolver& resolver, std::string_view domain) {
  LookupStep step;
  step.name = std::string(domain);
  std::string qname = "_dmarc." + step.name;
  DnsAnswer ans = resolver.txt(qname);
  step.dns = ans.status;
  switch (dns_error_kind(ans.status)) {
    case DnsErrorKind::Temporary:
      step.finding = LookupFinding::TempError;
      step.error = ans.why.empty() ? std::string(to_token(ans.status)) : ans.why;
      return step;
    case DnsErrorKind::Permanent:
      // A malformed answer cannot be retried into a record: no record here.
      step.finding = LookupFinding::NoRecord;
      step.error = ans.why.empty() ? std::string(to_token(ans.status)) : ans.why;
      return step;
    case DnsErrorKind::None:
      break;
  }
  // RFC 7489 6.6.3 step 2 / RFC 9989 4.10: discard TXT records that are not
  // DMARC; several DMARC records at one name count as none.
  const std::string* found = nullptr;
  int count = 0;
  for (const auto& txt : ans.records) {
    if (is_dmarc_record(txt)) {
      ++count;
      found = &txt;
    }
  }
  if (count == 0) {
    step.finding = LookupFinding::NoRecord;
    return step;
  }
  if (count > 1) {
    step.finding = LookupFinding::Multiple;
    step.error = std::to_string(count) + " DMARC records";
    return step;
  }
  step.text = *found;
  auto parsed = parse_dmarc_record(*found);
  if (parsed) {
    step.finding = LookupFinding::Valid;
    step.record = std::move(parsed.value());
  } else {
    step.finding = LookupFinding::Invalid;
    step.error = parsed.error().detail;
  }
  return step;
}

// RFC 9989 4.10.2: walk up from DOMAIN; a record with psd=n makes its own
// domain the Organizational Domain; a record with psd=y makes the name one
// label below it on the walked path (or DOMAIN itself when the record is at
// DOMAIN) the Organizational Domain; otherwise the valid record with the
// fewest labels names it; with no valid record DOMAIN is its own.
std::string org_domain_from_steps(std::string_view domain, const std::vector<LookupStep>& steps) {
  std::string candidate;
  for (const auto& s : steps) {
    if (s.finding != LookupFinding::Valid || !s.record) continue;
    if (s.record->psd == PsdFlag::No) return s.name;
    if (s.record->psd == PsdFlag::Yes) {
      if (s.name == domain) return std::string(domain);
      std::size_t want = label_count(s.name) + 1;
      return std::string(last_labels(domain, want));
    }
    candidate = s.name;  // later steps have fewer labels
  }
  if (!candidate.empty()) return candidate;
  return std::string(domain);
}

OrgDomainResult find_org_domain(Resolver& resolver, std::string_view domain, DmarcMode mode,
                                const PublicSuffixList* psl) {
  OrgDomainResult r;
  if (mode == DmarcMode::Rfc7489) {
    r.org_domain = psl ? psl->organizational_domain(domain) : std::string(domain);
    return r;
  }
  for (const auto& name : tree_walk_targets(domain)) {
    r.steps.push_back(lookup_dmarc_at(resolver, name));
    const LookupStep& s = r.steps.back();
    if (s.finding == LookupFinding::TempError) {
      r.temp_error = true;
      return r;
    }
    // psd=n or psd=y ends the walk early (RFC 9989 4.10.2).
    if (s.finding == LookupFinding::Valid && s.record && s.record->psd != PsdFlag::Unspecified) break;
  }
  r.org_domain = org_domain_from_steps(domain, r.steps);
  return r;
}

}  // namespace dmarc
