//! The console page: one self-contained HTML document; its script reads `/console/state`
//! (loopback or admin-signed, see the `http` module) every 5 s and renders tables. Values are
//! inserted as text nodes, never as HTML.

/// The page.
pub(crate) const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MPC co-signer console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td{word-break:break-all}
.ok{color:#08612a}.bad{color:#a11}.muted{color:#777}
</style></head>
<body>
<h1>MPC co-signer console</h1>
<p id="status" class="muted">loading…</p>
<h2>Organizations</h2><table id="orgs"></table>
<h2>Nodes</h2><table id="nodes"></table>
<h2>Keys</h2><table id="keys"></table>
<h2>Recent MPC requests</h2><table id="requests"></table>
<script>
"use strict";
const KINDS = {1:"keygen",2:"sign tx",3:"sign message",4:"sign raw data",5:"key refresh",6:"key repair"};
const STATUS = {0:"in progress",1:"success",2:"failed"};
function table(id, headers, rows) {
  const t = document.getElementById(id);
  t.replaceChildren();
  const hr = t.insertRow();
  for (const h of headers) { const th = document.createElement("th"); th.textContent = h; hr.appendChild(th); }
  if (rows.length === 0) { const c = t.insertRow().insertCell(); c.colSpan = headers.length; c.textContent = "none"; c.className = "muted"; }
  for (const r of rows) {
    const tr = t.insertRow();
    for (const v of r) { const td = tr.insertCell(); td.textContent = v === undefined || v === null ? "" : String(v); }
  }
}
function when(ms) { return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : ""; }
async function refresh() {
  const status = document.getElementById("status");
  try {
    const res = await fetch("/console/state", {cache: "no-store"});
    if (!res.ok) { status.textContent = "state unavailable: HTTP " + res.status; status.className = "bad"; return; }
    const s = await res.json();
    table("orgs", ["id", "name", "vault", "ECDSA protocol", "created"], s.organizations.map(o => [o.organizationId, o.name, o.vaultId, o.ecdsaProtocol, when(o.createdAt)]));
    table("nodes", ["organization", "party", "node id", "online", "last seen", "key shares"], s.nodes.map(n => [n.organizationId, n.partyId, n.nodeId, n.onlineStatus === 1 ? "online" : "offline", when(n.lastSeenAt), n.keyShareStatus]));
    table("keys", ["organization", "key id", "curve", "protocol", "t-of-n", "status", "share generation", "root public key", "chain code", "xpub", "failure"], s.keys.map(k => [k.organizationId, k.keyId, k.curve, k.ecdsaProtocol || "frost", k.threshold + "-of-" + k.parties.length, k.status, k.generation || "from keygen", k.rootPublicKey, k.chainCode, k.xpub || "", k.failedReason]));
    table("requests", ["time (GMT+8)", "organization", "kind", "sino id", "request id", "status", "reason", "parties"], s.requests.map(r => [r.requestTime, r.organizationId, KINDS[r.kind] || r.kind, r.sinoId, r.requestId, STATUS[r.status] || r.status, r.failedReason, JSON.stringify(r.outcomes)]));
    status.textContent = "updated " + new Date().toLocaleTimeString(); status.className = "ok";
  } catch (e) { status.textContent = "error: " + e; status.className = "bad"; }
}
refresh(); setInterval(refresh, 5000);
</script>
</body></html>
"#;
