// The cltv web page: the quick calculator (GET /v1/calculator, inputs kept in the URL), the
// "From data" panel (preview, upload, fit, CLTV per segment, the customers' P(active)
// histogram) and the business case of a CX initiative (POST /v1/business-cases: NPV, ROI,
// payback, break-even, cash flows, tornado, XLSX). The page computes no economics itself: every
// figure is the API's. No framework, no build step; the chart library (uPlot) is the global
// `uPlot` from /static/vendor. All strings are in i18n.js.

import { API_MESSAGES, LANGUAGES, LOCALES, STRINGS } from "./i18n.js";

const DEBOUNCE_MS = 250;
const JOB_POLL_MS = 400;
const KEY_STORAGE = "cltv.apiKey";
const PREVIEW_ROWS = 10;
const CHART_HEIGHT = 260;
const CHART_MIN_SURVIVAL = 0.005; // an unlimited horizon is drawn until survival falls below this
const CHART_MIN_PERIODS = 12;
const DIST_BINS = 20;
const ALL_SEGMENTS = "*"; // effects for every segment of a business case
const ALL_CUSTOMERS = "all customers"; // a fit's only segment when it reports no columns
const XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const state = {
  lang: "en",
  calc: { seq: 0, timer: null, controller: null, result: null, problem: null, chart: null },
  data: { file: null, preview: null, dataset: null, fitId: null, report: null, sort: null },
  dist: { seq: 0, body: null, chart: null },
  case: { doc: null, churn: null, flowChart: null, segmentsOf: null },
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

/** The API's field message in the interface language (as written by the API if unknown);
 * numbers the API gives as shares are shown in percent where the entry says so. */
function localMessage(apiMessage, isPercent) {
  for (const entry of API_MESSAGES) {
    if (entry.percent && !isPercent) continue;
    const match = apiMessage.match(entry.match);
    if (!match) continue;
    return entry[state.lang].replace(/\{(\d)\}/g, (_, i) => {
      const text = match[Number(i)] ?? "";
      return entry.percentArgs?.includes(Number(i)) ? fmt.percent(Number(text), 4) : text;
    });
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
  renderCaseBaseline();
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
  renderCaseBaseline();
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
  fillDistributionSegments();
  await Promise.all([loadDistribution(), loadCaseSegments()]);
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

// ------------------------------------------------------------ distribution of customers

/** The segment's name as the API takes it: `column=value`, several joined with ", ". */
function segmentKey(row) {
  return Object.entries(row.segment)
    .map(([column, value]) => `${column}=${value}`)
    .join(", ");
}

function fillDistributionSegments() {
  const report = state.data.report;
  const select = $("#dist-segment");
  const chosen = select.value;
  select.replaceChildren(
    option("", t("d.total")),
    ...report.segments.map((row) => option(segmentKey(row), segmentLabel(row))),
  );
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

function distributionUrl() {
  const params = valuationParams();
  params.set("metric", $("#dist-metric").value);
  params.set("bins", String(DIST_BINS));
  const segment = $("#dist-segment").value;
  if (segment) params.set("segment", segment);
  return `/v1/fits/${encodeURIComponent(state.data.fitId)}/distribution?${params}`;
}

async function loadDistribution() {
  if (!state.data.fitId || !state.data.report) return;
  const seq = ++state.dist.seq;
  const inputs = { ...valuationInputs(), metric: $("#dist-metric"), segment: $("#dist-segment") };
  for (const input of [inputs.metric, inputs.segment]) clearFieldError(input);
  $("#distribution").setAttribute("aria-busy", "true");
  const response = await apiFetch(distributionUrl(), { headers: { Accept: "application/json" } });
  if (seq !== state.dist.seq) return;
  $("#distribution").removeAttribute("aria-busy");
  if (!response.ok) {
    showDataProblem(await readProblem(response), inputs);
    return;
  }
  state.dist.body = await response.json();
  renderDistribution();
}

/** A value of the histogram's metric as the page writes it (P(active) in percent). */
function distValue(metric, x) {
  if (metric === "p_alive") return fmt.percent(x, 0);
  if (metric === "clv") return fmt.money(x);
  return numberFormat(0, 2).format(x);
}

function distUnit(body) {
  if (body.metric === "p_alive") return "%";
  if (body.metric === "clv") return body.conventions.currency ?? "";
  return "";
}

function renderDistribution() {
  const body = state.dist.body;
  if (!body) return;
  const metricName = t(`dist.name.${body.metric}`);
  const segment = Object.keys(body.segment).length
    ? Object.values(body.segment).join(" · ")
    : t("d.total");
  const unit = distUnit(body);
  const withUnit = (text) => (unit ? `${text}\u00a0${unit}` : text);
  setText(
    "#dist-caption",
    t("dist.caption", {
      metric: metricName,
      segment,
      customers: fmt.int(body.customers),
      mean: body.mean === null ? "–" : withUnit(distValue(body.metric, body.mean)),
      bins: fmt.int(body.bins),
    }) + (body.missing ? ` ${t("dist.missing", { n: fmt.int(body.missing) })}` : ""),
  );
  setText("#dist-table-caption", t("dist.tableCaption", { metric: metricName, segment }));
  const head = document.createElement("tr");
  for (const [key, numeric] of [["dist.from", true], ["dist.to", true], ["col.customers", true], ["dist.share", true]]) {
    const th = cell("th", t(key), numeric ? "num" : "");
    th.scope = "col";
    head.append(th);
  }
  $("#dist-table thead").replaceChildren(head);
  const total = Math.max(body.customers - body.missing, 1);
  $("#dist-table tbody").replaceChildren(
    ...body.counts.map((count, i) => {
      const tr = document.createElement("tr");
      tr.append(
        cell("td", withUnit(distValue(body.metric, body.edges[i])), "num"),
        cell("td", withUnit(distValue(body.metric, body.edges[i + 1])), "num"),
        cell("td", fmt.int(count), "num"),
        cell("td", fmt.percent(count / total, 1), "num"),
      );
      return tr;
    }),
  );
  drawDistribution(body, metricName, unit);
}

function drawDistribution(body, metricName, unit) {
  if (typeof window.uPlot !== "function") return;
  const scale = body.metric === "p_alive" ? 100 : 1;
  const centers = body.counts.map((_, i) => ((body.edges[i] + body.edges[i + 1]) / 2) * scale);
  const container = $("#dist-chart");
  state.dist.chart?.destroy();
  container.replaceChildren();
  const axisColor = "#1f2933";
  const xLabel = unit ? `${metricName}, ${unit}` : metricName;
  const options = {
    width: Math.max(200, container.clientWidth),
    height: CHART_HEIGHT,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: false, range: [body.edges[0] * scale, body.edges[body.edges.length - 1] * scale] },
      y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] },
    },
    axes: [
      {
        stroke: axisColor,
        label: xLabel,
        values: (u, ticks) => ticks.map((v) => (scale === 100 ? fmt.int(v) : fmt.compact(v))),
      },
      {
        stroke: axisColor,
        label: t("col.customers"),
        size: 60,
        values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? fmt.int(v) : "")),
      },
    ],
    series: [
      { label: xLabel, value: (u, v) => (v == null ? "–" : distValue(body.metric, v / scale)) },
      {
        label: t("col.customers"),
        stroke: "#1d4f91",
        fill: "rgba(29, 79, 145, 0.55)",
        width: 1,
        paths: window.uPlot.paths.bars({ size: [0.92, 200], align: 0 }),
        points: { show: false },
        value: (u, v) => (v == null ? "–" : fmt.int(v)),
      },
    ],
  };
  state.dist.chart = new window.uPlot(options, [centers, body.counts], container);
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
  $("#dist-form").addEventListener("change", () => guarded(loadDistribution));
  $("#dist-form").addEventListener("submit", (event) => event.preventDefault());
}

// ------------------------------------------------------------------------ business case

const caseForm = () => $("#case-form");
const caseSource = () => $('input[name="case_source"]:checked', caseForm()).value;

/** Number inputs of the case form (text inputs read in the interface language). */
function caseNumberInputs() {
  return $$("input[inputmode]", caseForm());
}

/** An input's value for the API: a number in API units (shares for percent fields), the text
 * as typed when it is not a number (the API names the field), or undefined when empty. */
function apiNumber(input) {
  const raw = input.value.trim();
  if (raw === "") return undefined;
  const x = parseNumber(raw);
  if (x === null) return raw;
  return tidy(input.dataset.scale === "percent" ? x / 100 : x);
}

/** The object without its undefined members (an empty field is left to the API's default). */
function defined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

function caseCurrency() {
  if (caseSource() === "fit") return state.data.report?.conventions.currency || "RUB";
  return state.calc.result?.conventions.currency ?? ($("#in-currency").value.trim() || "RUB");
}

/** Shows the inputs of the chosen source and what the baseline will be. */
function renderCaseBaseline() {
  const fitReady = Boolean(state.data.report);
  const fitRadio = $("#case-source-fit");
  fitRadio.disabled = !fitReady;
  if (!fitReady && fitRadio.checked) {
    $('input[name="case_source"][value="calculator"]').checked = true;
  }
  const source = caseSource();
  $("#case-calc-box").hidden = source !== "calculator";
  $("#case-fit-box").hidden = source !== "fit";
  setText("#case-source-hint", fitReady ? "" : t("bc.fitFirst"));
  const period = $("#case-period");
  const calc = state.calc.result;
  if (source === "calculator") {
    if (calc) period.value = calc.conventions.period;
    period.disabled = true;
    setText("#case-period-hint", t("bc.periodFromCalc"));
    setText(
      "#case-calc-summary",
      calc
        ? t("bc.calcSummary", {
            margin: fmt.money(calc.margin_per_period),
            currency: calc.conventions.currency,
            period: t(`period.${calc.conventions.period}`),
            retention: fmt.percent(calc.inputs.retention_rate, 2),
          })
        : t("bc.calcInvalid"),
    );
  } else {
    period.disabled = false;
    setText("#case-period-hint", t("bc.periodFit"));
  }
  setCurrency(caseForm(), caseCurrency());
  const periodName = period.value;
  for (const el of $$('[data-unit="case-periods"]', caseForm())) {
    el.textContent = `, ${unitWord(periodName, 5)}`;
  }
}

/** After a fit's segment table loaded: the segments to choose and their cost of churn. */
async function loadCaseSegments() {
  const report = state.data.report;
  const boxes = $("#case-segment-boxes");
  const rows = report.segments.length ? report.segments : [report.total];
  const previous = new Set($$("input:checked", boxes).map((el) => el.value));
  const keep = state.case.segmentsOf === state.data.fitId;
  boxes.replaceChildren(
    ...rows.map((row) => {
      const key = segmentKey(row) || ALL_CUSTOMERS;
      return checkbox("case_segment", key, segmentLabel(row), keep ? previous.has(key) : true);
    }),
  );
  state.case.segmentsOf = state.data.fitId;
  if (!$("#case-source-fit").checked && !keep) $("#case-source-fit").checked = true;
  renderCaseBaseline();
  await loadChurnCost();
}

async function loadChurnCost() {
  const report = state.data.report;
  if (!report) return;
  const params = valuationParams();
  for (const column of report.by) params.append("by", column);
  const url = `/v1/fits/${encodeURIComponent(state.data.fitId)}/churn-cost?${params}`;
  const response = await apiFetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    state.case.churn = null;
    showCaseProblem(await readProblem(response));
    return;
  }
  state.case.churn = await response.json();
  renderChurnCost();
}

const CHURN_COLUMNS = [
  { label: "col.segment", text: (row) => segmentLabel(row) },
  { label: "bc.activeCustomers", text: (row) => fmt.int(row.active_customers), numeric: true },
  { label: "bc.lostPerChurner", text: (row) => fmt.money(row.value_lost_per_churner), numeric: true },
  { label: "bc.onePoint", text: (row) => fmt.money(row.cost_of_one_point_more_churn), numeric: true },
  { label: "bc.atRisk", text: (row) => fmt.int(row.customers_at_risk), numeric: true },
  { label: "bc.revenueAtRisk", text: (row) => fmt.money(row.revenue_at_risk), numeric: true },
];

function renderChurnCost() {
  const churn = state.case.churn;
  if (!churn) return;
  const c = churn.conventions;
  const head = document.createElement("tr");
  for (const column of CHURN_COLUMNS) {
    const th = cell("th", t(column.label), column.numeric ? "num" : "");
    th.scope = "col";
    head.append(th);
  }
  $("#churn-table thead").replaceChildren(head);
  const row = (r) => {
    const tr = document.createElement("tr");
    CHURN_COLUMNS.forEach((column, i) => {
      const el = cell(i === 0 ? "th" : "td", column.text(r), column.numeric ? "num" : "");
      if (i === 0) el.scope = "row";
      tr.append(el);
    });
    return tr;
  };
  $("#churn-table tbody").replaceChildren(...churn.segments.map(row), row(churn.total));
  setText(
    "#churn-note",
    t("bc.churnNote", {
      horizon: fmt.int(c.horizon),
      unit: unitWord("month", c.horizon),
      currency: c.currency ?? "–",
      low: fmt.percent(c.at_risk_low, 0),
      high: fmt.percent(c.at_risk_high, 0),
    }),
  );
}

function npsShift() {
  const value = (id) => apiNumber($(id));
  const toPassive = value("#case-nps-passive");
  const toPromoter = value("#case-nps-promoter");
  if (!toPassive && !toPromoter) return undefined; // no shift: the group figures are not used
  const group = (prefix) =>
    defined({ retention: value(`#case-nps-${prefix}-retention`), margin_per_period: value(`#case-nps-${prefix}-margin`) });
  return {
    counts: defined({
      promoters: value("#case-nps-p-share"),
      passives: value("#case-nps-a-share"),
      detractors: value("#case-nps-d-share"),
    }),
    promoters: group("p"),
    passives: group("a"),
    detractors: group("d"),
    ...defined({ detractors_to_passive: toPassive, detractors_to_promoter: toPromoter }),
  };
}

/** The business case as POST /v1/business-cases takes it, or null (the reason shown). */
function caseBody() {
  const value = (id) => apiNumber($(id));
  const name = $("#case-name").value.trim();
  const initiative = defined({
    name,
    currency: caseCurrency(),
    one_off_cost: value("#case-one-off"),
    running_cost_per_period: value("#case-running"),
    start_period: value("#case-start"),
    horizon_periods: value("#case-horizon"),
    annual_discount_rate: value("#case-discount"),
    period: $("#case-period").value,
  });
  let baseline;
  if (caseSource() === "fit") {
    const margin = apiNumber($("#fit-margin"));
    baseline = defined({
      kind: "fit",
      fit_id: state.data.fitId,
      by: state.data.report.by,
      segments: $$('#case-segment-boxes input:checked').map((el) => el.value),
      margin,
    });
  } else {
    const calc = state.calc.result;
    if (!calc) {
      setText("#case-status", t("bc.calcInvalid"));
      return null;
    }
    baseline = {
      kind: "manual",
      segments: [
        defined({
          name: t("bc.calcSegmentName"),
          customers: value("#case-customers"),
          margin_per_customer: calc.margin_per_period,
          retention: calc.inputs.retention_rate,
        }),
      ],
    };
  }
  const effects = defined({
    churn_reduction_points: value("#case-churn"),
    spend_uplift: value("#case-spend"),
    nps_shift: npsShift(),
  });
  return { name, initiative, baseline, effects: { [ALL_SEGMENTS]: effects } };
}

/** The input of the page that an API field path names (`body.initiative.one_off_cost`), or
 * null. Effects are sent for every segment (`*`); a longer path falls back to its parents. */
function caseInputFor(field) {
  const path = String(field).replace(/^body\./, "").split(".");
  if (path[0] === "effects" && path.length > 1) path[1] = ALL_SEGMENTS;
  const byPath = new Map($$("[data-api]", caseForm()).map((el) => [el.dataset.api, el]));
  byPath.set("baseline.margin", $("#fit-margin"));
  for (let n = path.length; n > 0; n--) {
    const el = byPath.get(path.slice(0, n).join(".").replace(".profile.", "."));
    if (el && !el.closest("[hidden]")) return el;
  }
  return null;
}

function clearCaseErrors() {
  for (const el of [...$$("[data-api]", caseForm()), $("#fit-margin")]) clearFieldError(el);
  const box = $("#case-errors");
  box.replaceChildren();
  box.hidden = true;
}

/** Problem details: each field error next to its input, the rest listed under the form. */
function showCaseProblem(problem) {
  const listed = [];
  let first = null;
  for (const error of problem.errors ?? []) {
    const input = caseInputFor(error.field);
    if (!input) {
      listed.push(error);
      continue;
    }
    const details = input.closest("details");
    if (details) details.open = true;
    showFieldError(input, localMessage(error.message, input.dataset.scale === "percent"));
    first ??= input;
  }
  setText("#case-status", problem.errors?.length ? t("bc.invalid") : "");
  if (listed.length || !problem.errors?.length) {
    const detail = cell("p", problem.detail ?? problem.title ?? "");
    const list = document.createElement("ul");
    for (const error of listed) {
      list.append(cell("li", `${error.field}: ${error.message}${error.value == null ? "" : ` (${error.value})`}`));
    }
    $("#case-errors").replaceChildren(detail, ...(listed.length ? [list] : []));
    $("#case-errors").hidden = false;
  }
  first?.focus();
}

async function buildCase() {
  clearCaseErrors();
  const body = caseBody();
  if (!body) return;
  $("#case-button").disabled = true;
  $("#case-panel").setAttribute("aria-busy", "true");
  setText("#case-status", t("bc.building"));
  try {
    const response = await apiFetch("/v1/business-cases", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      showCaseProblem(await readProblem(response));
      return;
    }
    state.case.doc = await response.json();
  } finally {
    $("#case-button").disabled = false;
    $("#case-panel").removeAttribute("aria-busy");
  }
  setText("#case-status", t("bc.built"));
  $("#case-results").hidden = false;
  renderCase();
}

/** A number of periods with its unit word, or "not reached". */
function periodsText(x, period) {
  return x === null ? [t("bc.notReached"), ""] : [fmt.periods(x), unitWord(period, x, 1)];
}

function renderCase() {
  const doc = state.case.doc;
  if (!doc) return;
  const r = doc.result;
  const c = r.conventions;
  for (const el of $$('[data-unit="case-currency"]', $("#case-results"))) el.textContent = c.currency;
  setText(
    "#case-version",
    t("bc.version", { name: doc.name, version: fmt.int(doc.version), date: formatDate(doc.created_at) }),
  );
  setText("#case-npv", fmt.money(r.npv));
  setText(
    "#case-npv-note",
    t(c.timing === "end" ? "bc.npvNoteEnd" : "bc.npvNoteStart", {
      annual: fmt.percent(c.annual_discount_rate, 2),
      per: fmt.percent(c.discount_rate_per_period, 3),
      period: t(`period.${c.period}`),
    }),
  );
  setText("#case-roi", r.roi === null ? "–" : fmt.percent(r.roi, 1));
  $("#case-roi-unit").hidden = r.roi === null;
  const [payback, paybackUnit] = periodsText(r.payback_periods, c.period);
  setText("#case-payback", payback);
  setText("#case-payback-unit", paybackUnit);
  setText("#case-payback-note", t("bc.paybackNote"));
  const [discounted, discountedUnit] = periodsText(r.discounted_payback_periods, c.period);
  setText("#case-dpayback", discounted);
  setText("#case-dpayback-unit", discountedUnit);
  setText("#case-pv-benefits", fmt.money(r.pv_benefits));
  setText("#case-pv-costs", fmt.money(r.pv_costs));
  renderBreakEven(r.break_even);
  drawCashFlows(r);
  renderTornado(r.tornado, c);
}

const EFFECT_LEAVES = ["churn_reduction_points", "spend_uplift", "detractors_to_passive", "detractors_to_promoter"];

function renderBreakEven(be) {
  const list = $("#case-breakeven-list");
  if (!be) {
    setText("#case-breakeven", "–");
    setText("#case-breakeven-unit", "");
    setText("#case-breakeven-note", t("bc.noBreakEven"));
    list.replaceChildren();
    return;
  }
  setText("#case-breakeven", fmt.percent(be.scale, 1));
  setText("#case-breakeven-unit", t("bc.ofExpected"));
  setText("#case-breakeven-note", t(be.scale <= 1 ? "bc.breakEvenBelow" : "bc.breakEvenAbove"));
  const seen = new Set();
  const items = [];
  for (const effect of be.effects) {
    const leaf = effect.input.split(".").pop();
    if (seen.has(leaf) || !EFFECT_LEAVES.includes(leaf) || effect.value === 0) continue;
    seen.add(leaf);
    items.push(
      cell(
        "li",
        t("bc.breakEvenItem", {
          input: inputLabel(effect.input, 1),
          value: inputValue(effect.input, effect.break_even_value),
          expected: inputValue(effect.input, effect.value),
        }) + (effect.capped ? ` ${t("bc.capped")}` : ""),
      ),
    );
  }
  list.replaceChildren(...items);
}

/** An input path of the case (`segments[0].effects.spend_uplift`) in words. */
function inputLabel(path, segmentCount) {
  const match = path.match(/^segments\[(\d+)\]\.(?:baseline|effects)\.(.*)$/);
  const rest = (match ? match[2] : path).replace("nps_shift.profile.", "nps_shift.");
  const parts = rest.split(".");
  const leaf = parts.pop();
  const parent = parts.pop();
  let label = t(`input.${leaf}`);
  if (["promoters", "passives", "detractors"].includes(parent)) {
    label = `${t(`bc.${parent}`)}: ${label}`;
  } else if (parent === "counts") {
    label = `${t(`bc.${leaf}`)}: ${t("input.share")}`;
  }
  if (match && segmentCount > 1) {
    const name = state.case.doc?.result.segments[Number(match[1])]?.name;
    if (name) label = `${name}: ${label}`;
  }
  return label;
}

const PERCENT_INPUTS = new Set([
  "annual_discount_rate", "retention", "churn_reduction_share", "spend_uplift", "frequency_uplift",
  "detractors_to_passive", "detractors_to_promoter", "promoters", "passives", "detractors",
]);
const MONEY_INPUTS = new Set([
  "one_off_cost", "running_cost_per_period", "margin_per_customer", "margin_per_period",
  "value_per_new_customer", "new_customer_value",
]);

/** An input's value in the page's units: money, percent, points, periods or a factor. */
function inputValue(path, x) {
  const leaf = path.split(".").pop();
  if (leaf === "churn_reduction_points") return `${numberFormat(0, 2).format(x * 100)}\u00a0${t("bc.pp")}`;
  if (PERCENT_INPUTS.has(leaf)) return `${fmt.percent(x, 2)}\u00a0%`;
  if (MONEY_INPUTS.has(leaf)) return fmt.money(x);
  if (leaf === "value_per_period") return `×${numberFormat(2, 2).format(x)}`;
  if (["horizon_periods", "start_period", "renewals"].includes(leaf)) return fmt.int(x);
  return numberFormat(0, 2).format(x);
}

function drawCashFlows(r) {
  const c = r.conventions;
  const flows = r.periods;
  const period = t(`period.${c.period}`);
  const last = flows[flows.length - 1];
  setText(
    "#case-flow-caption",
    t("bc.flowCaption", {
      n: fmt.int(last.period),
      periods: unitWord(c.period, last.period),
      pv: fmt.money(last.cumulative_present_value),
      currency: c.currency,
    }),
  );
  if (typeof window.uPlot !== "function") return;
  const container = $("#case-flow-chart");
  state.case.flowChart?.destroy();
  container.replaceChildren();
  const money = (u, v) => (v == null ? "–" : `${fmt.money(v)} ${c.currency}`);
  const options = {
    width: Math.max(200, container.clientWidth),
    height: CHART_HEIGHT,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false, range: [-0.5, last.period + 0.5] } },
    axes: [
      {
        stroke: "#1f2933",
        label: t("chart.period", { period }),
        values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? fmt.int(v) : "")),
      },
      {
        stroke: "#1f2933",
        label: c.currency,
        size: 64,
        values: (u, ticks) => ticks.map((v) => fmt.compact(v)),
      },
    ],
    series: [
      { label: t("chart.period", { period }), value: (u, v) => (v == null ? "–" : fmt.int(v)) },
      {
        label: t("bc.netFlow"),
        stroke: "#52606d",
        fill: "rgba(82, 96, 109, 0.45)",
        width: 1,
        paths: window.uPlot.paths.bars({ size: [0.7, 40], align: 0 }),
        points: { show: false },
        value: money,
      },
      { label: t("bc.cumulativePv"), stroke: "#1d4f91", width: 2, value: money },
    ],
  };
  const data = [
    flows.map((p) => p.period),
    flows.map((p) => p.net_cash_flow),
    flows.map((p) => p.cumulative_present_value),
  ];
  state.case.flowChart = new window.uPlot(options, data, container);
}

const TORNADO_BARS = 8;
const TORNADO_COLORS = { low: "#a23b12", high: "#1d4f91", text: "#1f2933", axis: "#52606d" };

function tornadoBars(tornado) {
  return tornado.bars.filter((bar) => bar.swing > 0).slice(0, TORNADO_BARS);
}

function renderTornado(tornado, c) {
  const bars = tornadoBars(tornado);
  const count = state.case.doc.result.segments.length;
  setText(
    "#case-tornado-caption",
    bars.length
      ? t("bc.tornadoCaption", {
          range: fmt.percent(tornado.relative_range, 0),
          npv: fmt.money(tornado.base_npv),
          currency: c.currency,
          input: inputLabel(bars[0].input, count),
        })
      : t("bc.tornadoEmpty"),
  );
  const head = document.createElement("tr");
  for (const key of ["bc.input", "bc.low", "bc.high", "bc.npvLow", "bc.npvHigh", "bc.swing"]) {
    const th = cell("th", t(key), key === "bc.input" ? "" : "num");
    th.scope = "col";
    head.append(th);
  }
  $("#tornado-table thead").replaceChildren(head);
  $("#tornado-table tbody").replaceChildren(
    ...bars.map((bar) => {
      const tr = document.createElement("tr");
      const name = cell("th", inputLabel(bar.input, count));
      name.scope = "row";
      tr.append(
        name,
        cell("td", inputValue(bar.input, bar.low_value), "num"),
        cell("td", inputValue(bar.input, bar.high_value), "num"),
        cell("td", fmt.money(bar.npv_low), "num"),
        cell("td", fmt.money(bar.npv_high), "num"),
        cell("td", fmt.money(bar.swing), "num"),
      );
      return tr;
    }),
  );
  drawTornado(tornado, bars, count);
}

/** Horizontal bars from the base NPV to the NPV at each input's low and high value, widest
 * swing on top (drawn on a canvas; the table above holds the same numbers). */
function drawTornado(tornado, bars, count) {
  const canvas = $("#case-tornado");
  const width = Math.max(260, canvas.parentElement.clientWidth);
  const rowHeight = 30;
  const top = 10;
  const bottom = 30;
  const height = top + bottom + rowHeight * Math.max(bars.length, 1);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', Arial, sans-serif";
  const labelWidth = Math.min(220, Math.round(width * 0.4));
  const left = labelWidth + 8;
  const right = width - 12;
  const base = tornado.base_npv;
  const values = [base, ...bars.flatMap((bar) => [bar.npv_low, bar.npv_high])];
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (max - min < 1e-9) [min, max] = [min - 1, max + 1];
  const pad = (max - min) * 0.05;
  min -= pad;
  max += pad;
  const x = (v) => left + ((v - min) / (max - min)) * (right - left);
  // Axis: ticks at round values, compact labels.
  ctx.strokeStyle = TORNADO_COLORS.axis;
  ctx.fillStyle = TORNADO_COLORS.text;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const axisY = top + rowHeight * Math.max(bars.length, 1) + 4;
  for (const tick of niceTicks(min, max, width < 480 ? 3 : 5)) {
    ctx.beginPath();
    ctx.moveTo(x(tick), axisY);
    ctx.lineTo(x(tick), axisY + 4);
    ctx.stroke();
    ctx.fillText(fmt.compact(tick), x(tick), axisY + 6);
  }
  bars.forEach((bar, i) => {
    const y = top + i * rowHeight + 5;
    const h = rowHeight - 10;
    for (const [npv, color] of [[bar.npv_low, TORNADO_COLORS.low], [bar.npv_high, TORNADO_COLORS.high]]) {
      ctx.fillStyle = color;
      const from = Math.min(x(base), x(npv));
      ctx.fillRect(from, y, Math.max(1, Math.abs(x(npv) - x(base))), h);
    }
    ctx.fillStyle = TORNADO_COLORS.text;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(fitText(ctx, inputLabel(bar.input, count), labelWidth - 4), labelWidth, y + h / 2);
  });
  // The base NPV.
  ctx.strokeStyle = TORNADO_COLORS.text;
  ctx.beginPath();
  ctx.moveTo(x(base), top - 4);
  ctx.lineTo(x(base), axisY);
  ctx.stroke();
}

/** Up to about `n` round tick values between min and max. */
function niceTicks(min, max, n) {
  const raw = (max - min) / n;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max; v += step) ticks.push(tidy(v));
  return ticks;
}

/** The text, cut with an ellipsis to fit `width` pixels. */
function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let cut = text;
  while (cut.length > 1 && ctx.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}

async function downloadXlsx() {
  const doc = state.case.doc;
  if (!doc) return;
  const response = await apiFetch(doc.links.xlsx, { headers: { Accept: XLSX_TYPE } });
  if (!response.ok) {
    showCaseProblem(await readProblem(response));
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = `${doc.id}-v${doc.version}.xlsx`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
  setText("#case-status", t("bc.downloaded"));
}

/** Runs an action of the case panel; a missing or refused key points at the key field. */
async function caseGuarded(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof Shown) {
      setText("#case-status", t("bc.needKey"));
      return;
    }
    showCaseProblem({ detail: t("d.failed", { detail: String(error) }) });
  }
}

function resizeCaseCharts() {
  for (const [chart, container] of [
    [state.case.flowChart, $("#case-flow-chart")],
    [state.dist.chart, $("#dist-chart")],
  ]) {
    if (chart && container.clientWidth > 0) {
      chart.setSize({ width: Math.max(200, container.clientWidth), height: CHART_HEIGHT });
    }
  }
  const doc = state.case.doc;
  if (doc && !$("#case-results").hidden) {
    drawTornado(doc.result.tornado, tornadoBars(doc.result.tornado), doc.result.segments.length);
  }
}

function initCasePanel() {
  const form = caseForm();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    caseGuarded(buildCase);
  });
  form.addEventListener("change", (event) => {
    if (event.target.name === "case_source" || event.target.id === "case-period") {
      renderCaseBaseline();
    }
  });
  form.addEventListener("input", (event) => {
    if (event.target.dataset.api) clearFieldError(event.target);
  });
  $("#case-xlsx").addEventListener("click", () => caseGuarded(downloadXlsx));
  const observer = new ResizeObserver(() => resizeCaseCharts());
  observer.observe($("#case-panel"));
  observer.observe($("#distribution"));
  renderCaseBaseline();
}

// ------------------------------------------------------------------------------ start

function setLanguage(lang) {
  if (!LANGUAGES.includes(lang) || lang === state.lang) return;
  // Read the inputs in the old language's number format, show them in the new one.
  const params = calcParams();
  const numbers = [...Object.values(valuationInputs()), ...caseNumberInputs()].map((input) => [
    input,
    parseNumber(input.value),
  ]);
  state.lang = lang;
  applyStaticStrings();
  fillCalcForm(params);
  for (const [input, x] of numbers) if (x !== null) input.value = inputText(x);
  syncUrl(params);
  renderCalc();
  renderPreview();
  renderDataset();
  renderSegments();
  if (state.data.report) fillDistributionSegments();
  renderDistribution();
  renderCaseBaseline();
  renderChurnCost();
  renderCase();
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
  initCasePanel();
}

start();
