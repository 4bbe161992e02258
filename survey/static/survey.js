// Progressive enhancement only: hide what the skip logic does not need, number the
// questions shown 1..n and count the same questions in the progress line.
// The page works fully without this file; the server ignores answers to hidden questions.
(function () {
  "use strict";
  var form = document.getElementById("survey");
  if (!form || !form.querySelectorAll || !form.addEventListener) return;
  var blocks = form.querySelectorAll("[data-show-if]");
  var questions = form.querySelectorAll(".q");
  var i;

  function chosen(name) {
    var out = [];
    var inputs = form.querySelectorAll("input[name='" + name + "']:checked");
    for (var k = 0; k < inputs.length; k++) out.push(inputs[k].value);
    return out;
  }

  function shown(el) {
    for (; el && el !== form; el = el.parentNode) if (el.hidden) return false;
    return true;
  }

  // Skip logic, in page order: a block shows when its question is shown and answered so.
  // A folded optional part (<details>) opens when an answer brings it into view.
  function applySkipLogic() {
    for (var k = 0; k < blocks.length; k++) {
      var rule = blocks[k].getAttribute("data-show-if").split(":");
      var want = rule[1].split(","), got = [], show = false;
      var source = document.getElementById("q-" + rule[0]);
      if (!source || shown(source)) got = chosen(rule[0]);
      for (var j = 0; j < got.length; j++) if (want.indexOf(got[j]) >= 0) show = true;
      if (blocks[k].hidden && show && blocks[k].tagName === "DETAILS") blocks[k].open = true;
      blocks[k].hidden = !show;
    }
  }

  // "Answered 5/16": the questions currently shown, and how many of them have an answer.
  // The same questions carry the numbers 1..n (the server numbers every question, as on
  // paper: without this script every question is on the page).
  var template = form.getAttribute("data-progress");
  // Staff keying in a paper sheet follow the printed numbers: every question keeps its own.
  var fixedNumbers = form.hasAttribute("data-fixed-numbers");
  var progress = null;
  if (template) {
    progress = document.createElement("p");
    progress.className = "progress";
    progress.setAttribute("role", "status");
    var first = form.querySelector("section");
    if (first) first.parentNode.insertBefore(progress, first);
  }

  function showProgress() {
    var total = 0, done = 0;
    for (var k = 0; k < questions.length; k++) {
      var q = questions[k];
      if (!shown(q)) continue;
      total++;
      var number = q.querySelector(".n");
      if (number && !fixedNumbers && number.textContent !== String(total)) {
        number.textContent = total;
      }
      var text = q.querySelector("textarea");
      if (text ? text.value.replace(/\s+/g, "") !== "" : q.querySelector("input:checked")) done++;
    }
    if (!progress) return;
    var line = template.replace("{done}", done).replace("{total}", total);
    if (progress.textContent !== line) progress.textContent = line;
  }

  function update() {
    applySkipLogic();
    showProgress();
  }

  // The sentences that explain the skip logic in words are for pages without this script.
  var conditions = form.querySelectorAll(".cond");
  for (i = 0; i < conditions.length; i++) conditions[i].hidden = true;

  form.addEventListener("change", update);
  var timer = null;
  form.addEventListener("input", function (event) {
    if (event.target.tagName !== "TEXTAREA") return;
    clearTimeout(timer);
    timer = setTimeout(showProgress, 600);
  });
  update();

  // After a failed submit: focus the summary; its links move focus into their question.
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a") : event.target;
      if (!link || !link.hash) return;
      var target = document.getElementById(link.hash.slice(1));
      if (!target) return;
      var input = target.querySelector("input:checked, input, textarea");
      if (!input) return;
      event.preventDefault();
      target.scrollIntoView();
      input.focus({ preventScroll: true });
    });
  }
})();
