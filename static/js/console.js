// Small console behaviours that htmx does not cover. No framework, no inline handlers.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch (error) {
    // Clipboard access can be refused (insecure origin, permissions): select instead.
    const range = document.createRange();
    range.selectNodeContents(source);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    button.textContent = "Press Ctrl+C";
  }
});

// A <dialog data-show-modal> that arrives (page load or htmx swap) opens as a real modal:
// focus trapped, background inert, Escape closes it.
function openModals(root) {
  root.querySelectorAll("dialog[data-show-modal]:not([open])").forEach((dialog) => {
    dialog.showModal();
  });
}
document.addEventListener("DOMContentLoaded", () => openModals(document));
document.addEventListener("htmx:afterSettle", (event) => openModals(event.target));
