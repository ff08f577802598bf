// ltxserve playground: plain ES module, no build step.
// Talks to the same server that serves it, with relative URLs (works behind a path prefix).

const KEY_STORE = "ltxserve.playground.apiKey";
const JOBS_STORE = "ltxserve.playground.jobs";
const MAX_JOBS = 100;
const POLL_MS = 1000;          // your own server: progress every second, not the hosted 5 s
const TICK_MS = 250;           // how often due polls are looked for
const MAX_BACKOFF_MS = 30000;
const TERMINAL = new Set(["completed", "failed", "gone"]);

// ---------------------------------------------------------------- contract data

const CAMERA_MOTIONS = ["dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up",
  "jib_down", "static", "focus_shift"];
const LANDSCAPE_PORTRAIT = ["1920x1080", "1080x1920"];
const REFRAME_RESOLUTIONS = ["720x720", "1080x1080", "720x900", "1080x1350", "900x720",
  "1350x1080", "720x1280", "1080x1920", "1280x720", "1920x1080"];
const ACCEPT = {
  image: "image/png,image/jpeg,image/webp,.png,.jpg,.jpeg,.webp",
  video: "video/mp4,video/quicktime,video/x-matroska,.mp4,.mov,.mkv",
  audio: "audio/wav,audio/x-wav,audio/mpeg,audio/mp4,audio/x-m4a,audio/ogg,.wav,.mp3,.m4a,.ogg",
};

// Used only if /web/models.json cannot be read (the server's table is the authority).
const FALLBACK_MODELS = {
  "ltx-2-3-fast": {
    endpoints: ["text-to-video", "image-to-video"], auto_duration: false, status: "current",
    rules: [
      { resolutions: ["1280x720", "720x1280", "1920x1080", "1080x1920"], fps: [24, 25],
        durations: [2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20] },
      { resolutions: ["1280x720", "720x1280", "1920x1080", "1080x1920", "2560x1440",
        "1440x2560", "3840x2160", "2160x3840"], fps: [24, 25, 48, 50],
        durations: [2, 3, 4, 5, 6, 8, 10] },
    ],
  },
  "ltx-2-3-pro": {
    endpoints: ["text-to-video", "image-to-video", "audio-to-video", "retake", "extend",
      "video-to-video-hdr", "video-to-video-reframe"], auto_duration: false, status: "current",
    rules: [{ resolutions: ["1280x720", "720x1280", "1920x1080", "1080x1920", "2560x1440",
      "1440x2560", "3840x2160", "2160x3840"], fps: [24, 25, 48, 50],
      durations: [2, 3, 4, 5, 6, 8, 10] }],
  },
};

const PROMPT = (required, hint) => ({ name: "prompt", label: "Prompt", kind: "textarea",
  required, maxlength: 5000, hint });

// Field kinds: textarea, text, number, select, checkbox, media, model, resolution, fps, duration.
// text-to-video's fields; image-to-video has the same between its two images
const GENERATION_FIELDS = [
      PROMPT(true),
      { name: "model", label: "Model", kind: "model", required: true },
      { name: "resolution", label: "Resolution", kind: "resolution", required: true },
      { name: "fps", label: "Frame rate (fps)", kind: "fps" },
      { name: "duration", label: "Duration (seconds)", kind: "duration", required: true },
      { name: "generate_audio", label: "Generate audio", kind: "checkbox", default: true },
      { name: "camera_motion", label: "Camera motion", kind: "select", options: CAMERA_MOTIONS,
        blank: "(none)" },
];

const ENDPOINTS = {
  "text-to-video": {
    hint: "Generate a video (with audio) from a text prompt.",
    fields: GENERATION_FIELDS,
  },
  "image-to-video": {
    hint: "Animate an image (the first frame), optionally towards a last frame.",
    fields: [
      { name: "image_uri", label: "First frame image", kind: "media", media: "image", required: true },
      ...GENERATION_FIELDS,
      { name: "last_frame_uri", label: "Last frame image (optional)", kind: "media", media: "image",
        hint: "LTX-2.3 models only." },
    ],
  },
  "audio-to-video": {
    hint: "Make a video for 2–20 s of audio; give a prompt, an image, or both.",
    fields: [
      { name: "audio_uri", label: "Audio", kind: "media", media: "audio", required: true,
        hint: "2–20 seconds (2–10 s at 1440p and 4K); the video follows its length (25 fps)." },
      PROMPT(false, "Required when no image is given."),
      { name: "image_uri", label: "First frame image (optional)", kind: "media", media: "image" },
      { name: "resolution", label: "Resolution", kind: "select", options: LANDSCAPE_PORTRAIT,
        hint: "Default: from the image's orientation, else landscape." },
      { name: "guidance_scale", label: "Guidance scale", kind: "number", min: 1, max: 50,
        step: "any", hint: "1–50; default 5, or 9 with an image." },
      { name: "model", label: "Model", kind: "model" },
    ],
  },
  retake: {
    hint: "Regenerate a section of a video (audio, video or both).",
    fields: [
      { name: "video_uri", label: "Video", kind: "media", media: "video", required: true,
        hint: "At most 3840x2160 and at least 73 frames." },
      PROMPT(false, "What happens in the regenerated section."),
      { name: "start_time", label: "Section start (seconds)", kind: "number", min: 0, step: "any",
        required: true, default: 0 },
      { name: "duration", label: "Section duration (seconds)", kind: "number", min: 2, step: "any",
        required: true, default: 2 },
      { name: "mode", label: "Mode", kind: "select",
        options: ["replace_audio", "replace_video", "replace_audio_and_video"],
        hint: "Default: replace_audio_and_video." },
      { name: "resolution", label: "Resolution", kind: "select", options: LANDSCAPE_PORTRAIT,
        hint: "Default: 1080x1920 for a portrait video, else 1920x1080." },
      { name: "model", label: "Model", kind: "model" },
    ],
  },
  extend: {
    hint: "Continue a video at its end (or lead into its start).",
    fields: [
      { name: "video_uri", label: "Video", kind: "media", media: "video", required: true,
        hint: "16:9 or 9:16, at most 4K, at least 73 frames." },
      PROMPT(false, "What happens in the new part."),
      { name: "duration", label: "Extension (seconds)", kind: "number", min: 2, max: 20,
        step: "any", required: true, default: 4 },
      { name: "mode", label: "Where", kind: "select", options: ["end", "start"],
        hint: "Default: end." },
      { name: "context", label: "Context (seconds, optional)", kind: "number", min: 1, max: 20,
        step: "any", hint: "Input seconds used as context; context + extension ≤ 505 frames." },
      { name: "model", label: "Model", kind: "model" },
    ],
  },
  "video-to-video-hdr": {
    hint: "Turn an SDR video into HDR: a ZIP of EXR frames (scene-linear half float).",
    fields: [
      { name: "video_uri", label: "Video", kind: "media", media: "video", required: true,
        hint: "Up to 181 frames at ≤1080p, 101 at ≤1440p, 41 at ≤4K." },
    ],
  },
  "video-to-video-reframe": {
    hint: "Outpaint a video to a new aspect ratio.",
    fields: [
      { name: "video_uri", label: "Video", kind: "media", media: "video", required: true,
        hint: "At most 60 s and 1800 frames." },
      { name: "model", label: "Model", kind: "model", required: true },
      { name: "resolution", label: "Target resolution", kind: "select", required: true,
        options: REFRAME_RESOLUTIONS, default: "1920x1080" },
    ],
  },
};

// ---------------------------------------------------------------- small helpers

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(c);
  }
  return node;
}

function loadJSON(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch {
    return fallback;
  }
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function formatAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min ago`;
  return `${Math.floor(h / 24)} d ago`;
}

function resolutionOrder(a, b) {
  const [aw, ah] = a.split("x").map(Number);
  const [bw, bh] = b.split("x").map(Number);
  return aw * ah - bw * bh || (aw >= ah ? -1 : 1) - (bw >= bh ? -1 : 1);
}

const shortId = (id) => String(id).slice(0, 8);
const article = (word) => (/^[aeiou]/i.test(word) ? "an" : "a");

class ApiError extends Error {
  constructor(status, type, message, retryAfter) {
    super(message);
    this.status = status;
    this.type = type;
    this.retryAfter = retryAfter;
  }

  get readable() {
    if (this.status === 0) return this.message;
    return `${this.message} (HTTP ${this.status}, ${this.type})`;
  }
}

function errorFromBody(status, statusText, text, retryAfter) {
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  const err = (data && data.error) || {};
  return new ApiError(status, err.type || "http_error",
    err.message || `${status} ${statusText || "error"}`.trim(), retryAfter);
}

// ---------------------------------------------------------------- API access

let apiKey = localStorage.getItem(KEY_STORE) || "";

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${apiKey}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network_error", `Could not reach the server (${e.message}).`);
  }
  const text = await resp.text();
  if (!resp.ok) {
    throw errorFromBody(resp.status, resp.statusText, text, resp.headers.get("Retry-After"));
  }
  return text ? JSON.parse(text) : null;
}

// Headers a browser will not let a page set; the browser supplies them itself.
const FORBIDDEN_HEADERS = new Set(["content-length", "host", "connection", "expect",
  "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]);

function putFile(url, headers, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [k, v] of Object.entries(headers || {})) {
      if (!FORBIDDEN_HEADERS.has(k.toLowerCase())) xhr.setRequestHeader(k, v);
    }
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(errorFromBody(xhr.status, xhr.statusText, xhr.responseText));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError(0, "network_error", "The upload failed (network error).")));
    xhr.send(file);
  });
}

async function uploadFile(file, onProgress) {
  const slot = await api("POST", "v1/upload");
  await putFile(slot.upload_url, slot.required_headers, file, onProgress);
  return slot.storage_uri;
}

// ---------------------------------------------------------------- model table

let catalog = FALLBACK_MODELS;

function modelsFor(endpoint) {
  return Object.entries(catalog)
    .filter(([, m]) => (m.endpoints || []).includes(endpoint))
    .map(([name, m]) => ({ name, deprecated: m.status === "deprecated" }));
}

function rulesOf(model) {
  return (catalog[model] && catalog[model].rules) || [];
}

// ---------------------------------------------------------------- the job form

const forms = {};  // endpoint -> {fieldset, inputs: {name: element}, field specs}
let pendingUploads = 0;

function setOptions(select, values, { keep = true, preferred, blank, labels = {} } = {}) {
  const previous = select.value;
  select.replaceChildren();
  if (blank) select.append(el("option", { value: "", text: blank }));
  for (const v of values) select.append(el("option", { value: v, text: labels[v] || String(v) }));
  const strValues = values.map(String);
  if (keep && strValues.includes(previous)) select.value = previous;
  else if (preferred !== undefined && strValues.includes(String(preferred))) {
    select.value = String(preferred);
  } else if (blank) select.value = "";
  else if (values.length) select.value = String(values[0]);
}

// text/image-to-video: offer only what the chosen model accepts (resolution -> fps -> duration).
function refreshCombination(form) {
  const { inputs } = form;
  const features = inputs.model && catalog[inputs.model.value];
  if (features && inputs.camera_motion) {  // LTX-2.5 Fast takes no camera motion
    const ok = features.camera_motion !== false;
    inputs.camera_motion.disabled = !ok;
    if (!ok) inputs.camera_motion.value = "";
  }
  if (features && features.audio_rules && inputs.audio_uri && inputs.resolution) {
    // audio-to-video: the resolutions this model renders to (audio up to 10 s at 1440p/4K)
    const res = [...new Set(features.audio_rules.flatMap((r) => r.resolutions))]
      .sort(resolutionOrder);
    setOptions(inputs.resolution, res, { blank: "(server default)" });
  }
  if (!inputs.resolution || !inputs.fps || !inputs.duration) return;
  const model = inputs.model.value;
  const rules = rulesOf(model);
  const resolutions = [...new Set(rules.flatMap((r) => r.resolutions))].sort(resolutionOrder);
  setOptions(inputs.resolution, resolutions, { preferred: "1280x720" });
  const res = inputs.resolution.value;
  const resRules = rules.filter((r) => r.resolutions.includes(res));
  const fps = [...new Set(resRules.flatMap((r) => r.fps))].sort((a, b) => a - b);
  setOptions(inputs.fps, fps, { preferred: 24 });
  const f = Number(inputs.fps.value);
  const durations = [...new Set(resRules.filter((r) => r.fps.includes(f))
    .flatMap((r) => r.durations))].sort((a, b) => a - b);
  const auto = catalog[model] && catalog[model].auto_duration;
  const values = auto ? ["auto", ...durations] : durations;
  setOptions(inputs.duration, values, { preferred: 5, labels: { auto: "automatic" } });
}

function buildField(endpoint, spec, form) {
  const id = `f-${endpoint}-${spec.name}`;
  const hintId = spec.hint ? `${id}-hint` : undefined;
  const common = { id, name: spec.name, required: spec.required, "aria-describedby": hintId };
  const label = el("label", { for: id }, spec.label,
    spec.required ? el("span", { class: "req", "aria-hidden": "true", text: " *" }) : null);
  const hint = spec.hint ? el("p", { id: hintId, class: "hint", text: spec.hint }) : null;
  let input;
  let extra = null;

  switch (spec.kind) {
    case "textarea":
      input = el("textarea", { ...common, rows: 3, maxlength: spec.maxlength });
      break;
    case "number":
      input = el("input", { ...common, type: "number", inputmode: "decimal", min: spec.min,
        max: spec.max, step: spec.step, value: spec.default });
      break;
    case "checkbox": {
      input = el("input", { ...common, type: "checkbox", required: false });
      input.checked = spec.default !== false;
      const row = el("div", { class: "field checkbox" }, input, label, hint);
      form.inputs[spec.name] = input;
      return row;
    }
    case "select":
      input = el("select", common);
      setOptions(input, spec.options, { keep: false, preferred: spec.default,
        blank: spec.required ? undefined : spec.blank || "(server default)" });
      break;
    case "model": {
      input = el("select", common);
      const models = modelsFor(endpoint);
      const labels = Object.fromEntries(models.map((m) =>
        [m.name, m.deprecated ? `${m.name} (deprecated)` : m.name]));
      setOptions(input, models.map((m) => m.name), { keep: false, labels,
        preferred: ["text-to-video", "image-to-video"].includes(endpoint) ? undefined
          : "ltx-2-3-pro" });
      input.addEventListener("change", () => refreshCombination(form));
      break;
    }
    case "resolution":
    case "fps":
      input = el("select", common);
      input.addEventListener("change", () => refreshCombination(form));
      break;
    case "duration":
      input = el("select", common);
      break;
    case "media": {
      input = el("input", { ...common, type: "text", inputmode: "url", autocomplete: "off",
        spellcheck: "false", placeholder: "https://…, data:… or ltx://…" });
      extra = buildUploader(id, spec, input);
      break;
    }
    default:
      input = el("input", { ...common, type: "text" });
  }
  form.inputs[spec.name] = input;
  return el("div", { class: `field field-${spec.kind}` }, label, input, hint, extra);
}

function buildUploader(id, spec, target) {
  const fileId = `${id}-file`;
  const statusId = `${id}-upload-status`;
  const fileInput = el("input", { id: fileId, type: "file", accept: ACCEPT[spec.media],
    "aria-describedby": statusId });
  const bar = el("progress", { max: 1, value: 0, hidden: true,
    "aria-label": `Upload progress: ${spec.label}` });
  const status = el("p", { id: statusId, class: "status", role: "status", "aria-live": "polite" });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files && fileInput.files[0];
    if (!file) return;
    if (!apiKey) {
      status.textContent = "Save your API key first, then choose the file again.";
      status.className = "status bad";
      fileInput.value = "";
      return;
    }
    pendingUploads += 1;
    status.className = "status";
    status.textContent = `Uploading ${file.name} (${formatBytes(file.size)})…`;
    bar.hidden = false;
    bar.value = 0;
    try {
      const uri = await uploadFile(file, (f) => { bar.value = f; });
      target.value = uri;
      status.className = "status ok";
      status.textContent = `Uploaded ${file.name}; the field now holds its storage URI.`;
    } catch (e) {
      status.className = "status bad";
      status.textContent = `Upload of ${file.name} failed: ${e.readable || e.message}`;
    } finally {
      pendingUploads -= 1;
      bar.hidden = true;
    }
  });
  return el("div", { class: "uploader" },
    el("label", { for: fileId, class: "file-label" }, `…or upload ${article(spec.media)} ${spec.media} file`),
    fileInput, bar, status);
}

function buildForms() {
  const select = $("#endpoint");
  const container = $("#endpoint-fields");
  container.replaceChildren();
  for (const [endpoint, def] of Object.entries(ENDPOINTS)) {
    if (!select.querySelector(`option[value="${endpoint}"]`)) {
      select.append(el("option", { value: endpoint, text: endpoint }));
    }
    const form = { endpoint, def, inputs: {} };
    const fieldset = el("fieldset", { class: "endpoint-fields", "data-endpoint": endpoint },
      el("legend", { class: "visually-hidden", text: `${endpoint} parameters` }),
      def.fields.map((spec) => buildField(endpoint, spec, form)));
    form.fieldset = fieldset;
    forms[endpoint] = form;
    refreshCombination(form);
    container.append(fieldset);
  }
}

function showEndpoint(endpoint) {
  if (!forms[endpoint]) endpoint = "text-to-video";
  $("#endpoint").value = endpoint;
  $("#endpoint-hint").textContent = ENDPOINTS[endpoint].hint;
  for (const [name, form] of Object.entries(forms)) {
    const active = name === endpoint;
    form.fieldset.hidden = !active;
    form.fieldset.disabled = !active;  // hidden required fields must not block submission
  }
}

function collect(form) {
  const body = {};
  for (const spec of form.def.fields) {
    const input = form.inputs[spec.name];
    if (spec.kind === "checkbox") {
      body[spec.name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") continue;  // optional and empty: let the server apply its default
    if (spec.kind === "duration") body[spec.name] = raw === "auto" ? null : Number(raw);
    else if (spec.kind === "fps" || spec.kind === "number") body[spec.name] = Number(raw);
    else body[spec.name] = spec.kind === "textarea" ? input.value : raw;
  }
  return body;
}

function summarize(endpoint, body) {
  const parts = [];
  if (body.model) parts.push(body.model);
  if (body.resolution) parts.push(body.resolution);
  if (typeof body.duration === "number") parts.push(`${body.duration} s`);
  if (body.fps) parts.push(`${body.fps} fps`);
  if (body.mode) parts.push(body.mode);
  const prompt = typeof body.prompt === "string" ? body.prompt.trim() : "";
  return { line: parts.join(" · "),
    prompt: prompt.length > 140 ? `${prompt.slice(0, 140)}…` : prompt };
}

function showFormError(message) {
  const box = $("#form-error");
  box.textContent = message;
  box.hidden = !message;
}

async function onSubmitJob(event) {
  event.preventDefault();
  const endpoint = $("#endpoint").value;
  const form = forms[endpoint];
  const status = $("#submit-status");
  showFormError("");
  if (!apiKey) {
    showFormError("Enter and save your API key first.");
    $("#api-key").focus();
    return;
  }
  if (pendingUploads > 0) {
    showFormError("Wait for the upload to finish, then submit again.");
    return;
  }
  const body = collect(form);
  $("#request-json").textContent = `POST /v2/${endpoint}\n${JSON.stringify(body, null, 2)}`;
  const button = $("#submit-job");
  button.disabled = true;
  status.textContent = "Submitting…";
  try {
    const created = await api("POST", `v2/${endpoint}`, body);
    addJob({ id: created.id, endpoint, created_at: created.created_at, status: "pending",
      summary: summarize(endpoint, body) });
    status.textContent = `Submitted ${endpoint} job ${shortId(created.id)}.`;
  } catch (e) {
    status.textContent = "";
    showFormError(`The server rejected the job: ${e.readable}`);
    if (e.status === 401) $("#key-status").textContent = "The server did not accept this key.";
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- jobs

let jobs = loadJSON(JOBS_STORE, []).filter((j) => j && j.id && ENDPOINTS[j.endpoint]);
const cards = new Map();   // id -> {li, parts…}
const pollState = new Map();  // id -> {next, backoff, inflight}
let authBlocked = false;

function saveJobs() {
  try {
    localStorage.setItem(JOBS_STORE, JSON.stringify(jobs.slice(0, MAX_JOBS)));
  } catch { /* storage full or disabled: the list still works for this page */ }
}

function announce(text) {
  const node = el("p", { text });
  const region = $("#announcer");
  region.append(node);
  while (region.childNodes.length > 5) region.firstChild.remove();
}

function addJob(job) {
  jobs.unshift(job);
  jobs = jobs.slice(0, MAX_JOBS);
  saveJobs();
  pollState.set(job.id, { next: Date.now() + 300, backoff: POLL_MS, inflight: false });
  renderJobs();
}

// The server's own list of this key's jobs (GET /v2/jobs, an ltxserve extension):
// jobs submitted from another browser, the SDK or the CLI join the list. A server
// without it (404) leaves the list to this browser's memory.
async function loadServerJobs() {
  if (!apiKey) return;
  let page;
  try {
    page = await api("GET", "v2/jobs?limit=50");
  } catch { return; }
  const known = new Set(jobs.map((j) => j.id));
  let added = 0;
  for (const item of page.data || []) {
    if (known.has(item.id) || !ENDPOINTS[item.endpoint]) continue;
    jobs.push({ id: item.id, endpoint: item.endpoint, created_at: item.created_at,
      status: item.status, progress: item.progress, completed_at: item.completed_at,
      result: item.result, error: item.error, engine: item.engine, listed: true });
    added += 1;
  }
  if (!added) return;
  jobs.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  jobs = jobs.slice(0, MAX_JOBS);
  saveJobs();
  renderJobs();
}

function removeJob(id) {
  const index = jobs.findIndex((j) => j.id === id);
  jobs = jobs.filter((j) => j.id !== id);
  pollState.delete(id);
  saveJobs();
  renderJobs();
  // Keep keyboard users in place: focus the next job's remove button, else the heading.
  const next = jobs[Math.min(index, jobs.length - 1)];
  const target = next && cards.get(next.id);
  (target ? target.remove : $("#jobs-heading")).focus();
}

function buildCard(job) {
  const statusBadge = el("span", { class: "badge" });
  const engine = el("span", { class: "engine-tag", hidden: true });
  const age = el("span", { class: "age" });
  const progress = el("progress", { max: 1, "aria-label": `Progress of job ${shortId(job.id)}` });
  const progressText = el("span", { class: "progress-text" });
  const result = el("div", { class: "job-result" });
  const error = el("p", { class: "job-error", hidden: true });
  const remove = el("button", { type: "button", class: "secondary small",
    "aria-label": `Remove ${job.endpoint} job ${shortId(job.id)} from the list`,
    onclick: () => removeJob(job.id) }, "Remove");
  const cancel = el("button", { type: "button", class: "secondary small",
    "aria-label": `Cancel ${job.endpoint} job ${shortId(job.id)}`,
    onclick: () => cancelJob(job, cancel) }, "Cancel");
  const summary = job.summary || {};
  const li = el("li", { class: "job", "data-job-id": job.id },
    el("div", { class: "job-head" },
      el("h3", { class: "job-endpoint", text: job.endpoint }), engine, statusBadge),
    el("p", { class: "job-meta" },
      el("code", { class: "job-id", title: job.id, text: shortId(job.id) }), " · ", age,
      summary.line ? ` · ${summary.line}` : ""),
    summary.prompt ? el("p", { class: "job-prompt", text: summary.prompt }) : null,
    el("div", { class: "job-progress" }, progress, progressText),
    error, result,
    el("div", { class: "job-actions" }, cancel, remove));
  return { li, statusBadge, engine, age, progress, progressText, result, error, remove,
    cancel, shown: "" };
}

function resultLabel(label) {
  if (label === "video_url") return "Download MP4";
  if (label === "exr_frames_url") return "Download EXR frames (ZIP)";
  return `Download ${label.replace(/_url$/, "").replace(/_/g, " ")}`;
}

function renderResult(card, job) {
  const key = JSON.stringify(job.result || {});
  if (card.shown === key) return;  // never rebuild a playing video
  card.shown = key;
  card.result.replaceChildren();
  for (const [label, url] of Object.entries(job.result || {})) {
    const isVideo = label === "video_url" || /\.(mp4|mov|webm)(\?|$)/.test(url);
    if (isVideo) {
      card.result.append(el("video", { controls: true, preload: "metadata", playsinline: true,
        src: url, "aria-label": `Result of ${job.endpoint} job ${shortId(job.id)}` }));
    }
    card.result.append(el("a", { class: "download", href: url, download: "",
      "data-label": label }, resultLabel(label)));
  }
}

// Cancel (docs/api.md "Cancel", an ltxserve extension): DELETE answers the job's status
// object, failed with cancelled_error; a job that ended meanwhile answers 409, and the
// card then shows what the next poll says.
async function cancelJob(job, button) {
  button.disabled = true;
  try {
    const body = await api("DELETE", `v2/${job.endpoint}/${job.id}`);
    applyStatus(job, body, pollState.get(job.id) || { next: 0, backoff: POLL_MS });
    saveJobs();
    renderJobs();
  } catch (e) {
    announce(`Could not cancel ${job.endpoint} job ${shortId(job.id)}: ${e.message}`);
    job.refresh = true;
    button.disabled = false;
  }
}

function updateCard(card, job) {
  card.cancel.hidden = TERMINAL.has(job.status) || job.status === "gone";
  const status = job.status === "gone" ? "expired" : job.status;
  card.li.dataset.status = status;
  card.statusBadge.textContent = status;
  card.statusBadge.className = `badge badge-${status}`;
  card.age.textContent = formatAge(Date.now() - Date.parse(job.created_at));
  card.age.title = job.created_at;
  // progress counts only while processing: a pending job's 0 still reads "queued"
  const p = job.status === "completed" ? 1
    : job.status === "processing" && typeof job.progress === "number" ? job.progress : null;
  card.progress.hidden = TERMINAL.has(job.status) && job.status !== "completed";
  if (p === null) {
    card.progress.removeAttribute("value");  // indeterminate
    card.progressText.textContent = job.status === "pending" ? "queued" : "";
  } else {
    card.progress.value = p;
    card.progressText.textContent = `${Math.round(p * 100)}%`;
  }
  if (job.status === "failed" || job.status === "gone") {
    card.error.hidden = false;
    card.error.textContent = job.status === "gone"
      ? "The server no longer knows this job (expired after 24 h, or submitted with another key)."
      : `${job.error && job.error.message ? job.error.message : "Generation failed."}` +
        (job.error && job.error.type ? ` (${job.error.type})` : "");
  } else {
    card.error.hidden = true;
  }
  card.engine.hidden = !job.engine;
  card.engine.textContent = job.engine ? `${job.engine} engine` : "";
  card.engine.title = NOT_A_MODEL.has(job.engine)
    ? "Made by a stand-in, not a generative model: pictures are procedural." : "";
  if (job.status === "completed") renderResult(card, job);
}

function renderJobs() {
  const list = $("#job-list");
  const seen = new Set();
  jobs.forEach((job, index) => {
    let card = cards.get(job.id);
    if (!card) {
      card = buildCard(job);
      cards.set(job.id, card);
    }
    seen.add(job.id);
    updateCard(card, job);
    if (list.children[index] !== card.li) list.insertBefore(card.li, list.children[index] || null);
  });
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.li.remove();
      cards.delete(id);
    }
  }
  $("#jobs-empty").hidden = jobs.length > 0;
  $("#clear-finished").disabled = !jobs.some((j) => TERMINAL.has(j.status));
}

// Live events (docs/api.md "Live events"): a running job's status objects arrive on one
// streamed response, read with fetch() (EventSource cannot send the key). A server
// without the route (404/405 while the job itself answers) is polled instead.
let liveEvents = true;

function applyStatus(job, body, state) {
  const before = job.status;
  Object.assign(job, { status: body.status, progress: body.progress,
    completed_at: body.completed_at, result: body.result, error: body.error,
    engine: body.engine });
  job.refresh = false;
  state.backoff = POLL_MS;
  state.next = Date.now() + POLL_MS;
  if (before !== job.status) {
    const extra = job.status === "failed" && job.error ? `: ${job.error.message}` : "";
    announce(`${job.endpoint} job ${shortId(job.id)} is ${job.status}${extra}.`);
  }
}

// Follow the job's event stream to its end; false when the server has no stream for it.
async function follow(job, state) {
  let resp;
  try {
    resp = await fetch(`v2/${job.endpoint}/${job.id}/events`, { cache: "no-store",
      headers: { Authorization: `Bearer ${apiKey}`, Accept: "text/event-stream" } });
  } catch (e) {
    throw new ApiError(0, "network_error", `Could not reach the server (${e.message}).`);
  }
  if (resp.status === 404 || resp.status === 405) return false;
  if (!resp.ok || !resp.body) {
    throw errorFromBody(resp.status, resp.statusText, await resp.text(),
      resp.headers.get("Retry-After"));
  }
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return true;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const data = lines.filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue;
      applyStatus(job, JSON.parse(data), state);
      saveJobs();
      renderJobs();
    }
  }
}

async function poll(job) {
  const state = pollState.get(job.id);
  state.inflight = true;
  try {
    let noStream = false;
    if (liveEvents && !TERMINAL.has(job.status) && !job.refresh) {
      if (await follow(job, state)) {
        state.next = Date.now();  // ended early (server restarting)? the next tick reopens
        return;
      }
      noStream = true;
    }
    const body = await api("GET", `v2/${job.endpoint}/${job.id}`);
    if (noStream) liveEvents = false;  // the job is there, its stream is not: poll from now on
    applyStatus(job, body, state);
  } catch (e) {
    if (e.status === 404) {
      job.refresh = false;
      job.status = "gone";
      announce(`${job.endpoint} job ${shortId(job.id)} is no longer on the server.`);
    } else if (e.status === 401) {
      authBlocked = true;
      $("#key-status").textContent = `Polling paused: ${e.readable}. Save a valid key.`;
    } else {
      // 429/5xx/network: retry with exponential backoff and jitter, honour Retry-After.
      const retry = Number(e.retryAfter) > 0 ? Number(e.retryAfter) * 1000 : 0;
      state.backoff = Math.min(MAX_BACKOFF_MS, state.backoff * 2);
      state.next = Date.now() + Math.max(retry, state.backoff * (0.5 + Math.random() / 2));
    }
  } finally {
    state.inflight = false;
    saveJobs();
    renderJobs();
  }
}

function tick() {
  const now = Date.now();
  if (apiKey && !authBlocked) {
    for (const job of jobs) {
      if (TERMINAL.has(job.status) && !job.refresh) continue;
      let state = pollState.get(job.id);
      if (!state) {
        state = { next: 0, backoff: POLL_MS, inflight: false };
        pollState.set(job.id, state);
      }
      if (!state.inflight && state.next <= now) poll(job);
    }
  }
  for (const job of jobs) {
    const card = cards.get(job.id);
    if (card) card.age.textContent = formatAge(now - Date.parse(job.created_at));
  }
}

// ---------------------------------------------------------------- key handling

async function checkKey() {
  const status = $("#key-status");
  status.className = "status";
  status.textContent = "Checking the key…";
  try {
    await api("GET", "web/key");  // the route meant for it: 200 or 401, no job touched
    status.className = "status ok";
    status.textContent = "Key saved; the server accepts it.";
  } catch (e) {
    status.className = "status bad";
    status.textContent = `Key saved, but the server answered: ${e.readable}`;
  }
}

function onSaveKey(event) {
  event.preventDefault();
  const value = $("#api-key").value.trim();
  if (!value) {
    $("#key-status").className = "status bad";
    $("#key-status").textContent = "Enter a key first.";
    return;
  }
  apiKey = value;
  localStorage.setItem(KEY_STORE, apiKey);
  authBlocked = false;
  for (const job of jobs) if (job.status === "gone") job.refresh = true;
  checkKey();
  loadServerJobs();
}

function onForgetKey() {
  apiKey = "";
  localStorage.removeItem(KEY_STORE);
  $("#api-key").value = "";
  $("#key-status").className = "status";
  $("#key-status").textContent = "Key removed from this browser.";
  $("#api-key").focus();
}

// ---------------------------------------------------------------- start

async function loadCatalog() {
  try {
    const resp = await fetch("web/models.json", { cache: "no-store" });
    if (resp.ok) {
      const data = await resp.json();
      if (data && data.models && Object.keys(data.models).length) catalog = data.models;
    }
  } catch { /* keep the built-in table */ }
}

// Engines that are stand-ins, not generative models (docs/preview-engine.md).
const NOT_A_MODEL = new Set(["preview", "minimal"]);

async function loadServerInfo() {
  try {
    const resp = await fetch("web/server.json", { cache: "no-store" });
    if (!resp.ok) return;
    const info = await resp.json();
    const banner = $("#engine-banner");
    if (info && NOT_A_MODEL.has(info.engine)) {
      $("#engine-name").textContent = info.engine;
      banner.hidden = false;
    }
  } catch { /* no banner: the job cards still name their engine */ }
}

async function start() {
  await Promise.all([loadCatalog(), loadServerInfo()]);
  buildForms();
  const fromHash = decodeURIComponent(location.hash.slice(1));
  showEndpoint(ENDPOINTS[fromHash] ? fromHash : "text-to-video");
  $("#endpoint").addEventListener("change", (e) => {
    showEndpoint(e.target.value);
    history.replaceState(null, "", `#${e.target.value}`);
    showFormError("");
  });
  $("#job-form").addEventListener("submit", onSubmitJob);
  $("#key-form").addEventListener("submit", onSaveKey);
  $("#forget-key").addEventListener("click", onForgetKey);
  $("#clear-finished").addEventListener("click", () => {
    jobs = jobs.filter((j) => !TERMINAL.has(j.status));
    saveJobs();
    renderJobs();
    $("#jobs-heading").focus();
  });
  if (apiKey) {
    $("#api-key").value = apiKey;
    $("#key-status").textContent = "Using the key saved in this browser.";
  } else {
    $("#key-status").textContent = "No key saved yet.";
  }
  // Refresh every remembered job once (result URLs, expiry), then poll the unfinished ones.
  for (const job of jobs) job.refresh = true;
  renderJobs();
  await loadServerJobs();
  tick();
  setInterval(tick, TICK_MS);
  document.body.dataset.ready = "true";
}

start();
