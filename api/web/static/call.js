// The call page: the transcript follows the player, a line plays from its start, a verdict shows its evidence.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // a call still being processed: look every few seconds, show it when it is scored
  var processing = document.getElementById("processing");
  if (processing) {
    var look = function () {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", "/api/v1/calls/" + processing.dataset.call);
      xhr.onload = function () {
        var status = xhr.status === 200 ? JSON.parse(xhr.responseText).status : null;
        if (status === "done" || status === "failed") location.reload(); else setTimeout(look, 3000);
      };
      xhr.onerror = function () { setTimeout(look, 5000); };
      xhr.send();
    };
    setTimeout(look, 3000);
  }
  var player = document.getElementById("player");
  var lines = Array.prototype.slice.call(document.querySelectorAll("#transcript .line"));
  var box = document.getElementById("transcript");
  var current = null;

  function scrollIntoBox(el) {
    if (!box || !el) return;
    var top = el.offsetTop - box.offsetTop;
    if (top < box.scrollTop || top + el.offsetHeight > box.scrollTop + box.clientHeight) {
      box.scrollTop = Math.max(0, top - box.clientHeight / 3);
    }
  }

  // the line being spoken at t; when the two sides overlap, the one that started last
  function lineAt(t) {
    var found = null, foundStart = -1;
    for (var i = 0; i < lines.length; i++) {
      var s = parseFloat(lines[i].dataset.start), e = parseFloat(lines[i].dataset.end);
      if (t >= s && t < Math.max(e, s + 0.05) && s >= foundStart) { found = lines[i]; foundStart = s; }
    }
    return found;
  }

  function play(from) {
    if (!player) return;
    player.currentTime = from;
    var p = player.play();
    if (p && p.catch) p.catch(function () { /* the user may block autoplay: the position is set anyway */ });
  }

  function follow() {
    var line = lineAt(player.currentTime);
    if (line === current) return;
    if (current) { current.classList.remove("current"); current.removeAttribute("aria-current"); }
    current = line;
    if (line) { line.classList.add("current"); line.setAttribute("aria-current", "true"); scrollIntoBox(line); }
  }
  if (player) {
    ["timeupdate", "seeked", "seeking"].forEach(function (t) { player.addEventListener(t, follow); });
  }
  lines.forEach(function (line) {
    line.addEventListener("click", function () { play(parseFloat(line.dataset.start) || 0); });
  });

  var focused = [];
  document.querySelectorAll(".show-evidence").forEach(function (btn) {
    var turns = (btn.dataset.turns || "").split(",").filter(Boolean);
    turns.forEach(function (n) { var l = document.getElementById("line-" + n); if (l) l.classList.add("evidence"); });
    btn.addEventListener("click", function () {
      focused.forEach(function (l) { l.classList.remove("focused"); });
      focused = turns.map(function (n) { return document.getElementById("line-" + n); }).filter(Boolean);
      focused.forEach(function (l) { l.classList.add("focused"); });
      if (focused.length) {
        scrollIntoBox(focused[0]);
        if (player) player.currentTime = parseFloat(focused[0].dataset.start) || 0;
      }
    });
  });

  // k: play/pause, j/l: 5 s back/forward; not while typing in a field
  document.addEventListener("keydown", function (ev) {
    if (!player || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || ev.target.isContentEditable) return;
    if (ev.key === "k") { if (player.paused) play(player.currentTime); else player.pause(); ev.preventDefault(); }
    else if (ev.key === "j") { player.currentTime = Math.max(0, player.currentTime - 5); ev.preventDefault(); }
    else if (ev.key === "l") { player.currentTime = player.currentTime + 5; ev.preventDefault(); }
  });
});
