// NAME
//   sqlite_store - the embedded Store: SQLite in WAL mode, versioned schema
// SYNOPSIS
//   auto s = dmarc::open_store("sqlite:/var/lib/dmarc-milter/reports.db");
//   if (!s) die(s.error());            // names the file and what is wrong
//   std::shared_ptr<dmarc::Store> store = s.value();   // null for "none"
// DESCRIPTION
//   open_store(URI) opens the ReportStore: "none" gives a null pointer (no
//   recording), "sqlite:/abs/path" the SQLite store, another scheme an
//   error (postgresql:// comes with the fleet issue). The SQLite store:
//     - creates the file (and nothing else) when missing, mode 0640;
//     - journal_mode=WAL, synchronous=NORMAL, busy_timeout 5 s, foreign
//       keys on;
//     - a schema_version table; migrations run in order at open, each in
//       its own transaction, up to kSchemaVersion; a database newer than
//       this program is refused;
//     - a file that is not a database (or is corrupt: quick_check) is an
//       error naming the file.
//   Tables (version 5; agg_rows.list_id since 5): agg_rows (policy_domain, day, row_key unique; the
//   key fields as columns; count; last_seen), report_state (policy_domain,
//   begin, end_, destination primary key; status, attempts, last_error,
//   report_id, updated), failure_jobs (version 3: id, created,
//   reported_domain, policy_domain, ruf, feedback fields, original,
//   whole_message, status, attempts, last_error, updated; version 4: kind,
//   text). Version 1 had
//   no last_seen column; the migration from it is tested
//   (create_v1_database).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/store.hpp"

namespace dmarc {

inline constexpr int kSchemaVersion = 5;

Expected<std::shared_ptr<Store>, std::string> open_store(std::string_view uri);

// create_v1_database - a database at PATH with the first schema version
// and its rows, for the migration test (and nothing else).
std::optional<std::string> create_v1_database(const std::string& path);

}  // namespace dmarc
