// web/assets.hpp: the browser UI's files, embedded in the binary at build time.
//
// The build embeds every file of web/dist (`vite build`'s output; CMake cache variable
// CONCLAVE_WEB_DIST) or, when it has no index.html, a placeholder index.html that says how to
// build the UI. Nothing is read from the filesystem at run time. The table is immutable:
// safe to read from any thread.
#pragma once

#include <span>
#include <string_view>
#include <vector>

namespace conclave::web {

struct asset {
    std::string_view path;  // relative to web/dist: "index.html", "assets/index-1a2b.js"
    std::string_view content_type;
    std::string_view data;
    std::string_view etag;  // a strong ETag, quotes included
};

// Every embedded file, sorted by path.
std::span<const asset> assets();

// The file at `path` (relative, no leading '/'), or nullptr.
const asset* find_asset(std::string_view path);

// index.html (always present: the UI's or the placeholder).
const asset& index_html();

// False when the placeholder was embedded instead of a built UI.
bool ui_built();

// Where the embedded files came from, for the start-up log.
std::string_view assets_origin();

// The Content-Type for a file name, by extension; application/octet-stream when unknown.
std::string_view content_type_of(std::string_view path);

}  // namespace conclave::web
