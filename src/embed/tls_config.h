// etcd's TLS flags: their registration, the checks etcd makes before it serves, and the
// tls::Options each side (client port, peer port) gets from them. See docs/tls.md.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "embed/config.h"
#include "embed/flag_set.h"
#include "tls/context.h"
#include "tls/options.h"

namespace dolmen::embed {

void RegisterTlsFlags(FlagSet* f, Config* c);
// After the URL lists are parsed: refuses what etcd refuses (an https client URL without a
// certificate, bad versions or cipher names) with etcd's message, and what this build does not
// serve yet.
Status ValidateTls(const FlagSet& flags, const Config& c);
tls::Options ClientTlsOptions(const Config& c);

using LogFn = std::function<void(const std::string&)>;

// The client port's server context, or null when no client URL is https. With --auto-tls and
// no --cert-file, the certificate is the self-signed one under <data-dir>/fixtures/client
// (made, reused or renewed here; re-checked for renewal hourly while serving).
Result<std::shared_ptr<tls::ReloadingContext>> NewClientTlsContext(const Config& c, LogFn log);
// --peer-auto-tls: the self-signed peer certificate under <data-dir>/fixtures/peer, made as
// etcd makes it even though peer URLs are http in this version (etcd then warns that it ignores
// it, and so do we).
Status PreparePeerAutoTls(const Config& c, LogFn log);

}  // namespace dolmen::embed
