#include "web/assets.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "core/error.hpp"
#include "web/embedded.hpp"

namespace conclave::web {
namespace {

std::vector<asset> make_table() {
    std::vector<asset> out;
    for (const auto& f : detail::embedded_files()) {
        const auto size = static_cast<std::size_t>(f.end - f.begin);
        out.push_back(asset{
            .path = f.path,
            .content_type = content_type_of(f.path),
            .data = std::string_view(reinterpret_cast<const char*>(f.begin), size),
            .etag = f.etag,
        });
    }
    std::sort(out.begin(), out.end(), [](const asset& a, const asset& b) {
        return a.path < b.path;
    });
    return out;
}

const std::vector<asset>& table() {
    static const std::vector<asset> files = make_table();
    return files;
}

}  // namespace

std::span<const asset> assets() {
    return table();
}

const asset* find_asset(std::string_view path) {
    const auto& files = table();
    auto it = std::lower_bound(files.begin(), files.end(), path, [](const asset& a, auto p) {
        return a.path < p;
    });
    return it != files.end() && it->path == path ? &*it : nullptr;
}

const asset& index_html() {
    const auto* index = find_asset("index.html");
    CONCLAVE_ASSERT(index != nullptr && "the build always embeds an index.html");
    return *index;
}

bool ui_built() {
    return !detail::embedded_placeholder();
}

std::string_view assets_origin() {
    return detail::embedded_origin();
}

std::string_view content_type_of(std::string_view path) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 18> types{{
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".map", "application/json"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
        {".txt", "text/plain; charset=utf-8"},
        {".wasm", "application/wasm"},
    }};
    for (const auto& [ext, type] : types) {
        if (path.size() > ext.size() && path.ends_with(ext)) {
            return type;
        }
    }
    return "application/octet-stream";
}

}  // namespace conclave::web
