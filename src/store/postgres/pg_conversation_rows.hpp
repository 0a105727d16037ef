// store/postgres/pg_conversation_rows.hpp: the SQL of conversations and messages on PostgreSQL,
// as store/sqlite/conversation_rows.hpp on SQLite. Reads take a connection; writes run inside
// the writer's transaction, lock the conversation's row first (other nodes write it too) and
// append their events (`conversation.created|updated|deleted` on the topic "conversations").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "store/postgres/pg_group_commit.hpp"
#include "store/records.hpp"

namespace conclave::store::postgres {

conversation insert_conversation(
    write_txn& txn, const std::string& title, const std::string& council, unix_ms now
);

std::optional<conversation> select_conversation(connection& db, const std::string& id);
// The conversation, its row locked until the batch commits (for a write that changes it).
std::optional<conversation> lock_conversation(connection& db, const std::string& id);
conversation_page select_conversations(connection& db, std::size_t limit, std::int64_t before);
std::vector<message> select_messages(connection& db, const std::string& conversation_id);

// Adds the user's message of a new turn answered by `answering`; the conversation becomes
// active. REQUIRES: the conversation's row is locked and it is not active (checked by the
// caller).
message insert_user_message(
    write_txn& txn,
    const conversation& c,
    const std::string& content,
    const job& answering,
    unix_ms now
);

// Ends the turn of terminal job `j` (see store::end_of_turn) when it is its conversation's
// newest turn; otherwise (no conversation, deleted, a newer turn) does nothing.
void end_turn(write_txn& txn, const job& j, unix_ms now);

// A failed or cancelled turn's job is being retried: its assistant message goes and the
// conversation is active again. Errors: invalid_transition when a newer turn exists.
result<void> reopen_turn(write_txn& txn, const job& j, unix_ms now);

// REQUIRES: the conversation's row is locked.
void delete_conversation_rows(write_txn& txn, const conversation& c, unix_ms now);

// REQUIRES: the conversation's row is locked.
void update_title(write_txn& txn, const conversation& c, const std::string& title, unix_ms now);

}  // namespace conclave::store::postgres
