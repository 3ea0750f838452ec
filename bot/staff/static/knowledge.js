/* Knowledge-base edit form: the answer's live character count and the "今天" date button.
   The page works without it (the server counts and checks again on save). No inline scripts (CSP). */
(function () {
  "use strict";
  var answer = document.getElementById("answer");
  var counter = document.getElementById("answer-counter");
  if (answer && counter) {
    var max = parseInt(answer.getAttribute("data-max"), 10) || 120;
    var update = function () {
      var length = Array.from(answer.value.replace(/\r\n/g, "\n").trim()).length;
      counter.textContent = "已写 " + length + " / " + max + " 字" + (length > max ? "，超出 " + (length - max) + " 字" : "");
      counter.classList.toggle("is-over", length > max);
    };
    answer.addEventListener("input", update);
    update();
  }
  var today = document.getElementById("verified-today");
  var date = document.getElementById("last_verified");
  if (today && date) {
    today.hidden = false;
    today.addEventListener("click", function () {
      date.value = today.getAttribute("data-today");
      date.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }
})();
