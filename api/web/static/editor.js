// The script editor: "line N" beside an error selects that line in the YAML.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var area = document.getElementById("body");
  if (!area) return;
  function gotoLine(n) {
    var lines = area.value.split("\n");
    var start = 0;
    for (var i = 0; i < n - 1 && i < lines.length; i++) start += lines[i].length + 1;
    var end = start + (lines[n - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    var lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (n - 4) * lineHeight);
  }
  var result = document.getElementById("try-result");
  if (result) result.scrollIntoView({ block: "start" });
  var first = document.querySelector(".goto-line");
  if (first) {  // after a refused save: show the first faulty line without taking the focus from the alert
    var n = parseInt(first.dataset.line, 10), lh = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (n - 4) * lh);
  }
  document.querySelectorAll(".goto-line").forEach(function (b) {
    b.addEventListener("click", function () { gotoLine(parseInt(b.dataset.line, 10)); });
  });
});
