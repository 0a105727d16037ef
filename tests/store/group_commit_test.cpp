#include "store/sqlite/group_commit.hpp"

#include <atomic>

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>

#include <gtest/gtest.h>

#include "store/sqlite/migrations.hpp"
#include "support/run_coro.hpp"
#include "support/temp_dir.hpp"

namespace conclave::store::sqlite {
namespace {

class GroupCommitTest : public ::testing::Test {
protected:
    void SetUp() override {
        connection db(dir_.file("gc.db"));
        migrate(db);
    }
    test::temp_dir dir_;
};

// Many concurrent writers must share transactions (one fsync per batch, not per write).
TEST_F(GroupCommitTest, ConcurrentWritesShareTransactions) {
    writer w(dir_.file("gc.db"), 4096);
    constexpr int writes = 400;
    std::atomic<int> done{0};
    test::run_coro(
        [&](auto& ioc) -> net::awaitable<void> {
            for (int idx = 0; idx < writes; ++idx) {
                auto one = [&w, &done, idx]() -> net::awaitable<void> {
                    std::function<int(write_txn&)> fn = [idx](write_txn& txn) {
                        txn.append("bench:t" + std::to_string(idx % 7), "tick", "{}", 1);
                        return idx;
                    };
                    auto task = w.submit<int>(std::move(fn));
                    const int value = co_await std::move(task);
                    EXPECT_EQ(value, idx);
                    ++done;
                };
                net::co_spawn(net::make_strand(ioc), std::move(one), net::detached);
            }
            co_return;
        },
        4
    );
    EXPECT_EQ(done.load(), writes);
    EXPECT_LT(w.batches_committed(), static_cast<std::uint64_t>(writes) / 4)
        << "writes waiting together are committed together";
}

// A plain write that throws after writing rolls back its whole batch; with a savepoint only
// its own changes go.
TEST_F(GroupCommitTest, FailedWriteRollsBackOnlyWhatItMust) {
    writer w(dir_.file("gc.db"), 4096);
    test::run_coro([&](auto&) -> net::awaitable<void> {
        std::function<int(write_txn&)> bad = [](write_txn& txn) -> int {
            txn.append("t:a", "x", "{}", 1);
            throw std::runtime_error("boom");
        };
        auto failing = w.submit<int>(bad, writer::mode::with_savepoint);
        EXPECT_THROW(co_await std::move(failing), std::runtime_error);
        std::function<int(write_txn&)> good = [](write_txn& txn) {
            return static_cast<int>(txn.append("t:a", "x", "{}", 1).offset);
        };
        auto ok = w.submit<int>(good);
        EXPECT_EQ(co_await std::move(ok), 1)
            << "the rolled-back offset is handed out again: no gap";
    });
}

}  // namespace
}  // namespace conclave::store::sqlite
