/*
 * Progressive enhancement of the /verify form: drop a file anywhere on the form to verify it.
 * Without JavaScript the form works as a plain multipart POST. Nothing from the file is written
 * into the page by this script; the server renders the verdict.
 */
(function () {
  "use strict";
  function enhance() {
    var form = document.querySelector("form[data-dropzone]");
    if (!form) return;
    var input = form.querySelector("input[name=file]");
    if (!input) return;
    form.addEventListener("dragover", function (event) {
      event.preventDefault();
      form.classList.add("dropzone--active");
    });
    form.addEventListener("dragleave", function () {
      form.classList.remove("dropzone--active");
    });
    form.addEventListener("drop", function (event) {
      event.preventDefault();
      form.classList.remove("dropzone--active");
      var files = event.dataTransfer && event.dataTransfer.files;
      if (!files || files.length === 0) return;
      try {
        input.files = files;
      } catch (err) {
        return; // very old browsers: the file chooser still works
      }
      form.submit();
    });
    var hint = form.querySelector("[data-drop-hint]");
    if (hint) hint.hidden = false;
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhance);
  } else {
    enhance();
  }
})();
