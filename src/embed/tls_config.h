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
#include "transport/transport.h"

namespace dolmen::embed {

void RegisterTlsFlags(FlagSet* f, Config* c);
// After the URL lists are parsed: refuses what etcd refuses (an https client, metrics or peer
// URL without a certificate, bad versions or cipher names, both an allowed CN and an allowed
// hostname) with etcd's message.
Status ValidateTls(const FlagSet& flags, const Config& c);
tls::Options ClientTlsOptions(const Config& c);
// The --peer-* TLS flags (and the shared cipher and version flags) as tls::Options.
tls::Options PeerTlsOptions(const Config& c);

using LogFn = std::function<void(const std::string&)>;

// The client port's server context, also that of https --listen-metrics-urls (as etcd's), or
// null when no client or metrics URL is https. With --auto-tls and no --cert-file, the
// certificate is the self-signed one under <data-dir>/fixtures/client (made, reused or renewed
// here; re-checked for renewal hourly while serving; it names the client URLs' hosts only, as
// etcd's).
Result<std::shared_ptr<tls::ReloadingContext>> NewClientTlsContext(const Config& c, LogFn log);
// TLS between members (docs/tls.md): the --peer-* files, or with --peer-auto-tls and no
// --peer-cert-file the self-signed certificate under <data-dir>/fixtures/peer (made, reused
// or renewed here, as the client side's; peers then skip verifying it, as etcd's do). Logs, as
// etcd, that an http peer URL ignores the TLS settings.
Result<transport::TlsOptions> NewPeerTls(const Config& c, LogFn log);

}  // namespace dolmen::embed
