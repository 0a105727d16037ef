// store/records_json.hpp: the one JSON mapping of the store's records (used by the API and CLI).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "store/records.hpp"

namespace conclave::store {

// The job as the API shows it: JSON documents inlined, times as RFC 3339, the lease token omitted.
boost::json::object to_json(const job& j);

// {topic, offset, type, data, time}
boost::json::object to_json(const event& e);

// Parses stored JSON text; empty text is null. Text that is not JSON (it never should be)
// comes back as a JSON string rather than failing the whole response.
boost::json::value parse_stored(std::string_view text);

std::string topics_to_text(const std::vector<std::string>& topics);
std::vector<std::string> topics_from_text(std::string_view text);

}  // namespace conclave::store
