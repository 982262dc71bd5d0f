#pragma once

namespace dolmen {

// Dolmen's own release.
inline constexpr const char* kDolmenVersion = "0.1.0";

}  // namespace dolmen
