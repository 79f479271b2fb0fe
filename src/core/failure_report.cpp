// failure_report.cpp - when a failure report is due, and its fields (dmarc/core/failure_report.hpp)
#include "dmarc/core/failure_report.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>

#include "dmarc/core/domain.hpp"
#include "dmarc/core/report.hpp"

namespace dmarc {

// RFC 7489 6.3 fo=, per option; psd=y records never get failure reports
// (RFC 9989: a public suffix domain's policy is not theirs to report on).
bool failure_report_due(const Verdict& v, const MessageFacts& facts) noexcept {
  if (!v.record || v.record->psd == PsdFlag::Yes) return false;
  if (v.result == DmarcResult::None) return false;
  const FailureOptions& fo = v.record->fo;
  const bool dkim_aligned = v.dkim_alignment == Alignment::Pass;
  const bool spf_aligned = v.spf_alignment == Alignment::Pass;
  if (fo.all_fail && !dkim_aligned && !spf_aligned) return true;
  if (fo.any_fail && (!dkim_aligned || !spf_aligned)) return true;
  if (fo.dkim) {
    for (const auto& d : facts.dkim) {
      if (d.result == AuthResult::Fail || d.result == AuthResult::PermError) return true;
    }
  }
  if (fo.spf && facts.spf && (facts.spf->result == AuthResult::Fail || facts.spf->result == AuthResult::SoftFail))
    return true;
  return false;
}

std::string identity_alignment(const Verdict& v) {
  const bool dkim = v.dkim_alignment == Alignment::Pass;
  const bool spf = v.spf_alignment == Alignment::Pass;
  if (dkim && spf) return "dkim, spf";
  if (dkim) return "dkim";
  if (spf) return "spf";
  return "none";
}

std::string_view delivery_result(Action a, bool held) noexcept {
  switch (a) {
    case Action::Accept: return "delivered";
    case Action::Quarantine: return held ? "policy" : "spam";
    case Action::Reject: return "reject";
    case Action::TempFail: return "other";
  }
  return "other";
}

FeedbackReport feedback_for(const MessageFacts& facts, const Verdict& v, const MessageDecision& d,
                            std::string_view ar, std::string_view user_agent, std::string_view arrival) {
  FeedbackReport f;
  f.feedback_type = "auth-failure";
  f.version = "1";
  f.user_agent = std::string(user_agent);
  f.auth_failure = "dmarc";
  f.identity_alignment = identity_alignment(v);
  if (!ar.empty()) f.authentication_results.emplace_back(ar);
  f.original_envelope_id = facts.queue_id;
  f.original_mail_from = facts.mail_from.empty() ? "<>" : "<" + facts.mail_from + ">";
  for (const auto& r : facts.rcpt_to) f.original_rcpt_to.push_back("<" + r + ">");
  f.arrival_date = std::string(arrival);
  f.source_ip = facts.client_ip;
  f.reported_domain.push_back(v.author_domain);
  f.delivery_result = std::string(delivery_result(d.action, d.hold));
  // The DKIM fields of RFC 6591 3.2 for the signature of the author's
  // domain that failed (or the first that failed when none was the author's).
  const DkimFacts* failed = nullptr;
  for (const auto& k : facts.dkim) {
    if (k.result != AuthResult::Fail && k.result != AuthResult::PermError) continue;
    if (!failed || (ascii_iequals(k.domain, v.author_domain) && !ascii_iequals(failed->domain, v.author_domain)))
      failed = &k;
  }
  if (failed) {
    f.dkim_domain = failed->domain;
    f.dkim_identity = "@" + failed->domain;
    f.dkim_selector = failed->selector;
  }
  // SPF-DNS (RFC 6591 3.2) for an SPF failure: "txt : DOMAIN" here; the
  // sender (dmarc-report) adds the record text it finds in DNS, or leaves
  // the field out (complete_spf_dns).
  if (facts.spf && (facts.spf->result == AuthResult::Fail || facts.spf->result == AuthResult::SoftFail) &&
      !facts.spf->domain.empty()) {
    f.spf_dns = "txt : " + facts.spf->domain;
  }
  return f;
}

std::string rfc5322_date(std::int64_t t) {
  using namespace std::chrono;
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  sys_seconds s{seconds{t}};
  sys_days d = floor<days>(s);
  year_month_day ymd{d};
  weekday wd{d};
  hh_mm_ss<seconds> hms{s - d};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %d %02d:%02d:%02d +0000", kDays[wd.c_encoding()],
                static_cast<unsigned>(ymd.day()), kMonths[static_cast<unsigned>(ymd.month()) - 1],
                static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return buf;
}

std::vector<FailureJob> failure_jobs(const MessageFacts& facts, const MessageVerdict& verdict,
                                     std::string_view original, bool on_none, std::string_view user_agent,
                                     std::int64_t now) {
  std::vector<FailureJob> out;
  if (!verdict.checked) return out;
  for (const Verdict& v : verdict.verdicts) {
    if (!v.record || v.record->ruf.empty() || !failure_report_due(v, facts)) continue;
    if (v.requested == Policy::None && !on_none) continue;
    FailureJob j;
    j.created = now;
    j.reported_domain = v.author_domain;
    j.policy_domain = v.record_domain;
    for (const auto& u : v.record->ruf) j.ruf.push_back(uri_with_size(u));
    j.feedback = feedback_for(facts, v, verdict.decision, verdict.ar_value.value_or(""), user_agent, rfc5322_date(now));
    j.original = std::string(original);
    out.push_back(std::move(j));
  }
  return out;
}

std::string_view to_token(FailureJobKind k) noexcept { return k == FailureJobKind::Local ? "local" : "ruf"; }

bool is_own_domain(const std::vector<std::string>& own, std::string_view domain) noexcept {
  for (const auto& o : own) {
    if (ascii_iequals(o, domain)) return true;
    if (domain.size() > o.size() + 1 && domain[domain.size() - o.size() - 1] == '.' &&
        ascii_iequals(domain.substr(domain.size() - o.size()), o))
      return true;
  }
  return false;
}

bool local_forensic_due(const Verdict& v) noexcept { return v.result == DmarcResult::Fail; }

// shown - untrusted text for one line of a report's text part: control
// characters become '?', at most 512 bytes.
static std::string shown(std::string_view s) {
  std::string out(s.substr(0, 512));
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

std::string forensic_explanation(const MessageFacts& facts, const Verdict& v, const MessageDecision& d) {
  std::string t;
  // The values come from the envelope, the header and DNS: each is shown
  // on its own line, so a line break in one cannot forge another line.
  auto line = [&](const std::string& label, const std::string& value) {
    t += label;
    t.append(label.size() < 14 ? 14 - label.size() : 1, ' ');
    t += shown(value) + "\n";
  };
  const std::string author = shown(v.author_domain);
  t += "A message claiming to be from " + author + " failed DMARC.\n\n";
  line("Source IP:", facts.client_ip.empty() ? "(none: a local submission)" : facts.client_ip);
  line("Client name:", facts.client_name.empty() ? "(unknown)" : facts.client_name);
  line("HELO:", facts.helo);
  line("MAIL FROM:", facts.mail_from.empty() ? "<> (a null-sender message: a bounce or an auto-reply)"
                                             : "<" + facts.mail_from + ">");
  std::string rcpts;
  for (const auto& r : facts.rcpt_to) rcpts += (rcpts.empty() ? "<" : ", <") + r + ">";
  line("RCPT TO:", rcpts.empty() ? "(none)" : rcpts);
  line("Queue id:", facts.queue_id.empty() ? "-" : facts.queue_id);
  t += "\n";
  if (facts.spf) {
    std::string spf = std::string(to_token(facts.spf->result)) + " for " + facts.spf->domain +
                      (facts.spf->scope == SpfScope::Helo ? " (the HELO name)" : "");
    if (!facts.spf->problem.empty()) spf += " (" + facts.spf->problem + ")";
    line("SPF:", spf);
  } else {
    line("SPF:", "not checked");
  }
  if (facts.dkim.empty()) line("DKIM:", "no signature");
  for (const auto& k : facts.dkim) {
    std::string sig = std::string(to_token(k.result)) + " d=" + k.domain + " s=" + k.selector;
    if (!k.reason.empty() && k.result != AuthResult::Pass) sig += " (" + k.reason + ")";
    line("DKIM:", sig);
  }
  t += "\nWhy DMARC failed (alignment with " + author + "):\n";
  const std::string org = v.org_domain.empty() ? author : shown(v.org_domain);
  const bool strict_spf = v.record && v.record->aspf == AlignmentMode::Strict;
  const bool strict_dkim = v.record && v.record->adkim == AlignmentMode::Strict;
  if (v.spf_alignment == Alignment::Pass) {
    t += "- SPF passed and is aligned.\n";
  } else if (facts.spf && facts.spf->result == AuthResult::Pass) {
    t += "- SPF passed for " + shown(facts.spf->domain) + ", which is not " +
         (strict_spf ? author + " (aspf=s: the same domain is needed)" : "within " + org) + ".\n";
  } else {
    t += "- SPF did not pass" + (facts.spf ? " (" + std::string(to_token(facts.spf->result)) + ")" : "") + ".\n";
  }
  bool any_dkim_pass = false;
  for (const auto& k : facts.dkim) {
    if (k.result != AuthResult::Pass) continue;
    any_dkim_pass = true;
    if (v.dkim_alignment != Alignment::Pass)
      t += "- DKIM passed for d=" + shown(k.domain) + ", which is not " +
           (strict_dkim ? author + " (adkim=s: the same domain is needed)" : "within " + org) + ".\n";
  }
  if (v.dkim_alignment == Alignment::Pass) t += "- DKIM passed and is aligned.\n";
  else if (!any_dkim_pass) t += "- No DKIM signature passed.\n";
  t += "\nWhat happened:  " + std::string(to_token(d.action)) +
       (v.overrides.empty() ? "" : " (" + std::string(to_token(v.overrides.front().reason)) +
                                       (v.overrides.front().comment.empty() ? "" : ": " + shown(v.overrides.front().comment)) +
                                       ")") +
       "; the policy found: p=" + (v.record ? std::string(to_token(v.requested)) : std::string("none")) + "\n";
  std::string kept = v.overrides.empty() ? "" : " (unless your local policy keeps it, as it did here)";
  t += "Under p=quarantine it would be quarantined" + kept + ".\n";
  t += "Under p=reject it would be rejected" + kept + ".\n";
  return t;
}

std::vector<FailureJob> local_forensic_jobs(const MessageFacts& facts, const MessageVerdict& verdict,
                                            const std::vector<std::string>& own, std::string_view original,
                                            std::string_view user_agent, std::int64_t now) {
  std::vector<FailureJob> out;
  if (!verdict.checked || own.empty()) return out;
  for (const Verdict& v : verdict.verdicts) {
    if (!is_own_domain(own, v.author_domain) || !local_forensic_due(v)) continue;
    FailureJob j;
    j.kind = FailureJobKind::Local;
    j.created = now;
    j.reported_domain = v.author_domain;
    j.policy_domain = v.record_domain.empty() ? v.author_domain : v.record_domain;
    j.feedback = feedback_for(facts, v, verdict.decision, verdict.ar_value.value_or(""), user_agent, rfc5322_date(now));
    j.text = forensic_explanation(facts, v, verdict.decision);
    j.original = std::string(original);
    out.push_back(std::move(j));
  }
  return out;
}

std::string_view to_token(FailureJobStatus s) noexcept {
  switch (s) {
    case FailureJobStatus::Pending: return "pending";
    case FailureJobStatus::Sent: return "sent";
    case FailureJobStatus::Dropped: return "dropped";
    case FailureJobStatus::Failed: return "failed";
  }
  return "pending";
}

std::optional<FailureJobStatus> parse_failure_job_status(std::string_view s) noexcept {
  for (auto st : {FailureJobStatus::Pending, FailureJobStatus::Sent, FailureJobStatus::Dropped, FailureJobStatus::Failed})
    if (to_token(st) == s) return st;
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> feedback_field_list(const FeedbackReport& f) {
  std::vector<std::pair<std::string, std::string>> out;
  auto one = [&](const char* name, const std::string& v) {
    if (!v.empty()) out.emplace_back(name, v);
  };
  auto many = [&](const char* name, const std::vector<std::string>& vs) {
    for (const auto& v : vs) one(name, v);
  };
  one("Feedback-Type", f.feedback_type);
  one("User-Agent", f.user_agent);
  one("Version", f.version);
  one("Auth-Failure", f.auth_failure);
  one("Identity-Alignment", f.identity_alignment);
  many("Authentication-Results", f.authentication_results);
  one("Original-Envelope-Id", f.original_envelope_id);
  one("Original-Mail-From", f.original_mail_from);
  many("Original-Rcpt-To", f.original_rcpt_to);
  one("Arrival-Date", f.arrival_date);
  one("Source-IP", f.source_ip);
  one("Reporting-MTA", f.reporting_mta);
  many("Reported-Domain", f.reported_domain);
  many("Reported-URI", f.reported_uri);
  one("Delivery-Result", f.delivery_result);
  one("DKIM-Domain", f.dkim_domain);
  one("DKIM-Identity", f.dkim_identity);
  one("DKIM-Selector", f.dkim_selector);
  one("SPF-DNS", f.spf_dns);
  if (f.incidents > 1) one("Incidents", std::to_string(f.incidents));
  for (const auto& [k, v] : f.other) one(k.c_str(), v);
  return out;
}

std::optional<std::string> apply_feedback_field(FeedbackReport& f, std::string_view name, std::string value) {
  auto is = [&](std::string_view k) { return ascii_iequals(name, k); };
  if (is("Feedback-Type")) f.feedback_type = ascii_lowercase(value);
  else if (is("Version")) f.version = value;
  else if (is("User-Agent")) f.user_agent = value;
  else if (is("Auth-Failure")) f.auth_failure = ascii_lowercase(value);
  else if (is("Identity-Alignment")) f.identity_alignment = ascii_lowercase(value);
  else if (is("Authentication-Results")) f.authentication_results.push_back(value);
  else if (is("Original-Envelope-Id")) f.original_envelope_id = value;
  else if (is("Original-Mail-From")) f.original_mail_from = value;
  else if (is("Original-Rcpt-To")) f.original_rcpt_to.push_back(value);
  else if (is("Arrival-Date") || is("Received-Date")) f.arrival_date = value;
  // "IP (name)", as OpenDMARC writes it: the address.
  else if (is("Source-IP")) f.source_ip = value.substr(0, value.find_first_of(" ("));
  else if (is("Reporting-MTA")) f.reporting_mta = value;
  else if (is("Reported-Domain")) f.reported_domain.push_back(value);
  else if (is("Reported-URI")) f.reported_uri.push_back(value);
  else if (is("Delivery-Result")) f.delivery_result = ascii_lowercase(value);
  else if (is("DKIM-Domain")) f.dkim_domain = value;
  else if (is("DKIM-Identity")) f.dkim_identity = value;
  else if (is("DKIM-Selector")) f.dkim_selector = value;
  else if (is("SPF-DNS")) f.spf_dns = value;
  else if (is("Incidents")) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || p != value.data() + value.size() || n == 0)
      return "Incidents: not a positive number: '" + value.substr(0, 40) + "'";
    f.incidents = n;
  } else {
    f.other.emplace_back(std::string(name), std::move(value));
  }
  return std::nullopt;
}

void FailureRateLimit::roll(std::int64_t now) {
  std::int64_t hour = now >= 0 ? now / period_ : -1 - (-now - 1) / period_;
  if (hour == hour_) return;
  hour_ = hour;
  sent_total_ = 0;
  sent_.clear();
}

void FailureRateLimit::preload(std::string_view domain, std::int64_t now, std::uint64_t sent) {
  roll(now);
  if (domain.empty()) {
    sent_total_ += sent;
    return;
  }
  for (auto& [d, n] : sent_) {
    if (ascii_iequals(d, domain)) {
      n += sent;
      return;
    }
  }
  sent_.emplace_back(ascii_lowercase(domain), sent);
}

bool FailureRateLimit::admit(std::string_view domain, std::int64_t now) {
  roll(now);
  if (sent_total_ >= total_) return false;
  std::uint64_t* mine = nullptr;
  for (auto& [d, n] : sent_) {
    if (ascii_iequals(d, domain)) mine = &n;
  }
  if (mine && *mine >= per_domain_) return false;
  if (per_domain_ == 0) return false;
  if (!mine) {
    sent_.emplace_back(ascii_lowercase(domain), 0);
    mine = &sent_.back().second;
  }
  ++*mine;
  ++sent_total_;
  return true;
}

std::optional<std::string> spf_dns_domain(const FeedbackReport& f) {
  constexpr std::string_view kPrefix = "txt : ";
  std::string_view v = f.spf_dns;
  if (v.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  v.remove_prefix(kPrefix.size());
  if (v.empty() || v.find(':') != std::string_view::npos) return std::nullopt;
  return std::string(v);
}

std::string spf_dns_value(std::string_view domain, std::string_view record) {
  std::string quoted;
  for (char c : record) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  return "txt : " + std::string(domain) + " : \"" + quoted + "\"";
}

}  // namespace dmarc
