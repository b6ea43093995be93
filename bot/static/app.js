// The upload page: pick or drop a CSV, upload it with progress, follow the job, show the report.
// Every value from the server or the file reaches the page through textContent, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "clinic-events.upload-token";
  const POLL_MS = 1000;
  const POLL_RETRIES = 5;


  const $ = (id) => document.getElementById(id);
  const el = {
    tokenSection: $("token-section"),
    errorJob: $("error-job"),
    tokenForm: $("token-form"),
    tokenInput: $("token-input"),
    tokenMessage: $("token-message"),
    uploadSection: $("upload-section"),
    dropZone: $("drop-zone"),
    fileInput: $("file-input"),
    fileHint: $("file-hint"),
    progressSection: $("progress-section"),
    fileName: $("file-name"),
    uploadProgress: $("upload-progress"),
    uploadPercent: $("upload-percent"),
    jobProgress: $("job-progress"),
    jobPercent: $("job-percent"),
    status: $("status"),
    detail: $("detail"),
    errorSection: $("error-section"),
    errorMessage: $("error-message"),
    reportSection: $("report-section"),
    reportSource: $("report-source"),
    summary: $("summary"),
    invalidRows: $("invalid-rows"),
    invalidIntro: $("invalid-intro"),
    invalidList: $("invalid-list"),
    otherRevenueNote: $("other-revenue-note"),
    weeksHead: $("weeks-head"),
    weeksBody: $("weeks-body"),
    weeksFoot: $("weeks-foot"),
    typesBody: $("types-body"),
    typeWeeksHead: $("type-weeks-head"),
    typeWeeksBody: $("type-weeks-body"),
    errorTitle: $("error-title"),
    chart: $("chart"),
    chartStatus: $("chart-status"),
    downloadCsv: $("download-csv"),
    downloadStatus: $("download-status"),
  };

  const state = {
    config: { auth_required: false, max_file_size_bytes: null, currency: "USD" },
    afterToken: null, // what to do once an access code has been entered
    pollTimer: null,
    chartUrl: null,
    fileName: null, // the file being worked on, to name it in messages
    jobId: null, // the job whose report is shown
    run: 0, // bumps on every new upload, so answers about an older one are ignored
  };

  // -- formatting -----------------------------------------------------------------------------

  function sentence(text) {
    const value = String(text || "").trim();
    if (!value) return value;
    const capital = value.charAt(0).toUpperCase() + value.slice(1);
    return /[.!?]$/.test(capital) ? capital : capital + ".";
  }

  // "1234.50" -> 123450: money stays in whole cents until it is shown.
  function cents(amount) {
    const match = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(String(amount));
    if (!match) return 0;
    const value = Number(match[2]) * 100 + Number((match[3] || "0").padEnd(2, "0"));
    return match[1] ? -value : value;
  }

  function money(centsValue) {
    const currency = state.config.currency || "USD";
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(centsValue / 100);
    } catch (error) {
      return (centsValue / 100).toFixed(2) + " " + currency;
    }
  }

  function count(value) {
    return Number(value).toLocaleString();
  }

  function megabytes(bytes) {
    const mb = bytes / 1048576;
    if (mb >= 1024) {
      return (mb / 1024).toLocaleString(undefined, { maximumFractionDigits: 1 }) + " GB";
    }
    return mb.toLocaleString(undefined, { maximumFractionDigits: mb < 10 ? 1 : 0 }) + " MB";
  }

  function day(iso) {
    return new Date(iso + "T00:00:00Z");
  }

  function weekRange(start, end) {
    const format = new Intl.DateTimeFormat(undefined, {
      day: "numeric",
      month: "short",
      year: "numeric",
      timeZone: "UTC",
    });
    if (typeof format.formatRange === "function") return format.formatRange(day(start), day(end));
    return format.format(day(start)) + " – " + format.format(day(end));
  }

  // Labels and file names are anybody's text: no control or bidi characters reach the page
  // (the same set as processing/text.py, so `evil\u202Egsj.csv` cannot pose as a PDF).
  const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g;

  function displayable(text) {
    return String(text).replace(INVISIBLE, " ").replace(/\s+/g, " ").trim();
  }

  // Words come from the server (processing/words.py), so every surface says the same thing;
  // these fallbacks only keep the page readable if an answer lacks them.
  function reasonWords(reason) {
    const words = state.config.reasons && state.config.reasons[reason];
    return words || displayable(reason).replace(/_/g, " ");
  }

  function treatmentName(kind) {
    const named = state.treatmentNames && state.treatmentNames[kind];
    if (named) return displayable(named);
    const words = displayable(kind).replace(/_/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  // -- small DOM helpers ----------------------------------------------------------------------

  function node(tag, text, className) {
    const element = document.createElement(tag);
    if (text !== undefined && text !== null) element.textContent = displayable(text);
    if (className) element.className = className;
    return element;
  }

  function clear(element) {
    while (element.firstChild) element.removeChild(element.firstChild);
  }

  function show(section) {
    for (const other of [el.uploadSection, el.progressSection, el.errorSection, el.reportSection]) {
      other.hidden = other !== section;
    }
  }

  function setMeter(progress, label, percent) {
    if (percent === null || percent === undefined) {
      progress.removeAttribute("value"); // an indeterminate bar: the size is unknown
      label.textContent = "";
    } else {
      progress.value = percent;
      label.textContent = Math.floor(percent) + "%";
    }
  }

  // -- access code ----------------------------------------------------------------------------

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch (error) {
      return null;
    }
  }

  function authHeaders() {
    const value = token();
    return value ? { Authorization: "Bearer " + value } : {};
  }

  function askForToken(message, then) {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (error) {
      /* storage may be off: the code is then asked for on each visit */
    }
    state.afterToken = then;
    el.tokenMessage.textContent = message;
    el.tokenInput.value = "";
    el.tokenSection.hidden = false;
    el.uploadSection.hidden = true;
    el.tokenInput.focus();
  }

  el.tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = el.tokenInput.value.trim();
    if (!value) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, value);
    } catch (error) {
      /* see askForToken */
    }
    el.tokenInput.value = "";
    el.tokenSection.hidden = true;
    const then = state.afterToken;
    state.afterToken = null;
    if (then) {
      then();
    } else {
      show(el.uploadSection);
      el.fileInput.focus();
    }
  });

  function needsToken() {
    return state.config.auth_required && !token();
  }

  // -- choosing a file ------------------------------------------------------------------------

  el.fileInput.addEventListener("change", () => {
    if (el.fileInput.files && el.fileInput.files.length) begin(el.fileInput.files[0]);
  });

  for (const name of ["dragenter", "dragover"]) {
    el.dropZone.addEventListener(name, (event) => {
      event.preventDefault();
      el.dropZone.classList.add("dragging");
    });
  }
  el.dropZone.addEventListener("dragleave", () => el.dropZone.classList.remove("dragging"));
  el.dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    el.dropZone.classList.remove("dragging");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) begin(files[0]);
  });
  // A file dropped next to the zone would otherwise make the browser leave the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  el.downloadCsv.addEventListener("click", () => downloadCsv());

  for (const button of document.querySelectorAll(".again")) {
    button.addEventListener("click", () => {
      state.run += 1;
      clearTimeout(state.pollTimer);
      el.fileInput.value = "";
      show(el.uploadSection);
      el.fileInput.focus();
    });
  }

  function begin(file) {
    state.fileName = file.name;
    if (!/\.csv$/i.test(file.name)) {
      showError(`“${file.name}” is not a CSV file. Export the events as CSV (a file ending in .csv) and upload that.`);
      return;
    }
    const limit = state.config.max_file_size_bytes;
    if (limit && file.size > limit) {
      showError(
        `The file is ${megabytes(file.size)}, over the ${megabytes(limit)} limit. ` +
          "Split the export or ask an administrator to raise the limit."
      );
      return;
    }
    if (needsToken()) {
      askForToken("Enter the access code to upload the file.", () => upload(file));
      return;
    }
    upload(file);
  }

  // -- uploading ------------------------------------------------------------------------------

  function upload(file) {
    state.run += 1;
    const run = state.run;
    clearTimeout(state.pollTimer);
    el.fileName.textContent = displayable(file.name);
    setMeter(el.uploadProgress, el.uploadPercent, 0);
    setMeter(el.jobProgress, el.jobPercent, 0);
    el.status.textContent = "Uploading the file…";
    el.detail.textContent = "";
    show(el.progressSection);

    const form = new FormData();
    form.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", "/api/upload");
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (run !== state.run || !event.lengthComputable) return;
      setMeter(el.uploadProgress, el.uploadPercent, (event.loaded / event.total) * 100);
      el.detail.textContent = `${megabytes(event.loaded)} of ${megabytes(event.total)} sent`;
    });
    request.addEventListener("load", () => {
      if (run !== state.run) return;
      const body = request.response || {};
      if (request.status === 202 && body.job_id) {
        setMeter(el.uploadProgress, el.uploadPercent, 100);
        el.status.textContent = "Uploaded. Working out the weekly figures…";
        el.detail.textContent = "";
        follow(body.job_id, run, 0);
      } else if (request.status === 401) {
        askForToken(
          "That access code was not accepted. Check it and enter it again.",
          () => upload(file)
        );
      } else {
        showError(body.error || `The upload failed (HTTP ${request.status}). Please try again.`);
      }
    });
    request.addEventListener("error", () => {
      if (run !== state.run) return;
      showError("The upload was interrupted. Check the connection and try again.");
    });
    request.send(form);
  }

  // -- following the job ----------------------------------------------------------------------

  async function follow(jobId, run, failures) {
    if (run !== state.run) return;
    let response;
    let job;
    try {
      response = await fetch("/api/jobs/" + encodeURIComponent(jobId), {
        headers: authHeaders(),
        cache: "no-store",
      });
      job = await response.json();
    } catch (error) {
      if (failures + 1 >= POLL_RETRIES) {
        showError("The service cannot be reached. Check the connection, then upload the file again.");
      } else {
        state.pollTimer = setTimeout(() => follow(jobId, run, failures + 1), POLL_MS);
      }
      return;
    }
    if (run !== state.run) return;
    if (response.status === 401) {
      askForToken("That access code was not accepted. Check it and enter it again.", () => {
        show(el.progressSection);
        follow(jobId, run, 0);
      });
      return;
    }
    if (!response.ok) {
      showError(job.error || `The report is not available (HTTP ${response.status}). Please upload the file again.`);
      return;
    }
    if (job.status === "succeeded") {
      setMeter(el.jobProgress, el.jobPercent, 100);
      showReport(job, run);
      return;
    }
    if (job.status === "failed") {
      showError(job.error || "The file could not be processed.", job.id);
      return;
    }
    describeProgress(job);
    state.pollTimer = setTimeout(() => follow(jobId, run, 0), POLL_MS);
  }

  function describeProgress(job) {
    if (job.status === "queued") {
      const place = job.queue_position ? ` You are number ${job.queue_position} in line.` : "";
      el.status.textContent = "Waiting for a free slot: other files are being processed." + place;
      setMeter(el.jobProgress, el.jobPercent, 0);
      return;
    }
    const progress = job.progress;
    el.status.textContent = "Reading the file and adding up the weeks…";
    if (!progress) return;
    setMeter(el.jobProgress, el.jobPercent, progress.percent);
    el.detail.textContent =
      `${count(progress.rows)} rows so far (${count(progress.invalid)} invalid), ` +
      `revenue so far ${money(cents(progress.revenue))}`;
  }

  function showError(message, jobId) {
    clearTimeout(state.pollTimer);
    el.errorTitle.textContent = state.fileName
      ? `The report for “${state.fileName}” could not be made`
      : "The report could not be made";
    el.errorMessage.textContent = sentence(message);
    // A job id to quote when asking for help, as Slack gives it.
    el.errorJob.textContent = jobId ? `Job ${jobId}: mention it if you ask for help.` : "";
    el.errorJob.hidden = !jobId;
    show(el.errorSection);
    el.errorSection.querySelector("button").focus();
  }

  // -- the report -----------------------------------------------------------------------------

  function showReport(job, run) {
    state.treatmentNames = job.treatment_names || {};
    const report = job.report;
    if (report.currency) state.config.currency = report.currency;
    el.reportSource.textContent =
      `From ${displayable(job.source.name)} · weeks in ${report.timezone} · amounts in ${report.currency}`;
    fillSummary(report);
    fillInvalidRows(report);
    fillWeeks(report);
    fillTypes(report);
    fillTypeWeeks(report);
    show(el.reportSection);
    el.status.textContent = "";
    document.getElementById("report-title").setAttribute("tabindex", "-1");
    document.getElementById("report-title").focus();
    loadChart(job.id, run);
    state.jobId = job.id;
    el.downloadStatus.hidden = true;
  }

  // Through fetch, like the chart, so the request can carry the access code.
  async function downloadCsv() {
    if (!state.jobId) return;
    try {
      const response = await fetch(
        "/api/jobs/" + encodeURIComponent(state.jobId) + "/weekly-report.csv",
        { headers: authHeaders() },
      );
      if (!response.ok) throw new Error("HTTP " + response.status);
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = "weekly-report.csv";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      el.downloadStatus.hidden = false;
      el.downloadStatus.textContent =
        "The CSV could not be downloaded; the tables above have every figure.";
    }
  }

  function fillSummary(report) {
    clear(el.summary);
    const weeks = report.weeks;
    const period = weeks.length
      ? weekRange(weeks[0].week_start, weeks[weeks.length - 1].week_end)
      : "no weeks";
    const items = [
      ["Total revenue", money(cents(report.revenue))],
      ["Period", period],
      ["Weeks", count(weeks.length)],
      ["Rows read", count(report.rows.total)],
      ["Invalid rows", count(report.rows.invalid)],
    ];
    for (const [term, value] of items) {
      const group = node("div");
      group.append(node("dt", term), node("dd", value));
      el.summary.append(group);
    }
  }

  function fillInvalidRows(report) {
    clear(el.invalidList);
    el.invalidRows.hidden = !report.rows.invalid;
    if (report.rows.invalid) {
      el.invalidIntro.textContent =
        `${count(report.rows.invalid)} of ${count(report.rows.total)} rows are invalid rows, left out of every figure:`;
      for (const [reason, summary] of Object.entries(report.errors)) {
        if (!summary.count) continue;
        const rows = summary.first_rows.join(", ");
        const more = summary.count > summary.first_rows.length ? ", …" : "";
        el.invalidList.append(
          node("li", `${reasonWords(reason)}: ${count(summary.count)} (spreadsheet rows ${rows}${more})`)
        );
      }
    }
    const other = report.warnings && report.warnings.revenue_on_other_event;
    el.otherRevenueNote.hidden = !other;
    if (other) {
      el.otherRevenueNote.textContent =
        `${count(other)} rows carry a revenue amount on an event other than a completed treatment; ` +
        "those amounts are not counted.";
    }
  }

  function treatmentTypes(report) {
    const totals = new Map();
    for (const week of report.weeks) {
      for (const [kind, amount] of Object.entries(week.revenue_by_treatment)) {
        totals.set(kind, (totals.get(kind) || 0) + cents(amount));
      }
    }
    return [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  }

  function headerCell(text, numeric) {
    const cell = node("th", text, numeric ? "num" : "");
    cell.scope = "col";
    return cell;
  }

  function fillWeeks(report) {
    clear(el.weeksHead);
    clear(el.weeksBody);
    clear(el.weeksFoot);
    el.weeksHead.append(
      headerCell("Week", false),
      headerCell("Revenue", true),
      headerCell("Treatments completed", true),
      headerCell("Appointments", true),
      headerCell("Bookings", true)
    );

    const sums = { treatments: 0, appointments: 0, bookings: 0 };
    for (const week of report.weeks) {
      const row = node("tr");
      row.dataset.week = week.week_start;
      const label = node("th", weekRange(week.week_start, week.week_end));
      label.scope = "row";
      row.append(
        label,
        node("td", money(cents(week.revenue)), "num"),
        node("td", count(week.treatments_completed), "num"),
        node("td", count(week.appointments), "num"),
        node("td", count(week.bookings), "num")
      );
      sums.treatments += week.treatments_completed;
      sums.appointments += week.appointments;
      sums.bookings += week.bookings;
      el.weeksBody.append(row);
    }
    const total = node("tr");
    const label = node("th", "All weeks");
    label.scope = "row";
    total.append(
      label,
      node("td", money(cents(report.revenue)), "num"),
      node("td", count(sums.treatments), "num"),
      node("td", count(sums.appointments), "num"),
      node("td", count(sums.bookings), "num")
    );
    el.weeksFoot.append(total);
  }

  function fillTypeWeeks(report) {
    const types = treatmentTypes(report);
    clear(el.typeWeeksHead);
    clear(el.typeWeeksBody);
    el.typeWeeksHead.append(headerCell("Week", false));
    for (const [kind] of types) el.typeWeeksHead.append(headerCell(treatmentName(kind), true));
    for (const week of report.weeks) {
      const row = node("tr");
      row.dataset.week = week.week_start;
      const label = node("th", weekRange(week.week_start, week.week_end));
      label.scope = "row";
      row.append(label);
      for (const [kind] of types) {
        row.append(node("td", money(cents(week.revenue_by_treatment[kind] || "0")), "num"));
      }
      el.typeWeeksBody.append(row);
    }
  }

  function fillTypes(report) {
    clear(el.typesBody);
    const totalCents = cents(report.revenue);
    for (const [kind, typeCents] of treatmentTypes(report)) {
      const row = node("tr");
      const label = node("th", treatmentName(kind));
      label.scope = "row";
      const share = totalCents ? ((typeCents / totalCents) * 100).toFixed(1) + "%" : "–";
      row.append(label, node("td", money(typeCents), "num"), node("td", share, "num"));
      el.typesBody.append(row);
    }
  }

  // The chart comes through fetch, not <img src>, so it can carry the access code.
  async function loadChart(jobId, run) {
    el.chart.hidden = true;
    el.chartStatus.hidden = false;
    el.chartStatus.textContent = "Drawing the chart…";
    try {
      const response = await fetch("/api/jobs/" + encodeURIComponent(jobId) + "/chart.png", {
        headers: authHeaders(),
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const blob = await response.blob();
      if (run !== state.run) return;
      if (state.chartUrl) URL.revokeObjectURL(state.chartUrl);
      state.chartUrl = URL.createObjectURL(blob);
      el.chart.addEventListener(
        "load",
        () => {
          el.chart.hidden = false;
          el.chartStatus.hidden = true;
        },
        { once: true }
      );
      el.chart.src = state.chartUrl;
    } catch (error) {
      if (run === state.run) el.chartStatus.textContent = "The chart could not be loaded; the tables above have every figure.";
    }
  }

  // -- start ----------------------------------------------------------------------------------

  async function start() {
    try {
      const response = await fetch("/api/config", { cache: "no-store" });
      if (response.ok) state.config = await response.json();
    } catch (error) {
      /* the defaults work; the upload itself reports what is wrong */
    }
    if (state.config.max_file_size_bytes) {
      el.fileHint.textContent = `CSV files up to ${megabytes(state.config.max_file_size_bytes)}.`;
    }
    if (needsToken()) {
      askForToken(
        "This service asks for an access code before you upload. Your administrator can give it to you.",
        null
      );
    }
    document.body.dataset.ready = "true";
  }

  start();
})();
