// tests/store/store_contract.hpp: the one behaviour suite every store backend must pass.
// A backend's test file instantiates it with a factory (see sqlite_store_test.cpp).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "store/store.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {

// Makes a fresh, empty store whose files (if any) live under `dir`.
using store_factory = std::function<std::unique_ptr<store::store>(const temp_dir& dir)>;

struct store_backend {
    std::string name;
    store_factory make;
};

// Prints a backend as its name in test output.
inline void PrintTo(const store_backend& backend, std::ostream* os) {
    *os << backend.name;
}

inline std::string backend_name(const ::testing::TestParamInfo<store_backend>& info) {
    return info.param.name;
}

class StoreContract : public ::testing::TestWithParam<store_backend> {
protected:
    void SetUp() override { db_ = GetParam().make(dir_); }
    void TearDown() override { db_.reset(); }
    store::store& db() { return *db_; }
    // Re-opens the store on the same files (a restart).
    void reopen() {
        db_.reset();
        db_ = GetParam().make(dir_);
    }

    temp_dir dir_;
    std::unique_ptr<store::store> db_;
};

}  // namespace conclave::test
