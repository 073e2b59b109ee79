// The dashboard's live parts, hand-written and served by the deployer itself.
// The pages work without it; with it, new deployments and timeline entries
// arrive from the server's event streams (EventSource; the session cookie
// authenticates it, same origin). Text goes in as textContent, never as HTML.
"use strict";

(function () {
  const live = document.body.dataset.live;
  const state = document.querySelector(".live-state");

  function say(text) {
    if (!state) return;
    state.hidden = false;
    state.textContent = text;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children || []) node.append(child);
    return node;
  }

  const formatTime = (iso) => `${iso.slice(0, 19).replace("T", " ")} UTC`;
  const timeEl = (iso) => el("time", { datetime: iso }, [formatTime(iso)]);
  const statusEl = (status) => el("span", { class: `status status-${status}` }, [status.replaceAll("_", " ")]);

  function stream(url, handlers) {
    const source = new EventSource(url);
    source.addEventListener("open", () => say("Live: updates arrive as they happen."));
    source.addEventListener("error", () => {
      // EventSource reconnects by itself with Last-Event-ID; CLOSED means the server refused (signed out).
      say(source.readyState === EventSource.CLOSED ? "Live updates stopped: reload the page (or sign in again)." : "Reconnecting…");
    });
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (ev) => handle(JSON.parse(ev.data), ev.lastEventId, source));
    }
    return source;
  }

  function historyPage() {
    const table = document.querySelector("table.history");
    if (!table) return;
    const body = table.tBodies[0];
    const f = table.dataset;
    const wanted = (d, status) =>
      (!f.filterService || d.service === f.filterService) &&
      (!f.filterStatus || status === f.filterStatus) &&
      (!f.filterTrigger || d.trigger === f.filterTrigger);
    const setStatus = (data) => {
      const cell = body.querySelector(`tr[data-id="${CSS.escape(data.deploymentId)}"] [data-status]`);
      if (cell) cell.replaceChildren(statusEl(data.status));
    };
    stream("/api/events", {
      deployment(data) {
        const d = data.deployment;
        if (f.firstPage !== "true" || !wanted(d, data.status) || body.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`)) return;
        const row = el("tr", { "data-id": d.id, class: "arrived" }, [
          el("td", { "data-label": "Created" }, [el("a", { href: `/deployments/${d.id}` }, [timeEl(d.createdAt)])]),
          el("td", { "data-label": "Service" }, [d.service]),
          el("td", { "data-label": "Image" }, [el("code", { class: "image" }, [d.image])]),
          el("td", { "data-label": "Trigger" }, [d.trigger]),
          el("td", { "data-label": "Status", "data-status": "" }, [statusEl(data.status)]),
          el("td", { "data-label": "Requested by" }, [d.requestedBy]),
        ]);
        body.prepend(row);
        while (body.rows.length > 200) body.deleteRow(-1);
        document.querySelector(".empty")?.remove();
      },
      timeline: setStatus,
      final: setStatus,
    });
  }

  function servicesPage() {
    stream("/api/events", {
      deployment(data) {
        const cell = document.querySelector(`tr[data-service="${CSS.escape(data.service)}"] [data-last]`);
        if (!cell) return;
        const d = data.deployment;
        cell.replaceChildren(
          el("a", { href: `/deployments/${d.id}`, "data-status-of": d.id }, [statusEl(data.status)]),
          " ",
          el("span", { class: "muted" }, [`${d.trigger} · `, timeEl(d.createdAt)]),
        );
      },
      timeline: setLast,
      final(data) {
        setLast(data);
        // Succeeded: the service runs the image the update pinned. Any other end left it on what the page shows.
        const at = data.pinnedImage ? data.pinnedImage.lastIndexOf("@") : -1;
        const cell = document.querySelector(`tr[data-service="${CSS.escape(data.service)}"] [data-image]`);
        if (data.status === "succeeded" && cell && at > 0) {
          const digest = data.pinnedImage.slice(at + 1);
          cell.replaceChildren(
            el("code", { class: "image" }, [data.pinnedImage.slice(0, at)]),
            el("br"),
            el("code", { class: "digest", title: digest }, [digest.slice(0, 19)]),
          );
        }
        say(`${data.service}: ${data.status.replaceAll("_", " ")}.`);
      },
    });
    function setLast(data) {
      const link = document.querySelector(`[data-status-of="${CSS.escape(data.deploymentId)}"]`);
      if (link) link.replaceChildren(statusEl(data.status));
    }
  }

  function deploymentPage() {
    const root = document.getElementById("deployment");
    if (!root || root.dataset.live !== "true") return;
    const list = root.querySelector("ol.timeline");
    const heading = document.querySelector("[data-dep-status]");
    const add = (data, id) => {
      if (list.querySelector(`li[data-event-id="${CSS.escape(id)}"]`)) return;
      list.append(
        el("li", { "data-event-id": id }, [
          timeEl(data.entry.at),
          " ",
          statusEl(data.status),
          " ",
          el("span", { class: "message" }, [data.entry.message]),
        ]),
      );
      heading.replaceChildren(statusEl(data.status));
      // The box above holds the deployment's latest message, as the record's `message` does.
      const outcome = root.querySelector("[data-outcome]");
      outcome.textContent = data.entry.message;
      outcome.hidden = false;
      if (data.progress) {
        const bar = root.querySelector("progress");
        bar.max = data.progress.desired;
        bar.value = data.progress.running;
        bar.textContent = `${data.progress.running}/${data.progress.desired}`;
        root.querySelector("[data-progress-text]").textContent = `${data.progress.running}/${data.progress.desired}`;
        root.querySelector(".progress-line").hidden = false;
      }
    };
    stream(`/api/deployments/${encodeURIComponent(root.dataset.id)}/events?lastEventId=${encodeURIComponent(root.dataset.lastEventId)}`, {
      deployment: add,
      timeline: add,
      final(data, id, source) {
        add(data, id);
        source.close();
        const outcome = root.querySelector("[data-outcome]");
        outcome.className = `notice notice-${data.status === "succeeded" ? "ok" : ["failed", "rolled_back", "rejected"].includes(data.status) ? "error" : "wait"}`;
        root.querySelector("[data-finished]").replaceChildren(timeEl(data.entry.at));
        if (data.status === "succeeded") root.querySelector("[data-rollback-link]")?.removeAttribute("hidden");
        root.dataset.live = "false";
        say(`Finished: ${data.status.replaceAll("_", " ")}.`);
      },
    });
  }

  if (live === "history") historyPage();
  else if (live === "services") servicesPage();
  else if (live === "deployment") deploymentPage();
})();
