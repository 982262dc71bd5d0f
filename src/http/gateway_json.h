#pragma once

// The JSON side of the gateway (docs/http.md, "JSON gateway"): etcd 3.4's grpc-gateway (v1.6)
// marshals with golang/protobuf's jsonpb, OrigName on and EmitDefaults off, and decodes with
// unknown fields allowed. Protobuf's own JSON mapping gives the same text: field names as the
// .proto writes them (`create_revision`, `ID`, `dbSize`), 64-bit integers as strings, bytes as
// standard base64, enums by name, fields at their default left out. Everything here is pure
// (no I/O, no gRPC), so it is unit-tested on its own (gateway_json_test.cc).

#include <google/protobuf/message.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dolmen::http::gateway {

// Fills `message` from one JSON object; an empty or all-whitespace text leaves it empty, as
// the gateway takes a missing body (io.EOF) for an empty request. kInvalidArgument with the
// parser's reason otherwise.
Status ParseJson(std::string_view json, google::protobuf::Message* message);

// The message as etcd's gateway writes it (compact, no trailing newline).
std::string PrintJson(const google::protobuf::Message& message);

// Go's json.Decoder over a stream body: the successive JSON values, whitespace between them
// ignored. A value cut short at the end is an error ("unexpected EOF", Go's text); `values`
// then holds the whole ones before it.
Status SplitJsonValues(std::string_view body, std::vector<std::string_view>* values);

// grpc-gateway's HTTPStatusFromCode (runtime/errors.go, v1.6) for a gRPC status code number.
int HttpStatusFromGrpcCode(int grpc_code);

// The body grpc-gateway's DefaultHTTPError writes: {"error":m,"message":m,"code":c}.
std::string ErrorBody(int grpc_code, std::string_view message);

// The chunk a stream ends with when it fails: {"error":{"grpc_code":c,"http_code":h,
// "message":m,"http_status":"<Go's status text>"}} (runtime/handler.go's streamChunk).
std::string StreamErrorChunk(int grpc_code, std::string_view message);

// A stream's message chunk: {"result":<message>}.
std::string StreamResultChunk(const google::protobuf::Message& message);

// `text` as a JSON string literal the way Go's encoding/json writes it (<, > and & escaped).
std::string JsonString(std::string_view text);

// Go's http.StatusText for the codes the gateway uses ("" for others).
const char* HttpStatusText(int http_status);

}  // namespace dolmen::http::gateway
