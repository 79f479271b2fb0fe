// readiness.cpp - sources, their class, the projection (dmarc/core/readiness.hpp)
#include "dmarc/core/readiness.hpp"

#include <algorithm>
#include <map>

#include "dmarc/core/domain.hpp"

namespace dmarc {

namespace {

bool within(std::string_view name, std::string_view domain) {
  if (ascii_iequals(name, domain)) return true;
  return name.size() > domain.size() + 1 && name[name.size() - domain.size() - 1] == '.' &&
         ascii_iequals(name.substr(name.size() - domain.size()), domain);
}

std::string first_of(const std::set<std::string>& s) { return s.empty() ? std::string() : *s.begin(); }

}  // namespace

std::string_view to_token(SourceClass c) noexcept {
  switch (c) {
    case SourceClass::Aligned: return "aligned";
    case SourceClass::AuthorisedMisaligned: return "authorised_misaligned";
    case SourceClass::Forwarder: return "forwarder";
    case SourceClass::Unauthenticated: return "unauthenticated";
  }
  return "unauthenticated";
}

std::vector<SourceSummary> summarize_sources(std::string_view domain, const std::vector<AggregateRecord>& records) {
  std::map<std::string, SourceSummary> by_ip;
  auto add = [](std::uint64_t& a, std::uint64_t b) { a = b > UINT64_MAX - a ? UINT64_MAX : a + b; };
  for (const auto& r : records) {
    SourceSummary& s = by_ip[r.source_ip];
    s.ip = r.source_ip;
    add(s.messages, r.count);
    if (r.result == DmarcResult::Pass) add(s.aligned_pass, r.count);
    if (r.result == DmarcResult::Fail) add(s.failed, r.count);
    if (r.spf) {
      s.spf_domains.insert(ascii_lowercase(r.spf->domain));
      if (r.spf->result == AuthResult::Pass) s.spf_pass_domains.insert(ascii_lowercase(r.spf->domain));
    }
    for (const auto& d : r.dkim) {
      s.dkim_domains.insert(ascii_lowercase(d.domain));
      if (d.result == AuthResult::Pass) s.dkim_pass_domains.insert(ascii_lowercase(d.domain));
      if ((d.result == AuthResult::Fail || d.result == AuthResult::PermError) && within(d.domain, domain))
        s.domain_dkim_failed = true;
    }
    if (r.list_id) s.forwarder_override = true;  // a List-Id: a mailing list
    for (const auto& o : r.overrides) {
      if (o.reason == OverrideReason::TrustedForwarder || o.reason == OverrideReason::MailingList ||
          o.reason == OverrideReason::Forwarded)
        s.forwarder_override = true;
    }
    bool spf_fail = r.spf && r.spf->result != AuthResult::Pass;
    if (r.dkim_alignment == Alignment::Pass && (spf_fail || !r.spf)) s.aligned_dkim_spf_fail = true;
  }
  std::vector<SourceSummary> out;
  for (auto& [ip, s] : by_ip) out.push_back(std::move(s));
  std::stable_sort(out.begin(), out.end(),
                   [](const SourceSummary& a, const SourceSummary& b) { return a.messages > b.messages; });
  return out;
}

void classify(std::string_view domain, SourceSummary& s) {
  const std::string d(domain);
  const std::string name = s.ip + (s.ptr.empty() ? "" : " (" + s.ptr + ")");
  s.fix.clear();
  if (s.messages > 0 && s.aligned_pass * 100 >= s.messages * 95) {
    s.cls = SourceClass::Aligned;
    return;
  }
  if (s.forwarder_override || s.aligned_dkim_spf_fail || (s.domain_dkim_failed && !s.domain_spf_authorises)) {
    s.cls = SourceClass::Forwarder;
    s.fix = name + " forwards or relays mail as " + d +
            ": where its signature survives, DKIM keeps it aligned; if it modifies messages (a mailing list), "
            "it should rewrite From or be accepted by the receivers' local policy (ARC, trusted forwarders)";
    return;
  }
  if (s.domain_spf_authorises || s.domain_dkim_failed) {
    s.cls = SourceClass::AuthorisedMisaligned;
    std::string spf_other;
    for (const auto& x : s.spf_pass_domains) {
      if (!within(x, d)) spf_other = x;
    }
    if (s.domain_dkim_failed) {
      s.fix = name + " signs as " + d + " but the signature fails: check its DKIM key and selector in DNS";
    } else if (!spf_other.empty()) {
      s.fix = name + " sends as " + d + " with SPF pass for " + spf_other +
              (s.dkim_pass_domains.empty() ? " and no DKIM" : " and DKIM only for " + first_of(s.dkim_pass_domains)) +
              ": have it sign with d=" + d + ", or use a subdomain of " + d + " with its own SPF as its envelope sender";
    } else {
      s.fix = name + " is in " + d + "'s SPF record but its mail does not align: use an envelope sender within " + d +
              " or sign with d=" + d;
    }
    return;
  }
  s.cls = SourceClass::Unauthenticated;
}

Readiness assess(std::string_view domain, const ReportPeriod& period, const std::vector<AggregateRecord>& records,
                 std::vector<SourceSummary> sources, const Thresholds& t) {
  Readiness r;
  r.domain = ascii_lowercase(domain);
  r.period = period;
  std::set<std::int64_t> days;
  std::int64_t latest = -1;
  for (const auto& rec : records) {
    days.insert(rec.day);
    if (rec.last_seen > latest) {
      latest = rec.last_seen;
      r.current = rec.policy.p;
    }
  }
  r.days = static_cast<int>(days.size());
  std::map<std::int64_t, Readiness::Day> daily;
  for (const auto& rec : records) {
    Readiness::Day& d = daily[rec.day];
    d.day = rec.day;
    d.messages += rec.count;
    if (rec.result == DmarcResult::Pass) d.aligned_pass += rec.count;
  }
  for (auto& [day, d] : daily) r.daily.push_back(d);
  for (auto& s : sources) {
    classify(domain, s);
    r.messages += s.messages;
    r.aligned_pass += s.aligned_pass;
    bool legit = s.cls != SourceClass::Unauthenticated;
    if (legit) r.legitimate_messages += s.messages;
    r.quarantine.affected += s.failed;
    r.reject.affected += s.failed;
    if (legit) {
      r.quarantine.legitimate += s.failed;
      r.reject.legitimate += s.failed;
    }
  }
  r.legitimate_at_risk =
      r.legitimate_messages ? static_cast<double>(r.reject.legitimate) / static_cast<double>(r.legitimate_messages) : 0;
  r.sources = std::move(sources);
  if (r.messages == 0 || r.days < t.min_days) {
    r.recommendation = "not enough data";
  } else if (r.current == Policy::Reject) {
    r.recommendation = "stay at reject";
  } else if (r.legitimate_at_risk > t.max_legitimate_at_risk) {
    r.recommendation = std::string("stay at ") + std::string(to_token(r.current));
  } else {
    r.recommendation = r.current == Policy::None ? "go to quarantine" : "go to reject";
  }
  return r;
}

}  // namespace dmarc
