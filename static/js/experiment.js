// Runs table: selection (select all, count), Compare link, column picker, purge confirm.
(() => {
  const MAX_COMPARE = 100;

  const selected = () => [...document.querySelectorAll('#run-selection input[name="run_ids"]:checked')];

  function refresh() {
    const form = document.getElementById("run-selection");
    if (!form) return;
    const ids = selected().map((box) => box.value);
    form.querySelectorAll("[data-needs-selection]").forEach((button) => {
      button.disabled = ids.length === 0;
    });
    const compare = form.querySelector("[data-compare]");
    if (compare) compare.disabled = ids.length < 2 || ids.length > MAX_COMPARE;
    const all = form.querySelector("[data-select-all]");
    const boxes = form.querySelectorAll('input[name="run_ids"]');
    if (all) {
      all.checked = boxes.length > 0 && ids.length === boxes.length;
      all.indeterminate = ids.length > 0 && ids.length < boxes.length;
    }
    const count = form.querySelector("[data-selected-count]");
    if (count) {
      if (!count.dataset.total) count.dataset.total = count.textContent;
      count.textContent = ids.length ? `${ids.length} selected` : count.dataset.total;
    }
  }

  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-select-all]")) {
      document.querySelectorAll('#run-selection input[name="run_ids"]').forEach((box) => {
        box.checked = event.target.checked;
      });
    }
    if (event.target.closest("#run-selection")) refresh();
  });

  document.addEventListener("click", (event) => {
    const compare = event.target.closest("[data-compare]");
    if (compare) {
      const ids = selected().map((box) => box.value);
      window.location.href = `${compare.dataset.compareUrl}?runs=${ids.join(",")}`;
      return;
    }
    const purge = event.target.closest("[data-confirm-purge]");
    if (purge && !window.confirm(purge.dataset.confirmPurge)) {
      event.preventDefault();
      return;
    }
    if (event.target.closest("[data-apply-columns]")) {
      const chosen = [...document.querySelectorAll(".column-choice:checked")].map((b) => b.value);
      const url = new URL(window.location.href);
      url.searchParams.set("cols", chosen.join(","));
      url.searchParams.delete("page");
      window.location.href = url.toString();
    }
  });

  // A sort click swaps the table and pushes the URL; keep the filter form's hidden
  // fields in step so the next search keeps that order and those columns.
  document.addEventListener("htmx:pushedIntoHistory", () => {
    const params = new URL(window.location.href).searchParams;
    const form = document.getElementById("run-filter");
    if (!form) return;
    for (const name of ["order", "cols", "per_page"]) {
      const field = form.querySelector(`input[type="hidden"][name="${name}"]`);
      if (field && params.has(name)) field.value = params.get(name);
    }
  });
  document.addEventListener("htmx:afterSwap", refresh);
  document.addEventListener("DOMContentLoaded", refresh);
})();
