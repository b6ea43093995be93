// The upload page: pick or drop a CSV, upload it while the analysis shows live, then the report.
// Every value from the server or the file reaches the page through textContent, never as HTML.
// The page formats; it never sums, derives a figure or writes a sentence about the report:
// totals, changes and their direction, shares, dates and every sentence come from the server
// (the job's `display`, from processing/words.py, one home for each rule and each word).
"use strict";

(function () {
  const TOKEN_KEY = "clinic-events.upload-token";
  const POLL_MS = 1000;
  const POLL_RETRIES = 5;
  const FILE_ATTEMPTS = 60; // asked again while another instance makes it (503, Retry-After)
  const ROWS_SHOWN = 100; // per table until "Show all": 15,000 weeks must not stall the page

  const $ = (id) => document.getElementById(id);
  const el = {
    tokenSection: $("token-section"),
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
    live: $("live"),
    liveRows: $("live-rows"),
    liveRevenue: $("live-revenue"),
    liveInvalid: $("live-invalid"),
    liveLeft: $("live-left"),
    detail: $("detail"),
    errorSection: $("error-section"),
    errorTitle: $("error-title"),
    errorMessage: $("error-message"),
    errorJob: $("error-job"),
    reportSection: $("report-section"),
    reportTitle: $("report-title"),
    reportSource: $("report-source"),
    totalRevenue: $("total-revenue"),
    totalNote: $("total-note"),
    latestLabel: $("latest-label"),
    latestRevenue: $("latest-revenue"),
    latestChange: $("latest-change"),
    averageRevenue: $("average-revenue"),
    averageNote: $("average-note"),
    qualityCard: $("quality-card"),
    dataQuality: $("data-quality"),
    bestWorst: $("best-worst"),
    latestOutcomes: $("latest-outcomes"),
    dialect: $("dialect"),
    chart: $("chart"),
    chartStatus: $("chart-status"),
    downloadInvalid: $("download-invalid"),
    downloadStatus: $("download-status"),
    movers: $("movers"),
    clinicsCard: $("clinics-card"),
    clinicsHead: $("clinics-head"),
    clinicsBody: $("clinics-body"),
    clinicsMore: $("clinics-more"),
    weeksHead: $("weeks-head"),
    weeksBody: $("weeks-body"),
    weeksFoot: $("weeks-foot"),
    weeksMore: $("weeks-more"),
    typesBody: $("types-body"),
    typesMore: $("types-more"),
    invalidRows: $("invalid-rows"),
    invalidIntro: $("invalid-intro"),
    invalidList: $("invalid-list"),
    otherRevenueNote: $("other-revenue-note"),
  };

  const state = {
    config: { auth_required: false, max_file_size_bytes: null, max_file_size: null, currency: "USD" },
    afterToken: null, // what to do once an access code has been entered
    pollTimer: null,
    chartUrl: null,
    fileName: null, // the file being worked on, to name it in messages
    jobId: null, // the job being followed, then shown
    showing: false, // the report is on screen: later answers about the upload are moot
    sending: null, // the request carrying the file, to stop it when the job has failed
    run: 0, // bumps on every new upload, so answers about an older one are ignored
  };

  // -- formatting (never deriving) --------------------------------------------------------------

  function sentence(text) {
    const value = String(text || "").trim();
    if (!value) return value;
    const capital = value.charAt(0).toUpperCase() + value.slice(1);
    return /[.!?]$/.test(capital) ? capital : capital + ".";
  }

  // "1234.50" -> "$1,234.50" in the reader's locale; the string is exact, only shown.
  function money(amount) {
    if (amount === null || amount === undefined) return "–";
    const value = Number(amount);
    const currency = state.config.currency || "USD";
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(value);
    } catch {
      return amount + " " + currency;
    }
  }

  function count(value) {
    return Number(value).toLocaleString();
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : value + "%";
  }

  // The page formats two things itself, as the server would: the size of a file it is
  // sending (live, before the server has seen it) and names from the reader's own disk. Both
  // follow processing/ to the character (tests/web/test_page_rules.py holds them side by side).

  // processing/words.py file_size(): "1,023 bytes", "1.5 KB", "9.5 MB", "1,024 MB". Integer
  // steps only (bytes are whole numbers, units powers of two), so no rounding differs.
  function fileSize(bytes) {
    if (bytes < 1024) return bytes === 1 ? "1 byte" : grouped(bytes) + " bytes";
    const [unit, name] = bytes < 1048576 - 512 ? [1024, "KB"] : [1048576, "MB"];
    const tenths = Math.floor((20 * bytes + unit) / (2 * unit));
    if (tenths < 100) {
      const whole = Math.floor(tenths / 10);
      return (tenths % 10 ? `${whole}.${tenths % 10}` : `${whole}`) + " " + name;
    }
    return grouped(Math.floor((2 * bytes + unit) / (2 * unit))) + " " + name;
  }

  function grouped(whole) {
    return String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  // processing/text.py displayable(): no control or bidi characters reach the page, so
  // `evil\u202Egsj.csv` cannot pose as a PDF. Its \s is Python's: JavaScript's also holds
  // U+FEFF, which Python keeps.
  // eslint-disable-next-line no-control-regex -- control characters are what it removes
  const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g;
  const SPACES = /[^\S\uFEFF]+/g;

  function displayable(text) {
    return String(text).replace(INVISIBLE, " ").replace(SPACES, " ").trim();
  }

  window.pageRules = Object.freeze({ fileSize, displayable });

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

  function setMeter(progress, label, value) {
    if (value === null || value === undefined) {
      progress.removeAttribute("value"); // an indeterminate bar: the size is unknown
      label.textContent = "";
    } else {
      progress.value = value;
      label.textContent = Math.floor(value) + "%";
    }
  }

  // A change in words from the server ("▲ 12.5%"), coloured by the direction it comes with:
  // the arrow and the sign say it without the colour.
  function changeCell(change) {
    const cell = node("td", change.change || "–", "num");
    if (change.direction) cell.classList.add(change.direction);
    return cell;
  }

  function headerCell(text, numeric) {
    const cell = node("th", text, numeric ? "num" : "");
    cell.scope = "col";
    return cell;
  }

  function rowHeader(text) {
    const cell = node("th", text);
    cell.scope = "row";
    return cell;
  }

  // The first ROWS_SHOWN rows, then a "Show all" button for the rest: building a row is
  // cheap, building 15,000 of them before anything shows is not.
  function fillRows(body, more, total, makeRow, showAll) {
    clear(body);
    const paint = (from, to) => {
      const rows = document.createDocumentFragment();
      for (let index = from; index < to; index += 1) rows.append(makeRow(index));
      body.append(rows);
    };
    const first = Math.min(total, ROWS_SHOWN);
    paint(0, first);
    more.hidden = total <= first;
    more.onclick = null;
    if (total > first) {
      more.textContent = showAll;
      more.onclick = () => {
        more.hidden = true;
        paint(first, total);
      };
    }
  }

  // -- access code ----------------------------------------------------------------------------

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
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
    } catch {
      /* storage may be off: the code is then asked for on each visit */
    }
    state.afterToken = then;
    el.tokenMessage.textContent = message;
    el.tokenInput.value = "";
    el.tokenSection.hidden = false;
    el.uploadSection.hidden = true;
    el.progressSection.hidden = true;
    el.tokenInput.focus();
  }

  el.tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = el.tokenInput.value.trim();
    if (!value) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
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

  const REFUSED_TOKEN = "That access code was not accepted. Check it and enter it again.";

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

  for (const button of document.querySelectorAll(".downloads button[data-file]")) {
    button.addEventListener("click", () => download(button.dataset.file));
  }

  for (const button of document.querySelectorAll(".again")) {
    button.addEventListener("click", () => {
      state.run += 1;
      stopSending();
      clearTimeout(state.pollTimer);
      el.fileInput.value = "";
      show(el.uploadSection);
      el.fileInput.focus();
    });
  }

  function begin(file) {
    state.fileName = file.name;
    // Refused before a byte is sent, in the server's own words (/api/config); without them
    // the server refuses it, in the same words.
    const refusals = state.config.refusals;
    if (refusals && !/\.csv$/i.test(file.name)) {
      showError(refusals.not_csv.replace("{name}", file.name));
      return;
    }
    const limit = state.config.max_file_size_bytes;
    if (refusals && limit && file.size > limit) {
      showError(refusals.too_large.replace("{size}", fileSize(file.size)));
      return;
    }
    if (needsToken()) {
      askForToken("Enter the access code to upload the file.", () => upload(file));
      return;
    }
    upload(file);
  }

  // -- uploading ------------------------------------------------------------------------------
  // Two steps: reserve a job (its id comes back at once), then send the bytes. While they
  // travel, the job is followed, so rows and revenue show as they are read.

  async function upload(file) {
    state.run += 1;
    const run = state.run;
    clearTimeout(state.pollTimer);
    state.jobId = null;
    state.showing = false;
    el.fileName.textContent = displayable(file.name);
    setMeter(el.uploadProgress, el.uploadPercent, 0);
    setMeter(el.jobProgress, el.jobPercent, 0);
    el.live.hidden = true;
    el.status.textContent = "Starting the upload…";
    el.detail.textContent = "";
    show(el.progressSection);

    let response;
    let body;
    try {
      response = await fetch("/api/uploads", {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authHeaders() },
        body: JSON.stringify({ file_name: file.name, size_bytes: file.size }),
      });
      body = await response.json();
    } catch {
      if (run === state.run) showError("The service cannot be reached. Check the connection and try again.");
      return;
    }
    if (run !== state.run) return;
    if (response.status === 401) {
      askForToken(REFUSED_TOKEN, () => upload(file));
      return;
    }
    if (response.status !== 201 || !body.job_id) {
      showError(body.error || `The upload could not start (HTTP ${response.status}). Please try again.`);
      return;
    }
    state.jobId = body.job_id;
    send(file, body, run);
    if (body.live) {
      el.status.textContent = "Uploading; the analysis runs as the file arrives…";
      follow(body.job_id, run, 0);
    }
  }

  function send(file, reservation, run) {
    const request = new XMLHttpRequest();
    request.open("PUT", reservation.upload_url);
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.setRequestHeader("Content-Type", "text/csv");
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (run !== state.run || !event.lengthComputable) return;
      setMeter(el.uploadProgress, el.uploadPercent, (event.loaded / event.total) * 100);
      el.detail.textContent = `${fileSize(event.loaded)} of ${fileSize(event.total)} sent`;
    });
    request.addEventListener("load", () => {
      if (run !== state.run || state.showing) return;
      const body = request.response || {};
      if (request.status === 202) {
        setMeter(el.uploadProgress, el.uploadPercent, 100);
        el.detail.textContent = "";
        if (!reservation.live) {
          el.status.textContent = "Uploaded. Working out the weekly figures…";
          follow(reservation.job_id, run, 0);
        }
      } else if (request.status === 401) {
        clearTimeout(state.pollTimer);
        askForToken(REFUSED_TOKEN, () => upload(file));
      } else {
        showError(body.error || `The upload failed (HTTP ${request.status}). Please try again.`, reservation.job_id);
      }
    });
    request.addEventListener("error", () => {
      if (run !== state.run || state.showing) return;
      showError("The upload was interrupted. Check the connection and try again.", reservation.job_id);
    });
    state.sending = request;
    request.send(file);
  }

  function stopSending() {
    if (state.sending) state.sending.abort();
    state.sending = null;
  }

  // -- following the job ----------------------------------------------------------------------

  // Asked with the status last seen, the service answers as soon as it changes (or after
  // POLL_MS): a finished report shows at once, progress still every POLL_MS.
  async function follow(jobId, run, failures, seen) {
    if (run !== state.run) return;
    const asked = performance.now();
    const waiting = seen ? `?seen=${encodeURIComponent(seen)}&wait_s=${POLL_MS / 1000}` : "";
    let response;
    let job;
    try {
      response = await fetch("/api/jobs/" + encodeURIComponent(jobId) + waiting, {
        headers: authHeaders(),
        cache: "no-store",
      });
      job = await response.json();
    } catch {
      if (failures + 1 >= POLL_RETRIES) {
        showError("The service cannot be reached. Check the connection, then upload the file again.", jobId);
      } else {
        state.pollTimer = setTimeout(() => follow(jobId, run, failures + 1), POLL_MS);
      }
      return;
    }
    if (run !== state.run) return;
    if (response.status === 401) {
      askForToken(REFUSED_TOKEN, () => {
        show(el.progressSection);
        follow(jobId, run, 0);
      });
      return;
    }
    if (!response.ok) {
      showError(job.error || `The report is not available (HTTP ${response.status}). Please upload the file again.`, jobId);
      return;
    }
    if (job.status === "succeeded" && job.display === null) {
      // Stored by an earlier version of the service: its words are not this page's.
      showError(job.display_notice, job.id, job.display_notice_title);
      return;
    }
    if (job.status === "succeeded") {
      setMeter(el.jobProgress, el.jobPercent, 100);
      showReport(job, run);
      document.body.dataset.reportShown = job.id;
      return;
    }
    if (job.status === "failed") {
      showError(job.error || "The file could not be processed.", job.id);
      return;
    }
    describeProgress(job);
    // An instance that cannot wait (another one runs the job) answers at once: keep the pace.
    const pause = Math.max(0, POLL_MS - (performance.now() - asked));
    state.pollTimer = setTimeout(() => follow(jobId, run, 0, job.status), pause);
  }

  function describeProgress(job) {
    // Reserved (the bytes not sent yet) or staging (being stored first): the upload bar says it.
    if (job.status === "reserved" || job.status === "staging") return;
    if (job.status === "queued") {
      el.status.textContent = job.queue_words;
      setMeter(el.jobProgress, el.jobPercent, 0);
      return;
    }
    const progress = job.progress;
    if (!progress) return;
    el.status.textContent = "Reading the file and adding up the weeks…";
    setMeter(el.jobProgress, el.jobPercent, progress.percent);
    el.live.hidden = false;
    el.liveRows.textContent = count(progress.rows);
    el.liveRevenue.textContent = money(progress.revenue);
    el.liveInvalid.textContent = count(progress.invalid);
    el.liveLeft.textContent = progress.time_left || "–";
  }

  function showError(message, jobId, title) {
    clearTimeout(state.pollTimer);
    state.run += 1; // answers still on their way about this upload are moot
    stopSending(); // a file the job has given up on need not travel any further
    el.errorTitle.textContent = title
      ? title
      : state.fileName
        ? `The report for “${displayable(state.fileName)}” could not be made`
        : "The report could not be made";
    el.errorMessage.textContent = sentence(displayable(message));
    // A job id to quote when asking for help, as Slack gives it.
    el.errorJob.textContent = jobId ? `Job ${jobId}: mention it if you ask for help.` : "";
    el.errorJob.hidden = !jobId;
    show(el.errorSection);
    el.errorSection.querySelector("button").focus();
  }

  // -- the report -----------------------------------------------------------------------------

  function showReport(job, run) {
    state.showing = true;
    const report = job.report;
    const words = job.display;
    if (report.currency) state.config.currency = report.currency;
    el.reportSource.textContent = words.source;
    fillHeadline(report, words);
    fillClinics(report, words);
    fillWeeks(report, words);
    fillTypes(report, words);
    fillInvalidRows(words);
    el.downloadInvalid.hidden = !report.rows.invalid;
    el.downloadStatus.hidden = true;
    state.jobId = job.id;
    show(el.reportSection);
    el.status.textContent = "";
    el.reportTitle.setAttribute("tabindex", "-1");
    el.reportTitle.focus();
    loadChart(job.id, run);
  }

  function fillHeadline(report, words) {
    const headline = report.headline;
    el.totalRevenue.textContent = money(report.revenue);
    el.totalNote.textContent = words.weeks_period;
    el.latestLabel.textContent = words.latest_title;
    el.latestRevenue.textContent = money(headline.latest_revenue);
    el.latestChange.textContent = words.comparison.words;
    el.latestChange.className = ["stat-note", words.comparison.direction].filter(Boolean).join(" ");
    el.bestWorst.textContent = words.best_worst || "";
    el.latestOutcomes.textContent = words.appointments || "";
    el.averageRevenue.textContent = money(headline.average_4w_revenue);
    el.averageNote.textContent = words.average_note;
    el.dataQuality.textContent = words.data_quality;
    el.qualityCard.classList.toggle("warn", !words.data_quality_ok);
    el.qualityCard.classList.toggle("good", words.data_quality_ok);
    el.dialect.hidden = !words.dialect;
    el.dialect.textContent = words.dialect || "";
  }

  function fillClinics(report, words) {
    const clinics = report.clinics;
    el.clinicsCard.hidden = !clinics.length;
    if (!clinics.length) return;
    clear(el.movers);
    for (const line of words.movers) el.movers.append(node("p", line));
    clear(el.clinicsHead);
    el.clinicsHead.append(
      headerCell("Clinic", false),
      headerCell("Revenue", true),
      headerCell(words.clinics_week, true),
      headerCell("Change", true),
      headerCell("Treatments", true),
      headerCell("Appointments", true),
      headerCell("Cancelled", true),
      headerCell("No-shows", true)
    );
    fillRows(
      el.clinicsBody,
      el.clinicsMore,
      clinics.length,
      (at) => {
        const clinic = clinics[at];
        const row = node("tr");
        row.dataset.clinic = clinic.clinic_id;
        row.append(
          rowHeader(clinic.clinic_id),
          node("td", money(clinic.revenue), "num"),
          node("td", money(clinic.latest_week_revenue), "num"),
          changeCell(words.clinics[at]),
          node("td", count(clinic.treatments_completed), "num"),
          node("td", count(clinic.appointments), "num"),
          node("td", count(clinic.cancelled), "num"),
          node("td", count(clinic.no_show), "num")
        );
        return row;
      },
      words.show_all.clinics
    );
  }

  function fillWeeks(report, words) {
    const weeks = report.weeks;
    clear(el.weeksHead);
    el.weeksHead.append(
      headerCell("Week", false),
      headerCell("Revenue", true),
      headerCell("Change", true),
      headerCell("Treatments", true),
      headerCell("Appointments", true),
      headerCell("Bookings", true),
      headerCell("Cancelled", true),
      headerCell("Status", false)
    );
    fillRows(
      el.weeksBody,
      el.weeksMore,
      weeks.length,
      (shown) => {
        const at = weeks.length - 1 - shown; // newest first
        const week = weeks[at];
        const label = words.weeks[at];
        const row = node("tr");
        row.dataset.week = week.week_start;
        row.append(
          rowHeader(label.label),
          node("td", money(week.revenue), "num"),
          changeCell(label),
          node("td", count(week.treatments_completed), "num"),
          node("td", count(week.appointments), "num"),
          node("td", count(week.bookings), "num"),
          node("td", percent(week.cancellation_rate), "num"),
          node("td", label.status)
        );
        return row;
      },
      words.show_all.weeks
    );
    clear(el.weeksFoot);
    const totals = report.totals;
    const total = node("tr");
    total.append(
      rowHeader("All weeks"),
      node("td", money(report.revenue), "num"),
      node("td", ""),
      node("td", count(totals.treatments_completed), "num"),
      node("td", count(totals.appointments), "num"),
      node("td", count(totals.bookings), "num"),
      node("td", percent(totals.cancellation_rate), "num"),
      node("td", "")
    );
    el.weeksFoot.append(total);
  }

  function fillTypes(report, words) {
    const entries = report.totals.revenue_by_treatment;
    fillRows(
      el.typesBody,
      el.typesMore,
      entries.length,
      (at) => {
        const entry = entries[at];
        const row = node("tr");
        row.dataset.type = entry.treatment_type;
        row.append(
          rowHeader(words.treatment_names[entry.treatment_type] || entry.treatment_type),
          node("td", money(entry.revenue), "num"),
          node("td", percent(entry.share_pct), "num")
        );
        return row;
      },
      words.show_all.treatment_types
    );
  }

  function fillInvalidRows(words) {
    clear(el.invalidList);
    el.invalidRows.hidden = !words.invalid_intro && !words.other_event;
    el.invalidIntro.hidden = !words.invalid_intro;
    el.invalidIntro.textContent = words.invalid_intro || "";
    for (const line of words.invalid_reasons) el.invalidList.append(node("li", line));
    el.otherRevenueNote.hidden = !words.other_event;
    el.otherRevenueNote.textContent = words.other_event || "";
  }

  // A finished job's file, through fetch so the request can carry the access code. The files
  // are made just after the report: another instance still making them answers 503 and
  // Retry-After, and is asked again (at most FILE_ATTEMPTS times, while `stillWanted()`).
  async function fetchFile(jobId, name, stillWanted) {
    for (let attempt = 1; ; attempt++) {
      const response = await fetch("/api/jobs/" + encodeURIComponent(jobId) + "/" + name, {
        headers: authHeaders(),
      });
      if (response.status !== 503 || attempt >= FILE_ATTEMPTS || !stillWanted()) return response;
      const waitS = Number(response.headers.get("Retry-After")) || 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(waitS, 10) * 1000));
    }
  }

  async function download(name) {
    if (!state.jobId) return;
    try {
      const jobId = state.jobId;
      const response = await fetchFile(jobId, name, () => state.jobId === jobId);
      if (!response.ok) throw new Error("HTTP " + response.status);
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      el.downloadStatus.hidden = true;
    } catch {
      el.downloadStatus.hidden = false;
      el.downloadStatus.textContent = `${name} could not be downloaded; the tables below have every figure.`;
    }
  }

  // The chart comes through fetch, not <img src>, so it can carry the access code.
  async function loadChart(jobId, run) {
    el.chart.hidden = true;
    el.chartStatus.hidden = false;
    el.chartStatus.textContent = "Drawing the chart…";
    try {
      const response = await fetchFile(jobId, "chart.png", () => run === state.run);
      if (run !== state.run) return;
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
    } catch {
      if (run === state.run) el.chartStatus.textContent = "The chart could not be loaded; the tables below have every figure.";
    }
  }

  // -- start ----------------------------------------------------------------------------------

  async function start() {
    try {
      const response = await fetch("/api/config", { cache: "no-store" });
      if (response.ok) state.config = await response.json();
    } catch {
      /* the defaults work; the upload itself reports what is wrong */
    }
    if (state.config.max_file_size) {
      el.fileHint.textContent = `CSV files up to ${state.config.max_file_size}.`;
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
