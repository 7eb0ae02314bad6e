// The patient handout's one script: the print button (the page's CSP allows only files
// from this service, so it cannot be inline). Printing is also Ctrl+P / Cmd+P.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("print-button");
  if (button) button.addEventListener("click", () => window.print());
});
