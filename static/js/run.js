// The run page: filter boxes over long key/value tables, and the selected artifact's mark.
(() => {
  // Rows are filtered in place: hundreds of params stay on the page, no round trip.
  document.addEventListener("input", (event) => {
    const box = event.target.closest("[data-filter]");
    if (!box) return;
    const table = document.getElementById(box.dataset.filter);
    if (!table) return;
    const needle = box.value.trim().toLowerCase();
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      if (row.classList.contains("no-match")) continue;
      const match = !needle || row.textContent.toLowerCase().includes(needle);
      row.hidden = !match;
      if (match) shown += 1;
    }
    const none = table.querySelector("tr.no-match");
    if (none) none.hidden = shown > 0;
  });

  // The file whose preview is open is marked in the tree.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const link = event.target.closest(".node.file .name");
    if (!link) return;
    for (const node of document.querySelectorAll(".node.file.selected")) {
      node.classList.remove("selected");
    }
    link.closest(".node").classList.add("selected");
  });
})();
