// Progressive enhancement of the quick-exit link (it works as a plain link without this):
// leave by replacing this page in the history, and leave on Escape pressed twice.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  // A page kept for the back button must not keep the receipt code: scrub it on leaving.
  window.addEventListener("pagehide", function () {
    var code = document.getElementById("receipt-code");
    if (code) {
      code.textContent = "";
    }
  });
  var link = document.getElementById("quick-exit");
  if (!link) {
    return;
  }
  function leave(event) {
    if (event) {
      event.preventDefault();
    }
    document.body.hidden = true;
    window.location.replace(link.href);
  }
  link.addEventListener("click", leave);
  var lastEscape = 0;
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    var now = Date.now();
    if (now - lastEscape < 1000) {
      leave(event);
    }
    lastEscape = now;
  });
})();
