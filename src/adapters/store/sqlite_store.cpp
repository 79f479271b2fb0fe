// sqlite_store.cpp - the embedded Store (dmarc/adapters/sqlite_store.hpp)
//
// RAII over sqlite3 and sqlite3_stmt; every SQLite status is turned into a
// StoreError naming the database at this boundary. Statements the writer
// thread runs per batch are prepared once.
#include "dmarc/adapters/sqlite_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <thread>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "dmarc/core/domain.hpp"

namespace dmarc {

namespace {

template <class E>
Unexpected<E> unexpected(E e) {
  return Unexpected<E>{std::move(e)};
}

constexpr std::int64_t kMaxCount = std::numeric_limits<std::int64_t>::max();

struct DbClose {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// The schema, one migration per version. Version N's script takes a
// database at version N-1 to N; each runs in its own transaction.
constexpr const char* kMigrations[] = {
    // 1: aggregate rows and report states.
    "CREATE TABLE agg_rows ("
    " policy_domain TEXT NOT NULL, day INTEGER NOT NULL, row_key TEXT NOT NULL,"
    " policy TEXT NOT NULL, rua TEXT NOT NULL,"
    " source_ip TEXT NOT NULL, header_from TEXT NOT NULL, envelope_from TEXT NOT NULL,"
    " envelope_to TEXT NOT NULL, result TEXT NOT NULL, requested TEXT NOT NULL,"
    " disposition TEXT NOT NULL, dkim_alignment TEXT NOT NULL, spf_alignment TEXT NOT NULL,"
    " action TEXT NOT NULL, overrides TEXT NOT NULL, dkim TEXT NOT NULL, spf TEXT NOT NULL,"
    " count INTEGER NOT NULL,"
    " UNIQUE (policy_domain, day, row_key));"
    "CREATE INDEX agg_rows_day ON agg_rows (day);"
    "CREATE TABLE report_state ("
    " policy_domain TEXT NOT NULL, begin INTEGER NOT NULL, end_ INTEGER NOT NULL,"
    " destination TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,"
    " last_error TEXT NOT NULL, report_id TEXT NOT NULL, updated INTEGER NOT NULL,"
    " PRIMARY KEY (policy_domain, begin, end_, destination));",
    // 2: when a row last grew (for the readiness report and for operators).
    "ALTER TABLE agg_rows ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;",
    // 3: failure reports waiting for dmarc-report failures.
    "CREATE TABLE failure_jobs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL,"
    " reported_domain TEXT NOT NULL, policy_domain TEXT NOT NULL, ruf TEXT NOT NULL,"
    " feedback TEXT NOT NULL, original BLOB NOT NULL, whole_message INTEGER NOT NULL,"
    " status TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL, updated INTEGER NOT NULL);"
    "CREATE INDEX failure_jobs_status ON failure_jobs (status, id);"
    "CREATE INDEX failure_jobs_sent ON failure_jobs (status, updated, reported_domain);",
    // 4: local forensic reports of OwnDomains share the queue.
    "ALTER TABLE failure_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'ruf';"
    "ALTER TABLE failure_jobs ADD COLUMN text TEXT NOT NULL DEFAULT '';",
    // 5: whether the messages of a row came from a mailing list (List-Id).
    "ALTER TABLE agg_rows ADD COLUMN list_id INTEGER NOT NULL DEFAULT 0;",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

std::string opt_token(const std::optional<Policy>& p) { return p ? std::string(to_token(*p)) : std::string(); }

class SqliteStore final : public Store {
 public:
  static Expected<std::shared_ptr<Store>, std::string> open(const std::string& path);

  std::string describe() const override { return "sqlite:" + path_; }
  std::optional<StoreError> add(const std::vector<AggregateRecord>& batch) override;
  Expected<std::vector<std::string>, StoreError> policy_domains(std::int64_t first_day,
                                                                std::int64_t last_day) override;
  Expected<std::vector<AggregateRecord>, StoreError> records(std::string_view policy_domain, std::int64_t first_day,
                                                             std::int64_t last_day) override;
  Expected<std::vector<ReportState>, StoreError> report_states(std::string_view policy_domain,
                                                               const ReportPeriod& period) override;
  std::optional<StoreError> put_report_state(const ReportState& state) override;
  Expected<Expired, StoreError> expire(std::int64_t before_day) override;
  std::optional<StoreError> add_failure_jobs(const std::vector<FailureJob>& jobs) override;
  Expected<std::vector<FailureJob>, StoreError> pending_failure_jobs(std::size_t limit) override;
  std::optional<StoreError> update_failure_job(const FailureJob& job) override;
  Expected<std::uint64_t, StoreError> failure_reports_sent(FailureJobKind kind, std::string_view domain,
                                                           std::int64_t since) override;

 private:
  SqliteStore(std::string path, DbPtr db) : path_(std::move(path)), db_(std::move(db)) {}

  std::string error(std::string_view what) const {
    return describe() + ": " + std::string(what) + ": " + sqlite3_errmsg(db_.get());
  }
  StoreError store_error(std::string_view what) const { return StoreError{error(what)}; }
  // exec - run SQL without results; nullopt on success.
  std::optional<std::string> exec(const char* sql, std::string_view what) {
    char* msg = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &msg) == SQLITE_OK) return std::nullopt;
    std::string m = describe() + ": " + std::string(what) + ": " + (msg ? msg : sqlite3_errmsg(db_.get()));
    sqlite3_free(msg);
    return m;
  }
  // prepare - a statement, or null with ERR set.
  StmtPtr prepare(const char* sql, std::string* err) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      if (err) *err = error("prepare");
      return nullptr;
    }
    return StmtPtr(s);
  }
  std::optional<std::string> setup();
  void rollback() noexcept { sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr); }
  // moved - an error when the file at path_ is no longer the one this
  // connection has open (deleted or replaced under a running program):
  // writing on would commit into an unlinked inode, lost when it closes.
  std::optional<StoreError> moved() const {
    int has_moved = 0;
    if (sqlite3_file_control(db_.get(), "main", SQLITE_FCNTL_HAS_MOVED, &has_moved) == SQLITE_OK && has_moved)
      return StoreError{describe() + ": the database file was deleted or replaced; open it again"};
    return std::nullopt;
  }

  std::string path_;
  DbPtr db_;
  StmtPtr upsert_;
};

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
std::string column_text(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

std::optional<std::string> SqliteStore::setup() {
  sqlite3_extended_result_codes(db_.get(), 1);
  sqlite3_busy_timeout(db_.get(), 5000);
  // A file that is not a database fails on its first read: here. Another
  // process switching a new database to WAL at the same moment makes
  // SQLite answer "locked" without waiting (no busy handler for a journal
  // mode change): wait for it as the busy timeout would (5 s).
  for (int tries = 0;; ++tries) {
    char* msg = nullptr;
    int rc = sqlite3_exec(db_.get(), "PRAGMA journal_mode=WAL", nullptr, nullptr, &msg);
    std::string text = msg ? msg : sqlite3_errmsg(db_.get());
    sqlite3_free(msg);
    if (rc == SQLITE_OK) break;
    if ((rc & 0xff) == SQLITE_BUSY && tries < 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    return describe() + ": not a usable database: " + text;
  }
  if (auto e = exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", "pragma")) return e;
  {
    std::string err;
    StmtPtr q = prepare("PRAGMA quick_check", &err);
    if (!q) return err;
    std::string problems;
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      std::string line = column_text(q.get(), 0);
      if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
    }
    if (rc != SQLITE_DONE) return error("database check (quick_check) failed");
    if (!problems.empty()) return describe() + ": database is damaged (quick_check): " + problems;
  }
  // Migrations: the version is read inside the write transaction, so the
  // milter and dmarc-report opening a database at the same time never run
  // the same migration twice.
  for (;;) {
    if (auto e = exec("BEGIN IMMEDIATE", "schema")) return e;
    if (auto e = exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", "schema_version")) {
      rollback();
      return e;
    }
    int version = 0;
    {
      std::string err;
      StmtPtr q = prepare("SELECT coalesce(max(version), 0) FROM schema_version", &err);
      if (!q) {
        rollback();
        return err;
      }
      if (sqlite3_step(q.get()) != SQLITE_ROW) {
        std::string e = error("reading the schema version");
        q.reset();
        rollback();
        return e;
      }
      version = sqlite3_column_int(q.get(), 0);
    }
    if (version > kSchemaVersion) {
      rollback();
      return describe() + ": schema version " + std::to_string(version) + " is newer than this program's (" +
             std::to_string(kSchemaVersion) + "); refusing to use it";
    }
    if (version == kSchemaVersion) {
      if (auto e = exec("COMMIT", "schema")) {
        rollback();
        return e;
      }
      break;
    }
    int v = version + 1;
    std::string what = "migration to schema version " + std::to_string(v);
    std::string sql = std::string(kMigrations[v - 1]) + "DELETE FROM schema_version; INSERT INTO schema_version "
                      "VALUES (" + std::to_string(v) + ");";
    if (auto e = exec(sql.c_str(), what)) {
      rollback();
      return e;
    }
    if (auto e = exec("COMMIT", what)) {
      rollback();
      return e;
    }
  }
  std::string err;
  upsert_ = prepare(
      "INSERT INTO agg_rows (policy_domain, day, row_key, policy, rua, source_ip, header_from, envelope_from,"
      " envelope_to, result, requested, disposition, dkim_alignment, spf_alignment, action, overrides, dkim, spf,"
      " count, last_seen, list_id) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)"
      " ON CONFLICT (policy_domain, day, row_key) DO UPDATE SET"
      " count = CASE WHEN count > 9223372036854775807 - excluded.count THEN 9223372036854775807"
      " ELSE count + excluded.count END,"
      " last_seen = max(last_seen, excluded.last_seen)",
      &err);
  if (!upsert_) return err;
  return std::nullopt;
}

Expected<std::shared_ptr<Store>, std::string> SqliteStore::open(const std::string& path) {
  std::string name = "sqlite:" + path;
  if (path.empty() || path[0] != '/') return unexpected(name + ": the path must be absolute");
  // Create the file ourselves, so its mode is 0640 (SQLite would use 0644);
  // the -wal and -shm files SQLite makes take the database file's mode.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return unexpected(name + ": cannot open: " + std::strerror(errno));
  ::close(fd);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return unexpected(name + ": cannot open: " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  std::shared_ptr<SqliteStore> s(new SqliteStore(path, std::move(db)));
  if (auto e = s->setup()) return unexpected(*e);
  return std::shared_ptr<Store>(std::move(s));
}

std::optional<StoreError> SqliteStore::add(const std::vector<AggregateRecord>& batch) {
  if (batch.empty()) return std::nullopt;
  if (auto e = moved()) return e;
  if (auto e = exec("BEGIN IMMEDIATE", "begin")) return StoreError{*e};
  sqlite3_stmt* s = upsert_.get();
  for (const AggregateRecord& r : batch) {
    const PublishedPolicy& p = r.policy;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    bind_text(s, 1, ascii_lowercase(p.domain));
    sqlite3_bind_int64(s, 2, r.day);
    bind_text(s, 3, record_key(r));
    bind_text(s, 4,
              encode_fields({{std::string(to_token(p.p)), opt_token(p.sp), opt_token(p.np),
                              std::string(to_token(p.adkim)), std::string(to_token(p.aspf)), std::to_string(p.pct),
                              p.fo, p.t ? "y" : "n", std::string(to_token(p.psd)),
                              std::string(to_token(p.discovery))}}));
    bind_text(s, 5, encode_fields({p.rua}));
    bind_text(s, 6, r.source_ip);
    bind_text(s, 7, r.header_from);
    bind_text(s, 8, r.envelope_from);
    bind_text(s, 9, r.envelope_to);
    bind_text(s, 10, to_token(r.result));
    bind_text(s, 11, to_token(r.requested));
    bind_text(s, 12, to_token(r.disposition));
    bind_text(s, 13, to_token(r.dkim_alignment));
    bind_text(s, 14, to_token(r.spf_alignment));
    bind_text(s, 15, to_token(r.action));
    std::vector<std::vector<std::string>> ov;
    for (const auto& o : r.overrides) ov.push_back({std::string(to_token(o.reason)), o.comment});
    bind_text(s, 16, encode_fields(ov));
    std::vector<std::vector<std::string>> dk;
    for (const auto& d : r.dkim) dk.push_back({d.domain, d.selector, std::string(to_token(d.result))});
    bind_text(s, 17, encode_fields(dk));
    bind_text(s, 18,
              r.spf ? encode_fields({{r.spf->domain, std::string(to_token(r.spf->scope)),
                                      std::string(to_token(r.spf->result))}})
                    : std::string());
    sqlite3_bind_int64(s, 19, r.count > static_cast<std::uint64_t>(kMaxCount) ? kMaxCount
                                                                              : static_cast<std::int64_t>(r.count));
    sqlite3_bind_int64(s, 20, r.last_seen);
    sqlite3_bind_int(s, 21, r.list_id ? 1 : 0);
    if (sqlite3_step(s) != SQLITE_DONE) {
      StoreError e = store_error("add");
      sqlite3_reset(s);
      rollback();
      return e;
    }
  }
  sqlite3_reset(s);
  if (auto e = exec("COMMIT", "commit")) {
    rollback();
    return StoreError{*e};
  }
  return std::nullopt;
}

Expected<std::vector<std::string>, StoreError> SqliteStore::policy_domains(std::int64_t first_day,
                                                                           std::int64_t last_day) {
  std::string err;
  StmtPtr q = prepare("SELECT DISTINCT policy_domain FROM agg_rows WHERE day BETWEEN ?1 AND ?2 ORDER BY 1", &err);
  if (!q) return unexpected(StoreError{err});
  sqlite3_bind_int64(q.get(), 1, first_day);
  sqlite3_bind_int64(q.get(), 2, last_day);
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) out.push_back(column_text(q.get(), 0));
  if (rc != SQLITE_DONE) return unexpected(store_error("policy_domains"));
  return out;
}

// decode_row - the record of one agg_rows row; nullopt with WHY when a
// column holds what this program never writes.
std::optional<AggregateRecord> decode_row(sqlite3_stmt* q, std::string* why) {
  AggregateRecord r;
  auto bad = [&](const char* col, const std::string& v) {
    *why = std::string("column ") + col + " holds '" + v.substr(0, 64) + "'";
    return std::nullopt;
  };
  r.policy.domain = column_text(q, 0);
  r.day = sqlite3_column_int64(q, 1);
  auto pol = decode_fields(column_text(q, 2));
  if (pol.size() != 1 || pol[0].size() != 10) return bad("policy", column_text(q, 2));
  const auto& f = pol[0];
  auto p = parse_policy_token(f[0]);
  auto adkim = parse_alignment_mode(f[3]);
  auto aspf = parse_alignment_mode(f[4]);
  auto psd = parse_psd_flag(f[8]);
  auto disc = parse_discovery(f[9]);
  if (!p || !adkim || !aspf || !psd || !disc || (f[7] != "y" && f[7] != "n")) return bad("policy", column_text(q, 2));
  r.policy.p = *p;
  if (!f[1].empty()) {
    r.policy.sp = parse_policy_token(f[1]);
    if (!r.policy.sp) return bad("policy", column_text(q, 2));
  }
  if (!f[2].empty()) {
    r.policy.np = parse_policy_token(f[2]);
    if (!r.policy.np) return bad("policy", column_text(q, 2));
  }
  r.policy.adkim = *adkim;
  r.policy.aspf = *aspf;
  try {
    r.policy.pct = std::stoi(f[5]);
  } catch (const std::exception&) {
    return bad("policy", column_text(q, 2));
  }
  r.policy.fo = f[6];
  r.policy.t = f[7] == "y";
  r.policy.psd = *psd;
  r.policy.discovery = *disc;
  auto rua = decode_fields(column_text(q, 3));
  if (rua.size() > 1) return bad("rua", column_text(q, 3));
  if (!rua.empty()) r.policy.rua = rua[0];
  r.source_ip = column_text(q, 4);
  r.header_from = column_text(q, 5);
  r.envelope_from = column_text(q, 6);
  r.envelope_to = column_text(q, 7);
  auto result = parse_dmarc_result(column_text(q, 8));
  if (!result) return bad("result", column_text(q, 8));
  r.result = *result;
  auto req = parse_disposition(column_text(q, 9));
  if (!req) return bad("requested", column_text(q, 9));
  r.requested = *req;
  auto disp = parse_disposition(column_text(q, 10));
  if (!disp) return bad("disposition", column_text(q, 10));
  r.disposition = *disp;
  auto da = parse_alignment(column_text(q, 11));
  if (!da) return bad("dkim_alignment", column_text(q, 11));
  r.dkim_alignment = *da;
  auto sa = parse_alignment(column_text(q, 12));
  if (!sa) return bad("spf_alignment", column_text(q, 12));
  r.spf_alignment = *sa;
  auto act = parse_action(column_text(q, 13));
  if (!act) return bad("action", column_text(q, 13));
  r.action = *act;
  for (const auto& o : decode_fields(column_text(q, 14))) {
    std::optional<OverrideReason> reason = o.size() == 2 ? parse_override_reason(o[0]) : std::nullopt;
    if (!reason) return bad("overrides", column_text(q, 14));
    r.overrides.push_back(PolicyOverride{*reason, o[1]});
  }
  for (const auto& d : decode_fields(column_text(q, 15))) {
    std::optional<AuthResult> res = d.size() == 3 ? parse_auth_result(d[2]) : std::nullopt;
    if (!res) return bad("dkim", column_text(q, 15));
    r.dkim.push_back(DkimAuthResult{d[0], d[1], *res});
  }
  auto spf = decode_fields(column_text(q, 16));
  if (!spf.empty()) {
    if (spf.size() != 1 || spf[0].size() != 3) return bad("spf", column_text(q, 16));
    auto scope = parse_spf_scope(spf[0][1]);
    auto res = parse_auth_result(spf[0][2]);
    if (!scope || !res) return bad("spf", column_text(q, 16));
    r.spf = SpfAuthResult{spf[0][0], *scope, *res};
  }
  std::int64_t count = sqlite3_column_int64(q, 17);
  r.count = count < 0 ? 0 : static_cast<std::uint64_t>(count);
  r.last_seen = sqlite3_column_int64(q, 18);
  r.list_id = sqlite3_column_int(q, 20) != 0;
  return r;
}

Expected<std::vector<AggregateRecord>, StoreError> SqliteStore::records(std::string_view policy_domain,
                                                                        std::int64_t first_day,
                                                                        std::int64_t last_day) {
  std::string err;
  StmtPtr q = prepare(
      "SELECT policy_domain, day, policy, rua, source_ip, header_from, envelope_from, envelope_to, result,"
      " requested, disposition, dkim_alignment, spf_alignment, action, overrides, dkim, spf, count, last_seen,"
      " rowid, list_id FROM agg_rows WHERE policy_domain = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day, source_ip, row_key",
      &err);
  if (!q) return unexpected(StoreError{err});
  bind_text(q.get(), 1, ascii_lowercase(policy_domain));
  sqlite3_bind_int64(q.get(), 2, first_day);
  sqlite3_bind_int64(q.get(), 3, last_day);
  std::vector<AggregateRecord> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    std::string why;
    auto r = decode_row(q.get(), &why);
    if (!r) {
      return unexpected(StoreError{describe() + ": agg_rows row " + std::to_string(sqlite3_column_int64(q.get(), 19)) +
                                   " cannot be read: " + why});
    }
    out.push_back(std::move(*r));
  }
  if (rc != SQLITE_DONE) return unexpected(store_error("records"));
  return out;
}

Expected<std::vector<ReportState>, StoreError> SqliteStore::report_states(std::string_view policy_domain,
                                                                          const ReportPeriod& period) {
  std::string err;
  StmtPtr q = prepare(
      "SELECT destination, status, attempts, last_error, report_id, updated FROM report_state"
      " WHERE policy_domain = ?1 AND begin = ?2 AND end_ = ?3 ORDER BY destination",
      &err);
  if (!q) return unexpected(StoreError{err});
  std::string dom = ascii_lowercase(policy_domain);
  bind_text(q.get(), 1, dom);
  sqlite3_bind_int64(q.get(), 2, period.begin);
  sqlite3_bind_int64(q.get(), 3, period.end);
  std::vector<ReportState> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    ReportState s;
    s.policy_domain = dom;
    s.period = period;
    s.destination = column_text(q.get(), 0);
    auto st = parse_report_status(column_text(q.get(), 1));
    if (!st) {
      return unexpected(StoreError{describe() + ": report_state for " + dom + " to " + s.destination +
                                   " has status '" + column_text(q.get(), 1).substr(0, 32) + "'"});
    }
    s.status = *st;
    s.attempts = sqlite3_column_int(q.get(), 2);
    s.last_error = column_text(q.get(), 3);
    s.report_id = column_text(q.get(), 4);
    s.updated = sqlite3_column_int64(q.get(), 5);
    out.push_back(std::move(s));
  }
  if (rc != SQLITE_DONE) return unexpected(store_error("report_states"));
  return out;
}

std::optional<StoreError> SqliteStore::put_report_state(const ReportState& st) {
  std::string err;
  StmtPtr q = prepare(
      "INSERT OR REPLACE INTO report_state (policy_domain, begin, end_, destination, status, attempts, last_error,"
      " report_id, updated) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
      &err);
  if (!q) return StoreError{err};
  bind_text(q.get(), 1, ascii_lowercase(st.policy_domain));
  sqlite3_bind_int64(q.get(), 2, st.period.begin);
  sqlite3_bind_int64(q.get(), 3, st.period.end);
  bind_text(q.get(), 4, st.destination);
  bind_text(q.get(), 5, to_token(st.status));
  sqlite3_bind_int(q.get(), 6, st.attempts);
  bind_text(q.get(), 7, st.last_error);
  bind_text(q.get(), 8, st.report_id);
  sqlite3_bind_int64(q.get(), 9, st.updated);
  if (sqlite3_step(q.get()) != SQLITE_DONE) return store_error("put_report_state");
  return std::nullopt;
}

std::string encode_feedback(const FeedbackReport& f) {
  std::vector<std::vector<std::string>> entries;
  for (auto& [n, v] : feedback_field_list(f)) entries.push_back({n, v});
  return encode_fields(entries);
}

std::optional<StoreError> SqliteStore::add_failure_jobs(const std::vector<FailureJob>& jobs) {
  if (jobs.empty()) return std::nullopt;
  if (auto e = moved()) return e;
  std::string err;
  StmtPtr q = prepare(
      "INSERT INTO failure_jobs (created, reported_domain, policy_domain, ruf, feedback, original, whole_message,"
      " status, attempts, last_error, updated, kind, text) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
      &err);
  if (!q) return StoreError{err};
  if (auto e = exec("BEGIN IMMEDIATE", "begin")) return StoreError{*e};
  for (const FailureJob& j : jobs) {
    sqlite3_reset(q.get());
    sqlite3_bind_int64(q.get(), 1, j.created);
    bind_text(q.get(), 2, ascii_lowercase(j.reported_domain));
    bind_text(q.get(), 3, ascii_lowercase(j.policy_domain));
    bind_text(q.get(), 4, encode_fields({j.ruf}));
    bind_text(q.get(), 5, encode_feedback(j.feedback));
    sqlite3_bind_blob(q.get(), 6, j.original.data(), static_cast<int>(j.original.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(q.get(), 7, j.whole_message ? 1 : 0);
    bind_text(q.get(), 8, to_token(j.status));
    sqlite3_bind_int(q.get(), 9, j.attempts);
    bind_text(q.get(), 10, j.last_error);
    sqlite3_bind_int64(q.get(), 11, j.updated);
    bind_text(q.get(), 12, to_token(j.kind));
    bind_text(q.get(), 13, j.text);
    if (sqlite3_step(q.get()) != SQLITE_DONE) {
      StoreError e = store_error("add_failure_jobs");
      sqlite3_reset(q.get());
      rollback();
      return e;
    }
  }
  sqlite3_reset(q.get());
  if (auto e = exec("COMMIT", "commit")) {
    rollback();
    return StoreError{*e};
  }
  return std::nullopt;
}

Expected<std::vector<FailureJob>, StoreError> SqliteStore::pending_failure_jobs(std::size_t limit) {
  std::string err;
  StmtPtr q = prepare(
      "SELECT id, created, reported_domain, policy_domain, ruf, feedback, original, whole_message, status, attempts,"
      " last_error, updated, kind, text FROM failure_jobs WHERE status = 'pending' ORDER BY id LIMIT ?1",
      &err);
  if (!q) return unexpected(StoreError{err});
  sqlite3_bind_int64(q.get(), 1, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
  std::vector<FailureJob> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    FailureJob j;
    j.id = sqlite3_column_int64(q.get(), 0);
    j.created = sqlite3_column_int64(q.get(), 1);
    j.reported_domain = column_text(q.get(), 2);
    j.policy_domain = column_text(q.get(), 3);
    auto ruf = decode_fields(column_text(q.get(), 4));
    if (!ruf.empty()) j.ruf = ruf[0];
    j.feedback.feedback_type.clear();
    j.feedback.version.clear();
    for (auto& e : decode_fields(column_text(q.get(), 5))) {
      std::optional<std::string> bad = e.size() == 2 ? apply_feedback_field(j.feedback, e[0], e[1])
                                                     : std::optional<std::string>("not a field");
      if (bad) {
        return unexpected(StoreError{describe() + ": failure_jobs row " + std::to_string(j.id) +
                                     " cannot be read: feedback: " + *bad});
      }
    }
    const void* blob = sqlite3_column_blob(q.get(), 6);
    j.original.assign(static_cast<const char*>(blob ? blob : ""),
                      static_cast<std::size_t>(sqlite3_column_bytes(q.get(), 6)));
    j.whole_message = sqlite3_column_int(q.get(), 7) != 0;
    auto st = parse_failure_job_status(column_text(q.get(), 8));
    if (!st) {
      return unexpected(StoreError{describe() + ": failure_jobs row " + std::to_string(j.id) + " has status '" +
                                   column_text(q.get(), 8).substr(0, 32) + "'"});
    }
    j.status = *st;
    j.attempts = sqlite3_column_int(q.get(), 9);
    j.last_error = column_text(q.get(), 10);
    j.updated = sqlite3_column_int64(q.get(), 11);
    std::string kind = column_text(q.get(), 12);
    if (kind != "ruf" && kind != "local") {
      return unexpected(StoreError{describe() + ": failure_jobs row " + std::to_string(j.id) + " has kind '" +
                                   kind.substr(0, 32) + "'"});
    }
    j.kind = kind == "local" ? FailureJobKind::Local : FailureJobKind::Ruf;
    j.text = column_text(q.get(), 13);
    out.push_back(std::move(j));
  }
  if (rc != SQLITE_DONE) return unexpected(store_error("pending_failure_jobs"));
  return out;
}

std::optional<StoreError> SqliteStore::update_failure_job(const FailureJob& j) {
  std::string err;
  StmtPtr q = prepare(
      "UPDATE failure_jobs SET status = ?2, attempts = ?3, last_error = ?4, updated = ?5, feedback = ?6 WHERE id = ?1",
      &err);
  if (!q) return StoreError{err};
  sqlite3_bind_int64(q.get(), 1, j.id);
  bind_text(q.get(), 2, to_token(j.status));
  sqlite3_bind_int(q.get(), 3, j.attempts);
  bind_text(q.get(), 4, j.last_error);
  sqlite3_bind_int64(q.get(), 5, j.updated);
  bind_text(q.get(), 6, encode_feedback(j.feedback));
  if (sqlite3_step(q.get()) != SQLITE_DONE) return store_error("update_failure_job");
  if (sqlite3_changes(db_.get()) != 1) return StoreError{describe() + ": no failure job " + std::to_string(j.id)};
  return std::nullopt;
}

Expected<std::uint64_t, StoreError> SqliteStore::failure_reports_sent(FailureJobKind kind, std::string_view domain,
                                                                      std::int64_t since) {
  std::string err;
  StmtPtr q = prepare(
      "SELECT count(*) FROM failure_jobs WHERE status = 'sent' AND updated >= ?1 AND (?2 = '' OR reported_domain = ?2)"
      " AND kind = ?3",
      &err);
  if (!q) return unexpected(StoreError{err});
  sqlite3_bind_int64(q.get(), 1, since);
  bind_text(q.get(), 2, ascii_lowercase(domain));
  bind_text(q.get(), 3, to_token(kind));
  if (sqlite3_step(q.get()) != SQLITE_ROW) return unexpected(store_error("failure_reports_sent"));
  return static_cast<std::uint64_t>(sqlite3_column_int64(q.get(), 0));
}

Expected<Store::Expired, StoreError> SqliteStore::expire(std::int64_t before_day) {
  Expired out;
  if (auto e = exec("BEGIN IMMEDIATE", "begin")) return unexpected(StoreError{*e});
  std::string err;
  StmtPtr rows = prepare("DELETE FROM agg_rows WHERE day < ?1", &err);
  StmtPtr states = rows ? prepare("DELETE FROM report_state WHERE end_ < ?1", &err) : nullptr;
  if (!rows || !states) {
    rollback();
    return unexpected(StoreError{err});
  }
  sqlite3_bind_int64(rows.get(), 1, before_day);
  sqlite3_bind_int64(states.get(), 1, before_day * kSecondsPerDay);
  if (sqlite3_step(rows.get()) != SQLITE_DONE) {
    StoreError e = store_error("expire");
    rollback();
    return unexpected(e);
  }
  out.rows = static_cast<std::uint64_t>(sqlite3_changes64(db_.get()));
  if (sqlite3_step(states.get()) != SQLITE_DONE) {
    StoreError e = store_error("expire");
    rollback();
    return unexpected(e);
  }
  out.states = static_cast<std::uint64_t>(sqlite3_changes64(db_.get()));
  StmtPtr jobs = prepare("DELETE FROM failure_jobs WHERE created < ?1", &err);
  if (!jobs) {
    rollback();
    return unexpected(StoreError{err});
  }
  sqlite3_bind_int64(jobs.get(), 1, before_day * kSecondsPerDay);
  if (sqlite3_step(jobs.get()) != SQLITE_DONE) {
    StoreError e = store_error("expire");
    rollback();
    return unexpected(e);
  }
  if (auto e = exec("COMMIT", "commit")) {
    rollback();
    return unexpected(StoreError{*e});
  }
  return out;
}

}  // namespace

Expected<std::shared_ptr<Store>, std::string> open_store(std::string_view uri) {
  if (uri == "none") return std::shared_ptr<Store>();
  constexpr std::string_view kSqlite = "sqlite:";
  if (uri.substr(0, kSqlite.size()) == kSqlite) return SqliteStore::open(std::string(uri.substr(kSqlite.size())));
  return unexpected("ReportStore '" + std::string(uri.substr(0, 200)) +
                    "': unknown scheme (use none or sqlite:/absolute/path)");
}

std::optional<std::string> create_v1_database(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
  std::string sql = std::string("BEGIN;") + "CREATE TABLE schema_version (version INTEGER NOT NULL);" +
                    kMigrations[0] + "INSERT INTO schema_version VALUES (1);" +
                    "INSERT INTO agg_rows (policy_domain, day, row_key, policy, rua, source_ip, header_from,"
                    " envelope_from, envelope_to, result, requested, disposition, dkim_alignment, spf_alignment,"
                    " action, overrides, dkim, spf, count) VALUES ('example.com', 20000, 'k1',"
                    " 'reject\t\t\tr\tr\t100\t0\tn\tu\ttreewalk', 'mailto:d@example.com', '192.0.2.1',"
                    " 'example.com', 'example.com', 'example.net', 'pass', 'none', 'none', 'pass', 'pass',"
                    " 'accept', '', 'example.com\tsel\tpass', 'example.com\tmfrom\tpass', 7);"
                    "COMMIT;";
  char* msg = nullptr;
  if (sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = path + ": " + (msg ? msg : "error");
    sqlite3_free(msg);
    return m;
  }
  return std::nullopt;
}

}  // namespace dmarc
