// fuzz_store - the report store (src/adapters/store, SQLite) read back: rows
// as a hostile or corrupt database would hold them, and what we write.
//
// Input: consumed with libFuzzer's FuzzedDataProvider (strings from the
// front, a backslash and another byte ending each; numbers from the end).
// The first number picks the half:
//   hostile rows  arbitrary values written into agg_rows, report_state and
//                 failure_jobs directly with SQL (each column TEXT with any
//                 bytes, INTEGER, REAL or BLOB, as SQLite's typing lets a
//                 damaged or forged file hold them), then read through the
//                 Store: policy_domains, records, report_states,
//                 pending_failure_jobs, failure_reports_sent, expire;
//   round trip    an AggregateRecord, a FailureJob and a ReportState of
//                 fuzzed text written through the Store and read back.
// The database is one file under /dev/shm (or $TMPDIR), emptied per input.
//
// Invariants:
//   - no crash, no leak, no hang; every read is a value or a StoreError
//     with a message;
//   - values read from hostile rows are what was asked for: records() only
//     of the policy domain and days asked, policy_domains() only of rows in
//     the days asked, pending jobs only pending ones, at most LIMIT;
//   - what the Store writes reads back exactly (policy domains in lower
//     case, as the store keeps them, and reported domains too): the record (every key
//     field, via record_key, the published policy, day, count, last_seen),
//     the failure job (every field but the id the store gives), the report
//     state; encode_fields / decode_fields round-trip any list of lists.
#include <fuzzer/FuzzedDataProvider.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dmarc/adapters/sqlite_store.hpp"
#include "dmarc/core/domain.hpp"
#include "dmarc/core/failure_report.hpp"
#include "dmarc/core/report.hpp"
#include "dmarc/core/store.hpp"

using namespace dmarc;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_store: property violated: %s\n", what);
    std::abort();
  }
}

struct Db {
  std::string path;
  std::shared_ptr<Store> store;
  sqlite3* raw = nullptr;
};

// The database lives until exit, when the atexit handler closes and
// removes it (a static Db would be destroyed before the handler runs).
Db& db() {
  static Db* d = [] {
    Db* p = new Db;
    Db& x = *p;
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    x.path = std::string(dir) + "/fuzz_store." + std::to_string(getpid()) + ".db";
    std::remove(x.path.c_str());
    auto s = open_store("sqlite:" + x.path);
    if (!s || !s.value()) {
      std::fprintf(stderr, "fuzz_store: %s\n", s ? "no store" : s.error().c_str());
      std::abort();
    }
    x.store = s.value();
    if (sqlite3_open(x.path.c_str(), &x.raw) != SQLITE_OK) std::abort();
    sqlite3_busy_timeout(x.raw, 5000);
    std::atexit([] {
      Db& e = db();
      e.store.reset();
      sqlite3_close(e.raw);
      for (const char* ext : {"", "-wal", "-shm"}) std::remove((e.path + ext).c_str());
      delete &e;
    });
    return p;
  }();
  return *d;
}

void exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db().raw, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "fuzz_store: %s: %s\n", sql, err ? err : "?");
    std::abort();
  }
}

// bind_any - column I of S: TEXT of any bytes, INTEGER, REAL or BLOB.
void bind_any(FuzzedDataProvider& in, sqlite3_stmt* s, int i) {
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0: {
      std::string t = in.ConsumeRandomLengthString(300);
      sqlite3_bind_text(s, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
      break;
    }
    case 1:
      sqlite3_bind_int64(s, i, in.ConsumeIntegral<std::int64_t>());
      break;
    case 2:
      sqlite3_bind_double(s, i, in.ConsumeFloatingPoint<double>());
      break;
    case 3: {
      std::string t = in.ConsumeRandomLengthString(300);
      sqlite3_bind_blob(s, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
      break;
    }
    default:  // a small integer, or a day near the ones read
      sqlite3_bind_int64(s, i, in.ConsumeIntegralInRange<std::int64_t>(-2, 20010));
  }
}

void insert(FuzzedDataProvider& in, const char* sql, int columns) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db().raw, sql, -1, &s, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "fuzz_store: %s: %s\n", sql, sqlite3_errmsg(db().raw));
    std::abort();
  }
  for (int i = 1; i <= columns; ++i) bind_any(in, s, i);
  sqlite3_step(s);  // a constraint (UNIQUE, NOT NULL) may refuse it: fine
  sqlite3_finalize(s);
}

void hostile(FuzzedDataProvider& in) {
  int rows = in.ConsumeIntegralInRange(0, 4);
  for (int r = 0; r < rows; ++r)
    insert(in,
           "INSERT INTO agg_rows (policy_domain, day, row_key, policy, rua, source_ip, header_from, envelope_from,"
           " envelope_to, result, requested, disposition, dkim_alignment, spf_alignment, action, overrides, dkim, spf,"
           " count, last_seen, list_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
           21);
  int states = in.ConsumeIntegralInRange(0, 2);
  for (int r = 0; r < states; ++r)
    insert(in,
           "INSERT INTO report_state (policy_domain, begin, end_, destination, status, attempts, last_error,"
           " report_id, updated) VALUES (?,?,?,?,?,?,?,?,?)",
           9);
  int jobs = in.ConsumeIntegralInRange(0, 2);
  for (int r = 0; r < jobs; ++r)
    insert(in,
           "INSERT INTO failure_jobs (created, reported_domain, policy_domain, ruf, feedback, original, whole_message,"
           " status, attempts, last_error, updated, kind, text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
           13);

  Store& s = *db().store;
  const std::int64_t first = in.ConsumeIntegralInRange<std::int64_t>(-1, 20005);
  const std::int64_t last = first + in.ConsumeIntegralInRange<std::int64_t>(0, 10);
  auto doms = s.policy_domains(first, last);
  if (!doms) {
    check(!doms.error().message.empty(), "a StoreError without a message");
  } else {
    for (const auto& d : *doms) {
      auto recs = s.records(d, first, last);
      if (!recs) {
        check(!recs.error().message.empty(), "a StoreError without a message");
        continue;
      }
      for (const auto& r : *recs) {
        check(r.policy.domain == ascii_lowercase(d), "records() gave a row of another policy domain");
        check(r.day >= first && r.day <= last, "records() gave a row outside the days asked");
      }
      auto st = s.report_states(d, ReportPeriod{first * 86400, last * 86400 + 86399});
      if (!st) check(!st.error().message.empty(), "a StoreError without a message");
      else
        for (const auto& x : *st)
          check(x.policy_domain == ascii_lowercase(d), "report_states() gave another domain's state");
    }
  }
  std::string asked = in.ConsumeRandomLengthString(100);
  auto recs = s.records(asked, first, last);
  if (recs)
    for (const auto& r : *recs)
      check(r.policy.domain == ascii_lowercase(asked), "records() gave a row of another policy domain");
  std::size_t limit = in.ConsumeIntegralInRange<std::size_t>(0, 5);
  auto pend = s.pending_failure_jobs(limit);
  if (!pend) {
    check(!pend.error().message.empty(), "a StoreError without a message");
  } else {
    check(pend->size() <= limit, "more pending jobs than the limit");
    for (const auto& j : *pend) check(j.status == FailureJobStatus::Pending, "a pending job that is not pending");
  }
  auto sent = s.failure_reports_sent(in.ConsumeBool() ? FailureJobKind::Ruf : FailureJobKind::Local, asked,
                                     in.ConsumeIntegral<std::int64_t>());
  if (!sent) check(!sent.error().message.empty(), "a StoreError without a message");
  auto ex = s.expire(in.ConsumeIntegralInRange<std::int64_t>(-1, 20010));
  if (!ex) check(!ex.error().message.empty(), "a StoreError without a message");
}

void round_trip(FuzzedDataProvider& in) {
  Store& s = *db().store;
  AggregateRecord a;
  a.day = in.ConsumeIntegralInRange<std::int64_t>(0, 100000);
  a.policy.domain = in.ConsumeRandomLengthString(300);
  a.policy.p = static_cast<Policy>(in.ConsumeIntegralInRange(0, 2));
  if (in.ConsumeBool()) a.policy.sp = static_cast<Policy>(in.ConsumeIntegralInRange(0, 2));
  if (in.ConsumeBool()) a.policy.np = static_cast<Policy>(in.ConsumeIntegralInRange(0, 2));
  a.policy.adkim = in.ConsumeBool() ? AlignmentMode::Strict : AlignmentMode::Relaxed;
  a.policy.aspf = in.ConsumeBool() ? AlignmentMode::Strict : AlignmentMode::Relaxed;
  a.policy.pct = in.ConsumeIntegralInRange(0, 100);
  a.policy.fo = in.ConsumeRandomLengthString(20);
  a.policy.t = in.ConsumeBool();
  a.policy.psd = static_cast<PsdFlag>(in.ConsumeIntegralInRange(0, 2));
  a.policy.discovery = in.ConsumeBool() ? DiscoveryMethod::Psl : DiscoveryMethod::TreeWalk;
  int ruas = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < ruas; ++i) a.policy.rua.push_back(in.ConsumeRandomLengthString(200));
  a.source_ip = in.ConsumeRandomLengthString(64);
  a.header_from = in.ConsumeRandomLengthString(300);
  a.envelope_from = in.ConsumeRandomLengthString(300);
  a.envelope_to = in.ConsumeRandomLengthString(300);
  a.result = static_cast<DmarcResult>(in.ConsumeIntegralInRange(0, 4));
  a.requested = static_cast<Disposition>(in.ConsumeIntegralInRange(0, 2));
  a.disposition = static_cast<Disposition>(in.ConsumeIntegralInRange(0, 2));
  a.dkim_alignment = static_cast<Alignment>(in.ConsumeIntegralInRange(0, 3));
  a.spf_alignment = static_cast<Alignment>(in.ConsumeIntegralInRange(0, 3));
  int ovs = in.ConsumeIntegralInRange(0, 2);
  for (int i = 0; i < ovs; ++i)
    a.overrides.push_back({static_cast<OverrideReason>(in.ConsumeIntegralInRange(0, 6)), in.ConsumeRandomLengthString(200)});
  int dks = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < dks; ++i)
    a.dkim.push_back({in.ConsumeRandomLengthString(300), in.ConsumeRandomLengthString(100),
                      static_cast<AuthResult>(in.ConsumeIntegralInRange(0, 7))});
  if (in.ConsumeBool())
    a.spf = SpfAuthResult{in.ConsumeRandomLengthString(300), in.ConsumeBool() ? SpfScope::Helo : SpfScope::MailFrom,
                          static_cast<AuthResult>(in.ConsumeIntegralInRange(0, 7))};
  a.action = static_cast<Action>(in.ConsumeIntegralInRange(0, 3));
  a.list_id = in.ConsumeBool();
  a.count = in.ConsumeIntegralInRange<std::uint64_t>(1, INT64_MAX);
  a.last_seen = in.ConsumeIntegralInRange<std::int64_t>(0, INT64_MAX);

  auto err = s.add({a});
  if (err) {
    std::fprintf(stderr, "fuzz_store: add: %s\n", err->message.c_str());
    check(false, "the store refused a record");
  }
  auto back = s.records(a.policy.domain, a.day, a.day);
  check(back.has_value(), "records() failed on what add() wrote");
  check(back->size() == 1, "not the one record written");
  const AggregateRecord& b = back->front();
  check(record_key(b) == record_key(a), "a key field does not read back");
  // Policy domains are kept in lower case (domain names compare so).
  PublishedPolicy lowered = a.policy;
  lowered.domain = ascii_lowercase(a.policy.domain);
  check(b.policy == lowered, "the published policy does not read back");
  check(b.day == a.day && b.count == a.count && b.last_seen == a.last_seen, "day, count or last_seen do not read back");
  auto doms = s.policy_domains(a.day, a.day);
  check(doms && doms->size() == 1 && doms->front() == lowered.domain, "policy_domains() does not give the domain");

  FailureJob j;
  j.created = in.ConsumeIntegralInRange<std::int64_t>(0, INT64_MAX);
  j.reported_domain = in.ConsumeRandomLengthString(300);
  j.policy_domain = in.ConsumeRandomLengthString(300);
  int rufs = in.ConsumeIntegralInRange(0, 2);
  for (int i = 0; i < rufs; ++i) j.ruf.push_back(in.ConsumeRandomLengthString(200));
  FeedbackReport& f = j.feedback;
  f.user_agent = in.ConsumeRandomLengthString(100);
  // Tokens and the address are ours (feedback_for), not the sender's; the
  // reader keeps them in lower case and the address without a comment.
  static const char* const kAlign[] = {"none", "dkim", "spf", "dkim, spf"};
  static const char* const kIps[] = {"192.0.2.7", "2001:db8::25", ""};
  f.auth_failure = "dmarc";
  f.identity_alignment = kAlign[in.ConsumeIntegralInRange(0, 3)];
  int ars = in.ConsumeIntegralInRange(0, 2);
  for (int i = 0; i < ars; ++i) f.authentication_results.push_back(in.ConsumeRandomLengthString(500));
  f.original_envelope_id = in.ConsumeRandomLengthString(40);
  f.original_mail_from = in.ConsumeRandomLengthString(300);
  int rcpts = in.ConsumeIntegralInRange(0, 2);
  for (int i = 0; i < rcpts; ++i) f.original_rcpt_to.push_back(in.ConsumeRandomLengthString(300));
  f.arrival_date = in.ConsumeRandomLengthString(40);
  f.source_ip = kIps[in.ConsumeIntegralInRange(0, 2)];
  f.reporting_mta = in.ConsumeRandomLengthString(100);
  f.reported_domain.push_back(in.ConsumeRandomLengthString(300));
  static const char* const kDelivery[] = {"delivered", "spam", "policy", "reject", "other"};
  f.delivery_result = kDelivery[in.ConsumeIntegralInRange(0, 4)];
  f.dkim_domain = in.ConsumeRandomLengthString(300);
  f.dkim_identity = in.ConsumeRandomLengthString(300);
  f.dkim_selector = in.ConsumeRandomLengthString(100);
  f.spf_dns = in.ConsumeRandomLengthString(600);
  f.incidents = in.ConsumeIntegralInRange<std::uint64_t>(1, 1000000);
  j.original = in.ConsumeRandomLengthString(4000);
  j.whole_message = in.ConsumeBool();
  j.kind = in.ConsumeBool() ? FailureJobKind::Local : FailureJobKind::Ruf;
  j.text = in.ConsumeRandomLengthString(1000);
  j.updated = j.created;
  check(!s.add_failure_jobs({j}), "the store refused a failure job");
  auto pend = s.pending_failure_jobs(10);
  check(pend && pend->size() == 1, "not the one pending job written");
  const FailureJob& k = pend->front();
  if (std::getenv("FUZZ_STORE_VERBOSE"))
    std::fprintf(stderr, "job: created %d rd %d pd %d ruf %d orig %d(%zu/%zu) whole %d kind %d text %d status %d att %d\n",
                 k.created == j.created, k.reported_domain == ascii_lowercase(j.reported_domain),
                 k.policy_domain == ascii_lowercase(j.policy_domain), k.ruf == j.ruf, k.original == j.original,
                 k.original.size(), j.original.size(), k.whole_message == j.whole_message, k.kind == j.kind,
                 k.text == j.text, static_cast<int>(k.status), k.attempts);
  check(k.created == j.created && k.reported_domain == ascii_lowercase(j.reported_domain) && k.policy_domain == ascii_lowercase(j.policy_domain) &&
            k.ruf == j.ruf && k.original == j.original && k.whole_message == j.whole_message && k.kind == j.kind &&
            k.text == j.text && k.status == FailureJobStatus::Pending && k.attempts == 0,
        "a failure job's fields do not read back");
  if (feedback_field_list(k.feedback) != feedback_field_list(j.feedback)) {
    auto w = feedback_field_list(j.feedback), r = feedback_field_list(k.feedback);
    for (std::size_t i = 0; i < std::max(w.size(), r.size()); ++i)
      std::fprintf(stderr, "fuzz_store: wrote %s [%s] read %s [%s]\n", i < w.size() ? w[i].first.c_str() : "-",
                   i < w.size() ? w[i].second.c_str() : "", i < r.size() ? r[i].first.c_str() : "-",
                   i < r.size() ? r[i].second.c_str() : "");
  }
  check(feedback_field_list(k.feedback) == feedback_field_list(j.feedback) && k.feedback.other == j.feedback.other,
        "a failure job's feedback fields do not read back");

  ReportState st;
  st.policy_domain = a.policy.domain;
  st.period = ReportPeriod{a.day * 86400, a.day * 86400 + 86399};
  st.destination = in.ConsumeRandomLengthString(200);
  st.status = static_cast<ReportStatus>(in.ConsumeIntegralInRange(0, 3));
  st.attempts = in.ConsumeIntegralInRange(0, 1000);
  st.last_error = in.ConsumeRandomLengthString(500);
  st.report_id = in.ConsumeRandomLengthString(100);
  st.updated = in.ConsumeIntegralInRange<std::int64_t>(0, INT64_MAX);
  check(!s.put_report_state(st), "the store refused a report state");
  auto states = s.report_states(st.policy_domain, st.period);
  check(states && states->size() == 1, "not the one report state written");
  const ReportState& t = states->front();
  check(t.destination == st.destination && t.status == st.status && t.attempts == st.attempts &&
            t.last_error == st.last_error && t.report_id == st.report_id && t.updated == st.updated &&
            t.period == st.period,
        "a report state does not read back");

  // The list codec the store's list columns use.
  std::vector<std::vector<std::string>> lists;
  int n = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < n; ++i) {
    lists.emplace_back();
    int m = in.ConsumeIntegralInRange(0, 3);
    for (int x = 0; x < m; ++x) lists.back().push_back(in.ConsumeRandomLengthString(50));
  }
  auto decoded = decode_fields(encode_fields(lists));
  if (decoded != lists) {
    std::fprintf(stderr, "fuzz_store: %zu entries:", lists.size());
    for (const auto& e : lists) std::fprintf(stderr, " %zu", e.size());
    std::fprintf(stderr, " -> %zu entries:", decoded.size());
    for (const auto& e : decoded) std::fprintf(stderr, " %zu", e.size());
    std::fprintf(stderr, "\n");
  }
  check(decoded == lists, "encode_fields / decode_fields do not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 32 * 1024) return -1;
  db();
  exec("DELETE FROM agg_rows; DELETE FROM report_state; DELETE FROM failure_jobs;");
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool())
    hostile(in);
  else
    round_trip(in);
  return 0;
}
