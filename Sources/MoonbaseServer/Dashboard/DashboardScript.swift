/// The dashboard's script: asks for the admin token once (kept in `sessionStorage`, for the tab
/// only), then reads the REST API and `/metrics` every few seconds and fills in the page. Text
/// from the server (hook errors, names) is only ever set as text, never as markup.
enum DashboardScript {
    static let javascript = #"""
    "use strict";
    const TOKEN_KEY = "moonbase.adminToken";
    const REFRESH_MS = 3000;
    const $ = (id) => document.getElementById(id);
    let token = sessionStorage.getItem(TOKEN_KEY);
    let timer = null;

    function el(tag, attributes, ...children) {
      const node = document.createElement(tag);
      for (const [name, value] of Object.entries(attributes || {})) {
        if (name === "text") node.textContent = value; else node.setAttribute(name, value);
      }
      for (const child of children) node.append(child);
      return node;
    }

    class Unauthorized extends Error {}

    async function api(path, options) {
      const response = await fetch(path, Object.assign({}, options, { headers: { Authorization: "Bearer " + token } }));
      if (response.status === 401) throw new Unauthorized((await response.json().catch(() => ({}))).error || "the token was refused");
      return response;
    }

    async function json(path) {
      const response = await api(path);
      const body = await response.json();
      if (!response.ok) throw new Error(path + ": " + (body.error || response.status));
      return body;
    }

    // Prometheus text: "name{a="x",b="y"} value" lines; comments start with #.
    function parseMetrics(text) {
      const samples = [];
      for (const line of text.split("\n")) {
        const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!match) continue;
        const labels = {};
        for (const pair of (match[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
          labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
        }
        samples.push({ name: match[1], labels, value: Number(match[3]) });
      }
      return samples;
    }

    function meanMilliseconds(samples, handler) {
      const find = (name) => samples.find((s) => s.name === name && s.labels.handler === handler.name && s.labels.file === handler.file);
      const sum = find("moonbase_hook_handler_duration_seconds_sum");
      const count = find("moonbase_hook_handler_duration_seconds_count");
      if (!sum || !count || count.value === 0) return "–";
      const ms = (sum.value / count.value) * 1000;
      return ms < 10 ? ms.toFixed(2) + " ms" : ms.toFixed(0) + " ms";
    }

    function status(text) {
      return el("span", { class: "status " + text, text });
    }

    // What each table shows now: a refresh that brings the same leaves the rows (and a button
    // about to be pressed) alone.
    const shown = {};

    function unchanged(tableId, data) {
      const key = JSON.stringify(data);
      if (shown[tableId] === key) return true;
      shown[tableId] = key;
      return false;
    }

    function fill(tableId, rows, empty) {
      const body = $(tableId).tBodies[0];
      const headers = [...$(tableId).tHead.rows[0].cells].map((cell) => cell.textContent);
      const columns = headers.length;
      // On a phone each row is a card, its cells labelled by their column (see the style).
      for (const row of rows) [...row.cells].forEach((cell, index) => cell.setAttribute("data-label", headers[index] || ""));
      body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: String(columns), class: "muted", text: empty }))]));
    }

    function renderFiles(listing) {
      if (unchanged("files", listing)) return;
      fill("files", listing.map((file) => el("tr", { "data-file": file.file },
        el("td", { class: "key", text: file.file }),
        el("td", {}, status(file.status)),
        el("td", { class: "num", text: String(file.handlers.length) }),
        el("td", { class: "message error", text: file.error || "" }))), "No hook files.");
    }

    function renderHandlers(listing, samples) {
      if (unchanged("handlers", [listing, samples.filter((s) => s.name.startsWith("moonbase_hook_handler_duration_seconds_"))])) return;
      const rows = [];
      for (const file of listing) {
        for (const handler of file.handlers) {
          const collection = Array.isArray(handler.collection) ? handler.collection.join(", ") : handler.collection || "any";
          rows.push(el("tr", { "data-handler": handler.name },
            el("td", { class: "key", text: handler.name }),
            el("td", { class: "key", text: file.file }),
            el("td", { text: handler.event }),
            el("td", { text: collection }),
            el("td", { class: "num calls", text: String(handler.calls) }),
            el("td", { class: "num errors", text: String(handler.errors) }),
            el("td", { class: "num", text: meanMilliseconds(samples, { name: handler.name, file: file.file }) }),
            el("td", { class: "message error", text: handler.last_error || "" })));
        }
      }
      fill("handlers", rows, "No handlers.");
      const select = $("filter-hook");
      const names = [...new Set(listing.flatMap((file) => file.handlers.map((handler) => handler.name)))];
      const known = [...select.options].slice(1).map((option) => option.value);
      if (names.join("\n") !== known.join("\n")) {
        const chosen = select.value;
        select.replaceChildren(el("option", { value: "", text: "any" }), ...names.map((name) => el("option", { value: name, text: name })));
        select.value = names.includes(chosen) ? chosen : "";
      }
    }

    function renderCrons(listing) {
      if (unchanged("crons", listing)) return;
      const when = (text) => (text ? text.replace("T", " ").slice(0, 19) : "–");
      fill("crons", listing.flatMap((file) => (file.crons || []).map((cron) => el("tr", { "data-cron": cron.name },
        el("td", { class: "key", text: cron.name }),
        el("td", { class: "key", text: file.file }),
        el("td", { class: "key", text: cron.schedule }),
        el("td", { title: cron.next_run || "", text: when(cron.next_run) }),
        el("td", { title: cron.last_run || "", text: when(cron.last_run) }),
        el("td", { class: "num calls", text: String(cron.calls) }),
        el("td", { class: "num errors", text: String(cron.errors) }),
        el("td", { class: "message error", text: cron.last_error || "" })))), "No cron hooks.");
    }

    function renderDeliveries(items) {
      if (unchanged("deliveries", items)) return;
      fill("deliveries", items.map((item) => {
        const action = el("td");
        if (item.status === "failed" || item.status === "dead") {
          const button = el("button", { type: "button", class: "retry", text: "Retry" });
          button.addEventListener("click", () => retry(item.id, button));
          action.append(button);
        }
        // A handler's key is file:name:event:collection; its name says enough here.
        const name = item.handler.split(":")[1] || item.handler;
        return el("tr", { "data-delivery": String(item.id) },
          el("td", { class: "num", text: String(item.id) }),
          el("td", { class: "key", title: item.handler, text: name }),
          el("td", { text: item.kind === "cron" ? "cron" : item.collection }),
          // A cron run has no record: the slot it ran for stands there.
          el("td", { class: "key", title: item.scheduled_at || "", text: item.kind === "cron" ? item.scheduled_at.replace("T", " ").slice(0, 19) : item.record_id }),
          el("td", { class: "delivery-status" }, status(item.status)),
          el("td", { class: "num", text: item.attempts + " / " + item.max_attempts }),
          el("td", { class: "message error", text: item.last_error || "" }),
          el("td", { class: "muted", title: item.updated, text: item.updated.replace("T", " ").slice(0, 19) }),
          action);
      }), "No deliveries match.");
    }

    // The live nodes sharing the database (one on SQLite); the heartbeat changes at every
    // refresh, so the rows are rebuilt each time.
    function renderNodes(nodes) {
      const self = nodes.items.find((node) => node.self);
      $("node").textContent = nodes.node + (self ? " · v" + self.version : "");
      const when = (text) => text.replace("T", " ").slice(0, 19);
      fill("nodes", nodes.items.map((node) => el("tr", { "data-node": node.id },
        el("td", { class: "key", text: node.id + (node.self ? " (this node)" : "") }),
        el("td", { class: "key", text: node.address }),
        el("td", { text: node.version }),
        el("td", { title: node.started, text: when(node.started) }),
        el("td", { title: node.heartbeat, text: when(node.heartbeat) }),
        // The digest's start tells folders apart; one that differs from the others' is flagged.
        el("td", { class: node.hooks_differ ? "key error" : "key", title: node.hooks_digest,
                   text: node.hooks_digest.slice(0, 12) + (node.hooks_differ ? " differs" : "") }))), "No live node.");
    }

    function deliveriesQuery() {
      const query = new URLSearchParams({ limit: "100" });
      if ($("filter-status").value) query.set("status", $("filter-status").value);
      if ($("filter-hook").value) query.set("hook", $("filter-hook").value);
      const collection = $("filter-collection").value.trim();
      if (collection) query.set("collection", collection);
      return "/api/v1/hooks/deliveries?" + query;
    }

    async function metrics() {
      try {
        const response = await api("/metrics");
        return response.ok ? parseMetrics(await response.text()) : [];
      } catch (error) {
        if (error instanceof Unauthorized) throw error;
        return []; // the figures that come from it show "–"
      }
    }

    async function refresh() {
      try {
        const [listing, deliveries, samples, nodes] = await Promise.all([json("/api/v1/hooks"), json(deliveriesQuery()), metrics(),
                                                                         json("/api/v1/nodes")]);
        renderFiles(listing);
        renderHandlers(listing, samples);
        renderCrons(listing);
        renderDeliveries(deliveries);
        renderNodes(nodes);
        $("problem").hidden = true;
        $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      } catch (error) {
        if (error instanceof Unauthorized) return signOut(error.message);
        $("problem").textContent = "Cannot reach the server: " + error.message;
        $("problem").hidden = false;
      }
    }

    async function retry(id, button) {
      button.disabled = true;
      try {
        let response = await api("/api/v1/hooks/deliveries/" + id + "/retry", { method: "POST" });
        if (response.status === 409) {
          const message = (await response.json()).error;
          if (confirm(message + "\n\nRetry anyway?")) {
            response = await api("/api/v1/hooks/deliveries/" + id + "/retry?force=true", { method: "POST" });
          } else {
            button.disabled = false;
            return;
          }
        }
        if (!response.ok) throw new Error((await response.json()).error || String(response.status));
      } catch (error) {
        if (error instanceof Unauthorized) return signOut(error.message);
        $("problem").textContent = "Retry of delivery " + id + " failed: " + error.message;
        $("problem").hidden = false;
      }
      refresh();
    }

    function start() {
      $("login").hidden = true;
      $("board").hidden = false;
      $("sign-out").hidden = false;
      refresh();
      clearInterval(timer);
      timer = setInterval(refresh, REFRESH_MS);
    }

    function signOut(reason) {
      clearInterval(timer);
      for (const table of Object.keys(shown)) delete shown[table];
      sessionStorage.removeItem(TOKEN_KEY);
      token = null;
      $("board").hidden = true;
      $("sign-out").hidden = true;
      $("login").hidden = false;
      $("login-error").textContent = reason || "";
      $("login-error").hidden = !reason;
      $("token").focus();
    }

    document.addEventListener("DOMContentLoaded", () => {
      $("login").addEventListener("submit", (event) => {
        event.preventDefault();
        token = $("token").value.trim();
        $("token").value = "";
        sessionStorage.setItem(TOKEN_KEY, token);
        start();
      });
      $("sign-out").addEventListener("click", () => signOut(""));
      for (const id of ["filter-status", "filter-hook"]) $(id).addEventListener("change", refresh);
      $("filter-collection").addEventListener("input", refresh);
      $("filters").addEventListener("submit", (event) => event.preventDefault());
      if (token) start(); else signOut("");
    });
    """#
}
