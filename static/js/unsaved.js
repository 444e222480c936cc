// A form marked data-warn-unsaved: leaving the page with edits not yet saved (following a
// link, or sending another form of the page, such as Generate New PIN) asks the browser's
// "Leave site?" first. Saving the form itself does not ask, nor does the idle sign-out
// (static/js/session.js), which must take the page away whatever it holds.
(() => {
  const forms = document.querySelectorAll("form[data-warn-unsaved]");
  let edited = null;
  for (const form of forms) {
    form.addEventListener("input", () => { edited = form; });
    form.addEventListener("change", () => { edited = form; });
    form.addEventListener("submit", () => { if (edited === form) edited = null; });
  }
  window.addEventListener("beforeunload", (event) => {
    if (edited && !document.documentElement.dataset.signedOut) {
      event.preventDefault();
      event.returnValue = "";  // older browsers ask only when this is set
    }
  });
})();
