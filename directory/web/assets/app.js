// The live policy checklist of the portal's password page. The rules are
// checked by the directory (protocol.Policy.Check, their one definition):
// this script only asks it while the person types and marks each line.
// Without it the form still works; the directory says what is unmet.
"use strict";
(function () {
  const input = document.getElementById("new");
  const list = document.getElementById("checklist");
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (!input || !list || !meta) {
    return;
  }
  let timer = 0;
  let seq = 0;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 120);
  });
  async function check() {
    const mine = ++seq;
    let states;
    try {
      const form = input.form;
      const fields = { new: input.value };
      const token = form && form.querySelector('input[name="token"]');
      if (token) {
        fields.token = token.value;
      }
      const res = await fetch((form && form.dataset.check) || "/password/check", {
        method: "POST",
        headers: { "X-CSRF-Token": meta.content },
        body: new URLSearchParams(fields),
        credentials: "same-origin",
      });
      if (!res.ok) {
        return;
      }
      states = await res.json();
    } catch (e) {
      return;
    }
    if (mine !== seq) {
      return;
    }
    const empty = input.value === "";
    for (const s of states) {
      const li = list.querySelector('[data-rule="' + s.code + '"]');
      if (!li || !s.local) {
        continue;
      }
      const met = s.met && !empty;
      li.classList.toggle("met", met);
      li.classList.toggle("unmet", !met && !empty);
      li.querySelector(".state").textContent = empty ? "not checked yet" : met ? "met" : "not met";
    }
  }
})();
