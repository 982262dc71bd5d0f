// etcdserverpb.RangeResponse in the protobuf wire format, written straight from the stored
// records of an mvcc::EncodedRange. A list of a large prefix (Kubernetes lists whole prefixes)
// then costs one copy of its values, from the backend into the reply's bytes, instead of a
// decode into mvcc::KeyValue, a copy into mvccpb.KeyValue messages and protobuf's
// serialization (issue 18, docs/benchmarks.md "Mixed workload"). The stored records are
// mvccpb.KeyValue's own encoding (docs/formats/mvcc.md), so each becomes one `kvs` entry as is.
#pragma once

#include <string>

#include "etcdserverpb/rpc.pb.h"
#include "mvcc/store.h"

namespace dolmen::server {

// Fields in protobuf's order (header 1, kvs 2, more 3, count 4), proto3 defaults left out, so
// the bytes parse to the same RangeResponse that ToRangeResponse would fill.
std::string EncodeRangeResponse(const etcdserverpb::ResponseHeader& header,
                                const mvcc::EncodedRange& range);

}  // namespace dolmen::server
