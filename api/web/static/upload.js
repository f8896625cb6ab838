// Upload: files dropped or chosen get a row with their own metadata; each is sent with XHR (progress),
// then its call is polled from the calls API until it is done or failed.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("upload");
  if (!root) return;
  var T = JSON.parse(root.dataset.i18n);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var zone = document.getElementById("dropzone"), input = document.getElementById("files");
  var table = document.getElementById("file-table"), tbody = table.querySelector("tbody");
  var start = document.getElementById("start");
  var dManager = document.getElementById("d-manager"), dDirection = document.getElementById("d-direction");
  var dPhone = document.getElementById("d-phone"), dStarted = document.getElementById("d-started");
  var items = [];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function cell(child) { var td = el("td"); td.appendChild(child); return td; }

  function add(files) {
    Array.prototype.forEach.call(files, function (file) {
      var n = items.length, name = file.name;
      var tr = el("tr");
      tr.appendChild(el("td", {}, name));
      var manager = dManager.cloneNode(true); manager.id = "m-" + n; manager.value = dManager.value;
      manager.setAttribute("aria-label", name + ": " + dManager.parentNode.firstChild.textContent.trim());
      var direction = dDirection.cloneNode(true); direction.id = "dir-" + n; direction.value = dDirection.value;
      direction.setAttribute("aria-label", name + ": " + dDirection.parentNode.firstChild.textContent.trim());
      var phone = el("input", { type: "tel", maxlength: "40", "aria-label": name + ": " + dPhone.parentNode.firstChild.textContent.trim() });
      phone.value = dPhone.value;
      var started = el("input", { type: "datetime-local", "aria-label": name + ": " + dStarted.parentNode.firstChild.textContent.trim() });
      started.value = dStarted.value;
      var progress = el("progress", { max: "100", value: "0", "aria-label": name });
      var status = el("span", { "class": "status", role: "status" }, T.waiting);
      var remove = el("button", { type: "button", "class": "link" }, T.remove);
      [manager, direction, phone, started, progress, status].forEach(function (c) { tr.appendChild(cell(c)); });
      tr.appendChild(cell(remove));
      var item = { file: file, tr: tr, manager: manager, direction: direction, phone: phone, started: started,
                   progress: progress, status: status, sent: false };
      remove.addEventListener("click", function () { if (!item.sent) { tr.remove(); item.removed = true; refresh(); } });
      items.push(item);
      tbody.appendChild(tr);
    });
    refresh();
  }
  function pending() { return items.filter(function (i) { return !i.sent && !i.removed; }); }
  function refresh() {
    table.hidden = items.filter(function (i) { return !i.removed; }).length === 0;
    start.disabled = pending().length === 0;
  }
  function setStatus(item, key, text, link) {
    item.status.className = "status s-" + key;
    item.status.textContent = "";
    if (link) { var a = el("a", { href: link }, text); item.status.appendChild(a); } else item.status.textContent = text;
  }

  function poll(item, id) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", "/api/v1/calls/" + id);
    xhr.onload = function () {
      if (xhr.status !== 200) { setTimeout(function () { poll(item, id); }, 3000); return; }
      var c = JSON.parse(xhr.responseText);
      var text = T[c.status] || c.status;
      if (c.status === "done" && c.score !== null) text += " · " + T.score + " " + Math.round(c.score);
      if (c.status === "failed" && c.error) text += ": " + c.error.message;
      setStatus(item, c.status, text, "/calls/" + id);
      item.tr.dataset.status = c.status;
      if (c.status !== "done" && c.status !== "failed") setTimeout(function () { poll(item, id); }, 2000);
    };
    xhr.onerror = function () { setTimeout(function () { poll(item, id); }, 3000); };
    xhr.send();
  }

  function send(item) {
    item.sent = true;
    [item.manager, item.direction, item.phone, item.started].forEach(function (c) { c.disabled = true; });
    var form = new FormData();
    form.append("files", item.file, item.file.name);
    if (item.manager.value) form.append("manager_id", item.manager.value);
    if (item.direction.value) form.append("direction", item.direction.value);
    if (item.phone.value.trim()) form.append("client_phone", item.phone.value.trim());
    if (item.started.value) form.append("started_at", new Date(item.started.value).toISOString());
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/calls");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) item.progress.value = Math.round(100 * e.loaded / e.total); };
    setStatus(item, "queued", T.uploading);
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && body.items && body.items[0]) {
        var r = body.items[0];
        item.progress.value = 100;
        if (r.outcome === "rejected") { setStatus(item, "failed", T.rejected + ": " + r.error.message); return; }
        if (r.outcome === "duplicate") setStatus(item, "queued", T.duplicate);
        item.tr.dataset.callId = r.call_id;
        poll(item, r.call_id);
      } else {
        var msg = body.error ? body.error.message : ("HTTP " + xhr.status);
        setStatus(item, "failed", T.rejected + ": " + msg);
      }
    };
    xhr.onerror = function () { setStatus(item, "failed", T.rejected); };
    xhr.send(form);
  }

  input.addEventListener("change", function () { add(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) { if (e.dataTransfer && e.dataTransfer.files) add(e.dataTransfer.files); });
  start.addEventListener("click", function () { pending().forEach(send); refresh(); });
});
