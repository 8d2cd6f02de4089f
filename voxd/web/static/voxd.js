// voxd's page, made live: progress from /api/events, drag-and-drop upload, chapters as they finish.
// Everything a book supplies is written with textContent, never as HTML.
"use strict";
(function () {
  const csrf = document.body.dataset.csrf || "";
  const announce = document.getElementById("announce");
  const said = new Map();  // job id -> last status announced

  function say(text) {
    if (announce) { announce.textContent = text; }
  }

  function percent(job) {
    return job.percent === null || job.percent === undefined ? "" : Math.round(job.percent) + "%";
  }

  function cell(tag, text) {
    const el = document.createElement(tag);
    el.textContent = text;
    return el;
  }

  function row(job) {
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    const th = document.createElement("th");
    th.scope = "row";
    const a = cell("a", job.title || job.name);
    a.href = "/jobs/" + job.id;
    th.appendChild(a);
    if (job.author) { const s = cell("span", job.author); s.className = "author"; th.appendChild(s); }
    tr.appendChild(th);
    const status = cell("td", job.status); status.className = "status"; tr.appendChild(status);
    const td = document.createElement("td");
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.setAttribute("aria-label", "Progress of " + (job.title || job.name));
    td.appendChild(bar);
    const pct = cell("span", ""); pct.className = "percent"; td.appendChild(pct);
    tr.appendChild(td);
    const n = cell("td", ""); n.className = "note"; tr.appendChild(n);
    return tr;
  }

  function update(tr, job) {
    tr.querySelector(".status").textContent = job.status;
    tr.querySelector("progress").value = job.percent || 0;
    tr.querySelector("progress").textContent = percent(job);
    tr.querySelector(".percent").textContent = percent(job);
    tr.querySelector(".note").textContent = job.note;
  }

  function queue(jobs) {
    const table = document.getElementById("jobs");
    if (!table) { return; }
    const body = table.tBodies[0];
    const rows = new Map(Array.from(body.rows).map((tr) => [tr.dataset.job, tr]));
    jobs.slice().reverse().forEach((job, i) => {
      let tr = rows.get(String(job.id));
      if (!tr) { tr = row(job); body.insertBefore(tr, body.rows[i] || null); }
      update(tr, job);
    });
    table.hidden = jobs.length === 0;
    const empty = document.getElementById("empty");
    if (empty) { empty.hidden = jobs.length > 0; }
  }

  function jobPage(jobs) {
    const state = document.getElementById("state");
    if (!state) { return; }
    const job = jobs.find((j) => String(j.id) === state.dataset.job);
    if (!job) { return; }
    state.querySelector(".status").textContent = job.status;
    state.querySelector("progress").value = job.percent || 0;
    state.querySelector(".chunks").textContent = job.chunks_done + " of " + (job.chunks_total || "?") + " chunks";
    state.querySelector(".note").textContent = job.note;
    state.querySelector(".speed").textContent = job.speed ? job.speed + "x real time" : "";
    state.querySelector(".eta").textContent = job.eta_seconds === null ? "" : Math.ceil(job.eta_seconds / 60) + " min";
    state.querySelector(".readback").textContent = job.read_back.said || "nothing checked yet";
    chapters(job);
  }

  let lastChapters = 0;
  function chapters(job) {
    const list = document.querySelector(".chapters");
    const now = Date.now();
    if (!list || now - lastChapters < 3000) { return; }
    if (!list.querySelector('[data-ready="no"]') && list.children.length) { return; }
    lastChapters = now;
    fetch("/api/jobs/" + job.id, { credentials: "same-origin" }).then((r) => r.ok ? r.json() : null).then((detail) => {
      if (!detail) { return; }
      if (!list.children.length && detail.chapter_list.length) { location.reload(); return; }
      detail.chapter_list.forEach((ch) => {
        const li = list.querySelector('[data-chapter="' + ch.number + '"]');
        if (!li || li.dataset.ready === "yes") { return; }
        const pending = li.querySelector(".pending");
        if (ch.ready < ch.chunks) { if (pending) { pending.textContent = ch.ready + " of " + ch.chunks + " chunks rendered"; } return; }
        li.dataset.ready = "yes";
        const audio = document.createElement("audio");
        audio.controls = true;
        audio.preload = "none";
        audio.src = ch.audio;
        audio.setAttribute("aria-label", "Chapter " + ch.number + ": " + ch.title);
        if (pending) { pending.replaceWith(audio); } else { li.appendChild(audio); }
        say("Chapter " + ch.number + " is ready to play.");
      });
    });
  }

  function changes(jobs) {
    jobs.forEach((job) => {
      const before = said.get(job.id);
      if (before !== undefined && before !== job.status) {
        say((job.title || job.name) + ": " + job.status + ".");
      }
      said.set(job.id, job.status);
    });
  }

  if (window.EventSource && (document.getElementById("jobs") || document.getElementById("state"))) {
    const events = new EventSource("/api/events");
    events.addEventListener("jobs", (e) => {
      const jobs = JSON.parse(e.data);
      changes(jobs);
      queue(jobs);
      jobPage(jobs);
      document.body.dataset.live = "yes";
    });
  }

  // Upload: the form still works without a script; with one, drag-and-drop and progress.
  const form = document.getElementById("upload");
  if (form) {
    const drop = document.getElementById("drop");
    const input = document.getElementById("file");
    const bar = document.getElementById("upload-progress");
    const status = document.getElementById("upload-said");
    function send(file) {
      const data = new FormData();
      data.append("file", file);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/upload");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      bar.hidden = false;
      bar.value = 0;
      status.textContent = "Uploading " + file.name + "…";
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.value = 100 * e.loaded / e.total; } };
      xhr.onload = () => {
        bar.hidden = true;
        let reply = {};
        try { reply = JSON.parse(xhr.responseText); } catch (err) { reply = {}; }
        if (xhr.status === 201) { status.textContent = file.name + ": queued as job " + reply.id + "."; }
        else if (xhr.status === 200) { status.textContent = file.name + ": already job " + reply.id + " (" + reply.status + ")."; }
        else { status.textContent = file.name + ": " + (reply.error || "the upload failed (" + xhr.status + ")."); }
        input.value = "";
      };
      xhr.onerror = () => { bar.hidden = true; status.textContent = file.name + ": the upload failed; is voxd running?"; };
      xhr.send(data);
    }
    form.addEventListener("submit", (e) => {
      if (input.files.length) { e.preventDefault(); send(input.files[0]); }
    });
    ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
    ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) { send(e.dataTransfer.files[0]); }
    });
  }

  // Voice previews play in place.
  document.querySelectorAll("form.preview").forEach((f) => f.addEventListener("submit", (e) => {
    e.preventDefault();
    const button = f.querySelector("button");
    button.disabled = true;
    say("Speaking a preview…");
    fetch(f.action, { method: "POST", body: new FormData(f), credentials: "same-origin", headers: { "X-CSRF-Token": csrf } }).then((r) => {
      if (!r.ok) { return r.text().then(() => { say("No preview of that voice."); }); }
      return r.blob().then((blob) => { const a = new Audio(URL.createObjectURL(blob)); a.play(); });
    }).finally(() => { button.disabled = false; });
  }));

  // Times in the history, in the reader's own zone.
  document.querySelectorAll("time[data-at]").forEach((t) => {
    const at = new Date(parseFloat(t.dataset.at) * 1000);
    t.dateTime = at.toISOString();
    t.textContent = at.toLocaleString();
  });
}());
