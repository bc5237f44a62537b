/*
 * firstline chat widget. Embed on any page with one tag:
 *   <script src="https://support.example.com/static/widget.js"
 *           data-socket-url="https://bot.example.com" defer></script>
 * Options (data-* attributes): socket-url (Rasa's socket.io address), lang (else the
 * page's lang attribute), title.
 * It talks socket.io to Rasa's webchat channel, keeps its session and the visible
 * history across page reloads, and renders bot Markdown through DOMPurify.
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
          placeholder: "Type your question…", typing: "The assistant is typing", language: "Language",
          you: "You", bot: "Assistant", agent: "Agent", unread: "unread messages", log: "Conversation",
          offline: "Connecting…", restart: "New conversation" },
    lv: { title: "IT atbalsts", open: "Atvērt tērzēšanu", close: "Minimizēt tērzēšanu", send: "Sūtīt",
          placeholder: "Ierakstiet savu jautājumu…", typing: "Asistents raksta", language: "Valoda",
          you: "Jūs", bot: "Asistents", agent: "Darbinieks", unread: "nelasītas ziņas", log: "Saruna",
          offline: "Savienojas…", restart: "Jauna saruna" },
    ru: { title: "Служба поддержки", open: "Открыть чат", close: "Свернуть чат", send: "Отправить",
          placeholder: "Введите вопрос…", typing: "Ассистент печатает", language: "Язык",
          you: "Вы", bot: "Ассистент", agent: "Сотрудник", unread: "непрочитанных сообщений", log: "Разговор",
          offline: "Подключение…", restart: "Новый разговор" }
  };
  var SWITCH = { en: "Switch to English", lv: "Runāsim latviski", ru: "Давайте по-русски" };

  var pageLang = (script.dataset.lang || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  var state = {
    lang: load("lang") || (LANGS.indexOf(pageLang) >= 0 ? pageLang : "en"),
    open: load("open") === true,
    history: load("history") || [],
    unread: 0,
    handedOff: load("handedOff") === true,
    sessionId: load("session")
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
    return window.DOMPurify.sanitize(html, { FORBID_TAGS: ["style", "form", "input"], FORBID_ATTR: ["style"] });
  }

  function build() {
    var host = el("div", { id: "firstline-widget" });
    document.body.appendChild(host);
    var root = host.attachShadow({ mode: "open" });
    root.appendChild(el("link", { rel: "stylesheet", href: base + "/static/widget.css" }));
    ui.badge = el("span", { class: "badge", hidden: "" });
    ui.launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false",
                                 onclick: function () { setOpen(true); } },
                     [el("span", { class: "icon", "aria-hidden": "true", text: "💬" }), ui.badge]);
    ui.title = el("h2", { id: "fl-title" });
    ui.langSelect = el("select", { class: "lang", onchange: function (e) { switchLanguage(e.target.value); } });
    LANGS.forEach(function (code) {
      ui.langSelect.appendChild(el("option", { value: code, lang: code,
        text: { en: "English", lv: "Latviešu", ru: "Русский" }[code] }));
    });
    ui.closeBtn = el("button", { class: "close", type: "button", onclick: function () { setOpen(false); } },
                     [el("span", { "aria-hidden": "true", text: "–" })]);
    ui.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
                         tabindex: "0" });
    ui.typing = el("div", { class: "typing", hidden: "", role: "status" },
                   [el("span"), el("span"), el("span")]);
    ui.input = el("textarea", { rows: "1", maxlength: "5000", class: "input" });
    ui.send = el("button", { type: "submit", class: "send" });
    ui.status = el("div", { class: "status", role: "status" });
    ui.form = el("form", { class: "composer", onsubmit: function (e) { e.preventDefault(); submit(); } },
                 [el("label", { for: "fl-input", class: "sr-only", id: "fl-input-label" }), ui.input, ui.send]);
    ui.input.id = "fl-input";
    ui.input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); }
    });
    ui.panel = el("section", { class: "panel", role: "dialog", "aria-labelledby": "fl-title", hidden: "" }, [
      el("header", {}, [ui.title, el("label", { class: "sr-only", for: "fl-lang", id: "fl-lang-label" }),
                        ui.langSelect, ui.closeBtn]),
      ui.status, ui.log, ui.typing, ui.form
    ]);
    ui.langSelect.id = "fl-lang";
    ui.panel.addEventListener("keydown", function (e) { if (e.key === "Escape") setOpen(false); });
    root.appendChild(ui.launcher);
    root.appendChild(ui.panel);
    ui.root = root;
    applyLanguage();
    setOpen(state.open, true);
  }

  function applyLanguage() {
    ui.title.textContent = t("title");
    ui.panel.setAttribute("lang", state.lang);
    ui.launcher.setAttribute("aria-label", t("open"));
    ui.closeBtn.setAttribute("aria-label", t("close"));
    ui.send.textContent = t("send");
    ui.input.placeholder = t("placeholder");
    ui.root.getElementById("fl-input-label").textContent = t("placeholder");
    ui.root.getElementById("fl-lang-label").textContent = t("language");
    ui.log.setAttribute("aria-label", t("log"));
    ui.typing.setAttribute("aria-label", t("typing"));
    ui.langSelect.value = state.lang;
    updateBadge();
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
      ui.log.scrollTop = ui.log.scrollHeight;
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

  function render(message, live) {
    var custom = message.custom || {};
    var kind = message.from === "user" ? "user" : custom.kind === "agent" ? "agent"
      : (custom.kind === "agent_joined" || custom.kind === "agent_left") ? "notice" : "bot";
    var who = kind === "user" ? t("you") : kind === "agent" ? (custom.agent_name || t("agent")) : t("bot");
    var bubble = el("div", { class: "msg " + kind });
    if (kind !== "notice") bubble.appendChild(el("span", { class: "who", text: who }));
    var body = el("div", { class: "body" });
    if (kind === "user" || kind === "notice") body.textContent = message.text;
    else body.innerHTML = markdown(message.text);
    body.querySelectorAll("a").forEach(function (a) { a.target = "_blank"; a.rel = "noopener noreferrer"; });
    bubble.appendChild(body);
    var replies = message.quick_replies || [];
    if (replies.length) {
      var row = el("div", { class: "replies", role: "group" });
      replies.forEach(function (r) {
        row.appendChild(el("button", { type: "button", class: "reply", text: r.title,
          onclick: function () {
            row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
            sendMessage(r.payload, r.title);
          } }));
      });
      if (message.answered) row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      bubble.appendChild(row);
    }
    ui.log.appendChild(bubble);
    ui.log.scrollTop = ui.log.scrollHeight;
    if (live && kind !== "user" && !state.open) { state.unread += 1; updateBadge(); }
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
    sendMessage(text);
  }

  function switchLanguage(code) {
    if (LANGS.indexOf(code) < 0 || code === state.lang) return;
    state.lang = code;
    save("lang", code);
    applyLanguage();
    sendMessage('/switch_language{"language": "' + code + '"}', SWITCH[code]);
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
    ui.status.textContent = t("offline");
    socket = window.io(socketUrl, { transports: ["websocket", "polling"] });
    socket.on("connect", function () {
      socket.emit("session_request", { session_id: state.sessionId });
    });
    socket.on("session_confirm", function (sessionId) {
      state.sessionId = typeof sessionId === "string" ? sessionId : sessionId.session_id;
      save("session", state.sessionId);
      ui.status.textContent = "";
      ui.panel.dataset.ready = "true";
    });
    socket.on("bot_uttered", onBotMessage);
    socket.on("disconnect", function () { ui.status.textContent = t("offline"); delete ui.panel.dataset.ready; });
  }

  function start() {
    build();
    Promise.all(["socket.io.min.js", "marked.min.js", "purify.min.js"].map(loadScript))
      .then(function () {
        state.history.forEach(function (m) { render(m, false); });
        connect();
      })
      .catch(function (err) { ui.status.textContent = String(err.message || err); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
