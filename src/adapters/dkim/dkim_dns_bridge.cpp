// dkim_dns_bridge.cpp - libopendkim DNS callbacks onto our Resolver (see the header)
#include "adapters/dkim/dkim_dns_bridge.hpp"

#include <ldns/ldns.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>

#include "adapters/dkim/dkim_key_record.hpp"
#include "adapters/dkim/dkim_tags.hpp"

namespace dmarc::dkim {

namespace {

thread_local KeyLog* t_key_log = nullptr;

using LdnsPkt = CHandle<ldns_pkt, ldns_pkt_free>;
using LdnsRr = CHandle<ldns_rr, ldns_rr_free>;
using LdnsRdf = CHandle<ldns_rdf, ldns_rdf_deep_free>;
void free_bytes(uint8_t* p) noexcept { std::free(p); }
using LdnsWire = CHandle<uint8_t, free_bytes>;

constexpr int kTypeTxt = 16;  // RFC 1035 3.2.2

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// PendingQuery - one answered query, between _start and _cancel.
struct PendingQuery {
  bool failed = false;  // _waitreply reports DKIM_DNS_ERROR
  std::size_t bytes = 0;
};

// prepare_answer - refuse or adjust an Ok answer before libopendkim reads
// it; note the key type (k=, RFC 6376 3.6.1: "rsa" when absent).
// Prepared - prepare_key_record() of one record and its k= (rsa when absent).
struct Prepared {
  bool ok = false;
  std::string text;  // the record for libopendkim, or why it is refused
  std::string key_type;
};

// prepared - Prepared for RECORD, remembered per record text: the same key
// record comes back with every message of its signer, and checking it
// (tag-list, base64 of p=, the DER walk) cost more than all of DMARC. The
// text is DNS data: only records short enough to be used (kMaxKeyRecord)
// are remembered, so at most 4096 x 1 KiB; a longer one is refused by
// prepare_key_record() after a length check anyway.
Prepared prepared(const std::string& record) {
  static std::mutex mutex;
  static auto* memo = new std::unordered_map<std::string, Prepared>();  // never destroyed
  if (record.size() > kMaxKeyRecord) return Prepared{false, prepare_key_record(record).error(), {}};
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = memo->find(record);
    if (it != memo->end()) return it->second;
  }
  Prepared p;
  auto r = prepare_key_record(record);
  if (!r) {
    p.text = r.error();
  } else {
    p.ok = true;
    p.text = std::move(*r);
    auto tags = parse_tag_list(p.text);
    if (tags) p.key_type = tags->get("k") ? strip_fws(*tags->get("k")) : std::string("rsa");
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (memo->size() >= 4096) memo->clear();
  memo->emplace(record, p);
  return p;
}

std::string prepare_answer(DnsAnswer& answer, KeyLookup& lookup) {
  if (answer.records.size() == 1) {
    Prepared p = prepared(answer.records.front());
    if (!p.ok) return p.text;
    lookup.record = p.text;
    answer.records.front() = std::move(p.text);
    if (!p.key_type.empty()) lookup.key_type = std::move(p.key_type);
    return {};
  }
  for (const auto& rec : answer.records) {
    // libopendkim handles the record as a C string: a NUL would cut it short.
    if (rec.find('\0') != std::string::npos) return "key record contains a NUL byte";
    if (rec.size() > kMaxKeyRecord)
      return "key record longer than " + std::to_string(kMaxKeyRecord) + " octets";
  }
  return {};
}

// start - dkim_dns_set_query_start callback: resolve now, keep the reply.
int start(void* srv, int type, unsigned char* query, unsigned char* buf, size_t buflen, void** qh) {
  try {
    auto* bridge = static_cast<DnsBridge*>(srv);
    if (bridge == nullptr || query == nullptr || buf == nullptr || qh == nullptr) return DKIM_DNS_INVALID;
    std::string name(reinterpret_cast<const char*>(query));
    auto pending = std::make_unique<PendingQuery>();
    KeyQuery logged;
    logged.name = lower(name);

    if (type != kTypeTxt) {
      logged.lookup.status = DnsStatus::PermFail;
      logged.lookup.refused = "unexpected query type";
    } else if (!valid_key_name(name)) {
      // RFC 6376 3.1, 3.5: s= and d= are sub-domain sequences.
      logged.lookup.status = DnsStatus::PermFail;
      logged.lookup.refused = "invalid key name (s= or d= is not a domain name)";
    } else {
      DnsAnswer answer = bridge->resolver().query(name, RRType::TXT);
      logged.lookup.status = answer.status;
      logged.lookup.why = answer.why;
      if (answer.status == DnsStatus::Ok) {
        std::string refused = prepare_answer(answer, logged.lookup);
        if (!refused.empty()) {
          logged.lookup.status = DnsStatus::PermFail;
          logged.lookup.refused = std::move(refused);
        }
      }
      if (logged.lookup.refused.empty() &&
          (answer.status == DnsStatus::Ok || answer.status == DnsStatus::NxDomain ||
           answer.status == DnsStatus::NoData)) {
        std::vector<unsigned char> wire = build_txt_reply(name, answer);
        if (wire.empty() || wire.size() > buflen) {
          logged.lookup.status = DnsStatus::PermFail;
          logged.lookup.refused = wire.empty() ? "key reply could not be built" : "key reply too large";
        } else {
          std::memcpy(buf, wire.data(), wire.size());
          pending->bytes = wire.size();
        }
      }
    }
    // TempFail / PermFail (from the resolver or refused here): no reply.
    pending->failed = pending->bytes == 0;
    if (t_key_log) t_key_log->queries.push_back(std::move(logged));
    *qh = pending.release();
    return DKIM_DNS_SUCCESS;
  } catch (...) {
    // Nothing may unwind into libopendkim; it records DKIM_SIGERROR_KEYFAIL.
    return DKIM_DNS_ERROR;
  }
}

// waitreply - dkim_dns_set_query_waitreply callback: the answer is ready.
int waitreply(void* /*srv*/, void* qh, struct timeval* /*timeout*/, size_t* bytes, int* error, int* dnssec) {
  auto* pending = static_cast<PendingQuery*>(qh);
  if (pending == nullptr) return DKIM_DNS_INVALID;
  if (dnssec) *dnssec = DKIM_DNSSEC_UNKNOWN;
  if (pending->failed) {
    if (error) *error = 0;
    return DKIM_DNS_ERROR;
  }
  if (bytes) *bytes = pending->bytes;
  if (error) *error = 0;
  return DKIM_DNS_SUCCESS;
}

// cancel - dkim_dns_set_query_cancel callback: forget the query.
int cancel(void* /*srv*/, void* qh) {
  delete static_cast<PendingQuery*>(qh);
  return 0;
}

// The service handle is ours: libopendkim must neither create nor free it.
int init_noop(void** /*srv*/) { return 0; }
void close_noop(void* /*srv*/) {}

}  // namespace

const KeyQuery* KeyLog::find(const std::string& name) const {
  std::string key = lower(name);
  for (auto it = queries.rbegin(); it != queries.rend(); ++it)
    if (it->name == key) return &*it;
  return nullptr;
}

KeyLogScope::KeyLogScope(KeyLog& log) noexcept : previous_(t_key_log) { t_key_log = &log; }
KeyLogScope::~KeyLogScope() { t_key_log = previous_; }

void install_dns_bridge(DKIM_LIB* lib, DnsBridge* bridge) noexcept {
  dkim_dns_set_query_service(lib, bridge);
  dkim_dns_set_init(lib, init_noop);
  dkim_dns_set_close(lib, close_noop);
  dkim_dns_set_query_start(lib, start);
  dkim_dns_set_query_waitreply(lib, waitreply);
  dkim_dns_set_query_cancel(lib, cancel);
}

// build_txt_reply - RFC 1035 4.1 reply: header, question, TXT answers
std::vector<unsigned char> build_txt_reply(const std::string& qname, const DnsAnswer& answer) {
  LdnsRdf owner(ldns_dname_new_frm_str(qname.c_str()));
  LdnsPkt pkt(ldns_pkt_new());
  if (!owner || !pkt) return {};
  ldns_pkt_set_qr(pkt.get(), true);
  ldns_pkt_set_rd(pkt.get(), true);
  ldns_pkt_set_ra(pkt.get(), true);
  ldns_pkt_set_rcode(pkt.get(), answer.status == DnsStatus::NxDomain ? LDNS_RCODE_NXDOMAIN : LDNS_RCODE_NOERROR);

  LdnsRr question(ldns_rr_new());
  if (!question) return {};
  ldns_rr_set_owner(question.get(), ldns_rdf_clone(owner.get()));
  ldns_rr_set_type(question.get(), LDNS_RR_TYPE_TXT);
  ldns_rr_set_class(question.get(), LDNS_RR_CLASS_IN);
  ldns_rr_set_question(question.get(), true);
  if (!ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_QUESTION, question.get())) return {};
  question.release();  // owned by pkt now

  if (answer.status == DnsStatus::Ok) {
    for (const auto& rec : answer.records) {
      LdnsRr rr(ldns_rr_new());
      if (!rr) return {};
      ldns_rr_set_owner(rr.get(), ldns_rdf_clone(owner.get()));
      ldns_rr_set_type(rr.get(), LDNS_RR_TYPE_TXT);
      ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
      ldns_rr_set_ttl(rr.get(), answer.ttl);
      // RFC 1035 3.3.14: TXT-DATA is one or more <character-string>s of at
      // most 255 octets; libopendkim concatenates them (RFC 6376 3.6.2.2).
      std::size_t off = 0;
      do {
        std::size_t len = std::min<std::size_t>(255, rec.size() - off);
        unsigned char chunk[256];
        chunk[0] = static_cast<unsigned char>(len);
        std::memcpy(chunk + 1, rec.data() + off, len);
        ldns_rdf* rdf = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, len + 1, chunk);
        if (!rdf || !ldns_rr_push_rdf(rr.get(), rdf)) {
          if (rdf) ldns_rdf_deep_free(rdf);
          return {};
        }
        off += len;
      } while (off < rec.size());
      if (!ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_ANSWER, rr.get())) return {};
      rr.release();
    }
  }

  uint8_t* raw = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&raw, pkt.get(), &size) != LDNS_STATUS_OK) {
    std::free(raw);
    return {};
  }
  LdnsWire wire(raw);
  return std::vector<unsigned char>(wire.get(), wire.get() + size);
}

}  // namespace dmarc::dkim
