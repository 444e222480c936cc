// Boxes that suggest as one types: the report's patient and a platform auditor's practice.
// Each `[data-suggest]` block holds a text box and its datalist; the block's
// `data-suggest` address answers `?q=text` with {"results": [{"id", "name"}]}.
// Picking a suggestion puts its id in the box; the server also accepts a whole name.
(() => {
  const attach = (box) => {
    const input = box.querySelector("input");
    const list = box.querySelector("datalist");
    const url = box.dataset.suggest;
    let timer = null;
    let asked = "";

    const show = (results) => {
      list.replaceChildren(...results.map((result) => {
        const option = document.createElement("option");
        option.value = result.id;
        option.label = `${result.name} (${result.id})`;
        option.textContent = option.label;
        return option;
      }));
    };

    const search = async () => {
      const text = input.value.trim();
      if (!text || text === asked) return;
      asked = text;
      try {
        const response = await fetch(`${url}?q=${encodeURIComponent(text)}`, {
          credentials: "same-origin", headers: { Accept: "application/json" },
        });
        if (!response.ok || text !== input.value.trim()) return;
        show((await response.json()).results);
      } catch (error) {
        // Offline or signed out: the box still takes an id or a whole name.
      }
    };

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, 150);
    });
  };
  document.querySelectorAll("[data-suggest]").forEach(attach);
})();
