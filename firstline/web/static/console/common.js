// Shared by the agent and editor consoles: DOM building, the JSON API, login, small helpers.
// Everything a person typed is put into the page with textContent (see `h`), never as markup;
// only Markdown written by editors is turned into HTML, and only through DOMPurify.

export class ApiError extends Error {
  constructor(status, detail, problems) {
    super(typeof detail === "string" ? detail : `request failed (${status})`);
    this.status = status;
    this.problems = problems || [];
  }
}

/** Calls the firstline API with the session cookie; returns parsed JSON (or null for 204). */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "The service cannot be reached. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) data = await response.json();
  if (!response.ok) {
    let detail = data && data.detail;
    if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    const error = new ApiError(response.status, detail || response.statusText, data && data.problems);
    if (response.status === 401) document.dispatchEvent(new CustomEvent("firstline:logged-out"));
    throw error;
  }
  return data;
}

/**
 * Builds an element. Strings and numbers among the children become text nodes, so user
 * content can never turn into markup. attrs: class, text, on<event>, dataset, boolean
 * attributes (true/false), anything else as an attribute.
 */
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "value" && !svg) node.value = value;
    else if (key === "checked" && !svg) node.checked = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** Editor-written Markdown to safe HTML (marked, then DOMPurify). */
export function renderMarkdown(target, text) {
  const html = window.marked.parse(text || "", { breaks: true });
  target.innerHTML = window.DOMPurify.sanitize(html, {
    FORBID_TAGS: ["style", "form", "input", "textarea", "select", "button", "iframe"],
    FORBID_ATTR: ["style"],
  });
  target.querySelectorAll("a").forEach((a) => {
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  });
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

export const LANGUAGES = { en: "English", lv: "Latviešu", ru: "Русский" };

/** "45 s", "12 min", "3 h 05 min", "2 d 4 h". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(Math.abs(seconds)));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function clock(iso) {
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function timeEl(iso) {
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString() }, clock(iso));
}

// -- announcements and toasts ------------------------------------------------------------
let politeRegion = null;
export function announce(message) {
  if (!politeRegion) {
    politeRegion = h("div", { class: "sr-only", role: "status", "aria-live": "polite", id: "announcer" });
    document.body.appendChild(politeRegion);
  }
  politeRegion.textContent = "";
  setTimeout(() => { politeRegion.textContent = message; }, 30);
}

export function toast(message, kind = "info") {
  let area = $(".toast-area");
  if (!area) {
    area = h("div", { class: "toast-area" });
    document.body.appendChild(area);
  }
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  area.appendChild(item);
  setTimeout(() => item.remove(), kind === "error" ? 7000 : 3500);
}

export function reportError(err) {
  if (err && err.name === "AbortError") return;
  console.error(err);
  toast(err instanceof Error ? err.message : String(err), "error");
}

// -- login ----------------------------------------------------------------------------------
/**
 * The start of both consoles: waits for someone with one of `roles` to be logged in (the
 * login form shows in #login until then), then shows the top bar with their name and
 * `main`. The page reloads when the session ends, whichever request notices.
 */
export async function startConsole({ roles, title, intro, main, describe }) {
  let me = null;
  document.addEventListener("firstline:logged-out", () => {
    if (me) location.reload();
  });
  me = await ensureLogin($("#login"), { roles, title, intro });
  $("#topbar").hidden = false;
  $(main).hidden = false;
  $("#who").textContent = me.name;
  $("#who").title = describe(me);
  $("#logout").addEventListener("click", logout);
  return me;
}

/**
 * Resolves with the logged-in account once someone with one of `roles` is logged in,
 * showing the login form in `container` until then.
 */
async function ensureLogin(container, { roles, title, intro }) {
  try {
    const me = await api("/api/me");
    if (roles.includes(me.role) || me.role === "admin") return me;
    return await showLogin(container, { roles, title, intro, wrongRole: me });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    return await showLogin(container, { roles, title, intro });
  }
}

function showLogin(container, { roles, title, intro, wrongRole }) {
  return new Promise((resolve) => {
    const error = h("div", { class: "alert error", role: "alert", id: "login-error" });
    if (wrongRole) {
      error.textContent = `You are logged in as ${wrongRole.email} (${wrongRole.role}); this console needs the ${roles.join(" or ")} role. Log in with another account.`;
    }
    const email = h("input", { type: "email", id: "login-email", name: "email", autocomplete: "username", required: true });
    const password = h("input", {
      type: "password", id: "login-password", name: "password", autocomplete: "current-password", required: true,
    });
    const submit = h("button", { type: "submit", class: "btn primary" }, "Log in");
    const form = h("form", { class: "login", "aria-labelledby": "login-title", novalidate: true },
      h("h1", { id: "login-title" }, title),
      h("p", {}, intro),
      error,
      h("div", { class: "field" }, h("label", { for: "login-email" }, "E-mail"), email),
      h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), password),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!email.value.trim() || !password.value) {
        error.textContent = "Enter your e-mail and password.";
        (email.value.trim() ? password : email).focus();
        return;
      }
      submit.disabled = true;
      error.textContent = "";
      try {
        const result = await api("/api/auth/login", { method: "POST", body: { email: email.value.trim(), password: password.value } });
        const me = result.agent;
        if (!roles.includes(me.role) && me.role !== "admin") {
          error.textContent = `${me.email} is an ${me.role} account; this console needs the ${roles.join(" or ")} role.`;
          submit.disabled = false;
          return;
        }
        container.hidden = true;
        clear(container);
        resolve(me);
      } catch (err) {
        error.textContent = err.status === 401 ? "Wrong e-mail or password." : err.message;
        submit.disabled = false;
        password.select();
      }
    });
    clear(container, form);
    container.hidden = false;
    email.focus();
  });
}

export async function logout() {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } catch (err) {
    /* the session may already be gone */
  }
  location.reload();
}

/** The ARIA tab pattern: arrow keys move between tabs, Home/End jump. */
export function tabKeys(tablist, onSelect) {
  tablist.addEventListener("keydown", (event) => {
    const tabs = [...tablist.querySelectorAll('[role="tab"]')];
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
    else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
    else if (event.key === "Home") next = tabs[0];
    else if (event.key === "End") next = tabs[tabs.length - 1];
    if (next) {
      event.preventDefault();
      next.focus();
      onSelect(next);
    }
  });
}
