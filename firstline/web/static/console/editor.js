// The editor console (/editor): articles with live preview, "try a question", translations
// side by side, revision history with diff and restore, content gaps, and the dashboard.
// Routes live in the URL hash: #/articles, #/articles/<id>, #/new, #/gaps, #/dashboard.

import {
  $, api, ApiError, announce, clear, debounce, h, LANGUAGES, renderMarkdown, reportError,
  startConsole, tabKeys, timeEl, toast,
} from "./common.js";
import { barChart, hbars, lineChart, percent } from "./charts.js";

const LANGS = Object.keys(LANGUAGES);
const REASONS = { no_answer: "no answer", not_helped: "didn't help", handed_off: "handed off" };
const EMPTY = { id: "", language: "en", title: "", body: "", questions: [], tags: [], translation_group: "", status: "draft" };

const state = {
  me: null,
  articles: [],
  /** The article being edited as stored (null for a new one). */
  stored: null,
  dirty: false,
  isNew: false,
  prefill: null,
  view: null,
  sideTab: "try",
  revisions: [],
};
const ui = {};

// -- start and routing ---------------------------------------------------------------------------
async function start() {
  state.me = await startConsole({
    roles: ["editor"],
    title: "Knowledge base",
    intro: "Log in with an editor account to write and publish articles.",
    main: "#main",
    describe: (me) => me.email,
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", (event) => {
    if (state.dirty) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  await route();
  document.body.dataset.ready = "true";
}

let lastHash = null;
async function route() {
  const hash = location.hash || "#/articles";
  const [, section, ...rest] = hash.split("/");
  if (state.view === "articles" && state.dirty && hash !== lastHash && !hash.startsWith(`#/articles/${encodeURIComponent(formId())}`)) {
    if (!confirm("You have unsaved changes. Leave them?")) {
      history.replaceState(null, "", lastHash);
      return;
    }
    state.dirty = false;
  }
  lastHash = hash;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    const on = a.dataset.nav === section || (section === "new" && a.dataset.nav === "articles");
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  try {
    if (section === "gaps") await showGaps();
    else if (section === "dashboard") await showDashboard();
    else {
      await showArticles();
      if (section === "new") newArticle(state.prefill || {});
      else if (rest.length && rest[0]) await openArticle(decodeURIComponent(rest.join("/")));
      else if (!state.stored && !state.isNew) showNothing();
    }
  } catch (err) {
    reportError(err);
  }
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ================================ articles ================================
async function showArticles() {
  if (state.view !== "articles") {
    state.view = "articles";
    document.title = "Articles — firstline";
    buildArticlesView();
  }
  await loadArticles();
}

async function loadArticles() {
  state.articles = await api("/api/kb/articles");
  fillTagFilter();
  renderList();
  fillGroups();
}

function buildArticlesView() {
  ui.search = h("input", { type: "search", id: "f-search", placeholder: "Title, text, question or tag", autocomplete: "off" });
  ui.fLang = select("f-lang", [["", "All"], ...LANGS.map((l) => [l, LANGUAGES[l]])]);
  ui.fStatus = select("f-status", [["", "All"], ["published", "Published"], ["draft", "Draft"]]);
  ui.fTag = select("f-tag", [["", "All"]]);
  ui.fMissing = select("f-missing", [
    ["", "—"], ["any", "Any language"], ...LANGS.map((l) => [l, `No ${LANGUAGES[l]}`]),
  ]);
  [ui.search, ui.fLang, ui.fStatus, ui.fTag, ui.fMissing].forEach((el) => el.addEventListener("input", renderList));
  ui.count = h("div", { class: "list-count", role: "status" });
  ui.list = h("ul", { class: "article-list", "aria-label": "Articles" });
  const listPane = h("section", { class: "article-list-pane", "aria-labelledby": "articles-title" },
    h("div", { class: "panel-head" },
      h("h1", { id: "articles-title", class: "grow" }, "Articles"),
      h("a", { class: "btn primary small", href: "#/new", onclick: () => { state.prefill = null; } }, "New article")),
    h("div", { class: "filters", role: "search", "aria-label": "Filter articles" },
      h("div", { class: "full" }, h("label", { for: "f-search" }, "Search"), ui.search),
      h("div", {}, h("label", { for: "f-lang" }, "Language"), ui.fLang),
      h("div", {}, h("label", { for: "f-status" }, "Status"), ui.fStatus),
      h("div", {}, h("label", { for: "f-tag" }, "Tag"), ui.fTag),
      h("div", {}, h("label", { for: "f-missing" }, "Missing translation"), ui.fMissing)),
    ui.count, ui.list);

  ui.editor = h("section", { class: "editor-pane", "aria-label": "Article editor" });
  ui.side = buildSidePane();
  clear($("#main"), h("div", { class: "view articles-view" }, listPane, ui.editor, ui.side));
  $("#main").className = "app";
}

function select(id, options, value = "") {
  const el = h("select", { id }, options.map(([v, label]) => h("option", { value: v }, label)));
  el.value = value;
  return el;
}

function groupLanguages() {
  const groups = new Map();
  for (const a of state.articles) {
    if (!groups.has(a.translation_group)) groups.set(a.translation_group, new Set());
    groups.get(a.translation_group).add(a.language);
  }
  return groups;
}

function fillTagFilter() {
  const tags = [...new Set(state.articles.flatMap((a) => a.tags))].sort();
  const current = ui.fTag.value;
  clear(ui.fTag, h("option", { value: "" }, "All"), tags.map((t) => h("option", { value: t }, t)));
  ui.fTag.value = tags.includes(current) ? current : "";
}

function fillGroups() {
  if (!ui.groupList) return;
  const groups = [...new Set(state.articles.map((a) => a.translation_group))].sort();
  clear(ui.groupList, groups.map((g) => h("option", { value: g })));
}

function filtered() {
  const q = ui.search.value.trim().toLowerCase();
  const lang = ui.fLang.value;
  const status = ui.fStatus.value;
  const tag = ui.fTag.value;
  const missing = ui.fMissing.value;
  const groups = groupLanguages();
  return state.articles.filter((a) => {
    if (lang && a.language !== lang) return false;
    if (status && a.status !== status) return false;
    if (tag && !a.tags.includes(tag)) return false;
    if (missing) {
      const have = groups.get(a.translation_group) || new Set();
      if (missing === "any" ? LANGS.every((l) => have.has(l)) : have.has(missing)) return false;
    }
    if (q) {
      const text = [a.id, a.title, a.body, ...a.tags, ...a.questions].join("\n").toLowerCase();
      return q.split(/\s+/).every((word) => text.includes(word));
    }
    return true;
  });
}

function renderList() {
  const items = filtered();
  const groups = groupLanguages();
  ui.count.textContent = `${items.length} of ${state.articles.length} articles`;
  const current = state.stored && state.stored.id;
  clear(ui.list, items.length ? items.map((a) => {
    const have = groups.get(a.translation_group) || new Set();
    return h("li", {},
      h("a", { href: `#/articles/${encodeURIComponent(a.id)}`, "aria-current": a.id === current ? "true" : null },
        h("span", { class: "title" }, a.title),
        h("span", { class: "meta" },
          h("span", { class: "badge lang" }, a.language),
          h("span", { class: `badge status-${a.status}` }, a.status === "published" ? "Published" : "Draft"),
          h("span", { class: "mono" }, a.id),
          h("span", { class: "sr-only" }, `Translations: ${LANGS.filter((l) => have.has(l)).join(", ")}`),
          LANGS.filter((l) => l !== a.language).map((l) => h("span", {
            class: `badge ${have.has(l) ? "present" : "missing"}`, "aria-hidden": "true",
            title: have.has(l) ? `${LANGUAGES[l]} translation exists` : `No ${LANGUAGES[l]} translation`,
          }, have.has(l) ? l.toUpperCase() : `no ${l.toUpperCase()}`)))));
  }) : h("li", { class: "empty" }, "No article matches these filters."));
}

function showNothing() {
  state.stored = null;
  state.isNew = false;
  clear(ui.editor, h("div", { class: "empty" },
    h("p", {}, h("strong", {}, "Pick an article on the left, or write a new one.")),
    h("p", {}, "Published articles answer the bot's users within seconds of saving.")));
  renderSide();
}

async function openArticle(id) {
  if (state.stored && state.stored.id === id && !state.isNew && ui.form) return;
  let article;
  try {
    article = await api(`/api/kb/articles/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      toast(`There is no article ${id}.`, "error");
      showNothing();
      return;
    }
    throw err;
  }
  state.stored = article;
  state.isNew = false;
  buildForm(article);
  renderList();
  await loadRevisions();
  renderSide();
}

function newArticle(prefill) {
  state.stored = null;
  state.isNew = true;
  state.prefill = null;
  const language = prefill.language || "en";
  const article = { ...EMPTY, language, ...prefill };
  if (!article.id && article.translation_group) article.id = `${article.translation_group}-${language}`;
  buildForm(article);
  state.revisions = [];
  renderList();
  renderSide();
  (article.id ? ui.f.title : ui.f.id).focus();
}

// -- the form ----------------------------------------------------------------------------------
function buildForm(article) {
  const f = {};
  f.id = h("input", {
    type: "text", id: "a-id", value: article.id, required: true, readonly: !state.isNew, maxlength: "120",
    pattern: "[A-Za-z0-9._\\-]+", "aria-describedby": "a-id-hint", autocomplete: "off", spellcheck: "false",
  });
  f.language = select("a-language", LANGS.map((l) => [l, LANGUAGES[l]]), article.language);
  f.group = h("input", {
    type: "text", id: "a-group", value: article.translation_group || "", list: "groups", maxlength: "120",
    "aria-describedby": "a-group-hint", autocomplete: "off", spellcheck: "false",
  });
  ui.groupList = h("datalist", { id: "groups" });
  f.title = h("input", { type: "text", id: "a-title", value: article.title, required: true, maxlength: "300" });
  f.tags = h("input", { type: "text", id: "a-tags", value: article.tags.join(", "), "aria-describedby": "a-tags-hint" });
  f.questions = h("textarea", {
    id: "a-questions", rows: "5", "aria-describedby": "a-questions-hint", spellcheck: "true",
  });
  f.questions.value = article.questions.join("\n");
  f.body = h("textarea", { id: "a-body", rows: "16", required: true, "aria-describedby": "a-body-hint" });
  f.body.value = article.body;
  f.preview = h("div", { class: "preview", id: "a-preview", "aria-label": "Preview", role: "region", tabindex: "0" });
  ui.f = f;
  ui.problems = h("ul", { class: "problems", id: "problems", "aria-label": "Problems" });
  ui.problemsState = h("p", { class: "problems-ok", role: "status", "aria-live": "polite" });
  ui.saveState = h("span", { class: "small muted grow", role: "status" });
  ui.saveDraft = h("button", { type: "button", class: "btn", onclick: () => save("draft") }, "Save as draft");
  ui.publish = h("button", { type: "button", class: "btn success", onclick: () => save("published") }, "Publish");
  ui.del = state.isNew ? null : h("button", { type: "button", class: "btn danger", onclick: remove }, "Delete");
  const status = state.isNew ? h("span", { class: "badge status-draft" }, "New")
    : h("span", { class: `badge status-${article.status}` }, article.status === "published" ? "Published" : "Draft");
  ui.form = h("form", { novalidate: true, "aria-labelledby": "editor-title" },
    h("div", { class: "row" },
      h("h2", { id: "editor-title", class: "grow" }, state.isNew ? "New article" : article.title),
      status,
      !state.isNew && h("span", { class: "small muted" }, `revision ${article.revision} · `,
        timeEl(article.updated_at), ` · ${article.updated_by}`)),
    h("p", { class: "small muted" }, state.isNew ? "Fill in the fields; problems show up below as you type." : ""),
    h("div", { class: "editor-grid" },
      field("a-id", "Article id", f.id, "Letters, digits, - _ . — for example vpn-connect-en. It cannot change later."),
      field("a-language", "Language", f.language),
      field("a-group", "Translation group", f.group, "The same for all translations of one article; defaults to the id."),
      field("a-tags", "Tags", f.tags, "Separated by commas.")),
    ui.groupList,
    field("a-title", "Title", f.title),
    field("a-questions", "Example questions", f.questions, "One per line: how users would ask. They help the bot find this article."),
    h("div", { class: "field" },
      h("label", { for: "a-body" }, "Body (Markdown)"),
      h("span", { class: "hint", id: "a-body-hint" }, "What the bot sends. **bold**, lists, [links](https://…), `code`. The preview shows what users see."),
      h("div", { class: "md-split" }, f.body, f.preview)),
    ui.problemsState,
    ui.problems,
    h("div", { class: "save-bar" }, ui.saveState, ui.del, ui.saveDraft, ui.publish));
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    save("published");
  });
  ui.form.addEventListener("input", (event) => {
    state.dirty = true;
    ui.saveState.textContent = "Unsaved changes";
    if (event.target === f.body) preview();
    validateSoon();
    if (event.target === f.title || event.target === f.questions) trySoonFromTitle();
  });
  f.language.addEventListener("change", () => {
    if (ui.tryLang && !ui.tryQ.value) ui.tryLang.value = f.language.value;
    renderSide();
  });
  clear(ui.editor, ui.form);
  fillGroups();
  preview();
  state.dirty = state.isNew && Boolean(article.questions.length || article.body);
  ui.saveState.textContent = state.dirty ? "Unsaved changes" : "";
  clear(ui.problems);
  ui.problemsState.textContent = "";
  if (state.isNew) validateSoon();
  else validate();
  updateButtons(article);
}

function field(id, label, control, hint) {
  return h("div", { class: "field", dataset: { field: id } },
    h("label", { for: id }, label),
    hint && h("span", { class: "hint", id: `${id}-hint` }, hint),
    control);
}

function updateButtons(article) {
  const published = !state.isNew && article && article.status === "published";
  ui.saveDraft.textContent = published ? "Unpublish (save as draft)" : "Save as draft";
  ui.publish.textContent = published ? "Publish changes" : "Publish";
}

function formId() {
  return ui.f && ui.f.id ? ui.f.id.value.trim() : "";
}

function formData(status) {
  const f = ui.f;
  const id = f.id.value.trim();
  return {
    id,
    language: f.language.value,
    title: f.title.value.trim(),
    body: f.body.value.trim(),
    questions: f.questions.value.split("\n").map((q) => q.trim()).filter(Boolean),
    tags: f.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
    translation_group: f.group.value.trim() || id,
    status,
  };
}

function preview() {
  renderMarkdown(ui.f.preview, ui.f.body.value);
  if (!ui.f.body.value.trim()) clear(ui.f.preview, h("p", { class: "muted" }, "The preview appears here as you type."));
}

// -- validation as you type ---------------------------------------------------------------------
const validateSoon = debounce(() => validate(), 350);
let validation = null;

function localProblems(data) {
  const found = [];
  if (!data.id) found.push(["a-id", "The article needs an id."]);
  else if (!/^[A-Za-z0-9._-]+$/.test(data.id)) found.push(["a-id", "The id may only hold letters, digits, - _ ."]);
  if (!data.title) found.push(["a-title", "The title is empty."]);
  if (!data.body) found.push(["a-body", "The body is empty."]);
  if (state.isNew && state.articles.some((a) => a.id === data.id)) found.push(["a-id", `An article with the id ${data.id} exists already.`]);
  if (!data.questions.length) found.push(["a-questions", "Add at least one example question, so that the bot finds this article."]);
  return found;
}

async function validate() {
  if (!ui.f) return [];
  const data = formData(state.stored ? state.stored.status : "draft");
  const local = localProblems(data);
  let server = [];
  if (data.id && data.title && data.body) {
    if (validation) validation.abort();
    validation = new AbortController();
    try {
      const result = await api("/api/kb/validate", { method: "POST", body: data, signal: validation.signal });
      server = result.problems.map((p) => [fieldFor(p.message), p.message]);
    } catch (err) {
      if (err.name === "AbortError") return null;
      if (err instanceof ApiError && err.status === 422) server = [[null, err.message]];
      else reportError(err);
    }
  }
  const seen = new Set();
  const problems = [...local, ...server].filter(([, m]) => !seen.has(m) && seen.add(m));
  showProblems(problems);
  return problems;
}

function fieldFor(message) {
  if (/\bid\b/.test(message)) return "a-id";
  if (/translation group/.test(message)) return "a-group";
  if (/title/.test(message)) return "a-title";
  if (/body/.test(message)) return "a-body";
  if (/question/.test(message)) return "a-questions";
  if (/language/.test(message)) return "a-language";
  return null;
}

function showProblems(problems) {
  document.querySelectorAll(".field.invalid").forEach((el) => el.classList.remove("invalid"));
  Object.values(ui.f).forEach((el) => el.removeAttribute && el.removeAttribute("aria-invalid"));
  clear(ui.problems, problems.map(([fieldId, message]) => {
    if (fieldId) {
      const fieldEl = ui.form.querySelector(`[data-field="${fieldId}"]`);
      if (fieldEl) fieldEl.classList.add("invalid");
      const control = document.getElementById(fieldId);
      if (control) control.setAttribute("aria-invalid", "true");
    }
    return h("li", {}, fieldId ? h("a", { href: `#${fieldId}`, onclick: (e) => { e.preventDefault(); document.getElementById(fieldId).focus(); } }, message) : message);
  }));
  ui.problemsState.textContent = problems.length
    ? `${problems.length} problem${problems.length > 1 ? "s" : ""} to fix before publishing`
    : "No problems found.";
  ui.problemsState.className = problems.length ? "small muted" : "problems-ok";
}

// -- saving ------------------------------------------------------------------------------------------
async function save(status) {
  const data = formData(status);
  const problems = await validate();
  const blocking = (problems || []).filter(([fieldId]) => fieldId !== "a-questions" || status === "published");
  if (blocking.length) {
    announce(`Not saved: ${blocking[0][1]}`);
    ui.problems.querySelector("a, li")?.focus?.();
    toast(`Fix ${blocking.length} problem${blocking.length > 1 ? "s" : ""} first.`, "error");
    return;
  }
  const { id, ...body } = data;
  ui.publish.disabled = ui.saveDraft.disabled = true;
  try {
    const saved = await api(`/api/kb/articles/${encodeURIComponent(id)}`, { method: "PUT", body });
    state.dirty = false;
    const wasNew = state.isNew;
    state.stored = saved;
    state.isNew = false;
    toast(status === "published" ? `Published “${saved.title}”: the bot answers with it now.` : `Saved “${saved.title}” as a draft.`);
    await loadArticles();
    if (wasNew) {
      lastHash = `#/articles/${encodeURIComponent(saved.id)}`;
      history.replaceState(null, "", lastHash);
    }
    buildForm(saved);
    ui.saveState.textContent = `Saved revision ${saved.revision}`;
    await loadRevisions();
    renderSide();
  } catch (err) {
    if (err instanceof ApiError && err.problems.length) {
      showProblems(err.problems.map((p) => [fieldFor(p.message), p.message]));
      toast("Not saved: see the problems below.", "error");
    } else reportError(err);
  } finally {
    ui.publish.disabled = ui.saveDraft.disabled = false;
  }
}

async function remove() {
  if (!state.stored) return;
  if (!confirm(`Delete “${state.stored.title}” and all its revisions? This cannot be undone.`)) return;
  try {
    await api(`/api/kb/articles/${encodeURIComponent(state.stored.id)}`, { method: "DELETE" });
    toast(`Deleted “${state.stored.title}”.`);
    state.dirty = false;
    state.stored = null;
    await loadArticles();
    go("#/articles");
    showNothing();
  } catch (err) {
    reportError(err);
  }
}

// ================================ the side pane ================================
function buildSidePane() {
  const tabs = [["try", "Try a question"], ["translations", "Translations"], ["history", "History"]];
  ui.sideTabs = h("div", { role: "tablist", "aria-label": "Tools" }, tabs.map(([key, label]) => h("button", {
    type: "button", role: "tab", id: `side-tab-${key}`, "aria-controls": `side-${key}`, dataset: { key },
    "aria-selected": String(key === state.sideTab), tabindex: key === state.sideTab ? "0" : "-1",
    onclick: () => selectSide(key),
  }, label)));
  tabKeys(ui.sideTabs, (tab) => selectSide(tab.dataset.key));
  ui.panels = {};
  for (const [key] of tabs) {
    ui.panels[key] = h("div", { role: "tabpanel", id: `side-${key}`, "aria-labelledby": `side-tab-${key}`, hidden: key !== state.sideTab, tabindex: "0" });
  }
  buildTryPanel();
  return h("section", { class: "side-pane", "aria-label": "Tools" }, ui.sideTabs, Object.values(ui.panels));
}

function selectSide(key) {
  state.sideTab = key;
  ui.sideTabs.querySelectorAll('[role="tab"]').forEach((tab) => {
    const on = tab.dataset.key === key;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
  });
  Object.entries(ui.panels).forEach(([k, panel]) => { panel.hidden = k !== key; });
  renderSide();
}

function renderSide() {
  if (!ui.panels) return;
  if (state.sideTab === "translations") renderTranslations();
  if (state.sideTab === "history") renderHistory();
}

// -- try a question -------------------------------------------------------------------------------
function buildTryPanel() {
  ui.tryQ = h("input", { type: "search", id: "try-q", placeholder: "Type a question as a user would…", autocomplete: "off" });
  ui.tryLang = select("try-lang", LANGS.map((l) => [l, LANGUAGES[l]]), "en");
  ui.tryOut = h("div", { id: "try-result", "aria-live": "polite" });
  const run = debounce(tryQuestion, 300);
  ui.tryQ.addEventListener("input", run);
  ui.tryLang.addEventListener("change", tryQuestion);
  clear(ui.panels.try,
    h("p", { class: "small muted" }, "What the bot would do with this question right now, with the published articles."),
    h("div", { class: "field" }, h("label", { for: "try-q" }, "Question"), ui.tryQ),
    h("div", { class: "field" }, h("label", { for: "try-lang" }, "User's language"), ui.tryLang),
    ui.tryOut);
}

// A new article starts from its first example question, so the editor sees at once what the bot does.
const trySoonFromTitle = debounce(() => {
  if (ui.tryQ.value || !ui.f) return;
  const first = ui.f.questions.value.split("\n").map((q) => q.trim()).find(Boolean);
  if (first) {
    ui.tryQ.value = first;
    ui.tryLang.value = ui.f.language.value;
    tryQuestion();
  }
}, 800);

let tryAbort = null;
async function tryQuestion() {
  const q = ui.tryQ.value.trim();
  if (tryAbort) tryAbort.abort();
  if (!q) {
    clear(ui.tryOut);
    return;
  }
  tryAbort = new AbortController();
  const params = new URLSearchParams({ q, lang: ui.tryLang.value, top_k: "5" });
  try {
    const result = await api(`/api/kb/search?${params}`, { signal: tryAbort.signal });
    const current = ui.f ? ui.f.id.value.trim() : "";
    const label = { answer: "Answers", clarify: "Asks which one", none: "Finds nothing" }[result.decision];
    clear(ui.tryOut,
      h("div", { class: "decision-line" },
        h("span", { class: `badge decision-${result.decision}`, id: "try-decision", dataset: { decision: result.decision } }, label),
        h("span", {}, `confidence ${percent(result.confidence)}`),
        h("span", { class: "muted small" }, `${Math.round(result.took_ms)} ms`),
        result.cross_language && h("span", { class: "badge lang", title: "No article in this language matched well; these are from other languages" }, "other language")),
      h("p", { class: "small muted" }, result.decision === "answer"
        ? "The bot sends the first article and asks whether it helped."
        : result.decision === "clarify" ? "The bot offers these articles as buttons." : "The bot offers to hand over to a person."),
      result.results.length
        ? h("ol", { class: "ranking", "aria-label": "Ranking" }, result.results.map((r) => h("li", {
          class: r.article_id === current ? "self" : "", dataset: { article: r.article_id },
        },
        h("a", { href: `#/articles/${encodeURIComponent(r.article_id)}` }, r.title),
        r.article_id === current && h("span", { class: "badge status-published" }, "this article"),
        h("div", { class: "nums mono" }, `${r.article_id} · score ${r.score.toFixed(3)} · meaning ${r.dense.toFixed(2)} · words ${r.lexical.toFixed(2)}`))))
        : h("p", { class: "muted" }, "No published article matched."));
  } catch (err) {
    if (err.name !== "AbortError") reportError(err);
  }
}

// -- translations side by side --------------------------------------------------------------------
function renderTranslations() {
  const panel = ui.panels.translations;
  if (!ui.f) {
    clear(panel, h("p", { class: "muted" }, "Open an article to see its translations."));
    return;
  }
  const data = formData("draft");
  const group = data.translation_group;
  const siblings = state.articles.filter((a) => a.translation_group === group && a.id !== data.id);
  const cards = LANGS.filter((l) => l !== data.language).map((lang) => {
    const other = siblings.find((a) => a.language === lang);
    if (!other) {
      return h("div", { class: "translation-card" },
        h("h3", {}, LANGUAGES[lang], " ", h("span", { class: "badge missing" }, "missing")),
        h("p", { class: "small muted" }, "No translation yet."),
        h("button", {
          type: "button", class: "btn small",
          onclick: () => {
            state.prefill = { language: lang, translation_group: group, tags: data.tags };
            go("#/new");
          },
        }, `Write the ${LANGUAGES[lang]} translation`));
    }
    const body = h("div", { class: "preview", lang });
    renderMarkdown(body, other.body);
    return h("div", { class: "translation-card", lang },
      h("h3", {}, other.title),
      h("p", { class: "small" },
        h("span", { class: "badge lang" }, lang), " ",
        h("span", { class: `badge status-${other.status}` }, other.status), " ",
        h("a", { href: `#/articles/${encodeURIComponent(other.id)}`, lang: "en" }, `Edit ${LANGUAGES[lang]}`)),
      other.questions.length > 0 && h("details", {}, h("summary", { lang: "en" }, `${other.questions.length} example questions`),
        h("ul", { class: "small" }, other.questions.map((q) => h("li", {}, q)))),
      body);
  });
  clear(panel, h("p", { class: "small muted" }, `Translation group `, h("span", { class: "mono" }, group || "—"),
    ". Compare the wording while you edit."), cards);
}

// -- history, diff and restore ----------------------------------------------------------------------
async function loadRevisions() {
  state.revisions = state.stored ? await api(`/api/kb/articles/${encodeURIComponent(state.stored.id)}/revisions`) : [];
}

function renderHistory() {
  const panel = ui.panels.history;
  if (!state.stored || !state.revisions.length) {
    clear(panel, h("p", { class: "muted" }, state.isNew ? "A new article has no history yet." : "Open an article to see its history."));
    return;
  }
  const revs = state.revisions;
  const options = revs.map((r) => [String(r.revision), `r${r.revision} · ${r.status} · ${new Date(r.created_at).toLocaleString()}`]);
  const from = select("diff-from", options, String(revs[1] ? revs[1].revision : revs[0].revision));
  const to = select("diff-to", options, String(revs[0].revision));
  const out = h("div", { class: "diff", id: "diff", "aria-live": "polite", tabindex: "0", "aria-label": "Differences" });
  const showDiff = () => renderDiff(out, revs.find((r) => String(r.revision) === from.value), revs.find((r) => String(r.revision) === to.value));
  from.addEventListener("change", showDiff);
  to.addEventListener("change", showDiff);
  clear(panel,
    h("ol", { class: "revisions", "aria-label": "Revisions, newest first" }, revs.map((r, i) => h("li", { dataset: { revision: String(r.revision) } },
      h("strong", {}, `r${r.revision}`),
      h("span", { class: "small" }, h("span", { class: `badge status-${r.status}` }, r.status), " ", r.author, " · ", timeEl(r.created_at)),
      i === 0 ? h("span", { class: "small muted" }, "current")
        : h("span", { class: "row" },
          h("button", {
            type: "button", class: "btn small link", "aria-label": `Compare revision ${r.revision} with the current one`,
            onclick: () => { from.value = String(r.revision); to.value = String(revs[0].revision); showDiff(); out.focus(); },
          }, "Compare"),
          h("button", {
            type: "button", class: "btn small", "aria-label": `Restore revision ${r.revision}`,
            onclick: () => restore(r),
          }, "Restore"))))),
    h("h3", { class: "small" }, "Compare"),
    h("div", { class: "row small" },
      h("label", { for: "diff-from" }, "From"), from,
      h("label", { for: "diff-to" }, "to"), to),
    out);
  showDiff();
}

function renderDiff(out, older, newer) {
  if (!older || !newer) return;
  if (!window.Diff) {
    clear(out, "The diff library is not loaded.");
    return;
  }
  const parts = [
    ["Title", older.title, newer.title, "diffWords"],
    ["Status", older.status, newer.status, "diffWords"],
    ["Tags", older.tags.join(", "), newer.tags.join(", "), "diffWords"],
    ["Example questions", older.questions.join("\n"), newer.questions.join("\n"), "diffLines"],
    ["Body", older.body, newer.body, "diffWordsWithSpace"],
  ];
  const sections = parts.filter(([, a, b]) => a !== b).map(([label, a, b, how]) => [
    h("h4", {}, label),
    h("div", {}, window.Diff[how](a, b).map((piece) => piece.added ? h("ins", {}, piece.value)
      : piece.removed ? h("del", {}, piece.value) : piece.value)),
  ]);
  clear(out, sections.length ? sections : h("p", { class: "muted" }, older.revision === newer.revision
    ? "Pick two different revisions." : "These revisions are the same."));
}

async function restore(revision) {
  if (state.dirty && !confirm("Restoring discards your unsaved changes. Go on?")) return;
  try {
    const saved = await api(`/api/kb/articles/${encodeURIComponent(state.stored.id)}/revisions/${revision.revision}/restore`, { method: "POST" });
    state.dirty = false;
    state.stored = saved;
    toast(`Restored revision ${revision.revision} as revision ${saved.revision}.`);
    await loadArticles();
    buildForm(saved);
    ui.saveState.textContent = `Restored revision ${revision.revision}`;
    await loadRevisions();
    renderSide();
  } catch (err) {
    reportError(err);
  }
}

// ================================ content gaps ================================
async function showGaps() {
  state.view = "gaps";
  document.title = "Content gaps — firstline";
  const days = select("gap-days", [["7", "7 days"], ["30", "30 days"], ["90", "90 days"]], String(state.gapDays || 30));
  const list = h("ul", { class: "gap-list", "aria-label": "Content gaps" }, h("li", { class: "empty" }, "Loading…"));
  const summary = h("p", { class: "small muted", role: "status" });
  days.addEventListener("change", () => { state.gapDays = Number(days.value); showGaps(); });
  clear($("#main"), h("div", { class: "page-pane" },
    h("header", {}, h("h1", {}, "Content gaps"), h("span", { class: "spacer grow" }),
      h("label", { for: "gap-days" }, "Period"), days),
    h("p", { class: "muted" }, "Questions the bot could not resolve — no answer, “didn't help” or handed to a person — grouped by meaning. Write an article for the biggest ones."),
    summary, list));
  $("#main").className = "app";
  const gaps = await api(`/api/kb/gaps?days=${days.value}&limit=50`);
  summary.textContent = gaps.length ? `${gaps.length} groups, ${gaps.reduce((n, g) => n + g.count, 0)} questions` : "";
  clear(list, gaps.length ? gaps.map(gapCard) : h("li", { class: "empty" }, "No unresolved questions in this period. 🎉"));
}

function gapCard(gap, index) {
  const titleId = `gap-${index}`;
  return h("li", { class: "gap", "aria-labelledby": titleId },
    h("div", { class: "count", "aria-label": `${gap.count} times` }, String(gap.count), h("small", { "aria-hidden": "true" }, "times")),
    h("div", {},
      h("h2", { id: titleId, lang: gap.language, class: "gap-title" }, gap.title),
      h("div", { class: "row small" },
        h("span", { class: "badge lang" }, gap.language),
        Object.entries(gap.reasons).map(([reason, n]) => h("span", { class: "badge present" }, `${REASONS[reason] || reason} ×${n}`)),
        gap.last_seen && h("span", { class: "muted" }, "last ", timeEl(gap.last_seen))),
      h("ul", { lang: gap.language, "aria-label": "How users asked" }, gap.examples.map((e) => h("li", {}, e)))),
    h("button", {
      type: "button", class: "btn primary small",
      "aria-label": `Write an article for “${gap.title}”`,
      onclick: () => {
        state.prefill = { language: gap.language, questions: gap.examples.slice(), status: "draft" };
        go("#/new");
      },
    }, "Write an article"));
}

// ================================ dashboard ================================
async function showDashboard() {
  state.view = "dashboard";
  document.title = "Dashboard — firstline";
  const days = select("dash-days", [["7", "7 days"], ["30", "30 days"], ["90", "90 days"]], String(state.dashDays || 30));
  days.addEventListener("change", () => { state.dashDays = Number(days.value); showDashboard(); });
  const body = h("div", {}, h("p", { class: "empty" }, "Loading…"));
  clear($("#main"), h("div", { class: "page-pane" },
    h("header", {}, h("h1", {}, "Dashboard"), h("span", { class: "grow" }), h("label", { for: "dash-days" }, "Period"), days),
    body));
  $("#main").className = "app";
  const n = days.value;
  const [board, metrics, gaps] = await Promise.all([
    api(`/api/kb/dashboard?days=${n}`),
    api(`/api/metrics?days=${n}`),
    api(`/api/kb/gaps?days=${n}&limit=8`),
  ]);
  const t = board.totals;
  const csat = metrics.csat;
  const frt = metrics.first_response_seconds;
  const perDay = board.per_day;
  const short = (d) => d.slice(5);
  const kpi = (label, value, sub) => h("div", { class: "kpi" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), sub && h("div", { class: "sub" }, sub));
  const mins = (s) => (s == null ? "—" : s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`);
  clear(body,
    h("div", { class: "kpis", role: "list", "aria-label": "Key figures" }, [
      kpi("Conversations", String(t.conversations), `in the last ${n} days`),
      kpi("Resolved by the bot", percent(t.bot_resolution_rate), `${t.resolved_by_bot} without a person`),
      kpi("Handoffs", String(t.handoffs), `${metrics.queued} waiting now, ${metrics.assigned} with agents`),
      kpi("CSAT", csat.average == null ? "—" : `${csat.average.toFixed(2)} / 5`, `${csat.count} ratings`),
      kpi("First response", mins(frt.p50), `median; 90% within ${mins(frt.p90)}`),
      kpi("SLA breaches", String(metrics.sla_breaches), `${metrics.sla_breaches_waiting_now} still waiting`),
    ].map((el) => { el.setAttribute("role", "listitem"); return el; })),
    h("div", { class: "charts" },
      chartBox("Conversations per day", barChart(perDay.map((d) => ({
        label: short(d.date), values: [d.resolved_by_bot, Math.max(0, d.conversations - d.resolved_by_bot)],
      })), { series: ["resolved by the bot", "went to a person"] }), ["resolved by the bot", "went to a person"],
      ["Day", "Conversations", "Resolved by the bot"], perDay.map((d) => [d.date, d.conversations, d.resolved_by_bot])),
      chartBox("Share resolved by the bot", lineChart(perDay.map((d) => ({
        label: short(d.date), value: d.conversations ? d.resolved_by_bot / d.conversations : null,
      })), { min: 0, max: 1, format: percent, name: "share resolved by the bot" }), null,
      ["Day", "Resolved by the bot"], perDay.map((d) => [d.date, d.conversations ? percent(d.resolved_by_bot / d.conversations) : "—"])),
      chartBox("Handoffs per day", barChart(perDay.map((d) => ({ label: short(d.date), values: [d.handoffs] })), {
        series: ["handoffs"], colors: [2],
      }), null, ["Day", "Handoffs"], perDay.map((d) => [d.date, d.handoffs])),
      chartBox("CSAT per day (1–5)", lineChart(perDay.map((d) => ({ label: short(d.date), value: d.csat })), {
        min: 1, max: 5, format: (v) => v.toFixed(1), name: "average rating", color: 3,
      }), null, ["Day", "Average rating"], perDay.map((d) => [d.date, d.csat == null ? "—" : d.csat]),
      hbars(["5", "4", "3", "2", "1"].map((s) => ({ name: `${s} ★`, value: csat.distribution[s] || 0 })), { label: "Ratings" })),
      chartBox("Top articles", board.top_articles.length
        ? hbars(board.top_articles.map((a) => ({
          name: a.title, value: a.answers, note: `${a.helped} helped, ${a.not_helped} didn't`, href: `#/articles/${encodeURIComponent(a.article_id)}`,
        })), { label: "Answers" })
        : h("p", { class: "muted" }, "No answers yet."), null,
      ["Article", "Answers", "Helped", "Didn't help"], board.top_articles.map((a) => [a.title, a.answers, a.helped, a.not_helped])),
      chartBox("Top gaps", gaps.length
        ? hbars(gaps.map((g) => ({ name: g.title, value: g.count, note: g.language.toUpperCase(), href: "#/gaps" })), { label: "Questions", color: 4 })
        : h("p", { class: "muted" }, "No unresolved questions."), null,
      ["Question", "Language", "Times"], gaps.map((g) => [g.title, g.language, g.count])),
      chartBox("Per language", perLanguage(board.per_language), ["conversations", "resolved by the bot", "handoffs"],
        ["Language", "Conversations", "Resolved by the bot", "Handoffs"],
        Object.entries(board.per_language).map(([l, c]) => [LANGUAGES[l] || l, c.conversations || 0, c.resolved_by_bot || 0, c.handoffs || 0]))));
}

function perLanguage(per) {
  const entries = Object.entries(per);
  if (!entries.length) return h("p", { class: "muted" }, "No conversations yet.");
  return barChart(entries.map(([lang, c]) => ({
    label: LANGUAGES[lang] || lang, values: [c.conversations || 0, c.resolved_by_bot || 0, c.handoffs || 0],
  })), { series: ["conversations", "resolved by the bot", "handoffs"], grouped: true, colors: [1, 3, 2] });
}

function chartBox(title, chart, legend, head, rows, extra) {
  const colors = { "resolved by the bot": "s1", "went to a person": "s2", conversations: "s1", handoffs: "s2" };
  const legendColors = legend && legend.length === 3 ? ["s1", "s3", "s2"] : null;
  return h("figure", { class: "chart" },
    h("h2", { class: "chart-title" }, title),
    legend && h("div", { class: "legend", "aria-hidden": "true" }, legend.map((l, i) => h("span", { class: legendColors ? legendColors[i] : colors[l] || "s1" }, l))),
    chart,
    extra,
    h("details", {}, h("summary", {}, "Show the numbers"),
      h("table", {}, h("thead", {}, h("tr", {}, head.map((c, i) => h("th", { class: i ? "num" : "", scope: "col" }, c)))),
        h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h(i ? "td" : "th", { class: i ? "num" : "", scope: i ? null : "row" }, String(c)))))))));
}

start().catch((err) => {
  reportError(err);
  const box = $("#login");
  box.hidden = false;
  clear(box, h("div", { class: "login" }, h("h1", {}, "Knowledge base"),
    h("div", { class: "alert error", role: "alert" }, `The console could not start: ${err.message}`)));
});
