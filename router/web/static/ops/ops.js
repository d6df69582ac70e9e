// The ops page's behaviour: poll the feed for fresh sections, run the explain playground
// and the replay form against the JSON API. No framework, no build step, no inline code:
// the page's Content-Security-Policy allows only this file.
"use strict";

(function () {
  const body = document.body;
  const pollMs = Number(body.dataset.pollMs) || 1500;
  const live = document.getElementById("live");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Live sections ------------------------------------------------------------------------
  // The feed returns the same server-rendered (escaped) fragments the page was built from.
  async function refresh() {
    try {
      const response = await fetch("/ops/feed", {
        headers: { Accept: "application/json" },
        cache: "no-store",
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      for (const [name, html] of Object.entries(data.sections || {})) {
        const section = document.querySelector('[data-section="' + name + '"]');
        if (section && section.dataset.html !== html) {
          section.innerHTML = html;
          section.dataset.html = html;
        }
      }
      live.textContent = "live";
      live.className = "live";
    } catch (error) {
      live.textContent = "offline";
      live.className = "live offline";
    } finally {
      setTimeout(refresh, pollMs);
    }
  }
  setTimeout(refresh, pollMs);

  // JSON API calls --------------------------------------------------------------------------
  async function post(path, payload) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
      credentials: "same-origin",
    });
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { status: response.status, data };
  }

  function problem(target, text, details) {
    target.replaceChildren(el("p", { class: "bad" }, text));
    if (Array.isArray(details) && details.length) {
      target.append(
        el("ul", { class: "details" },
          ...details.map((d) => el("li", {}, el("code", {}, d.path || ""), " ", d.message || ""))),
      );
    }
  }

  function show(value) {
    return value === undefined ? "—" : JSON.stringify(value);
  }

  // Explain ------------------------------------------------------------------------------
  const explainForm = document.getElementById("explain-form");
  const explainResult = document.getElementById("explain-result");
  explainForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    let input;
    try {
      input = JSON.parse(document.getElementById("explain-input").value || "{}");
    } catch (error) {
      problem(explainResult, "The input is not valid JSON: " + error.message);
      return;
    }
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      problem(explainResult, "The input is a JSON object (ids, handoff, state, context).");
      return;
    }
    const payload = Object.assign({}, input, {
      ruleset: document.getElementById("explain-ruleset").value,
    });
    const at = document.getElementById("explain-at").value.trim();
    if (at) payload.at = at;
    explainResult.replaceChildren(el("p", { class: "muted" }, "Explaining…"));
    const { status, data } = await post("/v1/explain", payload);
    if (status !== 200 || !data) {
      const error = (data && data.error) || {};
      problem(explainResult, (error.message || "The explain call failed") + " (" + status + ")",
        error.details);
      return;
    }
    renderExplained(data);
  });

  function renderExplained(data) {
    const decision = el("dl", { class: "decision" },
      el("dt", {}, "Queue"), el("dd", { class: "queue" }, data.queue),
      el("dt", {}, "Label"), el("dd", {}, data.label || ""),
      el("dt", {}, "Rule"), el("dd", { class: "matched-rule" }, data.rule || "— (" + data.outcome + ")"),
      el("dt", {}, "Outcome"), el("dd", {}, data.outcome + (data.degraded ? " · degraded" : "")),
    );
    const rows = (data.trace || []).map((step) => {
      const c = step.condition;
      const why = c
        ? [el("code", {}, c.path || ""), " ", c.op || "", " ", show(c.expected),
           el("span", { class: "muted" }, " · saw "), show(c.actual)]
        : [step.matched ? "every condition holds" : ""];
      return el("tr", { class: step.selected ? "selected" : "" },
        el("td", {}, el("code", {}, step.rule)),
        el("td", { class: "num" }, step.line),
        el("td", {}, el("span", { class: "outcome " + step.result }, step.result.replace("_", " "))),
        el("td", {}, ...why));
    });
    const trace = el("table", { class: "trace" },
      el("thead", {}, el("tr", {}, el("th", {}, "Rule"), el("th", {}, "Line"),
        el("th", {}, "Result"), el("th", {}, "First failing condition"))),
      el("tbody", {}, ...rows));
    explainResult.replaceChildren(decision, trace);
  }

  // Replay -------------------------------------------------------------------------------
  const replayForm = document.getElementById("replay-form");
  const replayResult = document.getElementById("replay-result");
  replayForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const payload = { rules: document.getElementById("replay-rules").value };
    const since = document.getElementById("replay-since").value.trim();
    if (since) payload.since = since;
    replayResult.replaceChildren(el("p", { class: "muted" }, "Replaying…"));
    const { status, data } = await post("/v1/replay", payload);
    if (status === 404 || status === 405) {
      problem(replayResult, "Replay is not available on this router version.");
      return;
    }
    if (status !== 200 || !data) {
      const error = (data && data.error) || {};
      problem(replayResult, (error.message || "The replay failed") + " (" + status + ")",
        error.details);
      return;
    }
    replayResult.replaceChildren(
      el("p", {},
        `${data.replayed} replayed: ${data.changed} would change, ${data.unchanged} unchanged, ` +
        `${data.uncertain} uncertain, ${data.skipped} skipped.`),
      el("pre", { class: "report" }, JSON.stringify(data, null, 2)),
    );
  });
})();
