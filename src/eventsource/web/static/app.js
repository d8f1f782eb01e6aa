// eventsource web UI: small progressive enhancement, no dependencies, works offline.
// The pages work without it; with it, the global log follows new commits live (server-sent
// events from /api/log/tail). Every value is inserted as text, never as markup.
(function () {
  "use strict";

  function cell(row, text, href) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function follow(body) {
    var base = body.getAttribute("data-base") || "/";
    var status = document.getElementById("live-status");
    var source = new EventSource(body.getAttribute("data-tail"));
    source.addEventListener("event", function (message) {
      var e = JSON.parse(message.data);
      var row = document.createElement("tr");
      row.className = "new";
      row.setAttribute("data-position", String(e.global_position));
      cell(row, "#" + e.global_position, base + "events/" + e.global_position);
      cell(row, e.stream_id, base + "streams/" + encodeURIComponent(e.stream_id));
      cell(row, "v" + e.stream_position);
      cell(row, e.event_type + (e.known ? "" : " (unknown type)"));
      cell(row, e.occurred_at);
      var code = document.createElement("code");
      code.textContent = JSON.stringify(e.data);
      cell(row, "").appendChild(code);
      body.insertBefore(row, body.firstChild);
    });
    source.onopen = function () { if (status) { status.classList.add("connected"); } };
    source.onerror = function () { if (status) { status.classList.remove("connected"); } };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var body = document.getElementById("log-rows");
    if (body && window.EventSource) { follow(body); }
  });
})();
