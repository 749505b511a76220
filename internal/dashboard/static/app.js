// Live parts of the dashboard: elements with data-live get server-sent
// events. Everything else works without JavaScript.
(function () {
  "use strict";
  function live(el, handlers) {
    var es = new EventSource(el.getAttribute("data-live"));
    Object.keys(handlers).forEach(function (k) {
      es.addEventListener(k, function (e) { handlers[k](e.data, es); });
    });
    es.addEventListener("end", function () { es.close(); });
    es.addEventListener("failed", function (e) { es.close(); });
    return es;
  }
  var apps = document.getElementById("apps");
  if (apps && apps.dataset.live) {
    live(apps, { apps: function (html) { apps.innerHTML = html; } });
  }
  var steps = document.getElementById("steps");
  if (steps && steps.dataset.live) {
    live(steps, { steps: function (html) { steps.innerHTML = html; } });
  }
  var log = document.getElementById("log");
  if (log && log.dataset.live) {
    var atEnd = true;
    log.addEventListener("scroll", function () {
      atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    });
    log.scrollTop = log.scrollHeight;
    live(log, {
      line: function (data) {
        var l = JSON.parse(data);
        var span = document.createElement("span");
        span.className = "ll " + l.stream;
        var t = document.createElement("span");
        t.className = "t";
        t.textContent = l.time;
        var i = document.createElement("span");
        i.className = "i";
        i.textContent = l.instance;
        span.appendChild(t);
        span.appendChild(document.createTextNode(" "));
        span.appendChild(i);
        span.appendChild(document.createTextNode(" " + l.text + "\n"));
        log.appendChild(span);
        if (atEnd) { log.scrollTop = log.scrollHeight; }
      }
    });
  }
})();
