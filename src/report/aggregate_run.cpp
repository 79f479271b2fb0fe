// aggregate_run.cpp - one "dmarc-report aggregate" run (dmarc/report/aggregate_run.hpp)
#include "dmarc/report/aggregate_run.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "dmarc/core/domain.hpp"
#include "dmarc/report/aggregate_xml.hpp"
#include "dmarc/report/report_mail.hpp"

namespace dmarc {

namespace {

bool write_file(const std::string& path, const std::string& data, std::string* err) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f) f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (f) f.flush();
  if (!f) {
    *err = path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

// message_id - stable per (report, destination): a copy sent again after
// an interrupted run carries the same id.
std::string message_id(const std::string& rid, const std::string& address, const ReportPeriod& period,
                       const std::string& sender) {
  std::string local = rid.substr(0, rid.find('@'));
  std::string dest = report_id("to:" + ascii_lowercase(address), period);
  dest = dest.substr(dest.find('.') + 1);
  dest = dest.substr(0, dest.find('@'));
  std::string host = domain_of(sender);
  return local + "." + dest + "@" + (host.empty() ? "dmarc-milter" : host);
}

std::string org_of(Resolver& resolver, const std::string& name, DmarcMode mode, const PublicSuffixList* psl,
                   bool* temp) {
  DmarcMode m = (mode == DmarcMode::Rfc7489 && !psl) ? DmarcMode::Rfc9989 : mode;
  OrgDomainResult r = find_org_domain(resolver, name, m, psl);
  if (r.temp_error) *temp = true;
  return r.org_domain;
}

}  // namespace

int run_exit_code(bool store_error, int failed, int deferred) noexcept {
  if (store_error) return 74;
  if (failed > 0) return 1;
  if (deferred > 0) return 75;
  return 0;
}

int AggregateRunResult::exit_code() const noexcept { return run_exit_code(store_error, failed, deferred); }

std::string log_safe(std::string_view text, std::size_t max) {
  std::string out(text.substr(0, max));
  for (auto& ch : out) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) ch = '?';
  }
  if (text.size() > max) out += "...";
  return out;
}

RunLog safe_log(const RunLog& log) {
  return [log](RunLogLevel level, const std::string& text) { log(level, log_safe(text)); };
}

AuthorizationStatus destination_authorized(Resolver& resolver, std::string_view policy_domain, std::string_view host,
                                           DmarcMode mode, const PublicSuffixList* psl, std::string* why) {
  bool temp = false;
  std::string policy_org = org_of(resolver, std::string(policy_domain), mode, psl, &temp);
  std::string dest_org = org_of(resolver, std::string(host), mode, psl, &temp);
  if (temp || policy_org.empty() || dest_org.empty()) {
    if (why) *why = "temporary DNS failure finding organizational domains";
    return AuthorizationStatus::TempFail;
  }
  if (!needs_authorization(policy_org, dest_org)) return AuthorizationStatus::Authorized;
  return check_authorization(resolver, policy_domain, host, why);
}

AggregateRunResult run_aggregate(Store& store, Resolver& resolver, Mailer* mailer, const PublicSuffixList* psl,
                                 const AggregateRunOptions& o, const RunLog& log) {
  AggregateRunResult res;
  const RunLog say = safe_log(log);
  auto info = [&](const std::string& s) { say(RunLogLevel::Info, s); };
  auto warn = [&](const std::string& s) { say(RunLogLevel::Warning, s); };
  auto error = [&](const std::string& s) { say(RunLogLevel::Error, s); };
  const bool preview = o.out_dir.has_value();
  const std::int64_t first = o.period.first_day(), last = o.period.last_day();
  const std::string span = format_day(first) + (first == last ? "" : " to " + format_day(last));

  auto domains = store.policy_domains(first, last);
  if (!domains) {
    error(domains.error().message);
    res.store_error = true;
    return res;
  }
  std::vector<std::string> todo;
  for (const auto& d : domains.value()) {
    if (!o.domain || ascii_iequals(*o.domain, d)) todo.push_back(d);
  }
  info("aggregate reports for " + span + ": " + std::to_string(todo.size()) + " policy domain(s)" +
       (preview ? " (writing to " + *o.out_dir + ", sending nothing)" : ""));
  int index = 0;
  for (const std::string& domain : todo) {
    ++index;
    ++res.domains;
    const std::string where = "[" + std::to_string(index) + "/" + std::to_string(todo.size()) + "] " + domain;
    auto rows = store.records(domain, first, last);
    if (!rows) {
      error(where + ": " + rows.error().message);
      res.store_error = true;
      continue;
    }
    if (rows.value().empty()) continue;
    // The policy as it was last seen.
    const AggregateRecord* latest = &rows.value().front();
    std::uint64_t messages = 0;
    for (const auto& r : rows.value()) {
      if (r.last_seen > latest->last_seen) latest = &r;
      messages = r.count > UINT64_MAX - messages ? UINT64_MAX : messages + r.count;
    }
    PublishedPolicy policy = latest->policy;
    std::vector<std::string> skipped;
    std::vector<ReportDestination> dests = report_destinations(policy.rua, &skipped);
    for (const auto& s : skipped) warn(where + ": rua " + s + " skipped");
    if (dests.empty()) {
      info(where + ": " + std::to_string(messages) + " message(s), no usable rua: no report");
      continue;
    }
    AggregateReport report;
    report.meta.org_name = o.org_name;
    report.meta.email = o.contact.empty() ? o.sender : o.contact;
    report.meta.report_id = report_id(domain, o.period);
    report.meta.period = o.period;
    report.policy = policy;
    report.records = merge_records(std::move(rows.value()));
    auto xml = aggregate_xml(report, o.format);
    if (!xml) {
      error(where + ": cannot build the report: " + xml.error());
      ++res.failed;
      continue;
    }
    auto gz = gzip(xml.value());
    if (!gz) {
      error(where + ": " + gz.error());
      ++res.failed;
      continue;
    }
    const std::string attachment = report_file_name(o.org_name, domain, o.period, "xml.gz");
    auto make_mail = [&](const std::vector<std::string>& to, const std::string& mid) {
      ReportMail m;
      m.from = o.sender;
      m.from_name = o.org_name + " DMARC reports";
      m.to = to;
      m.subject = report_subject(domain, o.org_name, report.meta.report_id);
      m.message_id = mid;
      m.date = o.now;
      m.text = std::string("This is an aggregate DMARC report (") +
               (o.format == ReportFormat::Rfc9990 ? "RFC 9990" : "RFC 7489") + ") for " + domain + " from " + o.org_name + ",\n" +
               "covering " + span + " (UTC): " + std::to_string(messages) + " message(s) in " +
               std::to_string(report.records.size()) + " row(s).\nReport-ID: " + report.meta.report_id + "\n";
      m.attachment_name = attachment;
      m.attachment = gz.value();
      return build_report_mail(m);
    };

    if (preview) {
      std::vector<std::string> to;
      for (const auto& d : dests) {
        if (!in_address_list(o.no_reports, d.address)) to.push_back(d.address);
      }
      if (to.empty()) to.push_back(dests.front().address);
      auto mail = make_mail(to, message_id(report.meta.report_id, to.front(), o.period, o.sender));
      std::string base = *o.out_dir + "/" + report_file_name(o.org_name, domain, o.period, "");
      std::string err;
      if (!mail) {
        error(where + ": " + mail.error());
        ++res.failed;
      } else if (!write_file(base + ".xml.gz", gz.value(), &err) || !write_file(base + ".eml", mail.value(), &err)) {
        error(where + ": " + err);
        ++res.failed;
      } else {
        info(where + ": " + std::to_string(messages) + " message(s), " + std::to_string(report.records.size()) +
             " row(s): wrote " + base + ".xml.gz and .eml");
        ++res.sent;
      }
      continue;
    }

    auto states = store.report_states(domain, o.period);
    if (!states) {
      error(where + ": " + states.error().message);
      res.store_error = true;
      continue;
    }
    info(where + ": " + std::to_string(messages) + " message(s), " + std::to_string(report.records.size()) +
         " row(s), " + std::to_string(dests.size()) + " destination(s)");
    for (const ReportDestination& d : dests) {
      const std::string to = where + " to " + d.address;
      ReportState st;
      st.policy_domain = domain;
      st.period = o.period;
      st.destination = ascii_lowercase(d.address);
      st.report_id = report.meta.report_id;
      for (const auto& s : states.value()) {
        if (s.destination == st.destination) st = s;
      }
      if (st.status == ReportStatus::Sent || st.status == ReportStatus::Failed) {
        ++res.skipped;
        continue;
      }
      if (in_address_list(o.no_reports, d.address)) {
        info(to + ": in NoReportsList, not sent");
        ++res.skipped;
        continue;
      }
      auto save = [&](ReportStatus status, const std::string& why) {
        st.status = status;
        st.last_error = why;
        st.updated = o.now;
        if (auto e = store.put_report_state(st)) {
          error(to + ": " + e->message);
          res.store_error = true;
          return false;
        }
        return true;
      };
      // Every path below that tries counts an attempt.
      auto attempt_failed = [&](const std::string& why, bool temporary) {
        if (temporary && st.attempts < o.max_attempts) {
          warn(to + ": " + why + " (attempt " + std::to_string(st.attempts) + " of " +
               std::to_string(o.max_attempts) + "; the next run tries again)");
          save(ReportStatus::Pending, why);
          ++res.deferred;
        } else {
          error(to + ": given up: " + why);
          save(ReportStatus::Failed, why);
          ++res.failed;
        }
      };
      // External destinations must be authorised (RFC 7489 7.1).
      {
        std::string why;
        AuthorizationStatus a = destination_authorized(resolver, domain, d.host, o.mode, psl, &why);
        if (a == AuthorizationStatus::TempFail) {
          ++st.attempts;
          attempt_failed(why, true);
          continue;
        }
        if (a == AuthorizationStatus::Unauthorized) {
          warn(to + ": external destination not authorised (" + why + "): dropped");
          save(ReportStatus::Failed, "not authorised: " + why);
          ++res.failed;
          continue;
        }
      }
      auto mail = make_mail({d.address}, message_id(report.meta.report_id, d.address, o.period, o.sender));
      if (!mail) {
        ++st.attempts;
        attempt_failed(mail.error(), false);
        continue;
      }
      if (o.format == ReportFormat::Rfc7489 && d.max_size > 0 && mail.value().size() > d.max_size) {
        warn(to + ": the mail has " + std::to_string(mail.value().size()) + " octets, over the !size limit of " +
             std::to_string(d.max_size) + ": not sent");
        save(ReportStatus::Failed, "over !size " + std::to_string(d.max_size));
        ++res.failed;
        continue;
      }
      if (!mailer) {
        error(to + ": no mailer");
        ++res.failed;
        continue;
      }
      ++st.attempts;
      if (!save(ReportStatus::Sending, "")) continue;
      auto err = mailer->send(o.sender, {d.address}, mail.value());
      if (err) {
        attempt_failed(err->message, err->temporary);
        continue;
      }
      if (save(ReportStatus::Sent, "")) {
        info(to + ": sent (" + std::to_string(mail.value().size()) + " octets, Report-ID " + report.meta.report_id +
             ")");
        ++res.sent;
      }
    }
  }

  if (!preview) {
    std::int64_t before = utc_day(o.now) - o.retention_days;
    auto ex = store.expire(before);
    if (!ex) {
      error(ex.error().message);
      res.store_error = true;
    } else if (ex.value().rows || ex.value().states) {
      info("expired " + std::to_string(ex.value().rows) + " row(s) and " + std::to_string(ex.value().states) +
           " report state(s) before " + format_day(before));
    }
  }
  info("done: " + std::to_string(res.sent) + " sent, " + std::to_string(res.deferred) + " deferred, " +
       std::to_string(res.failed) + " failed, " + std::to_string(res.skipped) + " skipped");
  return res;
}

}  // namespace dmarc
