/* The moderators' desk (Telegram Mini App). No framework: Leaflet (+ markercluster) and Chart.js are
   vendored under static/vendor/. Every API call carries Telegram's initData ("Authorization: tma ..."). */
(function () {
  "use strict";

  // -- Telegram: window.Telegram.WebApp when telegram-web-app.js is present, else the few lines we need
  //    (initData and the theme come in the URL hash as Telegram opens a Mini App; events go to the client).
  function telegram() {
    var w = window.Telegram && window.Telegram.WebApp;
    if (w && w.initData) {
      return { initData: w.initData, theme: w.themeParams || {}, ready: function () { w.ready(); w.expand(); },
               haptic: function (k) { try { w.HapticFeedback.notificationOccurred(k); } catch (e) {} } };
    }
    var hash = new URLSearchParams(location.hash.slice(1));
    var theme = {};
    try { theme = JSON.parse(hash.get("tgWebAppThemeParams") || "{}"); } catch (e) { theme = {}; }
    function post(type, data) {
      var body = JSON.stringify({ eventType: type, eventData: data || {} });
      try {
        if (window.TelegramWebviewProxy) window.TelegramWebviewProxy.postEvent(type, JSON.stringify(data || {}));
        else if (window.external && "notify" in window.external) window.external.notify(body);
        else if (window.parent !== window) window.parent.postMessage(body, "*");
      } catch (e) { /* outside Telegram: nothing to tell */ }
    }
    return { initData: hash.get("tgWebAppData") || "", theme: theme,
             ready: function () { post("web_app_ready"); post("web_app_expand"); },
             haptic: function (k) { post("web_app_trigger_haptic_feedback", { type: "notification", notification_type: k }); } };
  }

  var TG = telegram();
  var ME = null;
  var T = {};
  var $ = function (id) { return document.getElementById(id); };

  function applyTheme(p) {
    var map = { bg_color: "--bg", text_color: "--text", hint_color: "--hint", link_color: "--link",
                button_color: "--button", button_text_color: "--button-text", secondary_bg_color: "--secondary-bg" };
    Object.keys(map).forEach(function (k) { if (p[k]) document.documentElement.style.setProperty(map[k], p[k]); });
  }

  function t(key, values) {
    // The catalog's forms: {name} and, for English plurals, {name:one|other} (bot/core/i18n.py).
    var s = T[key] || key;
    if (values) Object.keys(values).forEach(function (k) {
      s = s.replace(new RegExp("\\{" + k + ":([^|}]*)\\|([^}]*)\\}", "g"), function (_, one, other) {
        return Number(values[k]) === 1 ? one : other;
      });
      s = s.split("{" + k + "}").join(values[k]);
    });
    return s;
  }

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function el(tag, attrs, html) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "class") e.className = attrs[k]; else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    });
    if (html != null) e.innerHTML = html;
    return e;
  }

  function api(path, opts) {
    opts = opts || {};
    var headers = { Authorization: "tma " + TG.initData };
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
    return fetch(path, { method: opts.method || "GET", headers: headers, body: opts.body }).then(function (r) {
      if (opts.raw) { if (!r.ok) throw { status: r.status, message: r.statusText }; return r.blob(); }
      return r.json().catch(function () { return {}; }).then(function (b) {
        if (!r.ok && !(opts.allow || []).includes(r.status)) throw { status: r.status, message: b.message || r.statusText, body: b };
        b._status = r.status;
        return b;
      });
    });
  }

  function status(text) { $("status").textContent = text || ""; }

  var toastTimer = null;
  function toast(text, action, seconds) {
    var box = $("toast");
    box.innerHTML = "";
    box.appendChild(el("span", { id: "toast-text" }, esc(text)));
    if (action) box.appendChild(el("button", { id: "toast-action", onclick: function () { box.hidden = true; action.run(); } }, esc(action.label)));
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, (seconds || 4) * 1000);
  }

  // -- tabs -------------------------------------------------------------------------------------
  var views = {};
  var current = null;
  function tabs() {
    var list = [["map", "tab_map"]];
    if (ME.can.reports) list.push(["board", "tab_board"]);
    if (ME.can.stations) list.push(["stations", "tab_stations"]);
    list.push(["week", "tab_week"]);
    var nav = $("tabs");
    nav.innerHTML = "";
    list.forEach(function (item) {
      nav.appendChild(el("button", { role: "tab", id: "tab-" + item[0], "aria-selected": "false",
        onclick: function () { show(item[0]); } }, esc(t("ui." + item[1]))));
    });
  }
  function show(name, arg) {
    current = name;
    $("toast").hidden = true;
    document.querySelectorAll(".view").forEach(function (v) { v.hidden = v.id !== "view-" + name; });
    document.querySelectorAll("#tabs button").forEach(function (b) { b.setAttribute("aria-selected", b.id === "tab-" + name); });
    if (location.hash.indexOf("tgWebAppData") < 0) history.replaceState(null, "", "#" + name);
    views[name](arg);
  }

  function options(select, items, value) {
    items.forEach(function (it) {
      var o = el("option", { value: it[0] }, esc(it[1]));
      if (it[0] === value) o.selected = true;
      select.appendChild(o);
    });
    return select;
  }

  // -- map --------------------------------------------------------------------------------------
  var map = null, layers = {}, mapFilters = { status: "", category: "", area: "", age: "" };
  function statusColor(s) {
    return { new: "#dc2626", acknowledged: "#f59e0b", in_progress: "#2563eb", resolved: "#059669", rejected: "#6b7280", duplicate: "#9333ea" }[s] || "#6b7280";
  }
  function buildMapFilters() {
    var box = $("map-filters");
    if (box.childElementCount) return;
    if (ME.can.reports) {
      var st = options(el("select", { id: "f-status", "aria-label": t("ui.filter_status") }),
        [["", t("ui.all_open")]].concat(ME.statuses.map(function (s) { return [s, ME.status_labels[s]]; })));
      var cat = options(el("select", { id: "f-category", "aria-label": t("ui.filter_category") }),
        [["", t("ui.filter_category") + ": " + t("ui.all")]].concat(ME.categories.map(function (c) { return [c.key, c.label]; })));
      var age = options(el("select", { id: "f-age", "aria-label": t("ui.filter_age") }),
        [["", t("ui.filter_age") + ": " + t("ui.all")], ["1", t("ui.age_1")], ["7", t("ui.age_7")], ["30", t("ui.age_30")]]);
      [st, cat, age].forEach(function (s) { s.addEventListener("change", function () {
        mapFilters.status = st.value; mapFilters.category = cat.value; mapFilters.age = age.value; loadMap(); }); });
      box.appendChild(st); box.appendChild(cat); box.appendChild(age);
    }
    if (ME.areas.length) {
      var ar = options(el("select", { id: "f-area", "aria-label": t("ui.filter_area") }),
        [["", t("ui.filter_area") + ": " + t("ui.all")]].concat(ME.areas.map(function (a) { return [a, a]; })));
      ar.addEventListener("change", function () { mapFilters.area = ar.value; loadMap(); });
      box.appendChild(ar);
    }
  }
  function initMap() {
    if (map) return;
    map = L.map("map", { zoomControl: true, attributionControl: true }).setView([30.274, 120.155], 12);
    var tiles = ME.tiles || {};
    if (tiles.url) {
      var loaded = 0, failed = 0;
      var layer = L.tileLayer(tiles.url, { subdomains: tiles.subdomains || "abc", maxZoom: 18, attribution: esc(tiles.attribution || "") });
      layer.on("tileload", function () { loaded++; $("map-notice").hidden = true; });
      layer.on("tileerror", function () {
        failed++;
        if (!loaded) { $("map-notice").textContent = t("ui.no_tiles"); $("map-notice").hidden = false; }
      });
      layer.addTo(map);
    } else {
      $("map-notice").textContent = t("ui.no_tiles"); $("map-notice").hidden = false;
    }
    layers.reports = L.markerClusterGroup({ maxClusterRadius: 45, showCoverageOnHover: false });
    layers.hotspots = L.layerGroup();
    layers.stations = L.markerClusterGroup({ maxClusterRadius: 40, showCoverageOnHover: false,
      iconCreateFunction: function (c) { return L.divIcon({ html: "<div><span>" + c.getChildCount() + "</span></div>", className: "marker-cluster marker-cluster-small", iconSize: [34, 34] }); } });
    layers.tasks = L.layerGroup();
    var overlays = {};
    if (ME.can.reports) { layers.reports.addTo(map); layers.hotspots.addTo(map); overlays[t("ui.layer_reports")] = layers.reports; overlays[t("ui.layer_hotspots")] = layers.hotspots; }
    layers.stations.addTo(map); overlays[t("ui.layer_stations")] = layers.stations;
    if (ME.can.tasks) { layers.tasks.addTo(map); overlays[t("ui.layer_tasks")] = layers.tasks; }
    L.control.layers(null, overlays, { collapsed: true }).addTo(map);
    if (ME.can.reports) {
      var legend = L.control({ position: "bottomleft" });
      legend.onAdd = function () {
        return el("div", { class: "legend" }, ME.open_statuses.map(function (s) {
          return '<i style="background:' + statusColor(s) + '"></i>' + esc(ME.status_labels[s]);
        }).join("<br>"));
      };
      legend.addTo(map);
    }
  }
  var fitted = false;
  function loadMap() {
    var q = new URLSearchParams();
    if (mapFilters.status) q.set("status", mapFilters.status);
    if (mapFilters.category) q.set("category", mapFilters.category);
    if (mapFilters.area) q.set("area", mapFilters.area);
    if (mapFilters.age) q.set("age", mapFilters.age);
    return api("/api/map?" + q).then(function (d) {
      Object.keys(layers).forEach(function (k) { layers[k].clearLayers(); });
      var bounds = [];
      d.reports.forEach(function (r) {
        var icon = L.divIcon({ className: "", iconSize: [26, 26],
          html: '<div class="mk mk-report st-' + r.status + '" data-ref="' + esc(r.ref) + '" data-id="' + r.id + '">' + (r.kind === "hazard" ? "!" : "•") + "</div>" });
        var m = L.marker([r.mlat, r.mlon], { icon: icon, title: r.ref });
        var body = el("div", {}, '<div class="ref">' + esc(r.ref) + " · " + esc(ME.status_labels[r.status]) + "</div><div>" +
          esc(r.category_label) + "</div><div>" + esc(r.text) + '</div><div class="sub">' + esc(r.area) + " · " + esc(r.age) + "</div>");
        if (ME.can.reports) body.appendChild(el("button", { class: "btn", style: "margin-top:6px", onclick: function () { openReport(r.id); } }, esc(t("ui.open_card"))));
        m.bindPopup(body);
        layers.reports.addLayer(m);
        bounds.push([r.mlat, r.mlon]);
      });
      d.stations.forEach(function (s) {
        var icon = L.divIcon({ className: "", iconSize: [24, 24],
          html: '<div class="mk mk-station' + (s.flags ? " flagged" : "") + '" data-station="' + s.id + '">🏠</div>' });
        var text = "<b>" + esc(s.name) + "</b><br>" + esc(s.address) + "<br>" + esc(s.opening_hours || "") +
          (s.flags ? '<br><span class="badge red">' + esc(t("ui.station_flagged", { count: s.flags })) + "</span>" : "");
        layers.stations.addLayer(L.marker([s.mlat, s.mlon], { icon: icon, title: s.name }).bindPopup(text));
        if (!d.reports.length) bounds.push([s.mlat, s.mlon]);
      });
      d.tasks.forEach(function (tk) {
        var icon = L.divIcon({ className: "", iconSize: [24, 24], html: '<div class="mk mk-task" data-task="' + tk.id + '">🙌</div>' });
        L.marker([tk.mlat, tk.mlon], { icon: icon, title: tk.title }).bindPopup("<b>" + esc(tk.title) + "</b><br>" + esc(tk.starts) + " · " +
          esc(tk.place) + "<br>" + esc(t("ui.task_slots", { taken: tk.taken, slots: tk.slots }))).addTo(layers.tasks);
        bounds.push([tk.mlat, tk.mlon]);
      });
      if (bounds.length && !fitted) { map.fitBounds(bounds, { padding: [30, 30], maxZoom: 15 }); fitted = true; }
      document.body.dataset.mapReady = "1";
      if (!ME.can.reports) return;
      return api("/api/hotspots?" + q).then(function (h) {
        h.hotspots.forEach(function (x) {
          var name = [x.compound, x.property_company].filter(Boolean).join(" / ");
          L.circle([x.mlat, x.mlon], { radius: 120 + 40 * x.total, color: "#ea580c", fillOpacity: 0.2, weight: 2, className: "hotspot" })
            .bindPopup(esc(t("ui.hotspot", { name: name, total: x.total, open: x.open }))).addTo(layers.hotspots);
        });
        document.body.dataset.hotspotsReady = "1";
      });
    }).catch(fail);
  }
  views.map = function () {
    buildMapFilters();
    initMap();
    setTimeout(function () { map.invalidateSize(); }, 0);
    loadMap();
  };

  // -- board ------------------------------------------------------------------------------------
  var boardArea = "";
  views.board = function () {
    var box = $("board-filters");
    if (!box.childElementCount && ME.areas.length) {
      var ar = options(el("select", { id: "b-area" }), [["", t("ui.filter_area") + ": " + t("ui.all")]].concat(ME.areas.map(function (a) { return [a, a]; })));
      ar.addEventListener("change", function () { boardArea = ar.value; loadBoard(); });
      box.appendChild(ar);
    }
    box.hidden = !box.childElementCount;
    return loadBoard();
  };
  function loadBoard() {
    return api("/api/board" + (boardArea ? "?area=" + encodeURIComponent(boardArea) : "")).then(function (d) {
      var board = $("board");
      board.innerHTML = "";
      var chips = $("board-chips");
      chips.innerHTML = "";
      ME.statuses.forEach(function (s) {
        var n = d.counts[s] || 0;
        chips.appendChild(el("button", { class: "chipbtn", style: "--c:" + statusColor(s), onclick: function () {
          document.getElementById("col-" + s).scrollIntoView({ behavior: "smooth", inline: "start", block: "nearest" });
        } }, esc(ME.status_labels[s]) + " <b>" + n + "</b>"));
      });
      ME.statuses.forEach(function (s) {
        var cards = d.columns[s] || [];
        var col = el("div", { class: "column", id: "col-" + s });
        col.appendChild(el("h2", {}, esc(ME.status_labels[s]) + '<span class="count">' + (d.counts[s] || 0) + "</span>"));
        var list = el("div", { class: "cards" });
        if (!cards.length) list.appendChild(el("div", { class: "empty" }, esc(t("ui.empty_column"))));
        cards.forEach(function (r) {
          list.appendChild(el("div", { class: "card st-" + r.status, "data-ref": r.ref, onclick: function () { openReport(r.id); } },
            '<div class="line1"><span class="ref">' + esc(r.ref) + "</span><span>" + esc(r.age) + "</span></div>" +
            "<div>" + esc(r.category_label) + '</div><div class="text">' + esc(r.text) + "</div>" +
            '<div class="meta">' + esc(r.area) + (r.supporters ? " · " + esc(t("ui.supporters", { count: r.supporters })) : "") + "</div>"));
        });
        col.appendChild(list);
        board.appendChild(col);
      });
      document.body.dataset.boardReady = "1";
    }).catch(fail);
  }

  function closeSheet() { $("sheet").hidden = true; $("sheet-body").innerHTML = ""; }
  $("sheet").addEventListener("click", function (e) { if (e.target.id === "sheet") closeSheet(); });

  function openReport(id) {
    if (current !== "board") show("board");
    return api("/api/reports/" + id).then(function (r) {
      var b = $("sheet-body");
      b.innerHTML = "";
      b.appendChild(el("button", { class: "btn secondary sheet-close", onclick: closeSheet }, esc(t("ui.close"))));
      b.appendChild(el("h3", { id: "card-title" }, esc(r.ref) + " " + esc(r.category_label)));
      b.appendChild(el("span", { class: "pill", id: "card-status", style: "background:" + statusColor(r.status) }, esc(ME.status_labels[r.status])));
      if (r.duplicate_of) b.appendChild(el("span", { class: "badge" }, esc(t("ui.duplicate_of", { ref: r.duplicate_of }))));
      if (r.text) b.appendChild(el("div", { class: "desc" }, esc(r.text)));
      function kv(k, v) { if (v) b.appendChild(el("div", { class: "kv" }, "<b>" + esc(t("ui." + k)) + "</b>" + esc(v))); }
      kv("reporter", r.reporter); kv("created", r.created + " · " + r.age); kv("area", r.area); kv("place", r.place);
      kv("compound", r.compound); kv("property", r.property_company);
      if (r.supporters) kv("supporters", t("ui.supporters", { count: r.supporters }));
      if (r.lat != null) {
        b.appendChild(el("div", { class: "kv" }, "<b>" + esc(t("ui.location")) + "</b>" + r.lat.toFixed(5) + ", " + r.lon.toFixed(5)));
      }
      if (r.photos) {
        var ph = el("div", { class: "photos", id: "card-photos" });
        b.appendChild(el("div", { class: "kv" }, "<b>" + esc(t("ui.photos")) + "</b>"));
        b.appendChild(ph);
        for (var i = 0; i < r.photos; i++) (function (i) {
          api("/api/reports/" + r.id + "/photo/" + i, { raw: true }).then(function (blob) {
            ph.appendChild(el("img", { src: URL.createObjectURL(blob), alt: r.ref + " " + (i + 1) }));
          }).catch(function () {});
        })(i);
      }
      if (r.voice) {
        b.appendChild(el("div", { class: "kv" }, "<b>" + esc(t("ui.voice")) + "</b>"));
        var audio = el("audio", { controls: "", id: "card-voice" });
        b.appendChild(audio);
        api("/api/reports/" + r.id + "/voice", { raw: true }).then(function (blob) { audio.src = URL.createObjectURL(blob); }).catch(function () {});
      }
      var actions = el("div", { class: "actions", id: "card-actions" });
      r.actions.forEach(function (a) {
        actions.appendChild(el("button", { class: "btn" + (a === "reject" ? " danger" : a === "duplicate" ? " secondary" : ""), "data-action": a,
          onclick: function () { decide(r, a, b); } }, esc(ME.action_labels[a])));
      });
      if (r.undo_until) actions.appendChild(el("button", { class: "btn secondary", "data-action": "undo", onclick: function () { undo(r); } }, "↶ " + esc(t("ui.undo"))));
      b.appendChild(actions);
      b.appendChild(el("div", { class: "kv" }, "<b>" + esc(t("ui.history")) + "</b>"));
      var hist = el("ul", { class: "history", id: "card-history" });
      r.history.forEach(function (h) {
        hist.appendChild(el("li", { class: h.undone ? "undone" : "" }, '<span class="when">' + esc(h.at) + "</span>" + esc(h.action_label) +
          (h.status_label ? " → " + esc(h.status_label) : "") + " · " + esc(h.who) + (h.note ? "<br>" + esc(h.note) : "") +
          (h.undone ? " (" + esc(t("ui.undone_mark")) + ")" : "")));
      });
      b.appendChild(hist);
      $("sheet").hidden = false;
    }).catch(fail);
  }

  function decide(r, action, b) {
    var needsNote = action === "resolve" || action === "reject";
    var needsRef = action === "duplicate";
    var old = document.getElementById("card-prompt");
    if (old) old.remove();
    if (!needsNote && !needsRef) return send(r, { action: action });
    var p = el("div", { class: "prompt", id: "card-prompt" });
    var input = needsNote ? el("textarea", { rows: "3", id: "card-note", placeholder: t("ui.note_prompt") })
                          : el("input", { type: "text", id: "card-ref", placeholder: t("ui.dup_prompt") });
    p.appendChild(input);
    var row = el("div", { class: "actions" });
    row.appendChild(el("button", { class: "btn secondary", onclick: function () { p.remove(); } }, esc(t("ui.cancel"))));
    row.appendChild(el("button", { class: "btn", id: "card-confirm", onclick: function () {
      var body = { action: action };
      if (needsNote) body.note = input.value; else body.duplicate_ref = input.value;
      send(r, body);
    } }, esc(t("ui.confirm"))));
    p.appendChild(row);
    $("card-actions").after(p);
    input.focus();
  }

  function send(r, body) {
    return api("/api/reports/" + r.id + "/action", { method: "POST", json: body, allow: [409] }).then(function (res) {
      if (!res.changed) { toast(res.message || "?"); TG.haptic("error"); return openReport(r.id); }
      TG.haptic("success");
      closeSheet();
      var grace = ME.undo_grace_seconds;
      toast(t("ui.changed", { status: ME.status_labels[res.status] }) + (grace ? " · " + t("ui.undo_hint", { seconds: grace }) : ""),
        { label: t("ui.undo"), run: function () { undo(r); } }, Math.max(grace, 4));
      loadBoard();
    }).catch(fail);
  }

  function undo(r) {
    return api("/api/reports/" + r.id + "/undo", { method: "POST", allow: [409] }).then(function (res) {
      toast(res.changed ? t("ui.undone") + " → " + ME.status_labels[res.status] : res.message);
      closeSheet();
      loadBoard();
    }).catch(fail);
  }

  // -- stations ---------------------------------------------------------------------------------
  var stationQuery = "";
  views.stations = function () {
    var form = $("station-search");
    if (!form.childElementCount) {
      var input = el("input", { type: "search", id: "station-q", placeholder: t("ui.search_placeholder") });
      form.appendChild(input);
      form.appendChild(el("button", { class: "btn", type: "submit" }, esc(t("ui.search"))));
      form.addEventListener("submit", function (e) { e.preventDefault(); stationQuery = input.value; loadStations(); });
      buildImport();
    }
    return loadStations();
  };
  function loadStations() {
    return api("/api/stations?q=" + encodeURIComponent(stationQuery)).then(function (d) {
      var list = $("station-list");
      list.innerHTML = "";
      if (!d.stations.length) list.appendChild(el("div", { class: "empty" }, esc(t("ui.no_results"))));
      d.stations.forEach(function (s) { list.appendChild(stationRow(s)); });
      document.body.dataset.stationsReady = "1";
    }).catch(fail);
  }
  function facLabel(code) {
    var f = ME.facilities.find(function (x) { return x.code === code; });
    return f ? f.label : code;
  }
  function stationRow(s) {
    var row = el("div", { class: "station", "data-station": s.id });
    row.innerHTML = '<div class="name">' + esc(s.name) + (s.active ? "" : '<span class="badge">' + esc(t("ui.station_inactive")) + "</span>") +
      (s.flags ? '<span class="badge red">' + esc(t("ui.station_flagged", { count: s.flags })) + "</span>" : "") + "</div>" +
      '<div class="sub">' + [s.area, s.address].filter(Boolean).map(esc).join(" · ") + "</div>" +
      '<div class="sub">🕘 ' + esc(s.opening_hours || "—") + "</div>" +
      '<div class="chips">' + s.facilities.map(function (c) { return '<span class="chip">' + esc(facLabel(c)) + "</span>"; }).join("") + "</div>";
    var buttons = el("div", { class: "row" });
    buttons.appendChild(el("button", { class: "btn secondary", "data-do": "edit", onclick: function () { editStation(s, row); } }, esc(t("ui.edit"))));
    buttons.appendChild(el("button", { class: "btn " + (s.active ? "danger" : "secondary"), "data-do": "active", onclick: function () {
      if (s.active && !confirm(t("ui.deactivate_confirm", { name: s.name }))) return;
      api("/api/stations/" + s.id + "/active", { method: "POST", json: { active: !s.active } }).then(function () { toast(t("ui.saved")); loadStations(); }).catch(fail);
    } }, esc(t(s.active ? "ui.deactivate" : "ui.activate"))));
    row.appendChild(buttons);
    return row;
  }
  function editStation(s, row) {
    if (row.querySelector("form")) return;
    var form = el("form", {});
    var hours = el("input", { type: "text", name: "opening_hours", value: s.opening_hours || "", placeholder: t("ui.hours_hint") });
    form.appendChild(el("label", {}, esc(t("ui.hours"))));
    form.appendChild(hours);
    form.appendChild(el("label", {}, esc(t("ui.facilities"))));
    var boxes = el("div", {});
    ME.facilities.forEach(function (f) {
      var lab = el("label", { class: "fac" });
      var cb = el("input", { type: "checkbox", value: f.code });
      if (s.facilities.indexOf(f.code) >= 0) cb.checked = true;
      lab.appendChild(cb); lab.appendChild(document.createTextNode(f.label));
      boxes.appendChild(lab);
    });
    form.appendChild(boxes);
    var save = el("button", { class: "btn", type: "submit" }, esc(t("ui.save")));
    form.appendChild(save);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var facilities = Array.prototype.map.call(boxes.querySelectorAll("input:checked"), function (c) { return c.value; });
      api("/api/stations/" + s.id, { method: "POST", json: { opening_hours: hours.value, facilities: facilities } })
        .then(function () { toast(t("ui.saved")); loadStations(); }).catch(fail);
    });
    row.appendChild(form);
  }
  function buildImport() {
    var box = $("station-import");
    box.innerHTML = "<h3>" + esc(t("ui.import_title")) + '</h3><div class="hint">' + esc(t("ui.import_hint")) + "</div>";
    var file = el("input", { type: "file", id: "import-file", accept: ".csv,.txt,.json,.geojson,text/csv" });
    var out = el("div", { id: "import-result" });
    box.appendChild(file);
    box.appendChild(out);
    file.addEventListener("change", function () {
      var f = file.files[0];
      if (!f) return;
      f.arrayBuffer().then(function (buf) {
        var upload = function (commit) {
          return fetch("/api/stations/import?commit=" + (commit ? 1 : 0) + "&name=" + encodeURIComponent(f.name),
            { method: "POST", headers: { Authorization: "tma " + TG.initData, "Content-Type": "text/csv" }, body: buf })
            .then(function (r) { return r.json().then(function (b) { if (!r.ok) throw { status: r.status, message: b.message }; return b; }); });
        };
        upload(false).then(function (res) {
          out.innerHTML = '<div class="okrows" id="import-summary">' + esc(t("ui.import_preview", { new: res.new, updates: res.updates, errors: res.errors.length })) + "</div>";
          var ul = el("ul", { class: "errors", id: "import-errors" });
          res.errors.forEach(function (e) { ul.appendChild(el("li", {}, esc(t("ui.import_line", { line: e.line })) + ": " + esc(e.reason))); });
          out.appendChild(ul);
          var count = res.rows.length;
          var go = el("button", { class: "btn", id: "import-commit" }, esc(count ? t("ui.import_commit", { count: count }) : t("ui.import_nothing")));
          if (!count) go.disabled = true;
          go.addEventListener("click", function () {
            go.disabled = true;
            upload(true).then(function (done) {
              out.innerHTML = '<div class="okrows" id="import-done">' + esc(t("ui.import_done", { inserted: done.inserted, updated: done.updated })) + "</div>";
              file.value = "";
              loadStations();
            }).catch(fail);
          });
          out.appendChild(go);
        }).catch(function (e) { out.innerHTML = '<ul class="errors"><li>' + esc(e.message) + "</li></ul>"; });
      });
    });
  }

  // -- the week ---------------------------------------------------------------------------------
  var charts = [];
  views.week = function () {
    return api("/api/week").then(function (w) {
      charts.forEach(function (c) { c.destroy(); });
      charts = [];
      var box = $("week");
      box.innerHTML = '<div class="range">' + esc(t("ui.week_range", { start: w.start, end: w.end })) + "</div>";
      var sum = function (a) { return a.reduce(function (x, y) { return x + y; }, 0); };
      var hours = function (h) { return h == null ? "—" : t("ui.hours_value", { hours: h }); };
      var k = [];
      if (w.include_reports) k.push(["kpi_reports", w.reports_total], ["kpi_ack", hours(w.median_ack_hours)], ["kpi_resolve", hours(w.median_resolve_hours)]);
      k.push(["kpi_tasks", sum(w.tasks_done)], ["kpi_points", sum(w.points)], ["kpi_broadcasts", sum(w.broadcasts)]);
      if (w.include_reports) k.push(["kpi_flags", Object.values(w.flags).reduce(function (x, y) { return x + y; }, 0)]);
      var grid = el("div", { class: "kpis", id: "kpis" });
      k.forEach(function (x) { grid.appendChild(el("div", { class: "kpi", "data-kpi": x[0] }, '<div class="v">' + esc(x[1]) + '</div><div class="k">' + esc(t("ui." + x[0])) + "</div>")); });
      box.appendChild(grid);
      var css = getComputedStyle(document.documentElement);
      Chart.defaults.color = css.getPropertyValue("--hint").trim() || "#6b7280";
      Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      var palette = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#84cc16", "#9ca3af"];
      function chart(title, config) {
        var c = el("div", { class: "chart" }, "<h4>" + esc(title) + '</h4><div class="box"><canvas></canvas></div>');
        box.appendChild(c);
        config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { legend: { position: "bottom", labels: { boxWidth: 10, font: { size: 11 } } } } }, config.options || {});
        charts.push(new Chart(c.querySelector("canvas"), config));
      }
      var stacked = { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } };
      if (w.include_reports) {
        chart(t("week.by_category"), { type: "bar", data: { labels: w.days, datasets: Object.keys(w.by_category).map(function (key, i) {
          return { label: w.category_labels[key], data: w.by_category[key], backgroundColor: palette[i % palette.length] }; }) }, options: stacked });
        chart(t("week.by_status"), { type: "bar", data: { labels: w.days, datasets: Object.keys(w.by_status).map(function (s) {
          return { label: w.status_labels[s], data: w.by_status[s], backgroundColor: statusColor(s) }; }) }, options: stacked });
      }
      chart(t("week.tasks_points"), { type: "bar", data: { labels: w.days, datasets: [
        { label: t("week.tasks_done"), data: w.tasks_done, backgroundColor: "#10b981", yAxisID: "y" },
        { label: t("week.points"), data: w.points, type: "line", borderColor: "#f59e0b", backgroundColor: "#f59e0b", yAxisID: "y1" }] },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, y1: { position: "right", beginAtZero: true, ticks: { precision: 0 }, grid: { drawOnChartArea: false } } } } });
      chart(t("week.broadcasts"), { type: "bar", data: { labels: w.days, datasets: [{ label: t("week.broadcasts"), data: w.broadcasts, backgroundColor: "#8b5cf6" }] },
        options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
      if (w.include_reports) {
        var reasons = Object.keys(w.flag_labels);
        chart(t("week.flags"), { type: "bar", data: { labels: reasons.map(function (r) { return w.flag_labels[r]; }),
          datasets: [{ data: reasons.map(function (r) { return w.flags[r] || 0; }), backgroundColor: "#ef4444" }] },
          options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } } });
      }
      document.body.dataset.weekReady = "1";
    }).catch(fail);
  };

  // -- start ------------------------------------------------------------------------------------
  function fail(e) {
    var msg = (e && e.message) || String(e);
    if (e && (e.status === 401 || e.status === 403)) {
      document.body.dataset.denied = String(e.status);
      $("tabs").innerHTML = "";
      document.querySelectorAll(".view").forEach(function (v) { v.hidden = true; });
      status(msg);
      return;
    }
    toast(t("ui.error", { message: msg }));
  }

  applyTheme(TG.theme);
  TG.ready();
  if (!TG.initData) { status("请在 Telegram 中打开工作台。 Open the desk from Telegram."); document.body.dataset.denied = "401"; }
  api("/api/me").then(function (me) {
    ME = me;
    T = me.texts;
    document.documentElement.lang = me.lang;
    document.title = t("ui.title");
    status("");
    tabs();
    var first = (location.hash.match(/^#(map|board|stations|week)$/) || [])[1];
    show(first && document.getElementById("tab-" + first) ? first : (ME.can.reports ? "board" : "map"));
  }).catch(fail);
})();
