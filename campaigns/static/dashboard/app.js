/* The dashboard's only script: live regions, uploads, the palette editor, the campaign form and
 * the review queue's keyboard. No build step, no dependencies. Every page reads without it:
 * forms post normally, and live panels simply show the state at load time.
 *
 * Live updates: an element with data-poll="URL" is fetched again every second (header
 * X-Fragment: 1, answered with the same element re-rendered) and swapped in place. The server
 * leaves data-poll off once nothing is running, which ends the polling; data-reload-when-done
 * reloads the page at that moment (to show new clips).
 */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var RETRY_MS = 3000;

  function parseOne(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    return tpl.content.firstElementChild;
  }

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var reloadWhenDone = el.hasAttribute("data-reload-when-done");
    function tick() {
      if (!el.isConnected) return;  // replaced by a region refresh: that copy polls itself
      fetch(url, { headers: { "X-Fragment": "1" }, credentials: "same-origin" })
        .then(function (res) { if (!res.ok) throw new Error("HTTP " + res.status); return res.text(); })
        .then(function (html) {
          var next = parseOne(html);
          if (!next || !el.isConnected) return;
          var focusedId = document.activeElement && el.contains(document.activeElement) ? document.activeElement.id : "";
          el.replaceWith(next);
          if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
          init(next);
          if (!next.hasAttribute("data-poll") && reloadWhenDone) window.location.reload();
        })
        .catch(function () { setTimeout(tick, RETRY_MS); });
    }
    setTimeout(tick, POLL_MS);
  }

  /* Re-render named regions ([data-region=NAME]) from a fresh copy of this page. */
  function refreshRegions(names) {
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (res) { return res.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        names.forEach(function (name) {
          var sel = '[data-region="' + name + '"]';
          var fresh = doc.querySelector(sel), old = document.querySelector(sel);
          if (fresh && old) { old.innerHTML = fresh.innerHTML; init(old); }
        });
      });
  }

  /* ---- Training loss, drawn live from the step/loss the server reports each second ---- */
  var lossHistory = {};
  try { lossHistory = JSON.parse(sessionStorage.getItem("adclip-loss") || "{}"); } catch (e) { lossHistory = {}; }

  function svgEl(name, attrs, text) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawLiveLoss(fig) {
    var job = fig.getAttribute("data-job"), step = +fig.getAttribute("data-step");
    var total = Math.max(1, +fig.getAttribute("data-total")), loss = parseFloat(fig.getAttribute("data-loss"));
    if (!isFinite(loss)) return;
    var points = lossHistory[job] = lossHistory[job] || [];
    if (!points.length || points[points.length - 1][0] < step) points.push([step, loss]);
    try { sessionStorage.setItem("adclip-loss", JSON.stringify(lossHistory)); } catch (e) { /* private mode */ }
    var svg = fig.querySelector("svg");
    var L = 46, R = 550, T = 10, B = 166;
    var values = points.map(function (p) { return p[1]; });
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (hi - lo < 1e-12) { lo -= 0.5 * Math.abs(lo || 1); hi += 0.5 * Math.abs(hi || 1); }
    function x(s) { return L + (R - L) * (s / total); }
    function y(v) { return B - (B - T) * (v - lo) / (hi - lo); }
    svg.textContent = "";
    [hi, (hi + lo) / 2, lo].forEach(function (v) {
      svg.appendChild(svgEl("line", { "class": "grid", x1: L, x2: R, y1: y(v), y2: y(v) }));
      svg.appendChild(svgEl("text", { x: L - 6, y: y(v), "text-anchor": "end", "dominant-baseline": "middle" }, v.toPrecision(3)));
    });
    svg.appendChild(svgEl("line", { "class": "axis", x1: L, x2: R, y1: B, y2: B }));
    svg.appendChild(svgEl("text", { x: L, y: B + 16, "text-anchor": "middle" }, "0"));
    svg.appendChild(svgEl("text", { x: R, y: B + 16, "text-anchor": "middle" }, String(total)));
    var line = points.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" ");
    svg.appendChild(svgEl("polyline", { "class": "line", points: line }));
    var last = points[points.length - 1];
    svg.appendChild(svgEl("circle", { cx: x(last[0]), cy: y(last[1]), r: 3.5, fill: "#4338ca" }));
  }

  /* ---- Palette editor: colour inputs named "palette", added and removed in place ---- */
  function initPalette(editor) {
    var add = editor.querySelector("[data-add]");
    var max = 12;
    function items() { return editor.querySelectorAll(".palette-item"); }
    function renumber() {
      var label = editor.getAttribute("data-colour-label") || "Colour";
      items().forEach(function (item, i) { item.querySelector("input").setAttribute("aria-label", label + " " + (i + 1)); });
      add.disabled = items().length >= max;
    }
    editor.addEventListener("click", function (e) {
      var remove = e.target.closest("[data-remove]");
      if (!remove) return;
      var item = remove.closest(".palette-item");
      var next = item.nextElementSibling;
      item.remove();
      renumber();
      (next && next.querySelector("input") || add).focus();
    });
    editor.addEventListener("input", function (e) {
      if (e.target.type === "color") e.target.nextElementSibling.textContent = e.target.value.toUpperCase();
    });
    add.addEventListener("click", function () {
      if (items().length >= max) return;
      var item = document.createElement("span");
      item.className = "palette-item";
      var colour = ["#4338ca", "#f59e0b", "#10b981", "#ef4444", "#0ea5e9", "#111827"][items().length % 6];
      item.innerHTML = '<input type="color" name="palette"><span class="hex" aria-hidden="true"></span>' +
        '<button type="button" data-remove>\u00d7</button>';
      item.querySelector("input").value = colour;
      item.querySelector(".hex").textContent = colour.toUpperCase();
      item.querySelector("button").setAttribute("aria-label", editor.getAttribute("data-remove-label") || "Remove this colour");
      editor.insertBefore(item, add);
      renumber();
      item.querySelector("input").focus();
    });
    renumber();
  }

  /* ---- Asset drop zone: one request per file, each with its preview and its own result ---- */
  function initDropzone(form) {
    var input = form.querySelector("input[type=file]");
    var list = document.querySelector("[data-uploads]");
    var submit = form.querySelector("[data-upload-submit]");
    if (submit) submit.hidden = true;  // files go up as soon as they are chosen or dropped
    var text = function (name, fallback) { return form.getAttribute("data-msg-" + name) || fallback; };
    ["dragenter", "dragover"].forEach(function (ev) {
      form.addEventListener(ev, function (e) { e.preventDefault(); form.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (ev) {
      form.addEventListener(ev, function (e) { e.preventDefault(); form.classList.remove("over"); });
    });
    form.addEventListener("drop", function (e) { uploadAll(Array.prototype.slice.call(e.dataTransfer.files)); });
    input.addEventListener("change", function () {
      var files = Array.prototype.slice.call(input.files);
      input.value = "";
      uploadAll(files);
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      uploadAll(Array.prototype.slice.call(input.files));
    });

    function uploadAll(files) {
      var okCount = 0;
      var chain = Promise.resolve();
      files.forEach(function (file) {
        chain = chain.then(function () { return uploadOne(file).then(function (ok) { if (ok) okCount++; }); });
      });
      chain.then(function () { if (okCount) refreshRegions(["asset-grid", "training"]); });
    }

    function uploadOne(file) {
      var li = document.createElement("li");
      li.className = "upload";
      var preview;
      if (/^image\//.test(file.type)) {
        preview = document.createElement("img");
        preview.alt = "";
        preview.src = URL.createObjectURL(file);
        preview.onerror = function () { preview.replaceWith(placeholder()); };
      } else if (/^video\//.test(file.type)) {
        preview = document.createElement("video");
        preview.muted = true;
        preview.src = URL.createObjectURL(file);
      } else {
        preview = placeholder();
      }
      var meta = document.createElement("div");
      meta.className = "meta";
      var name = document.createElement("div");
      name.className = "name";
      name.textContent = file.name;
      var status = document.createElement("div");
      status.className = "small muted";
      status.textContent = text("uploading", "Uploading\u2026") + " " + Math.max(1, Math.round(file.size / 1024)) + " KB";
      meta.appendChild(name);
      meta.appendChild(status);
      li.appendChild(preview);
      li.appendChild(meta);
      list.appendChild(li);

      var body = new FormData();
      body.append("file", file);
      body.append("caption", (form.querySelector("[name=caption]") || {}).value || "");
      body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      return fetch(form.action, { method: "POST", body: body, headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (res) {
          return res.json().catch(function () { return {}; }).then(function (data) { return { res: res, data: data }; });
        })
        .then(function (r) {
          if (r.res.ok) {
            li.classList.add("done");
            status.className = "small";
            status.textContent = r.data.asset && r.data.asset.created === false ? text("duplicate", "Already uploaded") : text("done", "Uploaded");
            return true;
          }
          li.classList.add("failed");
          status.className = "small error";
          status.setAttribute("role", "alert");
          status.textContent = (r.data.error && r.data.error.message) || ("HTTP " + r.res.status);
          return false;
        })
        .catch(function (err) {
          li.classList.add("failed");
          status.className = "small error";
          status.textContent = String(err);
          return false;
        });
    }

    function placeholder() {
      var ph = document.createElement("span");
      ph.className = "ph";
      ph.setAttribute("aria-hidden", "true");
      return ph;
    }
  }

  /* ---- Campaign form: custom size only when chosen, segment rows, duration hint ---- */
  function initCampaignForm(form) {
    var custom = form.querySelector("[data-custom-size]");
    var define = form.querySelector("[data-segments-define]");
    var auto = form.querySelector("[data-segments-auto]");
    var rows = form.querySelector("[data-segment-rows]");
    var duration = form.querySelector("[data-duration]");
    function checked(sel) { var el = form.querySelector(sel + " input:checked"); return el ? el.value : ""; }
    function sync() {
      if (custom) custom.hidden = checked("[data-format-choices]") !== "custom";
      var mode = checked("[data-segment-mode]");
      if (define) define.hidden = mode === "auto";
      if (auto) auto.hidden = mode !== "auto";
      var frames = +form.querySelector("[name=num_frames]").value, fps = +form.querySelector("[name=fps]").value;
      if (duration) duration.textContent = frames > 0 && fps > 0 ? "\u2248 " + (frames / fps).toFixed(1) + " s" : "";
    }
    form.addEventListener("change", sync);
    form.addEventListener("input", sync);
    var addRow = form.querySelector("[data-add-segment]");
    if (addRow) addRow.addEventListener("click", function () {
      var all = rows.querySelectorAll("[data-segment-row]");
      var copy = all[all.length - 1].cloneNode(true);
      var n = all.length + 1;
      copy.querySelectorAll("input").forEach(function (input) {
        var id = { segment_name: "seg-name-", segment_attributes: "seg-attrs-", segment_setting: "seg-setting-" }[input.name] + n;
        var label = copy.querySelector('label[for="' + input.id + '"]');
        if (label) label.setAttribute("for", id);
        input.id = id;
        input.value = "";
      });
      rows.appendChild(copy);
      copy.querySelector("input").focus();
    });
    sync();
  }

  /* ---- Review queue: j/k to move, a/r to decide, decisions posted without leaving the page ---- */
  function initReview(list) {
    var current = null;
    function items() { return Array.prototype.slice.call(list.querySelectorAll("[data-review-item]")); }
    function open() { return items().filter(function (i) { return !i.classList.contains("decided"); }); }
    function select(item, focus) {
      if (current) current.classList.remove("current");
      current = item || null;
      if (!current) return;
      current.classList.add("current");
      if (focus) {
        current.focus({ preventScroll: true });
        current.scrollIntoView({ block: "nearest", behavior: "smooth" });
      }
    }
    function move(step) {
      var all = items();
      var i = current ? all.indexOf(current) : -1;
      var next = all[Math.min(all.length - 1, Math.max(0, i + step))];
      select(next, true);
    }
    function nextOpen(after) {
      var all = items(), i = all.indexOf(after);
      return all.slice(i + 1).concat(all.slice(0, i)).filter(function (x) { return !x.classList.contains("decided"); })[0];
    }
    list.addEventListener("focusin", function (e) {
      var item = e.target.closest("[data-review-item]");
      if (item && item !== current) select(item, false);
    });
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      var t = e.target;
      if (t.matches && t.matches("textarea, input, select")) {
        if (e.key === "Escape" && current) { t.blur(); current.focus({ preventScroll: true }); }
        return;
      }
      if (e.key === "j") { e.preventDefault(); move(1); }
      else if (e.key === "k") { e.preventDefault(); move(-1); }
      else if (e.key === "a" && current) { e.preventDefault(); decide(current, "approve"); }
      else if (e.key === "r" && current) { e.preventDefault(); decide(current, "reject"); }
    });
    list.addEventListener("submit", function (e) {
      var form = e.target.closest("[data-review-form]");
      if (!form) return;
      e.preventDefault();
      decide(form.closest("[data-review-item]"), e.submitter && e.submitter.value ? e.submitter.value : "approve");
    });
    function decide(item, decision) {
      if (!item || item.classList.contains("decided") || item.classList.contains("busy")) return;
      var form = item.querySelector("[data-review-form]");
      if (!form) return;
      var body = new FormData(form);
      body.set("decision", decision);
      var buttons = form.querySelectorAll("button");
      var result = item.querySelector("[data-result]");
      item.classList.add("busy");
      buttons.forEach(function (b) { b.disabled = true; });
      fetch(form.action, { method: "POST", body: body, headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (res) {
          return res.json().catch(function () { return {}; }).then(function (data) { return { res: res, data: data }; });
        })
        .then(function (r) {
          item.classList.remove("busy");
          if (r.res.ok) {
            result.classList.remove("error");
            result.textContent = r.data.message;
            finish(item, r.data.clip && r.data.clip.status);
            select(nextOpen(item), true);
            return;
          }
          result.classList.add("error");
          result.setAttribute("role", "alert");
          result.textContent = (r.data.error && r.data.error.message) || ("HTTP " + r.res.status);
          if (r.res.status === 409) finish(item, r.data.error && r.data.error.details && r.data.error.details.status);
          else buttons.forEach(function (b) { b.disabled = false; });
        })
        .catch(function (err) {
          item.classList.remove("busy");
          result.classList.add("error");
          result.textContent = String(err);
          buttons.forEach(function (b) { b.disabled = false; });
        });
    }
    function finish(item, status) {
      item.classList.add("decided");
      if (status) item.setAttribute("data-decision", status);
      item.querySelectorAll("textarea, button, [data-bulk-check]").forEach(function (el) { el.disabled = true; });
      var check = item.querySelector("[data-bulk-check]");
      if (check) check.checked = false;
    }
    var all = document.querySelector("[data-select-all]");
    if (all) all.addEventListener("change", function () {
      document.querySelectorAll("[data-bulk-check]").forEach(function (c) { if (!c.disabled) c.checked = all.checked; });
    });
    select(open()[0], false);
  }

  function each(root, selector, fn) {
    if (root.matches && root.matches(selector)) fn(root);
    Array.prototype.forEach.call(root.querySelectorAll(selector), fn);
  }

  function init(root) {
    each(root, "[data-poll]", poll);
    each(root, "[data-live-loss]", drawLiveLoss);
    each(root, "[data-palette-editor]", initPalette);
    each(root, "[data-dropzone]", initDropzone);
    each(root, "[data-review-list]", initReview);
    each(root, "form[data-autosubmit] select", function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    each(root, "form", function (form) {
      if (form.querySelector("[data-format-choices]")) initCampaignForm(form);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
