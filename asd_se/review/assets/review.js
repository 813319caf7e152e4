// asd-se review page: draws a render's boxes, labels and heatmaps over the video, one probability lane per
// track, ground truth and errors. All data comes from the JSON element #data (asd_se/review/page.py).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const context = overlay.getContext("2d");
  const frameS = 1 / data.fps;
  const duration = () => (isFinite(video.duration) && video.duration > 0 ? video.duration : data.duration) || 1;
  const layers = { boxes: true, labels: true, heatmaps: true };
  const stats = { firstFrameMs: null, overlayFrames: 0, overlayMs: 0, playbackFrames: 0, playbackStartMs: null,
                  errors: [] };
  let opacity = data.alpha;
  document.getElementById("opacity").value = String(opacity);
  let overlaysOn = true;

  // ---- helpers ------------------------------------------------------------------------------------------
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const note = (text) => document.getElementById("notes").appendChild(el("li", {}, text));
  const seek = (t) => { video.currentTime = Math.min(Math.max(t, 0), duration()); drawAll(); };
  const speakingColour = (p) => `rgb(${Math.round(255 * Math.min(1, 2 * (1 - p)))},${Math.round(255 * Math.min(1, 2 * p))},0)`;
  const jet = (v) => [1.5 - Math.abs(4 * v - 3), 1.5 - Math.abs(4 * v - 2), 1.5 - Math.abs(4 * v - 1)]
    .map((c) => Math.round(255 * Math.min(1, Math.max(0, c))));
  // the frame of a track shown at time t: the last frame at or before t, if it is still on screen
  const frameAt = (track, t) => {
    const times = track.t;
    let lo = 0, hi = times.length - 1;
    if (!times.length || t < times[0] - 1e-3 || t > times[hi] + frameS) return -1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (times[mid] <= t + 1e-3) lo = mid; else hi = mid - 1; }
    return lo;
  };

  // ---- heatmaps: 8-bit maps per 25 fps sample -> a small RGBA canvas, scaled onto the face's square -----
  data.tracks.forEach((track) => {
    if (!track.maps) return;
    const raw = atob(track.maps.base64);
    track.mapBytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) track.mapBytes[i] = raw.charCodeAt(i);
    const [, h, w] = track.maps.shape;
    track.mapCanvas = el("canvas", { width: w, height: h });
    track.mapImage = new ImageData(w, h);
    track.mapSample = -1;
  });
  const heatCanvas = (track, sample) => {
    const [, h, w] = track.maps.shape;
    if (track.mapSample !== sample) {
      const pixels = track.mapImage.data, offset = sample * h * w;
      for (let i = 0; i < h * w; i++) {
        const [r, g, b] = jet(track.mapBytes[offset + i] / 255);
        pixels[4 * i] = r; pixels[4 * i + 1] = g; pixels[4 * i + 2] = b; pixels[4 * i + 3] = 255;
      }
      track.mapCanvas.getContext("2d").putImageData(track.mapImage, 0, 0);
      track.mapSample = sample;
    }
    return track.mapCanvas;
  };

  // ---- the overlay: drawn at the size it is shown (sharp labels on small videos), in video pixel coordinates
  const videoWidth = data.width || 640, videoHeight = data.height || 360;
  const drawOverlay = (t) => {
    const started = performance.now();
    const ratio = window.devicePixelRatio || 1;
    const shown = Math.max(1, Math.round(overlay.clientWidth * ratio));
    if (overlay.width !== shown) {
      overlay.width = shown;
      overlay.height = Math.max(1, Math.round(shown * videoHeight / videoWidth));
    }
    const zoom = overlay.width / videoWidth;  // canvas pixels per video pixel
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, overlay.width, overlay.height);
    if (!overlaysOn) return;
    context.setTransform(zoom, 0, 0, zoom, 0, 0);
    const scale = ratio / zoom;  // one screen pixel, in video pixels
    data.tracks.forEach((track) => {
      const k = frameAt(track, t);
      if (k < 0) return;
      const [x1, y1, x2, y2] = track.box[k], p = track.p[k];
      if (layers.heatmaps && track.mapBytes && opacity > 0) {
        const [x0, y0, side] = track.region[k];
        context.save();
        context.beginPath();
        context.rect(x1, y1, x2 - x1, y2 - y1);
        context.clip();
        context.globalAlpha = opacity;
        context.imageSmoothingEnabled = true;
        context.imageSmoothingQuality = "high";
        context.drawImage(heatCanvas(track, track.sample[k]), x0, y0, side, side);
        context.restore();
      }
      const colour = speakingColour(p);
      if (layers.boxes) {
        context.lineWidth = 2 * scale;
        context.strokeStyle = colour;
        context.strokeRect(x1, y1, x2 - x1, y2 - y1);
      }
      if (layers.labels) {
        const text = `${track.name} ${p.toFixed(2)}`;
        context.font = `${(12 * scale).toFixed(2)}px sans-serif`;
        const width = context.measureText(text).width + 6 * scale, height = 16 * scale;
        const top = Math.max(0, y1 - height);
        context.fillStyle = colour;
        context.fillRect(x1, top, width, height);
        context.fillStyle = "#000";
        context.fillText(text, x1 + 3 * scale, top + height - 4 * scale);
      }
    });
    stats.overlayFrames += 1;
    stats.overlayMs += performance.now() - started;
  };

  // ---- lanes -----------------------------------------------------------------------------------------------
  const lanes = [];
  const addLane = (name, kind, paint) => {
    const row = el("div", { class: `lane ${kind}`, "data-track": name });
    row.appendChild(el("div", { class: "name", title: name }, kind === "truth" ? `${name} (truth)` : name));
    const canvas = el("canvas", { class: "lane-canvas" });
    row.appendChild(canvas);
    document.getElementById("lanes").appendChild(row);
    const lane = { canvas, paint, background: null };
    lanes.push(lane);
    const toTime = (event) => {
      const box = canvas.getBoundingClientRect();
      return (event.clientX - box.left) / box.width * duration();
    };
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      seek(toTime(event));
    });
    canvas.addEventListener("pointermove", (event) => { if (event.buttons & 1) seek(toTime(event)); });
  };
  const spans = (ctx, list, colour, width, top, height) => {
    ctx.fillStyle = colour;
    list.forEach(([a, b]) => ctx.fillRect(a / duration() * width, top, Math.max(1, (b - a) / duration() * width), height));
  };
  data.tracks.forEach((track) => {
    addLane(track.name, "probability", (ctx, w, h) => {
      spans(ctx, track.segments, "rgba(80,200,120,0.45)", w, 0, h);
      spans(ctx, track.unsure, "rgba(255,204,102,0.6)", w, h - 5, 5);
      ctx.strokeStyle = "rgba(255,255,255,0.25)";
      ctx.beginPath(); ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2); ctx.stroke();
      ctx.strokeStyle = "#e6e6e6";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      track.t.forEach((t, i) => {
        const x = t / duration() * w, y = (1 - track.p[i]) * (h - 4) + 2;
        if (i === 0 || t - track.t[i - 1] > 2 * frameS) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    });
    if (track.truth) {
      const rowS = track.truth.length > 1 ? (track.truth[track.truth.length - 1][0] - track.truth[0][0]) / (track.truth.length - 1) : frameS;
      const own = data.truth ? data.truth.errors.filter((e) => e.track === track.name) : [];
      addLane(track.name, "truth", (ctx, w, h) => {
        spans(ctx, track.truth.filter((r) => r[1] > 0).map((r) => [r[0], r[0] + rowS]), "#4a8fe7", w, 0, h / 2);
        spans(ctx, own.filter((e) => e.kind === "FP").map((e) => [e.start, e.end]), "#e5484d", w, h / 2, h / 2);
        spans(ctx, own.filter((e) => e.kind === "FN").map((e) => [e.start, e.end]), "#b06cf0", w, h / 2, h / 2);
      });
    }
  });
  const layoutLanes = () => lanes.forEach((lane) => {
    const ratio = window.devicePixelRatio || 1;
    lane.canvas.width = Math.max(1, Math.round(lane.canvas.clientWidth * ratio));
    lane.canvas.height = Math.max(1, Math.round(lane.canvas.clientHeight * ratio));
    lane.background = el("canvas", { width: lane.canvas.width, height: lane.canvas.height });
    lane.paint(lane.background.getContext("2d"), lane.canvas.width, lane.canvas.height);
  });
  const drawLanes = (t) => lanes.forEach((lane) => {
    const ctx = lane.canvas.getContext("2d");
    ctx.clearRect(0, 0, lane.canvas.width, lane.canvas.height);
    ctx.drawImage(lane.background, 0, 0);
    const x = t / duration() * lane.canvas.width;
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(Math.round(x) - 1, 0, 2, lane.canvas.height);
  });

  // ---- summary, ground truth, errors ----------------------------------------------------------------------
  document.getElementById("title").textContent = data.title;
  document.getElementById("facts").textContent = [`${data.width}×${data.height}`, `${data.fps.toFixed(2)} fps`,
    `${data.duration.toFixed(1)} s`, `${data.tracks.length} tracks`, `heatmaps: ${data.explainer || "none"}`,
    `segments: on ${data.segment_settings.on}, off ${data.segment_settings.off}`].join(" · ");
  data.notes.concat(data.render_notes).forEach(note);
  const body = document.querySelector("#summary tbody");
  data.tracks.forEach((track) => {
    const row = el("tr");
    [track.name, track.summary.on_screen_s.toFixed(1), track.summary.speaking_s.toFixed(1),
     track.summary.mean_prob === null ? "—" : track.summary.mean_prob.toFixed(2)]
      .forEach((v) => row.appendChild(el("td", {}, v)));
    row.addEventListener("click", () => seek(track.t[0]));
    body.appendChild(row);
  });
  const errors = data.truth ? data.truth.errors : [];
  let currentError = -1;
  const showError = (i) => {
    if (!errors.length) return;
    currentError = (i + errors.length) % errors.length;
    document.querySelectorAll("#errors li").forEach((li, k) => li.classList.toggle("current", k === currentError));
    video.pause();
    seek(errors[currentError].start + 1e-3);
  };
  document.querySelectorAll(".truth-only").forEach((node) => { node.hidden = !data.truth; });
  if (data.truth) {
    document.getElementById("truth-box").hidden = false;
    const ap = data.truth.ap === null ? "undefined (no speaking rows)" : (100 * data.truth.ap).toFixed(2);
    document.getElementById("truth-figures").textContent =
      `AP ${ap} · accuracy ${(100 * data.truth.accuracy).toFixed(2)}% over ${data.truth.rows} annotated rows · ` +
      `${errors.length} error stretches`;
    const list = document.getElementById("errors");
    errors.forEach((e, i) => {
      const item = el("li", { class: e.kind, "data-time": e.start },
        `${e.start.toFixed(2)}–${e.end.toFixed(2)} s ${e.track} ${e.kind === "FP" ? "false positive" : "false negative"}`);
      item.addEventListener("click", () => showError(i));
      list.appendChild(item);
    });
  }

  // ---- video, controls, keys ------------------------------------------------------------------------------
  const select = document.getElementById("source");
  data.videos.forEach((v, i) => select.appendChild(el("option", { value: i }, v.label)));
  const useVideo = (i) => {
    const chosen = data.videos[i], at = video.currentTime || 0;
    overlaysOn = chosen.overlays;  // the annotated MP4 has its overlays burned in: the page draws none
    document.querySelectorAll("#controls input").forEach((input) => { input.disabled = !overlaysOn; });
    video.src = chosen.src;
    video.addEventListener("loadedmetadata", () => { video.currentTime = at; }, { once: true });
  };
  select.addEventListener("change", () => useVideo(Number(select.value)));
  video.addEventListener("error", () => {
    const text = `${video.getAttribute("src")}: the video could not be loaded (moved, deleted or not playable here)`;
    stats.errors.push(text);
    note(text);
  });
  const drawAll = () => {
    const t = video.currentTime || 0;
    document.getElementById("clock").textContent = `${t.toFixed(3)} s`;
    drawOverlay(t);
    drawLanes(t);
  };
  const onFrame = () => {  // a new video frame is on screen (or the first one arrived)
    drawAll();
    if (stats.firstFrameMs === null) stats.firstFrameMs = performance.now();
    if (!video.paused) {
      stats.playbackFrames += 1;
      if (stats.playbackStartMs === null) stats.playbackStartMs = performance.now();
    }
  };
  if (video.requestVideoFrameCallback) {  // one chain of callbacks: once per presented frame
    const everyFrame = () => { onFrame(); video.requestVideoFrameCallback(everyFrame); };
    video.requestVideoFrameCallback(everyFrame);
  }
  video.addEventListener("loadeddata", onFrame);
  video.addEventListener("seeked", drawAll);
  const tick = () => { if (!video.paused && !video.requestVideoFrameCallback) onFrame(); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  const playButton = document.getElementById("play");
  const toggle = () => (video.paused ? video.play() : video.pause());
  playButton.addEventListener("click", toggle);
  video.addEventListener("play", () => { playButton.textContent = "pause"; });
  video.addEventListener("pause", () => { playButton.textContent = "play"; });
  const step = (n) => { video.pause(); seek((video.currentTime || 0) + n * frameS); };
  document.getElementById("back").addEventListener("click", () => step(-1));
  document.getElementById("forward").addEventListener("click", () => step(1));
  ["boxes", "labels", "heatmaps"].forEach((name) => {
    document.getElementById(`layer-${name}`).addEventListener("change", (event) => {
      layers[name] = event.target.checked;
      drawAll();
    });
  });
  document.getElementById("opacity").addEventListener("input", (event) => {
    opacity = Number(event.target.value);
    drawAll();
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
    const actions = { " ": toggle, ArrowLeft: () => step(-1), ArrowRight: () => step(1),
                      n: () => showError(currentError + 1), p: () => showError(currentError - 1) };
    if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
  });
  const fitStage = () => {  // the video keeps its aspect and leaves room for the lanes below it
    const aspect = (data.width || 16) / (data.height || 9);
    document.getElementById("stage").style.maxWidth = `${Math.round(0.62 * window.innerHeight * aspect)}px`;
  };
  window.addEventListener("resize", () => { fitStage(); layoutLanes(); drawAll(); });
  fitStage();
  layoutLanes();
  if (data.videos.length) useVideo(0);
  drawAll();
  window.asdReview = { data, stats, seek, layers };
})();
