// The WebSocket endpoint /v1/ws against the real server: job topics that end, several topics
// on one connection, unsubscribe, errors that keep the connection open, the 1009 close,
// random disconnects resumed with `after`, and kill -9.
#include <map>
#include <random>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "http/client.hpp"
#include "support/producer.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"
#include "support/ws_client.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// max_topics = 3 for the too_many_subscriptions cases; the other tests follow at most 2 topics.
std::string write_config(const temp_dir& dir) {
    return write_producer_config(dir, "[stream]\nmax_topics = 3\nqueue_bytes = 65536\n");
}

std::string field(const json::object& m, std::string_view key) {
    const auto* v = m.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string op_of(const json::object& m) {
    return field(m, "op");
}

std::int64_t int_of(const json::object& m, std::string_view key) {
    const auto* v = m.if_contains(key);
    return v != nullptr && v->is_int64() ? v->as_int64() : -1;
}

std::int64_t offset_of(const json::object& m) {
    return int_of(m, "offset");
}

std::string subscribe_text(const std::string& topic, std::int64_t after) {
    return json::serialize(json::object{{"op", "subscribe"}, {"topic", topic}, {"after", after}});
}

auto op_is(std::string op) {
    return [op = std::move(op)](const json::object& m) { return op_of(m) == op; };
}

// A ping gets a pong, and nothing comes before it.
void expect_pong(ws_client& ws) {
    ws.send(R"({"op":"ping"})");
    auto reply = ws.receive();
    ASSERT_TRUE(reply.has_value()) << "no pong; closed " << ws.closed();
    EXPECT_EQ(op_of(*reply), "pong") << json::serialize(*reply);
}

// `text` gets {"op":"error","code":code,"message":…} and the connection stays usable.
void expect_error(ws_client& ws, const std::string& text, const std::string& code) {
    SCOPED_TRACE("sent " + text);
    ws.send(text);
    auto reply = ws.receive();
    ASSERT_TRUE(reply.has_value()) << "no reply; closed " << ws.closed();
    EXPECT_EQ(op_of(*reply), "error") << json::serialize(*reply);
    EXPECT_EQ(field(*reply, "code"), code) << json::serialize(*reply);
    EXPECT_FALSE(field(*reply, "message").empty()) << json::serialize(*reply);
    EXPECT_FALSE(ws.closed());
    expect_pong(ws);
}

// Subscribes and checks the `subscribed` reply (which comes before any event of the topic).
void subscribe(ws_client& ws, const std::string& topic, std::int64_t after) {
    ws.send(subscribe_text(topic, after));
    auto reply = ws.receive();
    ASSERT_TRUE(reply.has_value()) << "no reply to subscribe " << topic;
    EXPECT_EQ(op_of(*reply), "subscribed") << json::serialize(*reply);
    EXPECT_EQ(field(*reply, "topic"), topic);
    EXPECT_EQ(reply->at("after"), after);
}

class WsTest : public ::testing::Test {
protected:
    temp_dir dir_;
    std::unique_ptr<server_process> server_ = std::make_unique<server_process>(
        dir_.file("s.db"), std::vector<std::string>{"--config", write_config(dir_)}
    );
};

TEST_F(WsTest, JobTopicReplaysEndsAndTheConnectionStaysOpen) {
    http::client c(server_->url());
    auto job = json::parse(c.post("/v1/jobs", R"({"type":"sleep","payload":{"ms":300}})").body);
    const auto topic = "job:" + std::string(job.at("id").as_string());
    ws_client ws(server_->url());
    ws.send(subscribe_text(topic, 0));
    auto got = ws.receive_until(op_is("end"), 10s);
    ASSERT_EQ(got.size(), 5U) << "subscribed, 3 events, end";
    EXPECT_EQ(op_of(got[0]), "subscribed");
    EXPECT_EQ(field(got[0], "topic"), topic);
    EXPECT_EQ(got[0].at("after"), 0);
    const char* types[] = {"job.queued", "job.started", "job.succeeded"};
    for (std::size_t idx = 0; idx < 3; ++idx) {
        const auto& e = got[idx + 1];
        EXPECT_EQ(op_of(e), "event") << json::serialize(e);
        EXPECT_EQ(field(e, "topic"), topic);
        EXPECT_EQ(offset_of(e), static_cast<std::int64_t>(idx) + 1);
        EXPECT_EQ(field(e, "type"), types[idx]);
        EXPECT_TRUE(e.contains("data"));
        EXPECT_TRUE(e.contains("time"));
    }
    EXPECT_EQ(op_of(got[4]), "end");
    EXPECT_EQ(field(got[4], "topic"), topic);
    EXPECT_EQ(field(got[4], "state"), "succeeded");
    expect_pong(ws);
    EXPECT_FALSE(ws.closed()) << "the connection outlives the job";

    // The ended topic was dropped: subscribing again is no conflict. Past the last offset
    // there is nothing to replay, only `end`.
    subscribe(ws, topic, 3);
    auto again = ws.receive();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(op_of(*again), "end") << json::serialize(*again);
    EXPECT_EQ(field(*again, "state"), "succeeded");
    expect_pong(ws);

    // And from the middle: the rest, then `end`.
    subscribe(ws, topic, 1);
    auto tail = ws.receive_until(op_is("end"), 5s);
    ASSERT_EQ(tail.size(), 3U);
    EXPECT_EQ(offset_of(tail[0]), 2);
    EXPECT_EQ(offset_of(tail[1]), 3);
    EXPECT_EQ(op_of(tail[2]), "end");
    expect_pong(ws);
}

// `end` drops the subscription (stream/ws.hpp), so a message the server handles after sending
// `end` must find the topic gone: subscribing again is no conflict and it does not count against
// max_topics, even when the client sends its messages without waiting for the replies.
// DISABLED: the server unfollows ended topics only after the whole inbox is handled (ws.cpp,
// write_loop), so pipelined messages still see the ended subscription: `conflict` and
// `too_many_subscriptions`. Enable once that is fixed.
TEST_F(WsTest, PipelinedMessagesAfterEndSeeTheTopicDropped) {
    http::client c(server_->url());
    std::vector<std::string> topics;
    for (int idx = 0; idx < 4; ++idx) {
        auto job = json::parse(c.post("/v1/jobs", R"({"type":"noop"})").body);
        topics.push_back("job:" + std::string(job.at("id").as_string()));
        ws_client wait(server_->url());  // until the job is over
        wait.send(subscribe_text(topics.back(), 0));
        auto got = wait.receive_until(op_is("end"), 5s);
        ASSERT_TRUE(!got.empty() && op_of(got.back()) == "end");
    }
    auto last_reply = [](const json::object& m) { return field(m, "id") == "last"; };

    ws_client ws(server_->url());
    ws.send(subscribe_text(topics[0], 3));
    ws.send(subscribe_text(topics[0], 3));
    ws.send(R"({"op":"ping","id":"last"})");
    auto got = ws.receive_until(last_reply, 5s);
    std::vector<std::string> ops;
    for (const auto& m : got) {
        ops.push_back(op_of(m) + (m.contains("code") ? ":" + field(m, "code") : ""));
    }
    EXPECT_EQ(ops, (std::vector<std::string>{"subscribed", "end", "subscribed", "end", "pong"}));

    // Four ended topics, max_topics = 3: none of them counts.
    ws_client many(server_->url());
    for (const auto& topic : topics) {
        many.send(subscribe_text(topic, 3));
    }
    many.send(R"({"op":"ping","id":"last"})");
    for (const auto& m : many.receive_until(last_reply, 5s)) {
        EXPECT_NE(op_of(m), "error") << json::serialize(m);
    }
}

TEST_F(WsTest, SeveralTopicsOnOneConnectionEachExactlyOnceInOrder) {
    producer pa(server_->url(), "space:a");
    producer pb(server_->url(), "space:b");
    constexpr int rounds = 20;
    constexpr int per_round = 10;
    constexpr std::int64_t total = 2 + rounds * per_round;  // queued, started, ticks
    ws_client ws(server_->url());
    // Both replays (offsets 1 and 2) and the live events: the `subscribed` replies come first
    // for their own topic, then its events.
    ws.send(subscribe_text("space:a", 0));
    ws.send(subscribe_text("space:b", 0));
    // Alternating batches, so the two topics' events reach the connection interleaved.
    std::thread writer([&] {
        for (int idx = 0; idx < rounds; ++idx) {
            pa.post(per_round);
            pb.post(per_round);
        }
    });
    std::map<std::string, std::vector<std::int64_t>> seen;
    std::set<std::string> subscribed;
    std::string previous;
    int switches = 0;
    ws.receive_until(
        [&](const json::object& m) {
            const auto topic = field(m, "topic");
            if (op_of(m) == "subscribed") {
                EXPECT_TRUE(seen[topic].empty()) << "subscribed comes first";
                EXPECT_EQ(int_of(m, "after"), 0);
                subscribed.insert(topic);
                return false;
            }
            EXPECT_EQ(op_of(m), "event") << json::serialize(m);
            EXPECT_TRUE(subscribed.contains(topic)) << json::serialize(m);
            seen[topic].push_back(offset_of(m));
            if (!previous.empty() && topic != previous) {
                ++switches;
            }
            previous = topic;
            return seen["space:a"].size() >= total && seen["space:b"].size() >= total;
        },
        15s
    );
    writer.join();
    // Nothing more (no duplicate) is pending.
    expect_pong(ws);
    EXPECT_EQ(seen.size(), 2U);
    for (const auto* topic : {"space:a", "space:b"}) {
        const auto& offsets = seen[topic];
        ASSERT_EQ(offsets.size(), static_cast<std::size_t>(total)) << topic;
        for (std::size_t idx = 0; idx < offsets.size(); ++idx) {
            ASSERT_EQ(offsets[idx], static_cast<std::int64_t>(idx) + 1)
                << topic << " position " << idx;
        }
    }
    EXPECT_GE(switches, 3) << "the topics' events came interleaved";
}

TEST_F(WsTest, LiveEventsUntilUnsubscribed) {
    producer live(server_->url(), "space:live");
    producer other(server_->url(), "space:other");
    ws_client ws(server_->url());
    subscribe(ws, "space:live", 2);
    subscribe(ws, "space:other", 2);
    live.post(20);
    auto got = ws.receive_until([](const json::object& m) { return offset_of(m) == 22; }, 10s);
    ASSERT_EQ(got.size(), 20U);
    for (std::size_t idx = 0; idx < got.size(); ++idx) {
        EXPECT_EQ(field(got[idx], "topic"), "space:live");
        EXPECT_EQ(offset_of(got[idx]), static_cast<std::int64_t>(idx) + 3);
        EXPECT_EQ(field(got[idx], "type"), "tick");
    }

    ws.send(R"({"op":"unsubscribe","topic":"space:live"})");
    auto reply = ws.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(op_of(*reply), "unsubscribed") << json::serialize(*reply);
    EXPECT_EQ(field(*reply, "topic"), "space:live");
    // Events of the unsubscribed topic, then of one still followed: only the latter arrive.
    live.post(20);
    other.post(5);
    auto after = ws.receive_until(
        [](const json::object& m) {
            return field(m, "topic") == "space:other" && offset_of(m) == 7;
        },
        10s
    );
    ASSERT_EQ(after.size(), 5U) << "only space:other's 5 events";
    for (const auto& m : after) {
        EXPECT_EQ(field(m, "topic"), "space:other") << json::serialize(m);
    }
    expect_pong(ws);
    // The events are there: subscribing again from where the client left off gets them.
    subscribe(ws, "space:live", 22);
    auto rest = ws.receive_until([](const json::object& m) { return offset_of(m) == 42; }, 10s);
    ASSERT_EQ(rest.size(), 20U);
    EXPECT_EQ(offset_of(rest.front()), 23);
}

// `after: "now"` follows only what is appended from then on — for a live list — and works for
// a topic that has no events yet.
TEST_F(WsTest, FromNowSkipsThePastAndWaitsForATopicsFirstEvent) {
    producer past(server_->url(), "space:list");
    past.post(5);
    ws_client ws(server_->url());
    ws.send(R"({"op":"subscribe","topic":"space:list","after":"now"})");
    auto reply = ws.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(op_of(*reply), "subscribed") << json::serialize(*reply);
    EXPECT_EQ(reply->at("after"), 7) << "positioned at the newest event (2 job events + 5)";
    ws.send(R"({"op":"subscribe","topic":"space:empty","after":"now"})");
    reply = ws.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(op_of(*reply), "subscribed") << json::serialize(*reply);
    EXPECT_EQ(reply->at("after"), 0);

    past.post(2);
    producer first(server_->url(), "space:empty");  // job.queued and job.started: 1, 2
    auto got = ws.receive_until(
        [](const json::object& m) {
            return field(m, "topic") == "space:empty" && offset_of(m) == 2;
        },
        10s
    );
    ASSERT_EQ(got.size(), 4U) << "offsets 8 and 9 of space:list, then space:empty's 1 and 2";
    EXPECT_EQ(offset_of(got[0]), 8);
    EXPECT_EQ(offset_of(got[1]), 9);
    EXPECT_EQ(field(got[2], "topic"), "space:empty");
    EXPECT_EQ(offset_of(got[2]), 1);
    expect_error(ws, R"({"op":"subscribe","topic":"space:x","after":"later"})", "bad_request");
}

TEST_F(WsTest, IdIsEchoedInTheReply) {
    http::client c(server_->url());
    ASSERT_EQ(c.post("/v1/topics/space:ids/events", R"({"type":"x","data":{}})").status, 201);
    ws_client ws(server_->url());
    ws.send(R"({"op":"ping","id":7})");
    auto pong = ws.receive();
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(op_of(*pong), "pong");
    EXPECT_EQ(pong->at("id"), 7);

    ws.send(R"({"op":"subscribe","topic":"space:ids","after":1,"id":"s-1"})");
    auto subscribed = ws.receive();
    ASSERT_TRUE(subscribed.has_value());
    EXPECT_EQ(op_of(*subscribed), "subscribed");
    EXPECT_EQ(subscribed->at("id"), "s-1");

    ws.send(R"({"op":"nope","id":{"k":[1,2]}})");
    auto error = ws.receive();
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(op_of(*error), "error");
    EXPECT_EQ(error->at("id"), json::parse(R"({"k":[1,2]})"));

    ws.send(R"({"op":"unsubscribe","topic":"space:ids","id":null})");
    auto unsubscribed = ws.receive();
    ASSERT_TRUE(unsubscribed.has_value());
    EXPECT_EQ(op_of(*unsubscribed), "unsubscribed");
    ASSERT_TRUE(unsubscribed->contains("id"));
    EXPECT_TRUE(unsubscribed->at("id").is_null());

    ws.send(R"({"op":"ping"})");
    auto plain = ws.receive();
    ASSERT_TRUE(plain.has_value());
    EXPECT_FALSE(plain->contains("id")) << "no id, none echoed";
}

TEST_F(WsTest, BadInputGetsErrorsAndTheConnectionStaysOpen) {
    http::client c(server_->url());
    for (int idx = 1; idx <= 4; ++idx) {
        const auto target = "/v1/topics/space:t" + std::to_string(idx) + "/events";
        ASSERT_EQ(c.post(target, R"({"type":"x","data":{}})").status, 201);
    }
    ws_client ws(server_->url());
    expect_error(ws, "not json", "bad_request");
    expect_error(ws, "[1,2]", "bad_request");
    expect_error(ws, "{}", "bad_request");
    expect_error(ws, R"({"op":5})", "bad_request");
    expect_error(ws, R"({"op":"publish","topic":"space:t1"})", "unknown_op");
    expect_error(ws, R"({"op":"subscribe","topic":"bad topic"})", "bad_request");
    expect_error(ws, R"({"op":"subscribe","topic":"a::b"})", "bad_request");
    expect_error(ws, R"({"op":"subscribe"})", "bad_request");
    expect_error(ws, R"({"op":"unsubscribe","topic":7})", "bad_request");
    expect_error(ws, R"({"op":"subscribe","topic":"space:t1","after":-1})", "bad_request");
    expect_error(ws, R"({"op":"subscribe","topic":"space:t1","after":"1"})", "bad_request");
    expect_error(ws, R"({"op":"subscribe","topic":"space:never","after":0})", "not_found");
    expect_error(ws, R"({"op":"unsubscribe","topic":"space:t1"})", "not_subscribed");

    // Up to max_topics = 3 subscriptions; each topic replays its one event.
    for (int idx = 1; idx <= 3; ++idx) {
        const auto topic = "space:t" + std::to_string(idx);
        subscribe(ws, topic, 0);
        auto e = ws.receive();
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(field(*e, "topic"), topic);
        EXPECT_EQ(offset_of(*e), 1);
    }
    expect_error(ws, subscribe_text("space:t1", 1), "conflict");
    expect_error(ws, subscribe_text("space:t4", 0), "too_many_subscriptions");
    ws.send(R"({"op":"unsubscribe","topic":"space:t3"})");
    auto reply = ws.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(op_of(*reply), "unsubscribed");
    subscribe(ws, "space:t4", 1);  // room again
    expect_error(ws, R"({"op":"unsubscribe","topic":"space:t3"})", "not_subscribed");
    expect_pong(ws);

    // A message over 64 KiB closes the connection with 1009 (message too big).
    ws_client big(server_->url());
    expect_pong(big);
    big.send(R"({"op":"ping","pad":")" + std::string(100 * 1024, 'x') + R"("})");
    auto none = big.receive(5s);
    EXPECT_FALSE(none.has_value()) << json::serialize(*none);
    EXPECT_TRUE(big.closed());
    EXPECT_EQ(big.close_code(), 1009);
    // The other connection is not affected.
    expect_pong(ws);

    // Without the upgrade headers: a plain 400 with the usual error body.
    auto plain = c.get("/v1/ws");
    EXPECT_EQ(plain.status, 400) << plain.body;
    auto body = json::parse(plain.body);
    ASSERT_TRUE(body.is_object() && body.as_object().contains("error")) << plain.body;
    EXPECT_TRUE(body.at("error").is_object()) << plain.body;

    EXPECT_EQ(c.get("/healthz").status, 200);
}

// Consumers drop the TCP connection at random points and resubscribe with `after` = the last
// offset they saw, while producers write: each sees 1..N exactly once.
TEST_F(WsTest, RandomDisconnectsResumeExactly) {
    const std::string topic = "space:prop";
    constexpr int producers = 3;
    constexpr int per_producer = 300;
    std::vector<std::unique_ptr<producer>> ps;
    for (int idx = 0; idx < producers; ++idx) {
        ps.push_back(std::make_unique<producer>(server_->url(), topic));
    }
    const std::int64_t total = producers * (1 + 1 + per_producer);  // queued, started, ticks
    std::vector<std::thread> writers;
    for (auto& p : ps) {
        writers.emplace_back([&p] { p->post(per_producer, 200, 20); });
    }
    auto consume = [&](unsigned seed) {
        std::mt19937 rng(seed);
        std::uniform_int_distribution<int> cut(1, 200);
        std::vector<std::int64_t> seen;
        std::int64_t last = 0;
        for (int round = 0; round < 500 && last < total; ++round) {
            ws_client ws(server_->url(), 5s);
            ws.send(subscribe_text(topic, last));
            auto reply = ws.receive();
            if (!reply || op_of(*reply) != "subscribed" || int_of(*reply, "after") != last) {
                ADD_FAILURE() << "round " << round << ": "
                              << (reply ? json::serialize(*reply) : "no reply");
                break;
            }
            for (int n = cut(rng); n > 0 && last < total; --n) {
                auto m = ws.receive();
                if (!m) {
                    break;
                }
                EXPECT_EQ(op_of(*m), "event") << json::serialize(*m);
                seen.push_back(offset_of(*m));
                last = seen.back();
            }
            ws.close();  // abrupt: no close handshake
        }
        return seen;
    };
    std::vector<std::vector<std::int64_t>> results(2);
    std::vector<std::thread> readers;
    for (unsigned idx = 0; idx < 2; ++idx) {
        readers.emplace_back([&, idx] {
            try {
                results[idx] = consume(29U + idx);
            } catch (const std::exception& e) {
                ADD_FAILURE() << "consumer " << idx << ": " << e.what();
            }
        });
    }
    for (auto& t : writers) {
        t.join();
    }
    for (auto& t : readers) {
        t.join();
    }
    for (std::size_t idx = 0; idx < results.size(); ++idx) {
        const auto& seen = results[idx];
        ASSERT_EQ(seen.size(), static_cast<std::size_t>(total)) << "consumer " << idx;
        for (std::size_t pos = 0; pos < seen.size(); ++pos) {
            ASSERT_EQ(seen[pos], static_cast<std::int64_t>(pos) + 1)
                << "consumer " << idx << " position " << pos;
        }
    }
    EXPECT_EQ(http::client(server_->url()).get("/healthz").status, 200);
}

TEST_F(WsTest, KillNineWhileStreamingThenResumeGapless) {
    const auto db = dir_.file("s.db");
    producer p(server_->url(), "space:crash");
    p.post(100);  // offsets 1..102: queued, started, 100 ticks
    ws_client ws(server_->url());
    subscribe(ws, "space:crash", 0);
    std::vector<std::int64_t> seen;
    ws.receive_until(
        [&](const json::object& m) {
            seen.push_back(offset_of(m));
            return seen.size() == 60;
        },
        10s
    );
    ASSERT_EQ(seen.size(), 60U);
    // The client has handled 60 events when the server dies; what else was in flight is lost
    // with the connection.
    server_->kill_hard();
    ws.receive_until([](const json::object&) { return false; }, 5s);
    EXPECT_TRUE(ws.closed());
    EXPECT_EQ(ws.close_code(), 0) << "no close frame from a killed server";

    server_ = std::make_unique<server_process>(
        db, std::vector<std::string>{"--config", write_config(dir_)}
    );
    ws_client again(server_->url());
    subscribe(again, "space:crash", seen.back());
    // More events while the client catches up: a new producer adds queued, started, 50 ticks.
    producer more(server_->url(), "space:crash");
    more.post(50);
    constexpr std::int64_t total = 102 + 52;
    again.receive_until(
        [&](const json::object& m) {
            seen.push_back(offset_of(m));
            return seen.back() >= total;
        },
        10s
    );
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(total));
    for (std::size_t idx = 0; idx < seen.size(); ++idx) {
        ASSERT_EQ(seen[idx], static_cast<std::int64_t>(idx) + 1) << "position " << idx;
    }
    expect_pong(again);
}

// A client may send its first message right behind the upgrade request, without waiting for
// the 101: the server must not lose it.
TEST_F(WsTest, FirstMessageSentWithTheUpgradeRequestIsNotLost) {
    http::client c(server_->url());
    ASSERT_EQ(c.post("/v1/topics/space:eager/events", R"({"type":"x","data":{}})").status, 201);
    const std::string msg = R"({"op":"subscribe","topic":"space:eager","after":0})";
    std::string frame{static_cast<char>(0x81), static_cast<char>(0x80 | msg.size())};
    const char mask[4] = {1, 2, 3, 4};
    frame.append(mask, 4);
    for (std::size_t idx = 0; idx < msg.size(); ++idx) {
        frame.push_back(static_cast<char>(msg[idx] ^ mask[idx % 4]));
    }
    const std::string request =
        "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" +
        frame;
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket socket(ioc);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server_->port()});
    const timeval five_seconds{5, 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &five_seconds, sizeof five_seconds);
    boost::asio::write(socket, boost::asio::buffer(request));
    // Server frames are not masked: the JSON is readable in the raw bytes.
    std::string reply;
    std::array<char, 4096> chunk{};
    boost::system::error_code ec;
    while (reply.find(R"("op":"event")") == std::string::npos && !ec) {
        const auto n = socket.read_some(boost::asio::buffer(chunk), ec);
        reply.append(chunk.data(), n);
    }
    EXPECT_NE(reply.find("101 Switching Protocols"), std::string::npos) << reply;
    EXPECT_NE(reply.find(R"("op":"subscribed")"), std::string::npos) << reply;
    EXPECT_NE(reply.find(R"("op":"event")"), std::string::npos) << reply;
}

}  // namespace
}  // namespace conclave::test
