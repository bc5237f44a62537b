// The agent console (/agent): the live queue, several conversations in tabs, replies with
// canned answers from the knowledge base, transfer, release and close.
// Live updates come from the server-sent-event stream GET /api/events; on each event the
// console re-reads what changed from the JSON API. Every text a user (or an agent) typed
// is inserted with textContent: no message can become markup or run a script.

import {
  $, api, ApiError, announce, clear, clock, debounce, duration, h, LANGUAGES, reportError,
  startConsole, tabKeys, timeEl, toast,
} from "./common.js";

const STORE = "firstline:agent:";
const PRIORITY_LABEL = { urgent: "Urgent", high: "High", normal: "Normal", low: "Low" };
const ROLE_LABEL = { user: "User", bot: "Bot", agent: "Agent", system: "System" };

const state = {
  me: null,
  queue: [],
  mine: [],
  agents: [],
  /** handoff id -> { detail, panel, tab, parts, lastSeenId } for every open tab, in tab order. */
  tabs: new Map(),
  active: null,
  /** handoff id -> messages from the user not read yet (also for conversations not open). */
  unread: new Map(),
  /** ids seen in the queue, so that only really new work raises an alert. */
  known: new Set(),
  alerts: load("alerts") === true,
  audio: null,
  events: null,
  live: false,
};

function load(key) {
  try { return JSON.parse(localStorage.getItem(STORE + key)); } catch (err) { return null; }
}
function save(key, value) {
  try { localStorage.setItem(STORE + key, JSON.stringify(value)); } catch (err) { /* private mode */ }
}

// -- start -------------------------------------------------------------------------------------
async function start() {
  state.me = await startConsole({
    roles: ["agent"],
    title: "Agent console",
    intro: "Log in to take conversations from the queue.",
    main: "#app",
    describe: (me) => `${me.email} · languages: ${me.languages.join(", ")}`,
  });
  setupTopbar();
  $("#take-next").addEventListener("click", takeNext);
  $("#queue-language").addEventListener("change", () => refreshQueue().catch(reportError));
  tabKeys($("#conv-tabs"), (tab) => activate(Number(tab.dataset.id), { focus: false }));
  setupDialogs();
  await Promise.all([refreshQueue(), loadAgents()]);
  const saved = load("tabs") || [];
  for (const id of saved) await openConversation(id, { focus: false, quiet: true }).catch(() => null);
  const active = load("active");
  if (active && state.tabs.has(active)) activate(active, { focus: false });
  else if (state.tabs.size) activate([...state.tabs.keys()][0], { focus: false });
  connectEvents();
  setInterval(tick, 1000);
  setInterval(() => refreshQueue().catch(() => null), 30000); // also keeps "online" fresh
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.active) markRead(state.active);
  });
  document.body.dataset.ready = "true";
}

function setupTopbar() {
  const presence = $("#presence");
  presence.value = state.me.status === "offline" ? "offline" : state.me.status;
  showPresence(presence.value);
  presence.addEventListener("change", async () => {
    try {
      const me = await api("/api/me/status", { method: "PUT", body: { status: presence.value } });
      state.me.status = me.status;
      showPresence(me.status);
      announce(`You are ${me.status}.`);
    } catch (err) {
      reportError(err);
      presence.value = state.me.status;
    }
  });
  const alerts = $("#alerts");
  const showAlerts = () => {
    const on = state.alerts;
    alerts.setAttribute("aria-pressed", String(on));
    alerts.textContent = on ? "Alerts on" : "Enable alerts";
    alerts.title = on ? "A notification and a sound when new work arrives. Click to turn off." :
      "Get a notification and a sound when new work arrives";
  };
  alerts.addEventListener("click", async () => {
    if (state.alerts && alerts.getAttribute("aria-pressed") === "true") {
      state.alerts = false;
    } else {
      unlockAudio();
      let permission = "granted";
      if ("Notification" in window && Notification.permission !== "granted") {
        permission = await Notification.requestPermission();
      }
      if (permission !== "granted") toast("Notifications are blocked in this browser; the sound still plays.", "error");
      state.alerts = true;
      beep();
    }
    save("alerts", state.alerts);
    showAlerts();
  });
  // Browsers only allow sound after a user gesture: any click on the page unlocks it.
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });
  showAlerts();
}

function showPresence(status) {
  const dot = $("#presence-dot");
  dot.className = `dot ${status}`;
}

// -- alerts ---------------------------------------------------------------------------------
function unlockAudio() {
  if (state.audio || !(window.AudioContext || window.webkitAudioContext)) return;
  try {
    state.audio = new (window.AudioContext || window.webkitAudioContext)();
  } catch (err) { /* no audio device */ }
}

function beep() {
  const ctx = state.audio;
  if (!ctx) return;
  if (ctx.state === "suspended") ctx.resume();
  const now = ctx.currentTime;
  [880, 660].forEach((freq, i) => {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + i * 0.16);
    gain.gain.exponentialRampToValueAtTime(0.18, now + i * 0.16 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.16 + 0.15);
    osc.connect(gain).connect(ctx.destination);
    osc.start(now + i * 0.16);
    osc.stop(now + i * 0.16 + 0.16);
  });
  document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
}

function alertNewWork(items) {
  if (!items.length) return;
  const first = items[0];
  const what = items.length === 1
    ? `${PRIORITY_LABEL[first.priority]} priority, ${LANGUAGES[first.language] || first.language}: ${first.summary || first.contact || "new conversation"}`
    : `${items.length} new conversations are waiting`;
  announce(`New in the queue: ${what}`);
  if (!state.alerts || state.me.status === "offline") return;
  beep();
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      const note = new Notification("New conversation waiting", { body: what, tag: `handoff-${first.id}` });
      note.onclick = () => {
        window.focus();
        openConversation(first.id).catch(reportError);
        note.close();
      };
    } catch (err) { /* some browsers only allow notifications from a service worker */ }
  }
}

// -- live events ------------------------------------------------------------------------------
function connectEvents() {
  const source = new EventSource("/api/events");
  state.events = source;
  const liveState = $("#live-state");
  source.onopen = () => {
    if (!state.live) {
      state.live = true;
      liveState.textContent = "Live";
      liveState.title = "Updates arrive as they happen";
      // Catch up with whatever happened while the stream was down.
      refreshQueue().catch(() => null);
      state.tabs.forEach((_, id) => refreshConversation(id).catch(() => null));
    }
  };
  source.onerror = () => {
    state.live = false;
    liveState.textContent = "Reconnecting…";
    if (source.readyState === EventSource.CLOSED) {
      // The stream was refused (logged out?) or the server went away: check, then retry.
      api("/api/me").then(() => setTimeout(connectEvents, 2000)).catch(() => null);
    }
  };
  source.addEventListener("handoff.created", () => queueSoon());
  source.addEventListener("handoff.updated", (event) => {
    const data = parse(event);
    queueSoon();
    if (data && state.tabs.has(data.handoff_id)) refreshConversation(data.handoff_id).catch(reportError);
  });
  source.addEventListener("message.created", (event) => {
    const data = parse(event);
    if (!data) return;
    if (data.role === "user") {
      const reading = data.handoff_id === state.active && !document.hidden;
      if (!reading && (state.tabs.has(data.handoff_id) || state.mine.some((m) => m.id === data.handoff_id))) {
        state.unread.set(data.handoff_id, (state.unread.get(data.handoff_id) || 0) + 1);
        renderUnread();
      }
    }
    if (state.tabs.has(data.handoff_id)) refreshConversation(data.handoff_id).catch(reportError);
  });
}

function parse(event) {
  try { return JSON.parse(event.data); } catch (err) { return null; }
}

const queueSoon = debounce(() => refreshQueue().catch(reportError), 60);

// -- the queue ----------------------------------------------------------------------------------
async function refreshQueue() {
  const language = $("#queue-language").value;
  const params = new URLSearchParams({ status: "queued" });
  if (language) params.set("language", language);
  const [queue, mine] = await Promise.all([
    api(`/api/handoffs?${params}`),
    api("/api/handoffs?status=assigned&mine=true"),
  ]);
  const fresh = queue.filter((item) => !state.known.has(item.id));
  fresh.forEach((item) => state.known.add(item.id));
  state.queue = queue;
  state.mine = mine;
  renderQueue();
  if (state.primed) alertNewWork(fresh);
  state.primed = true;
}

function renderQueue() {
  // The lists are rebuilt on every event: keep the keyboard focus on the same item's same button.
  const active = document.activeElement;
  const focusedItem = active && active.closest ? active.closest(".queue-item") : null;
  const focus = focusedItem ? { id: focusedItem.dataset.id, list: focusedItem.parentElement.id, claim: active.classList.contains("claim") } : null;
  const list = $("#queue-list");
  $("#queue-count").textContent = String(state.queue.length);
  $("#queue-count").setAttribute("aria-label", `${state.queue.length} waiting`);
  clear(list, state.queue.length
    ? state.queue.map((item) => queueItem(item, true))
    : h("li", { class: "empty" }, "Nobody is waiting. New conversations appear here by themselves."));
  const mine = $("#mine-list");
  clear(mine, state.mine.length
    ? state.mine.map((item) => queueItem(item, false))
    : h("li", { class: "empty" }, "You have no open conversations."));
  if (focus) {
    const again = document.querySelector(`#${focus.list} .queue-item[data-id="${focus.id}"]`);
    const target = again && (again.querySelector(focus.claim ? "button.claim" : ".open-link") || again.querySelector("button"));
    if (target) target.focus();
    else $("#queue-title").parentElement.querySelector("button").focus(); // it was taken: back to "Take next"
  }
  updateTitle();
}

function queueItem(item, queued) {
  const who = item.contact || `Conversation ${item.id}`;
  const unread = state.unread.get(item.id) || 0;
  const open = h("button", {
    type: "button", class: "open-link",
    onclick: () => openConversation(item.id).catch(reportError),
  }, who);
  const li = h("li", {
    class: `queue-item${item.id === state.active ? " active" : ""}`,
    dataset: { id: String(item.id), priority: item.priority },
  },
  open,
  queued
    ? h("button", {
      type: "button", class: "btn small primary claim",
      "aria-label": `Claim conversation ${item.id} with ${who}`,
      onclick: () => claim(item.id),
    }, "Claim")
    : unread ? h("span", { class: "badge count claim", "aria-label": `${unread} unread` }, String(unread)) : null,
  h("div", { class: "summary" }, item.summary || "(no summary)"),
  h("div", { class: "meta" },
    h("span", { class: `badge prio-${item.priority}` }, PRIORITY_LABEL[item.priority] || item.priority),
    h("span", { class: "badge lang", title: LANGUAGES[item.language] || item.language }, item.language),
    queued
      ? h("span", { dataset: { since: item.created_at }, title: "Waiting" }, `waiting ${since(item.created_at)}`)
      : h("span", {}, `since ${clock(item.claimed_at || item.created_at)}`),
    slaEl(item)));
  li.querySelectorAll("[data-due]").forEach(updateSla); // now that it can mark the whole item
  return li;
}

function since(iso) {
  return duration((Date.now() - Date.parse(iso)) / 1000);
}

/** The SLA countdown: time left until the first response is due, red once breached. */
function slaEl(item) {
  if (item.first_response_at || item.status === "closed") {
    const met = item.first_response_at && Date.parse(item.first_response_at) <= Date.parse(item.sla_due_at);
    return h("span", { class: `sla${met ? "" : " breached"}` }, met ? "SLA met" : item.first_response_at ? "SLA missed" : "");
  }
  const span = h("span", { class: "sla", dataset: { due: item.sla_due_at } });
  updateSla(span);
  return span;
}

function updateSla(span) {
  const left = (Date.parse(span.dataset.due) - Date.now()) / 1000;
  const breached = left < 0;
  span.classList.toggle("breached", breached);
  span.classList.toggle("soon", !breached && left < 600);
  span.textContent = breached ? `SLA breached ${duration(-left)} ago` : `SLA ${duration(left)} left`;
  const item = span.closest(".queue-item");
  if (item) item.classList.toggle("breached", breached);
}

function tick() {
  document.querySelectorAll("[data-due]").forEach(updateSla);
  document.querySelectorAll("[data-since]").forEach((el) => {
    el.textContent = `waiting ${since(el.dataset.since)}`;
  });
}

async function takeNext() {
  const button = $("#take-next");
  button.disabled = true;
  try {
    const detail = await api("/api/handoffs/next", { method: "POST" });
    if (!detail) {
      toast("Nothing is waiting in your languages.");
      return;
    }
    announce(`You took conversation ${detail.id}.`);
    await openConversation(detail.id, { detail });
    refreshQueue().catch(reportError);
  } catch (err) {
    reportError(err);
  } finally {
    button.disabled = false;
  }
}

async function claim(id) {
  try {
    const detail = await api(`/api/handoffs/${id}/claim`, { method: "POST" });
    announce(`You claimed conversation ${id}.`);
    await openConversation(id, { detail });
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) toast(`Too late: ${err.message}`, "error");
    else reportError(err);
  }
  refreshQueue().catch(reportError);
}

async function loadAgents() {
  state.agents = await api("/api/agents");
}

// -- conversations in tabs ----------------------------------------------------------------------
async function openConversation(id, { detail, focus = true, quiet = false } = {}) {
  if (!state.tabs.has(id)) {
    const data = detail || (await api(`/api/handoffs/${id}`));
    const entry = buildConversation(data);
    state.tabs.set(id, entry);
    $("#conv-tabs").appendChild(entry.tab);
    $("#conv-panels").appendChild(entry.panel);
    renderConversation(entry, data, true);
    saveTabs();
  } else if (detail) {
    renderConversation(state.tabs.get(id), detail);
  }
  activate(id, { focus });
  if (!quiet) refreshConversation(id).catch(() => null);
}

function saveTabs() {
  save("tabs", [...state.tabs.keys()]);
  save("active", state.active);
}

function activate(id, { focus = true } = {}) {
  if (!state.tabs.has(id)) return;
  state.active = id;
  state.tabs.forEach((entry, key) => {
    const on = key === id;
    entry.tab.setAttribute("aria-selected", String(on));
    entry.tab.tabIndex = on ? 0 : -1;
    entry.panel.hidden = !on;
  });
  $("#welcome").hidden = true;
  markRead(id);
  document.querySelectorAll(".queue-item").forEach((li) => li.classList.toggle("active", Number(li.dataset.id) === id));
  const entry = state.tabs.get(id);
  entry.parts.transcript.scrollTop = entry.parts.transcript.scrollHeight;
  if (focus) {
    const composer = entry.parts.reply;
    if (!composer.closest("[hidden]") && !composer.disabled) composer.focus();
    else entry.tab.focus();
  }
  saveTabs();
}

function closeTab(id) {
  const entry = state.tabs.get(id);
  if (!entry) return;
  const keys = [...state.tabs.keys()];
  const index = keys.indexOf(id);
  entry.tab.remove();
  entry.panel.remove();
  state.tabs.delete(id);
  if (state.active === id) {
    state.active = null;
    const next = keys[index + 1] ?? keys[index - 1];
    if (next !== undefined && state.tabs.has(next)) activate(next);
    else {
      $("#welcome").hidden = false;
      $("#workspace").focus();
    }
  }
  saveTabs();
  renderQueue();
}

function markRead(id) {
  if (state.unread.get(id)) {
    state.unread.delete(id);
    renderUnread();
  }
}

function renderUnread() {
  state.tabs.forEach((entry, id) => {
    const count = state.unread.get(id) || 0;
    entry.parts.tabCount.hidden = count === 0;
    clear(entry.parts.tabCount, String(count), h("span", { class: "sr-only" }, " unread"));
  });
  renderQueue();
}

function updateTitle() {
  let unread = 0;
  state.unread.forEach((n) => { unread += n; });
  const waiting = state.queue.length;
  document.title = `${unread ? `(${unread}) ` : ""}${waiting ? `${waiting} waiting · ` : ""}Agent console — firstline`;
}

function buildConversation(detail) {
  const id = detail.id;
  const tabLabel = h("span", {}, detail.contact || `#${id}`);
  const tabCount = h("span", { class: "badge count", hidden: true }, "0");
  const tab = h("button", {
    type: "button", role: "tab", id: `tab-${id}`, "aria-controls": `panel-${id}`, "aria-selected": "false",
    tabindex: "-1", dataset: { id: String(id) }, onclick: () => activate(id),
  }, h("span", { class: "badge", dataset: { prio: "" } }), tabLabel, tabCount);
  tab.addEventListener("keydown", (event) => {
    if (event.key === "Delete") closeTab(id);
  });

  const title = h("h2", { id: `title-${id}` });
  const status = h("span", { class: "badge" });
  const actions = h("div", { class: "actions" });
  const transcript = h("div", {
    class: "transcript", role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": "Transcript", tabindex: "0",
  });
  const details = h("aside", { class: "details", "aria-label": "Conversation details" });

  // Reply box with canned answers from the knowledge base.
  const reply = h("textarea", {
    id: `reply-${id}`, rows: "3", maxlength: "10000", "aria-describedby": `reply-hint-${id}`,
    placeholder: "Write a reply…",
  });
  const send = h("button", { type: "submit", class: "btn primary" }, "Send");
  const cannedInput = h("input", {
    type: "search", id: `canned-${id}`, placeholder: "Search answers in the knowledge base…", autocomplete: "off",
  });
  const cannedResults = h("ul", { class: "canned-results", "aria-label": "Knowledge-base answers" });
  const cannedStatus = h("span", { class: "small muted", role: "status" });
  const runCanned = debounce(() => searchCanned(entry), 250);
  cannedInput.addEventListener("input", runCanned);
  cannedInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      runCanned.cancel();
      searchCanned(entry);
    }
  });
  const form = h("form", { class: "composer", "aria-label": "Reply" },
    h("div", { class: "canned" },
      h("label", { for: `canned-${id}` }, "Canned answers"),
      h("div", { class: "row" }, h("div", { class: "grow" }, cannedInput), cannedStatus),
      cannedResults),
    h("label", { for: `reply-${id}` }, "Reply to the user"),
    reply,
    h("div", { class: "row" },
      h("span", { class: "small muted grow", id: `reply-hint-${id}` }, "Enter sends, Shift+Enter starts a new line."),
      send));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendReply(entry);
  });
  reply.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendReply(entry);
    }
  });

  const panel = h("section", {
    role: "tabpanel", id: `panel-${id}`, "aria-labelledby": `tab-${id}`, class: "conversation", hidden: true,
    dataset: { id: String(id) },
  },
  h("div", { class: "conv-main" },
    h("div", { class: "conv-header" }, title, status, actions),
    transcript,
    form),
  details);
  const entry = {
    id, tab, panel, detail, lastSeenId: 0, pendingPoll: null,
    parts: { tabLabel, tabCount, title, status, actions, transcript, details, reply, send, form, cannedInput, cannedResults, cannedStatus },
  };
  return entry;
}

async function refreshConversation(id) {
  const entry = state.tabs.get(id);
  if (!entry) return;
  const detail = await api(`/api/handoffs/${id}`);
  if (state.tabs.get(id) === entry) renderConversation(entry, detail);
}

function isMine(detail) {
  return detail.status === "assigned" && detail.agent &&
    (detail.agent.id === state.me.id || state.me.role === "admin");
}

function renderConversation(entry, detail, first = false) {
  const previous = entry.detail;
  entry.detail = detail;
  const { parts } = entry;
  const who = detail.contact || `Conversation ${detail.id}`;
  parts.tabLabel.textContent = `${detail.contact || "#" + detail.id}`;

  const prio = entry.tab.querySelector("[data-prio]");
  prio.className = `badge prio-${detail.priority}`;
  prio.textContent = detail.language.toUpperCase();
  prio.title = `${PRIORITY_LABEL[detail.priority]} priority, ${LANGUAGES[detail.language] || detail.language}`;
  parts.title.textContent = who;
  parts.status.className = `badge status-${detail.status}`;
  parts.status.textContent = detail.status === "assigned" && detail.agent
    ? `With ${detail.agent.id === state.me.id ? "you" : detail.agent.name}` : capital(detail.status);

  // Actions for what this agent may do now.
  const mine = isMine(detail);
  clear(parts.actions,
    detail.status === "queued" &&
      h("button", { type: "button", class: "btn primary", onclick: () => claim(detail.id) }, "Claim"),
    mine && h("button", { type: "button", class: "btn", onclick: () => transfer(entry) }, "Transfer"),
    mine && h("button", { type: "button", class: "btn", onclick: () => release(entry) }, "Release"),
    mine && h("button", { type: "button", class: "btn danger", onclick: () => closeConversation(entry) }, "Close"),
    h("a", {
      class: "btn", href: `/api/handoffs/${detail.id}/transcript?format=text`, target: "_blank", rel: "noopener",
      title: "The transcript as text, for a ticket or an e-mail",
    }, "Transcript"),
    h("button", {
      type: "button", class: "btn", "aria-label": `Close tab ${who}`, title: "Close this tab (Delete on the tab)",
      onclick: () => closeTab(detail.id),
    }, "✕"));
  parts.form.hidden = !mine;

  renderTranscript(entry, detail, previous, first);
  renderDetails(entry, detail);

  // Agent messages go out through Rasa; without an event for "delivered", look again shortly.
  clearTimeout(entry.pendingPoll);
  if (detail.messages.some((m) => m.delivery === "pending")) {
    entry.pendingPoll = setTimeout(() => refreshConversation(detail.id).catch(() => null), 2500);
  }
  if (previous && previous.status !== detail.status && detail.status === "closed") {
    announce(`Conversation with ${who} is closed.`);
  }
}

function capital(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function renderTranscript(entry, detail, previous, first) {
  const box = entry.parts.transcript;
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const known = new Map([...box.querySelectorAll("[data-message]")].map((el) => [Number(el.dataset.message), el]));
  for (const message of detail.messages) {
    const existing = known.get(message.id);
    if (existing) {
      const delivery = existing.querySelector(".delivery");
      if (delivery) delivery.textContent = deliveryText(message.delivery);
      continue;
    }
    box.appendChild(messageEl(message));
  }
  if (first || nearBottom) box.scrollTop = box.scrollHeight;
  entry.lastSeenId = Math.max(0, ...detail.messages.map((m) => m.id));
}

function deliveryText(delivery) {
  return { pending: "Sending to the chat…", delivered: "Delivered", failed: "Not delivered yet — retrying" }[delivery] || "";
}

function messageEl(message) {
  const role = ["user", "bot", "agent", "system"].includes(message.role) ? message.role : "system";
  if (role === "system") {
    return h("div", { class: "bubble system", dataset: { message: String(message.id), role } },
      h("span", { class: "text" }, message.text), " · ", timeEl(message.created_at));
  }
  const author = role === "agent" ? (message.author || ROLE_LABEL.agent) : ROLE_LABEL[role];
  // A whole article from the bot is long: its opening, with the rest one click away.
  const long = role === "bot" && message.text.length > 420;
  const short = `${message.text.slice(0, 320).trimEnd()}…`;
  const text = h("div", { class: "text" }, long ? short : message.text);
  const toggle = long && h("button", {
    type: "button", class: "btn link small", "aria-expanded": "false",
    onclick: () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      text.textContent = open ? message.text : short;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Show less" : "Show the whole message";
    },
  }, "Show the whole message");
  return h("div", { class: `bubble ${role}`, dataset: { message: String(message.id), role } },
    h("div", { class: "from" }, h("span", {}, author), timeEl(message.created_at)),
    text,
    toggle,
    role === "agent" && message.delivery ? h("div", { class: "delivery" }, deliveryText(message.delivery)) : null);
}

function renderDetails(entry, detail) {
  const attempt = detail.bot_attempt || {};
  const tried = Array.isArray(attempt.articles_tried) ? attempt.articles_tried : [];
  const contact = detail.contact || "";
  const contactEl = /^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/.test(contact)
    ? h("a", { href: `mailto:${contact}` }, contact)
    : h("span", {}, contact || "—");
  clear(entry.parts.details,
    h("h3", {}, "Contact"),
    h("dl", {},
      h("dt", {}, "E-mail"), h("dd", {}, contactEl),
      h("dt", {}, "Urgency"), h("dd", {}, h("span", { class: `badge prio-${detail.priority}` }, PRIORITY_LABEL[detail.priority] || detail.priority)),
      h("dt", {}, "Language"), h("dd", {}, LANGUAGES[detail.language] || detail.language),
      h("dt", {}, "Opened"), h("dd", {}, timeEl(detail.created_at)),
      detail.status === "queued" && [h("dt", {}, "In queue"), h("dd", {}, `position ${detail.queue_position ?? "—"}`)],
      h("dt", {}, "SLA"), h("dd", {}, slaEl(detail)),
      detail.agent && [h("dt", {}, "Agent"), h("dd", {}, detail.agent.name)],
      detail.closed_at && [h("dt", {}, "Closed"), h("dd", {}, timeEl(detail.closed_at))],
      detail.resolution_note && [h("dt", {}, "Resolution"), h("dd", {}, detail.resolution_note)],
      detail.rating && [h("dt", {}, "Rating"), h("dd", {}, `${detail.rating} / 5${detail.rating_comment ? ` — ${detail.rating_comment}` : ""}`)]),
    h("h3", {}, "Summary"),
    h("p", { class: "small" }, detail.summary || "—"),
    h("h3", {}, "Bot's diagnosis"),
    tried.length
      ? h("ol", { class: "tried", "aria-label": "Articles the bot tried" }, tried.map((article) => {
        const score = Number(article.score) || 0;
        const bar = h("span", {});
        bar.style.width = `${Math.round(Math.max(0, Math.min(1, score)) * 100)}%`;
        return h("li", {},
          h("div", {}, article.title || article.article_id),
          h("div", { class: "small muted mono" }, `${article.article_id} · score ${score.toFixed(2)}`),
          h("div", { class: "scorebar", "aria-hidden": "true" }, bar));
      }))
      : h("p", { class: "small muted" }, "The bot tried no article."),
    h("p", { class: "small" }, h("strong", {}, "Feedback: "), attempt.feedback || "none given"));
}

// -- replying ---------------------------------------------------------------------------------------
async function sendReply(entry) {
  const { reply, send } = entry.parts;
  const text = reply.value.trim();
  if (!text || send.disabled) return;
  send.disabled = true;
  try {
    await api(`/api/handoffs/${entry.id}/messages`, { method: "POST", body: { text } });
    reply.value = "";
    await refreshConversation(entry.id);
    entry.parts.transcript.scrollTop = entry.parts.transcript.scrollHeight;
  } catch (err) {
    reportError(err);
  } finally {
    send.disabled = false;
    reply.focus();
  }
}

async function searchCanned(entry) {
  const { cannedInput, cannedResults, cannedStatus } = entry.parts;
  const q = cannedInput.value.trim();
  if (entry.cannedAbort) entry.cannedAbort.abort();
  if (!q) {
    clear(cannedResults);
    cannedStatus.textContent = "";
    return;
  }
  entry.cannedAbort = new AbortController();
  const params = new URLSearchParams({ q, lang: entry.detail.language, top_k: "5" });
  try {
    const result = await api(`/api/kb/search?${params}`, { signal: entry.cannedAbort.signal });
    cannedStatus.textContent = result.results.length ? `${result.results.length} found` : "Nothing found";
    clear(cannedResults, result.results.map((r) => h("li", {},
      h("strong", {}, r.title),
      h("button", {
        type: "button", class: "btn small", "aria-label": `Insert “${r.title}”`,
        onclick: () => insertAnswer(entry, r),
      }, "Insert"),
      h("span", { class: "canned-preview" }, `${r.language.toUpperCase()} · score ${r.score.toFixed(2)} · ${r.body.slice(0, 140)}`))));
  } catch (err) {
    reportError(err);
  }
}

function insertAnswer(entry, result) {
  const { reply } = entry.parts;
  const start = reply.selectionStart ?? reply.value.length;
  const end = reply.selectionEnd ?? reply.value.length;
  const before = reply.value.slice(0, start);
  const text = (before && !before.endsWith("\n") ? "\n\n" : "") + result.body;
  reply.setRangeText(text, start, end, "end");
  entry.parts.cannedInput.value = "";
  clear(entry.parts.cannedResults);
  entry.parts.cannedStatus.textContent = "";
  reply.focus();
  announce(`Inserted “${result.title}”. Edit it, then send.`);
}

// -- transfer, release, close ------------------------------------------------------------------------
function setupDialogs() {
  document.querySelectorAll("dialog [data-cancel]").forEach((button) => {
    button.addEventListener("click", () => button.closest("dialog").close("cancel"));
  });
}

function ask(dialogEl) {
  return new Promise((resolve) => {
    dialogEl.returnValue = "";
    dialogEl.addEventListener("close", () => resolve(dialogEl.returnValue === "ok"), { once: true });
    dialogEl.showModal();
  });
}

async function transfer(entry) {
  await loadAgents().catch(() => null);
  const select = $("#transfer-agent");
  const others = state.agents.filter((a) => a.id !== (entry.detail.agent && entry.detail.agent.id));
  if (!others.length) {
    toast("There is no other agent to transfer to.", "error");
    return;
  }
  clear(select, others.map((a) => h("option", { value: String(a.id) },
    `${a.name} — ${a.status}${a.languages.includes(entry.detail.language) ? "" : ` (no ${entry.detail.language.toUpperCase()})`}`)));
  const online = others.find((a) => a.status === "online" && a.languages.includes(entry.detail.language));
  if (online) select.value = String(online.id);
  $("#transfer-note").value = "";
  if (!(await ask($("#transfer-dialog")))) return;
  try {
    await api(`/api/handoffs/${entry.id}/transfer`, {
      method: "POST", body: { agent_id: Number(select.value), note: $("#transfer-note").value.trim() },
    });
    const to = others.find((a) => a.id === Number(select.value));
    toast(`Transferred to ${to ? to.name : "another agent"}.`);
    await refreshConversation(entry.id);
    refreshQueue().catch(reportError);
  } catch (err) {
    reportError(err);
  }
}

async function release(entry) {
  try {
    await api(`/api/handoffs/${entry.id}/release`, { method: "POST" });
    toast("Released to the queue.");
    await refreshConversation(entry.id);
    refreshQueue().catch(reportError);
  } catch (err) {
    reportError(err);
  }
}

async function closeConversation(entry) {
  const note = $("#close-note");
  note.value = "";
  if (!(await ask($("#close-dialog")))) return;
  try {
    await api(`/api/handoffs/${entry.id}/close`, { method: "POST", body: { note: note.value.trim() } });
    toast("Conversation closed. The bot asks the user for a rating.");
    await refreshConversation(entry.id);
    refreshQueue().catch(reportError);
  } catch (err) {
    reportError(err);
  }
}

start().catch((err) => {
  reportError(err);
  const box = $("#login");
  box.hidden = false;
  clear(box, h("div", { class: "login" }, h("h1", {}, "Agent console"),
    h("div", { class: "alert error", role: "alert" }, `The console could not start: ${err.message}`)));
});
