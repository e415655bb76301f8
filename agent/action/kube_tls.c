/* The TLS side of a libcurl handle to the API server: see kube_tls.h. */
#include "kube_tls.h"

CURLcode kube_tls_setup(CURL *c, const struct kube_creds *cr, const char *user_agent)
{
    CURLcode rc = CURLE_OK;

    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, user_agent);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* the API server is reached directly */
    if (cr->ca_file)
        rc = curl_easy_setopt(c, CURLOPT_CAINFO, cr->ca_file);
    if (rc == CURLE_OK && cr->ca.data) {
        struct curl_blob b = {cr->ca.data, cr->ca.len, CURL_BLOB_COPY};
        rc = curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
    }
    if (rc == CURLE_OK && cr->cert_file)
        rc = curl_easy_setopt(c, CURLOPT_SSLCERT, cr->cert_file);
    if (rc == CURLE_OK && cr->cert.data) {
        struct curl_blob b = {cr->cert.data, cr->cert.len, CURL_BLOB_COPY};
        rc = curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &b);
    }
    if (rc == CURLE_OK && cr->key_file)
        rc = curl_easy_setopt(c, CURLOPT_SSLKEY, cr->key_file);
    if (rc == CURLE_OK && cr->key.data) {
        struct curl_blob b = {cr->key.data, cr->key.len, CURL_BLOB_COPY};
        rc = curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &b);
    }
    if (rc == CURLE_OK && (cr->cert_file || cr->cert.data)) {
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    }
    return rc;
}
