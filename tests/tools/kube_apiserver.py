#!/usr/bin/env python3
"""A fake Kubernetes API server on loopback HTTPS, for tests. Python 3 standard library only.

No real API server can run on the test machines, so tests start this one and point the real
`kubectl` (or Vigil's own Kubernetes client) at it. It keeps objects in memory, applies the
writes it receives, records every request, and lets the test read back the resulting state.

Usage:
    python3 tests/tools/kube_apiserver.py --dir DIR [--seed SEED.json] [--token TOKEN]

Startup writes into DIR:
    ca.crt, server.key  a self-signed certificate (CN=localhost, SAN IP:127.0.0.1, DNS:localhost,
                        made with `openssl req -x509`); ca.crt is both the server's certificate
                        and the CA a client trusts
    token               the bearer token every request must carry (random unless --token)
    kubeconfig          cluster https://127.0.0.1:PORT, certificate-authority DIR/ca.crt, user
                        with the token, context "fake" (namespace reconciliation), current
    port                the port, written last (atomically) once the socket listens: a test
                        waits for this file
    requests.jsonl      one JSON line per API request, flushed per line:
                        {"method", "path" (no query), "query" (raw), "content_type" (the
                         request's, "" if none), "body" (parsed JSON, else text, else null),
                         "status" (the answer's code)}
Runs until SIGTERM/SIGINT (exit 0). Logs one line per request to stderr.

Every request needs "Authorization: Bearer TOKEN", else 401 with a Status object.

Control endpoints (auth required, not logged in requests.jsonl):
    GET  /_test/state           every object: {"deployments": {"NS/NAME": {...}}, "nodes":
                                {"NAME": {...}}, ..., "logs": {"NS/POD": {"CONTAINER": text}}}
    POST /_test/reset           back to the seed (watch history cleared; resourceVersions keep
                                counting up)
    POST /_test/clear-requests  truncate requests.jsonl
    POST /_test/drop-watches    every watch in progress ends at once, its connection cut without
                                the final chunk (a dropped connection)
    POST /_test/skip-rv?n=N     the resourceVersion counter jumps by N (default 10; 0 to read
                                it) with no change (a gap): {"resourceVersion": "RV"}
    POST /_test/compact[?rv=N]  the watch history before N (default: all of it) is forgotten: a
                                watch from an older resourceVersion is answered 410 Gone
    POST /_test/config?gone=event|status&bookmark=SECONDS&metrics=on|off
                                how 410 Gone is answered to a watch: 200 with an ERROR event
                                {"type": "ERROR", "object": Status code 410} (as a real server
                                does; the default) or an HTTP 410 Status; how often a BOOKMARK is
                                sent to watches with allowWatchBookmarks=true (default 1 s);
                                metrics=off answers 404 under /apis/metrics.k8s.io, as a cluster
                                without metrics-server does
The seed file (--seed) has the same shape as /_test/state; metadata the server owns (uid,
resourceVersion, creationTimestamp, generation, namespace from the key) may be left out and is
filled in. Without --seed a built-in "reconciliation" namespace is served (see default_seed()):
deployments backend/frontend/postgres, their pods, services, endpoints, an ingress, a network
policy, a configmap, a secret, nodes worker-1/worker-2, BackOff events, pod logs, metrics.

How tests use it (tests/integration/kube_apiserver.sh is the example): start it in the
background, wait for DIR/port, run `kubectl --kubeconfig DIR/kubeconfig --cache-dir DIR/cache
...` (a private discovery cache, so each run sees the discovery requests and ~/.kube stays
clean), then read GET /_test/state and DIR/requests.jsonl; POST /_test/clear-requests before a
step isolates what that step sent. Stop it with SIGTERM.

What it serves:
    discovery   /version (v1.32.0: gcloud's kubectl dispatcher picks its kubectl by this),
                /api, /apis, /api/v1, /apis/G/V for apps/v1, networking.k8s.io/v1,
                discovery.k8s.io/v1, coordination.k8s.io/v1, metrics.k8s.io/v1beta1, in the
                legacy (non-aggregated) shape: kubectl 1.32 asks for the aggregated kind first
                and falls back when the answer is plain application/json.
    openapi     /openapi/v3 without schemas: only the PATCH operations and their
                fieldValidation parameter, which is what kubectl create/apply/replace -f look
                for to leave validation to the server (without it they fail: "failed to
                download openapi"). /openapi/v2 is 404, so kubectl 1.20 needs --validate=false
                for create/apply -f (its client-side validation wants protobuf OpenAPI v2).
    core/v1     namespaces, nodes (cluster-scoped); pods, pods/log (text, tailLines,
                container), pods/status, events, configmaps, secrets, services, endpoints
    apps/v1     deployments, deployments/scale (autoscaling/v1 Scale), deployments/status
    networking  networkpolicies, ingresses
    discovery   endpointslices (kubectl describe ingress reads them for the backends)
    coordination leases (kubectl describe node shows the node's lease in kube-node-lease)
    metrics     nodes and pods (kubectl top), read-only, from the seed
    verbs       get, list (labelSelector and fieldSelector with =, ==, !=; field paths are
                looked up in the object, so involvedObject.name, spec.nodeName, status.phase
                work), watch (?watch=true: the current objects as ADDED, or the changes
                since ?resourceVersion=N, then later changes, newline-delimited
                {"type","object"}, until timeoutSeconds, default 30; BOOKMARK events with
                ?allowWatchBookmarks=true; 410 Gone after /_test/compact), create (POST), update
                (PUT, resourceVersion checked if given), patch, delete; ?dryRun=All answers
                without storing. Errors are Status objects: 401 Unauthorized, 404 NotFound,
                409 AlreadyExists/Conflict, 422 Invalid, 415 UnsupportedMediaType,
                405 MethodNotAllowed.
    patch types application/strategic-merge-patch+json (maps merge, null deletes, lists
                replace except the merge-keyed ones: containers/initContainers/env/
                volumeMounts/volumes/imagePullSecrets by name, ports by containerPort or
                port, conditions by type; $patch: delete/replace, $deleteFromPrimitiveList
                honoured; $setElementOrder and $retainKeys accepted and dropped),
                application/merge-patch+json (RFC 7386), application/json-patch+json
                (RFC 6902). application/apply-patch+yaml (server-side apply) is 415.
    tables      kubectl get asks for a meta.k8s.io Table: pods, deployments, nodes, services
                and events get kubectl's usual columns (also on watches); other kinds answer
                a plain list and kubectl prints NAME and AGE.
Every write bumps metadata.resourceVersion (one global counter, a string); a change of spec
bumps metadata.generation; a write that changes nothing is a no-op (same resourceVersion, no
watch event; kubectl says "patched (no change)"). Deployments behave as if their controller
finished at once: status.replicas/updated/ready/available = spec.replicas, observedGeneration
= generation (so `kubectl rollout status` completes).

What it does not do: no ReplicaSets, and no pods created or deleted by deployment changes
(the pods are whatever the seed and the test put there); no exec/attach/port-forward (SPDY,
websockets); logs ignore follow/sinceSeconds/timestamps/previous (follow returns what there is
and ends); no server-side apply, managedFields, admission, RBAC, protobuf, pagination (limit
is ignored, no continue), OpenAPI schemas (kubectl explain fails), aggregated discovery or
HTTP/2. Validation is minimal: names, container names/images, env names, replicas >= 0.
"""

import argparse
import base64
import copy
import datetime
import hmac
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

# --------------------------------------------------------------------------------------------
# Resource registry: what discovery lists and what the router accepts.


class Resource:
    def __init__(self, group, version, plural, kind, namespaced, verbs, short=(), store=None,
                 categories=(), subresources=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.verbs, self.short = namespaced, verbs, list(short)
        self.categories = list(categories)
        # The key in the state dict; metrics need their own, their plurals clash with core.
        self.store = store or plural
        # name -> (kind, group, version, verbs) as discovery shows a subresource.
        self.subresources = subresources or {}

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version


RW = ["create", "delete", "get", "list", "patch", "update", "watch"]
RO = ["get", "list", "watch"]
RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", False, RW, ["ns"]),
    Resource("", "v1", "nodes", "Node", False, RW, ["no"]),
    Resource("", "v1", "pods", "Pod", True, RW, ["po"], categories=["all"],
             subresources={"log": ("Pod", "", "v1", ["get"]),
                           "status": ("Pod", "", "v1", ["get", "patch", "update"])}),
    Resource("", "v1", "events", "Event", True, RW, ["ev"]),
    Resource("", "v1", "configmaps", "ConfigMap", True, RW, ["cm"]),
    Resource("", "v1", "secrets", "Secret", True, RW),
    Resource("", "v1", "services", "Service", True, RW, ["svc"], categories=["all"]),
    Resource("", "v1", "endpoints", "Endpoints", True, RW, ["ep"]),
    Resource("apps", "v1", "deployments", "Deployment", True, RW, ["deploy"],
             categories=["all"],
             subresources={"scale": ("Scale", "autoscaling", "v1", ["get", "patch", "update"]),
                           "status": ("Deployment", "apps", "v1", ["get", "patch", "update"])}),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, RW,
             ["netpol"]),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", True, RW, ["ing"]),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, RW),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True, RW),
    Resource("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False, ["get", "list"],
             store="nodemetrics"),
    Resource("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True, ["get", "list"],
             store="podmetrics"),
]
GROUP_VERSIONS = [("apps", "v1"), ("networking.k8s.io", "v1"), ("discovery.k8s.io", "v1"),
                  ("coordination.k8s.io", "v1"), ("metrics.k8s.io", "v1beta1")]
BY_STORE = {r.store: r for r in RESOURCES}


def find_resource(group, version, plural):
    for r in RESOURCES:
        if (r.group, r.version, r.plural) == (group, version, plural):
            return r
    return None


# --------------------------------------------------------------------------------------------
# Small helpers.


def now_rfc3339(offset_s=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def key_of(namespace, name):
    return f"{namespace}/{name}" if namespace else name


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class ApiError(Exception):
    """An error answered as a Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.body = status_obj(code, reason, message, details)


def not_found(res, name):
    what = f"{res.plural}.{res.group}" if res.group else res.plural
    return ApiError(404, "NotFound", f'{what} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


def invalid(res, name, causes):
    msg = f'{res.kind}.{res.group or "core"} "{name}" is invalid: ' + "; ".join(
        f"{f}: {m}" for f, m in causes)
    return ApiError(422, "Invalid", msg, {
        "name": name, "group": res.group, "kind": res.kind,
        "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f}
                   for f, m in causes]})


def dig(obj, dotted):
    """The value at a dotted field path ("involvedObject.name"), "" if absent."""
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return ""
        cur = cur[part]
    return "" if cur is None else str(cur)


# --------------------------------------------------------------------------------------------
# Selectors: the equality subset kubectl and the agent use.


def parse_selector(text):
    """[(key, op, value)] from "a=b,c!=d,e,!f"; op is one of = != exists !exists."""
    terms = []
    for raw in (text or "").split(","):
        raw = raw.strip()
        if not raw:
            continue
        if "!=" in raw:
            k, v = raw.split("!=", 1)
            terms.append((k.strip(), "!=", v.strip()))
        elif "==" in raw:
            k, v = raw.split("==", 1)
            terms.append((k.strip(), "=", v.strip()))
        elif "=" in raw:
            k, v = raw.split("=", 1)
            terms.append((k.strip(), "=", v.strip()))
        elif raw.startswith("!"):
            terms.append((raw[1:].strip(), "!exists", ""))
        else:
            terms.append((raw, "exists", ""))
    return terms


def labels_match(obj, terms):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for k, op, v in terms:
        have = labels.get(k)
        if op == "=" and have != v:
            return False
        if op == "!=" and have == v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!exists" and k in labels:
            return False
    return True


def fields_match(obj, terms):
    for k, op, v in terms:
        have = dig(obj, k)
        if op == "=" and have != v:
            return False
        if op == "!=" and have == v:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Patches.

# Strategic merge: the lists that merge by a key instead of being replaced, per field name.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumeMounts": "name", "volumes": "name", "imagePullSecrets": "name",
    "volumeDevices": "devicePath", "conditions": "type", "ownerReferences": "uid",
    "ports": None,  # containerPort in containers, port in services: chosen per element
}


def merge_key_for(field, items):
    key = MERGE_KEYS.get(field, "")
    if key is None:  # ports
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i
                                      for i in items) else "port"
    return key


def strategic_merge(orig, patch):
    """Apply a strategic merge patch (a dict) to orig (a dict); returns a new dict."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in v]
            continue
        if k.startswith("$"):  # $setElementOrder/..., $retainKeys, $patch: not stored
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            out[k] = strategic_merge(out.get(k), v)
        elif isinstance(v, list) and k in MERGE_KEYS and isinstance(out.get(k), list):
            out[k] = merge_keyed_list(out[k], v, merge_key_for(k, out[k] + v))
        else:
            out[k] = copy.deepcopy(v)
    return out


def merge_keyed_list(orig, patch, key):
    """Merge list elements by key: matching ones merge, new ones append, $patch delete drops."""
    out = copy.deepcopy(orig)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            out.append(copy.deepcopy(item))
            continue
        idx = next((i for i, o in enumerate(out)
                    if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
        elif idx is None:
            out.append(strategic_merge({}, item))
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out


def merge_patch(orig, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def pointer_parts(ptr):
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise ValueError(f"bad JSON pointer {ptr!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]


def pointer_parent(doc, ptr):
    parts = pointer_parts(ptr)
    if not parts:
        raise ValueError("operation on the whole document")
    cur = doc
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    return cur, parts[-1]


def pointer_get(doc, ptr):
    cur = doc
    for p in pointer_parts(ptr):
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    return cur


def json_patch(doc, ops):
    """RFC 6902 JSON patch: add, remove, replace, test, move, copy."""
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "test":
            if pointer_get(doc, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"test failed at {path}")
            continue
        if kind in ("move", "copy"):
            value = copy.deepcopy(pointer_get(doc, op["from"]))
            if kind == "move":
                parent, last = pointer_parent(doc, op["from"])
                del parent[int(last) if isinstance(parent, list) else last]
            json_patch_add(doc, path, value)
        elif kind == "add":
            json_patch_add(doc, path, copy.deepcopy(op.get("value")))
        elif kind in ("remove", "replace"):
            parent, last = pointer_parent(doc, path)
            if isinstance(parent, list):
                idx = int(last)
                if kind == "remove":
                    del parent[idx]
                else:
                    parent[idx] = copy.deepcopy(op.get("value"))
            else:
                if last not in parent:
                    raise KeyError(path)
                if kind == "remove":
                    del parent[last]
                else:
                    parent[last] = copy.deepcopy(op.get("value"))
        else:
            raise ValueError(f"unknown op {kind!r}")
    return doc


def json_patch_add(doc, path, value):
    parent, last = pointer_parent(doc, path)
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(int(last), value)
    else:
        parent[last] = value


def apply_patch(content_type, obj, body):
    ctype = content_type.split(";")[0].strip().lower()
    try:
        if ctype == "application/strategic-merge-patch+json":
            return strategic_merge(obj, body)
        if ctype == "application/merge-patch+json":
            return merge_patch(obj, body)
        if ctype == "application/json-patch+json":
            if not isinstance(body, list):
                raise ValueError("a JSON patch must be a list")
            return json_patch(obj, body)
    except ApiError:
        raise
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise ApiError(422, "Invalid", f"the patch could not be applied: {e!r}")
    raise ApiError(415, "UnsupportedMediaType",
                   f"the body of the request was in an unknown format - accepted media types "
                   f"include: application/json-patch+json, application/merge-patch+json, "
                   f"application/strategic-merge-patch+json (got {content_type!r})")


# --------------------------------------------------------------------------------------------
# The store: every object, the resourceVersion counter and the watch history.


class Store:
    def __init__(self, seed):
        self.cond = threading.Condition()
        self.seed = seed
        self.rv = 0  # never goes back, not even on reset: clients and watches rely on that
        self.drops = 0  # bumped by /_test/drop-watches: every watch then ends at once
        self.gone_as = "event"  # 410 Gone to a watch: an ERROR event, or "status" (HTTP 410)
        self.bookmark_s = 1.0  # a BOOKMARK this often, to watches that allow them
        self.metrics = True  # False: metrics.k8s.io answers 404, as without metrics-server
        self.reset()

    def reset(self):
        with self.cond:
            self.objects = {r.store: {} for r in RESOURCES}
            self.logs = copy.deepcopy(self.seed.get("logs", {}))
            self.history = []  # (rv, store, type, object) for watches
            self.compacted = 0  # a watch from an older resourceVersion is 410 Gone
            for store, objs in self.seed.items():
                if store == "logs":
                    continue
                if store not in self.objects:
                    raise SystemExit(f"seed: unknown collection {store!r}")
                for key, obj in objs.items():
                    self.objects[store][key] = self.fill_defaults(BY_STORE[store], key, obj)
            self.link_events()
            for obj in self.objects["deployments"].values():
                settle_deployment(obj)
            self.cond.notify_all()

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def fill_defaults(self, res, key, obj):
        """Seeded objects get the metadata a server would have given them."""
        obj = copy.deepcopy(obj)
        obj.setdefault("kind", res.kind)
        obj.setdefault("apiVersion", res.api_version)
        meta = obj.setdefault("metadata", {})
        ns, _, name = key.rpartition("/")
        meta.setdefault("name", name)
        if res.namespaced:
            meta.setdefault("namespace", ns)
        # Deterministic uids, so a seed's events can point at them across resets.
        meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{res.store}/{key}")))
        meta.setdefault("creationTimestamp", now_rfc3339(-3600))
        meta["resourceVersion"] = self.next_rv()
        if "spec" in obj and res.store not in ("nodes", "namespaces", "pods"):
            meta.setdefault("generation", 1)
        return obj

    def link_events(self):
        """Seeded events naming an object without its uid get it (describe filters on it)."""
        for ev in self.objects["events"].values():
            inv = ev.get("involvedObject") or {}
            if inv.get("uid") or not inv.get("kind"):
                continue
            res = next((r for r in RESOURCES if r.kind == inv["kind"]
                        and r.group != "metrics.k8s.io"), None)
            if res:
                target = self.objects[res.store].get(
                    key_of(inv.get("namespace") if res.namespaced else "", inv.get("name")))
                if target:
                    inv["uid"] = target["metadata"]["uid"]

    def record(self, res, event_type, obj):
        self.history.append((self.rv, res.store, event_type, copy.deepcopy(obj)))
        self.cond.notify_all()

    def state(self):
        with self.cond:
            out = copy.deepcopy(self.objects)
            out["logs"] = copy.deepcopy(self.logs)
            return out


def settle_deployment(obj):
    """Act as the deployment controller having finished: status follows spec at once."""
    spec = obj.get("spec") or {}
    n = spec.get("replicas", 1)
    st = obj.setdefault("status", {})
    st.update({"observedGeneration": obj["metadata"].get("generation", 1), "replicas": n,
               "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n})
    st.pop("unavailableReplicas", None)
    st.setdefault("conditions", [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
         "message": "Deployment has minimum availability.",
         "lastUpdateTime": now_rfc3339(-3600), "lastTransitionTime": now_rfc3339(-3600)},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
         "message": "ReplicaSet has successfully progressed.",
         "lastUpdateTime": now_rfc3339(-3600), "lastTransitionTime": now_rfc3339(-3600)}])


def validate(res, obj):
    """The few checks a test may want to trip (422), not the API server's full validation."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes = []
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    if res.store == "deployments":
        spec = obj.get("spec") or {}
        r = spec.get("replicas", 1)
        if not isinstance(r, int) or isinstance(r, bool) or r < 0:
            causes.append(("spec.replicas", f"Invalid value: {r!r}: must be >= 0"))
        pod_spec = ((spec.get("template") or {}).get("spec")) or {}
        causes += container_causes(pod_spec, "spec.template.spec")
    if res.store == "pods":
        causes += container_causes(obj.get("spec") or {}, "spec")
    if causes:
        raise invalid(res, name, causes)


def container_causes(pod_spec, where):
    causes = []
    for i, c in enumerate(pod_spec.get("containers") or []):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append((f"{where}.containers[{i}].name", "Required value"))
        elif not c.get("image"):
            causes.append((f"{where}.containers[{i}].image", "Required value"))
        for j, e in enumerate(c.get("env") or [] if isinstance(c, dict) else []):
            if not isinstance(e, dict) or not e.get("name"):
                causes.append((f"{where}.containers[{i}].env[{j}].name", "Required value"))
    return causes


# --------------------------------------------------------------------------------------------
# Object operations (called with the store locked).


def commit(store, res, obj, old, event_type):
    """Store obj after a write: new resourceVersion, generation on spec change, watchers told.

    A write that changes nothing is a no-op, as on a real server: same resourceVersion, no
    event (kubectl then says "patched (no change)")."""
    meta = obj["metadata"]
    if event_type == "MODIFIED" and same_object(obj, old):
        return old
    if old is not None:
        for owned in ("uid", "creationTimestamp"):
            meta[owned] = old["metadata"].get(owned)
        gen = old["metadata"].get("generation")
        if gen is not None:
            meta["generation"] = gen + (1 if obj.get("spec") != old.get("spec") else 0)
    elif "spec" in obj and res.store not in ("nodes", "namespaces", "pods"):
        meta["generation"] = 1
    if res.store == "deployments":
        settle_deployment(obj)
    meta["resourceVersion"] = store.next_rv()
    key = key_of(meta.get("namespace"), meta["name"])
    if event_type == "DELETED":
        store.objects[res.store].pop(key, None)
    else:
        store.objects[res.store][key] = obj
    store.record(res, event_type, obj)
    return obj


def same_object(a, b):
    """Equal but for the metadata the server owns."""
    owned = ("resourceVersion", "generation", "uid", "creationTimestamp")
    strip = lambda o: dict(o, metadata={k: v for k, v in (o.get("metadata") or {}).items()
                                        if k not in owned})
    return strip(a) == strip(b)


def get_obj(store, res, ns, name):
    obj = store.objects[res.store].get(key_of(ns if res.namespaced else "", name))
    if obj is None:
        raise not_found(res, name)
    return obj


def check_write(res, obj, ns, name, old=None):
    """A written body must be an object of this kind, named and placed as the URL says."""
    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", "the body must be a JSON object")
    obj.setdefault("kind", res.kind)
    obj.setdefault("apiVersion", res.api_version)
    if obj["kind"] != res.kind:
        raise ApiError(400, "BadRequest", f"kind {obj['kind']!r} is not {res.kind!r}")
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise ApiError(400, "BadRequest", "metadata must be an object")
    if res.namespaced:
        if meta.setdefault("namespace", ns) != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
    if name is not None and meta.get("name", name) != name:
        raise ApiError(400, "BadRequest", "the name of the object "
                       f"({meta.get('name')}) does not match the name on the URL ({name})")
    if name is not None:
        meta["name"] = name
    if old is not None:
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {what} '
                           f'"{name}": the object has been modified; please apply your changes '
                           f'to the latest version and try again')
    validate(res, obj)


def create_obj(store, res, ns, body):
    check_write(res, body, ns, None)
    meta = body["metadata"]
    if res.namespaced and ns not in store.objects["namespaces"]:
        raise not_found(BY_STORE["namespaces"], ns)
    key = key_of(meta.get("namespace"), meta["name"])
    if key in store.objects[res.store]:
        what = f"{res.plural}.{res.group}" if res.group else res.plural
        raise ApiError(409, "AlreadyExists", f'{what} "{meta["name"]}" already exists',
                       {"name": meta["name"], "group": res.group, "kind": res.plural})
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    meta.pop("resourceVersion", None)
    return commit(store, res, body, None, "ADDED")


def update_obj(store, res, ns, name, body):
    old = get_obj(store, res, ns, name)
    check_write(res, body, ns, name, old)
    return commit(store, res, body, old, "MODIFIED")


def patch_obj(store, res, ns, name, content_type, body):
    old = get_obj(store, res, ns, name)
    new = apply_patch(content_type, old, body)
    # A patch may carry a resourceVersion as a precondition; else the current one applies.
    if (new.get("metadata") or {}).get("resourceVersion") in (None, ""):
        new.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
    check_write(res, new, ns, name, old)
    return commit(store, res, new, old, "MODIFIED")


def delete_obj(store, res, ns, name):
    old = get_obj(store, res, ns, name)
    return commit(store, res, copy.deepcopy(old), old, "DELETED")


def scale_of(deploy):
    """The autoscaling/v1 Scale view of a deployment."""
    meta = deploy["metadata"]
    labels = ((deploy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                             "creationTimestamp") if k in meta},
            "spec": {"replicas": (deploy.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (deploy.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))}}


def write_scale(store, res, ns, name, new_scale):
    """Set a deployment's replicas from a Scale object (PUT or patched)."""
    old = get_obj(store, res, ns, name)
    replicas = (new_scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid(res, name, [("spec.replicas", f"Invalid value: {replicas!r}")])
    rv = (new_scale.get("metadata") or {}).get("resourceVersion")
    if rv and rv != old["metadata"]["resourceVersion"]:
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on deployments.apps '
                       f'"{name}": the object has been modified; please apply your changes to '
                       f'the latest version and try again')
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = replicas
    return scale_of(commit(store, res, new, old, "MODIFIED"))


def pod_log(store, ns, name, query):
    pod = get_obj(store, BY_STORE["pods"], ns, name)
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    container = query.get("container", [""])[0] or (containers[0] if len(containers) == 1
                                                     else "")
    if not container:
        raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                       f"choose one of: {containers}")
    if container not in containers:
        raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    logs = store.logs.get(key_of(ns, name), "")
    text = logs.get(container, "") if isinstance(logs, dict) else logs
    tail = query.get("tailLines", [""])[0]
    if tail:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-int(tail):]) if int(tail) > 0 else ""
    return text


# --------------------------------------------------------------------------------------------
# Server-side printing: kubectl get asks for a meta.k8s.io Table; the kinds an operator looks at
# get their usual columns, the others a plain list (kubectl then prints NAME and AGE itself).


def human_age(ts):
    """Kubernetes' short duration form: 45s, 3m10s, 25m, 5h10m, 20h, 3d."""
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    s = max(0, int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def pod_row(o):
    st = o.get("status") or {}
    cs = st.get("containerStatuses") or []
    ready = sum(1 for c in cs if c.get("ready"))
    total = len((o.get("spec") or {}).get("containers") or [])
    reason = st.get("phase", "Unknown")
    for c in cs:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    return [f"{ready}/{total}", reason, sum(c.get("restartCount", 0) for c in cs),
            human_age(o["metadata"].get("creationTimestamp")), st.get("podIP", "<none>"),
            (o.get("spec") or {}).get("nodeName", "<none>")]


def deployment_row(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    return [f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0),
            human_age(o["metadata"].get("creationTimestamp")),
            ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items()))]


def node_row(o):
    conds = (o.get("status") or {}).get("conditions") or []
    ready = next((c for c in conds if c.get("type") == "Ready"), {})
    status = "Ready" if ready.get("status") == "True" else "NotReady"
    if (o.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = [k.split("/", 1)[1] for k in (o["metadata"].get("labels") or {})
             if k.startswith("node-role.kubernetes.io/")]
    info = (o.get("status") or {}).get("nodeInfo") or {}
    return [status, ",".join(roles) or "<none>",
            human_age(o["metadata"].get("creationTimestamp")), info.get("kubeletVersion", "")]


def service_row(o):
    spec = o.get("spec") or {}
    lb = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ext = ",".join(i.get("ip") or i.get("hostname", "") for i in lb) or "<none>"
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), ext,
            ports or "<none>", human_age(o["metadata"].get("creationTimestamp"))]


def event_row(o):
    inv = o.get("involvedObject") or {}
    return [human_age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp")),
            o.get("type", ""), o.get("reason", ""),
            f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}", o.get("message", ""),
            o["metadata"]["name"]]


# store -> (columns after Name, as (name, type, priority); row function)
TABLES = {
    "pods": ([("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "integer", 0),
              ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1)], pod_row),
    "deployments": ([("Ready", "string", 0), ("Up-to-date", "integer", 0),
                     ("Available", "integer", 0), ("Age", "string", 0),
                     ("Containers", "string", 1), ("Images", "string", 1),
                     ("Selector", "string", 1)], deployment_row),
    "nodes": ([("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0),
               ("Version", "string", 0)], node_row),
    "services": ([("Type", "string", 0), ("Cluster-IP", "string", 0),
                  ("External-IP", "string", 0), ("Port(s)", "string", 0),
                  ("Age", "string", 0)], service_row),
    "events": ([("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
                ("Object", "string", 0), ("Message", "string", 0),
                ("Name", "string", 1)], event_row),  # kubectl shows events' name with -o wide
}


def wants_table(accept):
    return "as=Table" in (accept or "")


def as_table(res, items, rv, include):
    """A meta.k8s.io/v1 Table of items, or None when this kind has no columns here."""
    if res.store not in TABLES:
        return None
    columns, row = TABLES[res.store]
    named_first = all(n != "Name" for n, _, _ in columns)
    if named_first:
        columns = [("Name", "string", 0)] + columns
    defs = [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": "",
             "priority": p} for n, t, p in columns]
    rows = []
    for o in items:
        if include == "Object":
            embedded = o
        elif include == "None":
            embedded = None
        else:
            embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"]}
        r = {"cells": ([o["metadata"]["name"]] if named_first else []) + row(o)}
        if embedded is not None:
            r["object"] = embedded
        rows.append(r)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv}, "columnDefinitions": defs, "rows": rows}


# --------------------------------------------------------------------------------------------
# Discovery documents.


def discovery_resources(group, version):
    out = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        item = {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                "kind": r.kind, "verbs": r.verbs}
        if r.short:
            item["shortNames"] = r.short
        if r.categories:
            item["categories"] = r.categories
        out.append(item)
        for sub, (kind, sgroup, sversion, verbs) in r.subresources.items():
            s = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                 "kind": kind, "verbs": verbs}
            if (sgroup, sversion) != (group, version):
                s["group"], s["version"] = sgroup, sversion
            out.append(s)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": out}


def discovery_groups():
    groups = []
    for g, v in GROUP_VERSIONS:
        gv = {"groupVersion": f"{g}/{v}", "version": v}
        groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


# OpenAPI v3, only as far as kubectl needs it: `kubectl create/apply/replace -f` validate
# client-side unless the server's OpenAPI shows that PATCH takes ?fieldValidation= (then
# kubectl sends fieldValidation=Strict and skips its own validation). Without any OpenAPI
# they fail with "failed to download openapi". No schemas are served.


def openapi_path(group, version):
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def openapi_root():
    gvs = [("", "v1")] + GROUP_VERSIONS
    return {"paths": {openapi_path(g, v): {"serverRelativeURL":
                                           f"/openapi/v3/{openapi_path(g, v)}?hash=fake"}
                      for g, v in gvs}}


def openapi_group_version(group, version):
    paths = {}
    for r in RESOURCES:
        if (r.group, r.version) != (group, version) or "patch" not in r.verbs:
            continue
        scope = "namespaces/{namespace}/" if r.namespaced else ""
        paths[f"/{openapi_path(group, version)}/{scope}{r.plural}/{{name}}"] = {"patch": {
            "x-kubernetes-group-version-kind": {"group": group, "version": version,
                                                "kind": r.kind},
            "parameters": [{"name": "fieldValidation", "in": "query",
                            "schema": {"type": "string", "uniqueItems": True}}],
            "responses": {"200": {"description": "OK"}}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (vigil fake)",
                                         "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": {}}}


def discovery(path):
    """The document for a discovery path, or None."""
    if path == "/version":
        return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-vigil-fake",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": "127.0.0.1"}]}
    if path == "/apis":
        return discovery_groups()
    if path == "/api/v1":
        return discovery_resources("", "v1")
    if path == "/openapi/v3":
        return openapi_root()
    if path.startswith("/openapi/v3/"):
        for g, v in [("", "v1")] + GROUP_VERSIONS:
            if path == f"/openapi/v3/{openapi_path(g, v)}":
                return openapi_group_version(g, v)
    for g, v in GROUP_VERSIONS:
        if path == f"/apis/{g}/{v}":
            return discovery_resources(g, v)
        if path == f"/apis/{g}":
            gv = {"groupVersion": f"{g}/{v}", "version": v}
            return {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv],
                    "preferredVersion": gv}
    return None


# --------------------------------------------------------------------------------------------
# Routing: a path to (resource, namespace, name, subresource).


def route(path):
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    ns = None
    # /namespaces/NS/PLURAL/... is a namespaced path unless PLURAL is a namespace subresource.
    if rest[0] == "namespaces" and len(rest) >= 3:
        res = find_resource(group, version, rest[2])
        if res is not None and res.namespaced:
            ns, rest = rest[1], rest[2:]
    res = find_resource(group, version, rest[0])
    if res is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return res, ns, name, sub


# --------------------------------------------------------------------------------------------
# The HTTP side.


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vigil-fake-kube-apiserver"

    # ---- plumbing

    def log_message(self, fmt, *args):
        sys.stderr.write("kube_apiserver: %s\n" % (fmt % args))

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, code, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.answered = code

    def log_request_line(self, body_bytes):
        url = urlsplit(self.path)
        if url.path.startswith("/_test/"):
            return
        text = body_bytes.decode("utf-8", "replace")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        line = json.dumps({"method": self.command, "path": url.path, "query": url.query,
                           "content_type": self.headers.get("Content-Type") or "",
                           "body": body, "status": self.answered})
        self.server.append_request(line)

    def authorized(self):
        want = f"Bearer {self.server.token}"
        got = self.headers.get("Authorization") or ""
        return hmac.compare_digest(got.encode(), want.encode())

    # ---- entry points

    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def handle_any(self):
        self.answered = 0
        body = b""
        try:
            body = self.read_body()
            if not self.authorized():
                self.send(401, status_obj(401, "Unauthorized", "Unauthorized"))
            else:
                self.dispatch(body)
        except ApiError as e:
            self.send(e.code, e.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # answer 500 rather than drop the connection
            traceback.print_exc()
            self.send(500, status_obj(500, "InternalError", f"fake apiserver: {e!r}"))
        finally:
            self.log_request_line(body)

    def dispatch(self, body_bytes):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path.startswith("/_test/"):
            return self.control(url.path)
        if url.path.startswith("/apis/metrics.k8s.io") and not self.server.store.metrics:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if self.command in ("GET", "HEAD"):
            doc = discovery(url.path.rstrip("/") or "/")
            if doc is not None:
                return self.send(200, doc)
        target = route(url.path)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        res, ns, name, sub = target
        body = None
        if body_bytes:
            try:
                body = json.loads(body_bytes)
            except ValueError:
                ctype = (self.headers.get("Content-Type") or "").lower()
                if "yaml" in ctype or "protobuf" in ctype:
                    raise ApiError(415, "UnsupportedMediaType",
                                   f"this fake server only accepts JSON bodies, not {ctype}")
                raise ApiError(400, "BadRequest", "the request body is not JSON")
        if self.command == "PATCH" and "apply-patch" in (self.headers.get("Content-Type") or ""):
            raise ApiError(415, "UnsupportedMediaType", "server-side apply is not supported")
        if name is None and self.command == "GET" and query.get("watch", [""])[0] in ("true", "1"):
            return self.watch(res, ns, query)
        store = self.server.store
        dry = bool(query.get("dryRun")) and self.command in ("POST", "PUT", "PATCH", "DELETE")
        # The answer is computed and encoded under the lock, sent without it, so a slow
        # client holds no one up.
        with store.cond:
            saved = (copy.deepcopy(store.objects), store.rv, len(store.history)) if dry else None
            try:
                code, doc, ctype = self.operate(res, ns, name, sub, query, body)
                data = doc.encode() if isinstance(doc, str) else json.dumps(doc).encode()
            finally:
                if dry:  # ?dryRun=All: answered as if written, then all put back unseen
                    store.objects, store.rv = saved[0], saved[1]
                    del store.history[saved[2]:]
        self.send(code, data, ctype)

    def control(self, path):
        store = self.server.store
        if self.command == "GET" and path == "/_test/state":
            return self.send(200, store.state())
        if self.command == "POST" and path == "/_test/reset":
            store.reset()
            return self.send(200, {"reset": True})
        if self.command == "POST" and path == "/_test/clear-requests":
            self.server.clear_requests()
            return self.send(200, {"cleared": True})
        query = parse_qs(urlsplit(self.path).query)
        if self.command == "POST" and path == "/_test/drop-watches":
            with store.cond:
                store.drops += 1
                store.cond.notify_all()
            return self.send(200, {"dropped": True})
        if self.command == "POST" and path == "/_test/skip-rv":
            with store.cond:
                store.rv += max(0, int(query.get("n", ["10"])[0]))
                store.cond.notify_all()
                return self.send(200, {"resourceVersion": str(store.rv)})
        if self.command == "POST" and path == "/_test/compact":
            with store.cond:
                store.compacted = int(query.get("rv", [str(store.rv + 1)])[0])
                store.history = [h for h in store.history if h[0] >= store.compacted]
                return self.send(200, {"compacted": str(store.compacted)})
        if self.command == "POST" and path == "/_test/config":
            with store.cond:
                if "metrics" in query:
                    if query["metrics"][0] not in ("on", "off"):
                        raise ApiError(400, "BadRequest", "metrics: on or off")
                    store.metrics = query["metrics"][0] == "on"
                if "gone" in query:
                    if query["gone"][0] not in ("event", "status"):
                        raise ApiError(400, "BadRequest", "gone: event or status")
                    store.gone_as = query["gone"][0]
                if "bookmark" in query:
                    store.bookmark_s = max(0.05, float(query["bookmark"][0]))
                return self.send(200, {"gone": store.gone_as, "bookmark": store.bookmark_s,
                                       "metrics": store.metrics})
        raise ApiError(404, "NotFound", f"no control endpoint {self.command} {path}")

    # ---- resource verbs: (code, document, content type), called with the store locked

    def not_allowed(self, res):
        raise ApiError(405, "MethodNotAllowed",
                       f"the server does not allow this method on the requested resource "
                       f"({self.command} {res.plural})")

    def operate(self, res, ns, name, sub, query, body):
        if name is None:
            return self.collection(res, ns, query, body)
        if sub is None:
            return self.item(res, ns, name, query, body)
        return self.subresource(res, ns, name, sub, query, body)

    def maybe_table(self, res, items, rv, query):
        """kubectl get's rows when it asked for a Table and this kind has columns, else None."""
        if not wants_table(self.headers.get("Accept")):
            return None
        return as_table(res, items, rv, query.get("includeObject", ["Metadata"])[0])

    def collection(self, res, ns, query, body):
        store = self.server.store
        if self.command in ("GET", "HEAD"):
            doc = self.list_doc(res, ns, query)
            table = self.maybe_table(res, doc["items"], doc["metadata"]["resourceVersion"],
                                     query)
            return 200, table or doc, "application/json"
        if self.command == "POST" and "create" in res.verbs:
            return 201, create_obj(store, res, ns, body), "application/json"
        self.not_allowed(res)

    def item(self, res, ns, name, query, body):
        store = self.server.store
        if self.command in ("GET", "HEAD"):
            obj = get_obj(store, res, ns, name)
            table = self.maybe_table(res, [obj], obj["metadata"]["resourceVersion"], query)
            return 200, table or obj, "application/json"
        if "update" not in res.verbs:
            self.not_allowed(res)
        if self.command == "PUT":
            return 200, update_obj(store, res, ns, name, body), "application/json"
        if self.command == "PATCH":
            ctype = self.headers.get("Content-Type") or ""
            return 200, patch_obj(store, res, ns, name, ctype, body), "application/json"
        if self.command == "DELETE":
            return 200, delete_obj(store, res, ns, name), "application/json"
        self.not_allowed(res)

    def subresource(self, res, ns, name, sub, query, body):
        store = self.server.store
        ctype = self.headers.get("Content-Type") or ""
        if sub not in res.subresources:
            raise ApiError(404, "NotFound", f"{res.plural}/{sub} is not served by this fake")
        if (res.store, sub) == ("pods", "log") and self.command == "GET":
            return 200, pod_log(store, ns, name, query), "text/plain"
        if (res.store, sub) == ("deployments", "scale"):
            if self.command == "GET":
                return 200, scale_of(get_obj(store, res, ns, name)), "application/json"
            if self.command in ("PUT", "PATCH"):
                scale = body or {}
                if self.command == "PATCH":
                    scale = apply_patch(ctype, scale_of(get_obj(store, res, ns, name)), body)
                return 200, write_scale(store, res, ns, name, scale), "application/json"
        if sub == "status":  # status writes: like the object's, but the spec is kept
            if self.command == "GET":
                return 200, get_obj(store, res, ns, name), "application/json"
            if self.command in ("PUT", "PATCH"):
                old = get_obj(store, res, ns, name)
                new = copy.deepcopy(body if self.command == "PUT"
                                    else apply_patch(ctype, old, body))
                if "spec" in old:
                    new["spec"] = copy.deepcopy(old["spec"])
                new.setdefault("metadata", {}).setdefault(
                    "resourceVersion", old["metadata"]["resourceVersion"])
                check_write(res, new, ns, name, old)
                return 200, commit(store, res, new, old, "MODIFIED"), "application/json"
        self.not_allowed(res)

    def matching(self, res, ns, query, objs):
        labels = parse_selector(query.get("labelSelector", [""])[0])
        fields = parse_selector(query.get("fieldSelector", [""])[0])
        for key in sorted(objs):
            obj = objs[key]
            if ns and (obj.get("metadata") or {}).get("namespace") != ns:
                continue
            if labels_match(obj, labels) and fields_match(obj, fields):
                yield obj

    def list_doc(self, res, ns, query):
        store = self.server.store
        items = list(self.matching(res, ns, query, store.objects[res.store]))
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(store.rv)}, "items": items}

    # ---- watch

    def watch(self, res, ns, query):
        """Current objects as ADDED (unless resuming from a resourceVersion), then changes;
        BOOKMARKs when asked for; 410 Gone for a resourceVersion older than the last compaction;
        cut short by /_test/drop-watches."""
        store = self.server.store
        timeout = int(query.get("timeoutSeconds", ["30"])[0] or 30)
        since = query.get("resourceVersion", [""])[0]
        bookmarks = query.get("allowWatchBookmarks", [""])[0] in ("true", "1")
        with store.cond:
            try:
                stale = bool(since) and since != "0" and int(since) < store.compacted
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {since!r}")
            gone_as, drops, bookmark_s = store.gone_as, store.drops, store.bookmark_s
        gone = status_obj(410, "Expired", f"too old resource version: {since} "
                          f"({store.compacted})")
        if stale and gone_as == "status":
            raise ApiError(410, "Expired", gone["message"])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.answered = 200
        self.close_connection = True
        with store.cond:
            if since and since != "0":
                seen = int(since)
                initial = []
            else:
                seen = store.rv
                initial = [copy.deepcopy(o) for o in
                           self.matching(res, ns, query, store.objects[res.store])]
        if stale:  # what a real server does for a watch: 200, then an ERROR event
            self.send_event("ERROR", gone)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        table = wants_table(self.headers.get("Accept")) and res.store in TABLES
        include = query.get("includeObject", ["Metadata"])[0]
        for obj in initial:
            self.send_event("ADDED", obj, table and res, include)
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + bookmark_s
        while True:
            with store.cond:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if bookmarks:
                    left = min(left, max(0.0, next_bookmark - time.monotonic()))
                store.cond.wait_for(lambda: store.rv > seen or store.drops != drops,
                                    timeout=left)
                if store.drops != drops:  # /_test/drop-watches: cut, no final chunk
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                fresh = [h for h in store.history if h[0] > seen and h[1] == res.store]
                seen = max(seen, store.rv)
            for _, _, kind, obj in fresh:
                if list(self.matching(res, ns, query, {"k": obj})):
                    self.send_event(kind, obj, table and res, include)
            if bookmarks and time.monotonic() >= next_bookmark:
                self.send_event("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                             "metadata": {"resourceVersion": str(seen)}})
                next_bookmark = time.monotonic() + bookmark_s
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_event(self, kind, obj, table_res=None, include="Metadata"):
        if table_res:  # kubectl get -w asked for rows: one Table per event
            obj = as_table(table_res, [obj], obj["metadata"]["resourceVersion"], include)
        data = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, store, token, requests_path, tls):
        super().__init__(addr, Handler)
        self.store, self.token, self.requests_path = store, token, requests_path
        self.requests_lock = threading.Lock()
        self.tls = tls
        open(requests_path, "w").close()

    def get_request(self):
        # TLS handshake happens in the request's thread, so a stuck client blocks no one.
        sock, addr = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.settimeout(60)
            request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write(f"kube_apiserver: TLS handshake with {client_address}: {e}\n")
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def append_request(self, line):
        with self.requests_lock, open(self.requests_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    def clear_requests(self):
        with self.requests_lock:
            open(self.requests_path, "w").close()


# --------------------------------------------------------------------------------------------
# Files in DIR.


def make_certificate(d):
    crt, key = os.path.join(d, "ca.crt"), os.path.join(d, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
                    "-addext", "extendedKeyUsage=serverAuth"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return crt, key


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def kubeconfig(port, ca, token):
    # JSON is YAML, so no YAML writer is needed.
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "fake", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                  "certificate-authority": ca}}],
        "users": [{"name": "fake", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                  "namespace": "reconciliation"}}],
        "current-context": "fake"}, indent=2) + "\n"


# --------------------------------------------------------------------------------------------
# The default seed: the incident document's "reconciliation" application.


def default_seed():
    ns = "reconciliation"
    s = {r.store: {} for r in RESOURCES}
    for name in (ns, "default", "kube-system", "kube-node-lease"):
        s["namespaces"][name] = {"metadata": {"labels": {"kubernetes.io/metadata.name": name}},
                                 "spec": {"finalizers": ["kubernetes"]},
                                 "status": {"phase": "Active"}}

    def deploy(name, replicas, image, port, env=(), limits=None, requests=None):
        container = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                     "ports": [{"containerPort": port, "protocol": "TCP"}],
                     "env": [dict(e) for e in env],
                     "resources": {k: v for k, v in (("limits", limits),
                                                     ("requests", requests)) if v}}
        if not env:
            del container["env"]
        s["deployments"][f"{ns}/{name}"] = {
            "metadata": {"labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxUnavailable": "25%",
                                                    "maxSurge": "25%"}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container],
                                           "restartPolicy": "Always",
                                           "terminationGracePeriodSeconds": 30,
                                           "dnsPolicy": "ClusterFirst"}}}}
        return container

    backend = deploy("backend", 2, "reconciliation/backend:1.4.2", 8080,
                     env=[{"name": "DB_HOST", "value": "postgres-service"},
                          {"name": "LOG_LEVEL", "value": "info"}],
                     limits={"memory": "1Gi", "cpu": "500m"},
                     requests={"memory": "512Mi", "cpu": "250m"})
    frontend = deploy("frontend", 2, "reconciliation/frontend:2.1.0", 3000,
                      limits={"memory": "512Mi", "cpu": "250m"})
    postgres = deploy("postgres", 1, "postgres:15.4", 5432,
                      env=[{"name": "POSTGRES_DB", "value": "reconciliation"}],
                      limits={"memory": "2Gi", "cpu": "1000m"})

    pods = [("backend-7d4b9c-abcde", backend, "worker-1", "10.244.1.11", 3),
            ("backend-7d4b9c-fghij", backend, "worker-2", "10.244.2.12", 2),
            ("frontend-5f6d7-klmno", frontend, "worker-1", "10.244.1.13", 0),
            ("postgres-0", postgres, "worker-2", "10.244.2.14", 0)]
    hosts = {"worker-1": "10.0.1.11", "worker-2": "10.0.1.12"}
    for name, c, node, ip, restarts in pods:
        app = c["name"]
        s["pods"][f"{ns}/{name}"] = {
            "metadata": {"labels": {"app": app}},
            "spec": {"containers": [copy.deepcopy(c)], "nodeName": node,
                     "restartPolicy": "Always", "serviceAccountName": "default",
                     "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30},
            "status": {
                "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "hostIP": hosts[node], "startTime": now_rfc3339(-3600), "qosClass": "Burstable",
                "conditions": [{"type": t, "status": "True",
                                "lastTransitionTime": now_rfc3339(-3500)}
                               for t in ("Initialized", "Ready", "ContainersReady",
                                         "PodScheduled")],
                "containerStatuses": [{
                    "name": app, "ready": True, "started": True, "restartCount": restarts,
                    "image": c["image"], "imageID": f"docker.io/{c['image']}@sha256:" + "0" * 64,
                    "containerID": "containerd://" + uuid.uuid5(
                        uuid.NAMESPACE_URL, name).hex * 2,
                    "state": {"running": {"startedAt": now_rfc3339(-600)}},
                    "lastState": ({"terminated": {"exitCode": 1, "reason": "Error",
                                                  "startedAt": now_rfc3339(-900),
                                                  "finishedAt": now_rfc3339(-610)}}
                                  if restarts else {})}]}}

    for name, app, port, target, cip in [("backend", "backend", 8080, 8080, "10.96.10.10"),
                                         ("frontend", "frontend", 80, 3000, "10.96.10.11"),
                                         ("postgres-service", "postgres", 5432, 5432,
                                          "10.96.10.12"),
                                         ("redis-service", "redis", 6379, 6379, "10.96.10.13")]:
        s["services"][f"{ns}/{name}"] = {
            "metadata": {"labels": {"app": app}},
            "spec": {"type": "ClusterIP", "clusterIP": cip, "clusterIPs": [cip],
                     "selector": {"app": app}, "sessionAffinity": "None",
                     "ports": [{"name": "main", "port": port, "targetPort": target,
                                "protocol": "TCP"}]}}
        addrs = [{"ip": p[3], "nodeName": p[2],
                  "targetRef": {"kind": "Pod", "namespace": ns, "name": p[0]}}
                 for p in pods if p[1]["name"] == app]
        s["endpoints"][f"{ns}/{name}"] = {
            "metadata": {"labels": {"app": app}},
            "subsets": [{"addresses": addrs, "ports": [{"name": "main", "port": target,
                                                        "protocol": "TCP"}]}] if addrs else []}
        s["endpointslices"][f"{ns}/{name}-x1"] = {
            "metadata": {"labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by":
                                        "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a["ip"]], "nodeName": a["nodeName"],
                           "conditions": {"ready": True, "serving": True, "terminating": False},
                           "targetRef": a["targetRef"]} for a in addrs],
            "ports": [{"name": "main", "port": target, "protocol": "TCP"}]}

    s["networkpolicies"][f"{ns}/reconciliation-network-policy"] = {
        "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
                 "policyTypes": ["Ingress"]}}
    s["ingresses"][f"{ns}/reconciliation-ingress"] = {
        "metadata": {"annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "10m"}},
        "spec": {"ingressClassName": "nginx", "rules": [{
            "host": "reconciliation.example.com",
            "http": {"paths": [
                {"path": "/api", "pathType": "Prefix",
                 "backend": {"service": {"name": "backend", "port": {"number": 8080}}}},
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "frontend", "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}}
    s["configmaps"][f"{ns}/reconciliation-config"] = {"data": {
        "DATABASE_URL": "postgres://postgres-service:5432/reconciliation",
        "DB_POOL_SIZE": "10", "LOG_LEVEL": "info", "REDIS_URL": "redis://redis-service:6379"}}
    s["secrets"][f"{ns}/reconciliation-secrets"] = {"type": "Opaque", "data": {
        "DB_PASSWORD": base64.b64encode(b"not-a-real-password").decode(),
        "API_KEY": base64.b64encode(b"fake-api-key").decode()}}

    for node, cpu_used, mem_used in [("worker-1", "1200m", "6Gi"), ("worker-2", "800m", "4Gi")]:
        s["nodes"][node] = {
            "metadata": {"labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64"}},
            "spec": {"podCIDR": "10.244.%s.0/24" % node[-1]},
            "status": {
                "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110",
                             "ephemeral-storage": "100Gi"},
                "allocatable": {"cpu": "3800m", "memory": "15Gi", "pods": "110",
                                "ephemeral-storage": "95Gi"},
                "conditions": [
                    {"type": t, "status": st, "reason": r, "message": m,
                     "lastHeartbeatTime": now_rfc3339(-30),
                     "lastTransitionTime": now_rfc3339(-86400)}
                    for t, st, r, m in [
                        ("MemoryPressure", "False", "KubeletHasSufficientMemory",
                         "kubelet has sufficient memory available"),
                        ("DiskPressure", "False", "KubeletHasNoDiskPressure",
                         "kubelet has no disk pressure"),
                        ("PIDPressure", "False", "KubeletHasSufficientPID",
                         "kubelet has sufficient PID available"),
                        ("Ready", "True", "KubeletReady", "kubelet is posting ready status")]],
                "addresses": [{"type": "InternalIP", "address": hosts[node]},
                              {"type": "Hostname", "address": node}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "kubeProxyVersion": "v1.32.0",
                             "containerRuntimeVersion": "containerd://1.7.20",
                             "kernelVersion": "6.1.0-25-amd64", "osImage": "Debian GNU/Linux 12",
                             "operatingSystem": "linux", "architecture": "amd64",
                             "machineID": uuid.uuid5(uuid.NAMESPACE_URL, node).hex,
                             "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, node)),
                             "bootID": str(uuid.uuid5(uuid.NAMESPACE_OID, node))}}}
        s["leases"][f"kube-node-lease/{node}"] = {
            "spec": {"holderIdentity": node, "leaseDurationSeconds": 40,
                     "renewTime": now_rfc3339(-5).replace("Z", ".000000Z")}}
        s["nodemetrics"][node] = {"metadata": {"labels": {"kubernetes.io/hostname": node}},
                                  "timestamp": now_rfc3339(-15), "window": "20s",
                                  "usage": {"cpu": cpu_used, "memory": mem_used}}

    usage = {"backend": ("450m", "900Mi"), "frontend": ("100m", "200Mi"),
             "postgres": ("300m", "1500Mi")}
    for name, c, *_ in pods:
        cpu, mem = usage[c["name"]]
        s["podmetrics"][f"{ns}/{name}"] = {
            "metadata": {"labels": {"app": c["name"]}}, "timestamp": now_rfc3339(-15),
            "window": "20s", "containers": [{"name": c["name"],
                                             "usage": {"cpu": cpu, "memory": mem}}]}

    for i, (pod, *_rest) in enumerate(pods[:2]):
        s["events"][f"{ns}/{pod}.17f0a1b2c3d4e5f{i}"] = {
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "apiVersion": "v1",
                               "fieldPath": "spec.containers{backend}"},
            "reason": "BackOff", "type": "Warning", "count": 5,
            "message": f"Back-off restarting failed container backend in pod {pod}_{ns}",
            "source": {"component": "kubelet", "host": _rest[1]},
            "firstTimestamp": now_rfc3339(-900), "lastTimestamp": now_rfc3339(-120),
            "reportingComponent": "kubelet", "reportingInstance": _rest[1]}

    s["logs"] = {
        f"{ns}/backend-7d4b9c-abcde": {"backend": backend_log("abcde")},
        f"{ns}/backend-7d4b9c-fghij": {"backend": backend_log("fghij")},
        f"{ns}/frontend-5f6d7-klmno": {"frontend": (
            "2026-01-01T10:00:00Z INFO listening on :3000\n"
            "2026-01-01T10:05:01Z WARN upstream backend responded 502 for GET /api/reconcile\n"
            "2026-01-01T10:05:02Z INFO GET / 200 12ms\n")},
        f"{ns}/postgres-0": {"postgres": (
            "2026-01-01 10:00:00 UTC LOG:  database system is ready to accept connections\n"
            "2026-01-01 10:05:00 UTC FATAL:  sorry, too many clients already\n")},
    }
    return s


def backend_log(suffix):
    return (f"2026-01-01T10:00:00Z INFO backend {suffix} starting, version 1.4.2\n"
            "2026-01-01T10:00:01Z INFO connected to postgres-service:5432\n"
            "2026-01-01T10:05:00Z ERROR database connection pool exhausted (DB_POOL_SIZE=10)\n"
            "2026-01-01T10:05:01Z WARN request /api/reconcile took 5012ms\n"
            "2026-01-01T10:05:02Z ERROR reconciliation job 4411 failed: timeout acquiring "
            "connection\n"
            "2026-01-01T10:05:03Z INFO auth: login ok for user ops\n")


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seed")
    ap.add_argument("--token")
    args = ap.parse_args()
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)

    seed = default_seed()
    if args.seed:
        with open(args.seed, encoding="utf-8") as f:
            seed = json.load(f)
    store = Store(seed)
    token = args.token or secrets.token_hex(16)
    crt, key = make_certificate(d)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(crt, key)
    tls.set_alpn_protocols(["http/1.1"])

    server = Server(("127.0.0.1", 0), store, token, os.path.join(d, "requests.jsonl"), tls)
    port = server.server_address[1]
    write_atomic(os.path.join(d, "token"), token + "\n")
    write_atomic(os.path.join(d, "kubeconfig"), kubeconfig(port, crt, token))
    write_atomic(os.path.join(d, "port"), f"{port}\n")  # last: the readiness signal
    sys.stderr.write(f"kube_apiserver: listening on https://127.0.0.1:{port} (dir {d})\n")

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
