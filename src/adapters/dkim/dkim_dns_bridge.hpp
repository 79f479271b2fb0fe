// NAME
//   dkim_dns_bridge - libopendkim key queries answered by our Resolver
// STANDARDS
//   RFC 6376 3.6.2 (key records in DNS TXT), 6.1.2 (key retrieval
//   failures); RFC 1035 4.1 (message format, RCODE)
// DESCRIPTION
//   install_dns_bridge() points a DKIM_LIB's dkim_dns_set_query_service /
//   _start / _waitreply / _cancel (and a no-op init/close) at a DnsBridge.
//   libopendkim then asks the bridge for "selector._domainkey.domain" TXT
//   and parses what it gets back as a DNS wire message (ns_initparse style:
//   header, the question echoed, answer records). The bridge:
//     - refuses a name that is not LDH/underscore labels (valid_key_name)
//       without asking the resolver (a d= like "good.com(.evil.com")
//     - asks the Resolver synchronously in query_start
//     - Ok        a NOERROR reply, one TXT RR per record, each record cut
//                 into 255-octet character-strings (RFC 1035 3.3.14);
//                 a single record goes through prepare_key_record() first
//                 (refused: NUL byte, too long, not a tag-list; PKCS#1
//                 p= re-encoded), several are only checked for NUL and
//                 length (libopendkim refuses them: MULTIREPLY)
//     - NxDomain  an NXDOMAIN reply: libopendkim says DKIM_STAT_NOKEY
//     - NoData    a NOERROR reply without answers: also NOKEY
//     - TempFail, PermFail: no reply at all; _waitreply says DKIM_DNS_ERROR
//                 and libopendkim records DKIM_SIGERROR_KEYFAIL. (A SERVFAIL
//                 reply would not do: libopendkim reads no RCODE but
//                 NXDOMAIN and would call it "no key", a permanent error.)
//   Every query is logged in the message's KeyLog (see KeyLogScope) with
//   the resolver's status and why, so classify_signature() can tell a
//   temporary failure from a permanent one through dns_error_kind().
//   The wire message is built with ldns (ldns_pkt, ldns_pkt2wire).
// THREADING
//   The bridge is shared by all threads through the DKIM_LIB; it has no
//   mutable state of its own. The Resolver must be thread-safe when
//   messages are verified in several threads. The KeyLog of the message
//   being verified is found through a thread_local pointer set by
//   KeyLogScope around dkim_eoh()/dkim_eom(), which run the key queries
//   synchronously on the calling thread.
// DIAGNOSTICS
//   The callbacks never throw (they are called from C); any exception,
//   std::bad_alloc included, becomes DKIM_DNS_ERROR.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "adapters/dkim/dkim_handles.hpp"
#include "adapters/dkim/dkim_key_record.hpp"
#include "adapters/dkim/dkim_result.hpp"
#include "dmarc/core/dns.hpp"

namespace dmarc::dkim {

struct KeyQuery {
  std::string name;  // lower case, no trailing dot
  KeyLookup lookup;
};

struct KeyLog {
  std::vector<KeyQuery> queries;
  // find - the last query for NAME (case-insensitive), or nullptr.
  const KeyQuery* find(const std::string& name) const;
};

// KeyLogScope - while alive, the bridge logs this thread's queries in LOG.
class KeyLogScope {
 public:
  explicit KeyLogScope(KeyLog& log) noexcept;
  ~KeyLogScope();
  KeyLogScope(const KeyLogScope&) = delete;
  KeyLogScope& operator=(const KeyLogScope&) = delete;

 private:
  KeyLog* previous_;
};

class DnsBridge {
 public:
  explicit DnsBridge(Resolver& resolver) noexcept : resolver_(resolver) {}
  Resolver& resolver() const noexcept { return resolver_; }

 private:
  Resolver& resolver_;
};

// install_dns_bridge - route LIB's DNS queries to BRIDGE (which must
// outlive LIB).
void install_dns_bridge(DKIM_LIB* lib, DnsBridge* bridge) noexcept;

// build_txt_reply - the wire message for QNAME TXT with ANSWER (Ok,
// NxDomain or NoData). Empty when ldns fails or a name is unusable.
std::vector<unsigned char> build_txt_reply(const std::string& qname, const DnsAnswer& answer);

}  // namespace dmarc::dkim
