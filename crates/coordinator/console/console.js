// The MPC co-signer console. Plain JavaScript, no dependencies, no build step.
//
// Sign-in: the administrator's key file (hex of PKCS#8 DER, the SDK's format) is imported as a
// non-extractable WebCrypto ECDSA P-256 key and kept in this tab's memory; every request is
// signed here exactly as the API expects (see mpc_api::auth):
//   BIZ-API-KEY        hex of the DER SubjectPublicKeyInfo (uncompressed point)
//   BIZ-API-NONCE      milliseconds since the epoch, unique per request
//   BIZ-API-SIGNATURE  hex of the DER ECDSA P-256 / SHA-256 signature over
//     "data" + body without TAB/LF/FF/CR/SPACE + "path" + path + "timestamp" + nonce
//     + "version" + "1.0.0" + api key hex
// Every value from the server is inserted as text (textContent), never as HTML.
"use strict";

const PATHS = {
  state: "/console/state",
  createOrganization: "/v1/admin/organization/create",
  createApiUser: "/v1/admin/api_user/create",
  bindNode: "/v1/admin/node/bind",
  replaceNode: "/v1/admin/node/replace",
  requestKeygen: "/v1/admin/key/keygen",
  refreshKey: "/v1/admin/key/refresh",
  repairKey: "/v1/admin/key/repair",
};
const PARTIES = ["a", "b", "c"];
const KINDS = { 1: "keygen", 2: "sign transaction", 3: "sign message", 4: "sign raw data", 5: "key refresh", 6: "key repair" };
const STATUS = { 0: "running", 1: "success", 2: "failed" };
const ALGORITHMS = { 0: "secp256k1", 1: "ed25519" };
const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };
const REFRESH_MS = 3000;

const enc = new TextEncoder();
let session = null; // { key: CryptoKey (non-extractable), apiKey: string }
let lastNonce = 0;
let state = null;
let selectedOrg = "";
let refreshing = false;
let timer = null;

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ bytes

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text) {
  const s = text.trim();
  if (s.length === 0 || s.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(s)) {
    throw new Error("the key is not hex (expected the hex PKCS#8 key file the SDK loads)");
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// One DER INTEGER from a big-endian unsigned value.
function derInteger(bytes) {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let v = bytes.slice(i);
  if (v[0] & 0x80) v = concat(Uint8Array.of(0), v);
  return concat(Uint8Array.of(0x02, v.length), v);
}

// WebCrypto gives r || s (32 bytes each); the API wants ASN.1 DER.
function signatureDer(raw) {
  const body = concat(derInteger(raw.slice(0, 32)), derInteger(raw.slice(32, 64)));
  return concat(Uint8Array.of(0x30, body.length), body);
}

// ------------------------------------------------------------------ signing

async function importAdminKey(text) {
  const der = unhex(text);
  let probe;
  try {
    probe = await crypto.subtle.importKey("pkcs8", der, ECDSA, true, ["sign"]);
  } catch (e) {
    throw new Error("the key is not a PKCS#8 P-256 private key");
  }
  // The public key, as the API names it: hex of its SPKI.
  const jwk = await crypto.subtle.exportKey("jwk", probe);
  const pub = await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, ECDSA, true, ["verify"]);
  jwk.d = "";
  const apiKey = hex(new Uint8Array(await crypto.subtle.exportKey("spki", pub)));
  const key = await crypto.subtle.importKey("pkcs8", der, ECDSA, false, ["sign"]);
  der.fill(0);
  return { key, apiKey };
}

function nextNonce() {
  lastNonce = Math.max(Date.now(), lastNonce + 1);
  return String(lastNonce);
}

function isSdkWhitespace(b) {
  return b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d || b === 0x20;
}

async function signedHeaders(path, body) {
  const nonce = nextNonce();
  const message = concat(
    enc.encode("data"),
    enc.encode(body).filter((b) => !isSdkWhitespace(b)),
    enc.encode("path" + path + "timestamp" + nonce + "version" + "1.0.0" + session.apiKey),
  );
  const raw = new Uint8Array(await crypto.subtle.sign(SIGN, session.key, message));
  return {
    "BIZ-API-KEY": session.apiKey,
    "BIZ-API-NONCE": nonce,
    "BIZ-API-SIGNATURE": hex(signatureDer(raw)),
  };
}

// POST an admin call; returns the envelope's data or throws with its message.
async function api(path, payload) {
  const body = JSON.stringify(payload);
  const headers = await signedHeaders(path, body);
  headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method: "POST", headers, body, cache: "no-store" });
  let env;
  try { env = await res.json(); } catch (e) { throw new Error(path + ": HTTP " + res.status); }
  if (!env.success) throw new Error(env.msg || "code " + env.code);
  return env.data;
}

async function fetchState() {
  const headers = await signedHeaders(PATHS.state, "");
  const res = await fetch(PATHS.state, { headers, cache: "no-store" });
  if (res.status === 403) {
    const why = await res.text();
    throw Object.assign(new Error("the platform refused this key: " + why), { refused: true });
  }
  if (!res.ok) throw new Error("state unavailable: HTTP " + res.status);
  return res.json();
}

// ------------------------------------------------------------------ rendering

function cell(tr, value, cls) {
  const td = tr.insertCell();
  if (value instanceof Node) td.appendChild(value);
  else td.textContent = value === undefined || value === null ? "" : String(value);
  if (cls) td.className = cls;
  return td;
}

function pill(text) {
  const s = document.createElement("span");
  s.className = "pill " + String(text).split(" ")[0];
  s.textContent = text;
  return s;
}

// Fills table `id`: headers, then one row per item; `row(item, tr)` adds the cells.
function table(id, headers, items, row) {
  const t = $(id);
  t.replaceChildren();
  const hr = t.createTHead().insertRow();
  for (const h of headers) {
    const th = document.createElement("th");
    th.textContent = h;
    hr.appendChild(th);
  }
  const body = t.createTBody();
  if (items.length === 0) {
    const c = body.insertRow().insertCell();
    c.colSpan = headers.length;
    c.textContent = "none";
    c.className = "muted";
  }
  for (const item of items) row(item, body.insertRow());
}

function when(ms) {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "";
}

function button(label, action, data) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.action = action;
  Object.assign(b.dataset, data);
  return b;
}

function keyActions(k) {
  const span = document.createElement("span");
  if (k.status !== "generated") return span;
  if (k.ecdsaProtocol !== "dkls23") {
    span.className = "muted";
    span.textContent = "no refresh or repair for this protocol";
    return span;
  }
  span.appendChild(button("Refresh shares", "refresh", { key: k.keyId }));
  if (k.threshold < k.parties.length) {
    for (const p of k.parties) {
      span.appendChild(document.createTextNode(" "));
      span.appendChild(button("Repair " + p, "repair", { key: k.keyId, party: p }));
    }
  }
  return span;
}

function render() {
  if (!state) return;
  const orgs = state.organizations;
  if (!orgs.some((o) => o.organizationId === selectedOrg)) selectedOrg = orgs.length ? orgs[0].organizationId : "";
  const select = $("org-select");
  // Rebuilt only when the list changes (an open drop-down is not closed by an update).
  const labels = orgs.map((o) => o.organizationId + "\u0000" + o.name).join("\u0001");
  if (select.dataset.labels !== labels) {
    select.replaceChildren(...orgs.map((o) => {
      const opt = document.createElement("option");
      opt.value = o.organizationId;
      opt.textContent = o.name + " (" + o.organizationId + ")";
      return opt;
    }));
    select.dataset.labels = labels;
  }
  select.value = selectedOrg;
  const mine = (x) => x.organizationId === selectedOrg;

  table("orgs", ["id", "name", "vault", "ECDSA protocol", "created"], orgs, (o, tr) => {
    tr.dataset.id = o.organizationId;
    cell(tr, o.organizationId); cell(tr, o.name, "wrap"); cell(tr, o.vaultId);
    cell(tr, o.ecdsaProtocol); cell(tr, when(o.createdAt), "wrap");
  });
  $("create-org").querySelector("option[value='']").textContent = "platform default (" + state.defaultEcdsaProtocol + ")";

  table("api-users", ["user id", "name", "API key (BIZ-API-KEY)", "created"], state.apiUsers.filter(mine), (u, tr) => {
    tr.dataset.id = u.userId;
    cell(tr, u.userId); cell(tr, u.name, "wrap"); cell(tr, u.apiKey); cell(tr, when(u.createdAt), "wrap");
  });

  table("nodes", ["party", "node id", "connection", "last seen", "key shares"], state.nodes.filter(mine), (n, tr) => {
    tr.dataset.id = n.nodeId;
    tr.dataset.party = n.partyId;
    cell(tr, n.partyId); cell(tr, n.nodeId);
    cell(tr, pill(n.onlineStatus === 1 ? "online" : "offline"));
    cell(tr, when(n.lastSeenAt), "wrap"); cell(tr, pill(n.keyShareStatus));
  });

  table("keys", ["key id", "curve", "protocol", "t-of-n", "status", "share generation", "root public key", "chain code", "xpub", "failure", "actions"], state.keys.filter(mine), (k, tr) => {
    tr.dataset.id = k.keyId;
    tr.dataset.curve = k.curve;
    cell(tr, k.keyId); cell(tr, k.curve, "wrap"); cell(tr, k.ecdsaProtocol || "frost");
    cell(tr, k.threshold + "-of-" + k.parties.length, "wrap"); cell(tr, pill(k.status));
    cell(tr, k.generation || "from keygen", "wrap generation"); cell(tr, k.rootPublicKey);
    cell(tr, k.chainCode); cell(tr, k.xpub || "", "xpub"); cell(tr, k.failedReason, "wrap");
    cell(tr, keyActions(k), "wrap");
  });

  table("addresses", ["wallet", "path", "algorithm", "encoding", "address", "public key"], state.addresses.filter(mine), (a, tr) => {
    tr.dataset.address = a.address;
    cell(tr, a.walletName + " (" + a.walletId + ")", "wrap"); cell(tr, a.path, "wrap");
    cell(tr, ALGORITHMS[a.algorithmType] || a.algorithmType); cell(tr, a.encoding);
    cell(tr, a.address); cell(tr, a.publicKey);
  });

  table("requests", ["time", "kind", "sino id / key id", "request id", "state", "latency", "failure reason", "parties"], state.requests.filter(mine), (r, tr) => {
    tr.dataset.id = r.taskId;
    tr.dataset.kind = KINDS[r.kind] || String(r.kind);
    tr.dataset.status = STATUS[r.status] || String(r.status);
    cell(tr, when(r.createdAt), "wrap"); cell(tr, KINDS[r.kind] || r.kind, "wrap");
    cell(tr, r.sinoId); cell(tr, r.requestId);
    cell(tr, pill(STATUS[r.status] || r.status));
    cell(tr, r.latencyMs === null || r.latencyMs === undefined ? "" : r.latencyMs + " ms", "wrap");
    cell(tr, r.failedReason, "wrap reason");
    cell(tr, Object.entries(r.outcomes || {}).map(([p, o]) => p + ": " + o).join("; "), "wrap");
  });
}

async function refresh() {
  if (!session || refreshing) return;
  refreshing = true;
  const status = $("status");
  try {
    state = await fetchState();
    render();
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "ok";
  } catch (e) {
    status.textContent = String(e.message || e);
    status.className = "bad";
    if (e.refused) signOut(e.message);
  } finally {
    refreshing = false;
  }
}

// ------------------------------------------------------------------ pages and forms

function showPage() {
  const page = (location.hash || "#organizations").slice(1);
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== "page-" + page;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.dataset.page === page);
}

function say(el, text, ok) {
  el.textContent = text;
  el.className = ok ? "ok" : "bad";
}

// Runs `work` for a form's submit: its <output> shows the result or the error.
function onSubmit(id, work) {
  const form = $(id);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = form.querySelector("output");
    const btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    say(out, "working…", true);
    try {
      say(out, await work(new FormData(form), form), true);
      await refresh();
    } catch (e) {
      say(out, String(e.message || e), false);
    } finally {
      btn.disabled = false;
    }
  });
}

function requireOrg() {
  if (!selectedOrg) throw new Error("create or choose an organization first");
  return selectedOrg;
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function wireForms() {
  onSubmit("create-org", async (f) => {
    const req = { name: f.get("name").trim() };
    if (f.get("protocol")) req.ecdsaProtocol = f.get("protocol");
    const o = await api(PATHS.createOrganization, req);
    selectedOrg = o.organizationId;
    return "created " + o.organizationId + " (" + o.ecdsaProtocol + ")";
  });

  onSubmit("create-user", async (f) => {
    const organizationId = requireOrg();
    const name = f.get("name").trim();
    const pair = await crypto.subtle.generateKey(ECDSA, true, ["sign", "verify"]);
    const apiKey = hex(new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey)));
    const user = await api(PATHS.createApiUser, { organizationId, name, apiKey });
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const file = name.replace(/[^A-Za-z0-9._-]/g, "_") + ".key";
    download(file, hex(pkcs8) + "\n");
    pkcs8.fill(0);
    return "created " + user.userId + "; its private key was downloaded as " + file + "; API key " + user.apiKey;
  });

  onSubmit("bind-node", async (f) => {
    const n = await api(PATHS.bindNode, { organizationId: requireOrg(), partyId: f.get("party"), nodeId: f.get("nodeId").trim() });
    return "party " + n.partyId + " is bound to the node";
  });

  onSubmit("replace-node", async (f) => {
    const organizationId = requireOrg();
    const party = f.get("party");
    if (!confirm("Unbind the node of party " + party + " for good and bind the new node in its place?")) return "cancelled";
    const n = await api(PATHS.replaceNode, { organizationId, partyId: party, nodeId: f.get("nodeId").trim() });
    return "party " + n.partyId + " is now the new node; repair its key shares on the Keys page";
  });

  onSubmit("request-keygen", async (f) => {
    const k = await api(PATHS.requestKeygen, { organizationId: requireOrg(), curve: f.get("curve"), threshold: Number(f.get("threshold")), parties: PARTIES });
    return "key generation started: " + k.keyId;
  });

  // Refresh and repair buttons live in the keys table, which is rebuilt on each update.
  $("keys").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const out = $("key-action");
    const organizationId = requireOrg();
    try {
      let run;
      if (b.dataset.action === "refresh") {
        run = await api(PATHS.refreshKey, { organizationId, keyId: b.dataset.key });
      } else {
        if (!confirm("Rebuild party " + b.dataset.party + "'s share of this key on the node bound to it now? Every party's callback is asked first.")) return;
        run = await api(PATHS.repairKey, { organizationId, keyId: b.dataset.key, partyId: b.dataset.party });
      }
      say(out, b.dataset.action + " " + run.taskId + " started; follow it on the Requests page", true);
      await refresh();
    } catch (e) {
      say(out, b.dataset.action + ": " + (e.message || e), false);
    }
  });
}

// ------------------------------------------------------------------ session

function signOut(reason) {
  session = null;
  state = null;
  if (timer) clearInterval(timer);
  timer = null;
  $("app").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("sign-in-error").textContent = reason || "";
}

async function signIn(ev) {
  ev.preventDefault();
  const err = $("sign-in-error");
  err.textContent = "";
  try {
    if (!window.isSecureContext || !crypto.subtle) {
      throw new Error("this page needs a secure context (HTTPS, or http://localhost) for WebCrypto");
    }
    const file = $("key-file").files[0];
    const text = file ? await file.text() : $("key-text").value;
    if (!text.trim()) throw new Error("choose the admin key file or paste it");
    session = await importAdminKey(text);
    $("key-text").value = "";
    $("key-file").value = "";
    state = await fetchState();
  } catch (e) {
    session = null;
    err.textContent = String(e.message || e);
    return;
  }
  $("who").textContent = "admin " + session.apiKey.slice(-16);
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  render();
  showPage();
  $("status").textContent = "signed in";
  $("status").className = "ok";
  timer = setInterval(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("org-select").addEventListener("change", (ev) => { selectedOrg = ev.target.value; render(); });
  window.addEventListener("hashchange", showPage);
  wireForms();
});
