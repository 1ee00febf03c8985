/// The page at `/`: one self-contained HTML document (no script, style or font is
/// fetched from anywhere). It uploads a file to `/v1/audio/alignments` and shows the
/// transcript with word times and each segment's attention heatmap, or records the
/// microphone and streams it to `/v1/audio/stream`, showing partials and finals as
/// they arrive.
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lasr</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
  h1 { font-size: 1.4em; margin-bottom: 0.2em; }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin: 1em 0; padding: 0.8em 1em; }
  legend { font-weight: 600; }
  button { font: inherit; padding: 0.3em 1em; }
  #status { color: #555; min-height: 1.5em; }
  #status.error { color: #b00; }
  #transcript { font-size: 1.15em; margin: 0.5em 0; }
  .word { display: inline-block; margin: 0 0.15em 0.3em 0; padding: 0 0.2em; border-radius: 3px; background: #eef3ff; }
  .word small { display: block; font-size: 0.7em; color: #666; line-height: 1.1; }
  .partial { color: #888; font-style: italic; }
  .heatmap { margin: 1em 0; overflow-x: auto; }
  .heatmap img { max-width: 100%; border: 1px solid #ddd; }
  label { margin-right: 1em; }
</style>
</head>
<body>
<h1>lasr</h1>
<p>Offline speech recognition on this machine: upload a file or record from the microphone.</p>
<fieldset>
  <legend>Model</legend>
  <label>model <select id="model"></select></label>
  <label>API key <input id="apikey" type="password" size="24" placeholder="if the server needs one"></label>
</fieldset>
<fieldset>
  <legend>File</legend>
  <input id="file" type="file" accept="audio/*,.wav,.flac,.ogg,.opus,.mp3">
  <button id="transcribe">Transcribe</button>
</fieldset>
<fieldset>
  <legend>Microphone</legend>
  <button id="record">Record</button> <button id="stop" disabled>Stop</button>
</fieldset>
<div id="status"></div>
<div id="transcript"></div>
<div id="words"></div>
<div id="live"></div>
<div id="heatmaps"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const keyQuery = new URLSearchParams(location.search).get("api_key");
if (keyQuery) $("apikey").value = keyQuery;

function headers() {
  const key = $("apikey").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}
function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}
async function errorText(response) {
  try { return (await response.json()).error.message; } catch (e) { return response.status + " " + response.statusText; }
}
function fmt(t) { return t.toFixed(2); }
function wordSpan(w) {
  const span = document.createElement("span");
  span.className = "word";
  span.title = fmt(w.start) + "–" + fmt(w.end) + " s, confidence " + w.confidence.toFixed(2);
  span.append(w.word);
  const small = document.createElement("small");
  small.textContent = fmt(w.start) + "–" + fmt(w.end);
  span.append(small);
  return span;
}
function clear() {
  for (const id of ["transcript", "words", "live", "heatmaps"]) $(id).replaceChildren();
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (!response.ok) { status(await errorText(response), true); return; }
  const list = await response.json();
  $("model").replaceChildren(...list.data.map((m) => new Option(m.id, m.id)));
}

$("apikey").addEventListener("change", loadModels);

$("transcribe").addEventListener("click", async () => {
  const file = $("file").files[0];
  if (!file) { status("choose an audio file first", true); return; }
  clear();
  status("decoding " + file.name + " …");
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", $("model").value);
  form.append("response_format", "json");
  const started = performance.now();
  const response = await fetch("/v1/audio/alignments", { method: "POST", body: form, headers: headers() });
  if (!response.ok) { status(await errorText(response), true); return; }
  const doc = await response.json();
  $("transcript").textContent = doc.text;
  $("words").replaceChildren(...doc.words.map(wordSpan));
  for (const segment of doc.segments) {
    const box = document.createElement("div");
    box.className = "heatmap";
    const caption = document.createElement("div");
    caption.textContent = "segment " + segment.id + " (" + fmt(segment.start) + "–" + fmt(segment.end) + " s): " + segment.text;
    const img = document.createElement("img");
    img.alt = "attention heatmap of segment " + segment.id;
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(segment.svg);
    box.append(caption, img);
    $("heatmaps").append(box);
  }
  const warnings = doc.warnings ? " — " + doc.warnings.join("; ") : "";
  status(file.name + ": " + fmt(doc.duration) + " s of audio in " + ((performance.now() - started) / 1000).toFixed(1) + " s" + warnings);
});

let recording = null;
$("record").addEventListener("click", async () => {
  clear();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  } catch (e) { status("no microphone: " + e.message, true); return; }
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  // ScriptProcessor: every browser has it, and no worklet file has to be fetched.
  const processor = context.createScriptProcessor(4096, 1, 1);
  const key = $("apikey").value.trim();
  const url = new URL("/v1/audio/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("model", $("model").value);
  url.searchParams.set("rate", String(context.sampleRate));
  url.searchParams.set("partials", "700");
  if (key) url.searchParams.set("api_key", key);
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let partial = null;
  // Set by the server's last word (done, or an error), which the close that follows must not overwrite.
  let finished = false;
  ws.onmessage = (event) => {
    const line = JSON.parse(event.data);
    if (line.type === "error") { finished = true; status(line.message, true); return; }
    if (line.type === "done") { finished = true; status("stream ended"); return; }
    const row = document.createElement("div");
    if (line.type === "partial") {
      row.className = "partial";
      row.textContent = "… " + line.text;
    } else {
      row.append(fmt(line.start) + "–" + fmt(line.end) + " s: ");
      row.append(...line.words.map(wordSpan));
    }
    if (partial) partial.remove();
    partial = line.type === "partial" ? row : null;
    $("live").append(row);
  };
  ws.onclose = (event) => { if (!finished) status("stream closed (" + event.code + ")", event.code !== 1000); };
  processor.onaudioprocess = (event) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const input = event.inputBuffer.getChannelData(0);
    const pcm = new Int16Array(input.length);
    for (let i = 0; i < input.length; i++) pcm[i] = Math.max(-1, Math.min(1, input[i])) * 32767;
    ws.send(pcm.buffer);
  };
  source.connect(processor);
  processor.connect(context.destination);
  recording = { stream, context, ws, processor };
  $("record").disabled = true;
  $("stop").disabled = false;
  status("recording at " + context.sampleRate + " Hz — speak, then Stop");
});
$("stop").addEventListener("click", () => {
  if (!recording) return;
  recording.processor.disconnect();
  recording.stream.getTracks().forEach((t) => t.stop());
  recording.context.close();
  if (recording.ws.readyState === WebSocket.OPEN) recording.ws.send("end");
  recording = null;
  $("record").disabled = false;
  $("stop").disabled = true;
  status("finishing …");
});

loadModels();
</script>
</body>
</html>
"""#
}
