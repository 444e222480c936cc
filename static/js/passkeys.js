// Passkeys beside django-otp-webauthn's own script, which runs the ceremonies.
// In a prompt: once the passkey is confirmed, choose "Passkey" so the form needs only the
// password. On the Security tab: once a passkey is added, show the tab again with it listed.
document.addEventListener("otp_webauthn.verification_complete", (event) => {
  const form = event.target.closest("form");
  const choice = form && form.querySelector("input[type=radio][value=passkey]");
  if (choice) {
    choice.checked = true;
    const password = form.querySelector("input[type=password]");
    if (password && !password.value) password.focus();
  }
});
document.addEventListener("otp_webauthn.register_complete", (event) => {
  const done = event.target.dataset.done;
  if (done) window.location.assign(done);
});
