// Progressive enhancement only: hide what the skip logic does not need, show progress.
// The page works fully without this file; the server ignores answers to hidden questions.
(function () {
  "use strict";
  var form = document.getElementById("survey");
  if (!form || !form.querySelectorAll) return;
  var blocks = form.querySelectorAll("[data-show-if]");

  function chosen(name) {
    var out = [];
    var inputs = form.querySelectorAll("input[name='" + name + "']:checked");
    for (var i = 0; i < inputs.length; i++) out.push(inputs[i].value);
    return out;
  }

  function update() {
    for (var i = 0; i < blocks.length; i++) {
      var rule = blocks[i].getAttribute("data-show-if").split(":");
      var want = rule[1].split(","), got = chosen(rule[0]), show = false;
      for (var j = 0; j < got.length; j++) if (want.indexOf(got[j]) >= 0) show = true;
      blocks[i].hidden = !show;
      blocks[i].querySelectorAll(".cond").forEach(function (p) { p.hidden = true; });
    }
  }

  form.addEventListener("change", update);
  update();
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
