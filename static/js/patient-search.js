// The report's patient box: as one types, the practice's patients whose name contains
// the text (or whose ID starts with it) are offered in its list. Picking one puts the
// patient ID in the box; the server accepts an ID or a patient's whole name.
(() => {
  const box = document.querySelector("[data-patient-search]");
  if (!box) return;
  const input = box.querySelector("input");
  const list = box.querySelector("datalist");
  const url = box.dataset.patientSearch;
  let timer = null;
  let asked = "";

  const show = (patients) => {
    list.replaceChildren(...patients.map((patient) => {
      const option = document.createElement("option");
      option.value = patient.id;
      option.label = `${patient.name} (${patient.id})`;
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
      show((await response.json()).patients);
    } catch (error) {
      // Offline or signed out: the box still takes an ID or a whole name.
    }
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
})();
