// failure_run.cpp - one "dmarc-report failures" run (dmarc/report/failure_run.hpp)
#include "dmarc/report/failure_run.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>

#include "dmarc/core/domain.hpp"
#include "dmarc/report/failure_mail.hpp"
#include "dmarc/report/redact.hpp"

namespace dmarc {

namespace {

std::string explanation(const FailureJob& j, const std::string& org_name) {
  const FeedbackReport& f = j.feedback;
  std::string t = "This is a DMARC failure report (RFC 7489 7.3, RFC 6591) from " + org_name +
                  " for a message claiming to be from " + log_safe(j.reported_domain, 256) + ".\n\n";
  // Envelope and header text, one line each (log_safe: no line breaks).
  t += "Source IP:           " + log_safe(f.source_ip, 64) + "\n";
  t += "MAIL FROM:           " + log_safe(f.original_mail_from, 512) + "\n";
  t += "Arrival:             " + f.arrival_date + "\n";
  t += "Identity-Alignment:  " + f.identity_alignment + " (the mechanisms that gave an aligned pass)\n";
  t += "What was done:       " + f.delivery_result + "\n";
  for (const auto& ar : f.authentication_results) t += "Authentication-Results: " + log_safe(ar) + "\n";
  if (!f.dkim_domain.empty())
    t += "Failed DKIM signature: d=" + log_safe(f.dkim_domain, 256) + " s=" + log_safe(f.dkim_selector, 256) + "\n";
  t += "\nThe message's header section is attached.\n";
  return t;
}

// ptr_line - the source's PTR name and whether it is forward-confirmed.
std::string ptr_line(Resolver& resolver, const std::string& ip) {
  if (ip.empty()) return "(no source address)";
  DnsAnswer p = resolver.ptr(ip);
  if (p.status != DnsStatus::Ok || p.records.empty())
    return p.status == DnsStatus::TempFail ? "(lookup failed)" : "(none)";
  const std::string& name = p.records.front();
  bool v6 = ip.find(':') != std::string::npos;
  DnsAnswer f = v6 ? resolver.aaaa(name) : resolver.a(name);
  bool confirmed = false;
  for (const auto& r : f.records) confirmed = confirmed || ascii_iequals(r, ip);
  return name + (confirmed ? " (forward-confirmed)" : " (not forward-confirmed)");
}

// with_ptr - TEXT with a "PTR:" line after its "Source IP:" line.
std::string with_ptr(const std::string& text, const std::string& ptr) {
  std::size_t at = text.find("Source IP:");
  if (at == std::string::npos) return "PTR:          " + ptr + "\n" + text;
  std::size_t eol = text.find('\n', at);
  if (eol == std::string::npos) return text + "\nPTR:          " + ptr + "\n";
  return text.substr(0, eol + 1) + "PTR:          " + ptr + "\n" + text.substr(eol + 1);
}

// maildir_deliver - MESSAGE into the Maildir DIR (tmp/, then new/).
std::optional<std::string> maildir_deliver(const std::string& dir, const std::string& message, std::int64_t id,
                                           std::int64_t now) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* sub : {"tmp", "new", "cur"}) {
    fs::create_directories(fs::path(dir) / sub, ec);
    if (ec) return dir + "/" + sub + ": " + ec.message();
  }
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) std::snprintf(host, sizeof host, "localhost");
  for (char* c = host; *c; ++c) {
    if (*c == '/' || *c == ':') *c = '_';
  }
  std::string name = std::to_string(now) + ".P" + std::to_string(getpid()) + "Q" + std::to_string(id) + "." + host;
  std::string tmp = dir + "/tmp/" + name;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << message;
    f.flush();
    if (!f) return tmp + ": " + std::strerror(errno);
  }
  fs::rename(tmp, dir + "/new/" + name, ec);
  if (ec) return dir + "/new/" + name + ": " + ec.message();
  return std::nullopt;
}

}  // namespace

FailureRunResult run_failures(Store& store, Resolver& resolver, Mailer* mailer, const PublicSuffixList* psl,
                              const FailureRunOptions& o, const RunLog& log) {
  FailureRunResult res;
  const RunLog say = safe_log(log);
  auto info = [&](const std::string& s) { say(RunLogLevel::Info, s); };
  auto warn = [&](const std::string& s) { say(RunLogLevel::Warning, s); };
  auto error = [&](const std::string& s) { say(RunLogLevel::Error, s); };
  const bool preview = o.out_dir.has_value();

  auto jobs = store.pending_failure_jobs(o.batch);
  if (!jobs) {
    error(jobs.error().message);
    res.store_error = true;
    return res;
  }
  info("failure reports: " + std::to_string(jobs.value().size()) + " pending" +
       (preview ? " (writing to " + *o.out_dir + ", sending nothing)" : ""));
  const std::int64_t hour_start = o.now - ((o.now % 3600) + 3600) % 3600;
  FailureRateLimit limit(o.rate_domain, o.rate_total);
  bool preloaded_total = false;
  std::map<std::string, bool> preloaded;
  std::map<std::string, int> dropped_per_domain;

  auto save = [&](FailureJob& j, FailureJobStatus status, const std::string& why) {
    if (preview) return;
    j.status = status;
    j.last_error = why;
    j.updated = o.now;
    if (auto e = store.update_failure_job(j)) {
      error(e->message);
      res.store_error = true;
    }
  };

  // mail_for - the mail of job J (KIND names it in its Message-ID, which
  // stays the same when a run sends it again).
  auto mail_for = [&](const FailureJob& j, const char* kind, const char* name, std::vector<std::string> to) {
    FailureMail m;
    m.from = o.sender;
    m.from_name = o.org_name + name;
    m.to = std::move(to);
    std::string mid = report_id(std::string(kind) + ":" + std::to_string(j.id) + ":" + ascii_lowercase(j.reported_domain),
                                ReportPeriod{j.created, j.created});
    m.message_id = mid.substr(0, mid.find('@')) + "@" + (domain_of(o.sender).empty() ? "dmarc-milter" : domain_of(o.sender));
    m.date = o.now;
    return m;
  };
  // build - the mail M of job J, or nullopt (J failed, logged).
  auto build = [&](FailureJob& j, const FailureMail& m, const std::string& where) -> std::optional<std::string> {
    auto built = build_failure_mail(m);
    if (built) return std::move(*built);
    error(where + ": " + built.error());
    save(j, FailureJobStatus::Failed, built.error());
    ++res.failed;
    return std::nullopt;
  };
  // write_preview - --out: the mail into PATH instead of sending it.
  auto write_preview = [&](const std::string& path, const std::string& mail, const std::string& where) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << mail;
    f.flush();
    if (f) {
      info(where + ": wrote " + path);
      ++res.sent;
    } else {
      error(path + ": " + std::strerror(errno));
      ++res.failed;
    }
  };
  // A failed attempt: pending again for the next run, or given up.
  auto retry_or_give_up = [&](FailureJob& j, const std::string& where, const std::string& why, bool temporary) {
    if (temporary && j.attempts < o.max_attempts) {
      warn(where + ": " + why + " (the next run tries again)");
      save(j, FailureJobStatus::Pending, why);
      ++res.deferred;
    } else {
      error(where + ": given up: " + why);
      save(j, FailureJobStatus::Failed, why);
      ++res.failed;
    }
  };
  const std::int64_t day_start = utc_day(o.now) * kSecondsPerDay;
  std::map<std::string, std::uint64_t> local_today;  // sent today per domain (store + this run)
  std::map<std::string, int> local_dropped;

  for (FailureJob& j : jobs.value()) {
    if (j.kind == FailureJobKind::Local) {
      const std::string dom = ascii_lowercase(j.reported_domain);
      const std::string where = "forensic report " + std::to_string(j.id) + " (" + dom + ", " +
                                j.feedback.source_ip + ")";
      if (!local_today.count(dom)) {
        auto n = preview ? Expected<std::uint64_t, StoreError>(std::uint64_t{0})
                         : store.failure_reports_sent(FailureJobKind::Local, dom, day_start);
        local_today[dom] = n ? n.value() : 0;
      }
      if (local_today[dom] >= o.forensic_max_per_day) {
        ++local_dropped[dom];
        save(j, FailureJobStatus::Dropped, "over ForensicMaxPerDay");
        ++res.dropped;
        continue;
      }
      FailureMail m = mail_for(j, "forensic", " DMARC forensic reports",
                               o.forensic_mail_to.empty() ? std::vector<std::string>{o.sender} : o.forensic_mail_to);
      m.subject = "DMARC forensic report: " + dom + " failed DMARC from " +
                  (j.feedback.source_ip.empty() ? std::string("a local submission") : j.feedback.source_ip);
      m.text = with_ptr(j.text, ptr_line(resolver, j.feedback.source_ip));
      m.feedback = j.feedback;
      m.original = j.original;
      auto built = build(j, m, where);
      if (!built) continue;
      if (preview) {
        write_preview(*o.out_dir + "/forensic-" + std::to_string(j.id) + ".eml", *built, where);
        continue;
      }
      ++j.attempts;
      std::string problem;
      bool temporary = true;
      if (!o.forensic_maildir.empty()) {
        if (auto e = maildir_deliver(o.forensic_maildir, built.value(), j.id, o.now)) problem = "ForensicMaildir " + *e;
      }
      if (problem.empty() && !o.forensic_mail_to.empty()) {
        if (!mailer) {
          problem = "no mailer";
        } else if (auto e = mailer->send(o.sender, o.forensic_mail_to, built.value())) {
          problem = e->message;
          temporary = e->temporary;
        }
      }
      if (problem.empty()) {
        ++local_today[dom];
        save(j, FailureJobStatus::Sent, "");
        info(where + ": kept" + (o.forensic_maildir.empty() ? "" : " in " + o.forensic_maildir) +
             (o.forensic_mail_to.empty() ? "" : ", mailed"));
        ++res.sent;
      } else {
        retry_or_give_up(j, where, problem, temporary);
      }
      continue;
    }
    const std::string where = "failure report " + std::to_string(j.id) + " (" + j.reported_domain + ", " +
                              j.feedback.source_ip + ")";
    // Destinations: mailto, not in NoReportsList, authorised.
    std::vector<std::string> skipped;
    std::vector<ReportDestination> dests = report_destinations(j.ruf, &skipped);
    for (const auto& s : skipped) warn(where + ": ruf " + s + " skipped");
    std::vector<ReportDestination> ok;
    bool temp = false;
    std::string temp_why;
    for (const auto& d : dests) {
      if (in_address_list(o.no_reports, d.address)) {
        info(where + ": " + d.address + " is in NoReportsList");
        continue;
      }
      if (preview) {
        ok.push_back(d);
        continue;
      }
      std::string why;
      AuthorizationStatus a = destination_authorized(resolver, j.policy_domain, d.host, o.mode, psl, &why);
      if (a == AuthorizationStatus::TempFail) {
        temp = true;
        temp_why = why;
      } else if (a == AuthorizationStatus::Unauthorized) {
        warn(where + ": " + d.address + ": external destination not authorised (" + why + "): left out");
      } else {
        ok.push_back(d);
      }
    }
    if (temp) {
      ++j.attempts;
      retry_or_give_up(j, where, temp_why, true);
      continue;
    }
    if (ok.empty()) {
      info(where + ": no destination left: not sent");
      save(j, FailureJobStatus::Failed, "no usable ruf destination");
      ++res.failed;
      continue;
    }
    // The hourly limits (RFC 9991), from what this hour has seen so far.
    const std::string dom = ascii_lowercase(j.reported_domain);
    if (!preview) {
      if (!preloaded_total) {
        auto n = store.failure_reports_sent(FailureJobKind::Ruf, "", hour_start);
        if (n) limit.preload("", o.now, n.value());
        preloaded_total = true;
      }
      if (!preloaded[dom]) {
        auto n = store.failure_reports_sent(FailureJobKind::Ruf, dom, hour_start);
        if (n) limit.preload(dom, o.now, n.value());
        preloaded[dom] = true;
      }
    }
    if (!limit.admit(dom, o.now)) {
      ++dropped_per_domain[dom];
      save(j, FailureJobStatus::Dropped, "over the hourly rate limit");
      ++res.dropped;
      continue;
    }
    // SPF-DNS: the record as DNS has it now, or no field (RFC 6591 3.2).
    if (auto spf_domain = spf_dns_domain(j.feedback)) {
      DnsAnswer a = resolver.txt(*spf_domain);
      std::string record;
      for (const auto& t : a.records) {
        if (t.size() >= 6 && ascii_iequals(t.substr(0, 6), "v=spf1")) record = t;
      }
      j.feedback.spf_dns = record.empty() ? std::string() : spf_dns_value(*spf_domain, record);
    }
    std::vector<std::string> addresses;
    for (const auto& d : ok) addresses.push_back(d.address);
    FailureMail m = mail_for(j, "failure", " DMARC failure reports", addresses);
    m.subject = "DMARC failure report for " + j.reported_domain + " from " + j.feedback.source_ip;
    m.text = explanation(j, o.org_name);
    if (!o.redact_key.empty()) {
      FailureJob redacted = j;
      redact_failure_job(redacted, o.redact_key);
      m.feedback = redacted.feedback;
      m.original = redacted.original;
    } else {
      m.feedback = j.feedback;
      m.original = j.original;
    }
    m.whole_message = j.whole_message;
    auto built = build(j, m, where);
    if (!built) continue;
    // !size: a destination whose limit the mail exceeds is left out.
    std::vector<std::string> to;
    for (const auto& d : ok) {
      if (d.max_size > 0 && built->size() > d.max_size) {
        warn(where + ": " + d.address + ": the mail has " + std::to_string(built->size()) +
             " octets, over its !size " + std::to_string(d.max_size));
        continue;
      }
      to.push_back(d.address);
    }
    if (to.empty()) {
      save(j, FailureJobStatus::Failed, "over every destination's !size");
      ++res.failed;
      continue;
    }
    if (preview) {
      write_preview(*o.out_dir + "/failure-" + std::to_string(j.id) + ".eml", *built, where);
      continue;
    }
    if (!mailer) {
      error(where + ": no mailer");
      ++res.failed;
      continue;
    }
    std::vector<std::string> envelope = to;
    envelope.insert(envelope.end(), o.bcc.begin(), o.bcc.end());
    ++j.attempts;
    auto err = mailer->send(o.sender, envelope, *built);
    if (!err) {
      save(j, FailureJobStatus::Sent, "");
      info(where + ": sent to " + std::to_string(to.size()) + " destination(s)");
      ++res.sent;
    } else {
      retry_or_give_up(j, where, err->message, err->temporary);
    }
  }
  for (const auto& [dom, n] : local_dropped) {
    warn(dom + ": " + std::to_string(n) + " forensic report(s) over ForensicMaxPerDay (" +
         std::to_string(o.forensic_max_per_day) + "): dropped");
  }
  for (const auto& [dom, n] : dropped_per_domain) {
    warn(dom + ": " + std::to_string(n) + " failure report(s) over the hourly limits (FailureReportRateDomain " +
         std::to_string(o.rate_domain) + ", FailureReportRateTotal " + std::to_string(o.rate_total) + "): dropped");
  }
  info("failure reports done: " + std::to_string(res.sent) + " sent, " + std::to_string(res.dropped) +
       " dropped by the rate limits, " + std::to_string(res.deferred) + " deferred, " + std::to_string(res.failed) +
       " failed");
  return res;
}

}  // namespace dmarc
