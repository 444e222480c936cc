// Open the password prompts as dialogs; without this script the links open them as pages.
document.addEventListener("click", (event) => {
  const opener = event.target.closest(".js-pin-dialog");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.dialog);
    if (dialog && typeof dialog.showModal === "function") {
      event.preventDefault();
      dialog.showModal();
      dialog.querySelector("input[type=password]").focus();
    }
    return;
  }
  const closer = event.target.closest(".js-close");
  if (closer) {
    closer.closest("dialog").close();
  }
});
