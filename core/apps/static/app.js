// facepipe's web page: sends one or two photos to this server's JSON routes and draws the answer.
// Plain browser JavaScript, no framework and no build step: the file is served as it is.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    drop: $("drop"), input: $("photos"), compare: $("compare"), analyze: $("analyze"),
    access: $("access"), token: $("token"), status: $("status"), error: $("error"),
    result: $("result"), verdict: $("verdict"), figures: $("figures"),
  };

  // Keys of an analyze item that are about the face, not an attribute.
  const NOT_ATTRIBUTES = new Set(["region", "face_confidence", "is_real", "antispoof_score"]);
  const TOKEN_KEY = "facepipe-token";

  /** @type {{name: string, file: File, image: HTMLImageElement}[]} */
  let photos = [];
  // Every request takes a new number; an answer that arrives after a newer request started is dropped.
  let current = 0;

  // ---- the token (kept for this tab only) ----------------------------------------------------------
  ui.token.value = sessionStorage.getItem(TOKEN_KEY) || "";
  ui.token.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, ui.token.value.trim()));

  function authHeaders() {
    const token = ui.token.value.trim();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  // ---- choosing photos ---------------------------------------------------------------------------
  ui.input.addEventListener("change", () => {
    const files = Array.from(ui.input.files || []);
    ui.input.value = "";  // so that choosing the same file again is a change too
    choose(files);
  });
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (event) => {
      event.preventDefault();  // otherwise the browser opens the dropped file itself
      ui.drop.classList.add("dragging");
    });
  }
  document.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) ui.drop.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.drop.classList.remove("dragging");
    choose(event.dataTransfer ? event.dataTransfer.files : null);
  });
  ui.compare.addEventListener("click", () => compare());
  ui.analyze.addEventListener("click", () => analyzeAll());

  async function choose(fileList) {
    const given = Array.from(fileList || []);
    const files = given.filter((f) => f.type.startsWith("image/") || f.type === "");
    if (given.length && !files.length) {
      showError(`Not an image: ${given.map((f) => f.name).join(", ")}.`);
      return;
    }
    if (files.length === 0) return;
    if (files.length > 2) {
      showError(`Choose one photo or two (you chose ${files.length}).`);
      return;
    }
    const run = ++current;
    clearMessages();
    try {
      const loaded = await Promise.all(files.map(loadPhoto));
      if (run !== current) return;
      for (const old of photos) URL.revokeObjectURL(old.image.src);  // the old photos are drawn no more
      photos = loaded;
    } catch (err) {
      if (run === current) showError(err.message);
      return;
    }
    ui.compare.disabled = photos.length !== 2;
    ui.analyze.disabled = photos.length === 0;
    showFigures();
    if (photos.length === 2) compare();
    else analyzeAll();
  }

  function loadPhoto(file) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve({ name: file.name || "photo", file, image });
      image.onerror = () => reject(new Error(`${file.name}: the browser cannot show this file as an image.`));
      image.src = URL.createObjectURL(file);
    });
  }

  // ---- talking to the server ---------------------------------------------------------------------
  async function post(route, fields) {
    const form = new FormData();
    for (const [name, photo] of Object.entries(fields)) form.append(name, photo.file, photo.name);
    let response;
    try {
      response = await fetch(route, { method: "POST", body: form, headers: authHeaders() });
    } catch (err) {
      throw new Error(`The server did not answer (${err.message}).`);
    }
    let body = null;
    try { body = await response.json(); } catch { /* not JSON: the status line says enough */ }
    if (!response.ok) {
      if (response.status === 401) {
        ui.access.open = true;
        ui.token.focus();
        throw new Error(`This server needs an access token: enter it under "Access token". (${describe(body, response)})`);
      }
      throw new Error(`The server refused the request: ${describe(body, response)}`);
    }
    return body;
  }

  // The server's own words: its `detail`, whatever shape it has.
  function describe(body, response) {
    const detail = body && (body.detail !== undefined ? body.detail : body.error);
    let text;
    if (typeof detail === "string") text = detail;
    else if (Array.isArray(detail)) {
      text = detail.map((d) => (d && d.msg ? `${(d.loc || []).join(".")}: ${d.msg}` : JSON.stringify(d))).join("; ");
    } else if (detail) text = JSON.stringify(detail);
    else text = response.statusText || "no detail given";
    return `${text} (HTTP ${response.status})`;
  }

  async function compare() {
    if (photos.length !== 2) return;
    const run = ++current;
    begin("Comparing the two photos…");
    try {
      const result = await post("/verify", { img1: photos[0], img2: photos[1] });
      if (run !== current) return;
      showVerdict(result);
      const areas = result.facial_areas || {};
      const colour = result.verified ? "same" : "different";
      showFigures([
        [{ area: areas.img1, label: "compared face", colour }],
        [{ area: areas.img2, label: "compared face", colour }],
      ]);
      finish(result.verified ? "Done: same person." : "Done: different people.");
    } catch (err) {
      if (run === current) fail(err);
    }
  }

  async function analyzeAll() {
    if (photos.length === 0) return;
    const run = ++current;
    begin(photos.length === 1 ? "Analyzing the faces…" : "Analyzing the faces of both photos…");
    try {
      const answers = [];
      for (const photo of photos) answers.push(await post("/analyze", { img: photo }));
      if (run !== current) return;
      ui.verdict.hidden = true;
      const boxes = answers.map((answer) => (answer.results || []).map((face, k) => ({
        area: face.region, label: `${k + 1} · ${shortLabel(face)}`, colour: "face", face,
      })));
      showFigures(boxes);
      const count = boxes.reduce((n, b) => n + b.length, 0);
      finish(count ? `Done: ${count} face${count === 1 ? "" : "s"} analyzed.` : "Done: no face found.");
    } catch (err) {
      if (run === current) fail(err);
    }
  }

  // ---- attributes as words -----------------------------------------------------------------------
  // Every attribute the server sent, in its order: "age 31", "gender Woman (97 %)", ...
  function attributes(face) {
    const out = [];
    for (const [key, value] of Object.entries(face)) {
      if (NOT_ATTRIBUTES.has(key)) continue;
      if (key.startsWith("dominant_")) {
        const name = key.slice("dominant_".length);
        const scores = face[name];
        const share = scores && typeof scores === "object" ? scores[value] : undefined;
        out.push({ name, value: String(value), detail: typeof share === "number" ? `${share.toFixed(0)} %` : "" });
      } else if (typeof value === "number") {
        out.push({ name: key, value: key === "age" ? value.toFixed(0) : value.toFixed(2), detail: "" });
      } else if (typeof value === "string" || typeof value === "boolean") {
        out.push({ name: key, value: String(value), detail: "" });
      }
      // Score tables (objects) are shown through their dominant_ key.
    }
    return out;
  }

  function shortLabel(face) {
    const parts = attributes(face).map((a) => (a.name === "age" ? `age ${a.value}` : a.value));
    return parts.join(" · ") || "face";
  }

  // ---- drawing -----------------------------------------------------------------------------------
  const COLOURS = { same: "#1a7f37", different: "#c2410c", face: "#1d4ed8", plain: "#1d4ed8" };

  /** boxesPerPhoto[i]: [{area: {x, y, w, h}, label, colour, face?}] for photos[i]. */
  function showFigures(boxesPerPhoto = []) {
    ui.result.hidden = false;
    ui.figures.replaceChildren(...photos.map((photo, i) => figure(photo, boxesPerPhoto[i] || [])));
  }

  function figure(photo, boxes) {
    const fig = document.createElement("figure");
    fig.className = "photo";
    const canvas = document.createElement("canvas");
    const { naturalWidth: width, naturalHeight: height } = photo.image;
    canvas.width = width;
    canvas.height = height;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `${photo.name}${boxes.length ? `, ${boxes.length} face${boxes.length === 1 ? "" : "s"} outlined` : ""}`);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(photo.image, 0, 0);
    // Line and text sizes follow the photo's size, so boxes look alike on small and large photos.
    const unit = Math.max(2, Math.round(Math.min(width, height) / 160));
    for (const box of boxes) if (box.area) drawBox(ctx, box, unit, width);
    const caption = document.createElement("figcaption");
    caption.textContent = photo.name;
    fig.append(canvas, caption);
    const faces = boxes.filter((b) => b.face);
    if (faces.length) fig.append(faceList(faces));
    return fig;
  }

  function drawBox(ctx, box, unit, width) {
    const { x, y, w, h } = box.area;
    const colour = COLOURS[box.colour] || COLOURS.plain;
    ctx.lineWidth = unit;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    if (!box.label) return;
    const size = Math.max(12, unit * 6);
    ctx.font = `600 ${size}px system-ui, sans-serif`;
    const textWidth = ctx.measureText(box.label).width;
    const pad = Math.round(size / 4);
    const labelHeight = size + 2 * pad;
    const left = Math.max(0, Math.min(x - unit / 2, width - textWidth - 2 * pad));
    // Above the box when there is room, inside its top edge otherwise.
    const top = y - labelHeight >= 0 ? y - labelHeight : y;
    ctx.fillStyle = colour;
    ctx.fillRect(left, top, textWidth + 2 * pad, labelHeight);
    ctx.fillStyle = "#ffffff";
    ctx.textBaseline = "top";
    ctx.fillText(box.label, left + pad, top + pad);
  }

  // The same labels as text, for screen readers and for copying.
  function faceList(boxes) {
    const list = document.createElement("ol");
    list.className = "faces";
    for (const box of boxes) {
      const item = document.createElement("li");
      const attrs = attributes(box.face);
      if (!attrs.length) item.textContent = "no attributes returned";
      for (const a of attrs) {
        const span = document.createElement("span");
        span.className = "attr";
        span.dataset.attribute = a.name;
        span.textContent = `${a.name}: ${a.value}${a.detail ? ` (${a.detail})` : ""}`;
        item.append(span);
      }
      list.append(item);
    }
    return list;
  }

  function showVerdict(result) {
    const same = Boolean(result.verified);
    const rows = [
      ["distance", number(result.distance, 4)],
      ["threshold", number(result.threshold, 4)],
      ["confidence", typeof result.confidence === "number" ? `${result.confidence.toFixed(1)} %` : "–"],
      ["metric", result.similarity_metric],
      ["model", result.model],
      ["detector", result.detector_backend],
      ["time", typeof result.time === "number" ? `${result.time.toFixed(2)} s` : "–"],
    ];
    const title = document.createElement("p");
    title.className = "verdict-text";
    title.textContent = same ? "Same person" : "Different people";
    const list = document.createElement("dl");
    list.className = "numbers";
    for (const [name, value] of rows) {
      const row = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = name;
      dd.textContent = value === undefined || value === null ? "–" : String(value);
      dd.dataset.field = name;
      row.append(dt, dd);
      list.append(row);
    }
    ui.verdict.className = `verdict ${same ? "same" : "different"}`;
    ui.verdict.replaceChildren(title, list);
    ui.verdict.hidden = false;
  }

  function number(value, digits) {
    return typeof value === "number" ? value.toFixed(digits) : "–";
  }

  // ---- status and errors -------------------------------------------------------------------------
  function clearMessages() {
    ui.error.hidden = true;
    ui.error.textContent = "";
    ui.status.textContent = "";
  }

  function begin(message) {
    clearMessages();
    ui.verdict.hidden = true;
    ui.result.setAttribute("aria-busy", "true");
    document.body.classList.add("busy");
    ui.status.textContent = message;
  }

  function finish(message) {
    ui.result.removeAttribute("aria-busy");
    document.body.classList.remove("busy");
    ui.status.textContent = message;
  }

  function fail(err) {
    finish("");
    showFigures();  // the photos without boxes: old boxes would belong to another answer
    showError(err.message);
  }

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = false;
  }
})();
