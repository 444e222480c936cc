// Warn before the server ends an idle session, and offer "Stay signed in".
// The server decides: this only asks (as a background request, which does not count as
// activity) and shows what it answers.
(() => {
  const dialog = document.getElementById("idle-dialog");
  if (!dialog) return;
  const timeout = Number(dialog.dataset.timeout);
  const warning = Number(dialog.dataset.warning);
  const count = dialog.querySelector(".js-idle-count");
  const csrf = dialog.querySelector(".js-idle-keep input[name=csrfmiddlewaretoken]").value;
  let timer = null;

  // Signed out: the page goes, unsaved edits or not (static/js/unsaved.js does not ask).
  const toLogin = () => {
    document.documentElement.dataset.signedOut = "true";
    window.location.assign(dialog.dataset.loginUrl + "?next=" + encodeURIComponent(window.location.pathname));
  };

  const schedule = (remaining) => {
    clearTimeout(timer);
    if (remaining > warning) {
      timer = setTimeout(check, (remaining - warning) * 1000);
    } else {
      warn(remaining);
    }
  };

  const check = async () => {
    try {
      const response = await fetch(dialog.dataset.statusUrl, {
        headers: { "X-Session-Background": "1" }, credentials: "same-origin",
      });
      if (response.status === 401) { toLogin(); return; }
      const body = await response.json();
      schedule(body.remaining);
    } catch (error) {
      timer = setTimeout(check, 10000);
    }
  };

  const warn = (remaining) => {
    let left = Math.max(0, Math.round(remaining));
    count.textContent = String(left);
    if (!dialog.open) dialog.showModal();
    timer = setInterval(() => {
      left -= 1;
      count.textContent = String(Math.max(0, left));
      if (left <= 0) { clearInterval(timer); check(); }
    }, 1000);
  };

  dialog.querySelector(".js-idle-keep").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearInterval(timer);
    const response = await fetch(dialog.dataset.keepaliveUrl, {
      method: "POST", headers: { "X-CSRFToken": csrf }, credentials: "same-origin",
    });
    if (response.status === 401) { toLogin(); return; }
    const body = await response.json();
    dialog.close();
    schedule(body.remaining);
  });

  schedule(timeout);
})();
