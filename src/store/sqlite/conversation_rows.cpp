#include "store/sqlite/conversation_rows.hpp"

#include "core/ids.hpp"
#include "store/conversations.hpp"

namespace conclave::store::sqlite {
namespace {

#define CONCLAVE_CONVERSATION_COLUMNS                                                    \
    "c.seq, c.id, c.title, c.created_at, c.processing_state, c.council, c.last_job_id, " \
    "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"

conversation read_conversation(const query& q) {
    conversation c;
    c.seq = q.int64_at(0);
    c.id = q.text_at(1);
    c.title = q.text_at(2);
    c.created_at = q.int64_at(3);
    c.processing_state = q.text_at(4);
    c.council = q.text_at(5);
    c.last_job_id = q.text_at(6);
    c.message_count = q.int64_at(7);
    return c;
}

// Tells live lists what changed.
void announce(write_txn& txn, const char* type, const conversation& c, unix_ms now) {
    txn.append(conversations_topic, type, conversation_notice(c), now);
}

void set_state(write_txn& txn, conversation& c, const std::string& state, unix_ms now) {
    txn.db()
        .prepare("UPDATE conversations SET processing_state = ? WHERE seq = ?")
        .bind(state, c.seq)
        .run();
    c.processing_state = state;
    announce(txn, "conversation.updated", c, now);
}

std::int64_t next_seq(connection& db, const std::string& conversation_id) {
    auto q = db.prepare("SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE conversation_id = ?");
    q.bind(conversation_id);
    q.step();
    return q.int64_at(0);
}

void insert_message(connection& db, const std::string& conversation_id, const message& m) {
    auto q = db.prepare(
        "INSERT INTO messages(id, conversation_id, seq, role, content, stages, metadata, job_id, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    q.bind(m.id, conversation_id, m.seq, m.role, m.content);
    q.bind_text_or_null(6, m.stages);
    q.bind_text_or_null(7, m.metadata);
    q.bind_text_or_null(8, m.job_id);
    q.bind_one(9, m.created_at);
    q.run();
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
    txn.db()
        .prepare(
            "INSERT INTO conversations(id, title, created_at, processing_state, council) VALUES "
            "(?, ?, ?, 'idle', ?)"
        )
        .bind(c.id, c.title, c.created_at, c.council)
        .run();
    c.seq = txn.db().last_insert_rowid();
    announce(txn, "conversation.created", c, now);
    return c;
}

std::optional<conversation> select_conversation(connection& db, const std::string& id) {
    auto q =
        db.prepare("SELECT " CONCLAVE_CONVERSATION_COLUMNS " FROM conversations c WHERE c.id = ?");
    q.bind(id);
    if (!q.step()) {
        return std::nullopt;
    }
    return read_conversation(q);
}

conversation_page select_conversations(connection& db, std::size_t limit, std::int64_t before) {
    auto q = db.prepare("SELECT " CONCLAVE_CONVERSATION_COLUMNS
                        " FROM conversations c WHERE c.seq < ? ORDER BY c.seq DESC LIMIT ?");
    q.bind(before > 0 ? before : INT64_MAX, static_cast<std::int64_t>(limit + 1));
    conversation_page page;
    while (q.step()) {
        page.conversations.push_back(read_conversation(q));
    }
    if (page.conversations.size() > limit) {
        page.conversations.pop_back();
        page.next_cursor = page.conversations.back().seq;
    }
    return page;
}

std::vector<message> select_messages(connection& db, const std::string& conversation_id) {
    auto q = db.prepare(
        "SELECT id, seq, role, content, stages, metadata, job_id, created_at FROM messages WHERE "
        "conversation_id = ? ORDER BY seq"
    );
    q.bind(conversation_id);
    std::vector<message> out;
    while (q.step()) {
        out.push_back(message{
            q.text_at(0),
            q.int64_at(1),
            q.text_at(2),
            q.text_at(3),
            q.text_at(4),
            q.text_at(5),
            q.text_at(6),
            q.int64_at(7)});
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
    txn.db()
        .prepare("UPDATE conversations SET last_job_id = ? WHERE seq = ?")
        .bind(answering.id, c.seq)
        .run();
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
    auto c = select_conversation(txn.db(), *id);
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
    auto c = select_conversation(txn.db(), *id);
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
    txn.db()
        .prepare(
            "DELETE FROM messages WHERE conversation_id = ? AND job_id = ? AND role = 'assistant'"
        )
        .bind(c->id, j.id)
        .run();
    c->message_count = static_cast<std::int64_t>(select_messages(txn.db(), c->id).size());
    set_state(txn, *c, "active", now);
    return {};
}

void delete_conversation_rows(write_txn& txn, const conversation& c, unix_ms now) {
    txn.db().prepare("DELETE FROM messages WHERE conversation_id = ?").bind(c.id).run();
    txn.db().prepare("DELETE FROM conversations WHERE seq = ?").bind(c.seq).run();
    txn.append(conversations_topic, "conversation.deleted", conversation_deleted_notice(c.id), now);
}

void update_title(write_txn& txn, const conversation& c, const std::string& title, unix_ms now) {
    txn.db().prepare("UPDATE conversations SET title = ? WHERE seq = ?").bind(title, c.seq).run();
    conversation updated = c;
    updated.title = title;
    announce(txn, "conversation.updated", updated, now);
}

#undef CONCLAVE_CONVERSATION_COLUMNS

}  // namespace conclave::store::sqlite
