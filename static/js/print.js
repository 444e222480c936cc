// The Print button of the audit history page: the browser's print dialog, which the
// page's print stylesheet (app.css, @media print) lays out without menus or forms.
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
