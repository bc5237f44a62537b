/*
 * firstline chat widget. Embed on any page with one tag:
 *   <script src="https://support.example.com/static/widget.js"
 *           data-socket-url="https://bot.example.com" defer></script>
 * Options (data-* attributes): socket-url (Rasa's socket.io address), lang (else the
 * page's lang attribute), title.
 * It talks socket.io to Rasa's webchat channel, keeps its session and the visible
 * history across page reloads, and renders bot Markdown through DOMPurify. What the
 * visitor typed is always shown as text.
 *
 * Accessibility: every control is a labelled native control reachable with Tab; Escape
 * minimises and returns focus to the launcher; new messages are announced (role=log);
 * labels exist in English, Latvian and Russian.
 */
(function () {
  "use strict";
  if (window.__firstlineWidget) return;
  window.__firstlineWidget = true;

  var script = document.currentScript;
  var base = new URL(script.src, location.href).origin;
  var LANGS = ["en", "lv", "ru"];
  var STORE = "firstline:";
  var TEXT = {
    en: { title: "IT Service Desk", open: "Open chat", close: "Minimise chat", send: "Send",
          placeholder: "Type your question…", inputLabel: "Your message", typing: "The assistant is typing",
          language: "Language", you: "You", bot: "Assistant", agent: "Agent", unread: "unread messages",
          log: "Conversation", offline: "Connecting…", reconnecting: "Connection lost. Reconnecting…",
          restart: "New conversation", replies: "Suggested replies", newMessage: "New message",
          hint: "Enter sends · Shift+Enter for a new line · Esc minimises", failed: "The chat could not load. Please try again later." },
    lv: { title: "IT atbalsts", open: "Atvērt tērzēšanu", close: "Minimizēt tērzēšanu", send: "Sūtīt",
          placeholder: "Ierakstiet savu jautājumu…", inputLabel: "Jūsu ziņa", typing: "Asistents raksta",
          language: "Valoda", you: "Jūs", bot: "Asistents", agent: "Darbinieks", unread: "nelasītas ziņas",
          log: "Saruna", offline: "Savienojas…", reconnecting: "Savienojums pārtrūka. Savienojas no jauna…",
          restart: "Jauna saruna", replies: "Ieteiktās atbildes", newMessage: "Jauna ziņa",
          hint: "Enter — sūtīt · Shift+Enter — jauna rinda · Esc — minimizēt", failed: "Tērzēšanu neizdevās ielādēt. Lūdzu, mēģiniet vēlāk." },
    ru: { title: "Служба поддержки", open: "Открыть чат", close: "Свернуть чат", send: "Отправить",
          placeholder: "Введите вопрос…", inputLabel: "Ваше сообщение", typing: "Ассистент печатает",
          language: "Язык", you: "Вы", bot: "Ассистент", agent: "Сотрудник", unread: "непрочитанных сообщений",
          log: "Разговор", offline: "Подключение…", reconnecting: "Соединение потеряно. Подключаемся снова…",
          restart: "Новый разговор", replies: "Варианты ответа", newMessage: "Новое сообщение",
          hint: "Enter — отправить · Shift+Enter — новая строка · Esc — свернуть", failed: "Не удалось загрузить чат. Попробуйте позже." }
  };
  var SWITCH = { en: "Switch to English", lv: "Runāsim latviski", ru: "Давайте по-русски" };
  var NOTICES = { agent_joined: true, agent_left: true, agent_released: true };
  /** Bot messages closer together than this belong to one turn (an article and its buttons). */
  var TURN_GAP_MS = 2500;

  var pageLang = (script.dataset.lang || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  var state = {
    lang: load("lang") || (LANGS.indexOf(pageLang) >= 0 ? pageLang : "en"),
    open: load("open") === true,
    history: load("history") || [],
    unread: 0,
    handedOff: load("handedOff") === true,
    sessionId: load("session"),
    turnStart: null,
    lastBotAt: 0
  };
  var socketUrl = script.dataset.socketUrl || "http://127.0.0.1:5005";
  var ui = {};
  var socket = null;
  var typingTimer = null;

  function load(key) {
    try { return JSON.parse(localStorage.getItem(STORE + key)); } catch (e) { return null; }
  }
  function save(key, value) {
    try { localStorage.setItem(STORE + key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function t(key) { return (TEXT[state.lang] || TEXT.en)[key]; }

  function loadScript(name) {
    return new Promise(function (resolve, reject) {
      var el = document.createElement("script");
      el.src = base + "/vendor/" + name;
      el.onload = resolve;
      el.onerror = function () { reject(new Error("could not load " + name)); };
      document.head.appendChild(el);
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function markdown(text) {
    var html = window.marked.parse(text || "", { breaks: true });
    return window.DOMPurify.sanitize(html, {
      FORBID_TAGS: ["style", "form", "input", "textarea", "select", "button", "iframe"], FORBID_ATTR: ["style"]
    });
  }

  function newSessionId() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID().replace(/-/g, "");
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function build() {
    var host = el("div", { id: "firstline-widget" });
    document.body.appendChild(host);
    var root = host.attachShadow({ mode: "open" });
    root.appendChild(el("link", { rel: "stylesheet", href: base + "/static/widget.css" }));
    ui.badge = el("span", { class: "badge", hidden: "", "aria-hidden": "true" });
    ui.launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false",
                                 "aria-controls": "fl-panel", onclick: function () { setOpen(true); } },
                     [el("span", { class: "icon", "aria-hidden": "true", text: "💬" }), ui.badge]);
    ui.title = el("h2", { id: "fl-title" });
    ui.langSelect = el("select", { class: "lang", id: "fl-lang", onchange: function (e) { switchLanguage(e.target.value); } });
    LANGS.forEach(function (code) {
      ui.langSelect.appendChild(el("option", { value: code, lang: code,
        text: { en: "English", lv: "Latviešu", ru: "Русский" }[code] }));
    });
    ui.restartBtn = el("button", { class: "icon-btn restart", type: "button", onclick: restart },
                       [el("span", { "aria-hidden": "true", text: "↺" })]);
    ui.closeBtn = el("button", { class: "icon-btn close", type: "button", onclick: function () { setOpen(false); } },
                     [el("span", { "aria-hidden": "true", text: "–" })]);
    ui.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
                         tabindex: "0" });
    ui.typing = el("div", { class: "typing", hidden: "", role: "status" },
                   [el("span"), el("span"), el("span"), el("span", { class: "sr-only", id: "fl-typing-text" })]);
    ui.input = el("textarea", { rows: "1", maxlength: "5000", class: "input", id: "fl-input",
                                "aria-describedby": "fl-hint", autocomplete: "off" });
    ui.send = el("button", { type: "submit", class: "send" });
    ui.status = el("div", { class: "status", role: "status" });
    ui.hint = el("p", { class: "sr-only", id: "fl-hint" });
    ui.form = el("form", { class: "composer", onsubmit: function (e) { e.preventDefault(); submit(); } },
                 [el("label", { for: "fl-input", class: "sr-only", id: "fl-input-label" }), ui.input, ui.send, ui.hint]);
    ui.input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    ui.input.addEventListener("input", autoGrow);
    ui.panel = el("section", { class: "panel", id: "fl-panel", role: "dialog", "aria-modal": "false",
                               "aria-labelledby": "fl-title", hidden: "" }, [
      el("header", {}, [ui.title, el("label", { class: "sr-only", for: "fl-lang", id: "fl-lang-label" }),
                        ui.langSelect, ui.restartBtn, ui.closeBtn]),
      ui.status, ui.log, ui.typing, ui.form
    ]);
    ui.panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.stopPropagation(); setOpen(false); }
    });
    root.appendChild(ui.launcher);
    root.appendChild(ui.panel);
    ui.root = root;
    applyLanguage();
    setOpen(state.open, true);
  }

  function autoGrow() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 120) + "px";
  }

  function applyLanguage() {
    ui.title.textContent = script.dataset.title || t("title");
    ui.panel.setAttribute("lang", state.lang);
    ui.closeBtn.setAttribute("aria-label", t("close"));
    ui.closeBtn.title = t("close");
    ui.restartBtn.setAttribute("aria-label", t("restart"));
    ui.restartBtn.title = t("restart");
    ui.send.textContent = t("send");
    ui.input.placeholder = t("placeholder");
    ui.hint.textContent = t("hint");
    ui.root.getElementById("fl-input-label").textContent = t("inputLabel");
    ui.root.getElementById("fl-lang-label").textContent = t("language");
    ui.root.getElementById("fl-typing-text").textContent = t("typing");
    ui.log.setAttribute("aria-label", t("log"));
    ui.log.querySelectorAll(".replies").forEach(function (g) { g.setAttribute("aria-label", t("replies")); });
    ui.langSelect.value = state.lang;
    if (ui.status.dataset.key) ui.status.textContent = t(ui.status.dataset.key);
    updateBadge();
  }

  function setStatus(key) {
    ui.status.dataset.key = key || "";
    ui.status.textContent = key ? t(key) : "";
  }

  function setOpen(open, initial) {
    state.open = open;
    save("open", open);
    ui.panel.hidden = !open;
    ui.launcher.hidden = open;
    ui.launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      state.unread = 0;
      updateBadge();
      scrollToTurn();
      if (!initial) ui.input.focus();
    } else if (!initial) {
      ui.launcher.focus();
    }
  }

  function updateBadge() {
    ui.badge.hidden = state.unread === 0;
    ui.badge.textContent = String(state.unread);
    ui.launcher.setAttribute("aria-label", t("open") + (state.unread ? " (" + state.unread + " " + t("unread") + ")" : ""));
  }

  function remember(message) {
    state.history.push(message);
    if (state.history.length > 200) state.history = state.history.slice(-200);
    save("history", state.history);
  }

  function kindOf(message) {
    var custom = message.custom || {};
    if (message.from === "user") return "user";
    if (custom.kind === "agent") return "agent";
    if (NOTICES[custom.kind]) return "notice";
    return "bot";
  }

  function render(message, live) {
    var custom = message.custom || {};
    var kind = kindOf(message);
    var who = kind === "user" ? t("you") : kind === "agent" ? (custom.agent_name || t("agent")) : t("bot");
    var bubble = el("div", { class: "msg " + kind + (custom.kind === "article" ? " article" : "") });
    if (custom.kind) bubble.setAttribute("data-kind", String(custom.kind));
    if (kind !== "notice") bubble.appendChild(el("span", { class: "who", text: who }));
    else bubble.setAttribute("role", "note");
    var body = el("div", { class: "body" });
    // What the visitor typed and the notices are text; bot and agent messages are sanitised Markdown.
    if (kind === "user" || kind === "notice") body.textContent = message.text;
    else body.innerHTML = markdown(message.text);
    body.querySelectorAll("a").forEach(function (a) { a.target = "_blank"; a.rel = "noopener noreferrer"; });
    bubble.appendChild(body);
    var replies = message.quick_replies || [];
    if (replies.length) {
      var row = el("div", { class: "replies", role: "group", "aria-label": t("replies") });
      replies.forEach(function (r) {
        row.appendChild(el("button", { type: "button", class: "reply", text: r.title,
          onclick: function () {
            row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
            sendMessage(r.payload, r.title);
            ui.input.focus(); // the pressed button is disabled now: keep keyboard focus in the chat
          } }));
      });
      if (message.answered) row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      bubble.appendChild(row);
    }
    ui.log.appendChild(bubble);
    if (!live) return;
    if (kind === "user") {
      state.turnStart = null;
      ui.log.scrollTop = ui.log.scrollHeight;
      return;
    }
    var now = Date.now();
    if (!state.turnStart || now - state.lastBotAt > TURN_GAP_MS || !state.turnStart.isConnected) state.turnStart = bubble;
    state.lastBotAt = now;
    scrollToTurn();
    if (!state.open) { state.unread += 1; updateBadge(); }
  }

  /**
   * Shows as much of the bot's latest turn as fits, from its beginning: a long article
   * arriving with its "did this help?" buttons is shown from its title, not its end.
   */
  function scrollToTurn() {
    var bottom = ui.log.scrollHeight - ui.log.clientHeight;
    if (!state.turnStart || !state.turnStart.isConnected) { ui.log.scrollTop = bottom; return; }
    ui.log.scrollTop = Math.min(bottom, Math.max(0, state.turnStart.offsetTop - 8));
  }

  function disableOldReplies() {
    ui.log.querySelectorAll(".replies button").forEach(function (b) { b.disabled = true; });
    state.history.forEach(function (m) { if (m.quick_replies) m.answered = true; });
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    ui.typing.hidden = !on;
    if (on) typingTimer = setTimeout(function () { ui.typing.hidden = true; }, 15000);
  }

  function sendMessage(text, display) {
    text = (text || "").trim();
    if (!text || !socket) return;
    disableOldReplies();
    var shown = display || text;
    var message = { from: "user", text: shown };
    remember(message);
    render(message, true);
    socket.emit("user_uttered", {
      message: text, session_id: state.sessionId,
      metadata: { language: state.lang, display_text: shown, page: location.pathname }
    });
    if (!state.handedOff) showTyping(true);
  }

  function submit() {
    var text = ui.input.value;
    if (!text.trim()) return;
    ui.input.value = "";
    autoGrow();
    sendMessage(text);
  }

  function switchLanguage(code) {
    if (LANGS.indexOf(code) < 0 || code === state.lang) return;
    state.lang = code;
    save("lang", code);
    applyLanguage();
    sendMessage('/switch_language{"language": "' + code + '"}', SWITCH[code]);
  }

  /** Forgets this conversation and starts a new one (a new Rasa session). */
  function restart() {
    state.history = [];
    state.handedOff = false;
    state.turnStart = null;
    state.sessionId = newSessionId();
    save("history", []);
    save("handedOff", false);
    save("session", state.sessionId);
    ui.log.textContent = "";
    showTyping(false);
    if (socket) {
      // A new connection leaves the old conversation's room, so none of its late replies shows up here.
      socket.disconnect();
      socket.connect();
    }
    ui.input.focus();
  }

  function onBotMessage(data) {
    if (!data || typeof data !== "object") return;
    var custom = data.custom || {};
    if (custom.kind === "handoff_opened" || custom.kind === "agent_joined") state.handedOff = true;
    if (custom.kind === "agent_left") state.handedOff = false;
    save("handedOff", state.handedOff);
    showTyping(false);
    if (!data.text) return;
    var message = { from: "bot", text: String(data.text), quick_replies: data.quick_replies || [], custom: custom };
    remember(message);
    render(message, true);
  }

  function connect() {
    setStatus("offline");
    socket = window.io(socketUrl, { transports: ["websocket", "polling"] });
    socket.on("connect", function () {
      socket.emit("session_request", { session_id: state.sessionId });
    });
    socket.on("session_confirm", function (sessionId) {
      state.sessionId = typeof sessionId === "string" ? sessionId : sessionId.session_id;
      save("session", state.sessionId);
      setStatus("");
      ui.panel.dataset.ready = "true";
    });
    socket.on("bot_uttered", onBotMessage);
    socket.on("disconnect", function () { setStatus("reconnecting"); delete ui.panel.dataset.ready; });
  }

  function start() {
    build();
    Promise.all(["socket.io.min.js", "marked.min.js", "purify.min.js"].map(loadScript))
      .then(function () {
        state.history.forEach(function (m) { render(m, false); });
        ui.log.scrollTop = ui.log.scrollHeight;
        connect();
      })
      .catch(function () { setStatus("failed"); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
