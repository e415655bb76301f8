/*
 * The TLS side of a libcurl handle that talks to the Kubernetes API server with struct
 * kube_creds (kubeconfig.h): https only, no redirects, no proxy, the peer's certificate and name
 * always verified against the credentials' CA (a file or PEM bytes), and the client certificate
 * and key when the credentials have them. Shared by vigil-agent-action's kubernetes module and
 * the cluster agent's kubernetes probe, so both reach the server the same way.
 */
#ifndef AGENT_ACTION_KUBE_TLS_H
#define AGENT_ACTION_KUBE_TLS_H

#include <curl/curl.h>

#include "kubeconfig.h"

/* Sets those options on c, with user_agent. CURLE_OK, or the first option libcurl refused. */
CURLcode kube_tls_setup(CURL *c, const struct kube_creds *cr, const char *user_agent);

#endif
