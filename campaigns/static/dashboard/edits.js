/* The clip page's keep box: drag on the poster (mouse, pen or finger) to draw the box around the
 * product; the re-scene form's four inputs (x0, y0, x1, y1: fractions of the width and height from
 * the top-left corner) follow the drawing, and typing in them moves the box. Without this script
 * the inputs are typed by hand. No dependencies.
 */
(function () {
  "use strict";

  var EDGES = ["x0", "y0", "x1", "y1"];

  function clamp(v) { return Math.max(0, Math.min(1, v)); }

  function initBox(surface) {
    var form = document.getElementById(surface.getAttribute("data-box-form"));
    if (!form) return;
    var inputs = EDGES.map(function (edge) { return form.querySelector("[data-box='" + edge + "']"); });
    if (inputs.some(function (input) { return !input; })) return;
    var box = surface.querySelector(".keep-box");
    var start = null;

    function at(e) {
      var r = surface.getBoundingClientRect();
      return [clamp((e.clientX - r.left) / r.width), clamp((e.clientY - r.top) / r.height)];
    }
    function show(b) {
      if (!(b[2] > b[0] && b[3] > b[1])) { box.hidden = true; return; }
      box.hidden = false;
      box.style.left = (b[0] * 100) + "%";
      box.style.top = (b[1] * 100) + "%";
      box.style.width = ((b[2] - b[0]) * 100) + "%";
      box.style.height = ((b[3] - b[1]) * 100) + "%";
    }
    function write(b) {
      inputs.forEach(function (input, i) { input.value = b[i].toFixed(3); });
      show(b);
    }
    function spanning(p) {
      return [Math.min(start[0], p[0]), Math.min(start[1], p[1]), Math.max(start[0], p[0]), Math.max(start[1], p[1])];
    }
    function fromInputs() {
      var b = inputs.map(function (input) { return parseFloat(input.value); });
      if (b.some(isNaN)) { box.hidden = true; return; }
      show(b.map(clamp));
    }

    surface.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      e.preventDefault();
      start = at(e);
      if (surface.setPointerCapture) surface.setPointerCapture(e.pointerId);
      surface.classList.add("drawing");
      write(spanning(start));
    });
    surface.addEventListener("pointermove", function (e) {
      if (start) write(spanning(at(e)));
    });
    function end(e) {
      if (!start) return;
      write(spanning(at(e)));
      start = null;
      surface.classList.remove("drawing");
      inputs[0].dispatchEvent(new Event("change", { bubbles: true }));
    }
    surface.addEventListener("pointerup", end);
    surface.addEventListener("pointercancel", end);
    inputs.forEach(function (input) { input.addEventListener("input", fromInputs); });
    fromInputs();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-box-draw]"), initBox);
  });
})();
