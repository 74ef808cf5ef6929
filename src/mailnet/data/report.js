(function () {
  "use strict";
  // Sort the "All contacts" table by a column, and filter it by pattern. Nothing else:
  // no network, no storage; without this script the whole table is simply shown.
  var table = document.getElementById("ledger");
  var controls = document.getElementById("controls");
  if (!table || !controls) { return; }
  controls.hidden = false;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.forEach(function (row, i) { row.dataset.order = i; });
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, col) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var numeric = th.classList.contains("n");
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        var d = numeric ? Number(x) - Number(y) : (x < y ? -1 : (x > y ? 1 : 0));
        return (up ? d : -d) || a.dataset.order - b.dataset.order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  var select = document.getElementById("pattern");
  var shown = document.getElementById("shown");
  function filter() {
    var want = select.value, n = 0;
    rows.forEach(function (row) {
      var flags = row.dataset.flags.split(" ").filter(Boolean);
      var show = want === "" || (want === "-" ? flags.length === 0 : flags.indexOf(want) >= 0);
      row.hidden = !show;
      n += show ? 1 : 0;
    });
    shown.textContent = n + " of " + rows.length + " contacts shown";
  }
  select.addEventListener("change", filter);
  filter();
}());
