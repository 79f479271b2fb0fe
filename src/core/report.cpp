// report.cpp - the aggregate report model (dmarc/core/report.hpp)
#include "dmarc/core/report.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>

#include "dmarc/core/domain.hpp"

namespace dmarc {

namespace {

template <class E, std::size_t N>
std::optional<E> parse_among(std::string_view s, const E (&all)[N]) noexcept {
  for (E e : all) {
    if (to_token(e) == s) return e;
  }
  return std::nullopt;
}

std::uint64_t fnv1a64(std::string_view s, std::uint64_t h = 1469598103934665603ULL) noexcept {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// file_safe - a domain for a file name: letters, digits, '.', '-', '_'.
std::string file_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_';
    out += ok ? static_cast<char>(c) : '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

// size_suffix - "!N[kmgt]" for a !size limit of SIZE octets, "" for none.
std::string size_suffix(std::uint64_t size) {
  if (size == 0) return {};
  static const std::pair<char, int> units[] = {{'t', 40}, {'g', 30}, {'m', 20}, {'k', 10}};
  for (auto [unit, shift] : units) {
    std::uint64_t m = std::uint64_t{1} << shift;
    if (size % m == 0) return "!" + std::to_string(size / m) + unit;
  }
  return "!" + std::to_string(size);
}

}  // namespace

std::int64_t utc_day(std::int64_t t) noexcept {
  // Floor division: a time before 1970 belongs to the day before.
  return t >= 0 ? t / kSecondsPerDay : -((-t + kSecondsPerDay - 1) / kSecondsPerDay);
}

std::string format_day(std::int64_t day) {
  using namespace std::chrono;
  year_month_day ymd{sys_days{days{day}}};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

std::optional<std::int64_t> parse_day(std::string_view text) noexcept {
  using namespace std::chrono;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t len) -> int {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return -1;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  int y = num(0, 4), m = num(5, 2), d = num(8, 2);
  if (y < 1970 || m < 1 || d < 1) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return static_cast<std::int64_t>(sys_days{ymd}.time_since_epoch().count());
}

std::string_view to_token(SpfScope s) noexcept { return s == SpfScope::Helo ? "helo" : "mfrom"; }
std::optional<SpfScope> parse_spf_scope(std::string_view s) noexcept {
  if (s == "helo") return SpfScope::Helo;
  if (s == "mfrom") return SpfScope::MailFrom;
  return std::nullopt;
}

std::optional<DmarcResult> parse_dmarc_result(std::string_view s) noexcept {
  static const DmarcResult all[] = {DmarcResult::Pass, DmarcResult::Fail, DmarcResult::None, DmarcResult::TempError,
                                    DmarcResult::PermError};
  return parse_among(s, all);
}
std::optional<Disposition> parse_disposition(std::string_view s) noexcept {
  static const Disposition all[] = {Disposition::None, Disposition::Quarantine, Disposition::Reject};
  return parse_among(s, all);
}
std::optional<Alignment> parse_alignment(std::string_view s) noexcept {
  static const Alignment all[] = {Alignment::Pass, Alignment::Fail, Alignment::None, Alignment::TempError};
  return parse_among(s, all);
}
std::optional<OverrideReason> parse_override_reason(std::string_view s) noexcept {
  static const OverrideReason all[] = {OverrideReason::Forwarded,   OverrideReason::SampledOut,
                                       OverrideReason::TrustedForwarder, OverrideReason::MailingList,
                                       OverrideReason::LocalPolicy, OverrideReason::PolicyTestMode,
                                       OverrideReason::Other};
  return parse_among(s, all);
}
std::optional<Action> parse_action(std::string_view s) noexcept {
  static const Action all[] = {Action::Accept, Action::Quarantine, Action::Reject, Action::TempFail};
  return parse_among(s, all);
}
std::optional<AlignmentMode> parse_alignment_mode(std::string_view s) noexcept {
  static const AlignmentMode all[] = {AlignmentMode::Relaxed, AlignmentMode::Strict};
  return parse_among(s, all);
}
std::optional<PsdFlag> parse_psd_flag(std::string_view s) noexcept {
  static const PsdFlag all[] = {PsdFlag::Unspecified, PsdFlag::Yes, PsdFlag::No};
  return parse_among(s, all);
}
std::optional<DiscoveryMethod> parse_discovery(std::string_view s) noexcept {
  static const DiscoveryMethod all[] = {DiscoveryMethod::TreeWalk, DiscoveryMethod::Psl};
  return parse_among(s, all);
}

std::vector<AggregateRecord> aggregate_records(const MessageFacts& facts, const MessageVerdict& verdict,
                                               std::int64_t now) {
  std::vector<AggregateRecord> out;
  if (!verdict.checked) return out;
  for (const Verdict& v : verdict.verdicts) {
    if (!v.record) continue;  // no policy: nothing to report to anyone
    AggregateRecord r;
    r.day = utc_day(now);
    r.last_seen = now;
    const DmarcRecord& rec = *v.record;
    PublishedPolicy& p = r.policy;
    p.domain = v.record_domain;
    p.p = rec.p;
    p.sp = rec.sp;
    p.np = rec.np;
    p.adkim = rec.adkim;
    p.aspf = rec.aspf;
    p.pct = rec.pct;
    p.fo = rec.fo.text;
    p.t = rec.t;
    p.psd = rec.psd;
    p.discovery = v.discovery;
    // The URI with its !size, as published (a limit in its largest unit),
    // so that report_destinations() reads the limit back.
    for (const auto& u : rec.rua) p.rua.push_back(uri_with_size(u));
    r.source_ip = facts.client_ip;
    r.header_from = v.author_domain;
    r.envelope_from = ascii_lowercase(domain_of(facts.mail_from));
    if (!facts.rcpt_to.empty()) r.envelope_to = ascii_lowercase(domain_of(facts.rcpt_to.front()));
    r.result = v.result;
    r.requested = v.requested_disposition;
    r.disposition = v.disposition;
    r.dkim_alignment = v.dkim_alignment;
    r.spf_alignment = v.spf_alignment;
    r.overrides = v.overrides;
    for (const auto& d : facts.dkim) {
      if (r.dkim.size() >= kMaxReportedDkim) break;
      r.dkim.push_back(DkimAuthResult{d.domain, d.selector, d.result});
    }
    if (facts.spf) r.spf = SpfAuthResult{facts.spf->domain, facts.spf->scope, facts.spf->result};
    r.action = verdict.decision.action;
    r.list_id = facts.list_id;
    out.push_back(std::move(r));
  }
  return out;
}

std::string encode_fields(const std::vector<std::vector<std::string>>& entries) {
  // One entry of one empty field would be "", as no entry is: "\\e".
  if (entries.size() == 1 && entries[0].size() == 1 && entries[0][0].empty()) return "\\e";
  std::string out;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i) out += '\n';
    for (std::size_t j = 0; j < entries[i].size(); ++j) {
      if (j) out += '\t';
      for (char c : entries[i][j]) {
        switch (c) {
          case '\\': out += "\\\\"; break;
          case '\t': out += "\\t"; break;
          case '\n': out += "\\n"; break;
          default: out += c;
        }
      }
    }
    // An entry of one empty field must differ from no entry at all.
    if (entries[i].empty()) out += "\\0";
  }
  return out;
}

std::vector<std::vector<std::string>> decode_fields(std::string_view text) {
  std::vector<std::vector<std::string>> out;
  if (text.empty()) return out;
  if (text == "\\e") return {{std::string()}};
  out.emplace_back();
  out.back().emplace_back();
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      char n = text[++i];
      if (n == 't') out.back().back() += '\t';
      else if (n == 'n') out.back().back() += '\n';
      else if (n == '0') out.back().clear();
      else out.back().back() += n;
    } else if (c == '\t') {
      out.back().emplace_back();
    } else if (c == '\n') {
      out.emplace_back();
      out.back().emplace_back();
    } else {
      out.back().back() += c;
    }
  }
  return out;
}

std::string record_key(const AggregateRecord& r) {
  const PublishedPolicy& p = r.policy;
  auto opt = [](const std::optional<Policy>& x) { return x ? std::string(to_token(*x)) : std::string(); };
  std::vector<std::vector<std::string>> f;
  f.push_back({std::string(to_token(p.p)), opt(p.sp), opt(p.np), std::string(to_token(p.adkim)),
               std::string(to_token(p.aspf)), std::to_string(p.pct), p.fo, p.t ? "y" : "n",
               std::string(to_token(p.psd)), std::string(to_token(p.discovery))});
  f.push_back(p.rua);
  f.push_back({r.source_ip, r.header_from, r.envelope_from, r.envelope_to});
  f.push_back({std::string(to_token(r.result)), std::string(to_token(r.requested)),
               std::string(to_token(r.disposition)), std::string(to_token(r.dkim_alignment)),
               std::string(to_token(r.spf_alignment)), std::string(to_token(r.action))});
  std::vector<std::string> ov;
  for (const auto& o : r.overrides) {
    ov.emplace_back(to_token(o.reason));
    ov.push_back(o.comment);
  }
  f.push_back(ov);
  std::vector<std::string> dk;
  for (const auto& d : r.dkim) {
    dk.push_back(d.domain);
    dk.push_back(d.selector);
    dk.emplace_back(to_token(d.result));
  }
  f.push_back(dk);
  if (r.spf) f.push_back({r.spf->domain, std::string(to_token(r.spf->scope)), std::string(to_token(r.spf->result))});
  else f.push_back({});
  // Added with schema 5; only when set, so the keys of earlier rows stay.
  if (r.list_id) f.push_back({"list"});
  return encode_fields(f);
}

std::vector<AggregateRecord> merge_records(std::vector<AggregateRecord> records) {
  std::map<std::pair<std::string, std::string>, AggregateRecord> by_key;  // (source_ip, key)
  for (auto& r : records) {
    std::string key = r.policy.domain + '\n' + record_key(r);
    auto k = std::make_pair(r.source_ip, std::move(key));
    auto it = by_key.find(k);
    if (it == by_key.end()) {
      by_key.emplace(std::move(k), std::move(r));
      continue;
    }
    AggregateRecord& m = it->second;
    std::uint64_t room = std::numeric_limits<std::uint64_t>::max() - m.count;
    m.count = r.count > room ? std::numeric_limits<std::uint64_t>::max() : m.count + r.count;
    m.last_seen = std::max(m.last_seen, r.last_seen);
    m.day = std::min(m.day, r.day);
  }
  std::vector<AggregateRecord> out;
  out.reserve(by_key.size());
  for (auto& [k, r] : by_key) out.push_back(std::move(r));
  return out;
}

std::int64_t ReportPeriod::first_day() const noexcept {
  std::int64_t d = utc_day(begin);
  return d * kSecondsPerDay < begin ? d + 1 : d;
}
std::int64_t ReportPeriod::last_day() const noexcept { return utc_day(end); }

ReportPeriod day_period(std::int64_t day) noexcept {
  return ReportPeriod{day * kSecondsPerDay, day * kSecondsPerDay + kSecondsPerDay - 1};
}

std::string_view to_token(ReportFormat f) noexcept { return f == ReportFormat::Rfc9990 ? "rfc9990" : "rfc7489"; }

std::string report_id(std::string_view policy_domain, const ReportPeriod& period) {
  std::string material = ascii_lowercase(policy_domain) + '!' + std::to_string(period.begin) + '!' +
                         std::to_string(period.end);
  return std::to_string(period.begin) + "." + hex64(fnv1a64(material)) + "@dmarc-milter";
}

std::string report_file_name(std::string_view receiver, std::string_view policy_domain, const ReportPeriod& period,
                             std::string_view ext) {
  return file_safe(receiver) + "!" + file_safe(policy_domain) + "!" + std::to_string(period.begin) + "!" +
         std::to_string(period.end) + (ext.empty() ? "" : "." + std::string(ext));
}

std::string report_subject(std::string_view policy_domain, std::string_view submitter, std::string_view id) {
  return "Report Domain: " + std::string(policy_domain) + " Submitter: " + std::string(submitter) + " Report-ID: <" +
         std::string(id) + ">";
}

std::string uri_with_size(const ReportUri& u) { return u.uri + size_suffix(u.max_size); }

std::vector<ReportDestination> report_destinations(const std::vector<std::string>& rua,
                                                   std::vector<std::string>* skipped) {
  std::vector<ReportDestination> out;
  for (const auto& text : rua) {
    auto parsed = parse_dmarc_record("v=DMARC1; rua=" + text);  // the record parser knows !size and mailto
    const ReportUri* u = parsed && !parsed->rua.empty() ? &parsed->rua.front() : nullptr;
    if (!u || !u->is_mailto()) {
      if (skipped) skipped->push_back(text + " (not a mailto: URI)");
      continue;
    }
    ReportDestination d;
    d.uri = text;
    d.address = u->mailto_address();
    d.host = ascii_lowercase(domain_of(d.address));
    d.max_size = u->max_size;
    if (d.host.empty() || d.address.find('@') == std::string::npos) {
      if (skipped) skipped->push_back(text + " (no address)");
      continue;
    }
    bool dup = std::any_of(out.begin(), out.end(), [&](const ReportDestination& o) {
      return ascii_iequals(o.address, d.address);
    });
    if (dup) continue;
    if (out.size() >= kMaxReportUris) {
      if (skipped) skipped->push_back(text + " (more than " + std::to_string(kMaxReportUris) + " destinations)");
      continue;
    }
    out.push_back(std::move(d));
  }
  return out;
}

bool needs_authorization(std::string_view policy_org_domain, std::string_view destination_org_domain) noexcept {
  return !ascii_iequals(policy_org_domain, destination_org_domain);
}

std::string authorization_name(std::string_view policy_domain, std::string_view host) {
  return std::string(policy_domain) + "._report._dmarc." + std::string(host);
}

bool is_authorization(const std::vector<std::string>& txt) noexcept {
  for (const auto& t : txt) {
    std::string_view s = t;
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    if (s.size() >= 8 && ascii_iequals(s.substr(0, 8), "v=DMARC1")) {
      if (s.size() == 8 || s[8] == ';' || s[8] == ' ' || s[8] == '\t') return true;
    }
  }
  return false;
}

std::string_view to_token(AuthorizationStatus s) noexcept {
  switch (s) {
    case AuthorizationStatus::Authorized: return "authorized";
    case AuthorizationStatus::Unauthorized: return "unauthorized";
    case AuthorizationStatus::TempFail: return "tempfail";
  }
  return "tempfail";
}

AuthorizationStatus check_authorization(Resolver& resolver, std::string_view policy_domain, std::string_view host,
                                        std::string* why) {
  std::string name = authorization_name(policy_domain, host);
  DnsAnswer a = resolver.txt(name);
  switch (a.status) {
    case DnsStatus::Ok:
      if (is_authorization(a.records)) return AuthorizationStatus::Authorized;
      if (why) *why = name + ": no TXT record starting with v=DMARC1";
      return AuthorizationStatus::Unauthorized;
    case DnsStatus::NxDomain:
    case DnsStatus::NoData:
    case DnsStatus::PermFail:
      if (why) *why = name + ": " + std::string(to_token(a.status));
      return AuthorizationStatus::Unauthorized;
    case DnsStatus::TempFail:
      break;
  }
  if (why) *why = name + ": temporary DNS failure" + (a.why.empty() ? "" : " (" + a.why + ")");
  return AuthorizationStatus::TempFail;
}

bool in_address_list(const std::vector<std::string>& list, std::string_view address) noexcept {
  std::string_view dom = address;
  if (auto at = address.rfind('@'); at != std::string_view::npos) dom = address.substr(at + 1);
  for (const auto& e : list) {
    std::string_view entry = e;
    if (entry.find('@') != std::string_view::npos) {
      if (ascii_iequals(entry, address)) return true;
      continue;
    }
    if (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
    if (entry.empty()) continue;
    if (ascii_iequals(dom, entry)) return true;
    if (dom.size() > entry.size() && dom[dom.size() - entry.size() - 1] == '.' &&
        ascii_iequals(dom.substr(dom.size() - entry.size()), entry))
      return true;
  }
  return false;
}

std::string_view to_token(ReportStatus s) noexcept {
  switch (s) {
    case ReportStatus::Pending: return "pending";
    case ReportStatus::Sending: return "sending";
    case ReportStatus::Sent: return "sent";
    case ReportStatus::Failed: return "failed";
  }
  return "pending";
}

std::optional<ReportStatus> parse_report_status(std::string_view s) noexcept {
  static const ReportStatus all[] = {ReportStatus::Pending, ReportStatus::Sending, ReportStatus::Sent,
                                     ReportStatus::Failed};
  return parse_among(s, all);
}

}  // namespace dmarc
