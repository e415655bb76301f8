// Validates rendered Kubernetes manifests (kubectl kustomize output), offline:
//
//   node validate-k8s.mjs NODE_MODULES RENDERED.yaml...
//
// 1. Every object against the Kubernetes OpenAPI schema of its apiVersion and kind, as the npm
//    package kubernetes-models ships it (JSON-schema validators generated from the Kubernetes
//    release's OpenAPI document): types, required fields, enums, formats.
// 2. Unknown fields refused: the generated validators allow extra properties, so every field of
//    every object is looked up in the same package's declarations (its .d.ts interfaces, generated
//    from the same document), recursively; a misspelt or misplaced field is an error.
// 3. Prints, for the caller's consistency checks (tests/deploy/kubernetes.sh), one JSON line per
//    container: {"file", "workload", "container", "init", "command", "env", "mounts", "ports",
//    "probe_ports", "configmaps"} plus one line per Service and NetworkPolicy with its ports, the
//    ConfigMaps' data keyed by name, and one line per Secret the manifests declare (its type,
//    annotations and keys: a service-account-token Secret is filled in by Kubernetes).
//
// Exit 0 when every object is valid, 1 otherwise (each error on stderr as FILE: KIND/NAME: PATH: why).
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModulesArg, ...files] = process.argv.slice(2);
const nodeModules = nodeModulesArg && resolve(nodeModulesArg);
if (!nodeModules || files.length === 0) {
    console.error("usage: node validate-k8s.mjs NODE_MODULES RENDERED.yaml...");
    process.exit(2);
}
const require = createRequire(join(nodeModules, "noop.js"));
const YAML = require("yaml");
const modelsDir = join(nodeModules, "kubernetes-models");

// ---- the declarations: interface name -> {field: type text} ----
const interfaces = new Map();
function readDeclarations(dir) {
    for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) {
            if (entry !== "node_modules" && entry !== "_schemas") readDeclarations(path);
            continue;
        }
        if (!entry.endsWith(".d.ts")) continue;
        const text = readFileSync(path, "utf8");
        const alias = /export type \{ (\w+) as (\w+),/.exec(text);
        const body = /export interface (\w+)(?: extends [\w, ]+)? \{\n([\s\S]*?)\n\}/.exec(text);
        if (!alias || !body || alias[1] !== body[1]) continue;
        parseBody(alias[2], body[2], 4);
    }
}

// The fields of an interface body at an indentation. A field's type is one line, or spans
// several: a map ({ [key: string]: T; }) or an inline object (Array<{ ...fields... }>), whose
// fields are registered under a name of their own ("Outer.field").
function parseBody(name, text, indent) {
    const fields = {};
    const pad = " ".repeat(indent);
    const re = new RegExp(`^${pad}"([^"]+)"\\??: (Array<\\{\\n[\\s\\S]*?\\n${pad}\\}>|\\{\\n[\\s\\S]*?\\n${pad}\\}|.*);$`, "gm");
    for (const m of text.matchAll(re)) {
        const inline = /^(Array<)?\{\n([\s\S]*)\n *\}>?$/.exec(m[2]);
        if (inline && !/^\s*\[key: string\]/.test(inline[2])) {
            const sub = `${name}.${m[1]}`;
            parseBody(sub, inline[2], indent + 4);
            fields[m[1]] = inline[1] ? `Array<${sub}>` : sub;
        } else {
            fields[m[1]] = m[2].replace(/\s+/g, " ");
        }
    }
    interfaces.set(name, fields);
}
readDeclarations(modelsDir);
readDeclarations(join(nodeModules, "@kubernetes-models", "apimachinery"));

function checkFields(value, typeName, path, errors) {
    const fields = interfaces.get(typeName);
    if (!fields || value === null || typeof value !== "object" || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
        if (!(key in fields)) {
            errors.push(`${path}.${key}: unknown field (${typeName.replace(/^IIoK8s/, "")} has no such field)`);
            continue;
        }
        const type = fields[key];
        let m;
        if ((m = /^Array<(IIoK8s[\w.]+)>$/.exec(type)) && Array.isArray(child))
            child.forEach((item, i) => checkFields(item, m[1], `${path}.${key}[${i}]`, errors));
        else if ((m = /^\{\s*\[key: string\]: (IIoK8s\w+);?\s*\}$/.exec(type)) && child && typeof child === "object")
            for (const [k, v] of Object.entries(child)) checkFields(v, m[1], `${path}.${key}.${k}`, errors);
        else if ((m = /^(IIoK8s[\w.]+)$/.exec(type))) checkFields(child, m[1], `${path}.${key}`, errors);
    }
}

// ---- the objects ----
async function modelFor(apiVersion, kind) {
    const dir = apiVersion.includes("/") ? apiVersion : apiVersion; // "v1", "apps/v1", "networking.k8s.io/v1"
    const js = join(modelsDir, dir, `${kind}.js`);
    let mod;
    try {
        mod = await import(pathToFileURL(js).href);
    } catch {
        return null;
    }
    const dts = readFileSync(join(modelsDir, dir, `${kind}.d.ts`), "utf8");
    const alias = /export type \{ \w+ as (\w+),/.exec(dts);
    return { Model: mod[kind], typeName: alias ? alias[1] : null };
}

let failed = 0;
const out = [];
for (const file of files) {
    const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
    for (const doc of docs) {
        if (doc.errors.length) {
            console.error(`${file}: YAML: ${doc.errors[0].message}`);
            failed++;
            continue;
        }
        const obj = doc.toJS();
        if (!obj) continue;
        const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
        const model = obj.apiVersion && obj.kind ? await modelFor(obj.apiVersion, obj.kind) : null;
        if (!model || !model.Model) {
            console.error(`${where}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
            failed++;
            continue;
        }
        const errors = [];
        try {
            new model.Model(obj).validate();
        } catch (e) {
            errors.push(String(e.message || e));
        }
        checkFields(obj, model.typeName, "", errors);
        for (const e of errors) console.error(`${where}: ${e}`);
        if (errors.length) failed++;
        describe(file, obj);
    }
}
for (const line of out) console.log(JSON.stringify(line));
if (failed) {
    console.error(`${failed} invalid object(s)`);
    process.exit(1);
}

// What the consistency checks need, per object.
function describe(file, obj) {
    const kind = obj.kind;
    if (kind === "ConfigMap") {
        out.push({ file, kind, name: obj.metadata.name, data: obj.data || {} });
        return;
    }
    if (kind === "Secret") {
        out.push({
            file,
            kind,
            name: obj.metadata.name,
            type: obj.type || "Opaque",
            annotations: obj.metadata.annotations || {},
            keys: Object.keys({ ...(obj.data || {}), ...(obj.stringData || {}) }),
        });
        return;
    }
    if (kind === "Service") {
        out.push({ file, kind, name: obj.metadata.name, ports: obj.spec.ports || [] });
        return;
    }
    if (kind === "NetworkPolicy") {
        const ports = (obj.spec.ingress || []).flatMap((r) => (r.ports || []).map((p) => p.port));
        out.push({ file, kind, name: obj.metadata.name, ports });
        return;
    }
    const pod = obj.spec?.template?.spec;
    if (!pod) return;
    const volumes = Object.fromEntries((pod.volumes || []).map((v) => [v.name, v]));
    for (const claim of obj.spec.volumeClaimTemplates || []) volumes[claim.metadata.name] = { pvc: true };
    const annotations = obj.spec.template.metadata?.annotations || {};
    const each = (c, init) => {
        const probePorts = ["livenessProbe", "readinessProbe", "startupProbe"]
            .map((p) => c[p]?.httpGet?.port ?? c[p]?.tcpSocket?.port)
            .filter((p) => p !== undefined);
        const probeCommands = ["livenessProbe", "readinessProbe", "startupProbe"]
            .map((p) => c[p]?.exec?.command)
            .filter(Boolean);
        out.push({
            file,
            kind: "Container",
            workload: `${kind}/${obj.metadata.name}`,
            container: c.name,
            init,
            command: c.command || [],
            args: c.args || [],
            probe_commands: probeCommands,
            env: (c.env || []).map((e) => e.name),
            mounts: (c.volumeMounts || []).map((m) => ({ path: m.mountPath, volume: volumes[m.name] || null, name: m.name })),
            ports: (c.ports || []).map((p) => ({ name: p.name, port: p.containerPort })),
            probe_ports: probePorts,
            scrape_port: annotations["prometheus.io/port"] || null,
        });
    };
    for (const c of pod.initContainers || []) each(c, true);
    for (const c of pod.containers || []) each(c, false);
}
