// The navigation's menus (<details>): one open at a time; Escape or a click elsewhere
// closes it, and Escape puts the focus back on the menu's button.
(() => {
  const menus = [...document.querySelectorAll("details.nav-menu")];
  if (!menus.length) return;
  for (const menu of menus) {
    menu.addEventListener("toggle", () => {
      if (!menu.open) return;
      for (const other of menus) if (other !== menu) other.open = false;
    });
  }
  document.addEventListener("click", (event) => {
    for (const menu of menus) if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const open = menus.find((menu) => menu.open);
    if (!open) return;
    open.open = false;
    open.querySelector("summary").focus();
  });
})();
