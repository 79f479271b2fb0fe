// Placeholder until the DKIM adapter lands (issue 3); replaced by dkim_verifier.cpp.
#include "dmarc/adapters/dkim.hpp"
