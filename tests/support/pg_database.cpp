#include "support/pg_database.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <unistd.h>

namespace conclave::test {
namespace {

// Runs a shell command, returning its standard output; throws when it fails.
std::string run(const std::string& command) {
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) {
        throw std::runtime_error("cannot run: " + command);
    }
    std::string out;
    std::array<char, 4096> buf{};
    while (auto n = fread(buf.data(), 1, buf.size(), pipe)) {
        out.append(buf.data(), n);
    }
    if (pclose(pipe) != 0) {
        throw std::runtime_error("failed: " + command + "\n" + out);
    }
    return out;
}

// Single-quoted for the shell.
std::string quoted(const std::string& s) {
    std::string out = "'";
    for (char ch : s) {
        out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    }
    return out + "'";
}

}  // namespace

pg_database::pg_database() {
    const char* url = std::getenv("CONCLAVE_TEST_PG_URL");
    if (url == nullptr || *url == '\0') {
        throw std::runtime_error(
            "CONCLAVE_TEST_PG_URL is not set: run the tests through scripts/with-postgres.sh "
            "(make test does)"
        );
    }
    admin_url_ = url;
    static std::atomic<int> counter{0};
    name_ = "conclave_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    const auto slash = admin_url_.rfind('/');
    url_ = admin_url_.substr(0, slash + 1) + name_;
    run("psql -qAt " + quoted(admin_url_) + " -c " + quoted("CREATE DATABASE " + name_));
}

pg_database::~pg_database() {
    try {
        run("psql -qAt " + quoted(admin_url_) + " -c " +
            quoted("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)"));
    } catch (const std::exception&) {
        // Left for the throwaway server's removal.
    }
}

std::string pg_database::query(const std::string& sql) const {
    return run("psql -qAt " + quoted(url_) + " -c " + quoted(sql));
}

std::string pg_database::admin_query(const std::string& sql) const {
    return run("psql -qAt " + quoted(admin_url_) + " -c " + quoted(sql));
}

}  // namespace conclave::test
