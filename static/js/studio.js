// Small behaviours shared by every page: copy buttons and confirmations.
document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const source = document.getElementById(copy.dataset.copy);
    const text = source.value !== undefined ? source.value : source.textContent;
    navigator.clipboard.writeText(text.trim()).then(() => {
      const label = copy.textContent;
      copy.textContent = "Copied";
      setTimeout(() => { copy.textContent = label; }, 1500);
    });
  }
});
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// Live log panes (a remote run's output): <pre data-tail="url" data-offset="N" data-ended="0">.
// Asks `url?offset=N` every second for {text, next_offset, size, ended}, appends only the
// new text (as text, never HTML), follows the end unless the reader scrolled up, and stops
// once the job has ended and nothing is left to read.
(() => {
  const KEEP_CHARS = 2_000_000; // the browser keeps the newest output; the file has it all
  const formatSize = (bytes) =>
    bytes < 1024 ? `${bytes} bytes` : bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1048576).toFixed(1)} MB`;

  function tail(pane) {
    const card = pane.closest(".card") || document;
    const empty = card.querySelector("[data-log-empty]");
    const follow = card.querySelector("[data-log-follow]");
    const state = card.querySelector("[data-log-state]");
    const size = card.querySelector("[data-log-size]");
    let offset = Number(pane.dataset.offset) || 0;
    let kept = pane.textContent.length;
    const atEnd = () => pane.scrollHeight - pane.scrollTop - pane.clientHeight < 24;
    const toEnd = () => { pane.scrollTop = pane.scrollHeight; if (follow) follow.hidden = true; };
    pane.addEventListener("scroll", () => { if (follow && atEnd()) follow.hidden = true; });
    if (follow) follow.addEventListener("click", toEnd);
    toEnd();

    function append(text) {
      const following = atEnd();
      pane.append(document.createTextNode(text));
      kept += text.length;
      while (kept > KEEP_CHARS && pane.firstChild && pane.firstChild !== pane.lastChild) {
        kept -= pane.firstChild.textContent.length;
        pane.firstChild.remove();
      }
      if (empty) empty.hidden = true;
      if (following) toEnd(); else if (follow) follow.hidden = false;
    }

    function ended() {
      if (state) { state.textContent = "Ended"; state.classList.remove("live"); }
      if (empty && !pane.textContent) empty.textContent = "The script printed nothing.";
    }

    async function poll() {
      let delay = 1000;
      try {
        const response = await fetch(`${pane.dataset.tail}?offset=${offset}`, { headers: { Accept: "application/json" }, cache: "no-store" });
        if (response.status === 403 || response.status === 404) return; // gone, or no longer ours
        if (!response.ok) throw new Error(String(response.status));
        const read = await response.json();
        if (read.text) append(read.text);
        offset = read.next_offset;
        if (size) size.textContent = formatSize(read.size);
        if (read.ended && offset >= read.size) return ended();
        if (offset < read.size) delay = 0; // behind: ask for the rest at once
      } catch (error) {
        delay = 5000; // the server is away: try again, more slowly
      }
      setTimeout(poll, delay);
    }

    if (pane.dataset.ended !== "1") setTimeout(poll, 1000);
  }

  document.querySelectorAll("pre[data-tail]").forEach(tail);
})();
