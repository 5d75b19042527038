// The sender page: show only the credential fields of the provider chosen in the provider select. Without this
// script every provider's fields are shown, each group under its provider's heading, and only the chosen
// provider's are used.
(function () {
  "use strict";

  function showChosen(select) {
    document.querySelectorAll("fieldset.sender-credentials").forEach(function (group) {
      group.hidden = !group.classList.contains("sender-credentials-" + select.value);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_provider");
    if (!select || select.tagName !== "SELECT") {
      return;
    }
    select.addEventListener("change", function () { showChosen(select); });
    showChosen(select);
  });
})();
