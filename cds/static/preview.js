// baclofen-cds card preview: plain JavaScript, no libraries.
// Card text is untrusted: plain fields go in with textContent, and markdown is rendered
// by a small renderer that escapes all HTML first and only then adds its own tags.
"use strict";

const INDICATORS = {
  info: { label: "Info", icon: "i" },
  warning: { label: "Warning", icon: "!" },
  critical: { label: "Critical", icon: "!!" },
};

const state = { services: [], fixtures: [], lastRequest: null };

// ---------- markdown (CommonMark subset + GFM tables) ----------

function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const SAFE_URL = /^https?:\/\/[^\s]+$/i;

// Input is already escaped; code spans are set aside so emphasis cannot reach into them.
function renderInline(escaped) {
  return escaped.split(/(`[^`]+`)/).map((part) => {
    if (part.length > 1 && part.startsWith("`") && part.endsWith("`")) {
      return `<code>${part.slice(1, -1)}</code>`;
    }
    return part
      .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (match, label, url) => {
        const href = url.replace(/&amp;/g, "&");
        if (!SAFE_URL.test(href)) return label;  // javascript:, data: ... become plain text
        return `<a href="${url}" target="_blank" rel="noopener noreferrer">${label}</a>`;
      })
      .replace(/\*\*([^*]+)\*\*|__([^_]+)__/g, (m, a, b) => `<strong>${a || b}</strong>`)
      .replace(/(^|[^*\w])\*([^*\s][^*]*)\*(?!\w)/g, "$1<em>$2</em>")
      .replace(/(^|[^_\w])_([^_\s][^_]*)_(?!\w)/g, "$1<em>$2</em>");
  }).join("");
}

const TABLE_SEPARATOR = /^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function tableCells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|")) row = row.slice(0, -1);
  return row.split("|").map((cell) => cell.trim());
}

function renderTable(lines) {
  const align = tableCells(lines[1]).map((cell) => {
    if (cell.startsWith(":") && cell.endsWith(":")) return "center";
    if (cell.endsWith(":")) return "right";
    return "";
  });
  const cell = (tag, text, i, extra = "") => {
    const style = align[i] ? ` class="align-${align[i]}"` : "";
    return `<${tag}${extra}${style}>${renderInline(text)}</${tag}>`;
  };
  const head = tableCells(lines[0]).map((text, i) => cell("th", text, i, ' scope="col"')).join("");
  const body = lines.slice(2).map((line) =>
    `<tr>${tableCells(line).map((text, i) => cell("td", text, i)).join("")}</tr>`).join("");
  return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead>` +
    `<tbody>${body}</tbody></table></div>`;
}

function renderMarkdown(source) {
  const lines = escapeHtml(source || "").replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      // Card summaries are h3, so detail headings start at h4.
      const level = Math.min(6, heading[1].length + 3);
      out.push(`<h${level}>${renderInline(heading[2])}</h${level}>`);
      i += 1;
      continue;
    }
    if (line.trim().startsWith("|") && i + 1 < lines.length &&
        TABLE_SEPARATOR.test(lines[i + 1].trim())) {
      const block = [line, lines[i + 1]];
      i += 2;
      while (i < lines.length && lines[i].trim().startsWith("|")) { block.push(lines[i]); i += 1; }
      out.push(renderTable(block));
      continue;
    }
    const bullet = /^\s*[-*+]\s+(.*)$/;
    const numbered = /^\s*\d+[.)]\s+(.*)$/;
    const listKind = bullet.test(line) ? bullet : numbered.test(line) ? numbered : null;
    if (listKind) {
      const items = [];
      while (i < lines.length && listKind.test(lines[i])) {
        let text = listKind.exec(lines[i])[1];
        i += 1;
        // Indented continuation lines belong to the item.
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) &&
               !bullet.test(lines[i]) && !numbered.test(lines[i])) {
          text += " " + lines[i].trim();
          i += 1;
        }
        items.push(`<li>${renderInline(text)}</li>`);
      }
      const tag = listKind === bullet ? "ul" : "ol";
      out.push(`<${tag}>${items.join("")}</${tag}>`);
      continue;
    }
    const paragraph = [line.trim()];
    i += 1;
    while (i < lines.length && lines[i].trim() && !/^\s{0,3}#{1,6}\s/.test(lines[i]) &&
           !bullet.test(lines[i]) && !numbered.test(lines[i]) && !lines[i].trim().startsWith("|")) {
      paragraph.push(lines[i].trim());
      i += 1;
    }
    out.push(`<p>${renderInline(paragraph.join(" "))}</p>`);
  }
  return out.join("\n");
}

// ---------- talking to the service ----------

function authHeaders() {
  const token = document.getElementById("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function callJson(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Accept: "application/json", ...(options.headers || {}), ...authHeaders() },
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (error) { body = text; }
  return { status: response.status, ok: response.ok, body };
}

function problemText(result) {
  const issue = result.body && result.body.issue && result.body.issue[0];
  const detail = issue && issue.diagnostics ? `: ${issue.diagnostics}` : "";
  return `The service answered HTTP ${result.status}${detail}`;
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// ---------- scenarios and services ----------

function newUuid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function addServiceOption(id, text) {
  const select = document.getElementById("service");
  if ([...select.options].some((option) => option.value === id)) return;
  const option = document.createElement("option");
  option.value = id;
  option.textContent = text || id;
  select.append(option);
}

async function loadServices() {
  const result = await callJson("/cds-services");
  if (!result.ok || !result.body || !Array.isArray(result.body.services)) return;
  const hooksById = new Map();
  for (const service of result.body.services) {
    if (!hooksById.has(service.id)) hooksById.set(service.id, { title: service.title, hooks: [] });
    hooksById.get(service.id).hooks.push(service.hook);
  }
  for (const [id, info] of hooksById) addServiceOption(id, `${id} (${info.hooks.join(", ")})`);
}

async function loadScenarios() {
  const result = await callJson("/preview/fixtures");
  if (!result.ok) { setStatus("Scenarios could not be loaded; paste a request instead."); return; }
  state.fixtures = result.body.fixtures;
  const select = document.getElementById("scenario");
  const listed = new Set([...select.options].map((option) => option.value));
  for (const fixture of state.fixtures) {
    addServiceOption(fixture.service);
    if (listed.has(fixture.name)) continue;  // the server wrote it into the page already
    const option = document.createElement("option");
    option.value = fixture.name;
    option.textContent = fixture.title ? `${fixture.title} (${fixture.name})` : fixture.name;
    select.append(option);
  }
}

async function chooseScenario() {
  const name = document.getElementById("scenario").value;
  if (!name) return;
  const result = await callJson(`/preview/fixtures/${encodeURIComponent(name)}`);
  if (!result.ok) { setStatus(problemText(result)); return; }
  // Each call is a new hook instance, as an EHR would send it.
  const request = { ...result.body.request, hookInstance: newUuid() };
  document.getElementById("request-json").value = pretty(request);
  addServiceOption(result.body.service);
  document.getElementById("service").value = result.body.service;
  setStatus(`Loaded scenario "${result.body.title || name}". Send it to see the cards.`);
}

// ---------- cards ----------

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function safeLink(label, url) {
  if (typeof url === "string" && SAFE_URL.test(url)) {
    return element("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label);
  }
  return element("span", {}, label);
}

function actionText(action) {
  if (action.description) return action.description;
  const resource = action.resource || {};
  const what = resource.resourceType || action.resourceId || "resource";
  return `${action.type || "action"} ${what}`;
}

function renderCard(card, index, serviceId) {
  const indicator = INDICATORS[card.indicator] || { label: String(card.indicator), icon: "?" };
  const id = `card-${index}`;
  const article = element("article", {
    class: `card card-${INDICATORS[card.indicator] ? card.indicator : "unknown"}`,
    "aria-labelledby": `${id}-summary`,
    "data-card-uuid": card.uuid || "",
  });

  const badge = element("p", { class: "indicator" });
  badge.append(element("span", { class: "indicator-icon", "aria-hidden": "true" }, indicator.icon));
  badge.append(element("span", { class: "indicator-label" }, indicator.label));
  article.append(badge);
  const summary = element("h3", { id: `${id}-summary` });
  summary.append(element("span", { class: "visually-hidden" }, `${indicator.label}: `));
  summary.append(document.createTextNode(card.summary || ""));
  article.append(summary);

  if (card.detail) {
    const detail = element("div", { class: "detail" });
    detail.innerHTML = renderMarkdown(card.detail);  // escaped first, see renderMarkdown
    article.append(detail);
  }

  if (card.source) {
    const source = element("p", { class: "source" });
    source.append(document.createTextNode("Source: "));
    source.append(safeLink(card.source.label || card.source.url || "unnamed", card.source.url));
    if (card.source.topic && card.source.topic.display) {
      source.append(document.createTextNode(` · Topic: ${card.source.topic.display}`));
    }
    article.append(source);
  }

  if (Array.isArray(card.links) && card.links.length) {
    const links = element("div", { class: "links" });
    links.append(element("h4", {}, "References"));
    const list = element("ul");
    for (const link of card.links) {
      const item = element("li");
      item.append(safeLink(link.label || link.url, link.url));
      if (link.type === "smart") item.append(document.createTextNode(" (SMART app)"));
      list.append(item);
    }
    links.append(list);
    article.append(links);
  }

  const status = element("p", { class: "card-status", role: "status", "aria-live": "polite" });
  const controls = [];
  const finish = (message) => {
    for (const control of controls) control.disabled = true;
    article.classList.add("answered");
    status.textContent = message;
  };

  if (Array.isArray(card.suggestions) && card.suggestions.length) {
    const group = element("div", { class: "suggestions", role: "group",
      "aria-labelledby": `${id}-suggestions` });
    const heading = element("h4", { id: `${id}-suggestions` }, "Suggestions");
    group.append(heading);
    if (card.selectionBehavior === "at-most-one") {
      group.append(element("p", { class: "help" }, "Choose at most one."));
    }
    for (const suggestion of card.suggestions) {
      const row = element("div", { class: "suggestion" });
      const button = element("button", { type: "button", class: "suggestion-button",
        "data-suggestion-uuid": suggestion.uuid || "" }, suggestion.label || "Accept");
      if (suggestion.isRecommended) {
        button.append(element("span", { class: "recommended" }, " (recommended)"));
      }
      button.addEventListener("click", async () => {
        const ok = await sendFeedback(serviceId, {
          card: card.uuid, outcome: "accepted",
          acceptedSuggestions: [{ id: suggestion.uuid }],
        }, status);
        if (!ok) return;
        const applied = await applySuggestion(suggestion);
        finish(`Accepted "${suggestion.label}"; feedback recorded.${applied}`);
      });
      controls.push(button);
      row.append(button);
      const actions = (suggestion.actions || []).map(actionText);
      if (actions.length) {
        const list = element("ul", { class: "suggestion-actions" });
        for (const text of actions) list.append(element("li", {}, text));
        row.append(list);
      }
      group.append(row);
    }
    article.append(group);
  }

  const dismiss = element("div", { class: "dismiss" });
  const selectId = `${id}-reason`;
  dismiss.append(element("label", { for: selectId }, "Reason for dismissing"));
  const select = element("select", { id: selectId });
  select.append(element("option", { value: "" }, "No reason given"));
  (card.overrideReasons || []).forEach((reason, i) => {
    select.append(element("option", { value: String(i) }, reason.display || reason.code));
  });
  const dismissButton = element("button", { type: "button", class: "dismiss-button" },
    "Dismiss card");
  dismissButton.addEventListener("click", async () => {
    const entry = { card: card.uuid, outcome: "overridden" };
    const reason = select.value === "" ? null : card.overrideReasons[Number(select.value)];
    if (reason) entry.overrideReason = { reason };
    const ok = await sendFeedback(serviceId, entry, status);
    if (ok) finish(`Dismissed${reason ? ` (${reason.display || reason.code})` : ""}; feedback recorded.`);
  });
  controls.push(select, dismissButton);
  dismiss.append(select, dismissButton);
  article.append(dismiss, status);
  return article;
}

function renderCards(response, serviceId) {
  const container = document.getElementById("cards");
  container.replaceChildren();
  const cards = (response && response.cards) || [];
  if (!cards.length) {
    container.append(element("p", { class: "empty" }, "The service returned no cards."));
    return 0;
  }
  cards.forEach((card, index) => container.append(renderCard(card, index, serviceId)));
  return cards.length;
}

async function sendFeedback(serviceId, entry, status) {
  const document_ = { feedback: [{ ...entry, outcomeTimestamp: new Date().toISOString() }] };
  document.getElementById("raw-feedback").textContent = pretty(document_);
  status.textContent = "Sending feedback...";
  try {
    const result = await callJson(`/cds-services/${encodeURIComponent(serviceId)}/feedback`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(document_),
    });
    if (!result.ok) { status.textContent = problemText(result); return false; }
    return true;
  } catch (error) {
    status.textContent = `Feedback could not be sent: ${error.message}`;
    return false;
  }
}

// What the chosen kind of client does with an accepted suggestion, done by the service
// (POST /preview/apply, the same code as its tests): the request's draft orders become
// what that client would sign, ready to be sent again.
async function applySuggestion(suggestion) {
  const request = state.lastRequest;
  if (!request || !request.context || !request.context.draftOrders) return "";
  const client = document.getElementById("apply-as").value;
  try {
    const result = await callJson("/preview/apply", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ request, suggestion, client }),
    });
    if (!result.ok) return ` It was not applied to the request: ${problemText(result)}.`;
    const next = { ...result.body.request, hookInstance: newUuid() };
    document.getElementById("request-json").value = pretty(next);
    return " Applied to the draft orders of the request: send it again to see the answer.";
  } catch (error) {
    return ` It could not be applied to the request: ${error.message}.`;
  }
}

// ---------- sending a request ----------

async function sendRequest(event) {
  event.preventDefault();
  const serviceId = document.getElementById("service").value;
  const text = document.getElementById("request-json").value;
  let request;
  try {
    request = JSON.parse(text);
  } catch (error) {
    setStatus(`The request is not valid JSON: ${error.message}`);
    document.getElementById("request-json").focus();
    return;
  }
  if (!serviceId) { setStatus("Choose a CDS service first."); return; }
  state.lastRequest = request;
  document.getElementById("raw-request").textContent = pretty(request);
  document.getElementById("raw-response").textContent = "(waiting)";
  setStatus("Sending...");
  const sendButton = document.getElementById("send");
  sendButton.disabled = true;
  try {
    const result = await callJson(`/cds-services/${encodeURIComponent(serviceId)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    document.getElementById("raw-response").textContent = pretty(result.body);
    if (!result.ok) {
      renderCards(null, serviceId);
      setStatus(problemText(result));
      return;
    }
    const count = renderCards(result.body, serviceId);
    setStatus(`HTTP ${result.status}: ${count} card${count === 1 ? "" : "s"} received.`);
  } catch (error) {
    setStatus(`The request could not be sent: ${error.message}`);
  } finally {
    sendButton.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("request-form").addEventListener("submit", sendRequest);
  document.getElementById("scenario").addEventListener("change", chooseScenario);
  await Promise.allSettled([loadServices(), loadScenarios()]);
  document.body.dataset.ready = "true";  // lets tests and people know the lists are filled
});
