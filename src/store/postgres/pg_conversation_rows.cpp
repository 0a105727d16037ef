#include "store/postgres/pg_conversation_rows.hpp"

#include "core/ids.hpp"
#include "store/conversations.hpp"
#include "store/postgres/pg_conn.hpp"

namespace conclave::store::postgres {
namespace {

#define CONCLAVE_CONVERSATION_COLUMNS                                                    \
    "c.seq, c.id, c.title, c.created_at, c.processing_state, c.council, c.last_job_id, " \
    "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"

conversation read_conversation(const rows& r, int row) {
    conversation c;
    c.seq = r.int64(row, 0);
    c.id = r.text(row, 1);
    c.title = r.text(row, 2);
    c.created_at = r.int64(row, 3);
    c.processing_state = r.text(row, 4);
    c.council = r.text(row, 5);
    c.last_job_id = r.text(row, 6);
    c.message_count = r.int64(row, 7);
    return c;
}

// Tells live lists what changed.
void announce(write_txn& txn, const char* type, const conversation& c, unix_ms now) {
    txn.append(conversations_topic, type, conversation_notice(c), now);
}

void set_state(write_txn& txn, conversation& c, const std::string& state, unix_ms now) {
    txn.db().exec("UPDATE conversations SET processing_state = $1 WHERE seq = $2", state, c.seq);
    c.processing_state = state;
    announce(txn, "conversation.updated", c, now);
}

// Safe from other nodes because the caller holds the conversation's row lock.
std::int64_t next_seq(connection& db, const std::string& conversation_id) {
    return db
        .exec(
            "SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE conversation_id = $1",
            conversation_id
        )
        .int64(0, 0);
}

void insert_message(connection& db, const std::string& conversation_id, const message& m) {
    db.exec(
        "INSERT INTO messages(id, conversation_id, seq, role, content, stages, metadata, job_id, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        m.id,
        conversation_id,
        m.seq,
        m.role,
        m.content,
        text_or_null{m.stages},
        text_or_null{m.metadata},
        text_or_null{m.job_id},
        m.created_at
    );
}

}  // namespace

conversation insert_conversation(
    write_txn& txn, const std::string& title, const std::string& council, unix_ms now
) {
    conversation c;
    c.id = new_uuid_v7(now);
    c.title = title;
    c.council = council;
    c.created_at = now;
    auto r = txn.db().exec(
        "INSERT INTO conversations(id, title, created_at, processing_state, council) VALUES "
        "($1, $2, $3, 'idle', $4) RETURNING seq",
        c.id,
        c.title,
        c.created_at,
        c.council
    );
    c.seq = r.int64(0, 0);
    announce(txn, "conversation.created", c, now);
    return c;
}

std::optional<conversation> select_conversation(connection& db, const std::string& id) {
    auto r = db.exec(
        "SELECT " CONCLAVE_CONVERSATION_COLUMNS " FROM conversations c WHERE c.id = $1", id
    );
    if (r.empty()) {
        return std::nullopt;
    }
    return read_conversation(r, 0);
}

std::optional<conversation> lock_conversation(connection& db, const std::string& id) {
    auto r = db.exec(
        "SELECT " CONCLAVE_CONVERSATION_COLUMNS " FROM conversations c WHERE c.id = $1 FOR UPDATE",
        id
    );
    if (r.empty()) {
        return std::nullopt;
    }
    return read_conversation(r, 0);
}

conversation_page select_conversations(connection& db, std::size_t limit, std::int64_t before) {
    auto r = db.exec(
        "SELECT " CONCLAVE_CONVERSATION_COLUMNS
        " FROM conversations c WHERE c.seq < $1 ORDER BY c.seq DESC LIMIT $2",
        before > 0 ? before : INT64_MAX,
        static_cast<std::int64_t>(limit + 1)
    );
    conversation_page page;
    for (int row = 0; row < r.size(); ++row) {
        page.conversations.push_back(read_conversation(r, row));
    }
    if (page.conversations.size() > limit) {
        page.conversations.pop_back();
        page.next_cursor = page.conversations.back().seq;
    }
    return page;
}

std::vector<message> select_messages(connection& db, const std::string& conversation_id) {
    auto r = db.exec(
        "SELECT id, seq, role, content, stages, metadata, job_id, created_at FROM messages WHERE "
        "conversation_id = $1 ORDER BY seq",
        conversation_id
    );
    std::vector<message> out;
    out.reserve(static_cast<std::size_t>(r.size()));
    for (int row = 0; row < r.size(); ++row) {
        out.push_back(message{
            r.text(row, 0),
            r.int64(row, 1),
            r.text(row, 2),
            r.text(row, 3),
            r.text(row, 4),
            r.text(row, 5),
            r.text(row, 6),
            r.int64(row, 7)});
    }
    return out;
}

message insert_user_message(
    write_txn& txn,
    const conversation& c,
    const std::string& content,
    const job& answering,
    unix_ms now
) {
    message m;
    m.id = new_uuid_v7(now);
    m.seq = next_seq(txn.db(), c.id);
    m.role = "user";
    m.content = content;
    m.job_id = answering.id;
    m.created_at = now;
    insert_message(txn.db(), c.id, m);
    txn.db().exec("UPDATE conversations SET last_job_id = $1 WHERE seq = $2", answering.id, c.seq);
    conversation updated = c;
    updated.message_count += 1;
    set_state(txn, updated, "active", now);
    return m;
}

void end_turn(write_txn& txn, const job& j, unix_ms now) {
    const auto id = conversation_of(j);
    if (!id) {
        return;
    }
    auto c = lock_conversation(txn.db(), *id);
    if (!c || c->last_job_id != j.id) {
        return;
    }
    auto end = end_of_turn(j, now);
    end.answer.id = new_uuid_v7(now);
    end.answer.seq = next_seq(txn.db(), c->id);
    insert_message(txn.db(), c->id, end.answer);
    c->message_count += 1;
    set_state(txn, *c, end.processing_state, now);
}

result<void> reopen_turn(write_txn& txn, const job& j, unix_ms now) {
    const auto id = conversation_of(j);
    if (!id) {
        return {};
    }
    auto c = lock_conversation(txn.db(), *id);
    if (!c) {
        return {};  // deleted: the job may run again, it has nowhere to answer
    }
    if (c->last_job_id != j.id) {
        return fail(
            errc::invalid_transition,
            "job " + j.id + " answered an earlier turn of conversation " + c->id +
                "; ask again instead"
        );
    }
    auto deleted = txn.db().exec(
        "DELETE FROM messages WHERE conversation_id = $1 AND job_id = $2 AND role = 'assistant'",
        c->id,
        j.id
    );
    c->message_count -= deleted.affected();
    set_state(txn, *c, "active", now);
    return {};
}

void delete_conversation_rows(write_txn& txn, const conversation& c, unix_ms now) {
    txn.db().exec("DELETE FROM messages WHERE conversation_id = $1", c.id);
    txn.db().exec("DELETE FROM conversations WHERE seq = $1", c.seq);
    txn.append(conversations_topic, "conversation.deleted", conversation_deleted_notice(c.id), now);
}

void update_title(write_txn& txn, const conversation& c, const std::string& title, unix_ms now) {
    txn.db().exec("UPDATE conversations SET title = $1 WHERE seq = $2", title, c.seq);
    conversation updated = c;
    updated.title = title;
    announce(txn, "conversation.updated", updated, now);
}

#undef CONCLAVE_CONVERSATION_COLUMNS

}  // namespace conclave::store::postgres
