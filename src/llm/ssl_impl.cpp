// Compiles Asio's TLS support once (BOOST_ASIO_SEPARATE_COMPILATION); only the LLM client
// needs OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>
