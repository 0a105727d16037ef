#include "core/ids.hpp"

#include <set>

#include <gtest/gtest.h>

#include "core/clock.hpp"

namespace conclave {
namespace {

TEST(IdsTest, UuidV7IsCanonicalVersioned7AndTimeOrdered) {
    const auto a = new_uuid_v7(1'700'000'000'000);
    const auto b = new_uuid_v7(1'700'000'000'001);
    EXPECT_TRUE(is_uuid(a));
    EXPECT_EQ(a[14], '7');
    EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b') << "RFC 9562 variant";
    EXPECT_LT(a, b);
    EXPECT_EQ(a.substr(0, 8), "018bcfe5");
}

TEST(IdsTest, IdsAndTokensAreUnique) {
    std::set<std::string> ids, tokens;
    for (int idx = 0; idx < 1000; ++idx) {
        ids.insert(new_uuid_v7(1));
        tokens.insert(random_token());
    }
    EXPECT_EQ(ids.size(), 1000U);
    EXPECT_EQ(tokens.size(), 1000U);
    EXPECT_EQ(random_token().size(), 32U);
}

TEST(IdsTest, IsUuidRejectsOtherStrings) {
    EXPECT_FALSE(is_uuid(""));
    EXPECT_FALSE(is_uuid("not-a-uuid"));
    EXPECT_FALSE(is_uuid("0192ffff-0000-7000-8000-00000000000G"));
}

TEST(ClockTest, FormatsRfc3339Utc) {
    EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_time(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
    manual_clock c(5);
    c.advance(10);
    EXPECT_EQ(c.now(), 15);
}

}  // namespace
}  // namespace conclave
