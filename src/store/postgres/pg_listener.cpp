#include "store/postgres/pg_listener.hpp"

#include <stdexcept>

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include "core/logging.hpp"
#include "store/postgres/pg_conn.hpp"
#include "store/postgres/pg_store.hpp"

namespace conclave::store::postgres {

listener::listener(
    std::string conninfo,
    std::string schema,
    std::string node_id,
    store::cluster_listener callbacks,
    std::chrono::milliseconds retry,
    std::chrono::milliseconds check
)
    : conninfo_(std::move(conninfo)),
      schema_(std::move(schema)),
      node_id_(std::move(node_id)),
      callbacks_(std::move(callbacks)),
      retry_(retry),
      check_(check) {
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    thread_ = std::thread([this] { run(); });
}

listener::~listener() {
    stopping_ = true;
    const char byte = 1;
    [[maybe_unused]] auto written = write(wake_[1], &byte, 1);
    thread_.join();
    close(wake_[0]);
    close(wake_[1]);
}

bool listener::stopped_within(std::chrono::milliseconds d) {
    pollfd pfd{wake_[0], POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(d.count()));
    return stopping_.load();
}

void listener::run() {
    auto log = logger("store");
    bool ever_connected = false;
    bool told_lost = false;
    const std::string own_notices = node_id_ + '\n';  // how this node's notices begin
    while (!stopping_) {
        try {
            connection conn(conninfo_, schema_, node_id_ + " listen");
            conn.exec_script(
                std::string("LISTEN ") + events_channel + "; LISTEN " + jobs_channel + ";"
            );
            connected_ = true;
            if (told_lost) {
                log->info("the database is reachable again");
            }
            told_lost = false;
            if (ever_connected && callbacks_.reconnected) {
                callbacks_.reconnected();  // what was committed meanwhile is read from the tables
            }
            ever_connected = true;
            auto* pg = conn.native_handle();
            auto last_check = std::chrono::steady_clock::now();
            while (!stopping_) {
                pollfd fds[2] = {{PQsocket(pg), POLLIN, 0}, {wake_[0], POLLIN, 0}};
                poll(fds, 2, static_cast<int>(check_.count()));
                if (stopping_) {
                    break;
                }
                if (PQconsumeInput(pg) == 0) {
                    throw pg_error("08006", PQerrorMessage(pg));
                }
                const auto now = std::chrono::steady_clock::now();
                if (fds[0].revents == 0 && now - last_check >= check_) {
                    conn.exec_script("SELECT 1");  // a silent cut shows as an error here
                    last_check = now;
                }
                while (PGnotify* n = PQnotifies(pg)) {
                    const std::string channel = n->relname;
                    const std::string payload = n->extra != nullptr ? n->extra : "";
                    PQfreemem(n);
                    if (channel == jobs_channel) {
                        if (callbacks_.jobs_queued) {
                            callbacks_.jobs_queued();
                        }
                    } else if (payload.starts_with(own_notices)) {
                        continue;  // our own commit: the hub has its events already
                    } else if (auto notices = parse_event_notices(payload)) {
                        if (callbacks_.events_committed) {
                            for (const auto& t : notices->topics) {
                                callbacks_.events_committed(t.topic, t.offset);
                            }
                        }
                    }
                }
                if (conn.broken()) {
                    throw pg_error("08006", "the listening connection was lost");
                }
            }
        } catch (const std::exception& e) {
            connected_ = false;
            if (!told_lost) {
                log->warn("the database is unreachable: {}; reconnecting", e.what());
                told_lost = true;
            }
        }
        if (stopped_within(retry_)) {
            break;
        }
    }
    connected_ = false;
}

}  // namespace conclave::store::postgres
