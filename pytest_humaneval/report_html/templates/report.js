// pytest-humaneval report: filter by status and mode, search by task id or entry point, sort by duration.
// The state lives in the URL fragment (#status=failed&q=sort&sort=duration-desc), so a filtered view can be
// linked. Without JavaScript the page shows every program, in task order.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var list = document.getElementById("programs");
  if (!list) return;
  var rows = Array.prototype.slice.call(list.querySelectorAll("details.prog"));
  var original = rows.slice();
  var statusSel = document.getElementById("status-filter");
  var modeSel = document.getElementById("mode-filter");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var sortBtn = document.getElementById("sort-duration");
  var taskBtn = document.getElementById("sort-task");
  var sort = "task";

  function readHash() {
    var h = location.hash.replace(/^#/, "");
    if (h && h.indexOf("=") < 0) return; // a link to a problem, not a view
    statusSel.value = "all"; search.value = ""; sort = "task";
    if (modeSel) modeSel.value = "all";
    if (!h) return;
    h.split("&").forEach(function (part) {
      var kv = part.split("=");
      var k = decodeURIComponent(kv[0]), v = decodeURIComponent(kv.slice(1).join("=") || "");
      if (k === "status") statusSel.value = v;
      else if (k === "mode" && modeSel) modeSel.value = v;
      else if (k === "q") search.value = v;
      else if (k === "sort") sort = v;
    });
    if (!statusSel.value) statusSel.value = "all"; // a status this run does not have
  }

  function writeHash() {
    var parts = [];
    if (statusSel.value !== "all") parts.push("status=" + encodeURIComponent(statusSel.value));
    if (modeSel && modeSel.value !== "all") parts.push("mode=" + encodeURIComponent(modeSel.value));
    if (search.value) parts.push("q=" + encodeURIComponent(search.value));
    if (sort !== "task") parts.push("sort=" + sort);
    var h = parts.length ? "#" + parts.join("&") : " ";
    history.replaceState(null, "", h === " " ? location.pathname + location.search : h);
  }

  function apply() {
    var status = statusSel.value, mode = modeSel ? modeSel.value : "all";
    var q = search.value.trim().toLowerCase();
    var n = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], ds = r.dataset;
      var ok = status === "all" || (status === "not-passed" ? ds.status !== "passed" : ds.status === status);
      if (ok && mode !== "all") ok = ds.mode === mode;
      if (ok && q) ok = ds.task.toLowerCase().indexOf(q) >= 0 || ds.entry.toLowerCase().indexOf(q) >= 0;
      if (r.hidden === ok) r.hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = "showing " + n.toLocaleString("en") + " of " + rows.length.toLocaleString("en") + " programs";
    list.setAttribute("data-shown", String(n));
  }

  function order() {
    var sorted = original.slice();
    if (sort === "duration-desc" || sort === "duration-asc") {
      var sign = sort === "duration-desc" ? -1 : 1;
      sorted.sort(function (a, b) { return sign * (parseFloat(a.dataset.dur) - parseFloat(b.dataset.dur)); });
    }
    var frag = document.createDocumentFragment();
    sorted.forEach(function (r) { frag.appendChild(r); });
    list.appendChild(frag);
    sortBtn.textContent = "duration" + (sort === "duration-desc" ? " ▼" : sort === "duration-asc" ? " ▲" : "");
  }

  // A row's prompt is kept once per problem (in "Problems"); show it in the row when the row opens.
  list.addEventListener("toggle", function (e) {
    var row = e.target;
    if (!row.open || !row.classList || !row.classList.contains("prog")) return;
    var slot = row.querySelector(".prompt-slot");
    if (!slot || slot.dataset.filled) return;
    var src = document.getElementById("prompt-" + row.dataset.task);
    if (src) { slot.replaceChildren(src.cloneNode(true)); slot.firstChild.removeAttribute("id"); }
    slot.dataset.filled = "1";
  }, true);

  statusSel.addEventListener("change", function () { apply(); writeHash(); });
  if (modeSel) modeSel.addEventListener("change", function () { apply(); writeHash(); });
  search.addEventListener("input", function () { apply(); writeHash(); });
  sortBtn.addEventListener("click", function () {
    sort = sort === "duration-desc" ? "duration-asc" : "duration-desc";
    order(); writeHash();
  });
  taskBtn.addEventListener("click", function () { sort = "task"; order(); writeHash(); });
  window.addEventListener("hashchange", function () { readHash(); order(); apply(); });
  readHash();
  if (sort !== "task") order();
  apply();
})();
