// session.cpp - per-connection and per-message state, and the end-of-message decision
#include "session.hpp"
#include "dmarc/core/domain.hpp"

#include <algorithm>
#include <random>

#include "dmarc/core/auth_results.hpp"
#include "dmarc/core/from_header.hpp"

namespace dmarc::milter {

namespace {

// The header fields RFC 5322 3.6 counts (RequiredHeaders).
constexpr std::string_view kCounted[8] = {"From", "Date", "To", "Cc", "Subject", "Sender", "Reply-To", "Message-ID"};

// Most From fields and bytes kept per message: beyond them the message is
// malformed anyway (parse_from_header rejects longer fields).
constexpr std::size_t kMaxFromFields = 16;

int random_percent() {
  thread_local std::mt19937 gen{std::random_device{}()};
  return static_cast<int>(std::uniform_int_distribution<int>(0, 99)(gen));
}

std::string domain_of(std::string_view addr) {
  std::size_t at = addr.rfind('@');
  return std::string(at == std::string_view::npos ? addr : addr.substr(at + 1));
}
}  // namespace

std::string sanitize_log(std::string_view text, std::size_t max) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c > 0x20 && c < 0x7f && c != '=') ? static_cast<char>(c) : '?';
  }
  return out.empty() ? "-" : out;
}

Session::Session(std::shared_ptr<const Engine> engine) : engine_(std::move(engine)) {}
Session::~Session() = default;

void Session::set_engine(std::shared_ptr<const Engine> engine) {
  if (!in_message_) engine_ = std::move(engine);
}

void Session::connect(std::string_view hostname, std::string_view ip) {
  hostname_ = hostname;
  ip_ = ip;
}

void Session::helo(std::string_view name) { helo_ = name; }

void Session::reset_message() {
  in_message_ = false;
  checked_ = true;
  skip_reason_.clear();
  mail_from_.clear();
  spf_result_.reset();
  from_fields_.clear();
  ar_count_ = 0;
  forged_ar_.clear();
  dkim_signature_fields_ = 0;
  dkim_.reset();
  dkim_failed_ = false;
  pending_headers_.clear();
  pending_bytes_ = 0;
  job_id_.clear();
  std::fill(std::begin(counts_), std::end(counts_), 0);
  header_bytes_ = 0;
}

void Session::abort() { reset_message(); }

void Session::envfrom(std::string_view addr, std::string_view auth_authen, std::string_view queue_id) {
  reset_message();
  in_message_ = true;
  job_id_ = sanitize_log(queue_id, 32);
  mail_from_ = addr;
  const Config& cfg = engine_->config;
  if (ip_.empty()) {
    checked_ = false;
    skip_reason_ = "local_client";
  } else if (cfg.ignore_hosts.contains(ip_)) {
    checked_ = false;
    skip_reason_ = "ignored_host";
  } else if (!auth_authen.empty() && cfg.ignore_authenticated_clients) {
    checked_ = false;
    skip_reason_ = "authenticated";
  }
  if (!checked_) return;
  // RFC 7208 2.4: check MAIL FROM; for the null reverse-path, the HELO
  // identity (the adapter chooses and says which in `scope`).
  if (!spf_ || spf_engine_ != engine_) {
    auto v = SpfVerifier::create(*engine_->resolver, engine_->spf_options);
    if (!v) {
      SpfCheckResult r;
      r.result = AuthResult::TempError;
      r.problem = "SPF unavailable: " + v.error();
      spf_result_ = r;
      return;
    }
    spf_ = std::move(v.value());
    spf_engine_ = engine_;
  }
  spf_result_ = spf_->check(ip_, helo_, mail_from_);
}

void Session::ensure_dkim() {
  if (!dkim_ && !dkim_failed_) {
    dkim_ = engine_->dkim->begin(job_id_.empty() ? std::string_view("dmarc-milter") : std::string_view(job_id_));
    if (!dkim_) dkim_failed_ = true;
  }
}

void Session::header(std::string_view name, std::string_view value) {
  header_bytes_ += name.size() + value.size();
  for (std::size_t i = 0; i < 8; ++i) {
    if (ascii_iequals(name, kCounted[i])) ++counts_[i];
  }
  if (ascii_iequals(name, "From")) {
    if (from_fields_.size() < kMaxFromFields) {
      // Keep one byte more than the parser accepts, so it can say TooLong.
      from_fields_.emplace_back(value.substr(0, kMaxFromHeaderLength + 1));
    } else {
      from_fields_.emplace_back();  // counted; too many to matter
    }
  } else if (ascii_iequals(name, "Authentication-Results")) {
    ++ar_count_;
    // RFC 8601 5: fields that claim our authserv-id are forged; delete them.
    auto id = authserv_id_of(value);
    if (id && engine_->is_our_authserv_id(*id)) forged_ar_.push_back(static_cast<int>(ar_count_));
  } else if (ascii_iequals(name, "DKIM-Signature")) {
    ++dkim_signature_fields_;
  }
  if (!checked_) return;
  // DKIM work starts with the first DKIM-Signature field: the fields
  // before it wait here (bounded), and unsigned mail costs libopendkim
  // nothing at all.
  if (!dkim_ && dkim_signature_fields_ == 0 && pending_bytes_ < kMaxPendingHeaderBytes) {
    pending_bytes_ += name.size() + value.size();
    pending_headers_.emplace_back(name, value);
    return;
  }
  ensure_dkim();
  if (!dkim_) return;
  for (const auto& [n, v] : pending_headers_) dkim_->header(n, v);
  pending_headers_.clear();
  dkim_->header(name, value);
}

void Session::eoh() {
  if (checked_ && dkim_) dkim_->end_of_headers();
  pending_headers_.clear();
}

void Session::body(std::string_view chunk) {
  if (checked_ && dkim_ && dkim_signature_fields_ > 0) dkim_->body(chunk);
}

bool Session::wants_body() const { return checked_ && dkim_signature_fields_ > 0; }

Outcome Session::eom(std::string_view queue_id) {
  Outcome o;
  const Config& cfg = engine_->config;
  const std::string qid = sanitize_log(queue_id, 32);
  std::vector<int> forged = forged_ar_;
  std::sort(forged.rbegin(), forged.rend());  // highest index first (OpenDKIM CVE-2022-48521)
  for (int idx : forged) o.deletions.push_back({"Authentication-Results", idx});
  o.checked = checked_;
  o.skip_reason = skip_reason_;
  if (!checked_) {
    o.log_line = "qid=" + qid + " ip=" + sanitize_log(ip_, 64) + " skipped=" + skip_reason_ +
                 " removed_ar=" + std::to_string(o.deletions.size());
    reset_message();
    return o;
  }

  // DKIM results, every signature.
  std::vector<DkimInput> dkim_inputs;
  if (dkim_) o.dkim = dkim_->finish();
  for (const auto& s : o.dkim) dkim_inputs.push_back(s.input());
  o.spf = spf_result_;

  // The author domains (RFC 9989 4.4: RFC5322.From), or why there are none.
  std::optional<FromProblem> problem;
  std::vector<std::string> domains;
  bool counts_ok = counts_[0] == 1 && counts_[1] == 1;
  for (std::size_t i = 2; i < 8; ++i) counts_ok = counts_ok && counts_[i] <= 1;
  if (cfg.enforcement.required_headers && !counts_ok) {
    problem = FromProblem::HeaderCounts;
  } else if (from_fields_.empty()) {
    problem = FromProblem::Missing;
  } else {
    for (const auto& f : from_fields_) {
      auto parsed = parse_from_header(f);
      if (!parsed) {
        problem = FromProblem::Unparseable;
        break;
      }
      for (auto& d : parsed->distinct_domains()) {
        if (std::find(domains.begin(), domains.end(), d) == domains.end()) domains.push_back(std::move(d));
      }
    }
    if (!problem && domains.size() > 1 && cfg.enforcement.reject_multi_value_from) problem = FromProblem::Several;
    if (!problem && domains.size() > cfg.enforcement.max_from_domains) problem = FromProblem::TooManyDomains;
  }

  AuthResultsFields ar;
  ar.authserv_id = engine_->authserv_id;
  if (spf_result_) {
    ArSpf s;
    s.result = spf_result_->result;
    s.scope = spf_result_->scope;
    s.identity = spf_result_->scope == SpfScope::Helo ? spf_result_->domain : domain_of(spf_result_->identity);
    if (s.identity.empty()) s.identity = spf_result_->domain;
    s.comment = spf_result_->problem;
    ar.spf = s;
  }
  for (const auto& d : o.dkim) {
    ArDkim a;
    a.result = d.result;
    a.domain = d.domain;
    a.selector = d.selector;
    a.b_prefix = d.b_prefix;
    std::string c;
    if (d.key_bits) c = std::to_string(d.key_bits) + "-bit key";
    if (d.body_length) c += std::string(c.empty() ? "" : "; ") + "body length limited";
    if (d.result != AuthResult::Pass && !d.reason.empty()) c += std::string(c.empty() ? "" : "; ") + d.reason;
    a.comment = c;
    ar.dkim.push_back(std::move(a));
  }

  if (problem) {
    o.decision = decide_bad_from(*problem, cfg.enforcement);
    ArDmarc m;
    m.result = DmarcResult::PermError;
    m.comment = std::string(to_token(*problem));
    if (!domains.empty()) m.header_from = domains.front();
    ar.dmarc.push_back(std::move(m));
  } else {
    EvaluationOptions eo;
    eo.mode = cfg.mode;
    eo.psl = engine_->psl ? &*engine_->psl : nullptr;
    eo.random_percent = random_percent;
    MessageAuth auth;
    if (spf_result_) auth.spf = spf_result_->input();
    auth.dkim = dkim_inputs;
    bool forwarder_checked = false;
    for (const auto& d : domains) {
      auth.author_domain = d;
      Verdict v = evaluate_dmarc(*engine_->resolver, auth, eo);
      // Known forwarders (RFC 9989 5.3 leaves the final decision to the
      // receiver; RFC 9990 names the override trusted_forwarder).
      if (v.disposition != Disposition::None && !cfg.forwarders.empty()) {
        if (!forwarder_checked) {
          o.forwarder = cfg.forwarders.match(*engine_->resolver, ip_, dkim_inputs);
          forwarder_checked = true;
        }
        if (o.forwarder) apply_override(v, OverrideReason::TrustedForwarder);
      }
      o.verdicts.push_back(std::move(v));
    }
    o.decision = decide_message(o.verdicts, cfg.enforcement);
    if (o.forwarder && o.decision.reason.empty()) o.decision.reason = "trusted_forwarder";
    for (const auto& v : o.verdicts) {
      ArDmarc m;
      m.result = v.result;
      m.header_from = v.author_domain;
      if (v.record) {
        m.policy = std::string(to_token(v.requested));
        m.comment = "p=" + std::string(to_token(v.record->p)) + " sp=" + std::string(to_token(v.record->subdomain_policy())) +
                    " dis=" + std::string(to_token(v.disposition));
        for (auto r : v.overrides) m.comment += " override=" + std::string(to_token(r));
      }
      ar.dmarc.push_back(std::move(m));
    }
  }
  o.ar_value = format_auth_results(ar);
  if (o.decision.mark_header) {
    std::string dom = o.decision.decisive >= 0 ? o.verdicts[static_cast<std::size_t>(o.decision.decisive)].author_domain : "";
    o.quarantine_header = std::make_pair(cfg.quarantine_header, "yes (DMARC policy of " + sanitize_log(dom, 253) + ")");
  }

  // One log line per message (README "Logging").
  std::string from, dmarc, policy, disposition;
  for (std::size_t i = 0; i < o.verdicts.size(); ++i) {
    const Verdict& v = o.verdicts[i];
    const char* sep = i ? "," : "";
    from += sep + sanitize_log(v.author_domain, 253);
    dmarc += sep + std::string(to_token(v.result));
    policy += sep + std::string(v.record ? to_token(v.requested) : "-");
    disposition += sep + std::string(to_token(v.disposition));
  }
  if (o.verdicts.empty()) {
    from = domains.empty() ? "-" : sanitize_log(domains.front(), 253);
    dmarc = "permerror";
    policy = "-";
    disposition = "-";
  }
  std::string dkim_log;
  for (const auto& d : o.dkim) {
    dkim_log += (dkim_log.empty() ? "" : ",") + std::string(to_token(d.result)) + ":" + sanitize_log(d.domain, 253);
  }
  std::string spf_log = "-";
  if (spf_result_) {
    spf_log = std::string(to_token(spf_result_->result)) + ":" +
              (spf_result_->scope == SpfScope::Helo ? "helo:" : "") + sanitize_log(spf_result_->domain, 253);
  }
  o.log_line = "qid=" + qid + " ip=" + sanitize_log(ip_, 64) + " from=" + from + " spf=" + spf_log +
               " dkim=" + (dkim_log.empty() ? "none" : dkim_log) + " dmarc=" + dmarc + " policy=" + policy +
               " disposition=" + disposition + " action=" + std::string(to_token(o.decision.action)) +
               " reason=" + (o.decision.reason.empty() ? "-" : o.decision.reason);
  if (o.forwarder) o.log_line += " forwarder=" + sanitize_log(o.forwarder->entry, 253);
  if (!o.deletions.empty()) o.log_line += " removed_ar=" + std::to_string(o.deletions.size());
  reset_message();
  return o;
}

}  // namespace dmarc::milter
