#include "http/gateway_json.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>

namespace dolmen::http::gateway {
namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The end of the JSON value starting at `begin` (not whitespace), or npos when the text ends
// first. Only the nesting is followed: the value's own syntax is the parser's to check.
size_t ValueEnd(std::string_view text, size_t begin) {
  const char first = text[begin];
  if (first == '"') {
    for (size_t i = begin + 1; i < text.size(); ++i) {
      if (text[i] == '\\') {
        ++i;
      } else if (text[i] == '"') {
        return i + 1;
      }
    }
    return std::string_view::npos;
  }
  if (first != '{' && first != '[') {
    // A bare literal (number, true, null ...): up to the next delimiter.
    size_t i = begin;
    while (i < text.size() && !IsJsonSpace(text[i]) && text[i] != '{' && text[i] != '[' &&
           text[i] != '"') {
      ++i;
    }
    return i;
  }
  int depth = 0;
  bool in_string = false;
  for (size_t i = begin; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace

Status ParseJson(std::string_view json, google::protobuf::Message* message) {
  size_t first = 0;
  while (first < json.size() && IsJsonSpace(json[first])) ++first;
  if (first == json.size()) return OkStatus();  // no body: the empty request
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // grpc-gateway's AllowUnknownFields
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message, options);
  if (!status.ok()) {
    return Status(Code::kInvalidArgument, std::string(status.message()));
  }
  return OkStatus();
}

std::string PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;  // jsonpb's OrigName
  options.always_print_primitive_fields = false;
  std::string out;
  // Printing a well-formed message cannot fail; an empty object is the safe answer if it did.
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

Status SplitJsonValues(std::string_view body, std::vector<std::string_view>* values) {
  size_t at = 0;
  while (true) {
    while (at < body.size() && IsJsonSpace(body[at])) ++at;
    if (at == body.size()) return OkStatus();
    const size_t end = ValueEnd(body, at);
    if (end == std::string_view::npos) return Status(Code::kInvalidArgument, "unexpected EOF");
    values->push_back(body.substr(at, end - at));
    at = end;
  }
}

int HttpStatusFromGrpcCode(int grpc_code) {
  switch (grpc_code) {
    case 0:  // OK
      return 200;
    case 1:  // CANCELLED
      return 408;
    case 2:  // UNKNOWN
      return 500;
    case 3:  // INVALID_ARGUMENT
      return 400;
    case 4:  // DEADLINE_EXCEEDED
      return 504;
    case 5:  // NOT_FOUND
      return 404;
    case 6:  // ALREADY_EXISTS
      return 409;
    case 7:  // PERMISSION_DENIED
      return 403;
    case 16:  // UNAUTHENTICATED
      return 401;
    case 8:  // RESOURCE_EXHAUSTED
      return 429;
    case 9:  // FAILED_PRECONDITION: 412 in grpc-gateway v1.6 (later versions say 400)
      return 412;
    case 10:  // ABORTED
      return 409;
    case 11:  // OUT_OF_RANGE
      return 400;
    case 12:  // UNIMPLEMENTED
      return 501;
    case 13:  // INTERNAL
      return 500;
    case 14:  // UNAVAILABLE
      return 503;
    case 15:  // DATA_LOSS
      return 500;
    default:
      return 500;
  }
}

const char* HttpStatusText(int http_status) {
  switch (http_status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Request Entity Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string ErrorBody(int grpc_code, std::string_view message) {
  const std::string m = JsonString(message);
  return "{\"error\":" + m + ",\"message\":" + m + ",\"code\":" + std::to_string(grpc_code) + "}";
}

std::string StreamErrorChunk(int grpc_code, std::string_view message) {
  const int http = HttpStatusFromGrpcCode(grpc_code);
  return "{\"error\":{\"grpc_code\":" + std::to_string(grpc_code) +
         ",\"http_code\":" + std::to_string(http) + ",\"message\":" + JsonString(message) +
         ",\"http_status\":" + JsonString(HttpStatusText(http)) + "}}";
}

std::string StreamResultChunk(const google::protobuf::Message& message) {
  return "{\"result\":" + PrintJson(message) + "}";
}

}  // namespace dolmen::http::gateway
