// session.cpp - per-connection and per-message state, and the end-of-message decision
#include "session.hpp"
#include "dmarc/core/domain.hpp"

#include <algorithm>

#include "dmarc/core/auth_results.hpp"
#include "dmarc/core/from_header.hpp"
#include "metrics.hpp"

namespace dmarc::milter {

namespace {

// Most From fields kept per message: beyond them the message is malformed
// anyway; each is kept up to one byte more than the parser reads, so it
// can say TooLong.
constexpr std::size_t kMaxFromFields = 16;

// Busy - adds the time of one callback to the message's busy time (the
// latency histogram counts the milter's own time, not the MTA's pauses).
struct Busy {
  std::chrono::steady_clock::duration& total;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  ~Busy() { total += std::chrono::steady_clock::now() - start; }
};

}  // namespace

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
  facts_ = MessageFacts{};
  spf_result_.reset();
  ar_count_ = 0;
  forged_ar_.clear();
  dkim_signature_fields_ = 0;
  dkim_.reset();
  dkim_failed_ = false;
  pending_headers_.clear();
  pending_bytes_ = 0;
  job_id_.clear();
  header_section_.clear();
  body_section_.clear();
  busy_ = {};
}

void Session::abort() { reset_message(); }

void Session::envfrom(std::string_view addr, std::string_view auth_authen, std::string_view queue_id) {
  reset_message();
  Busy busy{busy_};
  in_message_ = true;
  job_id_ = sanitize_log(queue_id, 32);
  const Config& cfg = engine_->config;
  keep_headers_ = cfg.failure_reports || cfg.keeps_forensics();
  keep_body_ = cfg.failure_reports && cfg.failure_report_whole_message;
  facts_.client_ip = ip_;
  facts_.client_name = hostname_;
  facts_.helo = helo_;
  facts_.mail_from = addr;
  facts_.authenticated = !auth_authen.empty();
  dns_budget_.reset(std::chrono::seconds(cfg.dns_message_timeout_s));
  checked_ = !exemption(ip_, facts_.authenticated, engine_->decide_options);
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
  DnsBudgetScope budget(dns_budget_);
  spf_result_ = spf_->check(ip_, helo_, facts_.mail_from);
}

void Session::rcpt(std::string_view addr) {
  if (in_message_ && facts_.rcpt_to.size() < kMaxRcpts) facts_.rcpt_to.emplace_back(addr);
}

void Session::ensure_dkim() {
  if (!dkim_ && !dkim_failed_) {
    dkim_ = engine_->dkim->begin(job_id_.empty() ? std::string_view("dmarc-milter") : std::string_view(job_id_));
    if (!dkim_) dkim_failed_ = true;
  }
}

void Session::header(std::string_view name, std::string_view value) {
  Busy busy{busy_};
  for (std::size_t i = 0; i < kCountedHeaders.size(); ++i) {
    if (ascii_iequals(name, kCountedHeaders[i])) ++facts_.header_counts[i];
  }
  if (ascii_iequals(name, "From")) {
    if (facts_.from_fields.size() < kMaxFromFields) facts_.from_fields.emplace_back(value.substr(0, kMaxFromHeaderLength + 1));
  } else if (ascii_iequals(name, "Authentication-Results")) {
    ++ar_count_;
    // RFC 8601 5: fields that claim our authserv-id are forged; delete them.
    auto id = authserv_id_of(value);
    if (id && engine_->is_our_authserv_id(*id)) forged_ar_.push_back(static_cast<int>(ar_count_));
  } else if (ascii_iequals(name, "DKIM-Signature")) {
    ++dkim_signature_fields_;
  } else if (ascii_iequals(name, "List-Id")) {
    facts_.list_id = true;
  }
  if (keep_headers_ && header_section_.size() + name.size() + value.size() + 2 <= kMaxKeptHeaderBytes) {
    header_section_.append(name).append(":");
    for (char c : value) {
      if (c != '\r') header_section_ += c;  // folded values come with CRLF or LF: LF here
    }
    header_section_ += '\n';
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
  Busy busy{busy_};
  if (checked_ && dkim_) {
    DnsBudgetScope budget(dns_budget_);  // the key lookups happen here
    dkim_->end_of_headers();
  }
  pending_headers_.clear();
}

void Session::body(std::string_view chunk) {
  Busy busy{busy_};
  if (keep_body_ && body_section_.size() < kMaxKeptBodyBytes)
    body_section_.append(chunk.substr(0, kMaxKeptBodyBytes - body_section_.size()));
  if (checked_ && dkim_ && dkim_signature_fields_ > 0) dkim_->body(chunk);
}

bool Session::wants_body() const { return (checked_ && dkim_signature_fields_ > 0) || keep_body_; }

Outcome Session::eom(std::string_view queue_id) {
  // Whatever happens below, the next message starts clean.
  struct Reset {
    Session& s;
    ~Reset() { s.reset_message(); }
  } reset{*this};
  const auto eom_start = std::chrono::steady_clock::now();
  Outcome o;
  std::vector<int> forged = forged_ar_;
  std::sort(forged.rbegin(), forged.rend());  // highest index first (OpenDKIM CVE-2022-48521)
  for (int idx : forged) o.deletions.push_back({"Authentication-Results", idx});
  facts_.queue_id = queue_id;
  facts_.removed_ar = o.deletions.size();

  DnsBudgetScope budget(dns_budget_);
  if (checked_) {
    if (dkim_) o.dkim = dkim_->finish();
    facts_.dkim.reserve(o.dkim.size());
    for (const auto& d : o.dkim) {
      DkimFacts f;
      f.result = d.result;
      f.domain = d.domain;
      f.selector = d.selector;
      f.b_prefix = d.b_prefix;
      f.reason = d.reason;
      f.key_bits = d.key_bits;
      f.body_length = d.body_length;
      facts_.dkim.push_back(std::move(f));
    }
    if (dkim_) facts_.dkim_omitted = dkim_->omitted();
    o.spf = spf_result_;
    if (spf_result_) {
      SpfFacts f;
      f.result = spf_result_->result;
      f.scope = spf_result_->scope;
      f.domain = spf_result_->domain;
      f.identity = spf_result_->identity;
      f.problem = spf_result_->problem;
      facts_.spf = std::move(f);
    }
  }
  static_cast<MessageVerdict&>(o) = decide(*engine_->resolver, facts_, engine_->decide_options);
  o.facts = std::move(facts_);
  o.header_section = std::move(header_section_);
  o.body_section = std::move(body_section_);
  busy_ += std::chrono::steady_clock::now() - eom_start;
  metrics().count_outcome(o, std::chrono::duration<double>(busy_).count());
  return o;
}

}  // namespace dmarc::milter
