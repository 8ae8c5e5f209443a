// pytest-humaneval report: filter by status and mode, search by task id or entry point, sort by duration.
// The state lives in the URL fragment (#status=failed&q=sort&sort=duration-desc), so a filtered view can be
// linked. Without JavaScript the page shows every program, in task order.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var list = document.getElementById("programs");
  if (!list) return;
  var rows = Array.prototype.slice.call(list.querySelectorAll("details.prog"));
  var statusSel = document.getElementById("status-filter");
  var modeSel = document.getElementById("mode-filter");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var sortBtn = document.getElementById("sort-duration");
  var taskBtn = document.getElementById("sort-task");
  var sort = "task";
  var entries = {}; // task id -> entry point, from the problems below (kept once per problem)
  document.querySelectorAll("#problems details.problem").forEach(function (p) {
    entries[p.id.slice("problem-".length)] = (p.dataset.entry || "").toLowerCase();
  });

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
      if (ok && q) ok = ds.task.toLowerCase().indexOf(q) >= 0 || (entries[ds.task] || "").indexOf(q) >= 0;
      if (r.hidden === ok) r.hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = "showing " + n.toLocaleString("en") + " of " + rows.length.toLocaleString("en") + " programs";
    list.setAttribute("data-shown", String(n));
  }

  // Sorting sets each row's CSS order (the list is a flex column): no row moves in the document, which
  // for 16,400 rows costs far more than a style change.
  function order() {
    if (sort === "duration-desc" || sort === "duration-asc") {
      var sign = sort === "duration-desc" ? -1 : 1;
      var keyed = rows.map(function (r, i) { return [parseFloat(r.dataset.dur), i]; });
      keyed.sort(function (a, b) { return sign * (a[0] - b[0]) || a[1] - b[1]; });
      for (var i = 0; i < keyed.length; i++) rows[keyed[i][1]].style.order = String(i);
    } else {
      for (var j = 0; j < rows.length; j++) rows[j].style.order = "";
    }
    sortBtn.textContent = "duration" + (sort === "duration-desc" ? " ▼" : sort === "duration-asc" ? " ▲" : "");
  }

  // A row's body comes as the text of its <noscript> (see the template); it becomes HTML when the row
  // opens, with a folded copy of the problem's prompt (kept once per problem, in "Problems").
  function hydrate(row) {
    var src = row.querySelector(":scope > noscript");
    if (!src) return;
    var holder = document.createElement("div");
    holder.innerHTML = src.textContent;
    var body = holder.firstElementChild;
    row.replaceChild(body, src);
    var prompt = document.getElementById("prompt-" + row.dataset.task);
    if (!prompt || !body) return;
    var fold = document.createElement("details");
    fold.className = "fold prompt";
    fold.innerHTML = "<summary>prompt</summary>";
    var pre = prompt.cloneNode(true);
    pre.removeAttribute("id");
    fold.appendChild(pre);
    body.insertBefore(fold, body.querySelector(".facts").nextSibling);
  }
  list.addEventListener("toggle", function (e) {
    var row = e.target;
    if (row.open && row.classList && row.classList.contains("prog")) hydrate(row);
  }, true);

  statusSel.addEventListener("change", function () { apply(); writeHash(); });
  if (modeSel) modeSel.addEventListener("change", function () { apply(); writeHash(); });
  var typing = null; // a large table is filtered once typing pauses, not on every key
  search.addEventListener("input", function () {
    clearTimeout(typing);
    if (rows.length <= 2000) { apply(); writeHash(); return; }
    typing = setTimeout(function () { apply(); writeHash(); }, 150);
  });
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
