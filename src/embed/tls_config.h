// etcd's TLS flags: their registration, the checks etcd makes before it serves, and the
// tls::Options each side (client port, peer port) gets from them. See docs/tls.md.
#pragma once

#include "base/status.h"
#include "embed/config.h"
#include "embed/flag_set.h"
#include "tls/options.h"

namespace dolmen::embed {

void RegisterTlsFlags(FlagSet* f, Config* c);
// After the URL lists are parsed: refuses what etcd refuses (an https client URL without a
// certificate, bad versions or cipher names) with etcd's message, and what this build does not
// serve yet.
Status ValidateTls(const FlagSet& flags, const Config& c);
tls::Options ClientTlsOptions(const Config& c);

}  // namespace dolmen::embed
