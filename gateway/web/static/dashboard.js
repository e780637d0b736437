// The dashboard's only script besides htmx; no inline script anywhere (strict CSP).
(function () {
  "use strict";
  // <form data-confirm="..."> asks before a destructive action.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);
  // <button data-copy="#id" data-copied="..."> copies that element's text (desk form
  // fields); the confirmation word comes from the page, in the page's language.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied") || "\u2713";
      setTimeout(function () { button.textContent = label; }, 1200);
    });
  });
})();
