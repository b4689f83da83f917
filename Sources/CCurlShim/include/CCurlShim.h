#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic; Swift cannot call them.
// These wrappers give each argument type its own non-variadic entry point.
CURLcode ap_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ap_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ap_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ap_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode ap_curl_setopt_write_function(CURL *handle, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode ap_curl_setopt_read_function(CURL *handle, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode ap_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
#endif
