// The page of `polymodal serve`: a form built from a model's inputs, or a search box for an index.
// Plain JavaScript; it talks only to this service (/v1/...).
"use strict";

const state = { models: [], indexes: [], files: {}, recorder: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function headers() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.blob();
  if (!response.ok) throw new Error(`${response.status}: ${(body && body.detail) || response.statusText}`);
  return body;
}

function say(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// ---------------------------------------------------------------- charts
function chart(target, entries, format, highlight) {
  const box = $(target);
  box.replaceChildren();
  const largest = Math.max(1e-12, ...entries.map(([, v]) => Math.abs(v)));
  for (const [name, value] of entries) {
    const fill = el("span", { class: "fill" });
    fill.style.width = `${(100 * Math.abs(value)) / largest}%`;
    const bar = el("div", { class: "bar", "data-name": name, "data-value": String(value) },
      el("span", { class: "name", text: name, title: name }), el("span", { class: "track" }, fill),
      el("span", { class: "value", text: format(value) }));
    if (value < 0) bar.classList.add("negative");
    if (name === highlight) bar.classList.add("top");
    box.append(bar);
  }
}

// ---------------------------------------------------------------- inputs
function mediaField(column, role) {
  const picker = el("input", { type: "file", accept: `${role}/*`, "data-column": column, name: column });
  const preview = role === "image" ? el("img", { class: "preview", alt: `${column} preview`, src: "" })
                                   : el("audio", { controls: "" });
  picker.addEventListener("change", () => {
    const file = picker.files[0];
    state.files[column] = file || null;
    if (file) preview.src = URL.createObjectURL(file);
  });
  const media = el("div", { class: "media" }, picker, preview);
  if (role === "audio") {
    const button = el("button", { type: "button", class: "secondary record", "data-column": column, text: "Record" });
    button.addEventListener("click", () => record(column, button, preview));
    media.append(button);
  }
  return media;
}

function field(column, role) {
  let input;
  if (role === "image" || role === "audio") input = mediaField(column, role);
  else if (role === "text") input = el("textarea", { "data-column": column, "data-role": role, name: column });
  else input = el("input", { type: role === "numeric" ? "number" : "text", step: "any", "data-column": column,
                             "data-role": role, name: column });
  return el("label", { class: "field" }, el("span", { text: column }, el("small", { text: role })), input);
}

function formData(key) {
  const row = {};
  for (const input of $("form").querySelectorAll("[data-role]")) {
    const value = input.value.trim();
    if (value === "") continue;
    row[input.dataset.column] = input.dataset.role === "numeric" ? Number(value) : value;
  }
  const data = new FormData();
  data.append(key, JSON.stringify([row]));
  for (const [column, file] of Object.entries(state.files)) if (file) data.append(column, file, file.name || column);
  return data;
}

// ---------------------------------------------------------------- recording (MediaRecorder → 16-bit PCM WAV)
async function record(column, button, player) {
  if (state.recorder) { state.recorder.stop(); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
  catch (error) { say(`no microphone: ${error.message}`, true); return; }
  const chunks = [];
  const recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    state.recorder = null;
    button.textContent = "Record";
    button.classList.remove("recording");
    try {
      const context = new AudioContext();
      const decoded = await context.decodeAudioData(await new Blob(chunks).arrayBuffer());
      const wav = new File([encodeWav(decoded)], "recording.wav", { type: "audio/wav" });
      state.files[column] = wav;
      player.src = URL.createObjectURL(wav);
      say(`recorded ${decoded.duration.toFixed(1)} s for ${column}`);
    } catch (error) { say(`the recording could not be read: ${error.message}`, true); }
  };
  state.recorder = recorder;
  recorder.start();
  button.textContent = "Stop";
  button.classList.add("recording");
  say("recording… press Stop when done");
}

function encodeWav(buffer) {
  const channels = buffer.numberOfChannels, length = buffer.length, rate = buffer.sampleRate;
  const mono = new Float32Array(length);
  for (let c = 0; c < channels; c++) buffer.getChannelData(c).forEach((v, i) => { mono[i] += v / channels; });
  const view = new DataView(new ArrayBuffer(44 + 2 * length));
  const text = (at, s) => [...s].forEach((ch, i) => view.setUint8(at + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * length, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * length, true);
  mono.forEach((v, i) => view.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, v)) * 0x7fff, true));
  return view.buffer;
}

// ---------------------------------------------------------------- a model
function showModel(model) {
  const form = $("form");
  const target = new Set(model.generates || []);
  const columns = model.inputs.flatMap((input) => input.columns).filter((c) => !target.has(c.name));
  form.replaceChildren(...columns.map((c) => field(c.name, c.role)));
  const what = model.generates ? `generates ${model.generates.join(", ")}` :
    model.classes ? `classifies ${model.label} (${model.classes.length} classes)` : `${model.problem_type} of ${model.label}`;
  $("about").textContent = `${model.name}: ${what}. Fill in any of its inputs; the ones left empty are absent.`;
  if (model.problem_type === "alignment") {
    $("about").textContent = `${model.name} is an alignment model: search it through one of its indexes.`;
    form.replaceChildren();
    return;
  }
  const button = el("button", { type: "submit", id: model.generates ? "generate" : "predict",
                                text: model.generates ? "Generate" : "Predict" });
  form.append(el("div", { class: "actions" }, button));
  form.onsubmit = (event) => { event.preventDefault(); (model.generates ? generate : predict)(model); };
}

async function predict(model) {
  say("predicting…");
  try {
    const answer = await call(`v1/models/${encodeURIComponent(model.name)}/predict`, { method: "POST", body: formData("rows") });
    const row = answer.predictions[0];
    $("answer").hidden = false;
    const shown = row.label ?? (row.value === null ? "—" : Number(row.value).toPrecision(4));
    $("label").textContent = `${model.label}: ${shown}`;
    const notes = [];
    if (row.absent.length) notes.push(`absent: ${row.absent.join(", ")}`);
    for (const s of row.skipped) notes.push(`skipped ${s.input}: ${s.reason}`);
    $("notes").textContent = notes.join(" · ");
    chart("probabilities", Object.entries(row.probabilities || {}).sort((a, b) => b[1] - a[1]),
      (v) => `${(100 * v).toFixed(1)}%`, row.label);
    say("explaining…");
    const why = await call(`v1/models/${encodeURIComponent(model.name)}/explain`, { method: "POST", body: formData("rows") });
    chart("importance", why.inputs.map((i) => [i.input, i.ablation ?? 0]), (v) => v.toFixed(3));
    $("importance-title").textContent = "Modality importance (drop in the predicted class's probability without it)";
    say("done");
  } catch (error) { say(error.message, true); }
}

async function generate(model) {
  say("generating…");
  try {
    const data = formData("conditions");
    data.append("n", "4");
    const answer = await call(`v1/models/${encodeURIComponent(model.name)}/generate`, { method: "POST", body: data });
    const list = $("sample-list");
    list.replaceChildren(...answer.samples.map((s) => {
      const source = `data:${s.media_type};base64,${s.base64}`;
      const media = s.media_type.startsWith("image/") ? el("img", { src: source, alt: "sample" }) : el("audio", { controls: "", src: source });
      return el("div", { class: "sample" }, media, el("div", { class: "meta", text: `sample ${s.sample}` }));
    }));
    $("samples").hidden = false;
    say("done");
  } catch (error) { say(error.message, true); }
}

// ---------------------------------------------------------------- an index
function showIndex(index) {
  const form = $("form");
  const fields = Object.keys(index.queries).map((modality) => field(modality, modality === "text" ? "text" : modality));
  const k = el("input", { type: "number", min: "1", max: String(index.count), value: String(Math.min(8, index.count)), id: "k" });
  form.replaceChildren(...fields, el("label", { class: "field" }, el("span", { text: "k" }), k),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "search", text: "Search" })));
  $("about").textContent = `${index.name}: ${index.count} items of ${index.modality} column ${index.column}; ` +
    `query with ${Object.keys(index.queries).join(", ")} (one at a time).`;
  form.onsubmit = (event) => { event.preventDefault(); search(index); };
}

async function search(index) {
  say("searching…");
  const data = new FormData();
  const text = $("form").querySelector('[data-column="text"]');
  const file = Object.entries(state.files).find(([, f]) => f);
  if (text && text.value.trim()) data.append("text", text.value.trim());
  else if (file) data.append(file[0], file[1], file[1].name || file[0]);
  data.append("k", $("k").value);
  try {
    const answer = await call(`v1/indexes/${encodeURIComponent(index.name)}/search`, { method: "POST", body: data });
    await showResults(index, answer.results);
  } catch (error) { say(error.message, true); }
}

async function showResults(index, results) {
  const list = $("result-list");
  list.replaceChildren();
  for (const r of results) {
    const item = el("li", { class: "result", "data-id": String(r.id) });
    const like = el("button", { type: "button", class: "secondary", text: "More like this" });
    like.addEventListener("click", async () => {
      say("recommending…");
      try {
        const answer = await call(`v1/indexes/${encodeURIComponent(index.name)}/recommend`, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ liked: [r.id], k: Number($("k").value) }) });
        await showResults(index, answer.results);
      } catch (error) { say(error.message, true); }
    });
    item.append(await itemView(index, r.id), el("div", { class: "meta" }, el("span", { class: "id", text: String(r.id) }),
      el("span", { class: "score", text: r.score.toFixed(3) })), like);
    list.append(item);
  }
  $("results").hidden = false;
  say(`${results.length} results`);
}

async function itemView(index, id) {
  if (!index.items) return el("span");
  try {
    const body = await call(`v1/indexes/${encodeURIComponent(index.name)}/items/${encodeURIComponent(id)}`);
    if (!(body instanceof Blob)) return el("p", { text: body.text });
    const source = URL.createObjectURL(body);
    return body.type.startsWith("image/") ? el("img", { src: source, alt: String(id) }) : el("audio", { controls: "", src: source });
  } catch (error) { return el("span", { text: "(not shown)" }); }
}

// ---------------------------------------------------------------- start
function choose() {
  const [kind, name] = $("choice").value.split(":");
  state.files = {};
  for (const id of ["answer", "samples", "results"]) $(id).hidden = true;
  say("");
  if (kind === "model") showModel(state.models.find((m) => m.name === name));
  else if (kind === "index") showIndex(state.indexes.find((i) => i.name === name));
}

async function load() {
  try {
    state.models = (await call("v1/models")).models;
    state.indexes = (await call("v1/indexes")).indexes;
  } catch (error) { say(`${error.message} (enter the API key above, then reload)`, true); return; }
  const options = [...state.models.map((m) => el("option", { value: `model:${m.name}`, text: `model ${m.name}` })),
    ...state.indexes.map((i) => el("option", { value: `index:${i.name}`, text: `index ${i.name}` }))];
  $("choice").replaceChildren(...options);
  const wanted = new URLSearchParams(location.search).get("try");
  if (wanted && options.some((o) => o.value === wanted)) $("choice").value = wanted;
  choose();
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem("polymodal-key") || "";
  $("api-key").addEventListener("change", () => { sessionStorage.setItem("polymodal-key", $("api-key").value); load(); });
  $("choice").addEventListener("change", choose);
  load();
});
