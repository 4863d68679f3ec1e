// The cltv web page: the quick calculator (GET /v1/calculator, inputs kept in the URL) and the
// "From data" panel (preview, upload, fit, CLTV per segment). No framework, no build step; the
// chart library (uPlot) is the global `uPlot` from /static/vendor. All strings are in i18n.js.

import { API_MESSAGES, LANGUAGES, LOCALES, STRINGS } from "./i18n.js";

const DEBOUNCE_MS = 250;
const JOB_POLL_MS = 400;
const KEY_STORAGE = "cltv.apiKey";
const PREVIEW_ROWS = 10;
const CHART_HEIGHT = 260;
const CHART_MIN_SURVIVAL = 0.005; // an unlimited horizon is drawn until survival falls below this
const CHART_MIN_PERIODS = 12;

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const state = {
  lang: "en",
  calc: { seq: 0, timer: null, controller: null, result: null, problem: null, chart: null },
  data: { file: null, preview: null, dataset: null, fitId: null, report: null, sort: null },
};

/** An error already shown to the user (next to a field or in the status line). */
class Shown extends Error {}

// ------------------------------------------------------------------------------------ i18n

function t(key, params = {}) {
  const text = STRINGS[state.lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/** The unit word for `n` (plural form by Intl.PluralRules; `digits`: fraction digits shown). */
function unitWord(unit, n, digits = 0) {
  const forms = STRINGS[state.lang][`unit.${unit}`] ?? STRINGS.en[`unit.${unit}`];
  const rules = new Intl.PluralRules(LOCALES[state.lang], { minimumFractionDigits: digits });
  return forms[rules.select(n)] ?? forms.other;
}

function applyStaticStrings() {
  document.documentElement.lang = state.lang;
  document.title = t("pageTitle");
  for (const el of $$("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of $$("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of $$("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  for (const button of $$("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
  }
}

/** The API's field message in the interface language (as written by the API if unknown). */
function localMessage(apiMessage, isPercent) {
  for (const entry of API_MESSAGES) {
    if (entry.percent && !isPercent) continue;
    const match = apiMessage.match(entry.match);
    if (match) return entry[state.lang].replace(/\{(\d)\}/g, (_, i) => match[Number(i)] ?? "");
  }
  return apiMessage;
}

// ---------------------------------------------------------------------------- numbers

function numberFormat(minDigits, maxDigits) {
  return new Intl.NumberFormat(LOCALES[state.lang], {
    minimumFractionDigits: minDigits,
    maximumFractionDigits: maxDigits,
  });
}

const fmt = {
  money: (x) => numberFormat(2, 2).format(x),
  ratio: (x) => numberFormat(2, 2).format(x),
  periods: (x) => numberFormat(1, 1).format(x),
  int: (x) => numberFormat(0, 0).format(x),
  /** A share (0.25) as a percentage number (25), without the % sign. */
  percent: (share, maxDigits = 2) => numberFormat(0, maxDigits).format(share * 100),
  compact: (x) =>
    new Intl.NumberFormat(LOCALES[state.lang], { notation: "compact", maximumFractionDigits: 1 })
      .format(x),
};

/** A number typed in the interface language: ru takes a decimal comma (or point) and spaces
 * between thousands, en commas between thousands. Null when it is not a number. */
function parseNumber(text) {
  let s = text.trim().replace(/[\s\u00a0\u202f]/g, "").replace(/^\u2212/, "-");
  s = state.lang === "ru" ? s.replace(",", ".") : s.replace(/,/g, "");
  if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s)) return null;
  const x = Number(s);
  return Number.isFinite(x) ? x : null;
}

/** Rounded to 12 significant digits: 33.3 / 100 is 0.333, not 0.33299999999999996. */
const tidy = (x) => Number(x.toPrecision(12));

/** A number as typed into an input in the interface language (no grouping). */
function inputText(x) {
  const text = String(tidy(x));
  return state.lang === "ru" ? text.replace(".", ",") : text;
}

// ------------------------------------------------------------------------ field errors

function errorElement(input) {
  return document.getElementById(`${input.id}-err`);
}

function showFieldError(input, message) {
  const error = errorElement(input);
  error.textContent = message;
  error.hidden = false;
  input.setAttribute("aria-invalid", "true");
  const described = (input.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean);
  if (!described.includes(error.id)) described.push(error.id);
  input.setAttribute("aria-describedby", described.join(" "));
}

function clearFieldError(input) {
  const error = errorElement(input);
  if (!error) return;
  error.textContent = "";
  error.hidden = true;
  input.removeAttribute("aria-invalid");
  const described = (input.getAttribute("aria-describedby") ?? "")
    .split(" ")
    .filter((id) => id && id !== error.id);
  if (described.length) input.setAttribute("aria-describedby", described.join(" "));
  else input.removeAttribute("aria-describedby");
}

/** The name a problem's field path ends with: `query.retention_rate` -> `retention_rate`. */
const fieldName = (path) => String(path).split(".").pop();

// ------------------------------------------------------------------------ calculator

const calcForm = () => $("#calc-form");
const rateInput = () => $("#in-rate");

function calcInputs() {
  return [...calcForm().elements].filter((el) => el.name && el.type !== "radio");
}

/** The calculator's query parameters from the form, in API units (shares, not percent). A value
 * that is not a number is sent as typed, so that the API's validation message is shown. */
function calcParams() {
  const params = new URLSearchParams();
  for (const el of calcInputs()) {
    const raw = el.value.trim();
    if (raw === "") continue;
    if (el.tagName === "SELECT" || el.name === "currency") {
      params.set(el.name, raw);
      continue;
    }
    const x = parseNumber(raw);
    if (x === null) params.set(el.name, raw);
    else params.set(el.name, String(tidy(el.dataset.scale === "percent" ? x / 100 : x)));
  }
  return params;
}

function setRateKind(kind, convert) {
  const input = rateInput();
  if (input.name === kind) return;
  for (const radio of $$('input[name="rate_kind"]')) radio.checked = radio.value === kind;
  const x = parseNumber(input.value);
  input.name = kind;
  if (convert && x !== null) input.value = inputText(100 - x);
  const churn = kind === "churn_rate";
  $("#in-rate-name").dataset.i18n = churn ? "f.churn" : "f.retention";
  $("#in-rate-hint").dataset.i18n = churn ? "h.churn" : "h.retention";
  $("#in-rate-name").textContent = t($("#in-rate-name").dataset.i18n);
  $("#in-rate-hint").textContent = t($("#in-rate-hint").dataset.i18n);
  clearFieldError(input);
}

/** Fill the form from query parameters (API units); text inputs absent from them are emptied,
 * so that the page shows exactly what the link computes. */
function fillCalcForm(params) {
  const churnOnly = params.has("churn_rate") && !params.has("retention_rate");
  setRateKind(churnOnly ? "churn_rate" : "retention_rate", false);
  for (const el of calcInputs()) {
    const value = params.get(el.name);
    if (el.tagName === "SELECT") {
      if (value !== null && [...el.options].some((o) => o.value === value)) el.value = value;
      continue;
    }
    if (value === null) el.value = "";
    else if (el.name === "currency") el.value = value;
    else {
      const x = value.trim() === "" ? NaN : Number(value);
      el.value = Number.isFinite(x)
        ? inputText(el.dataset.scale === "percent" ? x * 100 : x)
        : value;
    }
  }
}

const CALC_PARAM_NAMES = new Set([
  "average_order_value", "purchases_per_period", "gross_margin", "retention_rate", "churn_rate",
  "annual_discount_rate", "horizon_periods", "acquisition_cost", "period", "timing", "currency",
]);

/** The page's URL: `lang` and the calculator's inputs, so that a link reproduces the result. */
function syncUrl(params) {
  const query = new URLSearchParams({ lang: state.lang });
  for (const [name, value] of params) query.set(name, value);
  history.replaceState(null, "", `${location.pathname}?${query}${location.hash}`);
}

function scheduleCalc() {
  clearTimeout(state.calc.timer);
  state.calc.timer = setTimeout(runCalc, DEBOUNCE_MS);
}

async function runCalc() {
  clearTimeout(state.calc.timer);
  const params = calcParams();
  syncUrl(params);
  const seq = ++state.calc.seq;
  state.calc.controller?.abort();
  const controller = new AbortController();
  state.calc.controller = controller;
  $(".calc-results").setAttribute("aria-busy", "true");
  let response;
  let body;
  try {
    response = await fetch(`/v1/calculator?${params}`, {
      headers: { Accept: "application/json" },
      signal: controller.signal,
    });
    body = await response.json();
  } catch (error) {
    if (error.name === "AbortError") return;
    if (seq === state.calc.seq) showCalcFailure(String(error));
    return;
  }
  if (seq !== state.calc.seq) return;
  $(".calc-results").removeAttribute("aria-busy");
  if (response.ok) {
    state.calc.result = body;
    state.calc.problem = null;
  } else {
    state.calc.result = null;
    state.calc.problem = body;
  }
  renderCalc();
}

function showCalcFailure(detail) {
  $(".calc-results").removeAttribute("aria-busy");
  $("#calc-status").textContent = t("calc.failed", { detail });
}

function setCurrency(root, currency) {
  for (const el of $$('[data-unit="currency"]', root)) el.textContent = currency;
}

function setText(selector, text) {
  $(selector).textContent = text;
}

function renderCalc() {
  for (const el of calcInputs()) clearFieldError(el);
  const section = $("#calc-form").closest("section");
  setCurrency(section, $("#in-currency").value.trim() || "RUB");
  const periodInput = $("#in-period").value;
  setText('[data-unit="periods"]', `, ${unitWord(periodInput, 5)}`);
  if (state.calc.problem) {
    renderCalcProblem(state.calc.problem);
    return;
  }
  const result = state.calc.result;
  if (!result) return;
  $("#calc-status").textContent = "";
  $("#results").classList.remove("is-stale");
  $("#r-details").hidden = false;
  renderResults(result);
  renderConventions(result.conventions);
  drawCalcChart(result);
}

function renderCalcProblem(problem) {
  const byName = new Map(calcInputs().map((el) => [el.name, el]));
  const unplaced = [];
  for (const error of problem.errors ?? []) {
    const input = byName.get(fieldName(error.field));
    if (input) showFieldError(input, localMessage(error.message, input.dataset.scale === "percent"));
    else unplaced.push(`${fieldName(error.field)}: ${error.message}`);
  }
  const detail = unplaced.length ? ` ${unplaced.join("; ")}` : "";
  $("#calc-status").textContent = problem.errors
    ? t("calc.invalid") + detail
    : t("calc.failed", { detail: problem.detail ?? problem.title ?? "" });
  $("#results").classList.add("is-stale");
  for (const el of $$("#results .num")) el.textContent = "–";
  $("#r-details").hidden = true;
  $("#calc-chart").closest("figure").hidden = true;
}

function renderResults(r) {
  const c = r.conventions;
  const period = c.period;
  setCurrency($("#results"), c.currency);
  setText("#r-clv", fmt.money(r.clv));
  setText("#r-clv-note", t(`r.clvNote.${c.value_basis}`));
  if (r.ltv_to_cac === null) {
    setText("#r-ltv-cac", "–");
    setText("#r-ltv-cac-note", t("r.noCac"));
  } else {
    setText("#r-ltv-cac", fmt.ratio(r.ltv_to_cac));
    setText("#r-ltv-cac-note", t("r.ltvCacNote"));
  }
  renderPayback(r, period);
  if (r.expected_lifetime_periods === null) {
    setText("#r-lifetime", t("r.infinite"));
    setText("#r-lifetime-unit", "");
  } else {
    setText("#r-lifetime", fmt.periods(r.expected_lifetime_periods));
    setText("#r-lifetime-unit", unitWord(period, r.expected_lifetime_periods, 1));
  }
  setText("#r-margin", fmt.money(r.margin_per_period));
  setText("#r-discount", fmt.percent(r.discount_rate_per_period, 3));
}

function renderPayback(r, period) {
  const simple = r.simple_payback_periods;
  const simpleText = simple === null ? "–" : fmt.periods(simple);
  const simpleUnit = unitWord(period, simple ?? 0, 1);
  if (r.cac_payback_periods === null) {
    const n = r.conventions.horizon_periods ?? r.curve.period.length;
    setText("#r-payback", t("r.notPaidBack"));
    setText("#r-payback-unit", "");
    setText(
      "#r-payback-note",
      r.clv < r.inputs.acquisition_cost
        ? t("r.neverPaidBack")
        : t("r.notPaidBackNote", { n: fmt.int(n), periods: unitWord(period, n) }),
    );
    return;
  }
  setText("#r-payback", fmt.int(r.cac_payback_periods));
  setText("#r-payback-unit", unitWord(period, r.cac_payback_periods));
  setText(
    "#r-payback-note",
    t("r.paybackNote", { period: t(`period.${period}`), simple: simpleText, periods: simpleUnit }),
  );
}

function renderConventions(c) {
  const period = t(`period.${c.period}`);
  const items = [
    t(c.value_basis === "revenue" ? "conv.revenue" : "conv.margin"),
    t(c.timing === "end" ? "conv.end" : "conv.start", { period }),
    c.horizon_periods === null
      ? t("conv.unlimited")
      : t("conv.horizon", { n: fmt.int(c.horizon_periods), periods: unitWord(c.period, c.horizon_periods) }),
    t("conv.discount", {
      annual: fmt.percent(c.annual_discount_rate, 2),
      per: fmt.percent(c.discount_rate_per_period, 3),
      period,
    }),
    t("conv.currency", { currency: c.currency }),
  ];
  const list = $("#r-conventions");
  list.replaceChildren(
    ...items.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
  setText("#r-formula", c.formula);
  setText("#r-source", t("r.source", { source: c.source }));
}

/** How many curve points to draw: an unlimited horizon until nearly nobody is left. */
function chartLength(curve) {
  if (!curve.truncated) return curve.period.length;
  const faded = curve.survival.findIndex((s) => s < CHART_MIN_SURVIVAL);
  return faded < 0 ? curve.period.length : Math.max(CHART_MIN_PERIODS, faded + 1);
}

function drawCalcChart(result) {
  const figure = $("#calc-chart").closest("figure");
  figure.hidden = false;
  const { curve, conventions: c } = result;
  const n = Math.min(chartLength(curve), curve.period.length);
  const data = [
    curve.period.slice(0, n),
    curve.cumulative_value.slice(0, n),
    curve.survival.slice(0, n).map((s) => s * 100),
  ];
  const last = n - 1;
  let caption = t("chart.caption", {
    n: fmt.int(curve.period[last]),
    periods: unitWord(c.period, curve.period[last]),
    survival: fmt.percent(curve.survival[last], 1),
    value: fmt.money(curve.cumulative_value[last]),
    currency: c.currency,
  });
  if (n < (c.horizon_periods ?? Infinity)) {
    caption += ` ${t("chart.truncated", { n: fmt.int(n), periods: unitWord(c.period, n) })}`;
  }
  setText("#calc-chart-caption", caption);
  if (typeof window.uPlot !== "function") return;
  state.calc.chart?.destroy();
  const container = $("#calc-chart");
  container.replaceChildren();
  state.calc.chart = new window.uPlot(chartOptions(container, c), data, container);
}

function chartOptions(container, c) {
  const axisColor = "#1f2933";
  return {
    width: Math.max(200, container.clientWidth),
    height: CHART_HEIGHT,
    scales: { x: { time: false }, value: {}, survival: { range: [0, 100] } },
    axes: [
      {
        stroke: axisColor,
        label: t("chart.period", { period: t(`period.${c.period}`) }),
        values: (u, ticks) => ticks.map((v) => fmt.int(v)),
      },
      {
        scale: "value",
        stroke: axisColor,
        label: c.currency,
        size: 60,
        values: (u, ticks) => ticks.map((v) => fmt.compact(v)),
      },
      {
        scale: "survival",
        side: 1,
        stroke: axisColor,
        label: "%",
        size: 50,
        grid: { show: false },
        values: (u, ticks) => ticks.map((v) => fmt.int(v)),
      },
    ],
    series: [
      { label: t("chart.period", { period: t(`period.${c.period}`) }), value: (u, v) => (v == null ? "–" : fmt.int(v)) },
      {
        label: t("chart.value"),
        scale: "value",
        stroke: "#1d4f91",
        width: 2,
        value: (u, v) => (v == null ? "–" : `${fmt.money(v)} ${c.currency}`),
      },
      {
        label: t("chart.survival"),
        scale: "survival",
        stroke: "#a23b12",
        width: 2,
        dash: [6, 4],
        value: (u, v) => (v == null ? "–" : fmt.percent(v / 100, 1)),
      },
    ],
  };
}

function resizeChart() {
  const chart = state.calc.chart;
  const container = $("#calc-chart");
  if (chart && container.clientWidth > 0) {
    chart.setSize({ width: Math.max(200, container.clientWidth), height: CHART_HEIGHT });
  }
}

function initCalculator(initial) {
  const form = calcForm();
  if ([...initial.keys()].some((name) => CALC_PARAM_NAMES.has(name))) fillCalcForm(initial);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    runCalc();
  });
  form.addEventListener("input", (event) => {
    if (event.target.name === "rate_kind") return;
    if (event.target.name === "currency") setCurrency(form.closest("section"), event.target.value || "RUB");
    scheduleCalc();
  });
  form.addEventListener("change", (event) => {
    if (event.target.name === "rate_kind") setRateKind(event.target.value, true);
    if (event.target.type === "radio" || event.target.tagName === "SELECT") runCalc();
  });
  new ResizeObserver(resizeChart).observe($("#calc-chart"));
  runCalc();
}

// ------------------------------------------------------------------------ from data

function apiKey() {
  return $("#api-key").value.trim();
}

/** fetch with the API key; a missing or refused key is shown next to the key field. */
async function apiFetch(url, options = {}) {
  const keyInput = $("#api-key");
  const key = apiKey();
  if (!key) {
    showFieldError(keyInput, t("d.keyMissing"));
    keyInput.focus();
    throw new Shown("no key");
  }
  clearFieldError(keyInput);
  const headers = new Headers(options.headers ?? {});
  headers.set("Authorization", `Bearer ${key}`);
  const response = await fetch(url, { ...options, headers });
  if (response.status === 401 || response.status === 403) {
    const problem = await response.json();
    showFieldError(keyInput, t("d.badKey", { detail: problem.detail ?? problem.title }));
    throw new Shown("key refused");
  }
  return response;
}

function setDataStatus(text) {
  $("#data-status").textContent = text;
}

function clearDataErrors() {
  const box = $("#data-errors");
  box.replaceChildren();
  box.hidden = true;
  for (const input of $$("#mapping-form select, #mapping-form input, #fit-form input, #data-file")) {
    clearFieldError(input);
  }
}

/** Problem details from the API: field errors next to their inputs (`inputs` by field name),
 * the rest (row-level errors of an upload) listed under the panel. */
function showDataProblem(problem, inputs = {}) {
  const listed = [];
  for (const error of problem.errors ?? []) {
    const input = inputs[fieldName(error.field)];
    if (input && error.row == null) {
      showFieldError(input, localMessage(error.message, input.dataset.scale === "percent"));
    } else {
      listed.push(error);
    }
  }
  const box = $("#data-errors");
  const detail = document.createElement("p");
  detail.textContent = problem.detail ?? problem.title ?? "";
  const list = document.createElement("ul");
  for (const error of listed) {
    const item = document.createElement("li");
    const where = [error.row == null ? null : t("d.rowError", { row: fmt.int(error.row) }), error.field]
      .filter(Boolean)
      .join(", ");
    item.textContent = `${where}: ${error.message}${error.value == null ? "" : ` (${error.value})`}`;
    list.append(item);
  }
  box.replaceChildren(detail, ...(listed.length ? [list] : []));
  box.hidden = false;
  setDataStatus("");
}

async function readProblem(response) {
  try {
    return await response.json();
  } catch {
    return { status: response.status, detail: `${response.status} ${response.statusText}` };
  }
}

/** Runs an action of the panel; unexpected failures end up in the error box. */
async function guarded(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof Shown) return;
    showDataProblem({ detail: t("d.failed", { detail: String(error) }) });
  }
}

function option(value, label) {
  const el = document.createElement("option");
  el.value = value;
  el.textContent = label;
  return el;
}

function checkbox(name, value, label, checked) {
  const wrapper = document.createElement("label");
  const input = document.createElement("input");
  input.type = "checkbox";
  input.name = name;
  input.value = value;
  input.checked = checked;
  wrapper.append(input, ` ${label}`);
  return wrapper;
}

function cell(tag, text, className) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className) el.className = className;
  return el;
}

async function previewFile(file) {
  clearDataErrors();
  for (const id of ["#preview", "#dataset", "#segments", "#progress-box"]) $(id).hidden = true;
  state.data = { ...state.data, file, preview: null, dataset: null, fitId: null, report: null };
  if (!file) return;
  setDataStatus(t("d.previewing"));
  const form = new FormData();
  form.append("file", file);
  const response = await apiFetch("/v1/datasets/preview", { method: "POST", body: form });
  if (!response.ok) {
    showDataProblem(await readProblem(response), { file: $("#data-file") });
    return;
  }
  state.data.preview = await response.json();
  setDataStatus("");
  renderPreview();
  fillMapping(state.data.preview);
  $("#preview").hidden = false;
}

function renderPreview() {
  const preview = state.data.preview;
  if (!preview) return;
  const f = preview.format;
  const delimiter = f.delimiter === "\t" ? "tab" : f.delimiter;
  setText(
    "#preview-format",
    t("d.format", {
      type: f.file_type.toUpperCase(),
      encoding: f.encoding ?? "–",
      delimiter: delimiter ?? "–",
      decimal: f.decimal_separator ?? "–",
      date: f.date_format ?? "–",
      n: fmt.int(preview.columns.length),
    }),
  );
  const head = document.createElement("tr");
  for (const column of preview.columns) {
    const th = cell("th", column);
    th.scope = "col";
    head.append(th);
  }
  $("#preview-table thead").replaceChildren(head);
  $("#preview-table tbody").replaceChildren(
    ...preview.rows.slice(0, PREVIEW_ROWS).map((row) => {
      const tr = document.createElement("tr");
      for (const value of row) tr.append(cell("td", value ?? ""));
      return tr;
    }),
  );
}

function fillMapping(preview) {
  const mapping = preview.suggested_mapping ?? {};
  const roles = [
    ["#map-customer", mapping.customer_id],
    ["#map-date", mapping.date],
    ["#map-amount", mapping.amount],
  ];
  for (const [selector, chosen] of roles) {
    const select = $(selector);
    select.replaceChildren(...preview.columns.map((c) => option(c, c)));
    if (chosen) select.value = chosen;
  }
  const order = $("#map-order");
  order.replaceChildren(option("", t("d.none")), ...preview.columns.map((c) => option(c, c)));
  order.value = mapping.order_id ?? "";
  const used = new Set([mapping.customer_id, mapping.date, mapping.amount, mapping.order_id]);
  $("#map-segments").replaceChildren(
    ...preview.columns
      .filter((c) => !used.has(c))
      .map((c) => checkbox("segment_cols", c, c, (mapping.segments ?? []).includes(c))),
  );
}

/** The mapping form's inputs by the names the API may give them: the upload option
 * (`form.customer_col`) or the column role (`customer_id`, for a column not in the file). */
function mappingInputs(mappingForm) {
  const inputs = Object.fromEntries(
    [...mappingForm.elements].filter((el) => el.id).map((el) => [el.name, el]),
  );
  const roles = { customer_id: "customer_col", date: "date_col", amount: "amount_col", order_id: "order_col" };
  for (const [role, name] of Object.entries(roles)) inputs[role] = inputs[name];
  return inputs;
}

async function uploadDataset() {
  clearDataErrors();
  const file = state.data.file;
  if (!file) return;
  const mappingForm = $("#mapping-form");
  const form = new FormData();
  form.append("file", file);
  for (const name of ["customer_col", "date_col", "amount_col", "order_col", "currency"]) {
    const value = mappingForm.elements.namedItem(name).value.trim();
    if (value) form.append(name, value);
  }
  for (const box of $$('input[name="segment_cols"]:checked', mappingForm)) {
    form.append("segment_cols", box.value);
  }
  setDataStatus(t("d.uploading"));
  $("#upload-button").disabled = true;
  try {
    const response = await apiFetch("/v1/datasets", { method: "POST", body: form });
    if (!response.ok) {
      showDataProblem(await readProblem(response), mappingInputs(mappingForm));
      return;
    }
    state.data.dataset = await response.json();
  } finally {
    $("#upload-button").disabled = false;
  }
  setDataStatus(t("d.uploaded"));
  renderDataset();
  $("#dataset").hidden = false;
}

function formatDate(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleDateString(LOCALES[state.lang], { timeZone: "UTC" });
}

function renderDataset() {
  const ds = state.data.dataset;
  if (!ds) return;
  setText(
    "#dataset-summary",
    t("d.datasetSummary", {
      name: ds.name,
      rows: fmt.int(ds.row_count),
      customers: fmt.int(ds.customer_count ?? 0),
      from: formatDate(ds.date_min),
      to: formatDate(ds.date_max),
      dropped: fmt.int(ds.report.rows_dropped),
    }),
  );
  const boxes = $("#fit-segments");
  const checked = new Set($$("input:checked", boxes).map((el) => el.value));
  const first = boxes.childElementCount === 0;
  if (ds.segment_columns.length === 0) {
    boxes.replaceChildren(cell("p", t("d.noSegments"), "hint"));
    return;
  }
  boxes.replaceChildren(
    ...ds.segment_columns.map((s) =>
      checkbox("segment_by", s.name, `${s.name} (${fmt.int(s.distinct_values)})`, first || checked.has(s.name)),
    ),
  );
}

function valuationParams() {
  const params = new URLSearchParams({ horizon_unit: "months" });
  const fields = [
    ["horizon", $("#fit-horizon"), 1],
    ["margin", $("#fit-margin"), 100],
    ["discount_rate", $("#fit-discount"), 100],
  ];
  for (const [name, input, divisor] of fields) {
    const raw = input.value.trim();
    if (raw === "") continue;
    const x = parseNumber(raw);
    params.set(name, x === null ? raw : String(tidy(x / divisor)));
  }
  return params;
}

function valuationInputs() {
  return { horizon: $("#fit-horizon"), margin: $("#fit-margin"), discount_rate: $("#fit-discount") };
}

async function fitDataset() {
  clearDataErrors();
  const ds = state.data.dataset;
  if (!ds) return;
  $("#segments").hidden = true;
  const body = {
    dataset_id: ds.id,
    purchase_model: $("#fit-model").value,
    segment_by: $$('#fit-segments input[name="segment_by"]:checked').map((el) => el.value),
  };
  $("#fit-button").disabled = true;
  setDataStatus(t("d.fitting"));
  try {
    const response = await apiFetch("/v1/fits", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      showDataProblem(await readProblem(response));
      return;
    }
    const fit = await response.json();
    state.data.fitId = fit.id;
    if (response.status === 202) {
      await pollJob(response.headers.get("Location") ?? fit.job.url, fit.id);
    } else if (fit.status === "succeeded") {
      await loadSegments();
    } else {
      showDataProblem(fit.error ?? { detail: t("d.fitFailed", { detail: fit.status }) });
    }
  } finally {
    $("#fit-button").disabled = false;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A job's stage in the interface language (as the API wrote it if unknown). */
function stageText(job) {
  const stage = job.stage ?? job.status;
  const key = `stage.${stage}`;
  return key in STRINGS[state.lang] ? t(key) : stage;
}

async function pollJob(url, fitId) {
  const box = $("#progress-box");
  box.hidden = false;
  try {
    for (;;) {
      const response = await apiFetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) {
        showDataProblem(await readProblem(response));
        return;
      }
      const job = await response.json();
      const percent = Math.round((job.progress ?? 0) * 100);
      $("#fit-progress").value = percent;
      setText("#fit-progress-text", t("d.progress", { percent: fmt.int(percent), stage: stageText(job) }));
      if (job.status === "succeeded") break;
      if (job.status === "failed") {
        showDataProblem({
          ...(job.error ?? {}),
          detail: t("d.fitFailed", { detail: job.error?.detail ?? job.status }),
        });
        return;
      }
      if (job.status === "cancelled") {
        setDataStatus(t("d.cancelled"));
        return;
      }
      await sleep(JOB_POLL_MS);
    }
  } finally {
    box.hidden = true;
  }
  if (state.data.fitId === fitId) await loadSegments();
}

function segmentsUrl(format) {
  const params = valuationParams();
  if (format) params.set("format", format);
  return `/v1/fits/${encodeURIComponent(state.data.fitId)}/segments?${params}`;
}

async function loadSegments() {
  if (!state.data.fitId) return;
  for (const input of Object.values(valuationInputs())) clearFieldError(input);
  const response = await apiFetch(segmentsUrl(), { headers: { Accept: "application/json" } });
  if (!response.ok) {
    showDataProblem(await readProblem(response), valuationInputs());
    return;
  }
  state.data.report = await response.json();
  setDataStatus(t("d.fitted"));
  renderSegments();
  $("#segments").hidden = false;
}

const SEGMENT_COLUMNS = [
  { key: "segment", label: "col.segment", text: (row) => segmentLabel(row) },
  { key: "customers", label: "col.customers", text: (row) => fmt.int(row.customers), numeric: true },
  { key: "share_active", label: "col.active", text: (row) => fmt.percent(row.share_active, 1), numeric: true },
  {
    key: "expected_purchases_per_customer",
    label: "col.purchases",
    text: (row) => numberFormat(2, 2).format(row.expected_purchases_per_customer),
    numeric: true,
  },
  { key: "clv_mean", label: "col.clvMean", text: (row) => fmt.money(row.clv_mean), numeric: true },
  {
    key: "clv_mean_lower",
    label: "col.interval",
    text: (row) =>
      row.clv_mean_lower == null ? "–" : `${fmt.money(row.clv_mean_lower)} – ${fmt.money(row.clv_mean_upper)}`,
    numeric: true,
  },
  { key: "clv_total", label: "col.clvTotal", text: (row) => fmt.money(row.clv_total), numeric: true },
  { key: "share_of_value", label: "col.share", text: (row) => fmt.percent(row.share_of_value, 1), numeric: true },
];

function segmentLabel(row) {
  const values = Object.values(row.segment);
  return values.length ? values.join(" · ") : t("d.total");
}

function sortedSegments() {
  const rows = [...state.data.report.segments];
  const sort = state.data.sort;
  if (!sort) return rows;
  const column = SEGMENT_COLUMNS.find((c) => c.key === sort.key);
  const value = (row) => (column.numeric ? row[column.key] ?? -Infinity : segmentLabel(row));
  const sign = sort.dir === "ascending" ? 1 : -1;
  return rows.sort((a, b) => {
    const x = value(a);
    const y = value(b);
    if (typeof x === "string") return sign * x.localeCompare(y, LOCALES[state.lang]);
    return sign * (x - y);
  });
}

function sortBy(key) {
  const current = state.data.sort;
  const column = SEGMENT_COLUMNS.find((c) => c.key === key);
  let dir = column.numeric ? "descending" : "ascending";
  if (current?.key === key) dir = current.dir === "ascending" ? "descending" : "ascending";
  state.data.sort = { key, dir };
  renderSegments();
  $(`#segments-table th[data-key="${key}"] button`).focus();
}

function segmentRow(row, header) {
  const tr = document.createElement("tr");
  SEGMENT_COLUMNS.forEach((column, i) => {
    const el = cell(i === 0 && header ? "th" : "td", column.text(row), column.numeric ? "num" : "");
    if (i === 0 && header) el.scope = "row";
    tr.append(el);
  });
  return tr;
}

function renderSegments() {
  const report = state.data.report;
  if (!report) return;
  const c = report.conventions;
  const flows = c.cash_flow_timing.startsWith("end")
    ? t("d.flowEnd")
    : c.cash_flow_timing.startsWith("start")
      ? t("d.flowStart")
      : c.cash_flow_timing;
  setText(
    "#segments-conventions",
    t("d.segmentsConventions", {
      horizon: fmt.int(c.horizon),
      unit: unitWord("month", c.horizon),
      rate: fmt.percent(c.discount_rate_annual_effective, 2),
      margin: fmt.percent(c.margin, 1),
      flows,
      currency: c.currency ?? "–",
      level: fmt.percent(c.interval_level, 1),
      end: formatDate(c.observation_end),
    }),
  );
  const head = document.createElement("tr");
  for (const column of SEGMENT_COLUMNS) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.key = column.key;
    if (column.numeric) th.className = "num";
    const sorted = state.data.sort?.key === column.key ? state.data.sort.dir : "none";
    th.setAttribute("aria-sort", sorted);
    const by = column.key === "segment" && report.by.length ? ` (${report.by.join(", ")})` : "";
    const button = cell("button", t(column.label) + by);
    button.type = "button";
    button.title = t("d.sortBy", { column: t(column.label) });
    button.addEventListener("click", () => sortBy(column.key));
    th.append(button);
    head.append(th);
  }
  $("#segments-table thead").replaceChildren(head);
  const rows = sortedSegments();
  $("#segments-table tbody").replaceChildren(...rows.map((row) => segmentRow(row, true)));
  $("#segments-table tfoot").replaceChildren(segmentRow(report.total, true));
  renderBars(rows.length ? rows : [report.total], c.currency ?? "");
}

function renderBars(rows, currency) {
  const top = Math.max(...rows.map((row) => row.clv_mean), 0);
  const list = document.createElement("ul");
  for (const row of rows) {
    const item = document.createElement("li");
    const track = cell("span", "", "bar-track");
    const bar = cell("span", "", "bar");
    bar.style.width = `${top > 0 ? (100 * Math.max(row.clv_mean, 0)) / top : 0}%`;
    track.append(bar);
    item.append(
      cell("span", segmentLabel(row), "bar-label"),
      track,
      cell("span", `${fmt.money(row.clv_mean)} ${currency}`, "bar-value"),
    );
    list.append(item);
  }
  $("#segment-bars").replaceChildren(list);
}

async function downloadCsv() {
  if (!state.data.fitId) return;
  const response = await apiFetch(segmentsUrl("csv"), { headers: { Accept: "text/csv" } });
  if (!response.ok) {
    showDataProblem(await readProblem(response), valuationInputs());
    return;
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `${state.data.fitId}-segments.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
  setDataStatus(t("d.downloaded"));
}

function initDataPanel() {
  const keyInput = $("#api-key");
  keyInput.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
  keyInput.addEventListener("input", () => {
    sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
    clearFieldError(keyInput);
  });
  $("#data-file").addEventListener("change", (event) =>
    guarded(() => previewFile(event.target.files[0] ?? null)),
  );
  $("#mapping-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(uploadDataset);
  });
  $("#fit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(fitDataset);
  });
  for (const input of Object.values(valuationInputs())) {
    input.addEventListener("change", () => guarded(loadSegments));
  }
  $("#download-csv").addEventListener("click", () => guarded(downloadCsv));
}

// ------------------------------------------------------------------------------ start

function setLanguage(lang) {
  if (!LANGUAGES.includes(lang) || lang === state.lang) return;
  // Read the inputs in the old language's number format, show them in the new one.
  const params = calcParams();
  const valuation = Object.values(valuationInputs()).map((input) => [input, parseNumber(input.value)]);
  state.lang = lang;
  applyStaticStrings();
  fillCalcForm(params);
  for (const [input, x] of valuation) if (x !== null) input.value = inputText(x);
  syncUrl(params);
  renderCalc();
  renderPreview();
  renderDataset();
  renderSegments();
}

function initialLanguage(query) {
  const asked = query.get("lang");
  if (LANGUAGES.includes(asked)) return asked;
  const preferred = (navigator.languages ?? [navigator.language]).map((l) => l.slice(0, 2));
  return preferred.find((l) => LANGUAGES.includes(l)) ?? "en";
}

function start() {
  const query = new URLSearchParams(location.search);
  state.lang = initialLanguage(query);
  applyStaticStrings();
  for (const button of $$("[data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
  initCalculator(query);
  initDataPanel();
}

start();
