/* "Find my tickets": asks for links to an address's orders to be e-mailed to it. */
"use strict";

(function () {
  function say(el, text) {
    if (el) el.textContent = text;
  }

  // Find my tickets: the answer is the same whether or not the address bought anything.
  var form = document.getElementById("lookup-form");
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var input = document.getElementById("lookup-email");
      var result = document.getElementById("lookup-result");
      var button = document.getElementById("lookup-button");
      var email = input.value.trim();
      if (!email || email.indexOf("@") < 1) {
        say(result, "Enter the e-mail address you bought with.");
        input.focus();
        return;
      }
      button.disabled = true;
      fetch("/api/orders/lookup", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: email }),
      })
        .then(function (r) {
          if (r.status === 202) {
            say(result, "If " + email + " has bought tickets, a message with links to them is on its way. Check your inbox (and spam).");
          } else if (r.status === 429) {
            var wait = r.headers.get("Retry-After") || "60";
            say(result, "Too many requests: try again in " + wait + " seconds.");
          } else if (r.status === 422) {
            say(result, "That doesn't look like an e-mail address.");
          } else {
            say(result, "Something went wrong. Try again in a minute.");
          }
        })
        .catch(function () { say(result, "You're offline. Try again once you're connected."); })
        .finally(function () { button.disabled = false; });
    });
  }
})();
