// Shared by every page: after a form posts back to "#item", move the keyboard focus there too.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (location.hash.length > 1) {
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target) {
      if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
      target.classList.add("flash-target");
      target.focus({ preventScroll: false });
    }
  }
});
