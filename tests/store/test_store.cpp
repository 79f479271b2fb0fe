// test_store.cpp - the SQLite store on real files: schema and migrations,
// the upsert that aggregates, hostile text, saturation, WAL, corrupt and
// foreign files, a full file system (tmpfs), expiry.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>
#include <string>
#include <vector>

#include "dmarc/adapters/sqlite_store.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::slurp;
using dmarc::test::TempDir;
namespace fs = std::filesystem;

namespace {


AggregateRecord sample(const std::string& ip = "192.0.2.1") {
  AggregateRecord r;
  r.day = 20400;
  r.policy.domain = "example.com";
  r.policy.p = Policy::Reject;
  r.policy.sp = Policy::Quarantine;
  r.policy.adkim = AlignmentMode::Strict;
  r.policy.pct = 50;
  r.policy.fo = "1:d";
  r.policy.t = true;
  r.policy.psd = PsdFlag::No;
  r.policy.discovery = DiscoveryMethod::Psl;
  r.policy.rua = {"mailto:dmarc@example.com!10m", "mailto:x@example.net"};
  r.source_ip = ip;
  r.header_from = "example.com";
  r.envelope_from = "bounce.example.com";
  r.envelope_to = "example.org";
  r.result = DmarcResult::Fail;
  r.requested = Disposition::Reject;
  r.disposition = Disposition::None;
  r.dkim_alignment = Alignment::Fail;
  r.spf_alignment = Alignment::Pass;
  r.overrides = {PolicyOverride{OverrideReason::TrustedForwarder, "list.example.org"}};
  r.dkim = {DkimAuthResult{"example.com", "s1", AuthResult::Fail},
            DkimAuthResult{"list.example.org", "k", AuthResult::Pass}};
  r.spf = SpfAuthResult{"bounce.example.com", SpfScope::MailFrom, AuthResult::Pass};
  r.action = Action::Accept;
  r.count = 1;
  r.last_seen = 20400 * kSecondsPerDay + 60;
  return r;
}

std::shared_ptr<Store> open_ok(const std::string& path) {
  auto s = open_store("sqlite:" + path);
  INFO((s ? std::string() : s.error()));
  REQUIRE(s);
  REQUIRE(s.value());
  return s.value();
}

// Equal but for count and last_seen.
void require_same_key(const AggregateRecord& a, const AggregateRecord& b) {
  CHECK(a.day == b.day);
  CHECK(a.policy == b.policy);
  CHECK(record_key(a) == record_key(b));
}

int sql_int(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

void sql_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
  INFO((msg ? msg : ""));
  sqlite3_free(msg);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace

TEST_CASE("open_store: none, unknown schemes, relative paths", "[store]") {
  auto none = open_store("none");
  REQUIRE(none);
  CHECK(none.value() == nullptr);
  auto pg = open_store("postgresql://db.example/reports");
  REQUIRE_FALSE(pg);
  CHECK_THAT(pg.error(), Catch::Contains("unknown scheme"));
  auto rel = open_store("sqlite:reports.db");
  REQUIRE_FALSE(rel);
  CHECK_THAT(rel.error(), Catch::Contains("sqlite:reports.db") && Catch::Contains("absolute"));
  auto missing_dir = open_store("sqlite:/nonexistent-dir-dmarc/reports.db");
  REQUIRE_FALSE(missing_dir);
  CHECK_THAT(missing_dir.error(), Catch::StartsWith("sqlite:/nonexistent-dir-dmarc/reports.db: "));
}

TEST_CASE("a new store: mode 0640, WAL, schema version, round trip", "[store]") {
  TempDir dir;
  std::string db = dir.file("reports.db");
  mode_t old = ::umask(022);
  auto store = open_ok(db);
  ::umask(old);
  struct stat st {};
  REQUIRE(::stat(db.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(store->describe() == "sqlite:" + db);
  CHECK(sql_int(db, "SELECT version FROM schema_version") == kSchemaVersion);

  AggregateRecord r = sample();
  REQUIRE_FALSE(store->add({r}));
  // WAL: the write went to the -wal file beside the database.
  CHECK(fs::exists(db + "-wal"));

  auto doms = store->policy_domains(r.day, r.day);
  REQUIRE(doms);
  CHECK(doms.value() == std::vector<std::string>{"example.com"});
  CHECK(store->policy_domains(r.day + 1, r.day + 5).value().empty());

  auto recs = store->records("EXAMPLE.com", r.day, r.day);
  REQUIRE(recs);
  REQUIRE(recs.value().size() == 1);
  const AggregateRecord& got = recs.value()[0];
  require_same_key(got, r);
  CHECK(got.source_ip == r.source_ip);
  CHECK(got.dkim == r.dkim);
  CHECK(got.spf == r.spf);
  CHECK(got.overrides.size() == 1);
  CHECK(got.overrides[0].comment == "list.example.org");
  CHECK(got.count == 1);
  CHECK(got.last_seen == r.last_seen);

  // A record without optional parts round-trips too.
  AggregateRecord bare;
  bare.day = r.day;
  bare.policy.domain = "bare.example";
  bare.source_ip = "2001:db8::1";
  bare.header_from = "bare.example";
  REQUIRE_FALSE(store->add({bare}));
  auto b = store->records("bare.example", r.day, r.day);
  REQUIRE(b);
  REQUIRE(b.value().size() == 1);
  require_same_key(b.value()[0], bare);
  CHECK_FALSE(b.value()[0].spf);
  CHECK(b.value()[0].dkim.empty());
  CHECK(b.value()[0].policy.rua.empty());
}

TEST_CASE("equal keys aggregate into one row with a count; others do not", "[store]") {
  TempDir dir;
  std::string db = dir.file("r.db");
  auto store = open_ok(db);
  std::vector<AggregateRecord> batch;
  for (int i = 0; i < 1000; ++i) {
    AggregateRecord r = sample(i % 2 ? "192.0.2.1" : "198.51.100.7");
    r.last_seen += i;
    batch.push_back(r);
  }
  REQUIRE_FALSE(store->add(batch));
  REQUIRE_FALSE(store->add(batch));
  CHECK(sql_int(db, "SELECT count(*) FROM agg_rows") == 2);
  auto recs = store->records("example.com", 20400, 20400).value();
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].count == 1000);
  CHECK(recs[1].count == 1000);
  // Ordered by source address; each row has its latest message's time.
  CHECK(recs[0].source_ip == "192.0.2.1");
  CHECK(recs[0].last_seen == sample().last_seen + 999);
  CHECK(recs[1].last_seen == sample().last_seen + 998);

  // Each key field on its own makes a new row.
  std::vector<AggregateRecord> variants;
  auto add_variant = [&](auto change) {
    AggregateRecord r = sample();
    change(r);
    variants.push_back(r);
  };
  add_variant([](AggregateRecord& r) { r.day += 1; });
  add_variant([](AggregateRecord& r) { r.policy.pct = 100; });
  add_variant([](AggregateRecord& r) { r.policy.np = Policy::Reject; });
  add_variant([](AggregateRecord& r) { r.envelope_from = ""; });
  add_variant([](AggregateRecord& r) { r.envelope_to = "example.net"; });
  add_variant([](AggregateRecord& r) { r.action = Action::Reject; });
  add_variant([](AggregateRecord& r) { r.dkim.pop_back(); });
  add_variant([](AggregateRecord& r) { r.spf.reset(); });
  add_variant([](AggregateRecord& r) { r.overrides[0].comment = "other"; });
  add_variant([](AggregateRecord& r) { r.policy.rua.pop_back(); });
  REQUIRE_FALSE(store->add(variants));
  CHECK(sql_int(db, "SELECT count(*) FROM agg_rows") == 2 + static_cast<int>(variants.size()));
  CHECK(store->records("example.com", 20400, 20401).value().size() == 2 + variants.size());
}

TEST_CASE("hostile text is stored and read back exactly", "[store]") {
  TempDir dir;
  auto store = open_ok(dir.file("h.db"));
  AggregateRecord r = sample();
  std::string nasty = std::string("x'); DROP TABLE agg_rows; --\t\n\\0\\") + '\x01' + "\xff\xfe" + "\xe2\x80\xae";
  r.header_from = nasty;
  r.envelope_from = nasty;
  r.overrides[0].comment = nasty + "\n\t";
  r.dkim[0].selector = "\t";
  r.dkim[1].domain = "\\";
  r.policy.rua = {"", "\n", nasty};
  r.policy.fo = "\t";
  REQUIRE_FALSE(store->add({r}));
  auto recs = store->records("example.com", r.day, r.day);
  REQUIRE(recs);
  REQUIRE(recs.value().size() == 1);
  const AggregateRecord& got = recs.value()[0];
  CHECK(got.header_from == nasty);
  CHECK(got.envelope_from == nasty);
  CHECK(got.overrides[0].comment == nasty + "\n\t");
  CHECK(got.dkim == r.dkim);
  CHECK(got.policy.rua == r.policy.rua);
  CHECK(got.policy.fo == "\t");
  CHECK(record_key(got) == record_key(r));
}

TEST_CASE("counts saturate at the column's maximum instead of wrapping", "[store]") {
  TempDir dir;
  auto store = open_ok(dir.file("s.db"));
  AggregateRecord r = sample();
  r.count = std::numeric_limits<std::uint64_t>::max();
  REQUIRE_FALSE(store->add({r}));
  r.count = 5;
  REQUIRE_FALSE(store->add({r, r}));
  auto recs = store->records("example.com", r.day, r.day).value();
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].count == static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
}

TEST_CASE("report states: put replaces, read by period", "[store]") {
  TempDir dir;
  auto store = open_ok(dir.file("st.db"));
  ReportState s;
  s.policy_domain = "Example.COM";
  s.period = day_period(20400);
  s.destination = "dmarc@example.com";
  s.status = ReportStatus::Sending;
  s.attempts = 1;
  s.report_id = report_id("example.com", s.period);
  s.updated = 100;
  REQUIRE_FALSE(store->put_report_state(s));
  s.status = ReportStatus::Sent;
  s.last_error = "250 2.0.0 Ok";
  REQUIRE_FALSE(store->put_report_state(s));
  ReportState other = s;
  other.destination = "x@example.net";
  other.status = ReportStatus::Failed;
  other.attempts = 5;
  REQUIRE_FALSE(store->put_report_state(other));
  auto got = store->report_states("example.com", s.period);
  REQUIRE(got);
  REQUIRE(got.value().size() == 2);
  CHECK(got.value()[0].destination == "dmarc@example.com");
  CHECK(got.value()[0].status == ReportStatus::Sent);
  CHECK(got.value()[0].last_error == "250 2.0.0 Ok");
  CHECK(got.value()[0].report_id == s.report_id);
  CHECK(got.value()[1].status == ReportStatus::Failed);
  CHECK(got.value()[1].attempts == 5);
  CHECK(store->report_states("example.com", day_period(20401)).value().empty());
}

TEST_CASE("expire removes old rows and states only", "[store]") {
  TempDir dir;
  auto store = open_ok(dir.file("e.db"));
  std::vector<AggregateRecord> batch;
  for (std::int64_t d = 20390; d < 20400; ++d) {
    AggregateRecord r = sample();
    r.day = d;
    batch.push_back(r);
  }
  REQUIRE_FALSE(store->add(batch));
  for (std::int64_t d : {20390, 20399}) {
    ReportState s;
    s.policy_domain = "example.com";
    s.period = day_period(d);
    s.destination = "d@example.com";
    REQUIRE_FALSE(store->put_report_state(s));
  }
  auto e = store->expire(20395);
  REQUIRE(e);
  CHECK(e.value().rows == 5);
  CHECK(e.value().states == 1);
  CHECK(store->records("example.com", 0, 30000).value().size() == 5);
  CHECK(store->report_states("example.com", day_period(20399)).value().size() == 1);
  CHECK(store->report_states("example.com", day_period(20390)).value().empty());
}

TEST_CASE("a version 1 database is migrated, its rows kept", "[store]") {
  TempDir dir;
  std::string db = dir.file("v1.db");
  REQUIRE_FALSE(create_v1_database(db));
  CHECK(sql_int(db, "SELECT version FROM schema_version") == 1);
  auto store = open_ok(db);
  CHECK(sql_int(db, "SELECT version FROM schema_version") == kSchemaVersion);
  auto recs = store->records("example.com", 20000, 20000);
  REQUIRE(recs);
  REQUIRE(recs.value().size() == 1);
  const AggregateRecord& r = recs.value()[0];
  CHECK(r.count == 7);
  CHECK(r.last_seen == 0);
  CHECK(r.policy.p == Policy::Reject);
  CHECK(r.dkim == std::vector<DkimAuthResult>{DkimAuthResult{"example.com", "sel", AuthResult::Pass}});
  REQUIRE(r.spf);
  CHECK(r.spf->domain == "example.com");
  // New rows carry last_seen.
  AggregateRecord n = sample();
  REQUIRE_FALSE(store->add({n}));
  CHECK(store->records("example.com", n.day, n.day).value().at(0).last_seen == n.last_seen);
  // Opening again is a no-op.
  store.reset();
  auto again = open_ok(db);
  CHECK(again->records("example.com", 0, 30000).value().size() == 2);
}

TEST_CASE("a database from a newer program is refused", "[store]") {
  TempDir dir;
  std::string db = dir.file("v99.db");
  { open_ok(db); }
  sql_exec(db, "UPDATE schema_version SET version = 99");
  auto s = open_store("sqlite:" + db);
  REQUIRE_FALSE(s);
  CHECK_THAT(s.error(), Catch::StartsWith("sqlite:" + db + ": ") && Catch::Contains("99") &&
                            Catch::Contains("newer"));
}

TEST_CASE("a file that is not a database, or a row this program never wrote", "[store]") {
  TempDir dir;
  std::string junk = dir.file("junk.db");
  {
    std::ofstream f(junk, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>((i * 7919) & 0xff));
  }
  auto s = open_store("sqlite:" + junk);
  REQUIRE_FALSE(s);
  CHECK_THAT(s.error(), Catch::StartsWith("sqlite:" + junk + ": ") && Catch::Contains("not a database"));

  // A database whose page was overwritten: damaged, named.
  std::string db = dir.file("damaged.db");
  {
    auto store = open_ok(db);
    std::vector<AggregateRecord> batch;
    for (int i = 0; i < 3000; ++i) batch.push_back(sample("192.0.2." + std::to_string(i % 250) + "/" + std::to_string(i)));
    REQUIRE_FALSE(store->add(batch));
  }
  sql_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE");
  {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3);
    std::string garbage(4096 * 4, '\x5a');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto d = open_store("sqlite:" + db);
  REQUIRE_FALSE(d);
  CHECK_THAT(d.error(), Catch::StartsWith("sqlite:" + db + ": "));

  // A row edited by hand to hold an unknown token: an error naming the row.
  std::string edited = dir.file("edited.db");
  {
    auto store = open_ok(edited);
    REQUIRE_FALSE(store->add({sample()}));
  }
  sql_exec(edited, "UPDATE agg_rows SET action = 'explode'");
  auto store = open_ok(edited);
  auto recs = store->records("example.com", 0, 30000);
  REQUIRE_FALSE(recs);
  CHECK_THAT(recs.error().message, Catch::Contains("agg_rows row 1") && Catch::Contains("action") &&
                                       Catch::Contains("explode"));
}

TEST_CASE("a full file system: the batch fails whole, nothing half-written, later batches work", "[store]") {
  if (::geteuid() != 0) {
    WARN("not root: the tmpfs case needs mount(2)");
    return;
  }
  TempDir dir;
  std::string mnt = dir.file("mnt");
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
    WARN("cannot mount a tmpfs here: skipped");
    return;
  }
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::string db = mnt + "/full.db";
  auto store = open_ok(db);
  REQUIRE_FALSE(store->add({sample()}));
  // Fill the file system so the next batch cannot be written.
  {
    std::ofstream filler(mnt + "/filler", std::ios::binary);
    std::string block(4096, 'f');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  std::vector<AggregateRecord> big;
  for (int i = 0; i < 300; ++i) {
    AggregateRecord r = sample("203.0.113." + std::to_string(i));
    r.header_from = std::string(200, 'h') + std::to_string(i);
    big.push_back(r);
  }
  auto err = store->add(big);
  REQUIRE(err);
  CHECK_THAT(err->message, Catch::StartsWith("sqlite:" + db + ": "));
  // The first batch is all there is.
  auto recs = store->records("example.com", 0, 30000);
  REQUIRE(recs);
  CHECK(recs.value().size() == 1);
  // Room again: the same batch goes in.
  fs::remove(mnt + "/filler");
  auto again = store->add(big);
  INFO((again ? again->message : std::string()));
  REQUIRE_FALSE(again);
  CHECK(store->records("example.com", 0, 30000).value().size() == 301);
}

TEST_CASE("two connections: a reader while the writer writes (WAL, busy timeout)", "[store]") {
  TempDir dir;
  std::string db = dir.file("two.db");
  auto writer = open_ok(db);
  auto reader = open_ok(db);
  for (int i = 0; i < 20; ++i) {
    REQUIRE_FALSE(writer->add({sample("192.0.2." + std::to_string(i))}));
    auto recs = reader->records("example.com", 0, 30000);
    REQUIRE(recs);
    CHECK(recs.value().size() == static_cast<std::size_t>(i + 1));
    ReportState s;
    s.policy_domain = "example.com";
    s.period = day_period(20400 + i);
    s.destination = "d@example.com";
    REQUIRE_FALSE(reader->put_report_state(s));
  }
}

TEST_CASE("two programs opening a new database at once both get the current schema", "[store]") {
  TempDir dir;
  std::string db = dir.file("race.db");
  for (int round = 0; round < 5; ++round) {
    std::string path = db + std::to_string(round);
    std::vector<std::thread> ts;
    std::vector<std::string> errors(4);
    for (int i = 0; i < 4; ++i) {
      ts.emplace_back([&, i] {
        auto s = open_store("sqlite:" + path);
        if (!s) errors[static_cast<std::size_t>(i)] = s.error();
      });
    }
    for (auto& t : ts) t.join();
    for (const auto& e : errors) CHECK(e == "");
    CHECK(sql_int(path, "SELECT count(*) FROM schema_version") == 1);
    CHECK(sql_int(path, "SELECT version FROM schema_version") == kSchemaVersion);
  }
}

TEST_CASE("failure jobs: queued, read back whole, updated, counted for the rate limit, expired", "[store]") {
  TempDir dir;
  auto store = open_ok(dir.file("f.db"));
  std::vector<FailureJob> jobs;
  for (int i = 0; i < 3; ++i) {
    FailureJob j;
    j.created = 20400 * kSecondsPerDay + i;
    j.reported_domain = i == 2 ? "Other.example" : "example.com";
    j.policy_domain = "example.com";
    j.ruf = {"mailto:ruf@example.com!1m", "mailto:x@example.net"};
    j.feedback.user_agent = "dmarc-milter/0.1.0";
    j.feedback.auth_failure = "dmarc";
    j.feedback.identity_alignment = "none";
    j.feedback.authentication_results = {"mx.example.net; dmarc=fail header.from=example.com"};
    j.feedback.original_rcpt_to = {"<a@example.net>", "<b@example.net>"};
    j.feedback.source_ip = "192.0.2." + std::to_string(i);
    j.feedback.other = {{"X-Note", "tab\there"}};
    j.original = std::string("From: x@example.com\nSubject: \xff binary\0tail\n", 39);
    j.whole_message = i == 1;
    jobs.push_back(j);
  }
  REQUIRE_FALSE(store->add_failure_jobs(jobs));
  auto pending = store->pending_failure_jobs(10);
  REQUIRE(pending);
  REQUIRE(pending.value().size() == 3);
  const FailureJob& first = pending.value()[0];
  CHECK(first.id > 0);
  CHECK(first.reported_domain == "example.com");
  CHECK(first.ruf == jobs[0].ruf);
  CHECK(feedback_field_list(first.feedback) == feedback_field_list(jobs[0].feedback));
  CHECK(first.original == jobs[0].original);
  CHECK(pending.value()[1].whole_message);
  CHECK(pending.value()[2].reported_domain == "other.example");
  CHECK(store->pending_failure_jobs(2).value().size() == 2);

  FailureJob sent = first;
  sent.status = FailureJobStatus::Sent;
  sent.attempts = 1;
  sent.updated = 20400 * kSecondsPerDay + 100;
  sent.feedback.incidents = 4;
  REQUIRE_FALSE(store->update_failure_job(sent));
  FailureJob dropped = pending.value()[2];
  dropped.status = FailureJobStatus::Dropped;
  dropped.updated = 20400 * kSecondsPerDay + 100;
  REQUIRE_FALSE(store->update_failure_job(dropped));
  CHECK(store->pending_failure_jobs(10).value().size() == 1);
  CHECK(store->failure_reports_sent(FailureJobKind::Ruf, "EXAMPLE.com", 20400 * kSecondsPerDay).value() == 1);
  CHECK(store->failure_reports_sent(FailureJobKind::Ruf, "", 20400 * kSecondsPerDay).value() == 1);  // dropped is not sent
  CHECK(store->failure_reports_sent(FailureJobKind::Ruf, "example.com", 20400 * kSecondsPerDay + 101).value() == 0);
  FailureJob ghost = first;
  ghost.id = 999;
  CHECK(store->update_failure_job(ghost));

  auto e = store->expire(20401);
  REQUIRE(e);
  CHECK(store->pending_failure_jobs(10).value().empty());
}

TEST_CASE("rows remember a List-Id; it is part of the key", "[store]") {
  TempDir dir;
  auto store = open_ok(dir.file("l.db"));
  AggregateRecord plain = sample();
  AggregateRecord list = sample();
  list.list_id = true;
  CHECK(record_key(plain) != record_key(list));
  REQUIRE_FALSE(store->add({plain, list, list}));
  auto recs = store->records("example.com", 0, 30000).value();
  REQUIRE(recs.size() == 2);
  int lists = 0;
  for (const auto& r : recs) {
    if (r.list_id) {
      ++lists;
      CHECK(r.count == 2);
    }
  }
  CHECK(lists == 1);
}
